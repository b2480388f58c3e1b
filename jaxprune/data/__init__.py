"""Image classification datasets held in memory as numpy arrays.

``load(name, seed=...)`` returns a ``Dataset`` whose ``train``,
``validation`` and ``test`` splits hold float32 NHWC images, standardised with
the training split's scalar mean and standard deviation, and int32 labels.
"""

import os

from jaxprune.data.dataset import Dataset, Split, from_arrays
from jaxprune.data.embedded import load_digits
from jaxprune.data.idx import DEFAULT_DIRS, load_mnist_like, read_idx
from jaxprune.data.text import char_lm
from jaxprune.data.tfds import load_tfds

__all__ = [
  "DEFAULT_DIRS",
  "Dataset",
  "NAMES",
  "Split",
  "char_lm",
  "from_arrays",
  "load",
  "load_digits",
  "load_mnist_like",
  "load_tfds",
  "read_idx",
]

NAMES = ("digits", "fashion_mnist", "mnist", "fortunes_chars", "tfds:<name>")


def load(
  name: str,
  *,
  seed: int,
  validation_size: int | None = None,
  data_dir: str | os.PathLike | None = None,
) -> Dataset:
  """Loads a dataset by name.

  Known names:

  * ``"digits"``: scikit-learn's embedded 8x8 digits; 1,297/200/300 images
    for train/validation/test by default, all drawn by ``seed``.
  * ``"fashion_mnist"``, ``"mnist"``: local IDX files in ``data_dir``
    (default ``DEFAULT_DIRS[name]``); 55,000/5,000 train/validation drawn by
    ``seed`` from the 60,000 training images, and the 10,000 test ones.
  * ``"tfds:<name>"``: a TFDS dataset's ``train`` and ``test`` splits, with
    5,000 validation examples drawn from ``train`` by default.
  * ``"fortunes_chars"``: characters of Debian's fortunes in sequences of
    128, each labelled by its next characters (``jaxprune.data.text``);
    ``data_dir`` defaults to ``/usr/share/games/fortunes``; the split is
    fixed by each entry's text, so ``seed`` and ``validation_size`` are not
    used (the latter must be None).

  Args:
    name: One of the names above.
    seed: Seed of the held-out draws; equal seeds give equal splits.
    validation_size: Training examples to hold out; the default depends on
      the dataset, as above.
    data_dir: Where the files are; not accepted for ``"digits"``.

  Returns:
    The dataset.

  Raises:
    ValueError: If ``name`` is unknown, ``validation_size`` is out of range,
      or ``data_dir`` is given for ``"digits"``.
    FileNotFoundError: If IDX files are missing.

  >>> ds = load("digits", seed=0)
  >>> ds.train.images.shape, ds.num_classes
  ((1297, 8, 8, 1), 10)
  """
  if name == "digits":
    if data_dir is not None:
      raise ValueError(
        f"data_dir must be None for 'digits', which is embedded; got "
        f"{data_dir!r}."
      )
    return load_digits(seed=seed, validation_size=validation_size)
  if name in DEFAULT_DIRS:
    return load_mnist_like(
      name, data_dir, seed=seed, validation_size=validation_size
    )
  if name == "fortunes_chars":
    if validation_size is not None:
      raise ValueError(
        f"validation_size must be None for 'fortunes_chars', whose splits "
        f"are fixed by each entry's text; got {validation_size!r}."
      )
    return char_lm(directory=data_dir)
  if name.startswith("tfds:") and len(name) > len("tfds:"):
    return load_tfds(
      name.removeprefix("tfds:"),
      seed=seed,
      validation_size=validation_size,
      data_dir=data_dir,
    )
  raise ValueError(
    f"Unknown dataset {name!r}; known datasets: {', '.join(NAMES)}."
  )
