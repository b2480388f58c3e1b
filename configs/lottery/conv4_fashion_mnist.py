r"""Conv4 lottery tickets on Fashion-MNIST (the paper's CIFAR recipe).

  python -m launch.lottery \
    --config=configs/lottery/conv4_fashion_mnist.py \
    --workdir=/tmp/lottery_conv4_fashion_mnist

The LTH paper's CIFAR-10 recipe for Conv4 (Adam 3e-4, batch 60, conv
10% / dense 20% / output 10% per round, rewind to theta_0) on 28x28
Fashion-MNIST, shortened from 25,000 to 5,000 iterations per round, 8
rounds (conv weights down to 48%, dense to 21%), one seed.

Runtime: a GPU job. On 2 CPU cores one iteration takes about 1.5 s
(measured; XLA:CPU convolutions, one step per dispatch) and an evaluation of
the 15k validation and test images about 10 s, so the 22 trainings take
about 45 hours. Expect the tickets to keep the dense accuracy (not measured
here) to low densities and the controls to fall below it earlier. `:quick`:
2 rounds of 20 iterations, a few minutes on CPU.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  config = ml_collections.ConfigDict()
  config.dataset = dict(name="fashion_mnist", seed=0)
  config.model = dict(name="conv4")
  config.optimizer = dict(name="adam", learning_rate=3e-4)
  config.train = dict(
    steps=5000,
    batch_size=60,
    eval_every=500,
    steps_per_dispatch=1,
    checkpoint_every=1000,
    eval_batch_size=1000,
  )
  # The LTH paper's rates for Conv4: conv 10%, dense 20%, output 10%.
  config.pruning = dict(
    rate=0.2, rates={"conv": 0.1, "fc3": 0.1}, layerwise=True, exclude=()
  )
  config.rounds = 8
  config.rewind_step = 0
  config.arms = ("imp", "reinit", "random_mask")
  config.seeds = (0,)
  if arg == "quick":
    config.train.steps = 20
    config.train.eval_every = 10
    config.train.checkpoint_every = 10
    config.rounds = 2
    config.seeds = (0,)
  elif arg:
    raise ValueError(f"unknown preset {arg!r}; known: 'quick'")
  return config
