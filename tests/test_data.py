"""IDX parsing, dataset splits, standardisation and loader errors."""

import gzip
import pathlib
import struct
import sys

import numpy as np
import pytest

from jaxprune import data

FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")

# IDX type codes, written out independently of the reader.
_CODES = {
  np.uint8: 0x08,
  np.int8: 0x09,
  np.int16: 0x0B,
  np.int32: 0x0C,
  np.float32: 0x0D,
}


def _write_idx(path, array, compress=False):
  """Writes ``array`` as an IDX file by hand: magic, dims, big-endian data."""
  header = bytes([0, 0, _CODES[array.dtype.type], array.ndim])
  header += struct.pack(f">{array.ndim}I", *array.shape)
  payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
  path.write_bytes(gzip.compress(payload) if compress else payload)
  return path


def _write_mnist_like(folder, n_train=100, n_test=20, size=28):
  """Train image ``i`` is filled with ``i``, so splits can be traced back."""
  folder.mkdir(exist_ok=True)
  train = np.repeat(np.arange(n_train, dtype=np.uint8), size * size)
  test = np.full((n_test, size, size), 200, dtype=np.uint8)
  labels = np.arange(n_train, dtype=np.uint8) % 10
  _write_idx(
    folder / "train-images-idx3-ubyte.gz",
    train.reshape(n_train, size, size),
    True,
  )
  _write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:n_train], True)
  _write_idx(folder / "t10k-images-idx3-ubyte", test)
  _write_idx(folder / "t10k-labels-idx1-ubyte", labels[:n_test])
  return folder


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
  "array",
  [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([-3, 0, 7], dtype=np.int8),
    np.array([[-300, 2], [1, 30_000]], dtype=np.int16),
    np.array([1, -(2**31), 2**31 - 1], dtype=np.int32),
    np.array([[0.5, -1.25]], dtype=np.float32),
  ],
)
def test_read_idx_roundtrip(tmp_path, array, compress):
  path = _write_idx(tmp_path / "file-idx", array, compress)
  result = data.read_idx(path)
  assert result.dtype == array.dtype
  np.testing.assert_array_equal(result, array)


def test_read_idx_rejects_bad_magic(tmp_path):
  path = tmp_path / "bad-idx"
  path.write_bytes(bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]))
  with pytest.raises(ValueError, match="bad-idx.*magic"):
    data.read_idx(path)
  path.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]))
  with pytest.raises(ValueError, match="not an IDX file"):
    data.read_idx(path)


def test_read_idx_rejects_size_mismatch(tmp_path):
  path = _write_idx(tmp_path / "short-idx", np.zeros((4, 3), np.uint8))
  path.write_bytes(path.read_bytes()[:-1])
  with pytest.raises(ValueError, match=r"short-idx.*\(4, 3\).*12 bytes.*11"):
    data.read_idx(path)


@pytest.fixture(scope="module")
def fashion():
  if not FASHION_DIR.is_dir():
    pytest.skip(
      f"{FASHION_DIR} is absent (apt-get install dataset-fashion-mnist)"
    )
  return data.load("fashion_mnist", seed=0)


def test_fashion_mnist_shapes(fashion):
  assert fashion.name == "fashion_mnist"
  assert fashion.num_classes == 10
  for split, n in [
    (fashion.train, 55_000),
    (fashion.validation, 5_000),
    (fashion.test, 10_000),
  ]:
    assert split.images.shape == (n, 28, 28, 1)
    assert split.images.dtype == np.float32
    assert split.labels.shape == (n,)
    assert split.labels.dtype == np.int32
    assert set(np.unique(split.labels)) == set(range(10))
  # The t10k split is balanced: 1,000 images per class.
  assert np.all(np.bincount(fashion.test.labels) == 1_000)


def test_fashion_mnist_is_standardised_on_train(fashion):
  assert abs(fashion.train.images.mean()) < 1e-4
  assert fashion.train.images.std() == pytest.approx(1.0, abs=1e-4)
  # Other splits use the training statistics, so they are only close.
  assert abs(fashion.test.images.mean()) < 0.05
  assert fashion.test.images.std() == pytest.approx(1.0, abs=0.05)


def _ids(ds):
  """Raw ids of the train and validation images, recovered from their order.

  Image ``i`` holds the constant ``i`` and standardising is increasing, so
  ranking all held values gives back the ids.
  """
  train = ds.train.images[:, 0, 0, 0]
  validation = ds.validation.images[:, 0, 0, 0]
  ranks = np.argsort(np.argsort(np.concatenate([train, validation])))
  return ranks[: len(train)], ranks[len(train) :]


def test_idx_splits_are_disjoint_and_deterministic(tmp_path):
  folder = _write_mnist_like(tmp_path / "fm")

  def load(seed):
    return data.load(
      "fashion_mnist", seed=seed, validation_size=30, data_dir=folder
    )

  ds = load(1)
  sizes = [len(s.labels) for s in (ds.train, ds.validation, ds.test)]
  assert sizes == [70, 30, 20]
  train_ids, validation_ids = _ids(ds)
  all_ids = np.concatenate([train_ids, validation_ids])
  assert sorted(all_ids) == list(range(100))
  # Labels travel with their images (label = id % 10).
  all_labels = np.concatenate([ds.train.labels, ds.validation.labels])
  np.testing.assert_array_equal(all_labels, all_ids % 10)

  same = load(1)
  np.testing.assert_array_equal(same.validation.images, ds.validation.images)
  np.testing.assert_array_equal(same.train.labels, ds.train.labels)
  other = load(2)
  assert set(_ids(other)[1]) != set(validation_ids)


def test_standardisation_uses_training_statistics_only(tmp_path):
  folder = _write_mnist_like(tmp_path / "fm", size=4)
  ds = data.load("fashion_mnist", seed=3, validation_size=40, data_dir=folder)
  train_ids, validation_ids = _ids(ds)
  # Every image is constant, so pixel statistics are those of the ids.
  mean, std = train_ids.mean(), train_ids.std()
  np.testing.assert_allclose(
    ds.train.images[:, 0, 0, 0], (train_ids - mean) / std, rtol=1e-5
  )
  np.testing.assert_allclose(
    ds.validation.images[:, 0, 0, 0], (validation_ids - mean) / std, rtol=1e-5
  )
  np.testing.assert_allclose(ds.test.images, (200 - mean) / std, rtol=1e-5)


def test_digits_shapes_and_sizes():
  ds = data.load("digits", seed=0)
  assert ds.name == "digits"
  assert ds.num_classes == 10
  sizes = {"train": 1_297, "validation": 200, "test": 300}
  for name, n in sizes.items():
    split = getattr(ds, name)
    assert split.images.shape == (n, 8, 8, 1)
    assert split.images.dtype == np.float32
    assert split.labels.dtype == np.int32
    assert set(np.unique(split.labels)) == set(range(10))
  assert abs(ds.train.images.mean()) < 1e-5
  assert ds.train.images.std() == pytest.approx(1.0, abs=1e-5)

  smaller = data.load("digits", seed=0, validation_size=100)
  assert len(smaller.train.labels) == 1_397
  assert len(smaller.validation.labels) == 100
  assert len(smaller.test.labels) == 300


def test_digits_split_determinism():
  a, b = data.load("digits", seed=5), data.load("digits", seed=5)
  c = data.load("digits", seed=6)
  for name in ("train", "validation", "test"):
    np.testing.assert_array_equal(
      getattr(a, name).images, getattr(b, name).images
    )
    np.testing.assert_array_equal(
      getattr(a, name).labels, getattr(b, name).labels
    )
  assert not np.array_equal(a.test.labels, c.test.labels)


@pytest.mark.parametrize("size", [-1, 100, 101, 1.5, True])
def test_bad_validation_size(tmp_path, size):
  folder = _write_mnist_like(tmp_path / "fm")
  with pytest.raises(ValueError, match=rf"validation_size.*\[0, 99\].*{size}"):
    data.load("fashion_mnist", seed=0, validation_size=size, data_dir=folder)


def test_digits_validation_size_too_large():
  with pytest.raises(ValueError, match="validation_size.*1496.*1497"):
    data.load("digits", seed=0, validation_size=1_497)


def test_missing_idx_files_explain_how_to_get_them(tmp_path):
  with pytest.raises(FileNotFoundError) as info:
    data.load("fashion_mnist", seed=0, data_dir=tmp_path)
  message = str(info.value)
  assert str(tmp_path / "train-images-idx3-ubyte") in message
  assert "apt-get install dataset-fashion-mnist" in message
  assert "data_dir" in message
  assert "tfds:fashion_mnist" in message


def test_missing_mnist_points_to_alternatives(tmp_path):
  with pytest.raises(FileNotFoundError, match="data_dir.*tfds:mnist"):
    data.load("mnist", seed=0, data_dir=tmp_path)


@pytest.mark.parametrize("name", ["cifar10", "tfds:", "MNIST"])
def test_unknown_dataset(name):
  with pytest.raises(ValueError, match=f"{name!r}.*digits.*fashion_mnist"):
    data.load(name, seed=0)


def test_digits_rejects_data_dir(tmp_path):
  with pytest.raises(ValueError, match="data_dir"):
    data.load("digits", seed=0, data_dir=tmp_path)


def test_tfds_needs_tensorflow_datasets(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(ImportError, match="tensorflow-datasets"):
    data.load("tfds:mnist", seed=0)


def test_tfds_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=30):
    ds = data.load("tfds:mnist", seed=0, validation_size=5)
  assert ds.name == "tfds:mnist"
  assert ds.num_classes == 10
  assert ds.train.images.shape == (25, 28, 28, 1)
  assert ds.validation.images.shape == (5, 28, 28, 1)
  assert ds.test.images.shape == (30, 28, 28, 1)
  assert ds.train.labels.dtype == np.int32
  assert abs(ds.train.images.mean()) < 1e-5


def test_digits_test_size_sets_the_test_split():
  ds = data.load("digits", seed=0, test_size=900)
  sizes = [len(s.labels) for s in (ds.train, ds.validation, ds.test)]
  assert sizes == [697, 200, 900]  # 1,797 in all
  with pytest.raises(ValueError, match=r"integer in \[1, 1796\].*got 1797"):
    data.load("digits", seed=0, test_size=1797)
  with pytest.raises(ValueError, match="test_size is only for 'digits'"):
    data.load("mnist", seed=0, test_size=100)
