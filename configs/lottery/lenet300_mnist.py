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


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  config = ml_collections.ConfigDict()
  config.dataset = dict(name="mnist", seed=0)
  config.model = dict(name="lenet300")
  config.optimizer = dict(name="adam", learning_rate=1.2e-3)
  config.train = dict(
    steps=50_000,
    batch_size=60,
    eval_every=250,
    steps_per_dispatch=250,
    checkpoint_every=5000,
    eval_batch_size=1000,
  )
  # The LTH paper's layerwise rates: 20% of hidden, 10% of output weights.
  config.pruning = dict(
    rate=0.2, rates={"fc3": 0.1}, layerwise=True, exclude=()
  )
  config.rounds = 16
  config.rewind_step = 0
  config.arms = ("imp", "reinit", "random_mask")
  config.seeds = (0,)
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
