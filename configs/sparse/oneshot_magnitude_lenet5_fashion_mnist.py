r"""One-shot magnitude pruning + fine-tuning, LeNet-5 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/oneshot_magnitude_lenet5_fashion_mnist.py \
    --workdir=/tmp/sparse_oneshot_magnitude_lenet5_fashion_mnist

Dense training to step 1,500, per-layer magnitude pruning once at step
1,500, fine-tuning under the fixed masks to step 3,000.
LeNet-5 (`jaxprune.models.LeNet5`) with the LeNet-300-100 recipe (Adam
1.2e-3, batch 60, evaluation every 250) for 3,000 steps, two seeds, target
90%; one step per dispatch. About 50 s of training per seed on 2
CPU cores (docs/results/lenet5_fashion_mnist.md).
Presets, comma-separated: `quick` (20 steps, one seed: a smoke run),
`sparsity=S`, `nm=2:4` / `nm=1:4` (N:M along each kernel's input axis;
conv1 and conv2, with 1 and 6 input channels, stay dense), `channel=0.5`
(whole output channels; the output layer stays dense), `global` (one
ranking of all weights).
"""

import ml_collections

from configs.sparse.base import CONV_QUICK, LENET5, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("oneshot_magnitude", dataset="fashion_mnist", **LENET5)
  return preset(config, arg, **CONV_QUICK)
