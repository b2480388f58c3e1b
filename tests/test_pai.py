"""Prune-at-init scores (SNIP, GraSP, SynFlow) against numpy and finite
differences on a two-layer MLP; masks with exact counts; training under them
with the fixed pruner."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune.algorithms import pai
from jaxprune.algorithms.lottery import shuffle
from jaxprune.core import selection

IN, HID, OUT = 6, 5, 3
KERNELS = ("fc1", "fc2")
N = IN * HID + HID * OUT


def mlp_params(key):
  k = jax.random.split(key, 4)
  return {
    "fc1": {
      "kernel": jax.random.normal(k[0], (IN, HID)),
      "bias": 0.1 * jax.random.normal(k[1], (HID,)),
    },
    "fc2": {
      "kernel": jax.random.normal(k[2], (HID, OUT)),
      "bias": 0.1 * jax.random.normal(k[3], (OUT,)),
    },
  }


def tanh_mlp(params, x):
  h = jnp.tanh(x @ params["fc1"]["kernel"] + params["fc1"]["bias"])
  return h @ params["fc2"]["kernel"] + params["fc2"]["bias"]


def relu_mlp(params, x):
  h = jax.nn.relu(x @ params["fc1"]["kernel"] + params["fc1"]["bias"])
  return h @ params["fc2"]["kernel"] + params["fc2"]["bias"]


def batches(count=3, size=8):
  out = []
  for i in range(count):
    k1, k2 = jax.random.split(jax.random.key(100 + i))
    out.append(
      (jax.random.normal(k1, (size, IN)), jax.random.randint(k2, (size,), 0, 3))
    )
  return out


def to_np(params):
  return {
    k: {n: np.asarray(v, np.float64) for n, v in layer.items()}
    for k, layer in params.items()
  }


def np_grads(p, x, y, temperature=1.0):
  """Backprop of mean cross-entropy(tanh MLP logits / T), float64."""
  x, y = np.asarray(x, np.float64), np.asarray(y)
  h = np.tanh(x @ p["fc1"]["kernel"] + p["fc1"]["bias"])
  logits = (h @ p["fc2"]["kernel"] + p["fc2"]["bias"]) / temperature
  e = np.exp(logits - logits.max(1, keepdims=True))
  prob = e / e.sum(1, keepdims=True)
  d = (prob - np.eye(OUT)[y]) / len(y) / temperature
  dz = (d @ p["fc2"]["kernel"].T) * (1 - h**2)
  return {
    "fc1": {"kernel": x.T @ dz, "bias": dz.sum(0)},
    "fc2": {"kernel": h.T @ d, "bias": d.sum(0)},
  }


def summed(p, data, temperature=1.0):
  grads = [np_grads(p, x, y, temperature) for x, y in data]
  return {
    k: {n: sum(g[k][n] for g in grads) for n in ("kernel", "bias")}
    for k in KERNELS
  }


def top(scores, k):
  """numpy top-k over a flat array: ties to the lower index."""
  order = np.lexsort((np.arange(scores.size), -scores))
  keep = np.zeros(scores.size, bool)
  keep[order[:k]] = True
  return keep


def flat_kernels(tree):
  return np.concatenate(
    [np.asarray(tree[k]["kernel"]).ravel() for k in KERNELS]
  )


def test_snip_matches_numpy():
  params, data = mlp_params(jax.random.key(0)), batches()
  got = jax.jit(lambda p, b: pai.snip(p, tanh_mlp, b))(params, data)
  p = to_np(params)
  g = summed(p, data)
  raw = {k: np.abs(p[k]["kernel"] * g[k]["kernel"]) for k in KERNELS}
  total = sum(r.sum() for r in raw.values())
  for k in KERNELS:
    np.testing.assert_allclose(got[k]["kernel"], raw[k] / total, rtol=1e-4)
    assert got[k]["bias"] is None
  masks = pai.prune_at_init(params, 0.6, tanh_mlp, data, method="snip")
  k = N - round(0.6 * N)
  expect = top(np.concatenate([raw[x].ravel() for x in KERNELS]), k)
  np.testing.assert_array_equal(flat_kernels(masks), expect)


def test_grasp_matches_finite_differences_and_drops_lowest():
  params, data = mlp_params(jax.random.key(1)), batches()
  got = jax.jit(lambda p, b: pai.grasp(p, tanh_mlp, b))(params, data)
  p = to_np(params)
  g = summed(p, data, temperature=200.0)  # g on kernels only
  eps = 1e-3 / max(np.abs(g[k]["kernel"]).max() for k in KERNELS)

  def moved(sign):
    q = {k: dict(layer) for k, layer in p.items()}
    for k in KERNELS:
      q[k]["kernel"] = p[k]["kernel"] + sign * eps * g[k]["kernel"]
    return summed(q, data, temperature=200.0)

  plus, minus = moved(1.0), moved(-1.0)
  score = {}
  for k in KERNELS:
    hg = (plus[k]["kernel"] - minus[k]["kernel"]) / (2 * eps)
    score[k] = p[k]["kernel"] * hg
  scale = max(np.abs(s).max() for s in score.values())
  for k in KERNELS:
    np.testing.assert_allclose(got[k]["kernel"], score[k], atol=1e-4 * scale)
    assert got[k]["bias"] is None
  # Signed scores: the lowest w * Hg go (GraSP removes the largest -w * Hg).
  flat = np.concatenate([score[k].ravel() for k in KERNELS])
  assert flat.min() < 0 < flat.max()
  masks = pai.prune_at_init(params, 0.5, tanh_mlp, data, method="grasp")
  kept = flat_kernels(masks)
  assert kept.sum() == N - round(0.5 * N)
  assert flat[kept].min() > flat[~kept].max()


def np_synflow(p, masks):
  """Closed form for the ReLU MLP: with |params| and a ones input every
  unit is active, so R = (1 A1 + |b1|) . rowsum(A2) + sum |b2|."""
  a1 = np.abs(p["fc1"]["kernel"]) * masks["fc1"]
  a2 = np.abs(p["fc2"]["kernel"]) * masks["fc2"]
  h = a1.sum(0) + np.abs(p["fc1"]["bias"])
  d1 = np.broadcast_to(a2.sum(1), a1.shape)
  d2 = np.broadcast_to(h[:, None], a2.shape)
  return {"fc1": np.abs(d1 * a1), "fc2": np.abs(d2 * a2)}


def test_synflow_matches_closed_form_and_iterates_exponentially():
  params, data = mlp_params(jax.random.key(2)), batches(count=1)
  p = to_np(params)
  dense = {k: np.ones_like(p[k]["kernel"], bool) for k in KERNELS}
  got = pai.synflow(params, relu_mlp, data)
  want = np_synflow(p, dense)
  for k in KERNELS:
    np.testing.assert_allclose(got[k]["kernel"], want[k], rtol=1e-5)
  targets = pai.exponential_sparsities(0.9, 4)
  np.testing.assert_allclose(
    targets, [1 - 0.1 ** ((k + 1) / 4) for k in range(4)], rtol=1e-12
  )
  assert targets[-1] == 0.9
  # numpy reference of the iterative prune: rescore the masked params,
  # pruned entries ranked last, global top-k at each round's target.
  masks = dense
  for s in targets:
    k = int(selection.kept_count(N, s))
    sc = np_synflow(p, masks)
    flat = np.concatenate(
      [np.where(masks[x], sc[x], -np.inf).ravel() for x in KERNELS]
    )
    keep = top(flat, k)
    masks = {"fc1": keep[: IN * HID].reshape(IN, HID)}
    masks["fc2"] = keep[IN * HID :].reshape(HID, OUT)
  got = pai.prune_at_init(
    params, 0.9, relu_mlp, data, method="synflow", iterations=4
  )
  np.testing.assert_array_equal(
    flat_kernels(got), np.concatenate([masks[k].ravel() for k in KERNELS])
  )
  assert got["fc1"]["bias"] is None
  # iterating matters: one round ranks differently here
  once = pai.prune_at_init(
    params, 0.9, relu_mlp, data, method="synflow", iterations=1
  )
  assert flat_kernels(once).sum() == int(selection.kept_count(N, 0.9))
  assert not np.array_equal(flat_kernels(once), flat_kernels(got))


def test_distributions_exact_counts_and_shuffle_control():
  params, data = mlp_params(jax.random.key(3)), batches()
  uniform = pai.prune_at_init(
    params, 0.7, tanh_mlp, data, method="snip", distribution="uniform"
  )
  for k in KERNELS:
    size = uniform[k]["kernel"].size
    assert int(uniform[k]["kernel"].sum()) == int(
      selection.kept_count(size, 0.7)
    )
  # GraSP at 90% empties fc2 here (layer collapse); min_fraction guards it.
  run = lambda **kw: pai.prune_at_init(
    params, 0.9, tanh_mlp, data, method="grasp", **kw
  )
  assert int(run()["fc2"]["kernel"].sum()) == 0
  guarded = run(min_fraction=0.05)  # int(0.05 * 45) = 2 per leaf
  assert int(guarded["fc2"]["kernel"].sum()) == 2
  assert flat_kernels(guarded).sum() == int(selection.kept_count(N, 0.9))
  shuffled = shuffle(uniform, jax.random.key(9))
  for k in KERNELS:
    assert shuffled[k]["bias"] is None
    assert shuffled[k]["kernel"].sum() == uniform[k]["kernel"].sum()
  assert not np.array_equal(flat_kernels(shuffled), flat_kernels(uniform))


def test_training_under_pai_masks_with_fixed_pruner():
  params, data = mlp_params(jax.random.key(4)), batches()
  masks = pai.prune_at_init(params, 0.8, tanh_mlp, data, method="grasp")
  tx = jaxprune.wrap(optax.adam(1e-2), jaxprune.algorithms.fixed())
  params = jaxprune.apply_masks(params, masks)
  state = jaxprune.set_masks(tx.init(params), masks)

  @jax.jit
  def step(params, state, batch):
    x, y = batch
    loss = lambda p: pai.cross_entropy(tanh_mlp(p, x), y)
    grads = jax.grad(loss)(jaxprune.forward(params, state))
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  before = flat_kernels(params)
  for batch in data * 2:
    params, state = step(params, state, batch)
  kept = flat_kernels(masks)
  after = flat_kernels(params)
  assert (after[~kept] == 0).all() and (after[kept] != before[kept]).any()
  np.testing.assert_array_equal(flat_kernels(jaxprune.masks_of(state)), kept)
  assert step._cache_size() == 1


def test_bad_inputs_raise_clear_errors():
  params, data = mlp_params(jax.random.key(5)), batches(count=1)
  with pytest.raises(ValueError, match="method='snipp' is unknown.*synflow"):
    pai.prune_at_init(params, 0.5, tanh_mlp, data, method="snipp")
  with pytest.raises(ValueError, match=r"sparsity=1.5.*\[0, 1\]"):
    pai.prune_at_init(params, 1.5, tanh_mlp, data)
  with pytest.raises(ValueError, match="iterations=0: expected an integer"):
    pai.prune_at_init(params, 0.5, tanh_mlp, data, iterations=0)
  with pytest.raises(ValueError, match="distribution='glob' is unknown"):
    pai.prune_at_init(params, 0.5, tanh_mlp, data, distribution="glob")
  bad = jax.tree.map(lambda x: x, params)
  bad["fc2"]["kernel"] = bad["fc2"]["kernel"].at[0, 0].set(jnp.nan)
  with pytest.raises(ValueError, match="scores of 'fc1/kernel' contain NaN"):
    pai.prune_at_init(bad, 0.5, tanh_mlp, data)
