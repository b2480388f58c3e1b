"""The lottery-ticket entry point, end to end on the embedded digits."""

import importlib
import json
import os
import pathlib

import jax
import numpy as np
import pytest

from jaxprune.core.tree import path_str
from jaxprune.data import load
from jaxprune.experiments import lottery
from jaxprune.experiments.workdir import load_trained
from jaxprune.models import LeNet300

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "configs/lottery/lenet300_digits.py:quick"


def _config(name, arg=None):
  module = importlib.import_module(f"configs.lottery.{name}")
  return module.get_config(arg)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, launch):
  workdir = tmp_path_factory.mktemp("lottery")
  return workdir, launch("launch.lottery", QUICK, workdir)


def test_two_round_smoke_run_writes_results_and_plots(quick_run):
  workdir, stdout = quick_run
  assert f"plot:    {workdir / lottery.PLOT}" in stdout
  for name in (
    "config.json",
    "metrics.jsonl",
    "results.json",
    "results.md",
    "lottery.png",
  ):
    assert (workdir / name).stat().st_size > 0, name
  assert list((workdir / "tensorboard").rglob("events.out.tfevents.*"))
  results = json.loads((workdir / "results.json").read_text())
  trained = sorted((r["arm"], r["round"]) for r in results["runs"])
  assert trained == [("imp", 0), ("imp", 1), ("random_mask", 1), ("reinit", 1)]
  by_arm = {(r["arm"], r["round"]): r for r in results["runs"]}
  # LeNet pruned 40/40/20% on 64 inputs: 60% of 19,200 and 30,000, 80% of
  # 1,000 weights.
  layers = by_arm[("imp", 1)]["layers"]
  assert [layers[f"fc{i}/kernel"]["kept"] for i in (1, 2, 3)] == [
    11_520,
    18_000,
    800,
  ]
  for arm in ("reinit", "random_mask"):
    assert by_arm[(arm, 1)]["layers"] == layers
  # A kept weight is a multiply-add per example; a training runs its steps
  # (rewind step to 100) at fixed masks: 3 per kept weight and example.
  config = json.loads((workdir / "config.json").read_text())
  examples = config["train"]["batch_size"] * (100 - config["rewind_step"])
  for (_, rnd), r in by_arm.items():
    kept = 50_200 if rnd == 0 else 30_320
    assert r["inference_flops"] == {
      "dense": 50_200,
      "effective": kept,
      "relative": kept / 50_200,
    }
    assert r["training_flops"]["dense"] == 3 * 50_200 * examples
    assert r["training_flops"]["effective"] == 3 * kept * examples
  imp = {r["round"]: r for r in results["summary"] if r["arm"] == "imp"}
  assert imp[1]["imp_training_mean"] == pytest.approx(1 + 30_320 / 50_200)
  assert "| IMP rounds' training |" in (workdir / "results.md").read_text()
  for r in results["runs"]:
    assert 0 <= r["early_stop_step"] <= 100
    assert 0.0 <= r["early_stop_test_accuracy"] <= 1.0
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 4 * 5  # steps 0, 25, ..., 100 of four trainings


def test_final_weights_and_masks_of_every_training_are_kept(quick_run):
  workdir, stdout = quick_run
  assert f"weights: {workdir}/seed<n>/<arm>_round<r>.npz" in stdout
  assert not (workdir / "seed0" / "checkpoints").exists()
  results = json.loads((workdir / "results.json").read_text())
  config = _config("lenet300_digits", "quick")
  test = load("digits", seed=0, test_size=config.dataset.get("test_size")).test
  model = LeNet300(num_classes=10)
  for run in results["runs"]:
    name = f"{run['arm']}_round{run['round']:02d}.npz"
    variables, masks = load_trained(str(workdir / "seed0" / name))
    kept = {}
    for path, mask in jax.tree.leaves_with_path(masks):
      weights = variables["params"]
      for part in path_str(path).split("/"):
        weights = weights[part]
      assert not weights[~mask].any()  # pruned weights are zero
      kept[path_str(path)] = int(mask.sum())
    assert kept == {p: layer["kept"] for p, layer in run["layers"].items()}
    # The kept model scores the recorded final accuracy (numpy argmax on
    # the whole test split, up to one image of rounding).
    logits = np.asarray(model.apply(variables, test.images, train=False))
    accuracy = np.mean(logits.argmax(-1) == test.labels)
    assert abs(accuracy - run["final_test_accuracy"]) <= 1 / len(test.labels)


def test_rerun_skips_finished_work_and_retrains_missing_rounds(
  quick_run, capsys
):
  workdir, _ = quick_run
  before = json.loads((workdir / "results.json").read_text())
  metrics = (workdir / "metrics.jsonl").read_text()
  os.remove(workdir / "seed0" / "reinit_round01.json")
  after = lottery.run(_config("lenet300_digits", "quick"), str(workdir))
  assert after == before
  assert (workdir / "metrics.jsonl").read_text() == metrics
  assert (
    f"resuming in {workdir}: 3 of 4 trainings done" in capsys.readouterr().out
  )
  lottery.run(_config("lenet300_digits", "quick"), str(workdir))
  assert capsys.readouterr().out == (
    f"{workdir} is finished (4 of 4 trainings); results in "
    f"{workdir / 'results.md'}\n"
  )


def test_a_different_config_is_refused(quick_run):
  workdir, _ = quick_run
  config = _config("lenet300_digits", "quick")
  config.train.steps = 50
  with pytest.raises(ValueError, match=r"different config.*train.steps"):
    lottery.run(config, str(workdir))


@pytest.mark.parametrize(
  "name",
  [
    "lenet300_digits",
    "lenet300_mnist",
    "lenet300_fashion_mnist",
    "lenet300_fashion_mnist_global",
    "conv2_fashion_mnist",
    "conv4_fashion_mnist",
    "conv6_fashion_mnist",
  ],
)
def test_configs_load_with_their_quick_preset(name):
  for arg in (None, "quick"):
    config = _config(name, arg)
    assert set(config) == {
      "dataset",
      "model",
      "optimizer",
      "train",
      "pruning",
      "rounds",
      "rewind_step",
      "arms",
      "seeds",
      "parallel",
      "shard_params",
      "distributed",
    }
  with pytest.raises(ValueError, match="quick"):
    _config(name, "nonsense")
