r"""SynFlow at initialization, Conv-4 on Fashion-MNIST.

  python -m launch.train \
    --config=configs/sparse/synflow_conv4_fashion_mnist.py \
    --workdir=/tmp/sparse_synflow_conv4_fashion_mnist

Data-free masks from |dR/dw * w| (all-ones input), 100 rounds on the
exponential schedule, ranked globally, then fixed.
`--config.prune_at_init.shuffle=True` trains the layerwise-shuffle control.
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
  config = recipe("synflow", dataset="fashion_mnist", **CONV4)
  return preset(config, arg, **CONV_QUICK)
