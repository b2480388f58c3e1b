r"""Static random masks, ERK ratios, LeNet-5 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/static_erk_lenet5_fashion_mnist.py \
    --workdir=/tmp/sparse_static_erk_lenet5_fashion_mnist

A random mask drawn before step 0 (`tx.init`) with ERK layer ratios (the
kernel's four dimensions for convolutions), never changed.
LeNet-5 (`jaxprune.models.LeNet5`) with the LeNet-300-100 recipe (Adam
1.2e-3, batch 60, evaluation every 250) for 3,000 steps, two seeds, target
90%; one step per dispatch. About 50 s of training per seed on 2
CPU cores (docs/results/lenet5_fashion_mnist.md).
Presets, comma-separated: `quick` (20 steps, one seed: a smoke run),
`sparsity=S`.
"""

import ml_collections

from configs.sparse.base import CONV_QUICK, LENET5, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("static_erk", dataset="fashion_mnist", **LENET5)
  return preset(config, arg, **CONV_QUICK)
