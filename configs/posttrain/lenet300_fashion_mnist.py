r"""Post-training pruning of LeNet-300-100 on Fashion-MNIST.

  python -m launch.posttrain \
    --config=configs/posttrain/lenet300_fashion_mnist.py \
    --workdir=/tmp/posttrain_lenet300_fashion_mnist

The dense model is `configs/sparse/dense_lenet300_fashion_mnist.py`'s (seed
0, 5,000 steps), trained in `<workdir>/dense` first unless
`--config.dense_workdir` points to a finished run of it. Magnitude, Wanda
and SparseGPT at 50-80% and 2:4 (not 4:8: fc2's input width 300 is no
multiple of 8) on fc1 and fc2 (the head fc3 stays dense), sequential,
calibration 128 random training images (seed 0): test accuracy without
retraining and after 500 steps of Adam 3e-4 under the fixed masks.

4:8 runs with fc2 left dense, said so by `config.nm_exclude` (in
config.json, and each run's `layers` list fc1 only):

  python -m launch.posttrain \
    --config=configs/posttrain/lenet300_fashion_mnist.py:nm=4:8 \
    --config.nm_exclude='("fc2",)' --workdir=/tmp/posttrain_lenet300_48

Presets: `quick` (the quick dense run, 16 calibration images, a 20-step
fine-tune, 50% and 2:4), `method=M`, `sparsity=S`, `nm=N:M`.
"""

import ml_collections

from configs.posttrain.base import QUICK_CLASSIFIER, classifier, preset
from configs.sparse import dense_lenet300_fashion_mnist as dense


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = classifier("lenet300_fashion_mnist", dense, arg)
  config.targets = tuple(t for t in config.targets if t != "4:8")
  return preset(config, arg, **QUICK_CLASSIFIER)
