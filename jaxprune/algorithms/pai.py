"""Pruning at initialization: SNIP, GraSP and SynFlow scores, and the masks.

A score is a pure function `(params, apply_fn, batches, *, policy) ->
scores`, higher kept, `None` on leaves `policy` does not prune, where
`apply_fn(params, x) -> logits` and `batches` is a sequence of `(x, y)`
pairs with integer labels `y`. `prune_at_init` turns a score into masks with
exact counts; training then runs under them with
`jaxprune.algorithms.fixed()` and `jaxprune.set_masks(state, masks)`, the
params masked by `jaxprune.apply_masks`. The layerwise-shuffle sanity check
(Frankle et al. 2021: same per-leaf counts, random positions) is
`jaxprune.algorithms.lottery.shuffle(masks, key)`.

Scores, with L the mean softmax cross-entropy of one batch:

- SNIP: |w * sum_b dL_b/dw|, divided by its sum over all pruned leaves.
- GraSP: w * Hg with logits divided by `temperature` (200) in L,
  g = sum_b dL_b/dw (a constant) and Hg = sum_b H_b g, both restricted to
  the pruned leaves (Hg is a forward-over-reverse `jax.jvp` of the
  gradient). The paper writes S = -w * Hg and removes the largest S; here
  the score is -S = w * Hg, so the lowest w * Hg are removed, the same
  masks. No normalization: the reference's division by |sum S| does not
  change the ranking.
- SynFlow: data-free. Every param is replaced by its absolute value, the
  input by ones shaped like one example of the first batch, R = sum of the
  outputs and the score is |dR/dw * w|. The caller's params are never
  changed, so their signs need no restoring. Computed in float32 (the
  reference uses float64): very deep models can overflow R, which the finite
  check reports.
"""

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxprune.core.policy import Policy
from jaxprune.core.schedules import one_shot
from jaxprune.core.tree import apply_masks, map_masked, path_str
from jaxprune.core.types import Masks, Params, Scores
from jaxprune.pruner import (
  ScorePruner,
  all_kept,
  masked_paths,
  raise_nonfinite,
)

ApplyFn = Callable[[Params, jax.Array], jax.Array]
"""`apply_fn(params, x) -> logits`."""

Batch = tuple[jax.Array, jax.Array]
"""`(inputs, integer labels)`."""


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy with integer labels."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _on_pruned(fn, policy, params, *trees):
  """`fn(*leaves)` on the leaves `policy` prunes, `None` elsewhere."""
  rules = policy.rules(params)
  return jax.tree.map_with_path(
    lambda p, *x: fn(*x) if path_str(p) in rules else None, params, *trees
  )


def _summed_grad(loss, params, batches):
  grads = [jax.grad(loss)(params, b) for b in batches]
  return jax.tree.map(lambda *g: sum(g), *grads)


def snip(
  params: Params,
  apply_fn: ApplyFn,
  batches: Sequence[Batch],
  *,
  loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy,
  policy: Policy = Policy(),
) -> Scores:
  """SNIP connection sensitivity |w * g|, normalized to sum to one.

  Args:
    params: the initial params.
    apply_fn: `(params, x) -> logits`.
    batches: `(x, y)` pairs; their gradients are summed.
    loss_fn: `(logits, y) -> scalar`.
    policy: the leaves scored (and normalized over).

  Returns:
    Scores on the pruned leaves, `None` elsewhere.

  >>> import jax.numpy as jnp
  >>> params = {'w': jnp.array([[1.0, -2.0], [0.5, 0.0]])}
  >>> batch = (jnp.array([[1.0, 2.0]]), jnp.array([0]))
  >>> snip(params, lambda p, x: x @ p['w'], [batch])['w'].round(3)
  Array([[0.25, 0.5 ],
         [0.25, 0.  ]], dtype=float32)
  """
  loss = lambda p, b: loss_fn(apply_fn(p, b[0]), b[1])
  g = _summed_grad(loss, params, batches)
  raw = _on_pruned(lambda w, gw: jnp.abs(w * gw), policy, params, g)
  total = sum(jnp.sum(s) for s in jax.tree.leaves(raw))
  total = jnp.where(total > 0, total, 1.0)
  return jax.tree.map(lambda s: s / total, raw)


def grasp(
  params: Params,
  apply_fn: ApplyFn,
  batches: Sequence[Batch],
  *,
  temperature: float = 200.0,
  loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy,
  policy: Policy = Policy(),
) -> Scores:
  """GraSP: w * Hg, higher kept (the paper's S = -w * Hg, lowest S kept).

  Args:
    params: the initial params.
    apply_fn: `(params, x) -> logits`.
    batches: `(x, y)` pairs; g and Hg are sums over them.
    temperature: logits are divided by it in the loss (200 in the paper).
    loss_fn: `(logits, y) -> scalar`.
    policy: the leaves scored; g is taken as zero on the others.

  Returns:
    Scores on the pruned leaves, `None` elsewhere.

  >>> import jax.numpy as jnp
  >>> params = {'w': jnp.array([[1.0, -2.0], [0.5, 0.0]])}
  >>> batch = (jnp.array([[1.0, 2.0]]), jnp.array([0]))
  >>> grasp(params, lambda p, x: x @ p['w'], [batch])['w'].shape
  (2, 2)
  """
  loss = lambda p, b: loss_fn(apply_fn(p, b[0]) / temperature, b[1])
  g = jax.lax.stop_gradient(_summed_grad(loss, params, batches))
  rules = policy.rules(params)
  tangent = jax.tree.map_with_path(
    lambda p, w, gw: gw if path_str(p) in rules else jnp.zeros_like(w),
    params,
    g,
  )
  hg = [
    jax.jvp(functools.partial(jax.grad(loss), b=b), (params,), (tangent,))[1]
    for b in batches
  ]
  hg = jax.tree.map(lambda *h: sum(h), *hg)
  return _on_pruned(lambda w, h: w * h, policy, params, hg)


def synflow(
  params: Params,
  apply_fn: ApplyFn,
  batches: Sequence[Batch],
  *,
  policy: Policy = Policy(),
) -> Scores:
  """SynFlow: |dR/dw * w| for R = sum(apply_fn(|params|, ones)).

  Data-free: the batches give only the shape of the all-ones float input
  (one example shaped like the first batch's).

  Args:
    params: the (masked) params; every leaf, biases included, enters as its
      absolute value.
    apply_fn: `(params, x) -> outputs`, in inference mode.
    batches: `(x, y)` pairs; only `x` of the first is read, for its shape.
    policy: the leaves scored.

  Returns:
    Scores on the pruned leaves, `None` elsewhere.

  >>> import jax.numpy as jnp
  >>> params = {'w': jnp.array([[1.0, -2.0], [0.5, 0.0]])}
  >>> batch = (jnp.zeros((4, 2)), jnp.zeros(4, int))
  >>> synflow(params, lambda p, x: x @ p['w'], [batch])['w']
  Array([[1. , 2. ],
         [0.5, 0. ]], dtype=float32)
  """
  x = batches[0][0]
  ones = jnp.ones((1, *x.shape[1:]), jnp.promote_types(x.dtype, jnp.float32))
  absolute = jax.tree.map(jnp.abs, params)
  flow = jax.grad(lambda p: jnp.sum(apply_fn(p, ones)))(absolute)
  return _on_pruned(lambda w, g: jnp.abs(g * w), policy, absolute, flow)


METHODS = {"snip": snip, "grasp": grasp, "synflow": synflow}
"""Scores by name, for `prune_at_init(method=...)`."""


def exponential_sparsities(sparsity: float, iterations: int) -> list[float]:
  """SynFlow's targets: density d^((k + 1) / K) at round k of K.

  The last target is `sparsity` itself, so the final count is exact.

  >>> [round(s, 4) for s in exponential_sparsities(0.99, 2)]
  [0.9, 0.99]

  Raises:
    ValueError: for a sparsity outside [0, 1] or fewer than one round.
  """
  if not 0.0 <= sparsity <= 1.0:
    raise ValueError(f"sparsity={sparsity}: a sparsity must be in [0, 1]")
  if iterations < 1:
    raise ValueError(f"iterations={iterations}: expected an integer >= 1")
  density = 1.0 - sparsity
  rounds = [1.0 - density ** ((k + 1) / iterations) for k in range(iterations)]
  return rounds[:-1] + [float(sparsity)]


def _given(params: Params, scores: Scores, key: jax.Array) -> Scores:
  """A ScorePruner score that returns scores computed beforehand."""
  del params, key
  return scores


def _pruned_last(scores: Scores, masks: Masks) -> Scores:
  """Scores in which every pruned entry ranks strictly below every kept
  one, so that a pruned entry never returns; a scalar placeholder on
  leaves without a mask."""
  lows = jax.tree.leaves(
    map_masked(lambda m, s: jnp.min(jnp.where(m, s, jnp.inf)), masks, scores)
  )
  floor = jnp.nextafter(jnp.min(jnp.stack(lows)), -jnp.inf) if lows else 0.0
  return map_masked(
    lambda m, s: jnp.where(m, s.astype(jnp.float32), floor),
    masks,
    scores,
    absent=jnp.zeros(()),
  )


def prune_at_init(
  params: Params,
  sparsity: float,
  apply_fn: ApplyFn,
  batches: Sequence[Batch],
  *,
  method: str | Callable[..., Scores] = "snip",
  iterations: int | None = None,
  distribution: str | Mapping = "global",
  min_fraction: float = 0.0,
  policy: Policy = Policy(),
) -> Masks:
  """Masks from a prune-at-init score, with exact counts.

  Round k of `iterations` scores the params masked by round k - 1 and keeps
  the top entries at the k-th target of `exponential_sparsities`; pruned
  entries rank below every kept one, so masks only shrink. One compilation
  serves all rounds.

  Args:
    params: the initial params.
    sparsity: fraction of the prunable entries removed, in [0, 1].
    apply_fn: `(params, x) -> logits`.
    batches: `(x, y)` pairs for the score.
    method: 'snip', 'grasp', 'synflow', or a score
      `(params, apply_fn, batches, *, policy) -> scores` (e.g.
      `functools.partial(grasp, temperature=100.0)`).
    iterations: scoring rounds; None means 100 for 'synflow', 1 otherwise.
    distribution: 'global' (one ranking, as the papers), 'uniform', 'erk',
      'er' or a path-pattern map (see `jaxprune.ScorePruner`).
    min_fraction: with 'global', every leaf keeps at least
      `int(min_fraction * N)` entries (a guard against layer collapse).
    policy: which leaves are pruned.

  Returns:
    Bool masks, `None` on leaves `policy` does not prune.

  Raises:
    ValueError: for an unknown method or distribution, a sparsity outside
      [0, 1], or non-finite scores (naming the leaf).

  >>> import jax, jax.numpy as jnp
  >>> params = {'w': jax.random.normal(jax.random.key(0), (4, 3))}
  >>> batch = (jnp.ones((2, 4)), jnp.array([0, 2]))
  >>> masks = prune_at_init(params, 0.5, lambda p, x: x @ p['w'], [batch],
  ...                       method='synflow', iterations=3)
  >>> int(masks['w'].sum())
  6
  """
  if isinstance(method, str):
    if method not in METHODS:
      raise ValueError(
        f"method='{method}' is unknown; expected one of {list(METHODS)} or "
        "a score function"
      )
    score = METHODS[method]
  else:
    score = method
  if iterations is None:
    iterations = 100 if method == "synflow" else 1
  targets = exponential_sparsities(sparsity, iterations)
  selector = ScorePruner(
    score=_given,
    schedule=one_shot(sparsity),
    distribution=distribution,
    min_fraction=min_fraction,
    policy=policy,
    name="prune_at_init",
  )

  @jax.jit
  def one_round(params, batches, masks, target):
    scores = score(apply_masks(params, masks), apply_fn, batches, policy=policy)
    ranked = _pruned_last(scores, masks)
    return selector.masks_at(params, ranked, masks, target, None)

  masks = all_kept(params, policy)
  paths = masked_paths(masks)
  for target in targets:
    masks, code = one_round(params, batches, masks, jnp.float32(target))
    raise_nonfinite(paths, code)
  return masks
