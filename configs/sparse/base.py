"""What every sparse-training config shares: one recipe, many methods.

Each config file calls `recipe(method, ...)` and `preset(config, arg)`; the
keys are the ones `jaxprune.experiments.sparse.run` reads. Every method but
'dense' reads its target from `config.sparsity` and its pruning window from
`config.train.steps` through references, so `--config.sparsity=0.95`, the
`:sparsity=0.95` preset or `--config.train.steps=...` move them together.

Defaults: the lottery-ticket LeNet recipe (Adam 1.2e-3, batch 60, 5,000
steps, evaluation every 250) so that every method compares with the tickets
of `configs/lottery/`; masks change every `frequency` steps; gradual methods
prune from 10% to 50% of training (GraNet ends pruning halfway), RigL and
SET stop their updates at 75% (the RigL paper's choice).
"""

import ml_collections

from configs import parallel

METHODS = (
  "dense",
  "static_uniform",
  "static_erk",
  "snip",
  "grasp",
  "synflow",
  "gradual_magnitude",
  "set",
  "rigl",
  "granet_dense",
  "granet_sparse",
  "pdp",
)

# Prune-at-init: batches scored (GraSP's reference uses 10 examples per
# class, about 2 batches of 60; SynFlow reads only the input shape) and
# scoring rounds (SynFlow's 100).
_PAI = {
  "snip": dict(batches=1, iterations=1),
  "grasp": dict(batches=2, iterations=1),
  "synflow": dict(batches=1, iterations=100),
}


def _method(config: ml_collections.ConfigDict, method: str, frequency: int):
  """Sets `config.pruner`, and `config.prune_at_init` where it applies."""
  if method == "dense":
    config.pruner = dict(algorithm="fixed")
    return
  sparsity = config.get_ref("sparsity")
  steps = config.train.get_ref("steps")

  def at(num: int, den: int) -> ml_collections.FieldReference:
    """Step `steps * num // den`, as a new reference per key, so that
    setting one key leaves the others alone."""
    return steps * num // den

  if method in ("static_uniform", "static_erk"):
    distribution = method.removeprefix("static_")
    config.pruner = dict(
      algorithm="random", sparsity=sparsity, distribution=distribution
    )
  elif method in _PAI:
    config.pruner = dict(algorithm="fixed")
    config.prune_at_init = dict(
      method=method,
      sparsity=sparsity,
      distribution="global",
      shuffle=False,
      **_PAI[method],
    )
  elif method in ("set", "rigl"):
    config.pruner = dict(
      algorithm=method,
      sparsity=sparsity,
      end=at(3, 4),
      frequency=frequency,
      drop_fraction=0.3,
      distribution="erk",
    )
  elif method == "gradual_magnitude":
    config.pruner = dict(
      algorithm=method,
      final_sparsity=sparsity,
      begin=at(1, 10),
      end=at(1, 2),
      frequency=frequency,
    )
    config.early_stop_from = at(1, 2)
  elif method in ("granet_dense", "granet_sparse"):
    config.pruner = dict(
      algorithm="granet",
      final_sparsity=sparsity,
      begin=at(1, 10),
      end=at(1, 2),
      frequency=frequency,
      total_steps=at(1, 1),
      initial_sparsity=0.5 if method == "granet_sparse" else 0.0,
      distribution="erk",
    )
    config.early_stop_from = at(1, 2)
  elif method == "pdp":
    # Soft masks ramp from 10% to 50% of training, hardened at 75%; the
    # last quarter fine-tunes under hard masks.
    config.pruner = dict(
      algorithm="pdp",
      sparsity=sparsity,
      begin=at(1, 10),
      end=at(1, 2),
      harden_step=at(3, 4),
      tau=1e-4,
    )
    config.early_stop_from = at(3, 4)
  else:
    raise ValueError(f"method {method!r} is unknown; known: {METHODS}")


def recipe(
  method: str,
  *,
  dataset: str,
  model: str = "lenet300",
  sparsity: float = 0.9,
  frequency: int = 100,
  steps: int = 5000,
  eval_every: int = 250,
  steps_per_dispatch: int = 250,
  checkpoint_every: int = 1000,
  eval_batch_size: int = 1000,
  seeds: tuple[int, ...] = (0, 1),
) -> ml_collections.ConfigDict:
  """Adam 1.2e-3, batch 60, constant learning rate, no weight decay."""
  config = ml_collections.ConfigDict()
  config.name = method
  config.dataset = dict(name=dataset, seed=0)
  config.model = dict(name=model)
  config.optimizer = dict(name="adam", learning_rate=1.2e-3)
  config.schedule = dict(name="constant")
  config.weight_decay = 0.0
  config.train = dict(
    steps=steps,
    batch_size=60,
    eval_every=eval_every,
    steps_per_dispatch=steps_per_dispatch,
    checkpoint_every=checkpoint_every,
    eval_batch_size=eval_batch_size,
  )
  if method != "dense":
    config.sparsity = sparsity
  config.early_stop_from = 0
  _method(config, method, frequency)
  config.seeds = seeds
  return parallel.add(config)


def preset(
  config: ml_collections.ConfigDict, arg: str | None, **quick
) -> ml_collections.ConfigDict:
  """Applies the comma-separated presets in `arg`.

  `quick`: one seed and the given `config.train` overrides; `sparsity=S`:
  the target sparsity S (not for 'dense').

  Raises:
    ValueError: for an unknown preset, or a sparsity for 'dense'.
  """
  for item in filter(None, (arg or "").split(",")):
    name, _, value = item.partition("=")
    if item == "quick":
      config.seeds = (0,)
      config.train.update(quick)
    elif name == "sparsity" and value:
      if "sparsity" not in config:
        raise ValueError(f"{config.name!r} has no sparsity to set")
      config.sparsity = float(value)
    else:
      raise ValueError(
        f"unknown preset {item!r}; known: 'quick', 'sparsity=<float>'"
      )
  return config
