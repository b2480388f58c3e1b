"""Reconstruction after structured pruning, against numpy least squares."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune.compact import find_groups, masks_from_keep
from jaxprune.core.tree import path_str
from jaxprune.posttrain import reconstruct as rc


def _correlated(rng, n, d):
  """Rows whose features share a low-rank part (so removed features are
  partly predictable from kept ones) and have nonzero means."""
  base = rng.normal(size=(n, 3))
  mix = rng.normal(size=(3, d))
  return base @ mix + 0.3 * rng.normal(size=(n, d)) + rng.normal(size=d)


def _augmented_gram(x):
  a = np.concatenate([x, np.ones((len(x), 1))], axis=1)
  return a.T @ a


def test_moments_is_the_gram_of_inputs_with_a_ones_column():
  rng = np.random.default_rng(0)
  model = nn.Sequential([nn.Dense(4), nn.relu, nn.Dense(3)])
  x1, x2 = (rng.normal(size=(5, 6)).astype(np.float32) for _ in range(2))
  v = model.init(jax.random.key(0), x1)
  got = rc.moments(model.apply, v, [x1, x2], ["params/layers_2/kernel"])
  gram, n_in = got["params/layers_2/kernel"]
  p = v["params"]["layers_0"]
  hidden = [np.maximum(x @ p["kernel"] + p["bias"], 0) for x in (x1, x2)]
  expected = _augmented_gram(np.concatenate(hidden))
  np.testing.assert_allclose(gram, expected, rtol=1e-5, atol=1e-5)
  assert n_in == 1


def test_fold_in_equals_the_direct_least_squares_fit_of_the_outputs():
  rng = np.random.default_rng(1)
  x = _correlated(rng, 200, 7)
  w, b = rng.normal(size=(7, 4)), rng.normal(size=4)
  keep = np.array([1, 0, 1, 1, 0, 1, 0], bool)
  k2, b2 = rc.fold_in(w, b, _augmented_gram(x), keep, ridge=0.0)
  # Independent: regress the unpruned outputs on [x_S, 1].
  design = np.concatenate([x[:, keep], np.ones((200, 1))], axis=1)
  coef = np.linalg.lstsq(design, x @ w + b, rcond=None)[0]
  np.testing.assert_allclose(k2[keep], coef[:-1], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(b2, coef[-1], rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(k2[~keep], 0)
  # A small ridge moves it only slightly.
  k3, _ = rc.fold_in(w, b, _augmented_gram(x), keep, ridge=1e-6)
  np.testing.assert_allclose(k3, k2, atol=1e-3)


def test_ridge_fold_in_is_the_direct_fit_penalising_the_kept_weights():
  rng = np.random.default_rng(5)
  x = _correlated(rng, 60, 6)
  w, b = rng.normal(size=(6, 3)), rng.normal(size=3)
  keep = np.array([1, 0, 1, 0, 1, 1], bool)
  k2, b2 = rc.fold_in(w, b, _augmented_gram(x), keep, ridge=0.1)
  # min ||x w + b - [x_S 1] [V; c]||^2 + lam ||V - w_S||^2, as one stacked
  # least-squares problem; lam = ridge * mean squared kept feature.
  lam = 0.1 * np.mean(np.sum(x[:, keep] ** 2, axis=0))
  s = int(keep.sum())
  design = np.concatenate([x[:, keep], np.ones((60, 1))], axis=1)
  penalty = np.sqrt(lam) * np.eye(s + 1)[:s]
  coef = np.linalg.lstsq(
    np.concatenate([design, penalty]),
    np.concatenate([x @ w + b, np.sqrt(lam) * w[keep]]),
    rcond=None,
  )[0]
  np.testing.assert_allclose(k2[keep], coef[:-1], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(b2, coef[-1], rtol=1e-4, atol=1e-4)


def test_fold_in_without_bias_fits_no_intercept():
  rng = np.random.default_rng(2)
  x = _correlated(rng, 100, 5)
  w = rng.normal(size=(5, 3))
  keep = np.array([1, 1, 0, 1, 0], bool)
  k2, b2 = rc.fold_in(w, None, _augmented_gram(x), keep, ridge=0.0)
  coef = np.linalg.lstsq(x[:, keep], x @ w, rcond=None)[0]
  assert b2 is None
  np.testing.assert_allclose(k2[keep], coef, rtol=1e-4, atol=1e-4)


def test_rescale_matches_a_numpy_scale_fit_and_beats_no_reconstruction():
  rng = np.random.default_rng(3)
  x = _correlated(rng, 150, 6)
  w = rng.normal(size=(6, 5))
  unit = np.array([0, 0, 1, 1, 2, 2])  # two features per unit
  keep = np.array([True, False, True])
  scales = rc.rescale(w, _augmented_gram(x), unit, keep, ridge=0.0)
  # Independent: one design column per kept unit, its contribution to
  # every output of every row.
  cols = [(x[:, unit == u] @ w[unit == u]).ravel() for u in (0, 2)]
  coef = np.linalg.lstsq(np.stack(cols, 1), (x @ w).ravel(), rcond=None)[0]
  np.testing.assert_allclose(scales, [coef[0], 0.0, coef[1]], rtol=1e-5)
  error = lambda k: np.linalg.norm(x @ k - x @ w)
  plain = w * keep[unit][:, None]
  assert error(w * scales[unit][:, None]) < error(plain)


def _mlp_case():
  model = nn.Sequential(
    [nn.Dense(12), nn.relu, nn.Dense(10), nn.relu, nn.Dense(3)]
  )
  rng = np.random.default_rng(4)
  batches = [_correlated(rng, 32, 6).astype(np.float32) for _ in range(3)]
  v = model.init(jax.random.key(1), batches[0])
  units = find_groups(model.apply, v, batches[0][:1])
  keep = {
    "layers_0": np.arange(12) % 2 == 0,
    "layers_2": np.arange(10) % 2 == 0,
  }
  masks = jax.tree.map_with_path(
    lambda p, x: (
      None
      if p[-1].key != "kernel" or p[1].key not in keep
      else jnp.broadcast_to(jnp.asarray(keep[p[1].key]), x.shape)
    ),
    v,
  )
  return model, v, masks, units, batches


@pytest.mark.parametrize("method", ["none", "rescale", "liar"])
def test_reconstruct_removes_whole_units(method):
  model, v, masks, units, batches = _mlp_case()
  out = rc.reconstruct(model.apply, v, masks, units, batches, method)
  p = out["params"]
  np.testing.assert_array_equal(p["layers_0"]["kernel"][:, 1::2], 0)
  np.testing.assert_array_equal(p["layers_0"]["bias"][1::2], 0)
  np.testing.assert_array_equal(p["layers_2"]["kernel"][1::2], 0)
  np.testing.assert_array_equal(p["layers_4"]["kernel"][1::2], 0)


def test_reconstruction_lowers_the_output_error_on_calibration_data():
  model, v, masks, units, batches = _mlp_case()
  x = np.concatenate(batches)
  dense = model.apply(v, x)
  errors = {}
  for method in rc.METHODS:
    out = rc.reconstruct(model.apply, v, masks, units, batches, method)
    errors[method] = float(jnp.linalg.norm(model.apply(out, x) - dense))
  assert errors["liar"] < errors["rescale"] < errors["none"], errors


def test_bad_inputs_are_named():
  model, v, masks, units, batches = _mlp_case()
  with pytest.raises(ValueError, match="method='ls'"):
    rc.reconstruct(model.apply, v, masks, units, batches, "ls")
  with pytest.raises(ValueError, match="ridge=-1"):
    rc.reconstruct(model.apply, v, masks, units, batches, ridge=-1)
  with pytest.raises(ValueError, match=r"kernel paths \['params/nope'\]"):
    rc.moments(model.apply, v, batches, ["params/nope"])
  with pytest.raises(ValueError, match="at least one calibration batch"):
    rc.moments(model.apply, v, [], ["params/layers_2/kernel"])
  w, g = np.ones((3, 2)), np.eye(4)
  with pytest.raises(ValueError, match=r"keep has shape \(2,\); expected"):
    rc.fold_in(w, None, g, [True, False])
  with pytest.raises(ValueError, match="removes every input feature"):
    rc.fold_in(w, None, g, [False] * 3)
  with pytest.raises(ValueError, match=r"gram has shape \(3, 3\)"):
    rc.fold_in(w, None, np.eye(3), [True] * 3)
  with pytest.raises(ValueError, match=r"in \[0, 2\)"):
    rc.rescale(w, g, [0, 1, 2], [True, False])


def test_conv_reader_is_reconstructed_over_its_patches():
  model = nn.Sequential(
    [nn.Conv(6, (3, 3)), nn.relu, nn.Conv(3, (3, 3), use_bias=False)]
  )
  rng = np.random.default_rng(6)
  base = rng.normal(size=(4, 6, 6, 1))
  batches = [
    (
      base * rng.normal(size=(1, 1, 1, 2)) + 0.1 * rng.normal(size=(4, 6, 6, 2))
    ).astype(np.float32)
    for _ in range(3)
  ]
  v = model.init(jax.random.key(2), batches[0])
  units = find_groups(model.apply, v, batches[0][:1])
  keep = np.array([1, 0, 1, 0, 1, 1], bool)
  masks = jax.tree.map_with_path(
    lambda p, x: (
      jnp.broadcast_to(jnp.asarray(keep), x.shape)
      if path_str(p) == "params/layers_0/kernel"
      else None
    ),
    v,
  )
  x = np.concatenate(batches)
  dense = model.apply(v, x)
  errors = {}
  for method in rc.METHODS:
    out = rc.reconstruct(model.apply, v, masks, units, batches, method)
    np.testing.assert_array_equal(
      out["params"]["layers_2"]["kernel"][:, :, ~keep], 0
    )
    errors[method] = float(jnp.linalg.norm(model.apply(out, x) - dense))
  assert errors["liar"] < errors["rescale"] < errors["none"], errors


class _NormNet(nn.Module):
  """A hidden layer read by a bias-free layer that feeds a BatchNorm."""

  @nn.compact
  def __call__(self, x):
    h = nn.relu(nn.Dense(6, name="fc1")(x))
    y = nn.Dense(3, use_bias=False, name="fc2")(h)
    return nn.BatchNorm(use_running_average=True, name="bn")(y)


def test_liar_intercept_of_a_batchnormed_reader_goes_into_its_mean():
  rng = np.random.default_rng(7)
  batches = [_correlated(rng, 40, 5).astype(np.float32) for _ in range(2)]
  model = _NormNet()
  v = model.init(jax.random.key(3), batches[0])
  stats = {"mean": rng.normal(size=3), "var": rng.uniform(0.5, 2, 3)}
  norm = {"scale": rng.normal(size=3), "bias": rng.normal(size=3)}
  v = {
    "params": {**v["params"], "bn": jax.tree.map(jnp.float32, norm)},
    "batch_stats": {"bn": jax.tree.map(jnp.float32, stats)},
  }
  assert rc.following_norms(model.apply, v, batches[0]) == {
    "params/fc2/kernel": "batch_stats/bn/mean"
  }
  units = find_groups(model.apply, v, batches[0][:1])
  keep = np.array([1, 0, 1, 0, 1, 1], bool)
  masks = jax.tree.map_with_path(
    lambda p, x: (
      jnp.broadcast_to(jnp.asarray(keep), x.shape)
      if path_str(p) == "params/fc1/kernel"
      else None
    ),
    v,
  )
  out = rc.reconstruct(model.apply, v, masks, units, batches, "liar", 0.0)
  # numpy: fc2's dense output fitted from the kept hidden units and a
  # constant, by least squares, then normalised as the BatchNorm does.
  x = np.concatenate(batches).astype(np.float64)
  p = jax.tree.map(np.asarray, v["params"])
  h = np.maximum(x @ p["fc1"]["kernel"] + p["fc1"]["bias"], 0)
  y = h @ p["fc2"]["kernel"]
  a = np.concatenate([h[:, keep], np.ones((len(h), 1))], axis=1)
  fit = a @ np.linalg.lstsq(a, y, rcond=None)[0]
  expected = (fit - stats["mean"]) / np.sqrt(stats["var"] + 1e-5)
  expected = expected * norm["scale"] + norm["bias"]
  np.testing.assert_allclose(model.apply(out, x), expected, atol=2e-4)


class _PadNet(nn.Module):
  """A stream widened by zero padding, as ResNet-20's shortcuts do: the
  head reads the stem's two channels and the two the padding adds."""

  @nn.compact
  def __call__(self, x):
    s = nn.relu(nn.Dense(2, name="stem")(x))
    h = nn.relu(nn.Dense(3, name="inner")(s))
    t = jnp.pad(s, ((0, 0), (1, 1))) + nn.Dense(4, name="wide")(h)
    return nn.Dense(2, name="head")(t)


def test_rescale_scales_only_the_removed_units_group_of_a_shared_reader():
  rng = np.random.default_rng(8)
  batches = [_correlated(rng, 30, 4).astype(np.float32) for _ in range(2)]
  model = _PadNet()
  v = model.init(jax.random.key(4), batches[0])
  units = find_groups(model.apply, v, batches[0][:1])
  names = [g.name.split()[0] for g in units.groups]
  stem = names.index("params/stem/kernel")
  keep = [np.ones(g.size, bool) for g in units.groups]
  keep[stem] = np.array([False, True])
  masks = masks_from_keep(v, units, keep)
  out = rc.reconstruct(model.apply, v, masks, units, batches, "rescale", 0.0)
  # numpy: the head's rows 1 and 2 read the stem's channels 0 and 1; the
  # scale of row 2 fits their whole contribution from row 2's alone.
  x = np.concatenate(batches).astype(np.float64)
  p = jax.tree.map(np.asarray, v["params"])
  s = np.maximum(x @ p["stem"]["kernel"] + p["stem"]["bias"], 0)
  h = np.maximum(s @ p["inner"]["kernel"] + p["inner"]["bias"], 0)
  t = np.pad(s, ((0, 0), (1, 1))) + h @ p["wide"]["kernel"] + p["wide"]["bias"]
  w = p["head"]["kernel"]
  target = (t[:, 1:3] @ w[1:3]).ravel()
  kept = np.outer(t[:, 2], w[2]).ravel()
  scale = target @ kept / (kept @ kept)
  head = np.asarray(out["params"]["head"]["kernel"])
  np.testing.assert_allclose(head[[0, 3]], w[[0, 3]], rtol=1e-6)
  np.testing.assert_array_equal(head[1], 0)
  np.testing.assert_allclose(head[2], scale * w[2], rtol=1e-4)
