"""Which examples to keep, given their scores: exact counts, fixed ties.

`select(scores, keep_fraction, method=...)` keeps `keep_count(n, f)`
examples (`f * n` rounded half up, at least one) and returns their indices
in increasing order. Methods, larger scores meaning harder:

- 'hardest': the highest scores; ties go to the lower index.
- 'easiest': the lowest scores; ties go to the lower index.
- 'offset': skip the `offset` fraction of hardest examples (where noisy
  labels gather), then keep the hardest of the rest (the band is moved
  towards the easy end when it would run past it).
- 'ccs': coverage-centric coreset selection (Zheng et al. 2023): skip the
  `offset` hardest, cut the score range of the rest into `strata`
  equal-width strata, and spread the budget over them, the smallest
  stratum first, each taking `min(its size, budget left / strata left)`
  examples drawn at random (from `key`).

With `labels`, each class keeps its share: `f * n_c` examples of its
`n_c`, rounded so that the classes' counts add up to `keep_count(n, f)`
(the largest fractional parts round up; ties to the lower class).

The ranking itself is jitted (`keep_mask`), compiled once per
`(n, count, method, strata)`.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("hardest", "easiest", "offset", "ccs")


def keep_count(num_examples: int, keep_fraction: float) -> int:
  """Examples kept: `keep_fraction * num_examples` rounded half up, >= 1.

  >>> keep_count(10, 0.25), keep_count(10, 0.01), keep_count(10, 1.0)
  (3, 1, 10)
  """
  _check_fraction(keep_fraction)
  return max(
    1, min(num_examples, math.floor(keep_fraction * num_examples + 0.5))
  )


def _check_fraction(keep_fraction) -> None:
  ok = isinstance(keep_fraction, int | float) and not isinstance(
    keep_fraction, bool
  )
  if not (ok and 0 < keep_fraction <= 1):
    raise ValueError(
      f"keep_fraction = {keep_fraction!r}: expected a number in (0, 1]"
    )


def check_scores(scores, num_examples: int, name: str = "scores") -> np.ndarray:
  """`scores` as a float numpy vector, after checking its length and values.

  Raises:
    ValueError: naming `name`, if `scores` is not a vector of
      `num_examples` finite numbers.
  """
  scores = np.asarray(scores)
  if scores.ndim != 1 or len(scores) != num_examples:
    raise ValueError(
      f"{name}: expected one score per training example, shape "
      f"({num_examples},); got shape {scores.shape}"
    )
  if not np.issubdtype(scores.dtype, np.number):
    raise ValueError(f"{name}: expected numbers; got dtype {scores.dtype}")
  bad = np.flatnonzero(~np.isfinite(scores))
  if bad.size:
    raise ValueError(
      f"{name}: {bad.size} non-finite score(s), the first {scores[bad[0]]} "
      f"at example {bad[0]}; expected finite scores"
    )
  return scores


@functools.partial(jax.jit, static_argnames=("count", "method", "strata"))
def keep_mask(
  scores: jax.Array,
  key: jax.Array,
  offset: jax.Array,
  *,
  count: int,
  method: str,
  strata: int = 50,
) -> jax.Array:
  """The `(n,)` bool mask of the `count` kept examples (see the module).

  `offset` is the number of hardest examples skipped ('offset', 'ccs'),
  at most `n - count` (more is lowered to it).
  """
  n = scores.shape[0]
  positions = jnp.arange(n)
  if method == "easiest":
    order = jnp.argsort(scores, stable=True)
    return jnp.zeros(n, bool).at[order].set(positions < count)
  order = jnp.argsort(-scores, stable=True)  # hardest first
  offset = jnp.minimum(offset, n - count)
  if method == "hardest":
    offset = 0
  if method in ("hardest", "offset"):
    band = (positions >= offset) & (positions < offset + count)
    return jnp.zeros(n, bool).at[order].set(band)
  # CCS: strata over the scores of the examples left after the offset.
  eligible = jnp.zeros(n, bool).at[order].set(positions >= offset)
  low = jnp.min(jnp.where(eligible, scores, jnp.inf))
  high = jnp.max(jnp.where(eligible, scores, -jnp.inf))
  width = jnp.where(high > low, (high - low) / strata, 1.0)
  stratum = jnp.clip(jnp.floor((scores - low) / width), 0, strata - 1)
  stratum = jnp.where(eligible, stratum.astype(jnp.int32), strata)
  counts = jnp.bincount(stratum, length=strata + 1)  # the skipped: last
  sizes = counts[:strata]

  def allocate(i, carry):
    budget, left = carry
    s = by_size[i]
    take = jnp.minimum(sizes[s], left // (strata - i))
    return budget.at[s].set(take), left - take

  by_size = jnp.argsort(sizes, stable=True)
  budget, _ = jax.lax.fori_loop(
    0, strata, allocate, (jnp.zeros(strata + 1, jnp.int32), count)
  )
  priority = jax.random.uniform(key, (n,))
  order = jnp.lexsort((priority, stratum))
  start = jnp.cumsum(counts) - counts
  ranked = stratum[order]
  within = positions - start[ranked]
  return jnp.zeros(n, bool).at[order].set(within < budget[ranked])


def _class_counts(labels: np.ndarray, keep_fraction: float) -> dict[int, int]:
  """Per class, its share of `keep_count(n, f)` (largest remainders)."""
  classes, sizes = np.unique(labels, return_counts=True)
  quotas = keep_fraction * sizes
  counts = np.floor(quotas).astype(int)
  extra = keep_count(len(labels), keep_fraction) - counts.sum()
  order = np.argsort(-(quotas - counts), kind="stable")
  counts[order[:extra]] += 1
  return dict(
    zip(classes.tolist(), np.minimum(counts, sizes).tolist(), strict=True)
  )


def select(
  scores,
  keep_fraction: float,
  *,
  method: str,
  offset: float = 0.0,
  strata: int = 50,
  key: jax.Array | None = None,
  labels=None,
) -> np.ndarray:
  """Indices of the examples to keep, in increasing order.

  Args:
    scores: `(n,)` finite scores, larger meaning harder.
    keep_fraction: the fraction kept, in (0, 1].
    method: one of `METHODS` (see the module docstring).
    offset: the fraction of hardest examples skipped by 'offset' and
      'ccs', in [0, 1).
    strata: the number of CCS strata.
    key: the CCS draw's `jax.random` key (required for 'ccs').
    labels: `(n,)` class labels: select within each class.

  Returns:
    int64 indices, `keep_count(n, keep_fraction)` of them.

  Raises:
    ValueError: for a keep fraction outside (0, 1], scores that are not
      `n` finite numbers (or disagree with `labels` in length), an unknown
      method, an offset outside [0, 1), fewer than one stratum, or 'ccs'
      without a key.

  >>> select([0.5, 0.9, 0.1, 0.9], 0.5, method='hardest').tolist()
  [1, 3]
  >>> select([0.5, 0.9, 0.1, 0.9], 0.5, method='easiest').tolist()
  [0, 2]
  """
  _check_fraction(keep_fraction)
  if method not in METHODS:
    raise ValueError(f"method = {method!r} is unknown; known: {METHODS}")
  if not (isinstance(offset, int | float) and 0 <= offset < 1):
    raise ValueError(f"offset = {offset!r}: expected a fraction in [0, 1)")
  if not (isinstance(strata, int) and strata >= 1):
    raise ValueError(f"strata = {strata!r}: expected a positive integer")
  if method == "ccs" and key is None:
    raise ValueError("method 'ccs' samples within strata: give it a key")
  n = np.shape(scores)[0] if np.ndim(scores) else 0
  scores = check_scores(scores, n if labels is None else len(labels))
  key = jax.random.key(0) if key is None else key  # unused but by 'ccs'

  def one(part_scores, count, key):
    mask = keep_mask(
      jnp.asarray(part_scores, jnp.float32),
      key,
      jnp.asarray(math.floor(offset * len(part_scores) + 0.5)),
      count=count,
      method=method,
      strata=strata,
    )
    return np.flatnonzero(np.asarray(mask))

  if labels is None:
    return one(scores, keep_count(len(scores), keep_fraction), key)
  labels = np.asarray(labels)
  kept = [
    np.flatnonzero(labels == c)[
      one(scores[labels == c], count, jax.random.fold_in(key, c))
    ]
    for c, count in _class_counts(labels, keep_fraction).items()
    if count
  ]
  return np.sort(np.concatenate(kept))
