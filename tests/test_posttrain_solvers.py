"""Post-training solvers against numpy references written here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from jaxprune import posttrain
from jaxprune.posttrain import Stats


def _data(d_in, d_out, rows=256, seed=0, dead=()):
  rng = np.random.default_rng(seed)
  # Correlated inputs, so that compensation matters.
  x = rng.normal(size=(rows, d_in)) @ rng.normal(size=(d_in, d_in)) / 3
  x[:, list(dead)] = 0
  w = rng.normal(size=(d_in, d_out))
  return x.astype(np.float32), w.astype(np.float32)


def _stats(x):
  return Stats(jnp.asarray(x.T @ x), jnp.float32(x.shape[0]))


def _error(x, w, new):
  """||X W - X W'|| / ||X W|| from the inputs themselves."""
  x, w, new = (np.asarray(a, np.float64) for a in (x, w, new))
  return np.linalg.norm(x @ (w - new)) / np.linalg.norm(x @ w)


def numpy_sparsegpt(w, h, sparsity=None, nm=None, block=128, damping=0.01):
  """The SparseGPT loop of the paper's code, in float64, column by column.

  `w` is (outputs, inputs); returns (weights, mask) in that layout. Masks
  follow jaxprune's counts: each block prunes round(s*rows*end) -
  round(s*rows*start) entries (lowest w^2/d^2, ties to the higher flat
  index pruned); N:M keeps the n best of each group, ties to the lower
  index."""
  w, h = w.astype(np.float64).copy(), h.astype(np.float64).copy()
  rows, cols = w.shape
  dead = np.diag(h) == 0
  h[dead, dead] = 1
  w[:, dead] = 0
  h += damping * np.mean(np.diag(h)) * np.eye(cols)
  u = np.linalg.cholesky(np.linalg.inv(h)).T
  mask = np.zeros_like(w, bool)
  for i1 in range(0, cols, block):
    i2 = min(i1 + block, cols)
    w1, u1 = w[:, i1:i2].copy(), u[i1:i2, i1:i2]
    q1, e1 = np.zeros_like(w1), np.zeros_like(w1)
    k1 = np.zeros_like(w1, bool)
    if nm is None:
      score = ((w1 / np.diag(u1)) ** 2).ravel()
      pruned = round(sparsity * rows * i2) - round(sparsity * rows * i1)
      order = np.argsort(-score, kind="stable")
      k1.ravel()[order[: score.size - pruned]] = True
    for i in range(i2 - i1):
      if nm is not None and i % nm[1] == 0:
        score = (w1[:, i : i + nm[1]] / np.diag(u1)[i : i + nm[1]]) ** 2
        best = np.argsort(-score, axis=1, kind="stable")[:, : nm[0]]
        np.put_along_axis(k1[:, i : i + nm[1]], best, True, axis=1)
      q = np.where(k1[:, i], w1[:, i], 0)
      err = (w1[:, i] - q) / u1[i, i]
      w1[:, i:] -= np.outer(err, u1[i, i:])
      q1[:, i], e1[:, i] = q, err
    w[:, i1:i2], mask[:, i1:i2] = q1, k1
    w[:, i2:] -= e1 @ u[i1:i2, i2:]
  return w, mask


@pytest.mark.parametrize(
  "target",
  [dict(sparsity=0.5), dict(sparsity=0.3), dict(nm=(2, 4)), dict(nm=(4, 8))],
)
def test_sparsegpt_matches_float64_numpy(target):
  # 40 inputs in blocks of 16: two whole blocks, a short last one, lazy
  # updates between them; inputs 3 and 17 never fire.
  x, w = _data(40, 12, dead=(3, 17))
  stats = _stats(x)
  new, mask = posttrain.sparsegpt(
    jnp.asarray(w), stats, block_size=16, **target
  )
  ref_w, ref_mask = numpy_sparsegpt(
    w.T, np.asarray(stats.hessian), block=16, **target
  )
  np.testing.assert_array_equal(np.asarray(mask), ref_mask.T)
  np.testing.assert_allclose(np.asarray(new), ref_w.T, atol=1e-4)
  assert np.all(np.asarray(new)[[3, 17]] == 0)  # dead inputs: zeroed


def test_sparsity_zero_leaves_weights_unchanged():
  x, w = _data(24, 6)
  for name, solve in posttrain.METHODS.items():
    new, mask = solve(jnp.asarray(w), _stats(x), sparsity=0.0)
    assert bool(jnp.all(mask)), name
    np.testing.assert_array_equal(np.asarray(new), w, err_msg=name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_mask_error_order(seed):
  # For one mask, the one SparseGPT chooses: least squares (the optimum)
  # <= SparseGPT <= the mask alone. (With a mask chosen otherwise, e.g. by
  # magnitude, SparseGPT's column-by-column compensation can end above the
  # mask alone: it moves weight onto later columns that are then pruned.)
  x, w = _data(32, 10, seed=seed)
  stats = _stats(x)
  sg, mask = posttrain.sparsegpt(jnp.asarray(w), stats, sparsity=0.5)
  mask = np.asarray(mask)
  ls, ls_mask = posttrain.least_squares(jnp.asarray(w), stats, mask=mask)
  again, sg_mask = posttrain.sparsegpt(
    jnp.asarray(w), stats, mask=jnp.asarray(mask)
  )
  np.testing.assert_allclose(again, sg, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(ls_mask), mask)
  np.testing.assert_array_equal(np.asarray(sg_mask), mask)
  e_ls, e_sg = _error(x, w, ls), _error(x, w, sg)
  e_mask = _error(x, w, w * mask)
  assert e_ls <= e_sg + 1e-5 and e_sg < e_mask, (e_ls, e_sg, e_mask)
  assert np.all(np.asarray(ls)[~mask] == 0)
  # The least-squares optimum: numpy lstsq, output by output.
  for o in range(w.shape[1]):
    keep = mask[:, o]
    best = np.linalg.lstsq(x[:, keep], x @ w[:, o], rcond=None)[0]
    np.testing.assert_allclose(np.asarray(ls)[keep, o], best, atol=2e-3)


def test_wanda_mask_and_counts_per_row():
  x, w = _data(30, 8)
  new, mask = posttrain.wanda(jnp.asarray(w), _stats(x), sparsity=0.6)
  score = np.abs(w) * np.linalg.norm(x.astype(np.float64), axis=0)[:, None]
  keep = 30 - round(0.6 * 30)
  for o in range(8):
    best = np.argsort(-score[:, o], kind="stable")[:keep]
    expected = np.zeros(30, bool)
    expected[best] = True
    np.testing.assert_array_equal(np.asarray(mask)[:, o], expected)
  np.testing.assert_array_equal(np.asarray(new), w * np.asarray(mask))


@pytest.mark.parametrize("method", sorted(posttrain.METHODS))
def test_nm_counts_per_group(method):
  x, w = _data(32, 6)
  _, mask = posttrain.METHODS[method](jnp.asarray(w), _stats(x), nm=(2, 4))
  groups = np.asarray(mask).T.reshape(6, 8, 4)  # (outputs, groups, m)
  assert np.all(groups.sum(-1) == 2)


def test_layer_counts_exact():
  x, w = _data(40, 9)
  for name in ("magnitude", "sparsegpt"):
    _, mask = posttrain.METHODS[name](jnp.asarray(w), _stats(x), sparsity=0.55)
    assert int(mask.sum()) == 360 - round(0.55 * 360), name
  _, mask = posttrain.magnitude(jnp.asarray(w), sparsity=0.55, per_row=True)
  assert np.all(np.asarray(mask).sum(0) == 40 - round(0.55 * 40))


def test_dead_inputs():
  x, w = _data(16, 4, dead=(0, 5))
  for name, solve in posttrain.METHODS.items():
    new, _ = solve(jnp.asarray(w), _stats(x), sparsity=0.5)
    assert np.all(np.isfinite(np.asarray(new))), name
  new, mask = posttrain.wanda(jnp.asarray(w), _stats(x), sparsity=0.5)
  assert not np.asarray(mask)[[0, 5]].any()  # zero norm: pruned first


def test_kernels_of_more_axes_are_matrices():
  # A DenseGeneral kernel (in, heads, head_dim) and an output projection
  # (heads, head_dim, out) prune as their (in, out) matrices.
  x, _ = _data(12, 1)
  rng = np.random.default_rng(3)
  qkv = rng.normal(size=(12, 2, 3)).astype(np.float32)
  new, mask = posttrain.sparsegpt(qkv, _stats(x), sparsity=0.5)
  flat, flat_mask = posttrain.sparsegpt(
    qkv.reshape(12, 6), _stats(x), sparsity=0.5
  )
  np.testing.assert_array_equal(np.asarray(new).reshape(12, 6), flat)
  np.testing.assert_array_equal(np.asarray(mask).reshape(12, 6), flat_mask)
  out = rng.normal(size=(2, 3, 5)).astype(np.float32)
  x6, _ = _data(6, 1)
  new, mask = posttrain.wanda(out, _stats(x6), nm=(1, 2), n_in=2)
  assert new.shape == (2, 3, 5)
  assert np.all(np.asarray(mask).reshape(3, 2, 5).sum(1) == 1)


def test_jit():
  x, w = _data(24, 6)
  stats = _stats(x)
  for name, solve in posttrain.METHODS.items():
    jitted = jax.jit(lambda k, s, solve=solve: solve(k, s, sparsity=0.5))
    new, mask = jitted(jnp.asarray(w), stats)
    eager = solve(jnp.asarray(w), stats, sparsity=0.5)
    np.testing.assert_array_equal(np.asarray(mask), eager[1], err_msg=name)
    np.testing.assert_allclose(new, eager[0], atol=1e-6, err_msg=name)


def test_relative_error_from_gram():
  x, w = _data(10, 3)
  new = w * (np.arange(30).reshape(10, 3) % 3 > 0)
  got = posttrain.relative_error(jnp.asarray(w), jnp.asarray(new), _stats(x))
  assert abs(float(got) - _error(x, w, new)) < 1e-4


@pytest.mark.parametrize("sparsity", [1.0, -0.1, 1.5])
def test_sparsity_outside_range(sparsity):
  x, w = _data(8, 2)
  for solve in posttrain.METHODS.values():
    with pytest.raises(ValueError, match=r"sparsity=.*\[0, 1\)"):
      solve(jnp.asarray(w), _stats(x), sparsity=sparsity)


def test_m_not_dividing_input_width():
  x, w = _data(10, 2)
  for solve in posttrain.METHODS.values():
    with pytest.raises(ValueError, match="m=4 does not divide .* 10"):
      solve(jnp.asarray(w), _stats(x), nm=(2, 4))


def test_failing_cholesky_names_damping():
  # An indefinite "Hessian" (eigenvalues -1 and 3, mean diagonal 1):
  # damping must exceed 1.
  stats = Stats(jnp.array([[1.0, 2.0], [2.0, 1.0]]), jnp.float32(2))
  with pytest.raises(ValueError, match=r"Cholesky.*damping >= 1\.001 "):
    posttrain.sparsegpt(jnp.ones((2, 2)), stats, sparsity=0.5)


def test_ties_keep_the_lower_index():
  # Integer weights and equal input norms: many ties within each row.
  rng = np.random.default_rng(5)
  w = rng.integers(-2, 3, size=(16, 6)).astype(np.float32)
  stats = Stats(jnp.eye(16) * 4.0, jnp.float32(4))
  _, mask = posttrain.wanda(jnp.asarray(w), stats, sparsity=0.5)
  best = np.argsort(-np.abs(w), axis=0, kind="stable")[:8]
  expected = np.zeros(w.shape, bool)
  np.put_along_axis(expected, best, True, axis=0)
  np.testing.assert_array_equal(np.asarray(mask), expected)
  _, mask = posttrain.magnitude(jnp.asarray(w), sparsity=0.5)
  flat = np.argsort(-np.abs(w).ravel(), kind="stable")[:48]
  expected = np.zeros(w.size, bool)
  expected[flat] = True
  np.testing.assert_array_equal(np.asarray(mask).ravel(), expected)


def test_sparsegpt_wide_layer_matches_float64_numpy():
  # 400 inputs: the factor of H is built by halves (its leaves are at most
  # 192 wide) and the last block of 128 columns is short.
  x, w = _data(400, 6, rows=1024, seed=3)
  stats = _stats(x)
  new, mask = posttrain.sparsegpt(jnp.asarray(w), stats, sparsity=0.6)
  ref_w, ref_mask = numpy_sparsegpt(
    w.T, np.asarray(stats.hessian), sparsity=0.6
  )
  np.testing.assert_array_equal(np.asarray(mask), ref_mask.T)
  np.testing.assert_allclose(np.asarray(new), ref_w.T, atol=1e-4)


def test_sparsegpt_leaves_blas_threads_as_they_were():
  # The factorization holds BLAS libraries to one thread; afterwards (and
  # after a failure) every library has its thread count back.
  before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
  x, w = _data(24, 4)
  posttrain.sparsegpt(jnp.asarray(w), _stats(x), sparsity=0.5)
  stats = Stats(jnp.array([[1.0, 2.0], [2.0, 1.0]]), jnp.float32(2))
  with pytest.raises(ValueError, match="Cholesky"):
    posttrain.sparsegpt(jnp.ones((2, 2)), stats, sparsity=0.5)
  after = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
  assert after == before
