"""Unit scores from calibration data, against numpy references."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune.compact import Units, compact_model, find_groups, unit_masks
from jaxprune.core.tree import apply_masks
from jaxprune.models.bert import BertEncoder
from jaxprune.posttrain import reconstruct as rc
from jaxprune.posttrain import unit_scores as us


def _mlp():
  model = nn.Sequential([nn.Dense(5), nn.relu, nn.Dense(3)])
  rng = np.random.default_rng(0)
  batches = [rng.normal(size=(8, 4)).astype(np.float32) for _ in range(2)]
  targets = [rng.normal(size=(8, 3)).astype(np.float32) for _ in range(2)]
  v = model.init(jax.random.key(0), batches[0])
  units = find_groups(model.apply, v, batches[0][:1])
  return model, v, units, batches, targets


def _hidden(v, x):
  p = v["params"]["layers_0"]
  return np.maximum(x @ np.asarray(p["kernel"]) + np.asarray(p["bias"]), 0)


def test_activation_is_reading_weight_norm_times_activation_norm():
  model, v, units, batches, _ = _mlp()
  (got,) = us.activation(model.apply, v, units, batches)
  h = np.concatenate([_hidden(v, x) for x in batches])
  w1 = np.asarray(v["params"]["layers_2"]["kernel"])
  expected = np.linalg.norm(w1, axis=1) * np.linalg.norm(h, axis=0)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("kind", ["taylor", "fisher"])
def test_gradient_scores_match_the_hand_derived_mask_gradient(kind):
  model, v, units, batches, targets = _mlp()

  def loss(v, batch):
    x, t = batch
    return 0.5 * jnp.sum((model.apply(v, x) - t) ** 2)

  pairs = list(zip(batches, targets, strict=True))
  (got,) = us.gradient(loss, v, units, pairs, kind)
  w1 = np.asarray(v["params"]["layers_2"]["kernel"])
  b1 = np.asarray(v["params"]["layers_2"]["bias"])
  per_batch = []
  for x, t in pairs:
    h = _hidden(v, x)
    residual = h @ w1 + b1 - t  # dL/dy
    # y = sum_u m_u h_u w1[u] + b1: dL/dm_u = sum_t <residual_t, w1[u]> h_tu
    per_batch.append(np.sum((residual @ w1.T) * h, axis=0))
  per_batch = np.array(per_batch)
  if kind == "fisher":
    expected = np.sum(per_batch**2, axis=0)
  else:
    expected = np.abs(per_batch.sum(axis=0))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def _bert():
  model = BertEncoder(
    vocab_size=30, max_length=8, width=8, depth=1, heads=2, ffn=16
  )
  ids = jnp.array([[1, 5, 7, 2, 0], [3, 4, 9, 9, 2]], jnp.int32)
  mask = jnp.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], jnp.int32)
  v = model.init(jax.random.key(0), ids, mask)
  apply = lambda v, b: model.apply(v, *b, method="embed")
  return model, v, apply, (ids, mask)


def _heads(units):
  return [
    g
    for g in units.groups
    if any(m.path.endswith("out/kernel") and m.axis == 0 for m in g.members)
  ]


def test_attention_heads_group_query_key_value_and_out():
  _, v, apply, batch = _bert()
  units = find_groups(apply, v, batch)
  (heads,) = _heads(units)
  a = "params/layer0/attention/"
  expected = {
    (a + f"{n}/kernel", 1, "out") for n in ("query", "key", "value")
  } | {(a + f"{n}/bias", 0, "vector") for n in ("query", "key", "value")}
  expected.add((a + "out/kernel", 0, "in"))
  assert {(m.path, m.axis, m.role) for m in heads.members} == expected
  assert heads.size == 2
  (ffn,) = units.select("intermediate")
  assert ffn.size == 16


def test_activation_of_heads_sums_their_output_kernel_slices():
  model, v, apply, batch = _bert()
  heads = Units(tuple(_heads(find_groups(apply, v, batch))), {})
  (got,) = us.activation(apply, v, heads, [batch])
  seen = []

  def grab(next_fn, args, kwargs, context):
    if context.module.name == "out":
      seen.append(np.asarray(args[0]))  # (batch, length, heads, head_dim)
    return next_fn(*args, **kwargs)

  with nn.intercept_methods(grab):
    apply(v, batch)
  x2 = np.sum(seen[0] ** 2, axis=(0, 1))  # (heads, head_dim)
  k = np.asarray(v["params"]["layer0"]["attention"]["out"]["kernel"])
  expected = np.sqrt(np.sum(np.sum(k**2, axis=-1) * x2, axis=1))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_select_keeps_exact_counts_per_group_and_globally():
  model, v, units, batches, _ = _mlp()
  s = [jnp.array([3.0, 1.0, 4.0, 1.5, 5.0])]
  m = us.select(v, units, s, 0.4)
  np.testing.assert_array_equal(
    m["params"]["layers_0"]["kernel"][0], [True, False, True, False, True]
  )
  assert m["params"]["layers_2"]["kernel"] is None
  _, v2, apply, batch = _bert()
  units2 = find_groups(apply, v2, batch)
  groups = Units((*_heads(units2), *units2.select("intermediate")), {})
  scores = [jnp.array([0.1, 9.0]), jnp.arange(16.0)]
  m2 = us.select(v2, groups, scores, 9 / 18, "global")
  q = m2["params"]["layer0"]["attention"]["query"]["kernel"]
  np.testing.assert_array_equal(q[0, :, 0], [False, True])
  ffn = m2["params"]["layer0"]["intermediate"]["kernel"][0]
  assert int(ffn.sum()) == 8 and bool(ffn[-1])


def test_bad_inputs_are_named():
  model, v, units, batches, _ = _mlp()
  with pytest.raises(ValueError, match="score='l1'"):
    us.scores("l1", v, units)
  with pytest.raises(ValueError, match="needs apply_fn= and batches="):
    us.scores("activation", v, units)
  with pytest.raises(ValueError, match="needs loss_fn= and batches="):
    us.scores("fisher", v, units, batches=batches)
  with pytest.raises(ValueError, match="kind='hessian'"):
    us.gradient(lambda v, b: 0.0, v, units, batches, "hessian")
  with pytest.raises(
    ValueError, match=r"shapes \[\(4,\)\]; expected \[\(5,\)\]"
  ):
    us.select(v, units, [jnp.ones(4)], 0.5)
  with pytest.raises(ValueError, match="distribution='local'"):
    us.select(v, units, [jnp.ones(5)], 0.5, "local")
  _, v2, apply, batch = _bert()
  qk = Units(find_groups(apply, v2, batch).select(r"key/kernel \(\+1"), {})
  with pytest.raises(ValueError, match="has no layer reading its units"):
    us.activation(apply, v2, qk, [batch])


@pytest.mark.parametrize("method", ["none", "liar"])
def test_reconstructed_bert_compacts_to_the_masked_model(method):
  model, v, apply, batch = _bert()
  units = find_groups(apply, v, batch)
  groups = Units((*_heads(units), *units.select("intermediate")), {})
  masks = us.select(v, groups, us.scores("magnitude", v, groups), 0.5)
  v = rc.reconstruct(apply, v, masks, units, [batch], method)
  small_model, small = compact_model(model, v, masks, *batch)
  assert small_model.layer_heads == (1,) and small_model.layer_ffn == (8,)
  assert small["params"]["layer0"]["attention"]["out"]["kernel"].shape == (
    1,
    4,
    8,
  )
  masked = apply(apply_masks(v, unit_masks(v, masks, units)), batch)
  compacted = small_model.apply(small, *batch, method="embed")
  np.testing.assert_allclose(compacted, masked, atol=1e-5)
