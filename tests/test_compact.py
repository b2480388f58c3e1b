"""Compaction, unit selection, FLOP counts and BCSR export (jaxprune.compact).

Expectations are independent of the code under test: the compacted network
is checked against the original network run on masked variables, counts
and shapes against hand-worked numbers, scores against numpy norms.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import jaxprune
from jaxprune import compact, models

MNIST = (1, 28, 28, 1)
CIFAR = (1, 32, 32, 3)


def _setup(model, shape, batch=4):
  """Variables with non-zero biases, norm shifts and statistics, so that a
  unit left half-removed would show in the outputs."""
  x = jax.random.normal(jax.random.key(1), (batch, *shape[1:]))
  variables = model.init(jax.random.key(0), x[:1])
  leaves, tree = jax.tree.flatten_with_path(variables)
  out = []
  for i, (path, leaf) in enumerate(leaves):
    if leaf.ndim == 1:
      noise = jax.random.normal(jax.random.key(10 + i), leaf.shape)
      is_var = jaxprune.core.tree.path_str(path).endswith("var")
      leaf = 0.5 + jnp.abs(noise) if is_var else 0.1 * noise
    out.append(leaf)
  return jax.tree.unflatten(tree, out), x


CASES = [
  ("lenet300", {}, MNIST),
  ("lenet5", {}, MNIST),
  ("conv2", {}, MNIST),
  ("conv4", {}, MNIST),
  ("conv6", {}, MNIST),
  ("resnet20", {}, CIFAR),
  ("vgg", {"stages": ((8,), (16, 16))}, CIFAR),
  ("vgg", {"stages": ((8,), (16, 16)), "batch_norm": False}, CIFAR),
]


@pytest.mark.parametrize("name,kwargs,shape", CASES)
def test_compacted_model_equals_unit_masked_model(name, kwargs, shape):
  model = models.get(name, **kwargs)
  variables, x = _setup(model, shape)
  units = compact.find_groups(model.apply, variables, x[:1])
  key = jax.random.key(2)
  masks = compact.select_units(variables, units, 0.5, "random", key=key)
  full = compact.unit_masks(variables, masks, units)
  masked_out = model.apply(jaxprune.apply_masks(variables, full), x)
  small_model, small = compact.compact_model(model, variables, masks, x[:1])
  out = small_model.apply(small, x)
  np.testing.assert_allclose(out, masked_out, atol=1e-5, rtol=1e-5)
  # The removal mattered, and every group lost exactly half its units.
  assert not np.allclose(masked_out, model.apply(variables, x), atol=1e-3)
  count = lambda t: sum(a.size for a in jax.tree.leaves(t))
  assert count(small) < count(variables)
  for group in units.groups:
    for m in group.producers:
      leaf = small
      for part in m.path.split("/"):
        leaf = leaf[part]
      # Each unit owns one output index of each kernel computing it.
      kept_here = group.size - round(0.5 * group.size)
      assert kept_here <= leaf.shape[m.axis]


def test_lenet300_channel_masks_compact_to_hand_counted_shapes():
  model = models.LeNet300()
  variables, x = _setup(model, MNIST)
  policy = jaxprune.Policy(exclude=("fc3",))
  _, masks = jaxprune.prune(
    variables, 0.25, structure=jaxprune.Channel(), policy=policy
  )
  small_model, small = compact.compact_model(model, variables, masks, x[:1])
  shapes = jax.tree.map(jnp.shape, small["params"])
  assert shapes["fc1"] == {"kernel": (784, 225), "bias": (225,)}
  assert shapes["fc2"] == {"kernel": (225, 75), "bias": (75,)}
  assert shapes["fc3"] == {"kernel": (75, 10), "bias": (10,)}
  assert small_model.features == (225, 75)
  # Kept units are the columns of largest L2 norm (numpy reference).
  fc1 = np.asarray(variables["params"]["fc1"]["kernel"])
  top = np.sort(np.argsort(-np.linalg.norm(fc1, axis=0))[:225])
  kept = np.asarray(small["params"]["fc1"]["kernel"])
  np.testing.assert_array_equal(kept, fc1[:, top])


def test_resnet20_residual_groups():
  model = models.ResNet20()
  x = jnp.zeros(CIFAR)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  units = compact.find_groups(model.apply, variables, x)
  sizes = sorted(g.size for g in units.groups)
  # Nine conv1 groups (16, 32, 64 three times each) and three stream
  # groups: stage 1's 16 channels, the 16 stage 2 adds around them, the
  # 32 stage 3 adds around stage 2's.
  assert sizes == sorted([16] * 3 + [32] * 3 + [64] * 3 + [16, 16, 32])
  (stream1,) = units.select(r"^params/conv/kernel")
  owned = {(m.path, m.axis): m.indices for m in stream1.members}
  ch = np.arange(16)
  flat = lambda key: [i for (i,) in owned[key]]
  assert flat(("params/conv/kernel", 3)) == list(ch)
  # Option-A shortcuts pad stage 1's channels into the middle of stage 2's
  # (8 below) and those into the middle of stage 3's (16 below).
  for block in (1, 2, 3):
    k = f"params/stage1_block{block}/conv2/kernel"
    assert flat((k, 3)) == list(ch)
    k = f"params/stage2_block{block}/conv2/kernel"
    assert flat((k, 3)) == list(ch + 8)
    k = f"params/stage3_block{block}/conv2/kernel"
    assert flat((k, 3)) == list(ch + 24)
  assert flat(("params/fc/kernel", 0)) == list(ch + 24)
  assert flat(("batch_stats/stage2_block3/bn2/mean", 0)) == list(ch + 8)
  (stream2,) = units.select(r"^params/stage2_block1/conv2/kernel")
  conv2 = {m.path: m.indices for m in stream2.members}
  got = [i for (i,) in conv2["params/stage2_block3/conv2/kernel"]]
  assert got == list(range(8)) + list(range(24, 32))
  assert units.fixed == {("params/fc/kernel", 1): tuple(range(10))}


def test_resnet20_global_selection_compacts_with_uneven_pads():
  model = models.ResNet20()
  variables, x = _setup(model, CIFAR, batch=2)
  units = compact.find_groups(model.apply, variables, x[:1])
  stream2 = units.select(r"^params/stage2_block1/conv2/kernel")[0]
  keep = [np.ones(g.size, bool) for g in units.groups]
  # Remove two of stage 2's own channels below stage 1's, none above.
  keep[units.groups.index(stream2)][:2] = False
  masks = compact.masks_from_keep(variables, units, keep)
  small_model, small = compact.compact_model(model, variables, masks, x[:1])
  assert small_model.pads == ((6, 8), (16, 16))
  # Stage 2's channels 0 and 1 feed stage 3's 16 and 17: both go.
  assert small_model.stream == (16, 30, 62)
  full = compact.unit_masks(variables, masks, units)
  np.testing.assert_allclose(
    small_model.apply(small, x),
    model.apply(jaxprune.apply_masks(variables, full), x),
    atol=1e-5,
    rtol=1e-5,
  )


def _resnet_units():
  model = models.ResNet20()
  x = jnp.zeros(CIFAR)
  variables = model.init(jax.random.key(0), x)
  return variables, compact.find_groups(model.apply, variables, x)


def _channel_mask(variables, path, removed):
  """Masks over `variables` pruning output channels `removed` of `path`."""

  def mask(p, leaf):
    if jaxprune.core.tree.path_str(p) != path:
      return None
    m = np.ones(leaf.shape, bool)
    m[..., removed] = False
    return jnp.asarray(m)

  return jax.tree.map_with_path(mask, variables)


def test_residual_channel_cut_in_one_block_only_is_refused():
  variables, units = _resnet_units()
  masks = _channel_mask(variables, "params/stage1_block2/conv2/kernel", [3])
  with pytest.raises(ValueError, match="residual") as err:
    compact.compact(variables, masks, units)
  assert "params/stage1_block2/conv2/kernel" in str(err.value)
  assert "params/conv/kernel" in str(err.value)


def test_unstructured_mask_is_refused_naming_the_leaf():
  variables, units = _resnet_units()
  masks = _channel_mask(variables, "params/stage1_block1/conv1/kernel", [])
  leaf = np.ones((3, 3, 16, 16), bool)
  leaf[0, 0, 0, 0] = False
  masks["params"]["stage1_block1"]["conv1"]["kernel"] = jnp.asarray(leaf)
  with pytest.raises(ValueError, match="stage1_block1/conv1/kernel.*inside"):
    compact.compact(variables, masks, units)


def test_removing_model_outputs_is_refused():
  variables, units = _resnet_units()
  masks = _channel_mask(variables, "params/fc/kernel", [4])
  with pytest.raises(ValueError, match="params/fc/kernel.*output"):
    compact.compact(variables, masks, units)


def test_removing_every_unit_of_a_group_is_refused():
  variables, units = _resnet_units()
  path = "params/stage3_block2/conv1/kernel"
  masks = _channel_mask(variables, path, list(range(64)))
  with pytest.raises(ValueError, match="all 64 units.*stage3_block2/conv1"):
    compact.compact(variables, masks, units)


def test_masks_that_do_not_match_the_variables_are_refused():
  variables, units = _resnet_units()
  with pytest.raises(ValueError, match="masks do not match"):
    compact.compact(variables, {"params": None}, units)


def test_model_without_compacted_method_is_refused():
  class Plain(nn.Module):
    @nn.compact
    def __call__(self, x):
      return nn.Dense(2)(nn.relu(nn.Dense(3)(x)))

  x = jnp.ones((1, 4))
  variables = Plain().init(jax.random.key(0), x)
  with pytest.raises(TypeError, match="Plain has no compacted"):
    compact.compact_model(Plain(), variables, None, x)


def test_select_units_counts_and_scores():
  model = models.LeNet300()
  variables, x = _setup(model, MNIST)
  units = compact.find_groups(model.apply, variables, x[:1])
  masks = compact.select_units(variables, units, {"fc1": 0.5, "fc2": 0.1})
  fc1 = np.asarray(masks["params"]["fc1"]["kernel"])
  fc2 = np.asarray(masks["params"]["fc2"]["kernel"])
  assert fc1.all(axis=0).sum() == 150 and fc2.all(axis=0).sum() == 90
  assert masks["params"]["fc3"]["kernel"] is None
  # Global: 400 units at 0.3 keeps 280, chosen by one ranking of norms.
  masks = compact.select_units(variables, units, 0.3, distribution="global")
  norms = np.concatenate(
    [
      np.linalg.norm(np.asarray(variables["params"][n]["kernel"]), axis=0)
      for n in ("fc1", "fc2")
    ]
  )
  kept = np.concatenate(
    [
      np.asarray(masks["params"][n]["kernel"]).all(axis=0)
      for n in ("fc1", "fc2")
    ]
  )
  assert kept.sum() == 280
  assert norms[kept].min() > norms[~kept].max()


def test_select_units_takes_precomputed_scores():
  model = models.LeNet300()
  x = jnp.zeros(MNIST)
  variables = model.init(jax.random.key(0), x)
  units = compact.find_groups(model.apply, variables, x)
  # fc1: even units score high, odd low; fc2: descending, so the last
  # 25 of 100 go. A tie between units 0 and 1 of fc1 keeps unit 0.
  fc1 = np.where(np.arange(300) % 2 == 0, 2.0, 1.0)
  fc2 = np.arange(100.0)[::-1]
  masks = compact.select_units(variables, units, 0.5, [fc1, fc2])
  kept = np.asarray(masks["params"]["fc1"]["kernel"]).all(axis=0)
  np.testing.assert_array_equal(kept, np.arange(300) % 2 == 0)
  masks = compact.select_units(variables, units, 0.25, [np.ones(300), fc2])
  kept1 = np.asarray(masks["params"]["fc1"]["kernel"]).all(axis=0)
  kept2 = np.asarray(masks["params"]["fc2"]["kernel"]).all(axis=0)
  np.testing.assert_array_equal(kept1, np.arange(300) < 225)
  np.testing.assert_array_equal(kept2, np.arange(100) < 75)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"sparsity": 1.0}, "expected a fraction"),
    ({"sparsity": {"fc1": 0.5}}, "no pattern matching group 'params/fc2"),
    ({"sparsity": 0.5, "score": "taylor"}, "score='taylor'"),
    ({"sparsity": 0.5, "score": "random"}, "needs key"),
    ({"sparsity": 0.5, "distribution": "erk"}, "distribution='erk'"),
    ({"sparsity": {"f": 0.5}, "distribution": "global"}, "mapping"),
    (
      {"sparsity": 0.5, "score": [jnp.ones(300)]},
      r"shapes \[\(300,\)\]; expected \[\(300,\), \(100,\)\]",
    ),
  ],
)
def test_select_units_bad_input(kwargs, match):
  model = models.LeNet300()
  x = jnp.zeros(MNIST)
  variables = model.init(jax.random.key(0), x)
  units = compact.find_groups(model.apply, variables, x)
  with pytest.raises(ValueError, match=match):
    compact.select_units(variables, units, **kwargs)


def test_flops_of_lenet300_by_hand():
  model = models.LeNet300()
  x = jnp.zeros((2, 28, 28, 1))
  variables = model.init(jax.random.key(0), x)
  pruned, masks = jaxprune.prune(variables, 0.5)
  count = jaxprune.flops(model.apply, pruned, masks, x)
  # Two images: 784*300, 300*100 and 100*10 multiply-adds each.
  assert count.layers == {
    "params/fc1/kernel": (2 * 235_200, 2 * 117_600),
    "params/fc2/kernel": (2 * 30_000, 2 * 15_000),
    "params/fc3/kernel": (2 * 1_000, 2 * 500),
  }
  assert count.dense == 532_400 and count.effective == 266_200
  assert count.ratio == 2.0
  assert jaxprune.flops(model.apply, variables, None, x).effective == 532_400
  wrong = {"params": {"fc1": masks["params"]["fc1"]}}
  with pytest.raises(ValueError, match="masks do not match"):
    jaxprune.flops(model.apply, variables, wrong, x)


def test_flops_of_a_conv_layer_by_hand():
  conv = nn.Conv(4, (3, 3), strides=2, padding="SAME")
  x = jnp.zeros((1, 7, 7, 2))
  variables = conv.init(jax.random.key(0), x)
  mask = np.ones((3, 3, 2, 4), bool)
  mask[:, :, :, 0] = False  # one output channel: 18 weights
  mask[0, 0, 0, 1] = False
  masks = {"params": {"kernel": jnp.asarray(mask), "bias": None}}
  count = jaxprune.flops(conv.apply, variables, masks, x)
  # 4x4 outputs (stride 2, SAME on 7) x 4 channels, 3*3*2 = 18 each.
  ((dense, effective),) = count.layers.values()
  assert dense == 4 * 4 * 4 * 18 == 1152
  assert effective == 4 * 4 * (72 - 19) == 848


def test_compacted_flops_equal_unit_masked_effective_flops():
  model = models.LeNet5()
  variables, x = _setup(model, MNIST, batch=1)
  units = compact.find_groups(model.apply, variables, x)
  masks = compact.select_units(variables, units, 0.5)
  small_model, small = compact.compact_model(model, variables, masks, x)
  full = compact.unit_masks(variables, masks, units)
  masked = jaxprune.flops(model.apply, variables, full, x)
  # conv1 3 of 6 filters: 28*28*3*25; conv2 8 of 16 on 3 inputs:
  # 10*10*8*75; fc1 200 inputs x 60; fc2 60 x 42; fc3 42 x 10.
  by_hand = 58_800 + 60_000 + 12_000 + 2_520 + 420
  assert jaxprune.flops(small_model.apply, small, None, x).dense == by_hand
  assert masked.effective == by_hand


def test_training_flops_follow_rigl_accounting():
  # RigL, Evci et al. 2020: (3 f_S dT + 2 f_S + f_D) / (dT + 1) per step.
  f_s, f_d, dt = 10.0, 100.0, 4
  steps = 3 * (dt + 1)
  updates = [t for t in range(steps) if t % (dt + 1) == dt]
  total = compact.training_flops(
    [f_s] * steps, f_d, update_steps=updates, dense_gradient=True
  )
  assert total == pytest.approx(steps * (3 * f_s * dt + 2 * f_s + f_d) / 5)
  assert compact.training_flops([f_s] * steps, f_d, updates) == 3 * f_s * steps


def test_bcsr_export_equals_dense():
  model = models.LeNet300()
  variables, x = _setup(model, MNIST)
  pruned, masks = jaxprune.prune(
    variables, 0.96, policy=jaxprune.Policy(fixed={"fc3": 0.5})
  )
  kernels = compact.export_bcsr(pruned, masks)
  assert sorted(kernels) == ["params/fc1/kernel", "params/fc2/kernel"]
  run = jax.jit(lambda v, k, x: compact.apply_sparse(model.apply, v, k, x))
  np.testing.assert_allclose(
    run(pruned, kernels, x), model.apply(pruned, x), atol=1e-5, rtol=1e-5
  )
  with pytest.raises(ValueError, match="params/nope/kernel"):
    compact.apply_sparse(
      model.apply,
      pruned,
      {"params/nope/kernel": kernels["params/fc1/kernel"]},
      x,
    )
  with pytest.raises(ValueError, match="min_sparsity=1.5"):
    compact.export_bcsr(pruned, masks, 1.5)


def test_model_width_arguments_refuse_bad_values():
  with pytest.raises(ValueError, match="conv_features"):
    models.Conv4(conv_features=(8, 8)).init(jax.random.key(0), jnp.zeros(MNIST))
  with pytest.raises(ValueError, match="pad=.*must add 16"):
    models.ResNet20(pads=((4, 4), (16, 16))).init(
      jax.random.key(0), jnp.zeros(CIFAR)
    )
