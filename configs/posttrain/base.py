"""What the post-training configs share: the grid and the presets."""

from typing import Any

import ml_collections

from jaxprune.experiments.posttrain import parse_target

METHODS = ("magnitude", "wanda", "sparsegpt")
TARGETS = ("0.5", "0.6", "0.7", "0.8", "2:4", "4:8")


def grid(name: str, task: str, **calibration) -> ml_collections.ConfigDict:
  """Magnitude, Wanda and SparseGPT at 50-80% and 2:4, 4:8, sequential,
  128 calibration examples in batches of 32 from seed 0."""
  config = ml_collections.ConfigDict()
  config.name = name
  config.task = task
  config.methods = METHODS
  config.targets = TARGETS
  config.sequential = True
  config.exclude = ()
  config.nm_exclude = ()
  config.prune_head = False
  config.calibration = dict(size=128, batch_size=32, seeds=(0,), **calibration)
  config.evaluation = dict(size=0, batch_size=250)
  return config


def preset(
  config: ml_collections.ConfigDict, arg: str | None, **quick
) -> ml_collections.ConfigDict:
  """Applies the comma-separated presets in `arg`.

  `quick`: `config` updated with the nested `quick` overrides (small
  settings for a smoke run); `method=M`: that method only (repeatable);
  `sparsity=S` and `nm=N:M`: those targets only (repeatable, together).

  Raises:
    ValueError: for an unknown preset or a bad value, naming it.
  """
  methods, targets = [], []
  for item in filter(None, (arg or "").split(",")):
    name, _, value = item.partition("=")
    if item == "quick":
      config.update(quick)
    elif name == "method" and value:
      methods.append(value)
    elif name in ("sparsity", "nm") and value:
      parse_target(value)
      if (":" in value) != (name == "nm"):
        raise ValueError(f"preset {item!r}: expected sparsity=S or nm=N:M")
      targets.append(value)
    else:
      raise ValueError(
        f"unknown preset {item!r}; known: 'quick', 'method=<name>', "
        "'sparsity=<float>', 'nm=<N>:<M>'"
      )
  if methods:
    config.methods = tuple(methods)
  if targets:
    config.targets = tuple(targets)
  return config


def classifier(
  name: str, dense: Any, arg: str | None
) -> ml_collections.ConfigDict:
  """The grid for an image classifier trained by the sparse-training config
  module `dense` (its quick run under the `quick` preset, one seed, in the
  config's own workdir), evaluated on the whole test split in batches of
  1,000 and fine-tuned for 500 steps of Adam 3e-4 at batch 60 under the
  fixed masks. The caller applies `preset` last."""
  quick = "quick" in (arg or "").split(",")
  config = grid(name, "classifier")
  config.dense = dense.get_config("quick" if quick else None)
  config.dense.seeds = (0,)
  config.dense_workdir = ""
  config.evaluation.batch_size = 1000
  config.finetune = dict(steps=500, learning_rate=3e-4, batch_size=60)
  return config


QUICK_CLASSIFIER = dict(
  calibration=dict(size=16, batch_size=8),
  finetune=dict(steps=20),
  targets=("0.5", "2:4"),
)
"""The `quick` preset's overrides for `classifier` configs."""
