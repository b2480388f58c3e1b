r"""ResNet-20 on Fashion-MNIST, half of every channel group removed.

  python -m launch.structured \
    --config=configs/structured/resnet20_fashion_mnist.py \
    --workdir=/tmp/structured_resnet20

The dense model is `configs/sparse/dense_resnet20_fashion_mnist.py`'s (800
steps of Adam at batch 128), trained in `<workdir>/dense` first unless
`--config.dense_workdir` points to a finished run of it. Half of the
channels of every group go: each block's inner convolution and the three
stretches of the residual stream (the stem's 16 channels, carried through
all stages, and the 16 and 32 each widening shortcut adds), removed in
every block that writes them. Scores and reconstructions as
`lenet5_fashion_mnist.py` (`jaxprune.experiments.structured_conv`), with
256 calibration images and a 200-step fine-tune; BatchNorm'd convolutions
take LIAR's intercept through the norm's running mean. See
docs/results/structured.md.

`:norms`: the magnitude and activation scores, no reconstruction and the
fold-in, each compacted model's BatchNorm statistics then re-estimated on
the calibration images (`structured_conv.recalibrate`, 10 passes).

`:quick`: the dense model trained for 20 steps on the bundled 8x8 digits,
16 calibration images, the activation score, a 5-step fine-tune: a smoke
run (minutes: ResNet-20's reconstruction traces the model once a group).
"""

import ml_collections

from configs.sparse import dense_resnet20_fashion_mnist as dense
from configs.structured import conv


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; presets `quick` and `norms`."""
  config = conv.config(
    "resnet20_fashion_mnist", dense, None if arg == "norms" else arg
  )
  # A ResNet-20 step costs about 30 LeNet-5 steps: half the calibration
  # images and a 200-step fine-tune keep the run near an hour here.
  config.calibration.size = 256
  config.finetune.steps = 200
  if arg == "norms":
    # BatchNorm statistics re-estimated after pruning: 10 passes over the
    # 4 calibration batches (the running averages keep 0.9^40 = 1.5% of
    # the dense statistics).
    config.norm_passes = 10
    config.scores = ("magnitude", "activation")
    config.methods = ("none", "liar")
  if arg == "quick":
    config.dense.dataset.name = "digits"
    config.dense.train.batch_size = 32
    config.calibration.size = 16
  return config
