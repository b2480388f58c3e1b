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
  # open_lth: global 20% per level, the output layer ignored.
  config.pruning = dict(rate=0.2, rates={}, layerwise=False, exclude=("fc3",))
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
