"""Post-training pruning of whole models: calibration, blocks, the driver."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxprune
from jaxprune import posttrain
from jaxprune.models import LeNet300


class Block(nn.Module):
  """Attention with 3-D DenseGeneral kernels, then an MLP, both residual."""

  width: int = 8
  heads: int = 2

  @nn.compact
  def __call__(self, x):
    dh = self.width // self.heads
    q, k, v = (
      nn.DenseGeneral((self.heads, dh), name=n)(x) for n in ("q", "k", "v")
    )
    att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / dh**0.5)
    y = jnp.einsum("bhqk,bkhd->bqhd", att, v)
    x = x + nn.DenseGeneral(self.width, axis=(-2, -1), name="out")(y)
    h = nn.relu(nn.Dense(2 * self.width, name="up")(x))
    return x + nn.Dense(self.width, name="down")(h)


class Tiny(nn.Module):
  @nn.compact
  def __call__(self, tokens):
    x = nn.Embed(11, 8, name="embed")(tokens)
    x = Block(name="block_0")(x)
    x = Block(name="block_1")(x)
    return nn.Dense(11, name="head")(x)


def _tiny():
  tokens = jax.random.randint(jax.random.key(0), (4, 6, 5), 0, 11)
  model = Tiny()
  return model, model.init(jax.random.key(1), tokens[0]), list(tokens)


def _mlp(dims=(12, 10, 8, 3), seed=0):
  rng = np.random.default_rng(seed)
  params = {
    f"fc{i}": {
      "kernel": rng.normal(size=(a, b)).astype(np.float32) / np.sqrt(a),
      "bias": rng.normal(size=b).astype(np.float32) * 0.1,
    }
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True))
  }
  x = rng.normal(size=(3, 40, dims[0])).astype(np.float32)
  return {"params": params}, list(x)


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(10, name="fc0")(x))
    x = nn.relu(nn.Dense(8, name="fc1")(x))
    return nn.Dense(3, name="fc2")(x)


def _numpy_wanda(w, x, sparsity):
  score = np.abs(w) * np.linalg.norm(x.astype(np.float64), axis=0)[:, None]
  keep = w.shape[0] - round(sparsity * w.shape[0])
  mask = np.zeros(w.shape, bool)
  best = np.argsort(-score, axis=0, kind="stable")[:keep]
  np.put_along_axis(mask, best, True, axis=0)
  return mask


def _relu(x):
  return np.maximum(x, 0)


@pytest.mark.parametrize("sequential", [True, False])
def test_sequential_inputs_come_from_pruned_blocks(sequential):
  params, batches = _mlp()
  x = np.concatenate(batches)
  p = params["params"]
  result = posttrain.prune(
    MLP(), params, batches, method="wanda", sparsity=0.8, sequential=sequential
  )
  masks = result.masks["params"]
  m0 = _numpy_wanda(p["fc0"]["kernel"], x, 0.8)
  np.testing.assert_array_equal(masks["fc0"]["kernel"], m0)
  w0 = p["fc0"]["kernel"] * (m0 if sequential else 1)
  h = _relu(x @ w0 + p["fc0"]["bias"])
  m1 = _numpy_wanda(p["fc1"]["kernel"], h, 0.8)
  np.testing.assert_array_equal(masks["fc1"]["kernel"], m1)
  dense_h = _relu(x @ p["fc0"]["kernel"] + p["fc0"]["bias"])
  assert (m1 != _numpy_wanda(p["fc1"]["kernel"], dense_h, 0.8)).any() == (
    sequential
  )
  # The head (called last) is left dense but masked all True.
  assert masks["fc2"]["kernel"].all() and masks["fc0"]["bias"] is None
  assert list(result.report) == ["params/fc0/kernel", "params/fc1/kernel"]
  # The report's error, from the layer's own inputs.
  r = result.report["params/fc1/kernel"]
  w1, new1 = p["fc1"]["kernel"], result.params["params"]["fc1"]["kernel"]
  expected = np.linalg.norm(h @ (w1 - new1)) / np.linalg.norm(h @ w1)
  assert abs(r.rel_error - expected) < 1e-4
  assert r.kept == int(m1.sum()) and r.size == 80 and r.module == "Dense"


def test_transformer_blocks_and_layers():
  model, params, batches = _tiny()
  layers = posttrain.layers(model, params, batches[0])
  names = [x.path.split("/", 2)[2] for x in layers[:6]]
  assert names == ["q/kernel", "k/kernel", "v/kernel", "out/kernel"] + [
    "up/kernel",
    "down/kernel",
  ]
  assert [x.n_in for x in layers[:6]] == [1, 1, 1, 2, 1, 1]
  blocks = posttrain.blocks_of(layers)
  assert [len(b) for b in blocks] == [6, 6, 1]
  result = posttrain.prune(model, params, batches, nm=(2, 4))
  assert len(result.report) == 12  # not the head, not the embedding
  for path, r in result.report.items():
    assert r.kept * 2 == r.size, path
    assert 0 < r.rel_error < 1, path
  out = result.params["params"]["block_1"]["out"]["kernel"]  # (heads, dh, 8)
  groups = (np.asarray(out).reshape(8, 8) != 0).reshape(2, 4, 8)
  assert np.all(groups.sum(1) <= 2)
  assert result.masks["params"]["embed"]["embedding"] is None
  # SparseGPT's reconstruction beats the mask alone on the whole model.
  logits = model.apply(params, batches[0])

  def error(p):
    return float(jnp.linalg.norm(model.apply(p, batches[0]) - logits))

  masked = jaxprune.apply_masks(params, result.masks)
  assert error(result.params) < error(masked)


def test_masks_fine_tune_through_fixed():
  params, batches = _mlp()
  result = posttrain.prune(MLP(), params, batches, sparsity=0.5)
  tx = jaxprune.wrap(optax.adam(1e-2), jaxprune.algorithms.fixed())
  state = jaxprune.set_masks(tx.init(result.params), result.masks)
  x = jnp.asarray(batches[0])

  @jax.jit
  def step(p, state):
    grads = jax.grad(lambda p: jnp.mean(MLP().apply(p, x) ** 2))(p)
    updates, state = tx.update(grads, state, p)
    return optax.apply_updates(p, updates), state

  p = result.params
  for _ in range(3):
    p, state = step(p, state)
  kernel = np.asarray(p["params"]["fc0"]["kernel"])
  mask = np.asarray(result.masks["params"]["fc0"]["kernel"])
  assert np.all(kernel[~mask] == 0) and mask.sum() == 60


def test_params_not_modified():
  params, batches = _mlp()
  before = jax.tree.map(np.copy, params)
  for method in posttrain.METHODS:
    posttrain.prune(MLP(), params, batches, method=method, sparsity=0.5)
  jax.tree.map(np.testing.assert_array_equal, params, before)


def test_lenet300_and_apply_function():
  model = LeNet300(num_classes=3)
  x = jax.random.normal(jax.random.key(0), (16, 6, 6, 1))
  params = model.init(jax.random.key(1), x)
  result = posttrain.prune(
    lambda p, b: model.apply(p, b, train=False),
    params,
    [x],
    method="magnitude",
    sparsity=0.7,
    prune_head=True,
  )
  assert list(result.report) == [f"params/fc{i}/kernel" for i in (1, 2, 3)]
  for r in result.report.values():
    assert r.kept == r.size - round(0.7 * r.size)


class ConvNet(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(4, (3, 3), padding="SAME", name="c0")(x))
    x = nn.relu(nn.Conv(6, (3, 3), strides=2, padding="VALID", name="c1")(x))
    return nn.Dense(2, name="head")(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize(
  "kw",
  [
    dict(strides=1, padding="SAME"),
    dict(strides=2, padding="VALID"),
    dict(strides=1, padding=((1, 0), (2, 1)), kernel_dilation=2),
  ],
)
def test_conv_patches_equal_the_convolution(kw):
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
  conv = nn.Conv(5, (3, 2), use_bias=False, **kw)
  params = conv.init(jax.random.key(1), x)
  kernel = params["params"]["kernel"]
  out = conv.apply(params, x)
  patches = posttrain.conv_patches(
    x,
    (3, 2),
    kw["strides"],
    kw["padding"],
    kernel_dilation=kw.get("kernel_dilation", 1),
  )
  np.testing.assert_allclose(
    patches @ kernel.reshape(-1, 5), out.reshape(-1, 5), atol=1e-5
  )
  stats = posttrain.calibrate(conv, params, [x], ["params/kernel"])
  np.testing.assert_allclose(
    stats["params/kernel"].gram, patches.T @ patches, rtol=1e-5, atol=1e-4
  )
  assert float(stats["params/kernel"].count) == patches.shape[0]


def test_conv_net_prunes_like_its_matrix():
  model = ConvNet()
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 2))
  params = model.init(jax.random.key(1), x)
  result = posttrain.prune(model, params, [x], method="sparsegpt", nm=(1, 2))
  k0 = params["params"]["c0"]["kernel"]
  patches = posttrain.conv_patches(x, (3, 3), 1, "SAME")
  stats = posttrain.Stats(patches.T @ patches, jnp.float32(patches.shape[0]))
  expected, _ = posttrain.sparsegpt(
    k0.reshape(18, 4), stats, nm=(1, 2), block_size=128
  )
  np.testing.assert_allclose(
    result.params["params"]["c0"]["kernel"].reshape(18, 4),
    expected,
    atol=1e-4,
  )
  assert result.report["params/c1/kernel"].kept == 3 * 3 * 4 * 6 // 2


def test_nnx_model():
  model = nnx.Sequential(
    nnx.Linear(12, 10, rngs=nnx.Rngs(0)),
    nnx.relu,
    nnx.Linear(10, 8, rngs=nnx.Rngs(1)),
    nnx.Linear(8, 3, rngs=nnx.Rngs(2)),
  )
  x = np.random.default_rng(0).normal(size=(40, 12)).astype(np.float32)
  result = posttrain.prune(model, None, [x], method="wanda", sparsity=0.5)
  assert list(result.report) == [
    "layers/0/kernel/value",
    "layers/2/kernel/value",
  ]
  w0 = np.asarray(model.layers[0].kernel[...])
  mask0 = result.masks["layers"][0]["kernel"][...]
  np.testing.assert_array_equal(mask0, _numpy_wanda(w0, x, 0.5))
  h = _relu(x @ (w0 * mask0) + np.asarray(model.layers[0].bias[...]))
  w2 = np.asarray(model.layers[2].kernel[...])
  np.testing.assert_array_equal(
    result.masks["layers"][2]["kernel"][...], _numpy_wanda(w2, h, 0.5)
  )
  assert nnx.Linear.__call__.__name__ == "__call__"  # hook removed


def test_create_knows_the_methods():
  method = jaxprune.create(
    {"algorithm": "posttrain", "method": "sparsegpt", "sparsity": 0.5}
  )
  params, batches = _mlp()
  result = method(MLP(), params, batches)
  assert result.report["params/fc0/kernel"].kept == 60
  with pytest.raises(ValueError, match="method='obs' is unknown"):
    jaxprune.create({"algorithm": "posttrain", "method": "obs", "nm": (2, 4)})


def test_batch_that_does_not_fit():
  params, batches = _mlp()
  with pytest.raises(
    ValueError, match=r"batch of shape \(40, 5\) does not fit"
  ):
    posttrain.prune(MLP(), params, [np.ones((40, 5))], sparsity=0.5)
  with pytest.raises(ValueError, match=r"batch 1 of shape \(40, 7\)"):
    posttrain.prune(MLP(), params, [batches[0], np.ones((40, 7))], sparsity=0.5)


@pytest.mark.parametrize("sparsity", [1.0, -0.2])
def test_sparsity_outside_range(sparsity):
  params, batches = _mlp()
  with pytest.raises(ValueError, match=r"sparsity=.* expected .*\[0, 1\)"):
    posttrain.prune(MLP(), params, batches, sparsity=sparsity)


def test_m_not_dividing_a_layer():
  params, batches = _mlp()
  with pytest.raises(
    ValueError, match="m=4 does not divide .* 10 of layer 'params/fc1/kernel'"
  ):
    posttrain.prune(MLP(), params, batches, nm=(2, 4))


class NarrowHead(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(8, name="fc0")(x))
    x = nn.relu(nn.Dense(6, name="fc1")(x))
    return nn.Dense(3, name="fc2")(x)


def test_m_need_not_divide_the_dense_head():
  # The head reads 6 inputs, no multiple of 4; it stays dense, so N:M
  # prunes the layers before it (2 of every 4 inputs of each output).
  params, batches = _mlp(dims=(8, 8, 6, 3))
  result = posttrain.prune(NarrowHead(), params, batches, nm=(2, 4))
  kernels = result.params["params"]
  np.testing.assert_array_equal(
    kernels["fc2"]["kernel"], params["params"]["fc2"]["kernel"]
  )
  for name in ("fc0", "fc1"):
    kept = np.asarray(result.masks["params"][name]["kernel"])
    groups = kept.reshape(2, 4, -1).sum(axis=1)
    np.testing.assert_array_equal(groups, np.full_like(groups, 2))
  with pytest.raises(ValueError, match="6 of layer 'params/fc2/kernel'"):
    posttrain.prune(NarrowHead(), params, batches, nm=(2, 4), prune_head=True)


class Unused(nn.Module):
  @nn.compact
  def __call__(self, x):
    proj = self.param("proj", nn.initializers.ones, (12, 12))
    return nn.Dense(3, name="fc")(x @ proj)


def test_layer_that_never_ran():
  x = np.ones((4, 12), np.float32)
  params = Unused().init(jax.random.key(0), x)
  with pytest.raises(ValueError, match=r"\['params/proj'\] never ran"):
    posttrain.prune(Unused(), params, [x], sparsity=0.5)
  fine = posttrain.prune(
    Unused(),
    params,
    [x],
    sparsity=0.5,
    policy=jaxprune.Policy(exclude=("proj",)),
    prune_head=True,
  )
  assert list(fine.report) == ["params/fc/kernel"]


def test_failing_cholesky_names_the_layer():
  params, batches = _mlp()
  with pytest.raises(
    ValueError, match=r"layer 'params/fc0/kernel'.*Cholesky.*damping >="
  ):
    posttrain.prune(
      MLP(), params, batches, sparsity=0.5, options={"damping": -2.0}
    )


def test_dense_general_rows_follow_the_kernel():
  # Contracted axes (2, 1), given unsorted: the kernel is (3, 2, 4) and a
  # row is x[b, :, :, t] flattened in that order.
  x = np.random.default_rng(0).normal(size=(4, 3, 2, 5)).astype(np.float32)
  layer = nn.DenseGeneral(4, axis=(2, 1), use_bias=False)
  params = layer.init(jax.random.key(0), x)
  kernel = params["params"]["kernel"]
  assert kernel.shape == (3, 2, 4)
  rows = np.moveaxis(x, 3, 1).reshape(20, 6)
  np.testing.assert_allclose(
    rows @ np.asarray(kernel).reshape(6, 4),
    np.asarray(layer.apply(params, x)).reshape(20, 4),  # (4, 5, features)
    atol=1e-5,
  )
  (found,) = posttrain.layers(layer, params, x)
  assert found.n_in == 2 and found.module == "DenseGeneral"
  stats = posttrain.calibrate(layer, params, [x], [found.path])[found.path]
  np.testing.assert_allclose(stats.gram, rows.T @ rows, rtol=1e-5, atol=1e-4)


def test_calibration_compiles_once_per_model_and_layers():
  # A second `calibrate` of the same model and layers (a sweep over
  # sparsities) reuses the compiled step: the model is traced only once,
  # and the sums are still those of the new params.
  traces = []

  class Counted(nn.Module):
    @nn.compact
    def __call__(self, x):
      traces.append(1)
      return nn.Dense(2)(x)

  model = Counted()
  x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  params = model.init(jax.random.key(0), x)
  traces.clear()
  path = "params/Dense_0/kernel"
  first = posttrain.calibrate(model, params, [x], [path])[path]
  second = posttrain.calibrate(model, params, [2 * x], [path])[path]
  assert len(traces) == 2  # eval_shape once, the jitted step once
  np.testing.assert_allclose(first.gram, [[10.0, 14.0], [14.0, 20.0]])
  np.testing.assert_allclose(second.gram, [[40.0, 56.0], [56.0, 80.0]])


def test_nnx_calibration_compiles_once_per_graph_and_layers():
  # The same for nnx: keyed by the model's graph, its state passed in, so
  # a model of the same structure with other weights and norm statistics
  # reuses the step and is still summed with its own.
  traces = []

  class Counted(nnx.Module):
    def __init__(self, seed):
      self.norm = nnx.BatchNorm(2, use_running_average=True, rngs=nnx.Rngs(0))
      self.dense = nnx.Linear(2, 2, rngs=nnx.Rngs(seed))

    def __call__(self, x):
      traces.append(1)
      return self.dense(self.norm(x))

  x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  path = "dense/kernel/value"
  grams = []
  for seed, mean in ((0, 0.0), (1, 1.0)):
    model = Counted(seed)
    model.norm.mean[...] = jnp.full(2, mean)
    split, params = posttrain.NnxModel.split(model)
    grams.append(posttrain.calibrate(split, params, [x], [path])[path].gram)
  assert len(traces) == 2  # eval_shape once, the jitted step once
  # Running variance 1, epsilon 1e-5: the norm subtracts the running mean.
  scale = 1 / np.sqrt(1 + 1e-5)
  for gram, mean in zip(grams, (0.0, 1.0), strict=True):
    rows = (np.asarray(x) - mean) * scale
    np.testing.assert_allclose(gram, rows.T @ rows, rtol=1e-5)
