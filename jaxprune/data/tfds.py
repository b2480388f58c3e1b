"""Datasets from TensorFlow Datasets, read without TensorFlow.

Uses ``tfds.data_source`` (random-access ArrayRecord files), so only the
optional ``tensorflow-datasets`` package is needed (``pip install
'jaxprune[tfds]'``); it is imported on first use.
"""

import os

import numpy as np

from jaxprune.data.dataset import DEFAULT_VALIDATION_SIZE, Dataset, from_arrays


def load_tfds(
  name: str,
  *,
  seed: int,
  validation_size: int | None = None,
  data_dir: str | os.PathLike | None = None,
) -> Dataset:
  """Loads a supervised image dataset with ``train`` and ``test`` splits.

  ``validation_size`` (5,000 by default) examples of ``train``, drawn by
  ``seed``, form the validation split. Examples are read one by one into
  memory, so this suits MNIST- or CIFAR-sized data.

  Args:
    name: The TFDS name, e.g. ``"cifar10"`` or ``"fashion_mnist:3.0.1"``.
    seed: Seed of the validation draw.
    validation_size: Training examples to hold out.
    data_dir: TFDS data folder; TFDS's default when None.

  Returns:
    The standardised dataset, named ``"tfds:<name>"``.

  Raises:
    ImportError: If tensorflow-datasets is not installed.
    ValueError: If the dataset has no supervised (image, label) keys.
  """
  try:
    import tensorflow_datasets as tfds
  except ImportError as error:
    raise ImportError(
      f"Loading 'tfds:{name}' needs tensorflow-datasets: "
      "pip install 'jaxprune[tfds]'."
    ) from error
  train, test = tfds.data_source(
    name, split=["train", "test"], data_dir=data_dir
  )
  info = train.dataset_info
  if not info.supervised_keys:
    raise ValueError(f"TFDS dataset {name!r} has no supervised keys.")
  image_key, label_key = info.supervised_keys

  def arrays(source) -> tuple[np.ndarray, np.ndarray]:
    examples = [source[i] for i in range(len(source))]
    images = np.stack([example[image_key] for example in examples])
    labels = np.array([example[label_key] for example in examples])
    return images, labels

  if validation_size is None:
    validation_size = DEFAULT_VALIDATION_SIZE
  return from_arrays(
    f"tfds:{name}",
    info.features[label_key].num_classes,
    arrays(train),
    arrays(test),
    seed=seed,
    validation_size=validation_size,
  )
