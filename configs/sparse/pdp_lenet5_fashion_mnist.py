r"""PDP soft masks (Cho et al. 2023), LeNet-5 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/pdp_lenet5_fashion_mnist.py \
    --workdir=/tmp/sparse_pdp_lenet5_fashion_mnist

Soft masks w * sigmoid((w^2 - t^2) / tau), tau = 1e-4, per-layer budgets
from one global magnitude ranking (per layer for the structured presets),
the target ramping from step 300 to 1,500; hardened to exact counts at step
2,250, then fine-tuned under hard masks.
LeNet-5 (`jaxprune.models.LeNet5`) with the LeNet-300-100 recipe (Adam
1.2e-3, batch 60, evaluation every 250) for 3,000 steps, two seeds, target
90%; one step per dispatch. About 50 s of training per seed on 2
CPU cores (docs/results/lenet5_fashion_mnist.md).
Presets, comma-separated: `quick` (20 steps, one seed: a smoke run),
`sparsity=S`, `nm=2:4` / `nm=1:4` (N:M along each kernel's input axis;
conv1 and conv2, with 1 and 6 input channels, stay dense), `channel=0.5`
(whole output channels; the output layer stays dense).
"""

import ml_collections

from configs.sparse.base import CONV_QUICK, LENET5, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("pdp", dataset="fashion_mnist", **LENET5)
  return preset(config, arg, **CONV_QUICK)
