"""Structured masks: which units to remove, by a score per unit.

A unit's magnitude score is the L2 norm of every weight that computes it:
its column of each kernel that writes it (all the convolutions writing one
channel of a residual stream, for a tied unit). Per-group ratios keep
`kept_count(size, sparsity)` units of each group; a global ratio ranks all
units together (the norms of groups with different fan-ins differ in
scale: compare before relying on it). Counts and ties follow jaxprune's
rules (`jaxprune.core.selection`). The masks prune the kernels' output
slices only, as `jaxprune.Channel` does; `unit_masks` extends them to the
whole unit.
"""

import re
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.compact.groups import Group, Units
from jaxprune.core import selection
from jaxprune.core.tree import path_str
from jaxprune.core.types import Masks, Params

SCORES = ("magnitude", "random")


def unit_scores(
  variables: Params,
  units: Units,
  score: str = "magnitude",
  key: jax.Array | None = None,
) -> list[jax.Array]:
  """One score per unit of each group (higher is kept).

  Args:
    variables: the network's variables.
    units: `find_groups(...)` of the network.
    score: 'magnitude' (L2 norm of the unit's producing weights) or
      'random' (uniform noise from `key`, one stream per group).
    key: a `jax.random` key, for 'random'.

  Raises:
    ValueError: for an unknown score or 'random' without a key.
  """
  if score not in SCORES:
    raise ValueError(f"score={score!r}: expected one of {list(SCORES)}")
  if score == "random":
    if key is None:
      raise ValueError("score='random' needs key=jax.random.key(...)")
    return [
      jax.random.uniform(jax.random.fold_in(key, i), (g.size,))
      for i, g in enumerate(units.groups)
    ]
  leaves = {path_str(p): x for p, x in jax.tree.leaves_with_path(variables)}
  return [_norms(leaves, g) for g in units.groups]


def _norms(leaves, group: Group) -> jax.Array:
  total = jnp.zeros(group.size, jnp.float32)
  for m in group.producers:
    w = jnp.moveaxis(leaves[m.path].astype(jnp.float32), m.axis, 0)
    per_index = jnp.sum(w.reshape(w.shape[0], -1) ** 2, axis=1)
    # Every unit of a group owns as many indices of a member.
    total = total + per_index[np.asarray(m.indices)].sum(axis=1)
  return jnp.sqrt(total)


def select_units(
  variables: Params,
  units: Units,
  sparsity: float | Mapping[str, float],
  score: str | Sequence[jax.Array] = "magnitude",
  distribution: str = "uniform",
  key: jax.Array | None = None,
) -> Masks:
  """Unit masks removing the lowest-scoring units.

  Args:
    variables: the network's variables.
    units: `find_groups(...)` of the network.
    sparsity: the fraction of units removed: one value, or a mapping from
      group-name pattern (`re.search`, last match wins) to a fraction;
      every group must match a pattern.
    score: 'magnitude' or 'random' (see `unit_scores`), or precomputed
      scores: one array of `group.size` per group of `units` (e.g.
      `jaxprune.posttrain.unit_scores.scores`).
    distribution: 'uniform' (each group at its fraction) or 'global' (one
      ranking over all units, `kept_count(all units, sparsity)` kept; each
      group first keeps its best unit, so a group is never emptied).
    key: a `jax.random` key, for 'random'.

  Returns:
    Masks over `variables`: the producing kernels' slices of removed units
    False, None on every other leaf.

  Raises:
    ValueError: naming the field and value for a fraction outside [0, 1),
      an unknown distribution, a mapping with 'global', a group no
      pattern matches, or score arrays that do not fit the groups.

  >>> import jax, jax.numpy as jnp
  >>> from jaxprune.compact import find_groups
  >>> from jaxprune.models import LeNet300
  >>> model, x = LeNet300(), jnp.zeros((1, 28, 28, 1))
  >>> variables = model.init(jax.random.key(0), x)
  >>> units = find_groups(model.apply, variables, x)
  >>> masks = select_units(variables, units, 0.25)
  >>> fc1, fc3 = masks['params']['fc1'], masks['params']['fc3']
  >>> int(fc1['kernel'][0].sum()), fc3['kernel']
  (225, None)
  """
  if distribution not in ("uniform", "global"):
    raise ValueError(
      f"distribution={distribution!r}: expected 'uniform' or 'global'"
    )
  fractions = _fractions(units, sparsity, distribution)
  if isinstance(score, str):
    score = unit_scores(variables, units, score, key)
  scores = [np.asarray(s) for s in score]
  sizes = [s.shape for s in scores]
  expected = [(g.size,) for g in units.groups]
  if sizes != expected:
    raise ValueError(
      f"score arrays have shapes {sizes}; expected {expected}, one array "
      "per group of `units`"
    )
  if distribution == "global":
    keep = _global(scores, fractions[0])
  else:
    keep = [
      _top(s, int(selection.kept_count(s.size, f)))
      for s, f in zip(scores, fractions, strict=True)
    ]
  return masks_from_keep(variables, units, keep)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
  """The `k` highest scores, ties to the lower index (jaxprune's rule).

  Units number hundreds, not millions: a host sort is instant, where
  `selection.topk_mask` would compile a search for every group's size."""
  keep = np.zeros(scores.size, bool)
  keep[np.argsort(-scores, kind="stable")[:k]] = True
  return keep


def _global(scores: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
  """One ranking over all units; each group first keeps its best unit."""
  flat = np.concatenate(scores).astype(np.float64)
  starts = np.cumsum([0] + [s.size for s in scores])[:-1]
  best = starts + np.array([np.argmax(s) for s in scores])
  budget = int(selection.kept_count(flat.size, sparsity))
  rest = flat.copy()
  rest[best] = -np.inf
  keep = _top(rest, max(budget - len(scores), 0))
  keep[best] = True
  return np.split(keep, starts[1:])


def _fractions(units, sparsity, distribution):
  if isinstance(sparsity, Mapping):
    if distribution == "global":
      raise ValueError(
        "distribution='global' ranks all units at one sparsity; got a "
        "mapping of per-group sparsities"
      )
    out = []
    for g in units.groups:
      hits = [v for p, v in sparsity.items() if re.search(p, g.name)]
      if not hits:
        raise ValueError(
          f"sparsity mapping has no pattern matching group '{g.name}'; "
          f"patterns: {list(sparsity)}"
        )
      out.append(hits[-1])
  else:
    out = [sparsity] * len(units.groups)
  for g, f in zip(units.groups, out, strict=True):
    if not 0.0 <= f < 1.0:
      raise ValueError(
        f"sparsity {f!r} for group '{g.name}': expected a fraction of "
        "units in [0, 1) (at least one unit stays)"
      )
  return out


def masks_from_keep(
  variables: Params, units: Units, keep: list[np.ndarray]
) -> Masks:
  """Masks over `variables` that prune, in every kernel computing them,
  the units where `keep` (one bool array per group) is False."""
  pruned = {}
  for group, k in zip(units.groups, keep, strict=True):
    for m in group.producers:
      pruned.setdefault(m.path, []).append((m.axis, group.owned(m, k)))

  def mask(p, x):
    path = path_str(p)
    if path not in pruned:
      return None
    out = np.ones(np.shape(x), bool)
    for axis, indices in pruned[path]:
      index = [slice(None)] * out.ndim
      index[axis] = indices
      out[tuple(index)] = False
    return jnp.asarray(out)

  return jax.tree.map_with_path(mask, variables)
