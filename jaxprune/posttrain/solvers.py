"""Post-training solvers: one layer's kernel and statistics -> (kernel, mask).

Every solver is a pure function of a kernel in flax layout (the first
`n_in` axes are the inputs it contracts, the rest its outputs: `(in, out)`
for Dense, `(in, heads, head_dim)` or `(heads, head_dim, out)` for
DenseGeneral, `(kh, kw, c_in, c_out)` for Conv) and of the layer's
calibration `Stats`. Internally the kernel is a matrix `W` of shape
`(outputs, inputs)`, rows being outputs, as in the SparseGPT and Wanda
papers; the inputs of a conv kernel are its patches flattened as
`(kh, kw, c_in)`, the order `calibration` builds its patches in.

Targets are an unstructured `sparsity` or `nm=(n, m)`: keep `n` of every `m`
consecutive inputs of each row. Counts are exact and follow jaxprune's
rule (`jaxprune.core.selection`): a group of `k` entries at sparsity `s`
keeps `k - round(s * k)`; ties keep the lower index. `magnitude` and
SparseGPT pool the whole layer; Wanda and `least_squares` count per row.
"""

import contextlib
import functools
import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl

from jaxprune.core.selection import kept_count, nm_mask, to_keys, topk_mask


class Stats(NamedTuple):
  """What a layer's calibration inputs `x_t` (rows of length `d_in`) leave.

  Attributes:
    gram: `sum_t x_t x_t^T`, shape `(d_in, d_in)`, float32. Its diagonal
      holds the per-input squared norms Wanda needs; SparseGPT's Hessian is
      `2 / count * gram`.
    count: number of rows `x_t` summed (a float32 scalar).
  """

  gram: jax.Array
  count: jax.Array

  @property
  def hessian(self) -> jax.Array:
    """`H = (2 / n) sum_t x_t x_t^T`."""
    return 2.0 * self.gram / jnp.maximum(self.count, 1.0)

  @property
  def sq_norms(self) -> jax.Array:
    """`||X_j||^2` summed over all rows, per input `j`."""
    return jnp.diagonal(self.gram)


def to_matrix(kernel: jax.Array, n_in: int) -> jax.Array:
  """The kernel as `W`, `(outputs, inputs)`, float32.

  >>> to_matrix(jnp.zeros((3, 3, 2, 5)), 3).shape
  (5, 18)
  """
  d_in = int(np.prod(kernel.shape[:n_in]))
  return kernel.reshape(d_in, -1).T.astype(jnp.float32)


def from_matrix(w: jax.Array, like: jax.Array) -> jax.Array:
  """Inverse of `to_matrix`, in `like`'s shape (and dtype, unless `w` is a
  bool mask)."""
  dtype = bool if w.dtype == jnp.bool_ else like.dtype
  return w.T.reshape(like.shape).astype(dtype)


def check_target(
  sparsity: float | None, nm: tuple[int, int] | None, d_in: int | None = None
) -> None:
  """Raises ValueError unless exactly one of `sparsity` in [0, 1) and
  `nm=(n, m)` with `0 <= n <= m` (and `m` dividing `d_in`) is given.

  >>> check_target(1.0, None)
  Traceback (most recent call last):
  ...
  ValueError: sparsity=1.0: expected a fraction in [0, 1)
  """
  if (sparsity is None) == (nm is None):
    raise ValueError(
      f"sparsity={sparsity!r}, nm={nm!r}: give exactly one of them"
    )
  if sparsity is not None:
    if not 0.0 <= float(sparsity) < 1.0:
      raise ValueError(f"sparsity={sparsity!r}: expected a fraction in [0, 1)")
    return
  if len(nm) != 2 or not 0 <= int(nm[0]) <= int(nm[1]) or int(nm[1]) < 1:
    raise ValueError(f"nm={nm!r}: expected (n, m) with 0 <= n <= m, m >= 1")
  if d_in is not None and d_in % int(nm[1]):
    raise ValueError(
      f"nm={tuple(nm)!r}: m={nm[1]} does not divide the layer's input width "
      f"{d_in}"
    )


_ROWS_MAX = 1 << 18
"""Up to this many entries, a pooled top-k (magnitude over a layer) runs as
one row of `_top_rows`: `topk_mask` runs faster (0.24 ms against 2.8 ms on
1536 x 128 here) but compiles slower (3.2 s against 1.3 s), once per shape,
and magnitude calls it once. SparseGPT calls `topk_mask` for every block,
inside one `lax.scan`, so it compiles once per layer shape."""


def _top_rows(scores: jax.Array, k: jax.Array | int) -> jax.Array:
  """Keeps the `k` largest of each row, ties to the lower index.

  Each row's k-th largest order-preserving key is built bit by bit from
  the top (32 counting passes over the rows, all rows at once); entries
  above it are kept, and of those equal to it the first ones. XLA's sort
  on CPU is slower (a double argsort: 0.43 s on 1536 x 384 here)."""
  keys = to_keys(scores)
  k = jnp.asarray(k, jnp.int32)

  def bit(i, t):
    guess = t | (jnp.uint32(1) << (31 - i).astype(jnp.uint32))
    enough = jnp.sum(keys >= guess[:, None], axis=1, dtype=jnp.int32) >= k
    return jnp.where(enough, guess, t)

  t = jax.lax.fori_loop(0, 32, bit, jnp.zeros(keys.shape[0], jnp.uint32))
  above = keys > t[:, None]
  need = k - jnp.sum(above, axis=1, dtype=jnp.int32)
  tie = keys == t[:, None]
  first = jnp.cumsum(tie, axis=1, dtype=jnp.int32) <= need[:, None]
  return (above | (tie & first)) & (k > 0)


def _top(scores: jax.Array, k: jax.Array | int) -> jax.Array:
  """Keeps the `k` largest entries, ties to the lower flat index."""
  if scores.size > _ROWS_MAX:
    return topk_mask(scores, k)
  return _top_rows(scores.reshape(1, -1), k).reshape(scores.shape)


def _select(scores, sparsity, nm, per_row):
  """Mask keeping the best `scores` (`(out, in)`) for the target."""
  if nm is not None:
    return nm_mask(scores, int(nm[0]), int(nm[1]), axis=-1)
  if per_row:
    return _top_rows(scores, kept_count(scores.shape[1], sparsity))
  return _top(scores, kept_count(scores.size, sparsity))


def _checked(solver):
  """`solver` jitted (target and layout static), its target checked first."""
  static = ("sparsity", "nm", "n_in", "per_row")
  taken = inspect.signature(solver).parameters
  jitted = jax.jit(solver, static_argnames=[a for a in static if a in taken])

  @functools.wraps(solver)
  def run(kernel, stats=None, *, sparsity=None, nm=None, n_in=1, **kw):
    if kw.get("mask") is None:
      check_target(sparsity, nm, int(np.prod(np.shape(kernel)[:n_in])))
    nm = None if nm is None else (int(nm[0]), int(nm[1]))
    sparsity = None if sparsity is None else float(sparsity)
    return jitted(kernel, stats, sparsity=sparsity, nm=nm, n_in=n_in, **kw)

  return run


@_checked
def magnitude(
  kernel: jax.Array,
  stats: Stats | None = None,
  *,
  sparsity: float | None = None,
  nm: tuple[int, int] | None = None,
  n_in: int = 1,
  per_row: bool = False,
) -> tuple[jax.Array, jax.Array]:
  """Keeps the largest |W|, over the whole layer or within each output row.

  `stats` is not read (accepted so that every solver has one signature).

  >>> w = jnp.array([[1.0, -4.0], [2.0, 0.5]])
  >>> magnitude(w, sparsity=0.5)[1]
  Array([[False,  True],
         [ True, False]], dtype=bool)
  """
  del stats
  if nm is None and not per_row:
    # Pooled over the layer: ties by the kernel's own flat order, as
    # `jaxprune.prune` breaks them.
    mask = _top(jnp.abs(kernel), kept_count(kernel.size, sparsity))
    return jnp.where(mask, kernel, 0), mask
  w = to_matrix(kernel, n_in)
  mask = _select(jnp.abs(w), sparsity, nm, per_row)
  return from_matrix(w * mask, kernel), from_matrix(mask, kernel)


@_checked
def wanda(
  kernel: jax.Array,
  stats: Stats,
  *,
  sparsity: float | None = None,
  nm: tuple[int, int] | None = None,
  n_in: int = 1,
) -> tuple[jax.Array, jax.Array]:
  """Wanda: keeps the largest `|W_ij| * ||X_j||` within each output row.

  >>> w = jnp.array([[1.0, -4.0], [2.0, 0.5]])
  >>> stats = Stats(jnp.diag(jnp.array([100.0, 1.0])), jnp.float32(4))
  >>> wanda(w, stats, sparsity=0.5)[1]  # input 0 wins in both outputs
  Array([[ True,  True],
         [False, False]], dtype=bool)
  """
  w = to_matrix(kernel, n_in)
  norms = jnp.sqrt(jnp.maximum(stats.sq_norms, 0.0))
  mask = _select(jnp.abs(w) * norms[None, :], sparsity, nm, per_row=True)
  return from_matrix(w * mask, kernel), from_matrix(mask, kernel)


def _prepared(w, h, damping):
  """SparseGPT's `(W, H)`: inputs that never fired get `H_jj = 1` and zero
  weights, and the diagonal is damped by `damping * mean(diag H)` (both
  added to the diagonal alone, without passes over the whole matrix)."""
  diag = jnp.diagonal(h)
  dead = diag == 0
  diag = diag + dead.astype(h.dtype)
  index = jnp.arange(h.shape[0])
  h = h.at[index, index].set(diag + damping * jnp.mean(diag))
  return jnp.where(dead[None, :], 0.0, w), h


def _factor(h, leaf: int = 192):
  """Upper triangular `V` with `H = V V^T` (`V = U^-1` for the upper
  Cholesky factor `U` of `H^-1`: `U^T U = H^-1`), by halves.

  With `H = [[A, B], [B^T, C]]`: `V22` is the factor of `C`, `V12 = B
  V22^-T` (a triangular solve) and `V11` the factor of `A - V12 V12^T`.
  The leaves of up to `leaf` rows are LAPACK's Cholesky of the reversed
  order (`P H P = L L^T` gives `V = P L P`). The halves and their products
  run faster on CPU than one LAPACK Cholesky of the whole (15-19 ms against
  22-26 ms on 1536 inputs here). A failed factorization leaves NaN on the
  diagonal."""
  n = h.shape[0]
  if n <= leaf:
    return jnp.linalg.cholesky(h[::-1, ::-1])[::-1, ::-1]
  k = n - n // 2
  v22 = _factor(h[k:, k:], leaf)
  v12 = jax.scipy.linalg.solve_triangular(v22, h[:k, k:].T, lower=False).T
  v11 = _factor(h[:k, :k] - v12 @ v12.T, leaf)
  zero = jnp.zeros((n - k, k), h.dtype)
  return jnp.block([[v11, v12], [zero, v22]])


def _block_errors(w1, u1, keep1, *, group, nm):
  """One block's column-by-column compensation, rows in the last axis.

  `w1` is the block `(width, rows)` (columns of W first), `u1` its part of
  `U`, `keep1` its mask (ignored when `nm` chooses it here). Column `i`'s
  error is `e_i = (w_i - sum_{k<i} e_k U_ki) / U_ii` where it is pruned and
  0 where kept, for every row at once. The columns go `group` at a time: a
  group's errors come from its own weights and earlier errors (a few
  vector operations each), then update the rest of the block in one
  rank-`group` product. An N:M mask is chosen every `m` columns from the
  weights as compensated up to that column. Returns `(w1, keep1)`, `w1`
  compensated throughout (pruned entries not yet zeroed).
  """
  width = w1.shape[0]

  def step(g, carry):
    w1, keep1 = carry
    lo = g * group
    wg = jax.lax.dynamic_slice_in_dim(w1, lo, group, axis=0)
    ug = jax.lax.dynamic_slice(u1, (lo, lo), (group, group))
    kg = jax.lax.dynamic_slice_in_dim(keep1, lo, group, axis=0)
    errs, kept = [], []
    for i in range(group):
      if nm is not None and i % nm[1] == 0:
        # The next m columns as compensated by the group's errors so far.
        window = [
          wg[j] - sum((errs[k] * ug[k, j] for k in range(i)), 0.0)
          for j in range(i, i + nm[1])
        ]
        part = (jnp.stack(window) / jnp.diagonal(ug)[i : i + nm[1], None]) ** 2
        kept.extend(nm_mask(part, nm[0], nm[1], axis=0))
      keep_i = kept[i] if nm is not None else kg[i]
      value = wg[i] - sum((errs[k] * ug[k, i] for k in range(i)), 0.0)
      errs.append(jnp.where(keep_i, 0.0, value) / ug[i, i])
    errs = jnp.stack(errs)
    rows_u = jax.lax.dynamic_slice_in_dim(u1, lo, group, axis=0)
    w1 = w1 - rows_u.T @ errs
    if nm is not None:
      keep1 = jax.lax.dynamic_update_slice_in_dim(
        keep1, jnp.stack(kept), lo, axis=0
      )
    return w1, keep1

  return jax.lax.fori_loop(0, width // group, step, (w1, keep1))


def _group(width: int, m: int) -> int:
  """Columns per step of SparseGPT's inner loop: the largest of 16, 8, 4,
  2, 1 that divides the block's width and is a multiple of m (m itself
  when none is)."""
  for g in (16, 8, 4, 2, 1):
    if g % m == 0 and width % g == 0:
      return g
  return m


@functools.partial(jax.jit, static_argnames=("n_in", "damping", "block_size"))
def _factored(kernel, hessian, *, n_in, damping, block_size):
  """`(W, V, U's diagonal blocks, whether V is finite)` for `_blocks`.

  `V` comes padded to whole blocks with an identity (the padding columns,
  zero weights in `_blocks`, are then not coupled to the real ones), so
  that one `lax.scan` body there serves every block."""
  w, h = _prepared(to_matrix(kernel, n_in), hessian, damping)
  cols = h.shape[0]
  width = min(block_size, cols)
  pad = -cols % width
  v = _factor(h)
  if pad:
    v = jax.scipy.linalg.block_diag(v, jnp.eye(pad, dtype=v.dtype))
  diagonal = jnp.stack(
    [v[i : i + width, i : i + width] for i in range(0, cols + pad, width)]
  )
  eye = jnp.broadcast_to(jnp.eye(width, dtype=v.dtype), diagonal.shape)
  # (Inverted in `_blocks`'s program instead, the scan ran twice as slow.)
  u_blocks = jax.lax.linalg.triangular_solve(
    diagonal, eye, left_side=True, lower=False
  )
  return w, v, u_blocks, jnp.all(jnp.isfinite(jnp.diagonal(v)))


@functools.partial(jax.jit, static_argnames=("n_in", "sparsity", "nm"))
def _blocks(kernel, w, v, u_blocks, mask, *, n_in, sparsity, nm):
  """SparseGPT's pass over the columns of `w` (`(outputs, inputs)`) with
  `v` and `u_blocks` from `_factored`: `(new kernel, mask)` in `kernel`'s
  layout. (A jit of its own: compiled together with `_factored`, the whole
  ran about a third slower here.)

  SparseGPT updates the later columns through `U = V^-1`; `V` serves as
  well. Split the columns into those done (1) and the rest (2): the errors
  so far are `E_1 = D_1 V_11`, `D_1 = W_1 - Q_1` being the done columns'
  total change, and `U_12 = -U_11 V_12 U_22`, so the rest stand at `W_2 -
  E_1 U_12 = W_2 + (D_1 V_12) U_22`. The sum `C = D_1 V_12` grows by one
  block's product with its rows of `V` (the lazy update); a block's own
  `U_bb`, the inverse of V's diagonal block, turns its part of `C` into
  its weights and drives the column-by-column pass."""
  rows, cols = w.shape
  blocks, width = u_blocks.shape[:2]
  pad = blocks * width - cols
  w0 = jnp.pad(w, ((0, 0), (0, pad))).T
  real = jnp.arange(blocks * width) < cols
  if mask is not None:
    keep = jnp.pad(
      to_matrix(mask, n_in) > 0, ((0, 0), (0, pad)), constant_values=True
    ).T
  else:
    keep = jnp.ones_like(w0, dtype=bool)
  # Entries each block keeps: its real ones less its share of the pruned
  # (the shares telescope to round(s * size) for the layer), plus padding.
  if sparsity is not None and mask is None:
    ends = np.minimum(np.arange(1, blocks + 1) * width, cols)
    cut = np.round(sparsity * rows * np.concatenate([[0], ends]))
    kept = jnp.asarray(rows * width - np.diff(cut), jnp.int32)
  else:
    kept = jnp.zeros(blocks, jnp.int32)
  group = _group(width, 1 if nm is None else nm[1])

  def block(carry, b):
    # `out` holds C (transposed) for the columns to do, final weights for
    # the done ones.
    out, keep = carry
    start = b * width
    c1 = jax.lax.dynamic_slice_in_dim(out, start, width, axis=0)
    w01 = jax.lax.dynamic_slice_in_dim(w0, start, width, axis=0)
    vb = jax.lax.dynamic_slice_in_dim(v, start, width, axis=0)
    u1 = u_blocks[b]
    w1 = w01 + u1.T @ c1
    keep1 = jax.lax.dynamic_slice_in_dim(keep, start, width, axis=0)
    if sparsity is not None and mask is None:
      real1 = jax.lax.dynamic_slice_in_dim(real, start, width)[:, None]
      score = jnp.where(real1, (w1 / jnp.diagonal(u1)[:, None]) ** 2, jnp.inf)
      keep1 = topk_mask(score.T, kept[b]).T  # ties to the lower W index
    w1, keep1 = _block_errors(w1, u1, keep1, group=group, nm=nm)
    final = jnp.where(keep1, w1, 0.0)
    # V is upper triangular: the done columns get zero, the block's own are
    # then set.
    out = out + vb.T @ (w01 - final)
    out = jax.lax.dynamic_update_slice_in_dim(out, final, start, axis=0)
    keep = jax.lax.dynamic_update_slice_in_dim(keep, keep1, start, axis=0)
    return (out, keep), None

  carry = (jnp.zeros_like(w0), keep)
  (out, keep), _ = jax.lax.scan(block, carry, jnp.arange(blocks))
  w, keep = out[:cols].T, keep[:cols].T
  return from_matrix(w, kernel), from_matrix(keep, kernel)


@functools.cache
def _blas_pools() -> threadpoolctl.ThreadpoolController:
  return threadpoolctl.ThreadpoolController()


@contextlib.contextmanager
def _one_lapack_thread():
  """BLAS libraries held to one thread while SparseGPT factorizes.

  On CPU, jaxlib's LAPACK kernels run in scipy's OpenBLAS, whose worker
  threads, after a call that used them, spin for a while waiting for the
  next one: on 2 cores one of them takes a core from the XLA computations
  that follow (the column pass ran 1.5-2x slower after it here). The
  factorization's LAPACK calls are small (leaves of `_factor`) and lose
  nothing on one thread. The caller must wait for the results inside.
  (scipy, hence its BLAS, is loaded with jaxprune.)"""
  with _blas_pools().limit(limits=1, user_api="blas"):
    yield


def needed_damping(hessian: jax.Array) -> float:
  """Damping, as a fraction of mean(diag H), that makes the Cholesky of
  `H + damping * mean(diag H) * I` safe in float32 (smallest eigenvalue
  at least 1e-3 of the mean diagonal), computed in float64 numpy."""
  h = np.asarray(hessian, np.float64)
  dead = np.diagonal(h) == 0
  h = h + np.diag(dead.astype(np.float64))
  scale = np.mean(np.diagonal(h))
  smallest = np.linalg.eigvalsh(h)[0]
  return float(max(0.0, -smallest / scale) + 1e-3)


def sparsegpt(
  kernel: jax.Array,
  stats: Stats,
  *,
  sparsity: float | None = None,
  nm: tuple[int, int] | None = None,
  n_in: int = 1,
  mask: jax.Array | None = None,
  damping: float = 0.01,
  block_size: int = 128,
) -> tuple[jax.Array, jax.Array]:
  """SparseGPT (Frantar & Alistarh 2023): prune and compensate column by
  column through the inverse Hessian.

  Dead inputs (`H_jj = 0`) get `H_jj = 1` and zero weights; `H` is damped
  by `damping * mean(diag H)`; the upper Cholesky factor `U` of `H^-1`
  drives the updates (through its inverse `V`, `H = V V^T`, which takes
  one factorization and no inversion). Columns go in blocks of `block_size`: an
  unstructured mask is chosen once per block from `w^2 / U_jj^2` pooled
  over its rows (each block prunes its share, so the layer prunes exactly
  `round(s * size)`); an N:M mask every `m` columns, per row, from the
  weights as updated so far. Each column's error `(w - q) / U_jj` updates
  the rest of its block, and the block's errors the later columns in one
  matrix product (the lazy update). The blocks are one `lax.scan` (the
  last one padded), the columns of a block a `lax.fori_loop` over groups
  of 16; the function is jitted and float32. While it factorizes `H`, the
  process's BLAS libraries are held to one thread (threadpoolctl; restored
  on return, see `_one_lapack_thread`).

  Args:
    kernel: the layer's kernel, flax layout, first `n_in` axes the inputs.
    stats: the layer's calibration statistics.
    sparsity: unstructured target in [0, 1); or
    nm: `(n, m)`, keep `n` of every `m` consecutive inputs per output.
    n_in: leading kernel axes that are inputs.
    mask: a given mask (kernel's shape); then only the weights are updated.
    damping: fraction of mean(diag H) added to the diagonal.
    block_size: columns per block.

  Returns:
    `(new_kernel, mask)`, the kernel zero where the mask is False.

  Raises:
    ValueError: for a bad target, or when a Cholesky factorization fails
      (naming the damping that would be needed). Under `jax.jit` nothing
      can be checked: a failure then shows as NaN weights.

  >>> w = jnp.array([[1.0, 0.1], [0.2, 1.0]])
  >>> x = jnp.array([[1.0, 1.0], [1.0, -1.0], [2.0, 1.0]])
  >>> new, mask = sparsegpt(w, Stats(x.T @ x, jnp.float32(3)), sparsity=0.5)
  >>> mask
  Array([[ True, False],
         [False,  True]], dtype=bool)
  """
  if mask is None:
    check_target(sparsity, nm, int(np.prod(np.shape(kernel)[:n_in])))
  nm = None if nm is None else (int(nm[0]), int(nm[1]))
  if nm is not None and block_size % nm[1]:
    raise ValueError(f"block_size={block_size} must be a multiple of m={nm[1]}")
  with _one_lapack_thread():
    w, v, u_blocks, finite = _factored(
      kernel,
      stats.hessian,
      n_in=n_in,
      damping=float(damping),
      block_size=block_size,
    )
    failed = not isinstance(finite, jax.core.Tracer) and not bool(finite)
  if failed:
    raise ValueError(
      f"SparseGPT: the Cholesky factorization failed at damping={damping}; "
      f"damping >= {needed_damping(stats.hessian):.4g} (a fraction of "
      "mean(diag H)) would be needed"
    )
  new, keep = _blocks(
    kernel,
    w,
    v,
    u_blocks,
    mask,
    n_in=n_in,
    sparsity=None if sparsity is None else float(sparsity),
    nm=nm,
  )
  return new, keep


@_checked
def least_squares(
  kernel: jax.Array,
  stats: Stats,
  *,
  sparsity: float | None = None,
  nm: tuple[int, int] | None = None,
  n_in: int = 1,
  mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  """The optimum a mask allows: each output row's kept weights solve
  `min ||X^T w'_S - X^T w||^2` exactly (normal equations `G_SS w'_S =
  (G w)_S` with `G` the calibration Gram matrix; a pseudo-inverse when
  `G_SS` is singular). The mask is `mask`, or Wanda's for the target.

  One `(d_in, d_in)` system per output row: for small layers.

  >>> w = jnp.array([[1.0], [1.0]])  # 2 inputs, 1 output
  >>> x = jnp.array([[1.0, 1.0], [2.0, 2.0]])  # the inputs are always equal
  >>> least_squares(w, Stats(x.T @ x, jnp.float32(2)), sparsity=0.5)[0]
  Array([[2.],
         [0.]], dtype=float32)
  """
  w = to_matrix(kernel, n_in)
  if mask is None:
    _, mask = wanda(kernel, stats, sparsity=sparsity, nm=nm, n_in=n_in)
  keep = to_matrix(mask, n_in) > 0
  g = stats.gram.astype(jnp.float32)
  eye = jnp.eye(g.shape[0], dtype=g.dtype)

  def row(wr, kr):
    # The kept weights move by d solving G_SS d = (G w_P)_S, w_P the pruned
    # part of the row (zero when nothing is pruned: the row is unchanged);
    # the system is G on the kept entries, identity on the pruned ones.
    a = jnp.where(kr[:, None] & kr[None, :], g, 0.0) + jnp.diag(~kr) * eye
    b = jnp.where(kr, g @ jnp.where(kr, 0.0, wr), 0.0)
    step = jnp.linalg.pinv(a, hermitian=True) @ b
    return jnp.where(kr, wr + step, 0.0)

  new = jax.vmap(row)(w, keep)
  return from_matrix(new, kernel), from_matrix(keep, kernel)


@functools.partial(jax.jit, static_argnames="n_in")
def relative_error(
  kernel: jax.Array, new_kernel: jax.Array, stats: Stats, n_in: int = 1
) -> jax.Array:
  """`||W X - W' X|| / ||W X||` over the calibration rows, from the Gram
  matrix: `sqrt(tr(D G D^T) / tr(W G W^T))` with `D = W - W'`.

  >>> g = Stats(jnp.eye(2), jnp.float32(2))
  >>> float(relative_error(jnp.array([[3.0], [4.0]]), jnp.zeros((2, 1)), g))
  1.0
  """
  w, d = to_matrix(kernel, n_in), to_matrix(kernel - new_kernel, n_in)
  num = jnp.sum((d @ stats.gram) * d)
  den = jnp.sum((w @ stats.gram) * w)
  return jnp.sqrt(jnp.maximum(num, 0.0) / jnp.maximum(den, 1e-30))


METHODS = {
  "magnitude": magnitude,
  "wanda": wanda,
  "sparsegpt": sparsegpt,
  "least_squares": least_squares,
}
"""Solvers by the method name `jaxprune.posttrain.prune` takes."""
