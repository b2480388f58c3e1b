"""Drop-and-grow sparse training: GraNet, RigL and SET.

The three are one pruner, `DropGrowPruner`. On its update steps it

1. (GraNet only) prunes all leaves together by |w| towards the sparsity of a
   cubic schedule; entries already pruned stay pruned;
2. regenerates every leaf at a constant count: drops the `n_drop` active
   entries of smallest |w|, then grows `n_drop` entries among the positions
   the drop did not keep, by the largest |dense gradient| (GraNet, RigL) or
   by uniform noise from the step's key (SET).

Counting. A leaf with `n` active entries at drop rate r drops
`ceil(r * n)` (GraNet) or `floor(r * n)` (RigL, SET) entries, the product
taken in float32. Ties in |w| keep the lower flat index, ties in the growth
score grow the lower flat index (`jaxprune.core.selection`). The drop rate
follows a cosine decay from `drop_fraction` at step 0 to `drop_floor` at
`decay_steps` (see `DropGrowPruner.drop_rate`). The pruning step keeps
exactly `kept_count(N, s_t)` of the N prunable entries (fewer only if fewer
are active), so the run ends on the final sparsity exactly.

Values. `jaxprune.wrap` keeps the weight and optimizer state of every entry
active before and after an update, and starts entries that become active at
zero weight and zero state. A position dropped and grown again in the same
update therefore keeps its value and is not a regrowth (RigL's rule). This
holds also for positions removed by GraNet's pruning step and grown back by
the regeneration of the same update, which GraNet's code restarts at zero.

Sparse-to-sparse starts. The random initial mask (exact per-leaf counts
from `distribution`, noise from `fold_in(wrap key, 0)`) is drawn by
`tx.init`, and step 0 makes no mask update. `tx.init` cannot change the
params: they are masked by `jaxprune.apply_masks(params, masks_of(state))`
(`Trainer.init` does it), or else by the first update.

Bad values. When |w| or the gradient holds NaN or infinity, an update under
`jit` leaves the masks as they were and records the leaf;
`jaxprune.check(state)` raises naming it.

Static sparse training (a random mask that never changes) needs no drop and
grow: it is `jaxprune.algorithms.random(sparsity, distribution='erk')`.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune.core import allocation, schedules, selection
from jaxprune.core.policy import Policy
from jaxprune.core.schedules import Schedule
from jaxprune.core.tree import path_str
from jaxprune.core.types import Masks, Params
from jaxprune.pruner import (
  all_kept,
  check_finite,
  keep_if_finite,
  masked_paths,
  raise_nonfinite,
)

GROWTH = ("gradient", "random")
ROUNDING = ("ceil", "floor")


def _check_fraction(name: str, value: float) -> None:
  if not 0.0 <= value <= 1.0:
    raise ValueError(f"{name}={value}: expected a fraction in [0, 1]")


@dataclasses.dataclass(frozen=True)
class DropGrowPruner:
  """Regenerates connections at constant per-leaf counts; optionally prunes.

  Build it with `granet`, `rigl` or `set_`.

  Attributes:
    pruning: GraNet's global pruning schedule, or None (constant sparsity).
    initial_sparsity: 0 starts from all-kept masks; above 0, a random mask
      at this sparsity is drawn by `init`.
    distribution: per-leaf sparsities of the initial random mask ('erk',
      'er', 'uniform' or a path-pattern map).
    growth: 'gradient' (largest |dense gradient|) or 'random'.
    drop_fraction: drop rate at step 0.
    drop_floor: drop rate from `decay_steps` on.
    decay_steps: length of the cosine decay of the drop rate.
    rounding: 'ceil' or 'floor', how `rate * n` becomes a drop count.
    begin, end, frequency: regeneration runs every `frequency` steps from
      `begin` to `end`, and at `end`.
    policy: which leaves are pruned; `Policy.fixed` leaves keep their own
      sparsity in the pruning step.
    name: the algorithm's name, for reports.
  """

  pruning: Schedule | None
  initial_sparsity: float
  distribution: str | tuple
  growth: str
  drop_fraction: float
  drop_floor: float
  decay_steps: int
  rounding: str
  begin: int
  end: int
  frequency: int
  policy: Policy = Policy()
  name: str = "drop_grow"

  def __post_init__(self):
    if isinstance(self.distribution, Mapping):
      object.__setattr__(
        self, "distribution", tuple(sorted(self.distribution.items()))
      )
    _check_fraction("initial_sparsity", self.initial_sparsity)
    _check_fraction("drop_fraction", self.drop_fraction)
    if not 0.0 <= self.drop_floor <= self.drop_fraction:
      raise ValueError(
        f"drop_floor={self.drop_floor}: expected a value in "
        f"[0, drop_fraction={self.drop_fraction}]"
      )
    if self.growth not in GROWTH:
      raise ValueError(f"growth='{self.growth}': expected one of {GROWTH}")
    if self.rounding not in ROUNDING:
      raise ValueError(
        f"rounding='{self.rounding}': expected one of {ROUNDING}"
      )
    if self.decay_steps < 1:
      raise ValueError(
        f"decay_steps={self.decay_steps}: expected an integer >= 1"
      )
    self._regrows(0)  # validates begin, end and frequency

  @property
  def needs_key(self) -> bool:
    """Whether masks are drawn at random (a sparse start, random growth):
    `jaxprune.wrap` then requires a key."""
    return self.initial_sparsity > 0 or self.growth == "random"

  def _regrows(self, step):
    window = schedules.constant(0.0, self.begin, self.end, self.frequency)
    return window.is_update(step)

  def drop_rate(self, step: jax.Array | int) -> jax.Array:
    """Fraction of each leaf's active entries replaced at `step`.

    floor + (fraction - floor) * (1 + cos(pi * min(step, T) / T)) / 2 with
    T = `decay_steps`: `drop_fraction` at 0, `drop_floor` from T on.
    """
    t = jnp.asarray(step, jnp.float32)
    p = jnp.clip(t / self.decay_steps, 0.0, 1.0)
    span = self.drop_fraction - self.drop_floor
    rate = self.drop_floor + span * 0.5 * (1.0 + jnp.cos(jnp.pi * p))
    return jnp.where(p >= 1.0, jnp.float32(self.drop_floor), rate)

  def init(self, params: Params, key: jax.Array) -> tuple[Masks, Any]:
    rules = self.policy.rules(params)
    scaled = [p for p, r in rules.items() if r.scale != 1.0]
    if self.pruning is not None and scaled:
      raise ValueError(
        f"Policy.scale matches {scaled} but {self.name} prunes all leaves "
        "together by one ranking; use Policy.fixed instead"
      )
    masks = all_kept(params, self.policy)
    if self.initial_sparsity > 0.0:
      masks = self._initial(params, masks, jax.random.fold_in(key, 0))
    return masks, jnp.zeros((), jnp.int32)

  def is_update_step(self, step: jax.Array) -> jax.Array:
    update = self._regrows(step)
    if self.pruning is not None:
      update = update | self.pruning.is_update(step)
    if self.initial_sparsity > 0.0:
      update = update & (jnp.asarray(step) != 0)  # init drew the start
    return update

  def dense_gradient(self, step: jax.Array) -> jax.Array | bool:
    """Whether the update of `step` reads the dense gradient: a regrowth
    by gradient (RigL, GraNet); SET grows at random and GraNet's pruning
    reads |w| only (the training-FLOPs accounting of `jaxprune.flops`)."""
    if self.growth != "gradient":
      return False
    return self.is_update_step(step) & self._regrows(step)

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
  ) -> tuple[Masks, jax.Array]:
    """New masks, and `check_finite`'s code for |w| and the gradient (the
    masks stay as they were when it is not 0)."""
    if grads is None and self.growth == "gradient":
      raise ValueError(
        f"pruner '{self.name}' grows by the dense gradient: let "
        "jaxprune.wrap's update call it"
      )
    del aux
    values = [w for _, _, w in _pruned_leaves(masks, params)[0]]
    if self.growth == "gradient":
      values += [g for _, _, g in _pruned_leaves(masks, grads)[0]]
    code = check_finite(dict(zip(self._names(masks), values, strict=True)))

    def evolve(masks):
      if self.pruning is not None:
        masks = jax.lax.cond(
          self.pruning.is_update(step),
          lambda m: self._prune(params, m, self.pruning.sparsity(step)),
          lambda m: m,
          masks,
        )
      return jax.lax.cond(
        self._regrows(step),
        lambda m: self._regrow(params, grads, m, self.drop_rate(step), key),
        lambda m: m,
        masks,
      )

    return keep_if_finite(code, evolve(masks), masks), code

  def check(self, masks: Masks, aux: jax.Array) -> None:
    """Raises if the last mask update met NaN or infinity (its masks were
    left unchanged); `jaxprune.check(state)` calls it."""
    raise_nonfinite(self._names(masks), aux)

  def _names(self, masks):
    paths = masked_paths(masks)
    if self.growth == "gradient":
      paths += [f"{p} (gradient)" for p in paths]
    return paths

  def _initial(self, params, masks, key):
    """Uniform noise, one stream per leaf, top-k at per-leaf counts."""
    rules = self.policy.rules(params)
    leaves, rebuild = _pruned_leaves(masks, params)
    d = self.distribution
    sparsities = allocation.leaf_sparsities(
      dict(d) if isinstance(d, tuple) else d,
      [p for p, _, _ in leaves],
      [m.shape for _, m, _ in leaves],
      [rules[p] for p, _, _ in leaves],
      self.initial_sparsity,
    )
    out = []
    for i, ((_, m, _), s) in enumerate(zip(leaves, sparsities, strict=True)):
      noise = jax.random.uniform(jax.random.fold_in(key, i), m.shape)
      out.append(selection.topk_mask(noise, selection.kept_count(m.size, s)))
    return rebuild(out)

  def _prune(self, params, masks, sparsity):
    rules = self.policy.rules(params)
    leaves, rebuild = _pruned_leaves(masks, params)
    scores = [jnp.where(m, jnp.abs(w), -1.0) for _, m, w in leaves]
    kept = [None] * len(leaves)
    fixed_kept, free = 0, []
    for i, (path, m, _) in enumerate(leaves):
      fixed = rules[path].fixed
      if fixed is None:
        free.append(i)
        continue
      target = selection.kept_count(m.size, fixed)
      nnz = selection.count_true(m)
      kept[i] = selection.topk_mask(scores[i], jnp.minimum(target, nnz))
      fixed_kept += target
    total = sum(m.size for _, m, _ in leaves)
    active = sum(selection.count_true(leaves[i][1]) for i in free)
    budget = selection.kept_count(total, sparsity) - fixed_kept
    budget = jnp.clip(budget, 0, active)
    chosen = selection.global_topk_masks([scores[i] for i in free], budget)
    for i, m in zip(free, chosen, strict=True):
      kept[i] = m
    return rebuild(kept)

  def _regrow(self, params, grads, masks, rate, key):
    leaves, rebuild = _pruned_leaves(masks, params)
    if self.growth == "gradient":
      grow = [jnp.abs(g) for _, _, g in _pruned_leaves(masks, grads)[0]]
    else:
      grow = [
        jax.random.uniform(jax.random.fold_in(key, i), m.shape)
        for i, (_, m, _) in enumerate(leaves)
      ]
    drop = [jnp.where(m, jnp.abs(w), -1.0) for _, m, w in leaves]
    out = []
    for (_, m, _), d, g in zip(leaves, drop, grow, strict=True):
      n = selection.count_true(m)
      n_drop = self._drop_count(rate, n)
      kept = selection.topk_mask(d, n - n_drop)
      grown = selection.topk_mask(jnp.where(kept, -1.0, g), n_drop)
      out.append(kept | grown)
    return rebuild(out)

  def _drop_count(self, rate, n):
    x = rate * n.astype(jnp.float32)
    x = jnp.ceil(x) if self.rounding == "ceil" else jnp.floor(x)
    return jnp.clip(x.astype(jnp.int32), 0, n)


def _pruned_leaves(masks, tree):
  """(path, mask, leaf of `tree`) for every masked leaf, and a function that
  puts one new mask per such leaf back into the masks' tree."""
  flat, treedef = jax.tree.flatten_with_path(masks, is_leaf=lambda x: x is None)
  values = jax.tree.leaves(tree)
  leaves = [
    (path_str(p), m, v)
    for (p, m), v in zip(flat, values, strict=True)
    if m is not None
  ]

  def rebuild(new):
    it = iter(new)
    return jax.tree.unflatten(
      treedef, [None if m is None else next(it) for _, m in flat]
    )

  return leaves, rebuild


def granet(
  final_sparsity: float,
  *,
  begin: int,
  end: int,
  frequency: int,
  total_steps: int,
  initial_sparsity: float = 0.0,
  distribution: str | Mapping = "erk",
  drop_fraction: float = 0.5,
  drop_floor: float = 0.005,
  regrow_end: int | None = None,
  policy: Policy = Policy(),
) -> DropGrowPruner:
  """GraNet: gradual global magnitude pruning with zero-cost regeneration.

  Every `frequency` steps in [begin, end] (and at `end`) all prunable leaves
  are pruned together by |w| to the cubic schedule's sparsity
  s_t = s_f + (s_i - s_f) * (1 - (t - begin) / (end - begin))^3, exactly
  `final_sparsity` from `end` on. Then, every `frequency` steps from `begin`
  to `regrow_end`, each leaf drops `ceil(r_t * nnz)` of its smallest active
  |w| and regrows as many by the largest |dense gradient|; r_t decays on a
  cosine from `drop_fraction` at step 0 to `drop_floor` at `total_steps`.

  Args:
    final_sparsity: s_f = 1 - d_f, reached exactly at `end`.
    begin: first pruning and regeneration step.
    end: last pruning step (> begin).
    frequency: steps between updates.
    total_steps: training length: the drop rate's decay length and the
      default `regrow_end`.
    initial_sparsity: s_i = 1 - d_i. 0 prunes dense-to-sparse; above 0
      trains sparse-to-sparse from a random mask drawn by `tx.init` with
      `distribution` (the paper uses 0.5 with 'erk').
    distribution: per-leaf ratios of that random mask ('erk', 'er',
      'uniform' or a path-pattern map).
    drop_fraction: initial regeneration rate (0.5 in the paper).
    drop_floor: final regeneration rate (0.005 in the paper).
    regrow_end: last regeneration step; `total_steps` if None.
    policy: which leaves are pruned (`Policy.fixed` leaves are pruned to
      their own sparsity, outside the global ranking).

  Returns:
    A `DropGrowPruner` for `jaxprune.wrap` (give it a key when
    `initial_sparsity` > 0).

  Raises:
    ValueError: for sparsities outside [0, 1], `final_sparsity` below
      `initial_sparsity`, or a bad window.

  >>> p = granet(0.9, begin=0, end=1000, frequency=100, total_steps=2000)
  >>> float(p.pruning.sparsity(1000)) == float(jnp.float32(0.9))
  True
  >>> [round(float(p.drop_rate(t)), 4) for t in (0, 1000, 2000)]
  [0.5, 0.2525, 0.005]
  """
  _check_fraction("final_sparsity", final_sparsity)
  if final_sparsity < initial_sparsity:
    raise ValueError(
      f"final_sparsity={final_sparsity}: expected >= initial_sparsity="
      f"{initial_sparsity} (GraNet only prunes)"
    )
  if total_steps < end:
    raise ValueError(
      f"total_steps={total_steps}: expected >= end={end}, the last pruning step"
    )
  return DropGrowPruner(
    pruning=schedules.polynomial(
      final_sparsity, begin, end, frequency, initial_sparsity, power=3
    ),
    initial_sparsity=initial_sparsity,
    distribution=distribution,
    growth="gradient",
    drop_fraction=drop_fraction,
    drop_floor=drop_floor,
    decay_steps=total_steps,
    rounding="ceil",
    begin=begin,
    end=total_steps if regrow_end is None else regrow_end,
    frequency=frequency,
    policy=policy,
    name="granet",
  )


def _constant_sparsity(
  name, growth, sparsity, end, frequency, drop_fraction, distribution, policy
):
  _check_fraction("sparsity", sparsity)
  if end < 1:
    raise ValueError(f"end={end}: expected the last update step, >= 1")
  return DropGrowPruner(
    pruning=None,
    initial_sparsity=sparsity,
    distribution=distribution,
    growth=growth,
    drop_fraction=drop_fraction,
    drop_floor=0.0,
    decay_steps=end,
    rounding="floor",
    begin=0,
    end=end,
    frequency=frequency,
    policy=policy,
    name=name,
  )


def rigl(
  sparsity: float,
  *,
  end: int,
  frequency: int = 100,
  drop_fraction: float = 0.3,
  distribution: str | Mapping = "erk",
  policy: Policy = Policy(),
) -> DropGrowPruner:
  """RigL: constant sparsity; drop the smallest |w|, grow the largest |g|.

  A random mask with exact per-leaf counts (`distribution`) is drawn by
  `tx.init` from the key given to `jaxprune.wrap`. Every `frequency` steps,
  from step `frequency` up to `end`, each leaf drops `floor(r_t * nnz)` of
  its smallest active |w| and grows as many positions with the largest
  |dense gradient|, grown weights starting at zero;
  r_t = drop_fraction * (1 + cos(pi * t / end)) / 2.

  Args:
    sparsity: fraction of the prunable entries pruned throughout.
    end: last mask update; the drop rate reaches 0 there.
    frequency: steps between mask updates.
    drop_fraction: drop rate at step 0.
    distribution: per-leaf sparsities: 'erk', 'er', 'uniform' or a map.
    policy: which leaves are pruned.

  Returns:
    A `DropGrowPruner` for `jaxprune.wrap(..., key=...)`.

  >>> import jax, jax.numpy as jnp, optax, jaxprune
  >>> params = {'w': jax.random.normal(jax.random.key(0), (8, 8))}
  >>> pruner = rigl(0.75, end=100, frequency=10, distribution='uniform')
  >>> tx = jaxprune.wrap(optax.sgd(0.1), pruner, key=jax.random.key(1))
  >>> state = tx.init(params)
  >>> grads = jax.tree.map(jnp.ones_like, params)
  >>> updates, state = tx.update(grads, state, params)
  >>> int(jaxprune.masks_of(state)['w'].sum())
  16
  >>> round(float(pruner.drop_rate(50)), 3)
  0.15
  """
  return _constant_sparsity(
    "rigl",
    "gradient",
    sparsity,
    end,
    frequency,
    drop_fraction,
    distribution,
    policy,
  )


def set_(
  sparsity: float,
  *,
  end: int,
  frequency: int = 100,
  drop_fraction: float = 0.3,
  distribution: str | Mapping = "erk",
  policy: Policy = Policy(),
) -> DropGrowPruner:
  """SET: constant sparsity; drop the smallest |w|, grow at random.

  As `rigl`, but the grown positions are the top of uniform noise drawn
  from the step's key (`fold_in(wrap key, step)`, one stream per leaf), so
  no gradient is needed. Named with a trailing underscore to leave Python's
  `set` alone; configs use 'set'.

  Args:
    sparsity: fraction of the prunable entries pruned throughout.
    end: last mask update; the drop rate reaches 0 there.
    frequency: steps between mask updates.
    drop_fraction: drop rate at step 0.
    distribution: per-leaf sparsities: 'erk', 'er', 'uniform' or a map.
    policy: which leaves are pruned.

  Returns:
    A `DropGrowPruner` for `jaxprune.wrap(..., key=...)`.

  >>> p = set_(0.9, end=1000)
  >>> p.growth, [round(float(p.drop_rate(t)), 3) for t in (0, 500, 1000)]
  ('random', [0.3, 0.15, 0.0])
  """
  return _constant_sparsity(
    "set",
    "random",
    sparsity,
    end,
    frequency,
    drop_fraction,
    distribution,
    policy,
  )
