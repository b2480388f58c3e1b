r"""LeNet-5 on Fashion-MNIST, half of every layer's units removed.

  python -m launch.structured \
    --config=configs/structured/lenet5_fashion_mnist.py \
    --workdir=/tmp/structured_lenet5

The dense model is `configs/sparse/dense_lenet5_fashion_mnist.py`'s (seed 0,
3,000 steps of Adam), trained in `<workdir>/dense` first unless
`--config.dense_workdir` points to a finished run of it. Half of the
channels of conv1 and conv2 and of the units of fc1 and fc2 go (the head's
outputs are the classes), chosen by each score and followed by each
reconstruction (`jaxprune.experiments.structured_conv`); 512 random
training images calibrate; each compacted model is then fine-tuned for 300
steps of Adam 3e-4 at batch 60. Test accuracy on the 10,000 test images;
latency at batch 256. See docs/results/structured.md.

`:quick`: the dense quick run (20 steps), 32 calibration images, the
activation score, 200 test images, a 5-step fine-tune: a smoke run.
"""

import ml_collections

from configs.sparse import dense_lenet5_fashion_mnist as dense
from configs.structured import conv


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; preset `quick`."""
  return conv.config("lenet5_fashion_mnist", dense, arg)
