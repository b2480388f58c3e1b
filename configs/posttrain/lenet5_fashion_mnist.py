r"""Post-training pruning of LeNet-5 on Fashion-MNIST.

  python -m launch.posttrain \
    --config=configs/posttrain/lenet5_fashion_mnist.py \
    --workdir=/tmp/posttrain_lenet5_fashion_mnist

The dense model is `configs/sparse/dense_lenet5_fashion_mnist.py`'s (seed
0, 3,000 steps), trained in `<workdir>/dense` first unless
`--config.dense_workdir` points to a finished run of it. Magnitude, Wanda
and SparseGPT at 50-80% and 2:4, 4:8 on conv1, conv2, fc1 and fc2 (the head
fc3 stays dense; under N:M the convolutions too, as their input widths 25
and 150 are no multiple of 4 or 8), sequential, calibration 128 random
training images (seed 0): test accuracy without retraining and after 500
steps of Adam 3e-4 under the fixed masks.

Presets: `quick` (the quick dense run, 16 calibration images, a 20-step
fine-tune, 50% and 2:4), `method=M`, `sparsity=S`, `nm=N:M`.
"""

import ml_collections

from configs.posttrain.base import QUICK_CLASSIFIER, classifier, preset
from configs.sparse import dense_lenet5_fashion_mnist as dense


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = classifier("lenet5_fashion_mnist", dense, arg)
  config.nm_exclude = ("conv1", "conv2")
  return preset(config, arg, **QUICK_CLASSIFIER)
