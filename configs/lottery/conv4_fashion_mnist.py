r"""Conv4 lottery tickets on Fashion-MNIST (the paper's CIFAR recipe).

  python -m launch.lottery \
    --config=configs/lottery/conv4_fashion_mnist.py \
    --workdir=/tmp/lottery_conv4_fashion_mnist

The LTH paper's CIFAR-10 recipe for Conv4 (Adam 3e-4, batch 60, conv
10% / dense 20% / output 10% per round, rewind to theta_0) on 28x28
Fashion-MNIST, shortened from 25,000 to 5,000 iterations per round, 8
rounds (conv weights down to 48%, dense to 21%), one seed.

Runtime: a GPU job. On 2 CPU cores one iteration took 0.31 s in session 11
(AMD EPYC; 60 more iterations of a one-round run took 18.4 s more; an
earlier session measured 1.5 s on another machine), XLA:CPU convolutions,
one step per dispatch, and an evaluation of the 15k validation and test
images about 14 s, so the 22 trainings take about 10 hours. Expect the
tickets to keep the dense accuracy (not measured here) to low densities and
the controls to fall below it earlier. `:quick`: 2 rounds of 20 iterations,
a few minutes on CPU.
"""

import ml_collections

from configs.lottery.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  # The LTH paper's rates for Conv4: conv 10%, dense 20%, output 10%.
  return preset(
    recipe(
      dataset="fashion_mnist",
      model="conv4",
      learning_rate=3e-4,
      eval_every=500,
      steps_per_dispatch=1,
      rates={"conv": 0.1, "fc3": 0.1},
      rounds=8,
    ),
    arg,
    steps=20,
    eval_every=10,
    checkpoint_every=10,
  )
