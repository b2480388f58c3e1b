r"""GraNet sparse-to-sparse, Conv-4 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/granet_sparse_conv4_fashion_mnist.py \
    --workdir=/tmp/sparse_granet_sparse_conv4_fashion_mnist

From a random ERK mask at 50% sparsity (drawn by `tx.init`), global
magnitude pruning on the cubic schedule from step 500 to 2,500, every 100
steps, with per-layer regeneration until the end; early stopping looks
after step 2,500 (the last pruning update).
Conv-4 (LTH paper), Adam 3e-4, batch 60, 5,000 steps, evaluation every 500,
two seeds, target 90%.

Runtime: a GPU job, not run here. On 2 CPU cores a Conv-4 step takes about
0.36 s in the trainer (XLA:CPU convolutions, one step per dispatch) and an
evaluation of the 15k validation and test images about 14 s: about 35
minutes per training.
Presets, comma-separated: `quick` (20 steps, one seed: a smoke run),
`sparsity=S`.
"""

import ml_collections

from configs.sparse.base import CONV4, CONV_QUICK, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("granet_sparse", dataset="fashion_mnist", **CONV4)
  return preset(config, arg, **CONV_QUICK)
