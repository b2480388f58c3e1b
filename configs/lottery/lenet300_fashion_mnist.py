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


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  config = ml_collections.ConfigDict()
  config.dataset = dict(name="fashion_mnist", seed=0)
  config.model = dict(name="lenet300")
  config.optimizer = dict(name="adam", learning_rate=1.2e-3)
  config.train = dict(
    steps=5000,
    batch_size=60,
    eval_every=250,
    steps_per_dispatch=250,
    checkpoint_every=1000,
    eval_batch_size=1000,
  )
  # The LTH paper's layerwise rates: 20% of hidden, 10% of output weights.
  config.pruning = dict(
    rate=0.2, rates={"fc3": 0.1}, layerwise=True, exclude=()
  )
  config.rounds = 16
  config.rewind_step = 0
  config.arms = ("imp", "reinit", "random_mask")
  config.seeds = (0, 1)
  if arg == "quick":
    config.train.steps = 500
    config.train.eval_every = 250
    config.train.steps_per_dispatch = 250
    config.train.checkpoint_every = 250
    config.rounds = 2
    config.seeds = (0,)
  elif arg:
    raise ValueError(f"unknown preset {arg!r}; known: 'quick'")
  return config
