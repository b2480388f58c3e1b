"""The conv nets' structured experiment: the quick LeNet-5 run through the
launcher, the table, bad configs, and ResNet-20 halved group by group
(the real runs are in docs/results/structured.md)."""

import importlib
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune.compact import compact_model, find_groups
from jaxprune.data import idx
from jaxprune.experiments import structured_conv
from jaxprune.models import ResNet20
from jaxprune.posttrain import unit_scores

ROOT = structured_conv.__file__.rsplit("/jaxprune/", 1)[0]
FASHION = idx.DEFAULT_DIRS["fashion_mnist"]


def _config(name, arg=None):
  return importlib.import_module(f"configs.structured.{name}").get_config(arg)


@pytest.mark.skipif(
  not os.path.isdir(FASHION),
  reason=f"{FASHION} is absent (apt-get install dataset-fashion-mnist)",
)
def test_launch_lenet5_quick_halves_every_layer_and_resumes(tmp_path):
  command = [
    sys.executable,
    "-m",
    "launch.structured",
    "--config=configs/structured/lenet5_fashion_mnist.py:quick",
    f"--workdir={tmp_path}",
  ]
  run = lambda: subprocess.run(
    command, cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  out = run()
  assert out.returncode == 0, out.stderr[-3000:]
  assert "| activation |" in out.stdout
  records = json.loads((tmp_path / "results.json").read_text())["records"]
  assert [(r["score"], r["method"]) for r in records] == [
    ("dense", "-"),
    ("activation", "none"),
    ("activation", "rescale"),
    ("activation", "liar"),
  ]
  # By hand: 3 and 8 filters of 5x5 (SAME, then VALID: 5x5x8 = 200 inputs
  # to fc1), 60 and 42 units, 10 classes.
  params = (25 * 3 + 3) + (75 * 8 + 8) + (200 * 60 + 60) + (60 * 42 + 42)
  params += 42 * 10 + 10
  macs = 28 * 28 * 3 * 25 + 10 * 10 * 8 * 75 + 200 * 60 + 60 * 42 + 42 * 10
  dense_macs = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84
  assert records[0]["macs"] == dense_macs + 84 * 10
  assert records[0]["params"] == 61_706
  for r in records[1:]:
    assert (r["params"], r["macs"]) == (params, macs)
    assert r["compact_error"] < 1e-4
    assert 0 <= r["accuracy"] <= 1 and 0 <= r["finetuned_accuracy"] <= 1
  for name in ("results.md", "structured.png", "metrics.jsonl"):
    assert (tmp_path / name).exists()
  again = run()  # everything is in metrics.jsonl: nothing reruns
  assert again.returncode == 0, again.stderr[-3000:]
  assert "activation none:" not in again.stdout


def test_table_reads_accuracy_pairs_and_ratios():
  dense = {"score": "dense", "method": "-", "accuracy": 0.9, "params": 100}
  dense["macs"] = 1000
  pruned = {"params": 30, "macs": 250, "speedup": 2.5}
  records = [
    dense,
    {"score": "magnitude", "method": "none", "accuracy": 0.5, **pruned},
    {"score": "magnitude", "method": "liar", "accuracy": 0.8, **pruned},
  ]
  records[1]["finetuned_accuracy"] = 0.85
  records[2]["finetuned_accuracy"] = 0.875
  lines = structured_conv.table(records).splitlines()
  assert lines[2] == "| dense | 90.00 | | 100 | 1.00 | 1.00 |"
  assert lines[3] == (
    "| magnitude | 50.00 / 85.00 | 80.00 / 87.50 | 30 | 4.00 | 2.50 |"
  )


@pytest.mark.parametrize(
  "key, value, message",
  [
    ("fraction", 1.0, r"config.fraction = 1.0: expected"),
    ("scores", ("l1",), r"config.scores = \('l1',\)"),
    ("methods", (), r"config.methods = \(\): expected a non-empty"),
  ],
)
def test_bad_configs_are_named_before_anything_runs(
  tmp_path, key, value, message
):
  config = _config("resnet20_fashion_mnist", "quick")
  config[key] = value
  with pytest.raises(ValueError, match=message):
    structured_conv.run(config, str(tmp_path))
  assert not list(tmp_path.iterdir())


def test_unknown_preset_is_named():
  with pytest.raises(ValueError, match="unknown preset 'fast'"):
    _config("lenet5_fashion_mnist", "fast")


def test_resnet20_halved_in_every_group_keeps_half_of_each_stage():
  model, x = ResNet20(), jnp.zeros((1, 8, 8, 1))
  v = model.init(jax.random.key(0), x)
  units = find_groups(model.apply, v, x)
  scores = [jnp.arange(g.size, dtype=jnp.float32) for g in units.groups]
  masks = unit_scores.select(v, units, scores, 0.5)
  small, small_v = compact_model(model, v, masks, x)
  # The stream groups: the stem's 16 channels (all stages), the 16 and 32
  # each widening shortcut adds; halved: 8, 8 + 8, 8 + 8 + 16.
  assert small.stream == (8, 16, 32)
  assert small.inner == (8, 8, 8, 16, 16, 16, 32, 32, 32)
  logits = small.apply(small_v, np.ones((2, 8, 8, 1), np.float32))
  assert logits.shape == (2, 10)


class _Normed(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    y = nn.Dense(3, name="fc")(x)
    bn = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")
    return bn(y)


def test_recalibrate_sets_the_running_statistics_to_the_batches():
  rng = np.random.default_rng(0)
  x = (rng.normal(size=(16, 4)) * 2 + 1).astype(np.float32)
  model = _Normed()
  v = model.init(jax.random.key(0), x)
  out = structured_conv.recalibrate(model, v, [x[:8], x[8:]], passes=200)
  p = jax.tree.map(np.asarray, v["params"])
  y = x.astype(np.float64) @ p["fc"]["kernel"] + p["fc"]["bias"]
  # Alternating two batches: the averages settle between their statistics,
  # 1 / 1.9 and 0.9 / 1.9 of the last and the previous batch's (momentum
  # 0.9: each update keeps 0.9 of the average).
  halves = y[:8], y[8:]
  mean = (halves[1].mean(0) + 0.9 * halves[0].mean(0)) / 1.9
  var = (halves[1].var(0) + 0.9 * halves[0].var(0)) / 1.9
  stats = out["batch_stats"]["bn"]
  np.testing.assert_allclose(stats["mean"], mean, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(stats["var"], var, rtol=1e-4, atol=1e-5)
  assert out["params"] is v["params"]
