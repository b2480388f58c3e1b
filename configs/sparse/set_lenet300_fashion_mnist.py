r"""SET, LeNet-300-100 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/set_lenet300_fashion_mnist.py \
    --workdir=/tmp/sparse_set_lenet300_fashion_mnist

A random ERK mask at 90% sparsity, drawn by `tx.init`; every 100 steps until
3,750 each layer drops its smallest weights (30%, cosine-decayed) and regrows as
many at random positions. The lottery recipe (Adam 1.2e-3, batch 60, 5,000
steps, evaluation every 250); two seeds of 15-30 s each on 2 shared CPU cores
(RigL, GraNet measured: 14-21 s of training, 17-32 s with start-up). `:quick`:
500 steps, one seed. `:sparsity=0.95` (or `--config.sparsity=0.95`) moves the
target.
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; presets `quick` and `sparsity=S`, comma-separated."""
  config = recipe("set", dataset="fashion_mnist")
  return preset(config, arg, steps=500, checkpoint_every=250)
