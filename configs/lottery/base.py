"""What every lottery-ticket config shares: the LTH paper's LeNet recipe.

Each config file calls `recipe(...)` with what it changes and `preset(...)`
for its `:arg` presets; the keys are the ones
`jaxprune.experiments.lottery.run` reads.
"""

import ml_collections

from configs import parallel


def recipe(
  *,
  dataset: str,
  model: str = "lenet300",
  learning_rate: float = 1.2e-3,
  steps: int = 5000,
  eval_every: int = 250,
  steps_per_dispatch: int = 250,
  checkpoint_every: int = 1000,
  eval_batch_size: int = 1000,
  rate: float = 0.2,
  rates: dict | None = None,
  layerwise: bool = True,
  exclude: tuple[str, ...] = (),
  rounds: int = 16,
  seeds: tuple[int, ...] = (0,),
) -> ml_collections.ConfigDict:
  """Adam, batch 60, rewind to theta_0, IMP with both controls."""
  config = ml_collections.ConfigDict()
  # data_dir: the folder of local files (IDX, TFDS); empty for the default.
  config.dataset = dict(name=dataset, seed=0, data_dir="")
  config.model = dict(name=model)
  config.optimizer = dict(name="adam", learning_rate=learning_rate)
  config.train = dict(
    steps=steps,
    batch_size=60,
    eval_every=eval_every,
    steps_per_dispatch=steps_per_dispatch,
    checkpoint_every=checkpoint_every,
    eval_batch_size=eval_batch_size,
  )
  config.pruning = dict(
    rate=rate,
    rates={"fc3": 0.1} if rates is None else rates,
    layerwise=layerwise,
    exclude=exclude,
  )
  config.rounds = rounds
  config.rewind_step = 0
  config.arms = ("imp", "reinit", "random_mask")
  config.seeds = seeds
  return parallel.add(config)


def preset(
  config: ml_collections.ConfigDict, arg: str | None, **quick
) -> ml_collections.ConfigDict:
  """Applies `:quick` (2 rounds, one seed, plus the given train overrides).

  Raises:
    ValueError: for any other preset name.
  """
  if arg == "quick":
    config.rounds = 2
    config.seeds = (0,)
    config.train.update(quick)
  elif arg:
    raise ValueError(f"unknown preset {arg!r}; known: 'quick'")
  return config
