"""PDP: parameter-free differentiable pruning (Cho, Adya, Naik, NeurIPS 2023).

A weight w enters the forward pass as w * m(w), with the soft mask

    m(w) = sigmoid((w^2 - t^2) / tau),

where t lies midway between the smallest kept and the largest pruned |w| of
its leaf at the current target sparsity. The mask has no parameters of its
own: t follows the weights. m(t) = 1/2, and m goes from 1/10 to 9/10 while
w^2 moves by 2 tau ln 9 around t^2, about 2.2 tau / t in |w|.

Gradients. The loss must be differentiated with respect to the params
*through* the forward pass, `jax.grad(lambda p: loss(jaxprune.forward(p,
state)))(params)`, so that the gradient of w * m(w) flows through both w and
m. t is a constant of the step (it is read from the pruner's state): moving
w does not move t. For pruners with hard masks `forward` is the identity,
so this form gives them the same gradient as differentiating with respect
to `jaxprune.forward(params, state)`; with PDP the latter would skip the
mask's derivative (a straight-through gradient).

Schedule, in update steps (the update of step s sees the params the forward
of step s used; what it sets takes effect from the forward of step s + 1):

- steps before `begin`: dense training, no soft mask;
- `begin`: every leaf's budget at the final sparsity is fixed by one
  magnitude ranking (`distribution='global'`, the paper's), or by 'uniform',
  'erk', 'er' or a path-pattern map, with `Policy.fixed` leaves at their
  own sparsity (`ScorePruner` does the ranking);
- steps s in [begin, harden_step): a leaf whose budget prunes P units
  prunes round(r(s) P) of them in its soft mask, with the paper's linear
  ramp r(s) = min(1, (s - begin + 1) / (end - begin + 1)): the target
  grows by the same amount each step and is final from `end` on;
- `harden_step` (default `end`): the masks become binary with exactly the
  final count per leaf (top-k of |w|, lower index first among ties; the
  mask m >= 1/2 up to ties at t). The wrapper zeroes the pruned weights at
  once; from then on `forward` is the identity and fine-tuning runs on the
  hard masks. A `harden_step` after `end` trains soft at the full target
  first, as the paper does.

Until hardening the binary masks of `jaxprune.wrap` stay all-True, so the
wrapper zeroes no weight and no gradient: only the soft mask acts.

Threshold cost. The update of step s finds t from the weights it sees and
stores it; the forward passes of step s + 1 read it, so t lags the weights
by one optimizer step. The search is `core.selection.boundary`: exact, no
sort, a few counting passes over the leaf, warm-started from the previous
step's t (the first soft step starts cold). Recomputing t inside the
forward pass instead would forgo the warm start and repeat the search at
every forward call.

Structures. `NM(m)`: t is found per group of m consecutive entries along
the axis, midway between the group's n-th and (n+1)-th largest |w|;
hardening keeps exactly n of every m (the final sparsity is 1 - n/m and
the ramp steps n down from m). `Channel(axis)`: each slice along `axis`
is scored by its L2 norm s, t lies between norms, and the slice's weights
share the mask sigmoid((s^2 - t^2) / tau); hardening keeps whole slices.

tau is absolute, in the units of w^2 (or s^2): the sharpness depends on the
weight scale. `tau_relative=True` uses tau * t^2 instead, so tau is then a
fraction of t^2, scale-free. The two implementations of the paper use
1e-4 and 1e-5 absolute.

Evaluation. `jaxprune.forward(params, state)` gives the soft model,
`hard_masks(params, state)` the binary masks hardening would give now.

Bad values. Non-finite weights at `begin` or at hardening leave the masks
and the phase as they were and record the leaf; `jaxprune.check(state)`
raises naming it. In the soft phase a NaN weight makes the loss NaN.
"""

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.core import schedules, scores, selection
from jaxprune.core.policy import Policy
from jaxprune.core.tree import map_masked, path_str
from jaxprune.core.types import Masks, Params
from jaxprune.pruner import (
  NM,
  Channel,
  ScorePruner,
  all_kept,
  check_finite,
  masked_paths,
  raise_nonfinite,
)
from jaxprune.transform import PruneState, state_of

DENSE, SOFT, HARD = 0, 1, 2
"""The phases of `PDPState.phase`."""

_FIRST_REACH = 0.05
"""The first warm start's reach, as a fraction of the first t."""


class Leaf(NamedTuple):
  """What PDP holds for one pruned leaf. Units are entries (unstructured),
  channels (`Channel`) or entries of each group of m (`NM`).

  Attributes:
    pruned: units pruned at the final sparsity, fixed at `begin`.
    kept: units kept at the current target.
    t: the threshold the forward pass uses: a scalar, or one per group of
      m (shaped like the leaf with the N:M axis last, divided by m).
    reach: how far from t the next search first looks (unused for N:M).
  """

  pruned: jax.Array
  kept: jax.Array
  t: jax.Array
  reach: jax.Array


class PDPState(NamedTuple):
  """The pruner's `aux`.

  Attributes:
    phase: `DENSE`, `SOFT` or `HARD`.
    leaves: a `Leaf` for every pruned leaf, `None` elsewhere (shaped like
      the masks).
    code: `check_finite`'s code of the last ranking or hardening.
  """

  phase: jax.Array
  leaves: Any
  code: jax.Array


@dataclasses.dataclass(frozen=True)
class PDPPruner:
  """Soft masks m(w) = sigmoid((w^2 - t^2) / tau), then hard masks.

  Build it with `pdp`; the attributes are its arguments.
  """

  sparsity: float
  begin: int
  end: int
  harden_step: int
  tau: float
  tau_relative: bool
  distribution: str | tuple
  structure: NM | Channel | None
  policy: Policy
  name: str = "pdp"
  ranking: ScorePruner = dataclasses.field(
    init=False, repr=False, compare=False
  )
  """Ranks |w| once, at `begin`, into per-leaf budgets."""

  def __post_init__(self):
    if isinstance(self.distribution, Mapping):
      object.__setattr__(
        self, "distribution", tuple(sorted(self.distribution.items()))
      )
    schedules.one_shot(self.sparsity)  # validates the sparsity
    if not (np.isfinite(self.tau) and self.tau > 0):
      raise ValueError(
        f"tau={self.tau}: expected a finite number > 0 (the soft mask's "
        "transition width in units of w^2, or of t^2 with tau_relative)"
      )
    if not 0 <= self.begin <= self.end <= self.harden_step:
      raise ValueError(
        "expected 0 <= begin <= end <= harden_step, got "
        f"begin={self.begin}, end={self.end}, harden_step={self.harden_step}"
      )
    if self.distribution == "global" and self.structure is not None:
      raise ValueError(
        f"distribution='global' ranks single weights; structure="
        f"{self.structure} needs distribution='uniform', 'erk', 'er' or a map"
      )
    ranking = ScorePruner(
      score=scores.magnitude,
      schedule=schedules.one_shot(self.sparsity),
      distribution=self.distribution,
      structure=self.structure,
      policy=self.policy,
      name=self.name,
    )
    object.__setattr__(self, "ranking", ranking)

  @property
  def only_prunes(self) -> bool:
    """True: the masks stay as given until hardening, which only prunes."""
    return True

  def ramp(self, step: jax.Array | int) -> jax.Array:
    """Fraction of each leaf's budget pruned by the update of `step`:
    min(1, (step - begin + 1) / (end - begin + 1)), 0 before `begin`."""
    t = jnp.asarray(step, jnp.float32) - self.begin + 1.0
    return jnp.clip(t / (self.end - self.begin + 1.0), 0.0, 1.0)

  def init(self, params: Params, key: jax.Array) -> tuple[Masks, PDPState]:
    del key
    masks = all_kept(params, self.policy)
    for path, m in _masked(masks):
      self._check_shape(path, m.shape)
    return masks, PDPState(jnp.int32(DENSE), self._fresh(masks), jnp.int32(0))

  def is_update_step(self, step: jax.Array) -> jax.Array:
    step = jnp.asarray(step)
    return (step >= self.begin) & (step <= self.harden_step)

  def forward(self, params: Params, masks: Masks, aux: PDPState) -> Params:
    ws, put = _pruned(masks, params)
    return put(_soft(self, ws, _leaf_list(aux.leaves), aux.phase == SOFT))

  def update(
    self,
    params: Params,
    grads: Params | None,
    masks: Masks,
    aux: PDPState,
    step: jax.Array,
    key: jax.Array,
  ) -> tuple[Masks, PDPState]:
    """Budgets at `begin`, the ramped thresholds, hard masks at
    `harden_step`; masks and state unchanged if the weights are not finite
    at `begin` or at hardening (the code is recorded)."""
    del grads
    leaves, code = jax.lax.cond(
      aux.phase == DENSE,
      lambda: self._budgets(params, masks, key),
      lambda: (aux.leaves, jnp.int32(0)),
    )
    r = self.ramp(step)
    leaves = map_masked(
      lambda m, leaf: leaf._replace(
        kept=self._units(m.shape)
        - jnp.round(r * leaf.pruned.astype(jnp.float32)).astype(jnp.int32)
      ),
      masks,
      leaves,
    )

    def soften():
      new = jax.lax.cond(
        aux.phase == SOFT,
        lambda: self._thresholds(params, masks, leaves, warm=True),
        lambda: self._thresholds(params, masks, leaves, warm=False),
      )
      return masks, PDPState(jnp.int32(SOFT), new, code)

    def harden():
      named = {p: jnp.abs(w) for p, w in _masked(masks, params)}
      hard_code = jnp.maximum(code, check_finite(named))
      hard = map_masked(self._hard_leaf, masks, params, leaves)
      # Only here can masks change: the soft phase passes them through.
      ok = hard_code == 0
      hard = map_masked(lambda h, m: jnp.where(ok, h & m, m), hard, masks)
      return hard, PDPState(jnp.int32(HARD), leaves, hard_code)

    new_masks, new_aux = jax.lax.cond(step >= self.harden_step, harden, soften)
    ok = new_aux.code == 0
    keep = lambda new, old: jnp.where(ok, new, old)
    new_aux = jax.tree.map(keep, new_aux, aux._replace(code=new_aux.code))
    return new_masks, new_aux

  def check(self, masks: Masks, aux: PDPState) -> None:
    """Raises if the ranking at `begin` or the hardening met NaN or
    infinity; `jaxprune.check(state)` calls it."""
    raise_nonfinite(masked_paths(masks), aux.code)

  def hard_masks(self, params: Params, masks: Masks, aux: PDPState) -> Masks:
    """Binary masks with exactly the current target count per leaf (the
    masks held once hardened; all-True before `begin`)."""
    hard = lambda: map_masked(self._hard_leaf, masks, params, aux.leaves)
    return jax.lax.cond(aux.phase == HARD, lambda: masks, hard)

  # Per-leaf pieces.

  def _units(self, shape) -> int:
    if isinstance(self.structure, NM):
      return self.structure.m
    if isinstance(self.structure, Channel):
      return shape[self.structure.axis]
    return int(np.prod(shape))

  def _t_shape(self, shape) -> tuple[int, ...]:
    if not isinstance(self.structure, NM):
      return ()
    moved = _moved_shape(shape, self.structure.axis)
    return (*moved[:-1], moved[-1] // self.structure.m)

  def _check_shape(self, path, shape):
    s = self.structure
    if s is None:
      return
    if not -len(shape) <= s.axis < len(shape):
      raise ValueError(
        f"leaf '{path}' of shape {shape} has no axis {s.axis} for structure={s}"
      )
    if isinstance(s, NM) and shape[s.axis] % s.m:
      raise ValueError(
        f"leaf '{path}': N:M with m={s.m} needs the length of axis "
        f"{s.axis} divisible by {s.m}; shape {shape} has {shape[s.axis]}"
      )

  def _budgets(self, params, masks, key):
    """Per-leaf pruned units at the final sparsity, from one ranking."""
    ranked, code = self.ranking.masks_at(
      params, None, masks, self.sparsity, key
    )

    def leaf(r, m, old):
      per_unit = m.size // self._units(m.shape)
      pruned = (m.size - jnp.sum(r, dtype=jnp.int32)) // per_unit
      return old._replace(pruned=pruned)

    return map_masked(leaf, ranked, masks, self._fresh(masks)), code

  def _fresh(self, masks):
    """Leaves before `begin`: nothing pruned, all units kept."""
    return map_masked(
      lambda m: Leaf(
        pruned=jnp.int32(0),
        kept=jnp.int32(self._units(m.shape)),
        t=jnp.zeros(self._t_shape(m.shape), jnp.float32),
        reach=jnp.float32(0),
      ),
      masks,
    )

  def _thresholds(self, params, masks, leaves, warm):
    return map_masked(
      lambda m, w, leaf: self._threshold_leaf(w, leaf, warm),
      masks,
      params,
      leaves,
    )

  def _threshold_leaf(self, w, leaf, warm):
    """t midway between the smallest kept and the largest pruned score."""
    units, k = self._units(w.shape), leaf.kept
    if isinstance(self.structure, NM):
      groups = _groups(jnp.abs(w).astype(jnp.float32), self.structure)
      keep = selection.nm_mask(groups, k, self.structure.m)
      kept_min = jnp.min(jnp.where(keep, groups, jnp.inf), axis=-1)
      pruned_max = jnp.max(jnp.where(keep, -jnp.inf, groups), axis=-1)
      t = _midpoint(kept_min, pruned_max, k, units)
      return leaf._replace(t=t)
    score = self._scores(w)
    guess = (leaf.t, leaf.reach) if warm else None
    t = _midpoint(*selection.boundary(score, k, guess), k, units)
    # Twice the last move of t covers a steady drift; the floor keeps the
    # reach above zero when t stands still.
    moved = 2.0 * jnp.abs(t - leaf.t) + 1e-4 * t
    return leaf._replace(t=t, reach=moved if warm else _FIRST_REACH * t)

  def _scores(self, w):
    """|w|, or the L2 norm of every channel."""
    if isinstance(self.structure, Channel):
      return jnp.sqrt(_channel_sumsq(w, self.structure.axis))
    return jnp.abs(w).astype(jnp.float32)

  def _soft_leaf(self, w, leaf):
    """w * m(w), the soft mask from the leaf's t."""
    t2 = jnp.where(
      leaf.kept == self._units(w.shape),
      -jnp.inf,
      jnp.where(leaf.kept == 0, jnp.inf, leaf.t * leaf.t),
    )
    s = self.structure
    if isinstance(s, NM):
      t2 = t2[..., None]  # one t per group, along the group's entries
    tau = self.tau
    if self.tau_relative:
      tau = tau * jnp.where(jnp.isfinite(t2), t2, 1.0)
    tau = jnp.maximum(tau, jnp.finfo(jnp.float32).tiny)
    soft = lambda s2: jax.nn.sigmoid((s2 - t2) / tau)
    if isinstance(s, Channel):
      m = soft(_channel_sumsq(w, s.axis))
      out = jnp.moveaxis(jnp.moveaxis(w, s.axis, -1) * m, -1, s.axis)
    elif isinstance(s, NM):
      groups = _groups(w, s)
      moved = (groups * soft(groups * groups)).reshape(
        _moved_shape(w.shape, s.axis)
      )
      out = jnp.moveaxis(moved, -1, s.axis)
    else:
      out = w * soft(w * w)
    return out.astype(w.dtype)

  def _hard_leaf(self, mask, w, leaf):
    del mask
    s, k = self.structure, leaf.kept
    if isinstance(s, NM):
      return selection.nm_mask(jnp.abs(w), k, s.m, s.axis)
    if isinstance(s, Channel):
      keep = selection.topk_mask(self._scores(w), k)
      shape = _moved_shape(w.shape, s.axis)
      return jnp.moveaxis(jnp.broadcast_to(keep, shape), -1, s.axis)
    return selection.topk_mask(jnp.abs(w), k)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _soft(pruner, ws, leaves, on):
  """The soft-masked leaves when `on`, else the leaves as they are.

  The branch is taken inside a custom VJP: differentiating a `lax.cond`
  makes both branches return the soft branch's residuals, which costs a
  quarter of a step on CPU even when the identity is taken. The backward
  pass recomputes the soft mask from w instead of storing it.
  """
  return jax.lax.cond(
    on,
    lambda: [
      pruner._soft_leaf(w, leaf) for w, leaf in zip(ws, leaves, strict=True)
    ],
    lambda: list(ws),
  )


def _soft_fwd(pruner, ws, leaves, on):
  return _soft(pruner, ws, leaves, on), (ws, leaves, on)


def _soft_bwd(pruner, residuals, cotangents):
  ws, leaves, on = residuals

  def through_mask():
    return [
      jax.vjp(lambda w, leaf=leaf: pruner._soft_leaf(w, leaf), w)[1](g)[0]
      for w, leaf, g in zip(ws, leaves, cotangents, strict=True)
    ]

  grads = jax.lax.cond(on, through_mask, lambda: list(cotangents))
  return grads, None, None


_soft.defvjp(_soft_fwd, _soft_bwd)


def _pruned(masks, tree):
  """The leaves of `tree` that the masks prune, and a function putting new
  ones in their places."""
  flat_masks = jax.tree.leaves(masks, is_leaf=lambda x: x is None)
  leaves, treedef = jax.tree.flatten(tree)
  where = [i for i, m in enumerate(flat_masks) if m is not None]

  def put(new):
    out = list(leaves)
    for i, x in zip(where, new, strict=True):
      out[i] = x
    return jax.tree.unflatten(treedef, out)

  return [leaves[i] for i in where], put


def _leaf_list(leaves):
  return jax.tree.leaves(leaves, is_leaf=lambda x: isinstance(x, Leaf))


def _masked(masks, tree=None):
  """(path, leaf of `tree`, or the mask itself) for every pruned leaf."""
  flat = jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
  values = [m for _, m in flat] if tree is None else jax.tree.leaves(tree)
  return [
    (path_str(p), v)
    for (p, m), v in zip(flat, values, strict=True)
    if m is not None
  ]


def _moved_shape(shape, axis):
  """`shape` with `axis` moved last, as `jnp.moveaxis(x, axis, -1)`."""
  shape = list(shape)
  last = shape.pop(axis)
  return (*shape, last)


def _groups(x, structure):
  """`x` with the N:M axis last, split into groups of m: (..., G, m)."""
  moved = jnp.moveaxis(x, structure.axis, -1)
  return moved.reshape(*moved.shape[:-1], -1, structure.m)


def _channel_sumsq(w, axis):
  """Sum of squares of every slice along `axis`, in float32."""
  moved = jnp.moveaxis(w, axis, -1).astype(jnp.float32)
  return jnp.sum(moved.reshape(-1, moved.shape[-1]) ** 2, axis=0)


def _midpoint(kept_min, pruned_max, kept, units):
  """Midway between the two scores; a finite value (the boundary score that
  exists) when nothing or everything is kept, where the mask ignores t."""
  mid = 0.5 * (kept_min + pruned_max)
  return jnp.where(
    kept == units, kept_min, jnp.where(kept == 0, pruned_max, mid)
  )


def _find(state: Any) -> PruneState:
  try:
    found = state_of(state)
  except ValueError:
    found = None
  if found is None or not isinstance(found.pruner, PDPPruner):
    raise ValueError(
      "pdp.hard_masks needs the state of an optimizer built with "
      "jaxprune.wrap(..., pdp(...))"
    )
  return found


def hard_masks(params: Params, state: Any) -> Masks:
  """The binary masks hardening would give now: exactly the current target
  count per leaf, for evaluating the hard model during the soft phase
  (`jaxprune.apply_masks(params, hard_masks(params, state))`).

  Raises:
    ValueError: if `state` holds no PDP pruner.
  """
  s = _find(state)
  return s.pruner.hard_masks(params, s.masks, s.aux)


def pdp(
  sparsity: float,
  *,
  begin: int,
  end: int,
  harden_step: int | None = None,
  tau: float = 1e-4,
  tau_relative: bool = False,
  distribution: str | Mapping = "global",
  structure: NM | Channel | None = None,
  policy: Policy = Policy(),
) -> PDPPruner:
  """PDP soft masks ramped to `sparsity`, then hard masks.

  Differentiate through the forward pass:
  `jax.grad(lambda p: loss(jaxprune.forward(p, state)))(params)`.

  Args:
    sparsity: final fraction of the prunable units pruned, in [0, 1].
    begin: the update that fixes the per-leaf budgets; soft masks act from
      the next step on (dense warm-up before).
    end: the update from which the soft masks prune the full budget (linear
      ramp from `begin`).
    harden_step: the update that makes the masks binary, exactly at the
      final count per leaf; `end` if None. Must be >= `end`.
    tau: transition width of the soft mask in units of w^2 (channel norm^2
      for `Channel`); m(w) = 0.9 at w^2 = t^2 + tau ln 9.
    tau_relative: use tau * t^2 as the width (tau a fraction of t^2).
    distribution: per-leaf budgets: 'global' (one magnitude ranking of all
      prunable weights, the paper's), 'uniform', 'erk', 'er' or a map from
      path pattern to sparsity. Structures need a per-leaf one.
    structure: None, `jaxprune.NM(m, axis)` or `jaxprune.Channel(axis)`.
    policy: which leaves are pruned; `Policy.fixed` leaves get their own
      sparsity.

  Returns:
    A `PDPPruner` for `jaxprune.wrap`.

  Raises:
    ValueError: for a sparsity outside [0, 1], tau <= 0, steps out of
      order, a structure with 'global', or (at `tx.init`) an N:M axis not
      divisible by m.

  >>> import jax, jax.numpy as jnp, optax, jaxprune
  >>> params = {'w': jnp.arange(1.0, 9.0).reshape(2, 4) / 8}
  >>> pruner = pdp(0.5, begin=0, end=1, harden_step=2)
  >>> tx = jaxprune.wrap(optax.sgd(0.0), pruner)
  >>> state = tx.init(params)
  >>> zero = jax.tree.map(jnp.zeros_like, params)
  >>> for _ in range(2):
  ...   _, state = tx.update(zero, state, params)
  >>> jaxprune.forward(params, state)['w']  # soft, t = 0.5625
  Array([[0.   , 0.   , 0.   , 0.   ],
         [0.625, 0.75 , 0.875, 1.   ]], dtype=float32)
  >>> _, state = tx.update(zero, state, params)  # hardening
  >>> jaxprune.masks_of(state)['w'].sum().item()
  4
  """
  return PDPPruner(
    sparsity=sparsity,
    begin=begin,
    end=end,
    harden_step=end if harden_step is None else harden_step,
    tau=tau,
    tau_relative=tau_relative,
    distribution=distribution,
    structure=structure,
    policy=policy,
  )
