r"""Dense LeNet-300-100 on Fashion-MNIST: the reference.

  python -m launch.train \
    --config=configs/sparse/dense_lenet300_fashion_mnist.py \
    --workdir=/tmp/sparse_dense_lenet300_fashion_mnist

No pruning (the 'fixed' pruner keeps every weight): the accuracy the sparse
methods are measured against, about 88% at this budget (the lottery
reproduction's round 0). No sparsity to set. The lottery recipe (Adam
1.2e-3, batch 60, 5,000 steps, evaluation every 250); two seeds of 15-30 s
each on 2 shared CPU cores (RigL, GraNet measured: 14-21 s of training,
17-32 s with start-up). `:quick`: 500 steps, one seed.
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; presets `quick` and `sparsity=S`, comma-separated."""
  config = recipe("dense", dataset="fashion_mnist")
  return preset(config, arg, steps=500, checkpoint_every=250)
