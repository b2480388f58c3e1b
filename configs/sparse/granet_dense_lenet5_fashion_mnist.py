r"""GraNet from dense, LeNet-5 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/granet_dense_lenet5_fashion_mnist.py \
    --workdir=/tmp/sparse_granet_dense_lenet5_fashion_mnist

Global magnitude pruning on the cubic schedule from step 300 to 1,500,
every 100 steps, with per-layer regeneration (rate 0.5 cosine-decayed to
0.005, grown by gradient) until the end; early stopping looks after step
1,500, the last pruning update.
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
  config = recipe("granet_dense", dataset="fashion_mnist", **LENET5)
  return preset(config, arg, **CONV_QUICK)
