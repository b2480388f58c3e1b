r"""Data pruning (the data-diet grid) for LeNet-300-100 on Fashion-MNIST.

  python -m launch.data_pruning \
    --config=configs/data_pruning/lenet300_fashion_mnist.py \
    --workdir=/tmp/data_pruning_lenet300_fashion_mnist

Nine methods (random, EL2N hardest / easiest / offset / CCS, GraNd at init
and early, forgetting, input norm) x keep fractions 0.9, 0.7, 0.5, 0.3,
0.1 x 2 seeds, plus the full-data run. Each model trains 2,000 steps of
batch 128 (4.7 epochs of the 55,000 examples) with Adam 1e-3, the same
number of steps whatever is kept. EL2N is averaged over 10 models scored
at step 200 (10% of training), GraNd over 5 of them (at init and at step
200: per-example gradients cost the most); forgetting counts come from
one 10-epoch run. See docs/results/data_pruning.md for the runtime and the
results.

Presets (comma-separated): `quick` (2,000 training examples, tiny budgets,
one seed, keep 0.5: a smoke run of about a minute); `noise=F` (corrupt a
fraction F of the training labels); `score=M` (only method M); `keep=F`
(only keep fraction F); `epochs` (same epochs, not same steps);
`per_class` (select within each class).
"""

import ml_collections

from jaxprune.experiments.data_pruning import METHODS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config, with the presets of `arg` applied."""
  config = ml_collections.ConfigDict()
  config.dataset = dict(name="fashion_mnist", seed=0, train_size=0)
  config.label_noise = 0.0
  config.model = dict(name="lenet300")
  config.optimizer = dict(name="adam", learning_rate=1e-3)
  config.schedule = dict(name="constant")
  config.weight_decay = 0.0
  config.train = dict(
    steps=2000,
    batch_size=128,
    eval_every=500,
    eval_batch_size=1000,
    budget="steps",
  )
  config.scores = dict(
    models=10,
    grand_models=5,
    step=200,
    forgetting_steps=4300,
    batch_size=1000,
    grand_batch_size=128,
  )
  config.selection = dict(
    offset=0.1, ccs_offset=0.0, strata=50, per_class=False
  )
  config.methods = tuple(METHODS)
  config.keep_fractions = (0.9, 0.7, 0.5, 0.3, 0.1)
  config.seeds = (0, 1)
  for item in filter(None, (arg or "").split(",")):
    name, _, value = item.partition("=")
    try:
      if item == "quick":
        config.dataset.train_size = 2000
        config.train.update(steps=100, eval_every=50)
        config.scores.update(
          models=2, grand_models=1, step=20, forgetting_steps=100
        )
        config.keep_fractions = (0.5,)
        config.seeds = (0,)
      elif name == "noise" and value:
        config.label_noise = float(value)
      elif name == "score" and value:
        config.methods = (value,)
      elif name == "keep" and value:
        config.keep_fractions = (float(value),)
      elif item in ("epochs", "per_class"):
        if item == "epochs":
          config.train.budget = "epochs"
        else:
          config.selection.per_class = True
      else:
        raise KeyError(item)
    except (KeyError, ValueError):
      raise ValueError(
        f"unknown preset {item!r}; known: 'quick', 'noise=<fraction>', "
        "'score=<method>', 'keep=<fraction>', 'epochs', 'per_class'"
      ) from None
  return config
