"""Iterative magnitude pruning (IMP, lottery tickets) as pure functions.

IMP is not a gradient transform: the experiment trains under fixed masks
(`jaxprune.algorithms.fixed`), then calls `next_masks` on the trained params
and `rewind` to restart from the rewind point. Round r + 1 removes a fraction
of the weights round r kept, so a leaf pruned at rate p keeps about
(1 - p)^r of its weights after r rounds.

Counting, per leaf (layerwise) or over all pruned leaves (global): of the
`n` weights still kept, `round(rate * n)` are removed (the product in
float32, rounded half to even; see `jaxprune.core.selection`), the smallest
|w| first; among equal |w| the lower flat index is kept. Pruned weights
never return: they rank below every kept weight, whatever their value.

Controls (Frankle & Carbin 2019): `random_reinit` keeps the mask and draws a
fresh initialisation; `shuffle` keeps each leaf's count and moves the kept
positions at random (random pruning).
"""

import functools
import re
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxprune.core import selection
from jaxprune.core.policy import LeafRule, Policy
from jaxprune.core.tree import apply_masks, path_str
from jaxprune.core.types import Masks, Params


def _flat(tree: Masks) -> tuple[list, jax.tree_util.PyTreeDef]:
  return jax.tree.flatten_with_path(tree, is_leaf=lambda x: x is None)


def _check_rate(name: str, rate: float) -> None:
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"{name} = {rate}: a pruning rate must be in [0, 1]")


def _leaf_rate(path, rule, rate, rates) -> float:
  matched = [r for pattern, r in rates if re.search(pattern, path)]
  leaf_rate = matched[-1] if matched else rate * rule.scale
  _check_rate(f"the rate of '{path}'", leaf_rate)
  return leaf_rate


def next_masks(
  params: Params,
  masks: Masks,
  rate: float,
  *,
  policy: Policy = Policy(),
  layerwise: bool = True,
  rates: Mapping[str, float] | None = None,
) -> Masks:
  """The masks of the next IMP round: prunes `rate` of the remaining weights.

  Args:
    params: trained params, ranked by |w|.
    masks: this round's masks (`None` on leaves `policy` does not prune).
    rate: fraction of the *remaining* weights removed this round.
    policy: which leaves are pruned; `Policy.scale` multiplies `rate` per
      leaf (LeNet's 20% / 20% / 10%: rate 0.2, `scale={'fc3': 0.5}`) and
      `Policy.fixed` holds a leaf at a fixed sparsity.
    layerwise: True: every leaf removes its own share (the LTH paper);
      False: one ranking over all pruned leaves (open_lth), which refuses
      per-leaf rates.
    rates: path pattern -> rate, overriding `rate * scale` for the matching
      leaves (last match wins), e.g. `{'conv': 0.1, 'fc3': 0.1}`.

  Returns:
    New masks, a subset of `masks` with exact counts.

  Raises:
    ValueError: for a rate outside [0, 1], masks that do not follow
      `policy`, or per-leaf rates with `layerwise=False`.

  >>> import jax.numpy as jnp
  >>> params = {'w': jnp.array([0.3, -2.0, 0.0, 1.0, -0.5])}
  >>> masks = {'w': jnp.array([True, True, False, True, True])}
  >>> next_masks(params, masks, 0.5, policy=Policy(include=('w',)))
  {'w': Array([False,  True, False,  True, False], dtype=bool)}
  """
  rate = float(rate)
  _check_rate("rate", rate)
  rates = tuple((rates or {}).items())
  rules = policy.rules(params)
  flat, treedef = _flat(masks)
  named = {path_str(p): m for p, m in flat}
  pruned = [p for p, m in named.items() if m is not None]
  if sorted(pruned) != sorted(rules):
    raise ValueError(
      "next_masks: the masks must cover exactly the leaves the policy "
      f"prunes; masked leaves {sorted(pruned)}, policy prunes "
      f"{sorted(rules)}"
    )
  if layerwise:
    plan = tuple(
      ("fixed", rules[p].fixed)
      if rules[p].fixed is not None
      else ("rate", _leaf_rate(p, rules[p], rate, rates))
      for p in pruned
    )
  else:
    per_leaf = [p for p in pruned if rules[p] != LeafRule()]
    if per_leaf or rates:
      raise ValueError(
        "next_masks(layerwise=False) ranks all leaves together; per-leaf "
        f"rates (Policy.scale / Policy.fixed on {per_leaf}, rates="
        f"{dict(rates)}) need layerwise=True"
      )
    plan = None
  weights = {path_str(p): w for p, w in jax.tree.leaves_with_path(params)}
  kept = _select(
    [weights[p] for p in pruned],
    [named[p] for p in pruned],
    None if layerwise else rate,
    plan,
  )
  new = dict(zip(pruned, kept, strict=True))
  return jax.tree.unflatten(treedef, [new.get(path_str(p)) for p, _ in flat])


@functools.partial(jax.jit, static_argnames=("rate", "plan"))
def _select(weights, masks, rate, plan):
  # Pruned entries rank below any kept one, so they can never come back.
  scores = [
    jnp.where(m, jnp.abs(w), -jnp.inf)
    for w, m in zip(weights, masks, strict=True)
  ]
  remaining = [jnp.sum(m, dtype=jnp.int32) for m in masks]
  if plan is None:
    k = selection.kept_count(sum(remaining), rate)
    return selection.global_topk_masks(scores, k)
  kept = []
  for (kind, value), score, n in zip(plan, scores, remaining, strict=True):
    if kind == "fixed":
      k = jnp.minimum(n, selection.kept_count(score.size, value))
    else:
      k = selection.kept_count(n, value)
    kept.append(selection.topk_mask(score, k))
  return kept


def rewind(rewind_params: Params, masks: Masks) -> Params:
  """The params a round starts from: the rewind point, masked.

  `rewind_params` is theta_0 (the initialisation) or theta_k (the params
  after k steps of the first round, late rewinding). The result equals
  `rewind_params * masks` bit for bit.

  >>> import jax.numpy as jnp
  >>> rewind({'w': jnp.array([1.5, -2.0])}, {'w': jnp.array([False, True])})
  {'w': Array([ 0., -2.], dtype=float32)}
  """
  return apply_masks(rewind_params, masks)


def random_reinit(
  init_fn: Callable[[jax.Array], Params], masks: Masks, key: jax.Array
) -> Params:
  """Random reinitialisation control: the same masks on a fresh init.

  Args:
    init_fn: `key -> params`, the model's initialiser.
    masks: the ticket's masks.
    key: the fresh initialisation's own key (never the ticket's).

  Returns:
    `init_fn(key) * masks`.

  >>> import jax, jax.numpy as jnp
  >>> init = lambda key: {'w': jax.random.normal(key, (3,))}
  >>> p = random_reinit(init, {'w': jnp.array([True, False, True])},
  ...                   jax.random.key(1))
  >>> float(p['w'][1])
  0.0
  """
  return apply_masks(init_fn(key), masks)


def shuffle(masks: Masks, key: jax.Array) -> Masks:
  """Random pruning control: each leaf keeps its count at random positions.

  Positions are the top-k of uniform noise (exact counts, no sort), an
  independent stream per leaf from `key`.

  >>> import jax, jax.numpy as jnp
  >>> m = shuffle({'w': jnp.arange(100) < 30, 'b': None}, jax.random.key(0))
  >>> int(m['w'].sum()), m['b']
  (30, None)
  """
  flat, treedef = _flat(masks)
  out = [
    None if m is None else _shuffle_leaf(m, jax.random.fold_in(key, i))
    for i, (_, m) in enumerate(flat)
  ]
  return jax.tree.unflatten(treedef, out)


@jax.jit
def _shuffle_leaf(mask, key):
  noise = jax.random.uniform(key, mask.shape)
  return selection.topk_mask(noise, jnp.sum(mask, dtype=jnp.int32))
