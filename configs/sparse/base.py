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
SET stop their updates at 75% (the RigL paper's choice); one-shot magnitude
trains dense for half the steps, prunes once, and fine-tunes the other half.

Structured variants (presets `nm=N:M` and `channel=S`, for the methods in
`STRUCTURED`): N:M keeps N of every M consecutive inputs of each kernel
(the input axis, -2, of dense and conv kernels); channel pruning removes
whole output channels (axis -1) by L2 norm. Both allocate per leaf
('uniform'); they leave dense the leaves of `_DENSE_IN` (a first conv's
single input channel has no group of M; pruning the output layer's
channels would remove classes).
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
  "oneshot_magnitude",
)

STRUCTURED = ("pdp", "gradual_magnitude", "oneshot_magnitude")
"""Methods with the structured presets `nm=N:M` and `channel=S`."""

CONV4 = dict(
  model="conv4", learning_rate=3e-4, eval_every=500, steps_per_dispatch=1
)
"""`recipe` arguments of the Conv-4 configs: the LTH paper's Adam 3e-4 for
Conv-4, one step per dispatch (XLA:CPU runs convolutions inside loops about
50x slower)."""
LENET5 = dict(model="lenet5", steps=3000, steps_per_dispatch=1)
"""`recipe` arguments of the LeNet-5 configs: the LeNet-300-100 recipe
otherwise, with 3,000 steps instead of 5,000 (CPU time: a LeNet-5 step costs
about 16 ms, against 3 for LeNet-300-100) and one step per dispatch as for
Conv-4 (scanned 50 steps per call, a LeNet-5 step took 29 against 13 ms)."""
CONV_QUICK = dict(steps=20, eval_every=10, checkpoint_every=10)
"""The conv-net configs' `quick` overrides: a smoke run of 20 steps."""

_DENSE_IN = {
  ("nm", "conv4"): ("conv1/",),
  ("nm", "lenet5"): ("conv1/", "conv2/"),
  ("channel", "lenet300"): ("fc3/",),
  ("channel", "conv4"): ("fc3/",),
  ("channel", "lenet5"): ("fc3/",),
}
"""(structure kind, model) -> patterns of the leaves it leaves dense."""

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

  # The evaluation at step s precedes the update of step s: early stopping
  # starts one step after a method's last pruning update (`at(1, 2) + 1`),
  # so that it never picks the model from before that update.

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
    config.early_stop_from = at(1, 2) + 1
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
    config.early_stop_from = at(1, 2) + 1
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
  elif method == "oneshot_magnitude":
    # Dense for half the steps, pruned once to the target, fine-tuned for
    # the other half.
    config.pruner = dict(
      algorithm="magnitude",
      sparsity=sparsity,
      step=at(1, 2),
      distribution="uniform",
    )
    config.early_stop_from = at(1, 2) + 1
  else:
    raise ValueError(f"method {method!r} is unknown; known: {METHODS}")


def recipe(
  method: str,
  *,
  dataset: str,
  model: str = "lenet300",
  sparsity: float = 0.9,
  learning_rate: float = 1.2e-3,
  frequency: int = 100,
  steps: int = 5000,
  eval_every: int = 250,
  steps_per_dispatch: int = 250,
  checkpoint_every: int = 1000,
  eval_batch_size: int = 1000,
  seeds: tuple[int, ...] = (0, 1),
) -> ml_collections.ConfigDict:
  """Adam (1.2e-3 by default), batch 60, constant learning rate, no weight
  decay."""
  config = ml_collections.ConfigDict()
  config.name = method
  # data_dir: the folder of local files (IDX, TFDS); empty for the default.
  config.dataset = dict(name=dataset, seed=0, data_dir="")
  config.model = dict(name=model)
  config.optimizer = dict(name="adam", learning_rate=learning_rate)
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
  the target sparsity S (not for 'dense'); `nm=N:M`: N:M structure, keeping
  N of every M inputs (sparsity 1 - N/M); `channel=S`: whole output
  channels, sparsity S per leaf; `global`: one magnitude ranking of all
  weights instead of per-leaf budgets (unstructured magnitude baselines).
  `nm`, `channel` and `global` rename the method `<method>_nm`,
  `<method>_channel` and `<method>_global`.

  Raises:
    ValueError: for an unknown preset or value, naming it and what is
      expected, a sparsity for 'dense', or a structure or `global` for a
      method that has none.
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
    elif name == "nm" and value:
      n, m = _nm(value)
      _structure(config, dict(kind="nm", m=m, axis=-2), "nm")
      config.sparsity = 1 - n / m
    elif name == "channel" and value:
      _structure(config, dict(kind="channel", axis=-1), "channel")
      config.sparsity = float(value)
    elif item == "global":
      _variant(config, "global", ("gradual_magnitude", "oneshot_magnitude"))
      config.pruner.distribution = "global"
    else:
      raise ValueError(
        f"unknown preset {item!r}; known: 'quick', 'sparsity=<float>', "
        "'nm=<N>:<M>', 'channel=<float>', 'global'"
      )
  return config


def _nm(value: str) -> tuple[int, int]:
  """(N, M) from 'N:M', with 0 < N < M."""
  n, _, m = value.partition(":")
  if not (n.isdigit() and m.isdigit() and 0 < int(n) < int(m)):
    raise ValueError(
      f"preset nm={value!r}: expected N:M with integers 0 < N < M (e.g. nm=2:4)"
    )
  return int(n), int(m)


def _variant(config, suffix: str, methods: tuple[str, ...]) -> None:
  """Renames the method `<method>_<suffix>`, once, if it has the variant."""
  if config.name not in methods:
    raise ValueError(
      f"preset {suffix!r} applies to {list(methods)} (once); the method is "
      f"{config.name!r}"
    )
  config.name = f"{config.name}_{suffix}"


def _structure(config, structure: dict, kind: str) -> None:
  """Sets the pruner's structure, per-leaf budgets and dense leaves."""
  _variant(config, kind, STRUCTURED)
  config.pruner.structure = structure
  config.pruner.distribution = "uniform"
  dense = _DENSE_IN.get((kind, config.model.name))
  if dense:
    config.pruner.policy = dict(exclude=dense)
