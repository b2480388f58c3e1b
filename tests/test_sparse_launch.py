"""The sparse-training entry point, end to end on the embedded digits."""

import importlib
import json
import pathlib

import pytest

import jaxprune
from jaxprune.experiments import sparse, sparse_report
from jaxprune.train import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "configs/sparse/granet_lenet300_digits.py:quick"
# LeNet-300-100 on 8x8 inputs: 64 * 300 + 300 * 100 + 100 * 10 weights.
WEIGHTS = 50_200


def _module(name):
  return importlib.import_module(f"configs.sparse.{name}")


def _config(name, arg=None):
  return _module(name).get_config(arg)


@pytest.fixture(scope="module")
def granet_run(tmp_path_factory, launch):
  workdir = tmp_path_factory.mktemp("granet")
  return workdir, launch("launch.train", QUICK, workdir)


def test_granet_smoke_run_ends_exactly_on_the_target(granet_run):
  workdir, stdout = granet_run
  assert f"plot:    {workdir / sparse.PLOT}" in stdout
  assert f"results: {workdir / sparse.RESULTS}" in stdout
  for name in ("config.json", "metrics.jsonl", "results.json", "curves.png"):
    assert (workdir / name).stat().st_size > 0, name
  results = json.loads((workdir / "results.json").read_text())
  assert results["method"] == "granet_dense"
  assert results["target_sparsity"] == 0.9
  (run,) = results["runs"]
  # 10% of 50,200 is 5,020 exactly: GraNet's global pruning hits it.
  assert (run["seed"], run["kept"], run["size"]) == (0, 5_020, WEIGHTS)
  assert run["sparsity"] == 1 - 5_020 / WEIGHTS
  assert sum(r["kept"] for r in run["layers"].values()) == 5_020
  assert run["final_step"] == 100
  # Early stopping only looks from the end of pruning (step 50) on.
  assert run["early_stop_step"] in (50, 75, 100)
  assert 0.0 <= run["final_test_accuracy"] <= 1.0
  assert results["summary"]["seeds"] == [0]
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [0, 25, 50, 75, 100]
  assert not (workdir / "seed0" / "checkpoints").exists()


def test_rerun_skips_the_finished_seed(granet_run, monkeypatch):
  workdir, _ = granet_run
  before = json.loads((workdir / "results.json").read_text())
  metrics = (workdir / "metrics.jsonl").read_text()

  def no_training(*args, **kwargs):
    raise AssertionError("a finished seed was trained again")

  monkeypatch.setattr(Trainer, "fit", no_training)
  after = sparse.run(_config("granet_lenet300_digits", "quick"), str(workdir))
  assert after == before
  assert (workdir / "metrics.jsonl").read_text() == metrics


def test_a_different_config_is_refused(granet_run):
  workdir, _ = granet_run
  config = _config("granet_lenet300_digits", "quick,sparsity=0.8")
  with pytest.raises(ValueError, match=r"different config.*sparsity"):
    sparse.run(config, str(workdir))


class _Killed(Exception):
  pass


def test_snip_run_resumes_after_an_interruption(tmp_path, monkeypatch):
  base = _module("base")
  config = base.recipe(
    "snip",
    dataset="digits",
    sparsity=0.95,
    steps=50,
    eval_every=25,
    steps_per_dispatch=25,
    checkpoint_every=25,
    eval_batch_size=500,
    seeds=(0,),
  )
  config.lock()

  def killed(opt_state):
    raise _Killed

  # Killed after its first checkpoint (step 25), at the pruner check.
  monkeypatch.setattr(sparse, "check", killed)
  with pytest.raises(_Killed):
    sparse.run(config, str(tmp_path))
  monkeypatch.undo()
  evaluated = []
  evaluate = Trainer._evaluate_placed

  def counted(self, state):
    evaluated.append(int(self.layout.local(state.step)))
    return evaluate(self, state)

  monkeypatch.setattr(Trainer, "_evaluate_placed", counted)
  results = sparse.run(config, str(tmp_path))
  assert evaluated == [50]  # resumed at 25, not restarted
  (run,) = results["runs"]
  # SNIP ranks globally: 5% of 50,200 kept, 2,510 exactly.
  assert (run["kept"], run["final_step"]) == (2_510, 50)
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [0, 25, 50]


def test_report_pivots_methods_by_sparsity(granet_run, tmp_path):
  workdir, _ = granet_run
  out, plot = tmp_path / "report.md", tmp_path / "report.png"
  sparse_report.main([str(workdir), "--out", str(out), "--plot", str(plot)])
  text = out.read_text()
  assert "| final test accuracy (%) | sparsity 0.9 |" in text
  assert "| granet_dense | " in text
  assert plot.stat().st_size > 0
  with pytest.raises(ValueError, match=r"repeats seeds \[0\]"):
    sparse_report.collect([str(workdir), str(workdir)])


METHODS = [f"{m}_lenet300_fashion_mnist" for m in _module("base").METHODS] + [
  "granet_lenet300_digits"
]


def _targets(config):
  """Every sparsity the method's factories receive."""
  settings = [config.pruner, config.get("prune_at_init", {})]
  return {
    s[k] for s in settings for k in ("sparsity", "final_sparsity") if k in s
  }


@pytest.mark.parametrize("name", METHODS)
def test_configs_build_their_pruner_with_every_preset(name):
  for arg in (None, "quick"):
    jaxprune.create(_config(name, arg).pruner)
  with pytest.raises(ValueError, match="quick"):
    _config(name, "nonsense")
  if name.startswith("dense"):
    with pytest.raises(ValueError, match="no sparsity"):
      _config(name, "sparsity=0.95")
    return
  config = _config(name, "quick,sparsity=0.95")
  config.lock()
  assert _targets(config) == {0.95}
  config.sparsity = 0.8  # as --config.sparsity=0.8 does
  assert _targets(config) == {0.8}
