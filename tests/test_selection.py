"""Exact top-k, global selection with a minimum, N:M and channel structure,
checked against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune.core import selection


def ref_topk(x: np.ndarray, k: int) -> np.ndarray:
  """Keeps the k largest, lower flat index first among equals."""
  flat = x.ravel()
  order = np.lexsort((np.arange(flat.size), -flat))
  keep = np.zeros(flat.size, bool)
  keep[order[:k]] = True
  return keep.reshape(x.shape)


def draw(kind: str, n: int, rng) -> np.ndarray:
  if kind == "normal":
    x = rng.normal(size=n)
  elif kind == "few_values":
    x = rng.integers(0, 4, size=n).astype(float)
  elif kind == "zeros":
    x = np.zeros(n)
  elif kind == "sparse":
    x = np.abs(rng.normal(size=n)) * (rng.random(n) < 0.3)
  else:
    x = rng.standard_cauchy(n)
  return x.astype(np.float32)


@pytest.mark.parametrize(
  "kind", ["normal", "few_values", "zeros", "sparse", "cauchy"]
)
def test_topk_matches_numpy_under_ties(kind):
  rng = np.random.default_rng(0)
  fn = jax.jit(selection.topk_mask)
  for n in (1, 5, 64, 999):
    x = draw(kind, n, rng)
    x = x.reshape(-1, 1) if n % 2 else x
    for k in {0, 1, n // 3, n // 2, n - 1, n, int(rng.integers(0, n + 1))}:
      got = np.asarray(fn(jnp.asarray(x), k))
      np.testing.assert_array_equal(got, ref_topk(x, k))


@pytest.mark.parametrize("shape", [(8193,), (300, 100), (10007,), (70001,)])
def test_topk_and_global_match_numpy_past_whole_blocks(shape):
  # Counts sum whole blocks of 8,192 entries and the rest apart, and the
  # last row of 128 is partial: sizes off those multiples, with ties.
  rng = np.random.default_rng(sum(shape))
  n = int(np.prod(shape))
  topk = jax.jit(selection.topk_mask)
  glob = jax.jit(lambda a, b, k: selection.global_topk_masks([a, b], k))
  for kind in ("normal", "few_values", "cauchy"):
    x = draw(kind, n, rng).reshape(shape)
    y = draw(kind, 1000, rng)
    both = np.concatenate([x.ravel(), y])
    for k in (1, n // 10, n // 2, n - 3, int(rng.integers(0, n + 1))):
      np.testing.assert_array_equal(np.asarray(topk(x, k)), ref_topk(x, k))
      got = glob(jnp.asarray(x), jnp.asarray(y), k)
      np.testing.assert_array_equal(
        np.concatenate([np.asarray(g).ravel() for g in got]),
        ref_topk(both, k),
      )


def test_topk_all_equal_keeps_first_indices():
  got = selection.topk_mask(jnp.ones(7), 3)
  assert got.tolist() == [True, True, True, False, False, False, False]


def test_topk_large_leaf_exact_count():
  x = jax.random.normal(jax.random.key(1), (1 << 20,))
  for k in (1, 12345, 1 << 19, (1 << 20) - 1):
    assert int(jnp.sum(selection.topk_mask(x, k))) == k


def test_kept_count_rounding_rule():
  # n - round_half_even(s * n) in float32.
  assert int(selection.kept_count(10, 0.25)) == 8  # 2.5 -> 2 pruned
  assert int(selection.kept_count(10, 0.35)) == 6  # 3.5 -> 4 pruned
  assert int(selection.kept_count(1000, 0.0)) == 1000
  assert int(selection.kept_count(1000, 1.0)) == 0
  assert int(selection.kept_count(266200, 0.8)) == 53240


def test_global_matches_concatenated_reference():
  rng = np.random.default_rng(1)
  parts = [draw("few_values", n, rng) for n in (50, 7, 300)]
  cat = np.concatenate(parts)
  for k in (0, 1, 100, 200, 357):
    got = selection.global_topk_masks([jnp.asarray(p) for p in parts], k)
    np.testing.assert_array_equal(
      np.concatenate([np.asarray(g) for g in got]), ref_topk(cat, k)
    )


def test_global_minimum_count_prevents_layer_collapse():
  big = jnp.arange(100.0) + 100.0  # all larger than every entry of `small`
  small = jnp.arange(10.0)
  plain = selection.global_topk_masks([big, small], 20)
  assert int(plain[1].sum()) == 0  # collapse without the guard
  big_m, small_m = selection.global_topk_masks([big, small], 20, min_count=4)
  # small keeps its own best 4; big gets the remaining 16 of the budget.
  assert small_m.tolist() == [False] * 6 + [True] * 4
  assert int(big_m.sum()) == 16 and bool(big_m[-16:].all())


def test_global_minimum_leaves_smaller_than_minimum_stay_dense():
  a = jnp.arange(1000.0)
  tiny = jnp.zeros(3)
  ma, mt = selection.global_topk_masks([a, tiny], 100, min_count=5)
  assert bool(mt.all())
  assert int(ma.sum()) == 97


def test_nm_mask_structure_against_reference():
  rng = np.random.default_rng(2)
  x = rng.integers(0, 5, size=(6, 8, 12)).astype(np.float32)
  for n, m, axis in ((2, 4, -1), (1, 4, 1), (3, 6, 2), (1, 2, 0)):
    got = np.asarray(selection.nm_mask(jnp.asarray(x), n, m, axis))
    moved = np.moveaxis(x, axis, -1)
    groups = moved.reshape(-1, m)
    expect = np.stack([ref_topk(g, n) for g in groups]).reshape(moved.shape)
    np.testing.assert_array_equal(got, np.moveaxis(expect, -1, axis))
    per_group = np.moveaxis(got, axis, -1).reshape(-1, m).sum(-1)
    assert (per_group == n).all()


def test_nm_mask_rejects_indivisible_axis():
  with pytest.raises(ValueError, match="divisible by 4"):
    selection.nm_mask(jnp.ones((3, 6)), 2, 4)


def test_channel_mask_prunes_whole_lowest_norm_channels():
  rng = np.random.default_rng(3)
  w = rng.normal(size=(3, 3, 4, 10)).astype(np.float32)
  got = np.asarray(selection.channel_mask(jnp.asarray(w), 0.3))
  norms = np.sqrt((w.reshape(-1, 10) ** 2).sum(0))
  keep = ref_topk(norms, 7)
  np.testing.assert_array_equal(got, np.broadcast_to(keep, w.shape))


def test_negative_scores_order():
  x = jnp.array([-1.0, -3.0, 2.0, -0.5, 0.0])
  assert selection.topk_mask(x, 3).tolist() == [False, False, True, True, True]


def test_signed_zeros_are_equal_scores():
  # -0.0 == 0.0: ties keep the lower index (the documented rule), in top-k,
  # global, N:M and in the boundary values.
  x = jnp.array([-0.0, 0.0, -0.0, 0.0, -0.0, 0.0])
  np.testing.assert_array_equal(
    np.asarray(selection.topk_mask(x, 3)), [1, 1, 1, 0, 0, 0]
  )
  a, b = selection.global_topk_masks([x[:3], x[3:]], 4)
  np.testing.assert_array_equal(np.asarray(a), [1, 1, 1])
  np.testing.assert_array_equal(np.asarray(b), [1, 0, 0])
  np.testing.assert_array_equal(
    np.asarray(selection.nm_mask(x.reshape(3, 2), 1, 2)),
    [[1, 0], [1, 0], [1, 0]],
  )
  assert [float(v) for v in selection.boundary(x, 3)] == [0.0, 0.0]
  # mixed with signed values, against numpy's reference (which compares
  # -0.0 == 0.0 too)
  rng = np.random.default_rng(3)
  v = rng.choice(np.array([-1.0, -0.0, 0.0, 2.0], np.float32), size=1000)
  for k in (0, 1, 250, 500, 999, 1000):
    np.testing.assert_array_equal(
      np.asarray(selection.topk_mask(jnp.asarray(v), k)), ref_topk(v, k)
    )
