"""English text from Debian's `fortunes` package, for language models.

The package holds about 2.5 MB of quotations, jokes and verse in one file per
category (`/usr/share/games/fortunes/<category>`), entries separated by lines
holding a single `%`. Two views of it:

* `char_lm`: a character-level language-modelling `Dataset`: every entry
  goes to train, validation or test by a hash of its text (`split_of`),
  each split's entries are joined (each followed by its `%` line, so a model
  learns where an entry ends) and cut into non-overlapping windows; the
  inputs are a window's first `context` characters, the labels the same
  characters shifted by one. `num_classes` is the vocabulary's size.
* `labelled`: entry texts with their category, for a classifier probe.

The vocabulary is fixed: index 0 for any character outside it, then tab,
newline and the 95 printable ASCII characters.
"""

import os
import zlib
from typing import NamedTuple

import numpy as np

from jaxprune.data.dataset import Dataset, Split

FORTUNES_DIR = "/usr/share/games/fortunes"
INSTALL = "apt-get install fortunes"

VOCAB = "\t\n" + "".join(chr(c) for c in range(32, 127))
"""The characters of indices 1, 2, ...; index 0 stands for any other."""
VOCAB_SIZE = len(VOCAB) + 1
SEPARATOR = "\n%\n"
"""What follows every entry in the joined text, as in the files."""
SPLITS = ("train", "validation", "test")

CATEGORIES = ("computers", "food", "law", "love", "science")
"""The default categories of `labelled`: five topics, 150 (love) to 1,051
(computers) entries each."""

_TABLE = np.zeros(128, np.int32)
_TABLE[[ord(c) for c in VOCAB]] = np.arange(1, VOCAB_SIZE)


def read_fortunes(directory: str | os.PathLike | None = None) -> dict:
  """Reads every category file of `directory` (default `FORTUNES_DIR`).

  Files ending in `.dat` (indexes) or `.u8` (links) are skipped; text is
  decoded as UTF-8, undecodable bytes replaced. An entry is the text between
  `%` lines without its final newline; empty entries are dropped.

  Args:
    directory: where the category files are.

  Returns:
    `{category: [entry, ...]}`, categories sorted, entries in file order.

  Raises:
    FileNotFoundError: if the directory holds no category file, naming it
      and the command that installs the package.
  """
  directory = os.fspath(directory or FORTUNES_DIR)
  names = []
  if os.path.isdir(directory):
    names = sorted(
      name
      for name in os.listdir(directory)
      if not name.endswith((".dat", ".u8"))
      and os.path.isfile(os.path.join(directory, name))
    )
  if not names:
    raise FileNotFoundError(
      f"no fortune files in {directory!r}: install Debian's fortunes package "
      f"(`{INSTALL}`) or pass the directory holding them"
    )
  categories = {}
  for name in names:
    with open(
      os.path.join(directory, name), encoding="utf-8", errors="replace"
    ) as f:
      text = f.read()
    entries = []
    for lines in _entries(text.split("\n")):
      entry = "\n".join(lines).strip("\n")
      if entry.strip():
        entries.append(entry)
    categories[name] = entries
  return categories


def _entries(lines: list[str]):
  """Groups `lines` into the runs between lines holding `%` alone."""
  run = []
  for line in lines:
    if line == "%":
      yield run
      run = []
    else:
      run.append(line)
  yield run


def split_of(entry: str) -> str:
  """The split of an entry: 'test' for 10% of entries, 'validation' for
  10%, 'train' for the rest, by the CRC-32 of its UTF-8 text (repeated
  entries, in one category or several, share a split).

  >>> split_of("A day for firm decisions!!!!!  Or is it?")
  'train'
  """
  bucket = zlib.crc32(entry.encode("utf-8")) % 10
  return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def encode(text: str) -> np.ndarray:
  """Character indices of `text` (int32); characters outside `VOCAB` are 0.

  >>> encode("Hi\\n\\u00e9").tolist()
  [43, 76, 2, 0]
  """
  codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
  out = np.zeros(len(codes), np.int32)
  ascii_ = codes < 128
  out[ascii_] = _TABLE[codes[ascii_]]
  return out


def decode(ids) -> str:
  """The text of character indices; index 0 becomes U+FFFD.

  >>> decode(encode("%\\tok"))
  '%\\tok'
  """
  chars = "\ufffd" + VOCAB
  return "".join(chars[i] for i in np.asarray(ids).reshape(-1))


def _windows(ids: np.ndarray, context: int) -> Split:
  """Non-overlapping windows of `context + 1` characters, as (inputs,
  next characters)."""
  count = (len(ids) - 1) // context
  inputs = ids[: count * context].reshape(count, context)
  labels = ids[1 : count * context + 1].reshape(count, context)
  return Split(inputs, labels)


def char_lm(
  *, context: int = 128, directory: str | os.PathLike | None = None
) -> Dataset:
  """The character-level language-modelling dataset (see the module doc).

  The splits' `images` are int32 inputs of shape `(n, context)` and their
  `labels` the int32 next characters, of the same shape. The split of an
  entry depends on its text only (`split_of`), not on a seed.

  Args:
    context: characters per sequence.
    directory: where the category files are (default `FORTUNES_DIR`).

  Returns:
    The dataset, named 'fortunes_chars', with `num_classes` `VOCAB_SIZE`.

  Raises:
    ValueError: if `context` is not a positive integer.
    FileNotFoundError: if the package is missing (see `read_fortunes`).
  """
  if not (isinstance(context, int) and context >= 1):
    raise ValueError(f"context = {context!r}: expected a positive integer")
  texts = {split: [] for split in SPLITS}
  for entries in read_fortunes(directory).values():
    for entry in entries:
      texts[split_of(entry)].append(entry + SEPARATOR)
  train, validation, test = (
    _windows(encode("".join(texts[split])), context) for split in SPLITS
  )
  return Dataset("fortunes_chars", VOCAB_SIZE, train, validation, test)


class Labelled(NamedTuple):
  """Entries with their category.

  Attributes:
    texts: the entries.
    labels: int32 index of each entry's category in `categories`.
    splits: each entry's split (`split_of`).
    categories: the category names.
  """

  texts: list[str]
  labels: np.ndarray
  splits: np.ndarray
  categories: tuple[str, ...]


def labelled(
  categories: tuple[str, ...] = CATEGORIES,
  *,
  max_chars: int | None = None,
  directory: str | os.PathLike | None = None,
) -> Labelled:
  """The entries of `categories`, labelled by category, in file order.

  Args:
    categories: category file names.
    max_chars: entries longer than this are left out (None: none).
    directory: where the category files are (default `FORTUNES_DIR`).

  Returns:
    The labelled entries.

  Raises:
    ValueError: for a category that is not there, naming the known ones.
    FileNotFoundError: if the package is missing (see `read_fortunes`).
  """
  found = read_fortunes(directory)
  unknown = [c for c in categories if c not in found]
  if unknown or not categories:
    raise ValueError(
      f"categories {list(unknown or categories)}: expected a non-empty "
      f"tuple of fortune categories among {sorted(found)}"
    )
  texts, labels = [], []
  for label, category in enumerate(categories):
    for entry in found[category]:
      if max_chars is None or len(entry) <= max_chars:
        texts.append(entry)
        labels.append(label)
  splits = np.array([split_of(t) for t in texts], dtype=object)
  return Labelled(texts, np.array(labels, np.int32), splits, tuple(categories))
