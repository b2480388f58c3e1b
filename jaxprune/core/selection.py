"""Exact top-k selection without sorting, plus N:M and channel structure.

Scores are mapped to order-preserving unsigned keys (the float bit pattern,
sign-folded). The k-th largest key is found by a search that only *counts*
keys above a candidate, one pass over the data per candidate: a sorted
strided sample (or a caller's guess, see `boundary`) brackets the answer,
then safeguarded interpolation (with a bisection step every eighth pass)
narrows the bracket until exactly k keys lie above it, until it is one key
wide, or until it holds at most `_few(keys)` entries (at most `_FEW`, and
fewer for small arrays): then one more pass gathers the rows holding them
and bisection on those rows alone finishes. Typical data needs 4-6 full
passes; the worst case is bounded by the bisection steps (about 8 x 32
passes).

Rounding and ties, the rules every count in jaxprune follows:
- a leaf of n entries at sparsity s keeps `n - round(s * n)` entries, the
  product taken in float32 and rounded half to even (`jnp.round`);
- among equal scores at the boundary (-0.0 equals 0.0), entries with the
  lower flat index are kept (flattened row-major, leaves in pytree order for
  global selection).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_SAMPLE = 16384
_ROW = 128
_BLOCK = 64
_FEW = 1024
_TOP = np.uint32(0xFFFFFFFF)


def kept_count(n: int, sparsity: jax.Array | float) -> jax.Array:
  """Entries kept of `n` at `sparsity`: `n - round(sparsity * n)`.

  >>> int(kept_count(10, 0.25)), int(kept_count(10, 0.35))
  (8, 6)
  """
  s = jnp.asarray(sparsity, jnp.float32)
  return jnp.int32(n) - jnp.round(s * n).astype(jnp.int32)


def to_keys(scores: jax.Array) -> jax.Array:
  """Order-preserving map from float scores to uint32 keys; -0.0 and 0.0
  are the same key (equal scores, so ties that keep the lower index).

  A negative score's key is the two's complement of its bits, 2**32 - bits:
  2**31 for -0.0 as for 0.0, smaller as the magnitude grows.

  >>> import jax.numpy as jnp
  >>> to_keys(jnp.array([-2.0, -0.0, 0.0, 1.5])).tolist()
  [1073741824, 2147483648, 2147483648, 3217031168]
  """
  bits = jax.lax.bitcast_convert_type(scores.astype(jnp.float32), jnp.uint32)
  negative = (bits >> 31) == 1
  return jnp.where(negative, -bits, bits | np.uint32(0x80000000))


class _Keys(NamedTuple):
  """The scores of one array, read as keys in rows of `_ROW`.

  `rows` is recomputed where it is used rather than stored: XLA fuses the
  key transform into each pass, which then reads the scores once instead of
  writing and reading a second array of the same size. The rows are padded
  with key 0 (below any finite score's key) to whole blocks of `_BLOCK`
  rows."""

  scores: jax.Array
  size: int
  shape: tuple[int, ...]

  @property
  def rows(self) -> jax.Array:
    flat = to_keys(self.scores).ravel()
    pad = (-flat.size) % (_BLOCK * _ROW)
    if pad:
      flat = jnp.pad(flat, (0, pad))
    return flat.reshape(-1, _ROW)

  @property
  def n_rows(self) -> int:
    """Rows of `rows`, without building them."""
    block = _BLOCK * _ROW
    return -(-self.size // block) * _BLOCK

  @property
  def flat(self) -> jax.Array:
    """The keys, flattened, unpadded."""
    return to_keys(self.scores).ravel()


def _prepare(scores: jax.Array) -> _Keys:
  return _Keys(scores, scores.size, tuple(scores.shape))


def count_true(mask: jax.Array) -> jax.Array:
  """Number of True entries of a bool array, as an int32 scalar.

  Partial counts per column of blocks of `_BLOCK` rows of `_ROW` fit in
  uint8; reducing across rows in bytes first is about twice as fast on CPU
  as summing along rows, and several times faster than one int32 reduction.
  The entries after the last whole block are summed apart: padding the
  array to whole blocks would write a copy of it, which costs more than
  the count (3.5x on a 235,200-entry leaf).

  >>> import jax.numpy as jnp
  >>> int(count_true(jnp.arange(10) > 6))
  3
  """
  flat = mask.ravel()
  whole = flat.size - flat.size % (_BLOCK * _ROW)
  total = jnp.int32(0)
  if whole:
    blocks = flat[:whole].reshape(-1, _BLOCK, _ROW)
    total = jnp.sum(jnp.sum(blocks, axis=1, dtype=jnp.uint8), dtype=jnp.int32)
  if whole < flat.size:
    total = total + jnp.sum(flat[whole:], dtype=jnp.int32)
  return total


def _few(keys: list["_Keys"]) -> int:
  """Entries a bracket may hold before `_gather` takes its rows: `_FEW`,
  or a thirty-second of the rows for small arrays, so that bisecting the
  gathered rows never costs more than a few passes over the array."""
  rows = sum(k.n_rows for k in keys)
  return max(8, min(_FEW, rows // 32))


def _count_leaf(keys: _Keys, t: jax.Array) -> jax.Array:
  return count_true(keys.flat >= t)


def _in_loop(keys: list[_Keys], value: jax.Array) -> list[_Keys]:
  """`keys` tied to `value`, a loop variable: XLA would otherwise hoist the
  key transform out of the loop and write all the keys to memory once,
  which costs more than computing them again in every pass."""
  scores, _ = jax.lax.optimization_barrier(([k.scores for k in keys], value))
  return [k._replace(scores=x) for k, x in zip(keys, scores, strict=True)]


def _count_ge(keys: list[_Keys], t: jax.Array, skip: jax.Array) -> jax.Array:
  return sum(
    jnp.where(skip[i], 0, _count_leaf(k, t))
    for i, k in enumerate(_in_loop(keys, t))
  )


def _sample(keys: list[_Keys], skip: jax.Array):
  """A sorted strided sample of about total / 128 keys, at least 256 and
  at most `_SAMPLE`: sorting it costs about one counting pass."""
  total = sum(k.size for k in keys)
  stride = max(1, total // int(np.clip(total // 128, 256, _SAMPLE)))
  parts = [
    jnp.where(skip[i], jnp.uint32(0), to_keys(k.scores.ravel()[::stride]))
    for i, k in enumerate(keys)
  ]
  return jnp.sort(jnp.concatenate(parts)), stride


def _threshold(keys, k, total, skip, start=None):
  """Largest key t with count(keys >= t) >= k, with count(>= t) and, when
  that exceeds k, count(> t); see `_bracket`."""
  lo, c_lo, hi, c_hi = _bracket(keys, k, total, skip, start)
  done = (c_lo == k) | (hi - lo <= 1)
  lo, c_lo, c_hi = jax.lax.cond(
    done,
    lambda: (lo, c_lo, c_hi),
    lambda: _bisect(_gather(keys, skip, lo, hi), k, lo, c_lo, hi, c_hi),
  )
  # On an exact count no tie is split and count(> lo) is not needed.
  return lo, c_lo, jnp.where(c_lo == k, c_lo, c_hi)


def _bracket(keys, k, total, skip, start=None, stop_at_k=True):
  """A bracket [lo, hi) of keys around the k-th largest, with count(>= lo)
  and count(>= hi): it holds at most `_few(keys)` entries, or is one key
  wide, or (with `stop_at_k`) count(>= lo) is exactly k.

  Requires 1 <= k <= total (the entries of leaves not skipped) and no key
  equal to 0xFFFFFFFF (NaN patterns). The bracket [lo, hi) always holds the
  answer: count(>= lo) >= k and count(>= hi) < k. Guesses interpolate
  between weighted counts; the weight of an end that has not moved for two
  guesses is halved (the Illinois rule), and after three one-sided moves the
  key next to the stuck end is tried, which settles ties in one pass.

  The opening guesses come from a sorted sample, or from `start`, a score
  `(value, step)` near the answer (see `_start_opening`).
  """
  kf = k.astype(jnp.float32)
  few = _few(keys)
  if start is None:
    opening = _sample_opening(keys, k, skip)
  else:
    opening = _start_opening(k, *start)

  def cond(s):
    open_ = (s["hi"] - s["lo"] > 1) & (s["c_lo"] - s["c_hi"] > few)
    return open_ & (s["c_lo"] != k) if stop_at_k else open_

  def body(s):
    lo, hi, it, moves = s["lo"], s["hi"], s["it"], s["moves"]
    width = hi - lo
    frac = (s["w_lo"] - kf) / (s["w_lo"] - s["w_hi"])
    guess = lo + (frac * width.astype(jnp.float32)).astype(jnp.uint32)
    guess = jnp.where(moves >= 3, lo + 1, guess)
    guess = jnp.where(moves <= -3, hi - 1, guess)
    guess = jnp.where(it % 8 == 7, lo + width // 2, guess)
    opens, first_guesses = opening(s)
    guess = jnp.where(opens, first_guesses, guess)
    guess = jnp.clip(guess, lo + 1, hi - 1)
    c = _count_ge(keys, guess, skip)
    up = c >= k
    cf = c.astype(jnp.float32)
    # `moves`: +n after n moves of hi in a row, -n after n moves of lo.
    new_moves = jnp.where(
      up, jnp.minimum(moves, 0) - 1, jnp.maximum(moves, 0) + 1
    )
    w_lo = jnp.where(up, cf, s["w_lo"])
    w_hi = jnp.where(up, s["w_hi"], cf)
    w_lo = jnp.where(new_moves >= 2, kf + (w_lo - kf) / 2, w_lo)
    w_hi = jnp.where(new_moves <= -2, kf - (kf - w_hi) / 2, w_hi)
    return dict(
      lo=jnp.where(up, guess, lo),
      c_lo=jnp.where(up, c, s["c_lo"]),
      hi=jnp.where(up, hi, guess),
      c_hi=jnp.where(up, s["c_hi"], c),
      w_lo=w_lo,
      w_hi=w_hi,
      it=it + 1,
      moves=new_moves,
      c_first=jnp.where(it == 0, c, s["c_first"]),
    )

  init = dict(
    lo=jnp.uint32(0),
    c_lo=jnp.asarray(total, jnp.int32),
    hi=jnp.uint32(_TOP),
    c_hi=jnp.int32(0),
    w_lo=jnp.asarray(total, jnp.float32),
    w_hi=jnp.float32(0),
    it=jnp.int32(0),
    moves=jnp.int32(0),
    c_first=jnp.int32(0),
  )
  s = jax.lax.while_loop(cond, body, init)
  return s["lo"], s["c_lo"], s["hi"], s["c_hi"]


def _gather(keys, skip, lo, hi):
  """The keys in [lo, hi) (at most `_few(keys)` rows of them; 0 elsewhere),
  in one pass that finds the rows holding them. Rows are read from the
  unpadded keys: padding would copy the whole array."""

  def flags(x):
    # One flag per row of `x.rows` (`_starts` counts in those rows); the
    # rows past the data, padding only, are False.
    flat = x.flat
    inside = (flat >= lo) & (flat < hi)
    whole = x.size - x.size % _ROW
    parts = []
    if whole:
      # A per-row maximum in bytes is faster on CPU than `any` over bools.
      rows = inside[:whole].reshape(-1, _ROW).astype(jnp.uint8)
      parts.append(jnp.max(rows, axis=1) > 0)
    if whole < x.size:
      parts.append(jnp.any(inside[whole:])[None])
    data_rows = -(-x.size // _ROW)
    parts.append(jnp.zeros(x.n_rows - data_rows, bool))
    return jnp.concatenate(parts)

  starts = _starts(keys)
  size = _few(keys)
  (picked,) = jnp.nonzero(
    jnp.concatenate([flags(x) & ~skip[i] for i, x in enumerate(keys)]),
    size=size,
    fill_value=starts[-1],
  )
  few = jnp.zeros((size, _ROW), jnp.uint32)
  for i, x in enumerate(keys):
    if x.size == 0:
      continue
    local = picked - starts[i]
    here = (local >= 0) & (local < x.n_rows)
    pos = local[:, None] * _ROW + jnp.arange(_ROW)
    values = to_keys(x.scores.ravel()[jnp.clip(pos, 0, x.size - 1)])
    inside = here[:, None] & (pos < x.size) & (values >= lo) & (values < hi)
    few = jnp.where(inside, values, few)
  return few


def _bisect(few, k, lo, c_lo, hi, c_hi, stop_at_k=True):
  """`_bracket` finished by bisection on `_gather`'s keys alone, count(>= g)
  being c_hi + their count: the largest key t with count(>= t) >= k,
  count(>= t) and count(>= the bracket's end above t)."""
  base = c_hi

  def cond(b):
    open_ = b[2] - b[0] > 1
    return open_ & (b[1] != k) if stop_at_k else open_

  def body(b):
    lo, c_lo, hi, c_hi = b
    mid = lo + (hi - lo) // 2
    c = base + count_true(few >= mid)
    up = c >= k
    return (
      jnp.where(up, mid, lo),
      jnp.where(up, c, c_lo),
      jnp.where(up, hi, mid),
      jnp.where(up, c_hi, c),
    )

  lo, c_lo, _, c_hi = jax.lax.while_loop(cond, body, (lo, c_lo, hi, c_hi))
  return lo, c_lo, c_hi


def _sample_opening(keys, k, skip):
  """The first two guesses of `_threshold` from a sorted strided sample:
  the sample's estimate of the k-th largest key, then the sample's CDF
  corrected by the first count, pushed a few standard errors past the
  answer so that the two guesses bracket it.

  Returns `opening(state) -> (whether it guesses, its guess)`."""
  sample, stride = _sample(keys, skip)
  size = sample.shape[0]
  first = size - k.astype(jnp.float32) / stride

  def from_sample(pos):
    return sample[jnp.clip(jnp.round(pos), 0, size - 1).astype(jnp.int32)]

  def opening(s):
    miss = (s["c_first"] - k).astype(jnp.float32) / stride
    push = 2.0 * jnp.sqrt(jnp.abs(miss)) + 1.0
    second = from_sample(first + miss + jnp.sign(miss) * push)
    return s["it"] <= 1, jnp.where(s["it"] == 0, from_sample(first), second)

  return opening


def _start_opening(k, value, step):
  """Guesses of `_threshold` from a score `value` near the answer: `value`
  first, then, on the side the first count points to, `value + step` or
  `value - step`, the distance growing 4-fold per pass (in keys) until the
  answer is bracketed. Any guess is safe; a close one saves passes."""
  origin = to_keys(value)
  reach = (to_keys(value + jnp.abs(step)) - origin).astype(jnp.float32)
  reach = jnp.maximum(reach, 1.0)

  def opening(s):
    it = s["it"].astype(jnp.float32)
    up = s["c_first"] >= k
    room = jnp.where(up, _TOP - origin, origin)
    far = reach * 4.0 ** jnp.maximum(it - 1.0, 0.0)
    shift = jnp.where(
      far >= room.astype(jnp.float32), room, far.astype(jnp.uint32)
    )
    guess = jnp.where(up, origin + shift, origin - shift)
    guess = jnp.where(s["it"] == 0, origin, guess)
    return (s["lo"] == 0) | (s["hi"] == _TOP), guess

  return opening


def _starts(keys: list[_Keys]) -> np.ndarray:
  """First row of every leaf in the rows of all leaves laid end to end."""
  return np.cumsum([0] + [x.n_rows for x in keys])


def _cut(keys, k, skip, t, c_ge, c_gt):
  """The last position, in the rows of all leaves laid end to end, of an
  entry equal to t that is kept: the first `k - c_gt` such entries are,
  so every one when count(>= t) is exactly k. Only scalars come out of the
  `lax.cond`, so the masks are built in one pass outside it."""

  def split():
    # Count ties per row, find the row where the running count reaches
    # `need`, then the column inside that one row.
    need = k - c_gt
    row_ties = [
      jnp.where(
        skip[i], 0, jnp.sum(x.rows == t, axis=1, dtype=jnp.uint8)
      ).astype(jnp.int32)
      for i, x in enumerate(keys)
    ]
    starts = _starts(keys)
    running = jnp.cumsum(jnp.concatenate(row_ties))
    row = jnp.searchsorted(running, need)
    before = jnp.where(row > 0, running[jnp.maximum(row - 1, 0)], 0)
    cut_row = jnp.zeros(_ROW, bool)
    for i, x in enumerate(keys):
      if x.size == 0:
        continue
      local = jnp.clip(row - starts[i], 0, x.n_rows - 1)
      here = (row >= starts[i]) & (row < starts[i + 1])
      candidate = jax.lax.dynamic_index_in_dim(x.rows, local, keepdims=False)
      cut_row = jnp.where(here, candidate == t, cut_row)
    col = jnp.argmax(jnp.cumsum(cut_row) == need - before)
    return (row * _ROW + col).astype(jnp.int32)

  every = jnp.int32(np.iinfo(np.int32).max)
  return jax.lax.cond(c_ge == k, lambda: every, split)


def _leaf_mask(x: _Keys, t, cut, keep_any) -> jax.Array:
  """Mask, in the scores' shape, of the entries above t, and of those equal
  to t at flat positions up to `cut` (counted from the leaf's first
  entry), if `keep_any`."""
  keys = to_keys(x.scores)
  position = jnp.arange(x.size, dtype=jnp.int32).reshape(x.shape)
  tie = (keys == t) & (position <= cut)
  return ((keys > t) | tie) & keep_any


def _select(keys: list[_Keys], k: jax.Array, skip: jax.Array) -> list:
  """Row masks keeping exactly the k largest keys of the leaves not
  skipped (lower position first among ties)."""
  total = sum(jnp.where(skip[i], 0, x.size) for i, x in enumerate(keys))
  k = jnp.clip(jnp.asarray(k, jnp.int32), 0, total)
  t, c_ge, c_gt = _threshold(keys, jnp.maximum(k, 1), total, skip)
  cut = _cut(keys, k, skip, t, c_ge, c_gt)
  starts = _starts(keys)
  return [
    _leaf_mask(x, t, cut - starts[i] * _ROW, (k > 0) & ~skip[i])
    for i, x in enumerate(keys)
  ]


def topk_mask(scores: jax.Array, k: jax.Array | int) -> jax.Array:
  """Bool mask keeping exactly the `k` largest entries of `scores`.

  >>> import jax.numpy as jnp
  >>> topk_mask(jnp.array([0.5, 2.0, 0.5, 0.5, 1.0]), 3)
  Array([ True,  True, False, False,  True], dtype=bool)
  """
  keys = _prepare(scores)
  if keys.size == 0:
    return jnp.zeros(scores.shape, bool)
  return _select([keys], k, jnp.zeros(1, bool))[0]


def boundary(
  scores: jax.Array,
  k: jax.Array | int,
  guess: tuple[jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array]:
  """The smallest score `topk_mask(scores, k)` keeps and the largest it
  prunes: the k-th and (k+1)-th largest entries, equal under a tie.

  The same sort-free search as `topk_mask` finds them, and no mask is
  built: one more pass gathers the entries next to the threshold.

  Args:
    scores: a float array without NaN.
    k: entries kept, clipped to [0, size].
    guess: optional `(value, step)` close to the k-th largest score (e.g.
      the last answer, when the scores changed a little since). The search
      then counts at `value`, then at `value + step` or `value - step`,
      further each pass until the answer is bracketed, instead of sorting
      a sample. The result is exact whatever the guess; a good one saves
      the sort and some passes.

  Returns:
    `(kept_min, pruned_max)` as float32 scalars; `kept_min` is +inf when
    `k` is 0 and `pruned_max` is -inf when nothing is pruned.

  >>> import jax.numpy as jnp
  >>> x = jnp.array([0.5, 2.0, 0.5, 0.5, 1.0])
  >>> [float(v) for v in boundary(x, 2)], [float(v) for v in boundary(x, 3)]
  ([1.0, 0.5], [0.5, 0.5])
  """
  keys = _prepare(scores)
  n = keys.size
  inf = jnp.float32(jnp.inf)
  if n == 0:
    return inf, -inf
  k = jnp.clip(jnp.asarray(k, jnp.int32), 0, n)
  first, second = jnp.maximum(k, 1), jnp.clip(k + 1, 1, n)
  start = None
  if guess is not None:
    start = tuple(jnp.asarray(g, jnp.float32) for g in guess)
  # One bracket around the (k+1)-th largest key, one pass gathering its
  # entries, and bisection on those alone finds it and, unless the bracket's
  # top end counts exactly k, the k-th too: no full min or max reduction
  # (several times a counting pass on CPU).
  skip = jnp.zeros(1, bool)
  lo, c_lo, hi, c_hi = _bracket([keys], second, n, skip, start, False)
  few = _gather([keys], skip, lo, hi)
  after = _bisect(few, second, lo, c_lo, hi, c_hi, False)[0]

  def kth_above():
    flat = keys.flat
    return jnp.min(jnp.where(flat >= hi, flat, _TOP))

  kth = jax.lax.cond(
    c_hi < first,
    lambda: _bisect(few, first, lo, c_lo, hi, c_hi, False)[0],
    kth_above,
  )
  after = _from_keys(after)
  kth = _from_keys(kth)
  kept_min = jnp.where(k == 0, inf, kth)
  pruned_max = jnp.where(k == 0, kth, jnp.where(k == n, -inf, after))
  return kept_min, pruned_max


def _from_keys(keys: jax.Array) -> jax.Array:
  """Inverse of `to_keys`."""
  positive = (keys >> 31) == 1
  bits = jnp.where(positive, keys & np.uint32(0x7FFFFFFF), -keys)
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def global_topk_masks(
  scores: list[jax.Array], k: jax.Array | int, min_count: int = 0
) -> list[jax.Array]:
  """Keeps the `k` largest scores across all arrays together.

  Args:
    scores: float arrays ranked together.
    k: number of entries kept in total.
    min_count: every array keeps at least `min(min_count, its size)`
      entries (the minimum threshold of Global MP against layer collapse).
      Arrays that would fall below it keep exactly that many of their own
      best; the others share the rest of the budget by one global ranking.
      Only when `k` is smaller than the minima together does the total
      exceed `k`.

  Returns:
    One bool mask per array, with exactly `k` entries kept in total.

  >>> import jax.numpy as jnp
  >>> a, b = jnp.array([5.0, 4.0, 3.0]), jnp.array([0.1, 0.2])
  >>> [m.tolist() for m in global_topk_masks([a, b], 3)]
  [[True, True, True], [False, False]]
  >>> [m.tolist() for m in global_topk_masks([a, b], 3, min_count=1)]
  [[True, True, False], [False, True]]
  """
  keys = [_prepare(s) for s in scores]
  k = jnp.asarray(k, jnp.int32)
  sizes = np.array([x.size for x in keys])
  if sizes.sum() == 0:
    return [jnp.zeros(s.shape, bool) for s in scores]
  floor = np.minimum(sizes, max(min_count, 0))

  def solve(clamped):
    keys_ = _in_loop(keys, clamped)
    budget = k - jnp.sum(jnp.where(clamped, floor, 0))
    free = jnp.sum(jnp.where(clamped, 0, sizes))
    budget = jnp.clip(budget, 0, free)
    t, c_ge, c_gt = _threshold(
      keys_, jnp.clip(budget, 1, jnp.maximum(free, 1)), free, clamped
    )
    # A leaf keeps at least its entries above t: clamp it if that is short.
    above = jnp.array([_count_leaf(x, t + 1) for x in keys_])
    short = ~clamped & (above < floor)
    return dict(
      clamped=clamped, short=short, budget=budget, t=t, c_ge=c_ge, c_gt=c_gt
    )

  s = solve(jnp.asarray(sizes <= floor) & (floor > 0))
  if min_count > 0:
    s = jax.lax.while_loop(
      lambda s: jnp.any(s["short"]),
      lambda s: solve(s["clamped"] | s["short"]),
      s,
    )
  clamped, budget, t = s["clamped"], s["budget"], s["t"]
  cut = _cut(keys, budget, clamped, t, s["c_ge"], s["c_gt"])
  starts = _starts(keys)
  out = []
  for i, x in enumerate(keys):
    shared = (t, cut - starts[i] * _ROW, budget > 0)
    if min_count > 0:

      def own(x=x, i=i):
        # A clamped leaf keeps exactly its floor[i] best, by its own cut.
        k_i = jnp.int32(floor[i])
        one = jnp.zeros(1, bool)
        t_i, c_ge, c_gt = _threshold([x], jnp.maximum(k_i, 1), x.size, one)
        return t_i, _cut([x], k_i, one, t_i, c_ge, c_gt), k_i > 0

      shared = jax.lax.cond(clamped[i], own, lambda shared=shared: shared)
    out.append(_leaf_mask(x, *shared))
  return out


def nm_mask(
  scores: jax.Array, n: int | jax.Array, m: int, axis: int = -1
) -> jax.Array:
  """Keeps the `n` largest of every `m` consecutive entries along `axis`.

  Ties within a group keep the lower index.

  >>> import jax.numpy as jnp
  >>> nm_mask(jnp.array([[1., 4., 2., 3.], [0., 0., 5., 0.]]), 2, 4)
  Array([[False,  True, False,  True],
         [ True, False,  True, False]], dtype=bool)

  Raises:
    ValueError: if `not 0 <= n <= m` or the axis length is not divisible
      by `m`.
  """
  if m < 1 or (isinstance(n, int) and not 0 <= n <= m):
    raise ValueError(f"N:M needs 0 <= n <= m and m >= 1, got n={n}, m={m}")
  moved = jnp.moveaxis(scores, axis, -1)
  if moved.shape[-1] % m:
    raise ValueError(
      f"N:M with m={m} needs the axis {axis} length divisible by {m}; "
      f"shape {scores.shape} has {moved.shape[-1]} along it"
    )
  groups = to_keys(moved).reshape(*moved.shape[:-1], -1, m)
  a, b = groups[..., :, None], groups[..., None, :]
  idx = jnp.arange(m)
  beaten = (b > a) | ((b == a) & (idx[None, :] < idx[:, None]))
  rank = jnp.sum(beaten, axis=-1)
  keep = (rank < n).reshape(moved.shape)
  return jnp.moveaxis(keep, -1, axis)


def channel_mask(
  scores: jax.Array, sparsity: jax.Array | float, axis: int = -1
) -> jax.Array:
  """Prunes whole channels along `axis` by the L2 norm of their scores.

  Keeps `kept_count(channels, sparsity)` channels, ties to the lower index.

  >>> import jax.numpy as jnp
  >>> w = jnp.array([[1., 0., 3.], [1., 0.1, 3.]])
  >>> channel_mask(w, 1 / 3)
  Array([[ True, False,  True],
         [ True, False,  True]], dtype=bool)
  """
  moved = jnp.moveaxis(scores, axis, -1).astype(jnp.float32)
  norms = jnp.sqrt(jnp.sum(moved.reshape(-1, moved.shape[-1]) ** 2, axis=0))
  keep = topk_mask(norms, kept_count(norms.size, sparsity))
  return jnp.moveaxis(jnp.broadcast_to(keep, moved.shape), -1, axis)
