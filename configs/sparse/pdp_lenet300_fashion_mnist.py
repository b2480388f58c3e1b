r"""PDP soft masks (Cho et al. 2023), LeNet-300-100 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/pdp_lenet300_fashion_mnist.py \
    --workdir=/tmp/sparse_pdp_lenet300_fashion_mnist

Soft masks w * sigmoid((w^2 - t^2) / tau), tau = 1e-4, per-layer budgets
from one global magnitude ranking, the target ramping from step 500 to
2,500; hardened to exact counts at step 3,750, then fine-tuned under hard
masks; early stopping looks after step 3,750. A PDP step costs about 2x
a plain LeNet step on CPU (see docs/benchmarks.md).
The lottery recipe (Adam 1.2e-3, batch 60, 5,000 steps, evaluation every
250); two seeds of 15-30 s each on 2 shared CPU cores (RigL, GraNet
measured: 14-21 s of training, 17-32 s with start-up). `:quick`: 500 steps,
one seed. `:sparsity=0.95` (or `--config.sparsity=0.95`) moves the target.
Structured presets: `nm=2:4` / `nm=1:4` (N:M along each kernel's input
axis), `channel=0.5` (whole output channels; the output layer stays
dense); comma-separated (docs/results/pdp.md).
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("pdp", dataset="fashion_mnist")
  return preset(config, arg, steps=500, checkpoint_every=250)
