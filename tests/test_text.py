"""Fortunes text: entries, splits, character windows, labelled categories."""

import pathlib
import zlib

import numpy as np
import pytest

from jaxprune import data
from jaxprune.data import text

FORTUNES = pathlib.Path(text.FORTUNES_DIR)
needs_fortunes = pytest.mark.skipif(
  not FORTUNES.is_dir(),
  reason=f"Debian's fortunes is not installed ({text.INSTALL})",
)


def _code(c):
  """The vocabulary by hand: 0 unknown, tab 1, newline 2, ' ' 3 ... '~' 97."""
  if c == "\t":
    return 1
  if c == "\n":
    return 2
  return ord(c) - 29 if 32 <= ord(c) < 127 else 0


def _bucket(entry):
  return {0: "test", 1: "validation"}.get(
    zlib.crc32(entry.encode()) % 10, "train"
  )


@pytest.fixture
def folder(tmp_path):
  (tmp_path / "b").write_text("one\n%\ntwo\nlines\n%\n")
  (tmp_path / "a").write_text("%\nthree\n%\n\n%\nfour\tx\n")
  (tmp_path / "a.dat").write_bytes(b"\x00\x01")
  (tmp_path / "a.u8").write_text("ignored\n%\n")
  return tmp_path


def test_read_fortunes_entries_by_hand(folder):
  assert text.read_fortunes(folder) == {
    "a": ["three", "four\tx"],
    "b": ["one", "two\nlines"],
  }


def test_missing_package_names_apt_get(tmp_path):
  with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
    text.read_fortunes(tmp_path / "nowhere")


def test_encode_decode():
  assert text.VOCAB_SIZE == 98
  s = "Hi\t~ \n\u00e9"
  assert text.encode(s).tolist() == [_code(c) for c in s]
  assert text.encode(s).dtype == np.int32
  assert text.decode(text.encode("ok\n%")) == "ok\n%"
  assert text.decode([0]) == "\ufffd"


def test_char_lm_windows_by_hand(tmp_path):
  entries = [f"entry number {i} says hello" for i in range(60)]
  (tmp_path / "cat").write_text("\n%\n".join(entries) + "\n")
  ds = text.char_lm(context=7, directory=tmp_path)
  assert ds.num_classes == 98
  for name, split in [
    ("train", ds.train),
    ("validation", ds.validation),
    ("test", ds.test),
  ]:
    joined = "".join(e + "\n%\n" for e in entries if _bucket(e) == name)
    ids = [_code(c) for c in joined]
    n = (len(ids) - 1) // 7
    assert split.images.shape == split.labels.shape == (n, 7)
    assert split.images.dtype == split.labels.dtype == np.int32
    assert split.images.ravel().tolist() == ids[: 7 * n]
    assert split.labels.ravel().tolist() == ids[1 : 7 * n + 1]


def test_char_lm_bad_context(folder):
  with pytest.raises(ValueError, match="context = 0"):
    text.char_lm(context=0, directory=folder)


def test_load_by_name(folder):
  ds = data.load("fortunes_chars", seed=0, data_dir=folder)
  assert ds.name == "fortunes_chars"
  with pytest.raises(ValueError, match="validation_size.*fortunes_chars"):
    data.load("fortunes_chars", seed=0, validation_size=5, data_dir=folder)


def test_labelled_by_hand(folder):
  got = text.labelled(("b", "a"), directory=folder)
  assert got.texts == ["one", "two\nlines", "three", "four\tx"]
  assert got.labels.tolist() == [0, 0, 1, 1]
  assert got.categories == ("b", "a")
  assert got.splits.tolist() == [_bucket(t) for t in got.texts]
  short = text.labelled(("b", "a"), max_chars=5, directory=folder)
  assert short.texts == ["one", "three"]
  with pytest.raises(ValueError, match=r"\['c'\].*\['a', 'b'\]"):
    text.labelled(("a", "c"), directory=folder)


@needs_fortunes
def test_real_fortunes():
  found = text.read_fortunes()
  assert len(found) >= 38 and set(text.CATEGORIES) <= set(found)
  entries = [e for es in found.values() for e in es]
  splits = np.array([text.split_of(e) for e in entries])
  for name in ("validation", "test"):
    assert 0.08 < np.mean(splits == name) < 0.12
  ds = text.char_lm()
  assert ds.train.images.shape[1] == 128
  # About 2.5 MB of text: 80% of it in training windows.
  assert 14_000 < len(ds.train.images) < 18_000
  np.testing.assert_array_equal(ds.train.images[:, 1:], ds.train.labels[:, :-1])
