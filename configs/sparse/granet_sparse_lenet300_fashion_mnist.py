r"""GraNet sparse-to-sparse, LeNet-300-100 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/granet_sparse_lenet300_fashion_mnist.py \
    --workdir=/tmp/sparse_granet_sparse_lenet300_fashion_mnist

From a random ERK mask at 50% sparsity, global magnitude pruning on the cubic
schedule from step 500 to 2,500, every 100 steps, to 90%, with per-layer
regeneration until the end; early stopping looks after step 2,500 (the last
pruning update). The lottery recipe (Adam 1.2e-3, batch 60, 5,000 steps,
evaluation every 250); two seeds of 15-30 s each on 2 shared CPU cores (RigL,
GraNet measured: 14-21 s of training, 17-32 s with start-up). `:quick`: 500
steps, one seed. `:sparsity=0.95` (or `--config.sparsity=0.95`) moves the
target.
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; presets `quick` and `sparsity=S`, comma-separated."""
  config = recipe("granet_sparse", dataset="fashion_mnist")
  return preset(config, arg, steps=500, checkpoint_every=250)
