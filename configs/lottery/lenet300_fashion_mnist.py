r"""LeNet-300-100 lottery tickets on Fashion-MNIST: the reproduction.

  python -m launch.lottery \
    --config=configs/lottery/lenet300_fashion_mnist.py \
    --workdir=/tmp/lottery_lenet300_fashion_mnist

The LTH paper's LeNet recipe (Adam 1.2e-3, batch 60, layerwise 20% / 20% /
10% per round, rewind to theta_0, early stop at the minimum validation loss,
55k / 5k / 10k split) shortened to 5,000 iterations per round, evaluated every
250. 16 rounds take the tickets from 100% to 3.6% of the weights; with both
controls that is 46 trainings of about 6 s each per seed on 2 CPU cores:
about 5 minutes per seed, 10 for the two seeds. The dense net reaches about
88% test accuracy; expect the tickets to hold it far below 21% of the
weights while the controls fall away. `:quick`: 2 rounds of 500 iterations.
"""

import ml_collections

from configs.lottery.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  # The LTH paper's layerwise rates: 20% of hidden, 10% of output weights.
  return preset(
    recipe(dataset="fashion_mnist", seeds=(0, 1)),
    arg,
    steps=500,
    checkpoint_every=250,
  )
