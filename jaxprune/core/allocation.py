"""Per-leaf sparsities from one target: uniform, ERK, ER, or a user map.

Global allocation is not here: it falls out of one ranking of all scores
(`selection.global_topk_masks`).
"""

import re
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.core.policy import LeafRule

DISTRIBUTIONS = ("uniform", "erk", "er", "global")


def check_distribution(distribution: str | Mapping) -> None:
  """Raises ValueError for a distribution name jaxprune does not know."""
  if isinstance(distribution, Mapping):
    return
  if distribution not in DISTRIBUTIONS:
    raise ValueError(
      f"distribution='{distribution}' is unknown; expected one of "
      f"{list(DISTRIBUTIONS)} or a mapping from path pattern to sparsity"
    )


def erk_raw(shape: Sequence[int], kernel: bool = True) -> float:
  """Erdos-Renyi(-Kernel) score of a layer: sum(shape) / prod(shape).

  ER (`kernel=False`) uses the last two dims only (fan-in, fan-out).

  >>> round(erk_raw((784, 300)), 6)
  0.004609
  """
  dims = tuple(shape) if kernel else tuple(shape)[-2:]
  return float(sum(dims)) / float(np.prod(dims))


def erk(
  shapes: Sequence[Sequence[int]],
  sparsity: jax.Array | float,
  fixed: Sequence[float | None] = (),
  kernel: bool = True,
) -> jax.Array:
  """ERK (or ER) sparsities: density proportional to `erk_raw`, capped at 1.

  Solves eps with sum(eps * raw_l * n_l) = density * N over the free leaves
  after the fixed ones took their share; while some eps * raw_l > 1, the
  leaves with the largest raw score are made dense and eps is solved again.

  Args:
    shapes: leaf shapes.
    sparsity: overall target over all leaves (traced values are fine).
    fixed: per-leaf fixed sparsity or None (free); empty means all free.
    kernel: ERK when True, ER when False.

  Returns:
    float32 array of per-leaf sparsities.

  >>> s = erk([(784, 300), (300, 100), (100, 10)], 0.8)
  >>> [round(1 - float(x), 3) for x in s]
  [0.162, 0.469, 1.0]
  """
  count = len(shapes)
  fixed = list(fixed) or [None] * count
  sizes = jnp.asarray([float(np.prod(s)) for s in shapes], jnp.float32)
  raw = jnp.asarray([erk_raw(s, kernel) for s in shapes], jnp.float32)
  is_fixed = jnp.asarray([f is not None for f in fixed])
  fixed_density = jnp.asarray(
    [1.0 - f if f is not None else 0.0 for f in fixed], jnp.float32
  )
  density = 1.0 - jnp.asarray(sparsity, jnp.float32)
  budget = density * jnp.sum(sizes) - jnp.sum(
    jnp.where(is_fixed, fixed_density * sizes, 0.0)
  )
  dense = jnp.zeros(count, bool)
  for _ in range(count):
    free = ~is_fixed & ~dense
    rest = budget - jnp.sum(jnp.where(dense, sizes, 0.0))
    eps = rest / jnp.maximum(jnp.sum(jnp.where(free, raw * sizes, 0.0)), 1e-30)
    over = jnp.any(free & (eps * raw > 1.0))
    top = jnp.max(jnp.where(free, raw, -jnp.inf))
    dense = dense | (over & free & (raw == top))
  free = ~is_fixed & ~dense
  rest = budget - jnp.sum(jnp.where(dense, sizes, 0.0))
  eps = rest / jnp.maximum(jnp.sum(jnp.where(free, raw * sizes, 0.0)), 1e-30)
  dens = jnp.where(dense, 1.0, jnp.clip(eps * raw, 0.0, 1.0))
  dens = jnp.where(is_fixed, fixed_density, dens)
  return 1.0 - dens


def leaf_sparsities(
  distribution: str | Mapping,
  paths: Sequence[str],
  shapes: Sequence[Sequence[int]],
  rules: Sequence[LeafRule],
  sparsity: jax.Array | float,
) -> list[jax.Array]:
  """Per-leaf sparsity for `distribution` ('uniform', 'erk', 'er' or a map).

  uniform: every free leaf at `sparsity * scale`, fixed leaves at theirs.
  erk / er: the overall count over all leaves meets `sparsity`, fixed leaves
  counted first. A mapping gives each leaf the sparsity of the last pattern
  that `re.search`-matches its path; every leaf must match one.

  Raises:
    ValueError: for an unknown name, a scale under ERK/ER, or a leaf that no
      pattern of a map matches.
  """
  check_distribution(distribution)
  s = jnp.asarray(sparsity, jnp.float32)
  if isinstance(distribution, Mapping):
    out = []
    for path, rule in zip(paths, rules, strict=True):
      hits = [v for p, v in distribution.items() if re.search(p, path)]
      if rule.fixed is not None:
        hits.append(rule.fixed)
      if not hits:
        raise ValueError(
          f"distribution map has no pattern matching '{path}'; patterns: "
          f"{list(distribution)}"
        )
      out.append(jnp.float32(hits[-1]))
    return out
  if distribution == "uniform":
    return [
      jnp.float32(r.fixed)
      if r.fixed is not None
      else jnp.clip(s * r.scale, 0.0, 1.0)
      for r in rules
    ]
  if distribution in ("erk", "er"):
    for path, r in zip(paths, rules, strict=True):
      if r.scale != 1.0:
        raise ValueError(
          f"Policy.scale matches '{path}' but distribution='{distribution}' "
          "balances layers itself; use Policy.fixed or distribution='uniform'"
        )
    result = erk(shapes, s, [r.fixed for r in rules], distribution == "erk")
    return list(result)
  raise ValueError(f"distribution='{distribution}' has no per-leaf sparsities")
