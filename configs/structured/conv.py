"""What the image classifiers' structured configs share."""

from typing import Any

import ml_collections


def config(name: str, dense: Any, arg: str | None) -> ml_collections.ConfigDict:
  """Half of every group's units removed, four scores x three
  reconstructions, 512 calibration images (seed 0), a 300-step fine-tune
  of Adam 3e-4 at batch 60 of each compacted model, latency at batch 256
  (7 interleaved repetitions). `dense` is the sparse-training config module
  of the dense model (its quick run under the `quick` preset, one seed).

  Raises:
    ValueError: for an unknown preset.
  """
  if arg not in (None, "", "quick"):
    raise ValueError(f"unknown preset {arg!r}: expected 'quick' or none")
  quick = arg == "quick"
  c = ml_collections.ConfigDict()
  c.kind = "conv"
  c.name = name
  c.dense = dense.get_config("quick" if quick else None)
  c.dense.seeds = (0,)
  c.dense_workdir = ""
  c.fraction = 0.5
  c.scores = ("magnitude", "activation", "fisher", "random")
  c.methods = ("none", "rescale", "liar")
  c.calibration = dict(size=512, batch_size=64, seed=0)
  # size: test images evaluated (0: all).
  c.evaluation = dict(size=0, batch_size=1000)
  c.finetune = dict(steps=300, learning_rate=3e-4, batch_size=60)
  c.ridge = 1e-3
  c.latency = dict(batch=256, repeats=7)
  if quick:
    c.scores = ("activation",)
    c.calibration.update(size=32, batch_size=16)
    c.evaluation.update(size=200, batch_size=100)
    c.finetune.steps = 5
    c.latency.update(batch=16, repeats=1)
  return c
