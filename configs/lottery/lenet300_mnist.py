r"""LeNet-300-100 lottery tickets on MNIST: the LTH paper's full recipe.

  python -m launch.lottery \
    --config=configs/lottery/lenet300_mnist.py \
    --workdir=/tmp/lottery_lenet300_mnist

Adam 1.2e-3, batch 60, 50,000 iterations per round, layerwise 20% / 20% /
10%, rewind to theta_0, early stop at the minimum validation loss (55k / 5k /
10k). Needs the MNIST IDX files in /usr/share/datasets/mnist (not installed
on the CI machines). 16 rounds with both controls: 46 trainings of about a
minute each on 2 CPU cores, about 50 minutes per seed. Expected (Frankle &
Carbin 2019, Figure 3): about 98% test accuracy dense, tickets at 51.3% and
21.1% learning faster and slightly better, reinit controls degrading early.
`:quick`: 2 rounds of 500 iterations.
"""

import ml_collections

from configs.lottery.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  # The LTH paper's layerwise rates: 20% of hidden, 10% of output weights.
  return preset(
    recipe(dataset="mnist", steps=50_000, checkpoint_every=5000),
    arg,
    steps=500,
    checkpoint_every=250,
  )
