r"""Dense LeNet-5 on Fashion-MNIST: the reference.

  python -m launch.train \
    --config=configs/sparse/dense_lenet5_fashion_mnist.py \
    --workdir=/tmp/sparse_dense_lenet5_fashion_mnist

No pruning (the 'fixed' pruner keeps every weight): the accuracy the sparse
methods are measured against. No sparsity to set.
LeNet-5 (`jaxprune.models.LeNet5`) with the LeNet-300-100 recipe (Adam
1.2e-3, batch 60, evaluation every 250) for 3,000 steps, two seeds;
one step per dispatch. About 50 s of training per seed on 2 CPU
cores (docs/results/lenet5_fashion_mnist.md).
Preset: `quick` (20 steps, one seed: a smoke run).
"""

import ml_collections

from configs.sparse.base import CONV_QUICK, LENET5, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("dense", dataset="fashion_mnist", **LENET5)
  return preset(config, arg, **CONV_QUICK)
