r"""LeNet-300-100 lottery tickets on the embedded 8x8 digits (no download).

  python -m launch.lottery \
    --config=configs/lottery/lenet300_digits.py \
    --workdir=/tmp/lottery_digits

The quick default: 16 rounds (100% down to 3.9% of the weights) of 300
iterations with both controls, one seed: about 20 s on 2 CPU cores (46
trainings). Measured: the tickets stay at 97-99% test accuracy down to 3.9%;
random masks fall to about 90% and random reinitialisation to about 94-95%
below 6% (300 test images: one image is 0.33%). `:quick` (2 rounds of 100
iterations) is the smoke test, about 10 s.
"""

import ml_collections

from configs.lottery.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg='quick'` gives a short smoke run."""
  # The LTH paper's layerwise rates: 20% of hidden, 10% of output weights.
  return preset(
    recipe(
      dataset="digits",
      steps=300,
      eval_every=25,
      steps_per_dispatch=25,
      checkpoint_every=100,
      eval_batch_size=500,
    ),
    arg,
    steps=100,
  )
