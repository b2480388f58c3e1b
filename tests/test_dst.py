"""Drop-and-grow training (GraNet, RigL, SET) against numpy references,
through jaxprune.wrap: exact schedules and counts, regrowth from zero."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune.algorithms import dst
from jaxprune.core import allocation, selection
from jaxprune.core.tree import path_str

IN, HID, OUT = 12, 16, 4
KERNELS = ("fc1", "fc2")
N = IN * HID + HID * OUT


def mlp_params(key):
  k1, k2 = jax.random.split(key)
  return {
    "fc1": {"kernel": jax.random.normal(k1, (IN, HID)), "bias": jnp.zeros(HID)},
    "fc2": {
      "kernel": jax.random.normal(k2, (HID, OUT)),
      "bias": jnp.zeros(OUT),
    },
  }


def apply(params, x):
  h = jnp.tanh(x @ params["fc1"]["kernel"] + params["fc1"]["bias"])
  return h @ params["fc2"]["kernel"] + params["fc2"]["bias"]


def make_step(tx):
  x = jax.random.normal(jax.random.key(7), (32, IN))
  y = jax.random.normal(jax.random.key(8), (32, OUT))

  @jax.jit
  def step(params, state):
    def loss(p):
      return jnp.mean((apply(p, x) - y) ** 2)

    grads = jax.grad(loss)(jaxprune.forward(params, state))
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


def kernels(tree):
  return {k: np.asarray(tree[k]["kernel"]) for k in KERNELS}


def state_leaves_for(inner_state, param_path):
  return [
    np.asarray(leaf)
    for path, leaf in jax.tree.leaves_with_path(inner_state)
    if path_str(path).endswith(param_path)
  ]


def top(scores, k):
  """numpy top-k: the k largest, ties to the lower flat index."""
  flat = np.asarray(scores, np.float64).ravel()
  order = np.lexsort((np.arange(flat.size), -flat))
  keep = np.zeros(flat.size, bool)
  keep[order[:k]] = True
  return keep.reshape(np.shape(scores))


def np_regrow(w, g, m, n_drop):
  n = int(m.sum())
  kept = top(np.where(m, np.abs(w), -1.0), n - n_drop)
  return kept | top(np.where(kept, -1.0, np.abs(g)), n_drop)


def drop_count(pruner, step, n):
  x = np.float32(pruner.drop_rate(step)) * np.float32(n)
  return int(np.ceil(x) if pruner.rounding == "ceil" else np.floor(x))


def test_granet_cubic_schedule_ends_exactly_on_target():
  # fc2 held at a fixed sparsity: at this size global pruning would
  # otherwise empty it (layer collapse) and starve regeneration of gradient.
  policy = jaxprune.Policy(fixed={"fc2": 0.75})
  pruner = dst.granet(
    0.8, begin=0, end=45, frequency=10, total_steps=80, policy=policy
  )
  tx = jaxprune.wrap(optax.sgd(0.05, momentum=0.9), pruner)
  params = mlp_params(jax.random.key(0))
  state = tx.init(params)
  step = make_step(tx)
  history = []
  for _ in range(81):
    old = kernels(jaxprune.masks_of(state))
    params, state = step(params, state)
    new = kernels(jaxprune.masks_of(state))
    w = kernels(params)
    for k in KERNELS:
      assert (w[k][~new[k]] == 0).all()
    history.append((old, new))
  fc2 = HID * OUT // 4
  for t in (0, 10, 20, 30, 40, 45):
    s = 0.8 * (1.0 - (1.0 - t / 45) ** 3)
    total = N - int(np.round(np.float32(s) * np.float32(N)))
    new = history[t][1]
    assert new["fc2"].sum() == fc2
    assert new["fc1"].sum() == min(total - fc2, IN * HID), t
  assert float(pruner.pruning.sparsity(45)) == np.float32(0.8)
  final = N - round(0.8 * N)
  regrown = 0
  for t in range(45, 81):
    old, new = history[t]
    assert sum(m.sum() for m in new.values()) == final
    if t > 45:  # regeneration only: every leaf keeps its count
      for k in KERNELS:
        assert new[k].sum() == old[k].sum()
        regrown += int((new[k] & ~old[k]).sum())
  assert regrown > 0  # regeneration went on after pruning ended
  assert step._cache_size() == 1


def random_problem(key, density=0.5):
  k1, k2, k3 = jax.random.split(key, 3)
  params = mlp_params(k1)
  grads = jax.tree.map(lambda p: jax.random.normal(k2, p.shape), mlp_params(k3))
  masks = {
    k: {
      "kernel": jax.random.uniform(jax.random.fold_in(k3, i), (a, b)) < density,
      "bias": None,
    }
    for i, (k, (a, b)) in enumerate([("fc1", (IN, HID)), ("fc2", (HID, OUT))])
  }
  params = jaxprune.apply_masks(params, masks)
  return params, grads, masks


@pytest.mark.parametrize(
  "name, step",
  [("granet", 20), ("granet", 60), ("rigl", 30)],
)
def test_drop_and_grow_matches_numpy(name, step):
  pruner = {
    "granet": dst.granet(0.8, begin=10, end=40, frequency=10, total_steps=90),
    "rigl": dst.rigl(0.5, end=90, frequency=10),
  }[name]
  params, grads, masks = random_problem(jax.random.key(1))
  assert bool(pruner.is_update_step(step))
  update = jax.jit(pruner.update)
  new, _ = update(params, grads, masks, (), jnp.int32(step), jax.random.key(0))
  w, g, m = kernels(params), kernels(grads), kernels(masks)
  if pruner.pruning is not None and step <= 40:
    # Global pruning first: one ranking of |w| over both kernels, pruned
    # entries last.
    k = int(selection.kept_count(N, pruner.pruning.sparsity(step)))
    k = min(k, sum(int(x.sum()) for x in m.values()))
    scores = np.concatenate(
      [np.where(m[x], np.abs(w[x]), -1.0).ravel() for x in KERNELS]
    )
    keep = top(scores, k)
    m = {"fc1": keep[: IN * HID].reshape(IN, HID)}
    m["fc2"] = keep[IN * HID :].reshape(HID, OUT)
    assert 0 < k < sum(int(x.sum()) for x in kernels(masks).values())
  for x in KERNELS:
    n_drop = drop_count(pruner, step, int(m[x].sum()))
    assert n_drop > 0
    expect = np_regrow(w[x], g[x], m[x], n_drop)
    np.testing.assert_array_equal(np.asarray(new[x]["kernel"]), expect)
    assert new[x]["bias"] is None


def test_drop_count_rounding():
  # GraNet rounds the drop count up, RigL and SET down.
  granet = dst.granet(0.8, begin=0, end=40, frequency=10, total_steps=100)
  rigl = dst.rigl(0.5, end=100, frequency=10, drop_fraction=0.25)
  assert int(granet._drop_count(jnp.float32(0.5), jnp.int32(7))) == 4
  assert int(rigl._drop_count(jnp.float32(0.25), jnp.int32(7))) == 1


def test_drop_rate_cosine_decay():
  rigl = dst.rigl(0.9, end=1000, frequency=100)
  for t in (0, 100, 250, 500, 900, 1000, 5000):
    expect = 0.3 * 0.5 * (1 + np.cos(np.pi * min(t, 1000) / 1000))
    np.testing.assert_allclose(float(rigl.drop_rate(t)), expect, atol=1e-7)
  assert float(rigl.drop_rate(1000)) == 0.0
  granet = dst.granet(0.9, begin=0, end=500, frequency=100, total_steps=2000)
  for t in (0, 700, 1500):
    expect = 0.005 + 0.495 * 0.5 * (1 + np.cos(np.pi * t / 2000))
    np.testing.assert_allclose(float(granet.drop_rate(t)), expect, rtol=1e-6)
  assert float(granet.drop_rate(2000)) == np.float32(0.005)
  assert float(granet.drop_rate(9000)) == np.float32(0.005)


def test_dropped_and_regrown_position_keeps_its_value():
  w = np.arange(1.0, 17.0) * np.where(np.arange(16) % 3, 1.0, -1.0)
  w = w.reshape(4, 4)
  mask = np.zeros((4, 4), bool)
  mask.ravel()[[0, 1, 2, 3, 8, 9, 10, 11]] = True
  g = np.zeros((4, 4))
  g.ravel()[0] = 9.0  # the smallest active |w| has the largest gradient
  g.ravel()[5] = 5.0  # the largest gradient among inactive positions
  g.ravel()[6] = 1.0
  params = {"w": jnp.asarray(np.where(mask, w, 0.0), jnp.float32)}
  pruner = dst.rigl(0.5, end=100, frequency=10, distribution="uniform")
  # drop rate at step 10: floor(0.2927 * 8) = 2 dropped: positions 0 and 1.
  assert drop_count(pruner, 10, 8) == 2
  tx = jaxprune.wrap(optax.sgd(0.1), pruner, key=jax.random.key(0))
  state = jaxprune.set_masks(tx.init(params), {"w": jnp.asarray(mask)})
  state = state.replace(step=jnp.int32(10))
  grads = {"w": jnp.asarray(g, jnp.float32)}
  updates, state = jax.jit(tx.update)(grads, state, params)
  new = np.asarray(jaxprune.masks_of(state)["w"])
  expect = mask.copy()
  expect.ravel()[1] = False  # dropped
  expect.ravel()[5] = True  # regrown
  np.testing.assert_array_equal(new, expect)
  assert (new & ~mask).sum() == 1  # position 0 is not a regrowth
  after = np.asarray(optax.apply_updates(params, updates)["w"]).ravel()
  np.testing.assert_allclose(after[0], w.ravel()[0] - 0.1 * 9.0, rtol=1e-6)
  assert after[1] == 0.0 and after[5] == 0.0


@pytest.mark.parametrize(
  "inner, slots",
  [(optax.adam(1e-2), 2), (optax.sgd(0.05, momentum=0.9), 1)],
  ids=["adam", "sgd_momentum"],
)
def test_rigl_regrowth_starts_from_zero_and_compiles_once(inner, slots):
  pruner = dst.rigl(0.75, end=60, frequency=5)
  tx = jaxprune.wrap(inner, pruner, key=jax.random.key(4))
  params = mlp_params(jax.random.key(5))
  state = tx.init(params)
  # The random start, drawn by init; step 0 makes no update.
  start = kernels(jaxprune.masks_of(state))
  counts = {k: int(m.sum()) for k, m in start.items()}
  step = make_step(tx)
  regrown = 0
  for t in range(70):
    old = kernels(jaxprune.masks_of(state))
    params, state = step(params, state)
    new, w = kernels(jaxprune.masks_of(state)), kernels(params)
    now = {k: int(m.sum()) for k, m in new.items()}
    assert now == counts, t  # constant per-leaf counts
    if t == 0:
      for k in KERNELS:
        np.testing.assert_array_equal(new[k], start[k])
    for k in KERNELS:
      assert (w[k][~new[k]] == 0).all()
      leaves = state_leaves_for(state.inner_state, f"{k}/kernel")
      assert len(leaves) == slots
      fresh = new[k] & ~old[k]
      if t > 0 and fresh.any():
        regrown += int(fresh.sum())
        assert (w[k][fresh] == 0).all(), "regrown weights start at zero"
        for s in leaves:
          assert (s[fresh] == 0).all(), "regrown state starts at zero"
  assert regrown > 0
  erk = allocation.erk([(IN, HID), (HID, OUT)], 0.75)
  for (k, c), s in zip(counts.items(), erk, strict=True):
    size = new[k].size
    assert c == size - int(np.round(np.float32(s) * np.float32(size)))
  assert step._cache_size() == 1


def test_sparse_to_sparse_granet_draws_its_mask_in_init():
  def first_masks(key):
    pruner = dst.granet(
      0.9, begin=0, end=40, frequency=10, total_steps=60, initial_sparsity=0.5
    )
    tx = jaxprune.wrap(optax.sgd(0.1), pruner, key=key)
    params = mlp_params(jax.random.key(0))
    state = tx.init(params)
    start = kernels(jaxprune.masks_of(state))
    # Step 0 (a pruning and regrowth step of the schedule) makes no update:
    # the first update, which masks the params, keeps init's masks.
    params, state = make_step(tx)(params, state)
    masks, w = kernels(jaxprune.masks_of(state)), kernels(params)
    for k in KERNELS:
      np.testing.assert_array_equal(masks[k], start[k])
      assert (w[k][~masks[k]] == 0).all()
    return masks

  a, b = first_masks(jax.random.key(1)), first_masks(jax.random.key(2))
  erk = allocation.erk([(IN, HID), (HID, OUT)], 0.5)
  for k, s in zip(KERNELS, erk, strict=True):
    size = a[k].size
    expect = size - int(np.round(np.float32(s) * np.float32(size)))
    assert a[k].sum() == b[k].sum() == expect
  assert not np.array_equal(a["fc1"], b["fc1"])


def test_set_growth_follows_the_key():
  pruner = dst.set_(0.5, end=100, frequency=10)
  params, _, masks = random_problem(jax.random.key(3))
  update = jax.jit(pruner.update)
  run = lambda key: update(params, None, masks, (), jnp.int32(10), key)[0]
  a, a2, b = (
    run(jax.random.key(1)),
    run(jax.random.key(1)),
    run(jax.random.key(2)),
  )
  for k in KERNELS:
    np.testing.assert_array_equal(a[k]["kernel"], a2[k]["kernel"])
    assert (
      a[k]["kernel"].sum() == b[k]["kernel"].sum() == masks[k]["kernel"].sum()
    )
  assert any(
    not np.array_equal(a[k]["kernel"], b[k]["kernel"]) for k in KERNELS
  )


def test_create_from_config():
  granet = jaxprune.create(
    {
      "algorithm": "granet",
      "final_sparsity": 0.9,
      "begin": 0,
      "end": 100,
      "frequency": 10,
      "total_steps": 200,
      "initial_sparsity": 0.5,
      "policy": {"exclude": ["fc2"]},
    }
  )
  assert granet.name == "granet" and granet.end == 200
  assert granet.policy.exclude == ("fc2",)
  rigl = jaxprune.create({"algorithm": "rigl", "sparsity": 0.8, "end": 50})
  set_ = jaxprune.create(
    {"algorithm": "set", "sparsity": 0.8, "end": 50, "distribution": "uniform"}
  )
  assert (rigl.growth, set_.growth) == ("gradient", "random")
  assert set_.distribution == "uniform"


def test_bad_inputs_raise_clear_errors():
  window = dict(begin=0, end=100, frequency=10, total_steps=200)
  with pytest.raises(ValueError, match=r"final_sparsity=1.5.*\[0, 1\]"):
    dst.granet(1.5, **window)
  with pytest.raises(ValueError, match="final_sparsity=0.3: expected >= "):
    dst.granet(0.3, initial_sparsity=0.5, **window)
  with pytest.raises(ValueError, match="total_steps=50: expected >= end=100"):
    dst.granet(0.9, begin=0, end=100, frequency=10, total_steps=50)
  with pytest.raises(ValueError, match=r"drop_floor=0.6.*drop_fraction=0.5"):
    dst.granet(0.9, drop_floor=0.6, **window)
  with pytest.raises(ValueError, match="frequency=0: expected an integer"):
    dst.rigl(0.9, end=100, frequency=0)
  with pytest.raises(ValueError, match="end=0: expected the last update"):
    dst.set_(0.9, end=0)
  with pytest.raises(ValueError, match=r"drop_fraction=1.2.*\[0, 1\]"):
    dst.rigl(0.9, end=100, drop_fraction=1.2)
  with pytest.raises(ValueError, match="Policy.scale matches"):
    pruner = dst.granet(
      0.9, policy=jaxprune.Policy(scale={"fc2": 0.5}), **window
    )
    jaxprune.wrap(optax.sgd(0.1), pruner).init(mlp_params(jax.random.key(0)))
  params, grads, masks = random_problem(jax.random.key(0))
  with pytest.raises(ValueError, match="grows by the dense gradient"):
    dst.rigl(0.5, end=10).update(params, None, masks, (), 5, None)


def test_non_finite_values_keep_the_masks_and_name_the_leaf():
  params, grads, masks = random_problem(jax.random.key(0))
  pruner = dst.rigl(0.5, end=100, frequency=10)
  grads["fc2"]["kernel"] = grads["fc2"]["kernel"].at[1, 1].set(jnp.inf)
  update = jax.jit(pruner.update)
  new, code = update(params, grads, masks, (), 10, jax.random.key(0))
  for k in KERNELS:
    np.testing.assert_array_equal(new[k]["kernel"], masks[k]["kernel"])
  with pytest.raises(ValueError, match="'fc2/kernel \\(gradient\\)' contain"):
    pruner.check(new, code)
  params["fc1"]["kernel"] = params["fc1"]["kernel"].at[0, 0].set(jnp.nan)
  # Dense-to-sparse GraNet updates at step 0 (RigL's start is drawn by init).
  pruner = dst.granet(0.9, begin=0, end=50, frequency=10, total_steps=100)
  tx = jaxprune.wrap(optax.sgd(0.1), pruner, key=jax.random.key(0))
  state = tx.init(params)
  _, state = jax.jit(tx.update)(grads, state, params)
  assert all(m.all() for m in kernels(jaxprune.masks_of(state)).values())
  with pytest.raises(ValueError, match="scores of 'fc1/kernel' contain NaN"):
    jaxprune.check(state)
