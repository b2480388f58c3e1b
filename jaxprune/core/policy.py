"""Which leaves are pruned, and at what rate: a per-leaf policy by key path."""

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.core.tree import leaf_name, path_str
from jaxprune.core.types import Params

_NEVER = ("bias", "scale", "embedding", "mean", "var")


def default_prunable(path: str, leaf: Any) -> bool:
  """Kernels of dense and conv layers: ndim >= 2, not embeddings or norms.

  >>> import numpy as np
  >>> default_prunable('params/fc1/kernel', np.zeros((3, 4)))
  True
  >>> default_prunable('params/embed/embedding', np.zeros((9, 4)))
  False
  """
  return getattr(leaf, "ndim", 0) >= 2 and leaf_name(path) not in _NEVER


def _as_pairs(value: Any, field: str) -> tuple[tuple[str, float], ...]:
  items = value.items() if isinstance(value, Mapping) else value
  pairs = []
  for item in items:
    pattern, rate = item
    rate = float(rate)
    if field == "fixed" and not 0.0 <= rate <= 1.0:
      raise ValueError(
        f"Policy.fixed['{pattern}'] = {rate}: a sparsity must be in [0, 1]"
      )
    if field == "scale" and rate < 0.0:
      raise ValueError(
        f"Policy.scale['{pattern}'] = {rate}: a rate scale must be >= 0"
      )
    pairs.append((str(pattern), rate))
  return tuple(pairs)


@dataclasses.dataclass(frozen=True)
class Policy:
  """Per-leaf pruning rules, matched by `re.search` on the leaf's key path.

  Paths are written 'params/fc1/kernel' (linen) or 'fc1/kernel/value' (nnx).

  Attributes:
    prunable: predicate `(path, leaf) -> bool` choosing the leaves to prune;
      defaults to `default_prunable`.
    exclude: patterns of leaves never pruned (mask `None`).
    include: patterns of leaves always pruned, even if `prunable` says no.
    fixed: pattern -> sparsity: a pruned leaf matching it is pruned at
      exactly this sparsity whatever the run's target (0.0 keeps it dense).
    scale: pattern -> factor: a pruned leaf's rate is the target times this
      (0.5 prunes the output layer at half rate). Uniform allocation and
      iterative pruning honour it; ERK and global allocation refuse it.
  """

  prunable: Callable[[str, Any], bool] = default_prunable
  exclude: tuple[str, ...] = ()
  include: tuple[str, ...] = ()
  fixed: tuple[tuple[str, float], ...] = ()
  scale: tuple[tuple[str, float], ...] = ()

  def __post_init__(self):
    set_ = object.__setattr__
    set_(self, "exclude", tuple(self.exclude))
    set_(self, "include", tuple(self.include))
    set_(self, "fixed", _as_pairs(self.fixed, "fixed"))
    set_(self, "scale", _as_pairs(self.scale, "scale"))

  def rules(self, params: Params) -> dict[str, "LeafRule"]:
    """Resolves the policy on `params`: path -> rule for every pruned leaf.

    Raises:
      ValueError: if a pattern in `exclude`, `include`, `fixed` or `scale`
        matches no leaf at all (a typo would otherwise pass silently).
    """
    leaves = [(path_str(p), x) for p, x in jax.tree.leaves_with_path(params)]
    patterns = [("exclude", p) for p in self.exclude]
    patterns += [("include", p) for p in self.include]
    patterns += [("fixed", p) for p, _ in self.fixed]
    patterns += [("scale", p) for p, _ in self.scale]
    for field, pattern in patterns:
      if not any(re.search(pattern, path) for path, _ in leaves):
        raise ValueError(
          f"Policy.{field} pattern '{pattern}' matches no parameter; "
          f"known paths: {[path for path, _ in leaves]}"
        )
    rules = {}
    for path, leaf in leaves:
      if any(re.search(p, path) for p in self.exclude):
        continue
      forced = any(re.search(p, path) for p in self.include)
      fixed = [s for p, s in self.fixed if re.search(p, path)]
      if not (forced or self.prunable(path, leaf)):
        continue
      _check_float(path, leaf)
      scale = [s for p, s in self.scale if re.search(p, path)]
      rules[path] = LeafRule(
        fixed=fixed[-1] if fixed else None,
        scale=scale[-1] if scale else 1.0,
      )
    return rules


def _check_float(path: str, leaf: Any) -> None:
  dtype = leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(
      f"leaf '{path}' has dtype {dtype}: only floating-point leaves can be "
      "pruned (scores are ranked as float32, inexact for integers above "
      f"2**24); cast it to a float dtype or leave it out with "
      f"Policy(exclude=['{path}'])"
    )


@dataclasses.dataclass(frozen=True)
class LeafRule:
  """How one prunable leaf follows the run's target sparsity."""

  fixed: float | None = None
  scale: float = 1.0
