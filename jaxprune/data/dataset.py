"""In-memory datasets: train, validation and test splits as numpy arrays."""

import dataclasses
from typing import NamedTuple

import numpy as np

DEFAULT_VALIDATION_SIZE = 5_000


class Split(NamedTuple):
  """One split of a dataset.

  Attributes:
    images: float32 array of shape ``(n, height, width, channels)``.
    labels: int32 array of shape ``(n,)``.
  """

  images: np.ndarray
  labels: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A classification dataset, standardised with training-split statistics.

  Attributes:
    name: The name the dataset was loaded by.
    num_classes: Labels lie in ``[0, num_classes)``.
    train: Examples to fit on.
    validation: Examples held out of the original training data.
    test: The dataset's own test examples.
  """

  name: str
  num_classes: int
  train: Split
  validation: Split
  test: Split


def from_arrays(
  name: str,
  num_classes: int,
  train: tuple[np.ndarray, np.ndarray],
  test: tuple[np.ndarray, np.ndarray],
  *,
  seed: int,
  validation_size: int,
) -> Dataset:
  """Holds out a validation split, then standardises every split.

  ``validation_size`` training examples, drawn at random with
  ``np.random.default_rng(seed)``, form the validation split; both parts keep
  the original order. Images are cast to float32 (a channel axis is added to
  ``(n, height, width)`` arrays) and standardised with one scalar mean and
  standard deviation taken over all pixels of the remaining training split.

  Args:
    name: Name to record in the dataset.
    num_classes: Number of classes.
    train: ``(images, labels)`` of the original training data.
    test: ``(images, labels)`` of the test data.
    seed: Seed of the validation draw.
    validation_size: Number of training examples to hold out.

  Returns:
    The dataset.

  Raises:
    ValueError: If ``validation_size`` is out of range, or images and labels
      disagree in number or labels fall outside ``[0, num_classes)``.

  >>> images = np.arange(40, dtype=np.uint8).reshape(10, 2, 2)
  >>> labels = np.arange(10) % 2
  >>> ds = from_arrays("toy", 2, (images, labels), (images, labels), seed=0,
  ...                  validation_size=3)
  >>> ds.train.images.shape, ds.validation.images.shape, ds.test.images.dtype
  ((7, 2, 2, 1), (3, 2, 2, 1), dtype('float32'))
  """
  train_images, train_labels = _checked(name, num_classes, *train)
  test_images, test_labels = _checked(name, num_classes, *test)
  n = len(train_labels)
  in_range = (
    isinstance(validation_size, int | np.integer)
    and not isinstance(validation_size, bool)
    and 0 <= validation_size < n
  )
  if not in_range:
    raise ValueError(
      f"validation_size must be an integer in [0, {n - 1}] for {name!r}, "
      f"whose training data has {n} examples; got {validation_size!r}."
    )
  order = np.random.default_rng(seed).permutation(n)
  held_out = np.sort(order[:validation_size])
  kept = np.sort(order[validation_size:])
  fit = train_images[kept].astype(np.float32)
  # Float64 sums, but float32 temporaries: CIFAR-sized data stays cheap.
  mean = np.float32(fit.mean(dtype=np.float64))
  fit -= mean
  std = np.float32(np.sqrt(np.square(fit).mean(dtype=np.float64)) or 1.0)
  fit /= std

  def split(images: np.ndarray, labels: np.ndarray) -> Split:
    images = (images.astype(np.float32) - mean) / std
    return Split(images, labels.astype(np.int32))

  return Dataset(
    name=name,
    num_classes=num_classes,
    train=Split(fit, train_labels[kept].astype(np.int32)),
    validation=split(train_images[held_out], train_labels[held_out]),
    test=split(test_images, test_labels),
  )


def _checked(
  name: str, num_classes: int, images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Returns NHWC images and flat labels, after checking they agree."""
  images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or len(images) != len(labels):
    raise ValueError(
      f"{name!r}: expected images of shape (n, height, width[, channels]) "
      f"and n labels; got {images.shape} and {labels.shape}."
    )
  if labels.size and not 0 <= labels.min() <= labels.max() < num_classes:
    raise ValueError(
      f"{name!r}: labels must lie in [0, {num_classes}); got "
      f"[{labels.min()}, {labels.max()}]."
    )
  return images, labels
