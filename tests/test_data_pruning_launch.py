"""The data-pruning experiment end to end on the embedded digits."""

import importlib
import subprocess
import sys

import numpy as np
import pytest

from jaxprune.data_pruning import keep_count
from jaxprune.experiments import data_pruning
from jaxprune.train import Trainer

N = 1297  # digits training examples


def _config(arg=None):
  module = importlib.import_module(
    "configs.data_pruning.lenet300_fashion_mnist"
  )
  return module.get_config(arg)


def _tiny(arg="keep=0.5", **changes):
  config = _config(f"quick,{arg}")
  config.dataset.update(name="digits", train_size=0)
  config.train.update(steps=20, eval_every=10)
  config.scores.update(models=2, grand_models=1, step=5, forgetting_steps=20)
  for key, value in changes.items():
    config[key] = value
  return config


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("data_pruning")
  return workdir, data_pruning.run(_tiny(), str(workdir))


def test_every_method_trains_on_exactly_its_share(grid):
  workdir, results = grid
  for name in ("config.json", "results.json", "results.md", "accuracy.png"):
    assert (workdir / name).stat().st_size > 0, name
  for score in data_pruning.SCORES:
    assert np.load(workdir / "scores" / f"{score}.npy").shape == (N,)
  runs = {r["method"]: r for r in results["runs"]}
  assert set(runs) == {"full", *data_pruning.METHODS}
  assert runs["full"]["kept"] == N
  for method in data_pruning.METHODS:
    assert runs[method]["kept"] == keep_count(N, 0.5) == 649, method
    assert runs[method]["steps"] == 20  # the 'steps' budget
    assert 0 <= runs[method]["final_test_accuracy"] <= 1
  table = (workdir / "results.md").read_text()
  assert "| el2n_ccs |" in table and "keep 0.5" in table


def test_hardest_keeps_the_highest_cached_scores(grid):
  workdir, _ = grid
  scores = np.load(workdir / "scores" / "el2n.npy")
  config = _tiny()
  kept = data_pruning.subset(
    config, "el2n_hardest", {"el2n": scores}, None, 0.5
  )
  threshold = np.sort(scores)[::-1][648]
  assert np.all(scores[kept] >= threshold)
  assert len(kept) == 649


def test_rerun_skips_scores_and_runs(grid, monkeypatch):
  workdir, before = grid

  def fail(*args, **kwargs):
    raise AssertionError("recomputed what the workdir holds")

  monkeypatch.setattr(Trainer, "fit", fail)
  monkeypatch.setattr(data_pruning, "compute_scores", fail)
  after = data_pruning.run(_tiny(), str(workdir))
  assert after == before


def test_same_epochs_budget_and_label_noise(tmp_path):
  config = _tiny("score=random,keep=0.5,epochs,noise=0.2")
  results = data_pruning.run(config, str(tmp_path))
  runs = {r["method"]: r for r in results["runs"]}
  assert runs["full"]["steps"] == 20
  assert runs["random"]["steps"] == -(-20 * 649 // N) == 11
  assert runs["random"]["budget"] == "epochs"
  # Dense training at 3 multiply-adds a weight (50,200 on 8x8 inputs) and
  # example: 11 of the full run's 20 steps.
  full = 3 * 50_200 * config.train.batch_size * 20
  assert runs["full"]["training_flops"] == {
    "dense": full,
    "effective": full,
    "relative": 1.0,
  }
  assert runs["random"]["training_flops"]["effective"] == full * 11 // 20
  assert runs["random"]["inference_flops"]["relative"] == 1.0
  assert "| random |  | 55.0 |" in (tmp_path / "results.md").read_text()
  assert runs["full"]["noisy_fraction"] == round(0.2 * N) / N
  top = results["scores"]["corrupted_in_top10"]
  assert set(top) == {"el2n", "random"}
  assert all(0 <= v <= 1 for v in top.values())


@pytest.mark.parametrize(
  "changes, match",
  [
    (dict(methods=("el2n_middle",)), r"config.methods: \['el2n_middle'\]"),
    (dict(keep_fractions=(0.0,)), r"0.0 is not a fraction in \(0, 1\]"),
    (dict(label_noise=1.0), "config.label_noise = 1.0"),
    (dict(seeds=()), "config.seeds is empty"),
  ],
)
def test_bad_config_is_named(changes, match, tmp_path):
  with pytest.raises(ValueError, match=match):
    data_pruning.run(_tiny(**changes), str(tmp_path))


def test_bad_nested_keys_are_named():
  config = _tiny()
  config.train.budget = "hours"
  with pytest.raises(ValueError, match="config.train.budget = 'hours'"):
    data_pruning.check(config)
  config = _tiny()
  config.scores.grand_models = 3
  with pytest.raises(ValueError, match="grand_models = 3"):
    data_pruning.check(config)


def test_presets():
  config = _config("noise=0.1,score=el2n_ccs,keep=0.3,epochs,per_class")
  assert config.label_noise == 0.1
  assert config.methods == ("el2n_ccs",)
  assert config.keep_fractions == (0.3,)
  assert config.train.budget == "epochs"
  assert config.selection.per_class
  assert _config().methods == tuple(data_pruning.METHODS)
  with pytest.raises(ValueError, match="unknown preset 'fast'"):
    _config("fast")


def test_command_line_names_a_bad_method_without_a_traceback(tmp_path):
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "launch.data_pruning",
      "--config=configs/data_pruning/lenet300_fashion_mnist.py:score=nope",
      f"--workdir={tmp_path}",
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert out.returncode != 0
  assert "config.methods: ['nope'] unknown" in out.stderr
  assert "Traceback" not in out.stderr
  assert not list(tmp_path.iterdir())  # nothing written
