"""Inference and training FLOPs of an experiment's trainings, for results.

Both in multiply-adds (one per weight and output position, the unit of
`jaxprune.flops`), each with its dense counterpart and the ratio:

- inference: one example's forward pass at the final masks;
- training: the run's steps by the RigL paper's accounting, as the trainer
  measured them at the masks in force step by step (`train_macs` of its
  records, `jaxprune.train.cost`), against dense training of a given
  number of steps.
"""

import numpy as np

from jaxprune.core.types import Masks
from jaxprune.train import Trainer
from jaxprune.train.cost import ForwardCost, kept_counts


def _ratio(dense: int, effective: int) -> dict:
  return {"dense": dense, "effective": effective, "relative": effective / dense}


def inference(trainer: Trainer, masks: Masks) -> dict:
  """`dense`, `effective` (at `masks`) and `relative` multiply-adds of one
  example's forward pass through `trainer`'s model."""
  counts = np.asarray(kept_counts(masks))[None]
  cost = ForwardCost(trainer.flops, masks)
  return _ratio(trainer.flops.dense, int(cost.forward(counts)[0]))


def training(trainer: Trainer, history: list[dict], dense_steps: int) -> dict:
  """`effective`: the multiply-adds of the training `history` records
  (its last `train_macs`); `dense`: those of `dense_steps` dense steps at
  the trainer's batch size; `relative`, their ratio."""
  dense = 3 * trainer.flops.dense * trainer.batch_size * dense_steps
  return _ratio(dense, int(history[-1]["train_macs"]))
