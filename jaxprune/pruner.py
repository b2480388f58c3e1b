"""The pruner interface, and the score-based pruner most algorithms are.

A pruner is a frozen value with pure functions. `jaxprune.wrap` needs only:

- `init(params, key) -> (masks, aux)`: initial masks and the algorithm's
  own state `aux` (a pytree, `()` when it has none); `key` is the key given
  to `jaxprune.wrap`. Masks that need no gradient and no training (random
  masks, magnitude pruning at step 0, sparse-to-sparse starts) are drawn
  here, from `fold_in(key, 0)`; `tx.init` cannot mask the params, which
  stay dense until the first update (`jaxprune.apply_masks(params,
  jaxprune.masks_of(state))` masks them at once, as `Trainer.init` does);
- `is_update_step(step) -> bool array`: whether masks change at `step`;
  the Python value `False` when they never change in training, which
  leaves the update out of the compiled step altogether;
- `update(params, grads, masks, aux, step, key) -> (masks, aux)`: the new
  masks, from the parameters before this step's update and the dense
  gradient with respect to the effective parameters;
- `forward(params, masks, aux) -> params`: the effective parameters the
  forward pass uses (identity for hard masks: params are already masked);
- optionally `needs_key`, True when masks are drawn at random: `wrap`
  then refuses to run without a key (it would otherwise draw from an
  all-zero one);
- optionally `dense_gradient(step) -> bool array`, True on the steps
  whose update reads the gradient of pruned entries too (growth by
  gradient: RigL, GraNet); the trainer counts their dense backward pass
  in a run's training FLOPs. Absent: never;
- optionally `only_prunes`, True when `update` never returns an entry that
  the masks it is given prune. `wrap` then masks each step with the new
  masks alone: reading the old masks after the update would make XLA copy
  every mask on every step (see docs/benchmarks.md).

`ScorePruner` fills these from a score, a schedule, an allocation rule and
a structure, so that a new algorithm is a new score or a new rule.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.core import allocation, selection
from jaxprune.core.policy import Policy
from jaxprune.core.schedules import Schedule
from jaxprune.core.scores import needs_grads
from jaxprune.core.scores import random as random_score
from jaxprune.core.tree import map_masked, path_str
from jaxprune.core.types import Masks, Params, ScoreFn


@dataclasses.dataclass(frozen=True)
class NM:
  """N:M structure: of every `m` consecutive entries along `axis`, keep
  `kept_count(m, sparsity)` (sparsity 1 - n/m keeps n of m)."""

  m: int
  axis: int = -1

  def __post_init__(self):
    if not _is_int(self.m) or self.m < 2:
      raise ValueError(
        f"m={self.m!r}: expected an integer >= 2 (the N:M group length)"
      )
    _check_axis(self.axis)


@dataclasses.dataclass(frozen=True)
class Channel:
  """Channel structure: whole slices along `axis` (output channels of a
  dense or conv kernel) ranked by the L2 norm of their scores."""

  axis: int = -1

  def __post_init__(self):
    _check_axis(self.axis)


def _is_int(value: Any) -> bool:
  return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_axis(axis):
  if not _is_int(axis):
    raise ValueError(
      f"axis={axis!r}: expected an integer (an axis of the kernel, negative "
      "counts from the last)"
    )


def all_kept(params: Params, policy: Policy) -> Masks:
  """All-True masks on the leaves `policy` prunes, `None` elsewhere."""
  rules = policy.rules(params)
  return jax.tree.map_with_path(
    lambda p, x: jnp.ones(jnp.shape(x), bool) if path_str(p) in rules else None,
    params,
  )


def check_finite(named_scores: dict[str, jax.Array]) -> jax.Array:
  """Checks that scores are finite, leaf by leaf.

  Eagerly (concrete values) it raises at once. Under `jit` nothing can
  raise without a host callback, which would slow every step, so it
  returns a code instead: 0 when all leaves are finite, else 1 + the index
  (in `named_scores` order) of the first leaf that is not. Pruners then keep
  their old masks, hold the code in their state, and `jaxprune.check(state)`
  raises on the host.

  Raises:
    ValueError: eagerly, naming the first leaf with NaN or infinity.
  """
  paths = list(named_scores)
  if not paths:
    return jnp.zeros((), jnp.int32)
  scores = [named_scores[p] for p in paths]

  def first_bad():
    bad = jnp.array([~jnp.all(jnp.isfinite(s)) for s in scores], bool)
    bad = bad.reshape(-1)
    return jnp.where(jnp.any(bad), jnp.argmax(bad) + 1, 0).astype(jnp.int32)

  # A sum of finite values is finite unless it overflows, and a plain sum is
  # several times faster on CPU than the elementwise check: the exact check
  # runs only when some sum is not finite.
  suspect = jnp.any(
    jnp.array([~jnp.isfinite(jnp.sum(s, dtype=jnp.float32)) for s in scores])
  )
  code = jax.lax.cond(suspect, first_bad, lambda: jnp.int32(0))
  if not isinstance(code, jax.core.Tracer):
    raise_nonfinite(paths, code)
  return code


def keep_if_finite(code: jax.Array, new: Masks, old: Masks) -> Masks:
  """`new` masks if `check_finite`'s `code` is 0, else the `old` ones."""
  return map_masked(lambda n, o: jnp.where(code == 0, n, o), new, old)


def raise_nonfinite(paths: list[str], code: jax.Array | int) -> None:
  """Raises the error `check_finite`'s `code` stands for (none for 0)."""
  code = int(code)
  if code:
    raise ValueError(
      f"scores of '{paths[code - 1]}' contain NaN or infinity; pruning needs "
      "finite scores (check the loss and the learning rate)"
    )


@dataclasses.dataclass(frozen=True)
class ScorePruner:
  """Masks from scores: score -> per-leaf or global allocation -> selection.

  Attributes:
    score: `(params, grads, key) -> scores`; higher is kept.
    schedule: target sparsity and update steps.
    distribution: 'uniform', 'erk', 'er', 'global', or a mapping from path
      pattern to sparsity (see `allocation.leaf_sparsities`).
    min_fraction: with 'global', every leaf keeps at least
      `int(min_fraction * N)` entries (N: prunable entries in all).
    structure: None (unstructured), `NM` or `Channel`.
    policy: which leaves are pruned, fixed sparsities and rate scales.
    name: the algorithm's name, for reports.
  """

  score: ScoreFn
  schedule: Schedule
  distribution: str | tuple = "uniform"
  min_fraction: float = 0.0
  structure: NM | Channel | None = None
  policy: Policy = Policy()
  name: str = "score"

  def __post_init__(self):
    if isinstance(self.distribution, Mapping):
      object.__setattr__(
        self, "distribution", tuple(sorted(self.distribution.items()))
      )
    allocation.check_distribution(self._distribution)
    if not 0.0 <= self.min_fraction < 1.0:
      raise ValueError(
        f"min_fraction={self.min_fraction}: expected a fraction in [0, 1)"
      )
    if self.distribution == "global" and self.structure is not None:
      raise ValueError("global allocation supports unstructured masks only")

  @property
  def _distribution(self):
    d = self.distribution
    return dict(d) if isinstance(d, tuple) else d

  @property
  def at_init(self) -> bool:
    """Whether `init` draws the masks, which then never change: a one-shot
    schedule at step 0 and a score that needs no gradient (random,
    magnitude). The compiled step then holds no selection code."""
    return self.schedule.once_at == 0 and not needs_grads(self.score)

  @property
  def needs_key(self) -> bool:
    """Whether the score draws random numbers: `jaxprune.wrap` then
    requires a key."""
    return self.score is random_score

  @property
  def only_prunes(self) -> bool:
    """Whether updates only remove entries: on a schedule whose target never
    decreases, every update ranks the pruned entries below all the kept
    ones (so ties at zero weight cannot bring one back) and keeps none of
    them (should the masks held prune more than the target). Not for
    `Channel`, which ranks slices by the norm of their scores."""
    return self.schedule.monotone and not isinstance(self.structure, Channel)

  def init(self, params: Params, key: jax.Array) -> tuple[Masks, Any]:
    masks = all_kept(params, self.policy)
    if not self.at_init:
      return masks, jnp.zeros((), jnp.int32)
    sparsity = self.schedule.sparsity(0)
    new, code = self.masks_at(
      params, None, masks, sparsity, jax.random.fold_in(key, 0)
    )
    return keep_if_finite(code, new, masks), code

  def is_update_step(self, step: jax.Array) -> jax.Array | bool:
    if self.at_init:
      return False
    return self.schedule.is_update(step)

  def forward(self, params: Params, masks: Masks, aux: Any) -> Params:
    del masks, aux
    return params

  def update(
    self,
    params: Params,
    grads: Params | None,
    masks: Masks,
    aux: Any,
    step: jax.Array,
    key: jax.Array,
  ) -> tuple[Masks, Any]:
    if grads is None and needs_grads(self.score):
      raise ValueError(
        f"pruner '{self.name}' needs gradients for its score: let "
        "jaxprune.wrap's update call it, or pass grads= to jaxprune.prune"
      )
    del aux
    sparsity = self.schedule.sparsity(step)
    new, code = self.masks_at(
      params, grads, masks, sparsity, key, among_kept=self.only_prunes
    )
    return keep_if_finite(code, new, masks), code

  def check(self, masks: Masks, aux: jax.Array) -> None:
    """Raises if the last mask update met non-finite scores."""
    raise_nonfinite(masked_paths(masks), aux)

  def masks_at(self, params, grads, masks, sparsity, key, among_kept=False):
    """Masks at a given target sparsity and `check_finite`'s code; with
    `among_kept`, within `masks`, whose pruned entries rank below every
    other."""
    rules = self.policy.rules(params)
    scores = self.score(params, grads, key)
    flat, treedef = jax.tree.flatten_with_path(
      masks, is_leaf=lambda x: x is None
    )
    score_leaves = jax.tree.leaves(scores)
    named = {}
    for (path, m), s in zip(flat, score_leaves, strict=True):
      if m is not None:
        named[path_str(path)] = s
    code = check_finite(named)
    paths = list(named)
    arrays = [named[p] for p in paths]
    if among_kept:
      held = [m for _, m in flat if m is not None]
      arrays = [
        jnp.where(m, a.astype(jnp.float32), -jnp.inf)
        for m, a in zip(held, arrays, strict=True)
      ]
    leaf_rules = [rules[p] for p in paths]
    kept = self._select(paths, arrays, leaf_rules, sparsity)
    if among_kept:
      kept = [k & m for k, m in zip(kept, held, strict=True)]
    new = dict(zip(paths, kept, strict=True))
    masks = jax.tree.unflatten(
      treedef,
      [new.get(path_str(p)) if m is not None else None for p, m in flat],
    )
    return masks, code

  def _select(self, paths, arrays, rules, sparsity):
    if self._distribution == "global":
      return self._global(paths, arrays, rules, sparsity)
    shapes = [a.shape for a in arrays]
    per_leaf = allocation.leaf_sparsities(
      self._distribution, paths, shapes, rules, sparsity
    )
    out = []
    for path, a, s in zip(paths, arrays, per_leaf, strict=True):
      if isinstance(self.structure, NM):
        n = selection.kept_count(self.structure.m, s)
        out.append(_nm(path, a, n, self.structure))
      elif isinstance(self.structure, Channel):
        out.append(_channel(path, a, s, self.structure))
      else:
        out.append(selection.topk_mask(a, selection.kept_count(a.size, s)))
    return out

  def _global(self, paths, arrays, rules, sparsity):
    for path, r in zip(paths, rules, strict=True):
      if r.scale != 1.0:
        raise ValueError(
          f"Policy.scale matches '{path}' but distribution='global' ranks "
          "all leaves together; use Policy.fixed instead"
        )
    total = sum(a.size for a in arrays)
    fixed = [r.fixed is not None for r in rules]
    out = [
      selection.topk_mask(a, selection.kept_count(a.size, r.fixed))
      if r.fixed is not None
      else None
      for a, r in zip(arrays, rules, strict=True)
    ]
    fixed_kept = sum(
      selection.kept_count(a.size, r.fixed)
      for a, r in zip(arrays, rules, strict=True)
      if r.fixed is not None
    )
    free = [a for a, f in zip(arrays, fixed, strict=True) if not f]
    budget = selection.kept_count(total, sparsity) - fixed_kept
    budget = jnp.clip(budget, 0, sum(a.size for a in free))
    min_count = int(np.floor(self.min_fraction * total))
    free_masks = iter(selection.global_topk_masks(free, budget, min_count))
    return [m if m is not None else next(free_masks) for m in out]


def masked_paths(masks: Masks) -> list[str]:
  """Paths of the leaves that have a mask, in pytree order (the order of
  `check_finite`'s codes for one score per pruned leaf)."""
  flat = jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
  return [path_str(p) for p, m in flat if m is not None]


def _channel(path, scores, sparsity, structure):
  if not -scores.ndim <= structure.axis < scores.ndim:
    raise ValueError(
      f"leaf '{path}': Channel(axis={structure.axis}) is out of range for its "
      f"shape {tuple(scores.shape)}; expected an axis in "
      f"[{-scores.ndim}, {scores.ndim - 1}] (or exclude the leaf with Policy)"
    )
  return selection.channel_mask(scores, sparsity, structure.axis)


def _nm(path, scores, n, structure):
  try:
    return selection.nm_mask(scores, n, structure.m, structure.axis)
  except ValueError as e:
    raise ValueError(f"leaf '{path}': {e}") from None
