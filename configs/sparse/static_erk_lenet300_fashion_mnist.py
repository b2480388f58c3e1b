r"""Static random masks, ERK ratios, LeNet-300-100 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/static_erk_lenet300_fashion_mnist.py \
    --workdir=/tmp/sparse_static_erk_lenet300_fashion_mnist

A random mask drawn before step 0 (`tx.init`) with ERK layer ratios (at 90%: fc1
keeps 8.0%, fc2 23.0%, fc3 all), never changed. The lottery recipe (Adam 1.2e-3,
batch 60, 5,000 steps, evaluation every 250); two seeds of 15-30 s each on 2
shared CPU cores (RigL, GraNet measured: 14-21 s of training, 17-32 s with
start-up). `:quick`: 500 steps, one seed. `:sparsity=0.95` (or
`--config.sparsity=0.95`) moves the target.
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; presets `quick` and `sparsity=S`, comma-separated."""
  config = recipe("static_erk", dataset="fashion_mnist")
  return preset(config, arg, steps=500, checkpoint_every=250)
