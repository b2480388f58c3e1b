"""IDX files (the MNIST format) and the MNIST-like datasets stored in them.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code
and the number of dimensions. Each dimension follows as a big-endian uint32,
then the data, big-endian, in C order.
"""

import gzip
import math
import os
import pathlib

import numpy as np

from jaxprune.data.dataset import DEFAULT_VALIDATION_SIZE, Dataset, from_arrays

_TYPES = {
  0x08: np.dtype("u1"),
  0x09: np.dtype("i1"),
  0x0B: np.dtype(">i2"),
  0x0C: np.dtype(">i4"),
  0x0D: np.dtype(">f4"),
  0x0E: np.dtype(">f8"),
}

DEFAULT_DIRS = {
  "fashion_mnist": "/usr/share/datasets/fashion-mnist",
  "mnist": "/usr/share/datasets/mnist",
}

_APT_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file, gzipped or not, into an array in native byte order.

  Args:
    path: The file; gzip compression is detected from its content.

  Returns:
    The array, with the shape and type the header declares.

  Raises:
    ValueError: If the magic number is not an IDX one or the data size does
      not match the declared shape.

  >>> import tempfile
  >>> with tempfile.TemporaryDirectory() as tmp:
  ...   path = pathlib.Path(tmp, "labels-idx1-ubyte")
  ...   _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]))
  ...   read_idx(path)
  array([7, 2, 9], dtype=uint8)
  """
  raw = pathlib.Path(path).read_bytes()
  if raw[:2] == b"\x1f\x8b":
    raw = gzip.decompress(raw)
  if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _TYPES:
    raise ValueError(
      f"{path} is not an IDX file: its magic number is 0x{raw[:4].hex()}, "
      "expected 0x0000 followed by a type code "
      f"({', '.join(f'0x{code:02x}' for code in _TYPES)}) and a dimension "
      "count."
    )
  dtype, ndim = _TYPES[raw[2]], raw[3]
  offset = 4 + 4 * ndim
  if len(raw) < offset:
    raise ValueError(f"{path} ends inside its header of {offset} bytes.")
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  expected = math.prod(shape) * dtype.itemsize
  if len(raw) - offset != expected:
    raise ValueError(
      f"{path} declares shape {shape} of {dtype.name}, which is {expected} "
      f"bytes of data, but holds {len(raw) - offset}."
    )
  data = np.frombuffer(raw, dtype, offset=offset).reshape(shape)
  return data.astype(dtype.newbyteorder("="))


def load_mnist_like(
  name: str,
  data_dir: str | os.PathLike | None = None,
  *,
  seed: int,
  validation_size: int | None = None,
) -> Dataset:
  """Loads MNIST or Fashion-MNIST from the four standard IDX files.

  The files are ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, each
  optionally gzipped (``.gz``). The 60,000 training images are split into
  train and validation (5,000 by default) by ``seed``; the 10,000 t10k images
  form the test split.

  Args:
    name: ``"mnist"`` or ``"fashion_mnist"``.
    data_dir: Folder of the files; defaults to ``DEFAULT_DIRS[name]``.
    seed: Seed of the validation draw.
    validation_size: Training images to hold out; defaults to 5,000.

  Returns:
    The standardised dataset.

  Raises:
    FileNotFoundError: If a file is missing; the message says how to get it.
  """
  folder = pathlib.Path(data_dir or DEFAULT_DIRS[name])

  def arrays(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find(name, folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(name, folder, f"{prefix}-labels-idx1-ubyte"))
    return images, labels

  if validation_size is None:
    validation_size = DEFAULT_VALIDATION_SIZE
  return from_arrays(
    name,
    10,
    arrays("train"),
    arrays("t10k"),
    seed=seed,
    validation_size=validation_size,
  )


def _find(name: str, folder: pathlib.Path, stem: str) -> pathlib.Path:
  """Returns ``folder/stem.gz`` or ``folder/stem``, whichever exists."""
  for path in (folder / f"{stem}.gz", folder / stem):
    if path.is_file():
      return path
  ways = [
    f"pass data_dir=<folder with {stem}[.gz]> (in an experiment config: "
    "--config.dataset.data_dir=<folder>)",
    f"use 'tfds:{name}'",
  ]
  if name in _APT_PACKAGES:
    ways.insert(0, f"run `apt-get install {_APT_PACKAGES[name]}`")
  raise FileNotFoundError(
    f"{folder / stem}.gz not found (nor without .gz). To load {name!r}, "
    f"{', or '.join(ways)}."
  )
