r"""LeNet-300-100 lottery tickets on Fashion-MNIST, open_lth style.

  python -m launch.lottery \
    --config=configs/lottery/lenet300_fashion_mnist_global.py \
    --workdir=/tmp/lottery_lenet300_fashion_mnist_global

As lenet300_fashion_mnist.py, but pruned the open_lth way: 20% of all
remaining hidden-layer weights per round by one global magnitude ranking, the
output layer never pruned (weights remaining count fc1 and fc2 only). About
5 minutes per seed on 2 CPU cores; expect the tickets to keep about 88% test
accuracy far down, fc2 pruned faster than fc1 late in the run.
`:quick`: 2 rounds of 500 iterations.
"""

import ml_collections

from configs.lottery.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  # open_lth: global 20% per level, the output layer ignored.
  return preset(
    recipe(
      dataset="fashion_mnist",
      rates={},
      layerwise=False,
      exclude=("fc3",),
      seeds=(0, 1),
    ),
    arg,
    steps=500,
    checkpoint_every=250,
  )
