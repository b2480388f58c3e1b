"""Scores of structured units from calibration data, and masks from them.

Units are `jaxprune.compact` groups (hidden units, channels, FFN neurons,
attention heads with their q, k, v and out slices). A unit's features are
the inputs of the layers that read it (the group's 'in' members: the next
kernel's rows, the attention output kernel's head slice). With `K_f` the
reading kernel's row of feature f (all outputs) and `x_f` the feature
over calibration rows:

- 'magnitude', 'random': `jaxprune.compact.unit_scores` (weights only).
- 'activation': `sqrt(sum_{f in u} ||K_f||^2 ||x_f||^2)`: for a unit of
  one feature, its reading weights' norm times its activation norm (the
  structured analogue of Wanda's `|W_ij| ||X_j||`).
- 'taylor' and 'fisher' (Kwon et al. 2022): a mask `m_u` multiplying the
  unit's features has gradient `g_u = dL/dm_u = sum_{f in u} <K_f,
  dL/dK_f>`; per calibration batch b, 'taylor' is `|sum_b g_u|` (the
  first-order change of the loss when the unit goes) and 'fisher'
  `sum_b g_u^2` (with one example per batch: the empirical Fisher
  information of the mask, Kwon et al.'s score).

Higher scores are kept. `select` turns scores into unit masks with exact
counts, per group or globally, by the rules of
`jaxprune.compact.select_units` (ties to the lower index; globally, each
group first keeps its best unit).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.compact import select as compact_select
from jaxprune.compact.groups import Group, Member, Units
from jaxprune.core.tree import path_str
from jaxprune.core.types import Masks, Params
from jaxprune.posttrain import calibration

SCORES = ("magnitude", "random", "activation", "taylor", "fisher")


def _readers(group: Group) -> list[Member]:
  readers = [m for m in group.members if m.role == "in"]
  if not readers:
    raise ValueError(
      f"group '{group.name}' has no layer reading its units (its kernel "
      "slices feed no matmul or convolution); activation and gradient "
      "scores need one: leave it out of `units`"
    )
  return readers


def _per_unit(member: Member, per_feature: jax.Array) -> jax.Array:
  """Sums a value per input index along `member.axis` (already summed
  over the other input axes) into one value per unit."""
  return per_feature[np.asarray(member.indices)].sum(axis=1)


def _along(x: jax.Array, axis: int, n_in: int) -> jax.Array:
  """Sums `x` (shaped like a kernel's input axes) over all axes but
  `axis`."""
  return jnp.sum(x, axis=tuple(a for a in range(n_in) if a != axis))


def activation(
  apply_fn: Callable[[Params, Any], Any],
  variables: Params,
  units: Units,
  batches: Iterable[Any],
) -> list[jax.Array]:
  """'activation' scores (module docstring), one array per group.

  Args:
    apply_fn: `apply_fn(variables, batch)` runs the model (linen layers).
    variables: its variables.
    units: the groups to score (e.g. `Units(units.select(...), {})`).
    batches: calibration batches.

  Raises:
    ValueError: naming a group that no layer reads.
  """
  batches = list(batches)
  paths = {m.path for g in units.groups for m in _readers(g)}
  stats = calibration.calibrate(apply_fn, variables, batches, paths)
  n_in = {
    layer.path: layer.n_in
    for layer in calibration.layers(apply_fn, variables, batches[0])
  }
  leaves = {path_str(p): x for p, x in jax.tree.leaves_with_path(variables)}
  out = []
  for group in units.groups:
    total = jnp.zeros(group.size, jnp.float32)
    for m in _readers(group):
      kernel, n = leaves[m.path], n_in[m.path]
      in_shape = kernel.shape[:n]
      rows = jnp.sum(kernel.reshape(*in_shape, -1) ** 2, axis=-1)
      x2 = stats[m.path].sq_norms.reshape(in_shape)
      total = total + _per_unit(m, _along(rows * x2, m.axis, n))
    out.append(jnp.sqrt(total))
  return out


def gradient(
  loss_fn: Callable[[Params, Any], jax.Array],
  variables: Params,
  units: Units,
  batches: Iterable[Any],
  kind: str = "fisher",
) -> list[jax.Array]:
  """'taylor' or 'fisher' scores (module docstring), one array per group.

  Args:
    loss_fn: `loss_fn(variables, batch)`, a scalar (e.g. a task's
      cross-entropy on labelled calibration data).
    variables: its variables.
    units: the groups to score.
    batches: calibration batches; one example each for Kwon et al.'s
      per-example Fisher.
    kind: 'taylor' or 'fisher'.

  Raises:
    ValueError: for an unknown kind or a group that no layer reads.
  """
  if kind not in ("taylor", "fisher"):
    raise ValueError(f"kind={kind!r}: expected 'taylor' or 'fisher'")
  readers = [_readers(g) for g in units.groups]
  paths = {m.path for ms in readers for m in ms}

  @jax.jit
  def per_unit(variables, batch):
    grads = jax.grad(loss_fn)(variables, batch)
    leaves = dict(jax.tree.leaves_with_path(variables))
    leaves = {path_str(p): x for p, x in leaves.items()}
    g = {path_str(p): x for p, x in jax.tree.leaves_with_path(grads)}
    product = {p: leaves[p] * g[p] for p in paths}
    out = []
    for group, members in zip(units.groups, readers, strict=True):
      total = jnp.zeros(group.size, jnp.float32)
      for m in members:
        # Sum over every axis but the unit's: outputs and other inputs.
        along = jnp.moveaxis(product[m.path], m.axis, 0)
        total = total + _per_unit(m, along.reshape(along.shape[0], -1).sum(1))
      out.append(total)
    return out

  sums = [jnp.zeros(g.size, jnp.float32) for g in units.groups]
  for batch in batches:
    g = per_unit(variables, batch)
    sums = [
      s + (x**2 if kind == "fisher" else x)
      for s, x in zip(sums, g, strict=True)
    ]
  return sums if kind == "fisher" else [jnp.abs(s) for s in sums]


def scores(
  score: str,
  variables: Params,
  units: Units,
  *,
  apply_fn: Callable[[Params, Any], Any] | None = None,
  loss_fn: Callable[[Params, Any], jax.Array] | None = None,
  batches: Iterable[Any] | None = None,
  key: jax.Array | None = None,
) -> list[jax.Array]:
  """One score per unit of each group of `units`, by name.

  Args:
    score: one of `SCORES`.
    variables: the model's variables.
    units: the groups to score.
    apply_fn: for 'activation'.
    loss_fn: for 'taylor' and 'fisher'.
    batches: calibration batches, for 'activation', 'taylor', 'fisher'.
    key: for 'random'.

  Raises:
    ValueError: naming the score and the argument it lacks.
  """
  if score not in SCORES:
    raise ValueError(f"score={score!r}: expected one of {list(SCORES)}")
  if score in ("magnitude", "random"):
    return compact_select.unit_scores(variables, units, score, key)
  needs = "apply_fn" if score == "activation" else "loss_fn"
  fn = apply_fn if score == "activation" else loss_fn
  if fn is None or batches is None:
    raise ValueError(f"score={score!r} needs {needs}= and batches=")
  if score == "activation":
    return activation(apply_fn, variables, units, batches)
  return gradient(loss_fn, variables, units, batches, score)


def select(
  variables: Params,
  units: Units,
  unit_scores: Sequence[jax.Array],
  sparsity: float | Mapping[str, float],
  distribution: str = "uniform",
) -> Masks:
  """Unit masks removing the lowest-scoring units, exact counts:
  `jaxprune.compact.select_units` with these scores.

  Args:
    variables: the model's variables.
    units: the groups `unit_scores` scored.
    unit_scores: one array per group (`scores`).
    sparsity: the fraction of units removed: one value, or a mapping from
      group-name pattern to fraction (as `jaxprune.compact.select_units`).
    distribution: 'uniform' (each group at its fraction) or 'global' (one
      ranking over all units; every group keeps at least one).

  Returns:
    Masks pruning the removed units' producing kernel slices, None on
    other leaves (`jaxprune.compact.masks_from_keep`).

  Raises:
    ValueError: for scores that do not fit the groups, and as
      `select_units`.

  >>> import jax, jax.numpy as jnp
  >>> from jaxprune.compact import find_groups
  >>> from jaxprune.models import LeNet300
  >>> model, x = LeNet300(), jnp.zeros((1, 28, 28, 1))
  >>> variables = model.init(jax.random.key(0), x)
  >>> units = find_groups(model.apply, variables, x)
  >>> s = [jnp.arange(300.0), jnp.arange(100.0)]
  >>> masks = select(variables, units, s, 0.5)
  >>> masks['params']['fc1']['kernel'][0, :3].tolist()  # lowest removed
  [False, False, False]
  """
  return compact_select.select_units(
    variables, units, sparsity, list(unit_scores), distribution
  )
