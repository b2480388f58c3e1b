r"""PDP soft masks (Cho et al. 2023), Conv-4 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/pdp_conv4_fashion_mnist.py \
    --workdir=/tmp/sparse_pdp_conv4_fashion_mnist

Soft masks w * sigmoid((w^2 - t^2) / tau), tau = 1e-4, per-layer budgets
from one global magnitude ranking (per layer for the structured presets),
the target ramping from step 500 to 2,500; hardened to exact counts at step
3,750, then fine-tuned under hard masks.
Conv-4 (LTH paper), Adam 3e-4, batch 60, 5,000 steps, evaluation every 500,
two seeds, target 90%.

Runtime: a GPU job, not run here. On 2 CPU cores a Conv-4 step takes about
0.36 s in the trainer (XLA:CPU convolutions, one step per dispatch) and an
evaluation of the 15k validation and test images about 14 s: about 35
minutes per training.
Presets, comma-separated: `quick` (20 steps, one seed: a smoke run),
`sparsity=S`, `nm=2:4` / `nm=1:4` (N:M along each kernel's input axis;
conv1, with one input channel, stays dense), `channel=0.5` (whole output
channels; the output layer stays dense).
"""

import ml_collections

from configs.sparse.base import CONV4, CONV_QUICK, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe("pdp", dataset="fashion_mnist", **CONV4)
  return preset(config, arg, **CONV_QUICK)
