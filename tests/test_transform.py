"""jaxprune.wrap around optax optimizers: params and every param-shaped leaf
of the inner state stay exactly zero where pruned; regrowth starts from zero;
one compilation serves every mask update."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxprune
from jaxprune.core.tree import path_str
from jaxprune.pruner import all_kept

IN, HID, OUT = 12, 16, 4


def mlp_params(key):
  k1, k2 = jax.random.split(key)
  return {
    "fc1": {
      "kernel": jax.random.normal(k1, (IN, HID)),
      "bias": jnp.zeros(HID),
    },
    "fc2": {
      "kernel": jax.random.normal(k2, (HID, OUT)),
      "bias": jnp.zeros(OUT),
    },
  }


def apply(params, x):
  h = jnp.tanh(x @ params["fc1"]["kernel"] + params["fc1"]["bias"])
  return h @ params["fc2"]["kernel"] + params["fc2"]["bias"]


def make_step(tx, apply_fn):
  x = jax.random.normal(jax.random.key(7), (32, IN))
  y = jax.random.normal(jax.random.key(8), (32, OUT))

  @jax.jit
  def step(params, state):
    def loss(p):
      return jnp.mean((apply_fn(p, x) - y) ** 2)

    grads = jax.grad(loss)(jaxprune.forward(params, state))
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


KERNELS = {
  "fc1": {"kernel": True, "bias": False},
  "fc2": {"kernel": True, "bias": False},
}
LABELS = {
  "fc1": {"kernel": "k", "bias": "b"},
  "fc2": {"kernel": "k", "bias": "b"},
}

OPTIMIZERS = {
  "sgd_momentum": (optax.sgd(0.05, momentum=0.9), 1),
  "sgd_nesterov": (optax.sgd(0.05, momentum=0.9, nesterov=True), 1),
  "adam": (optax.adam(1e-2), 2),
  "adamw": (optax.adamw(1e-2, weight_decay=0.5), 2),
  "lion": (optax.lion(1e-3, weight_decay=0.5), 1),
  "clip_adamw": (
    optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2, 0.5)),
    2,
  ),
  "inject_adam": (optax.inject_hyperparams(optax.adam)(learning_rate=1e-2), 2),
  # Combinators whose states hold partial copies of the params (MaskedNode
  # where a leaf is left out), and optimizers built on them.
  "masked_adam": (optax.masked(optax.adam(1e-2), KERNELS), 2),
  "multi_transform": (
    optax.multi_transform(
      {"k": optax.adam(1e-2), "b": optax.sgd(0.05, momentum=0.9)}, LABELS
    ),
    2,
  ),
  "chain_of_combinators": (
    optax.chain(
      optax.masked(optax.add_decayed_weights(0.1), KERNELS),
      optax.multi_transform(
        {"k": optax.lion(1e-3), "b": optax.sgd(0.05, momentum=0.9)}, LABELS
      ),
    ),
    1,
  ),
  "multi_steps_adam": (optax.MultiSteps(optax.adam(1e-2), 2), 3),
  "inject_masked": (
    optax.inject_hyperparams(
      lambda learning_rate: optax.masked(optax.adam(learning_rate), KERNELS)
    )(learning_rate=1e-2),
    2,
  ),
  "muon": (optax.contrib.muon(1e-2), 1),
  "schedule_free_adamw": (optax.contrib.schedule_free_adamw(1e-2), 2),
}


def state_leaves_for(inner_state, param_path):
  """Inner-state leaves whose key path ends with the param's path."""
  return [
    leaf
    for path, leaf in jax.tree.leaves_with_path(inner_state)
    if path_str(path).endswith(param_path)
  ]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_entries_stay_zero_for_every_optimizer(name):
  inner, slots = OPTIMIZERS[name]
  pruner = jaxprune.algorithms.gradual_magnitude(
    0.8, begin=0, end=60, frequency=10
  )
  tx = jaxprune.wrap(inner, pruner)
  params = mlp_params(jax.random.key(0))
  state = tx.init(params)
  step = make_step(tx, apply)
  for _ in range(120):
    params, state = step(params, state)
    masks = jaxprune.masks_of(state)
    for path in ("fc1/kernel", "fc2/kernel"):
      m = np.asarray(masks[path.split("/")[0]]["kernel"])
      p = np.asarray(params[path.split("/")[0]]["kernel"])
      assert (p[~m] == 0).all(), f"{name}: params of {path} revived"
      for leaf in state_leaves_for(state.inner_state, path):
        assert (np.asarray(leaf)[~m] == 0).all(), f"{name}: state of {path}"
  for path in ("fc1/kernel", "fc2/kernel"):
    layer = path.split("/")[0]
    m = np.asarray(masks[layer]["kernel"])
    leaves = state_leaves_for(state.inner_state, path)
    assert len(leaves) == slots, f"{name}: expected {slots} slots of {path}"
    for leaf in leaves:
      assert (np.asarray(leaf)[~m] == 0).all(), f"{name}: state of {path}"
    # exact count: 80% of each kernel
    assert int(m.sum()) == m.size - round(0.8 * m.size)
  # training happened on the survivors
  assert np.count_nonzero(np.asarray(params["fc1"]["kernel"])) == int(
    np.asarray(masks["fc1"]["kernel"]).sum()
  )
  assert step._cache_size() == 1


def test_params_masked_on_the_step_the_mask_changes():
  pruner = jaxprune.algorithms.magnitude(0.5, step=3)
  tx = jaxprune.wrap(optax.adamw(1e-2, weight_decay=0.1), pruner)
  params = mlp_params(jax.random.key(1))
  state = tx.init(params)
  step = make_step(tx, apply)
  for t in range(4):
    before = params
    params, state = step(params, state)
    masks = jaxprune.masks_of(state)
    kept = int(jnp.sum(masks["fc1"]["kernel"]))
    if t < 3:
      assert kept == IN * HID
    else:
      assert kept == IN * HID // 2
      # the mask is the top half of |w| *before* this step's update
      w = np.abs(np.asarray(before["fc1"]["kernel"])).ravel()
      thr = np.sort(w)[::-1][IN * HID // 2 - 1]
      np.testing.assert_array_equal(
        np.asarray(masks["fc1"]["kernel"]).ravel(), w >= thr
      )
      m = np.asarray(masks["fc1"]["kernel"])
      assert (np.asarray(params["fc1"]["kernel"])[~m] == 0).all()


@dataclasses.dataclass(frozen=True)
class FlipPruner:
  """Test pruner: at `at`, swaps which half of fc1's kernel is active."""

  at: int = 5

  def init(self, params, key):
    masks = all_kept(params, jaxprune.Policy())
    half = jnp.arange(IN * HID).reshape(IN, HID) % 2 == 0
    masks["fc1"]["kernel"] = half
    return masks, ()

  def is_update_step(self, step):
    return step == self.at

  def update(self, params, grads, masks, aux, step, key):
    masks = dict(masks, fc1=dict(masks["fc1"], kernel=~masks["fc1"]["kernel"]))
    return masks, aux

  def forward(self, params, masks, aux):
    return params


@pytest.mark.parametrize(
  "name",
  ["adam", "sgd_momentum", "multi_transform", "multi_steps_adam", "muon"],
)
def test_regrown_entries_start_from_zero_weight_and_state(name):
  inner, _ = OPTIMIZERS[name]
  tx = jaxprune.wrap(inner, FlipPruner(at=5))
  params = jaxprune.apply_masks(
    mlp_params(jax.random.key(2)), tx.init(mlp_params(jax.random.key(2))).masks
  )
  state = tx.init(params)
  step = make_step(tx, apply)
  for _ in range(5):
    params, state = step(params, state)
  old = np.asarray(jaxprune.masks_of(state)["fc1"]["kernel"])
  slots_before = state_leaves_for(state.inner_state, "fc1/kernel")
  assert any(np.abs(np.asarray(s)[old]).sum() > 0 for s in slots_before)
  params, state = step(params, state)  # step 5: the flip
  new = np.asarray(jaxprune.masks_of(state)["fc1"]["kernel"])
  np.testing.assert_array_equal(new, ~old)
  w = np.asarray(params["fc1"]["kernel"])
  assert (w == 0).all(), "regrown weights start at 0, dropped ones are 0"
  for s in state_leaves_for(state.inner_state, "fc1/kernel"):
    assert (np.asarray(s) == 0).all()
  for _ in range(2):  # then the regrown entries train (MultiSteps: 2 calls)
    params, state = step(params, state)
  w = np.asarray(params["fc1"]["kernel"])
  assert (w[new] != 0).any() and (w[~new] == 0).all()


def test_a_frozen_leaf_that_is_pruned_stays_pruned():
  # fc2 is frozen (set_to_zero under multi_transform) and pruned gradually:
  # its kept entries never move, its pruned ones are zero after every step.
  labels = {"fc1": {"kernel": "k", "bias": "b"}, "fc2": "frozen"}
  inner = optax.multi_transform(
    {
      "k": optax.adam(1e-2),
      "b": optax.sgd(0.05),
      "frozen": optax.set_to_zero(),
    },
    labels,
  )
  pruner = jaxprune.algorithms.gradual_magnitude(
    0.75, begin=0, end=9, frequency=3
  )
  tx = jaxprune.wrap(inner, pruner)
  params = mlp_params(jax.random.key(3))
  frozen = np.asarray(params["fc2"]["kernel"])
  state = tx.init(params)
  step = make_step(tx, apply)
  for _ in range(12):
    params, state = step(params, state)
    m = np.asarray(jaxprune.masks_of(state)["fc2"]["kernel"])
    np.testing.assert_array_equal(
      np.asarray(params["fc2"]["kernel"]), np.where(m, frozen, 0.0)
    )
  assert int(m.sum()) == m.size // 4
  # fc1 trained on its survivors
  assert np.count_nonzero(np.asarray(params["fc1"]["kernel"])) == int(
    np.asarray(jaxprune.masks_of(state)["fc1"]["kernel"]).sum()
  )


def test_a_pruned_entry_never_returns_on_a_monotone_schedule():
  # Step 0 prunes the 0.0 at index 0; sgd(1) then moves index 1 from 0.1 to
  # exactly 0.0. At step 1, ranking |w| = [0, 0, 3, 2] with ties to the
  # lower index would keep index 0 and drop index 1; pruned entries rank
  # last instead, so the masks stay as they are.
  pruner = jaxprune.pruner.ScorePruner(
    score=jaxprune.core.scores.magnitude,
    schedule=jaxprune.core.schedules.constant(0.25, end=1),
  )
  assert pruner.only_prunes
  tx = jaxprune.wrap(optax.sgd(1.0), pruner)
  params = {"w": jnp.array([[0.0, 0.1, 3.0, 2.0]])}
  state = tx.init(params)
  update = jax.jit(tx.update)
  grads = {"w": jnp.array([[0.0, 0.1, 0.0, 0.0]])}
  for _ in range(2):
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(params["w"], [[0.0, 0.0, 3.0, 2.0]])
    np.testing.assert_array_equal(
      jaxprune.masks_of(state)["w"], [[False, True, True, True]]
    )
    grads = {"w": jnp.zeros((1, 4))}


def np_nm_within(w, held, n):
  """numpy reference: in every group of 4 down axis 0, the n largest |w|
  among the entries `held` keeps (lower row first among ties)."""
  keep = np.zeros_like(held)
  for g in range(0, w.shape[0], 4):
    for c in range(w.shape[1]):
      rows = [g + i for i in range(4) if held[g + i, c]]
      rows.sort(key=lambda r: (-abs(w[r, c]), r))
      for r in rows[:n]:
        keep[r, c] = True
  return keep


def test_gradual_nm_prunes_within_the_last_masks():
  pruner = jaxprune.algorithms.gradual_magnitude(
    0.75, begin=0, end=4, frequency=1, structure=jaxprune.NM(4, axis=0)
  )
  assert pruner.only_prunes
  tx = jaxprune.wrap(optax.adam(1e-2), pruner)
  params = mlp_params(jax.random.key(5))
  state = tx.init(params)
  step = make_step(tx, apply)
  held = np.ones((IN, HID), bool)
  seen = []
  for t in range(6):
    before = np.asarray(params["fc1"]["kernel"])
    params, state = step(params, state)
    masks = np.asarray(jaxprune.masks_of(state)["fc1"]["kernel"])
    if t <= 4:
      n = 4 - round(4 * float(pruner.schedule.sparsity(t)))
      np.testing.assert_array_equal(masks, np_nm_within(before, held, n))
      seen.append(n)
    np.testing.assert_array_equal(masks, held & masks)  # nothing returns
    assert (np.asarray(params["fc1"]["kernel"])[~masks] == 0).all()
    held = masks
  assert seen == [4, 2, 1, 1, 1]


def test_which_pruners_only_prune():
  algorithms, schedules = jaxprune.algorithms, jaxprune.core.schedules
  assert algorithms.gradual_magnitude(
    0.9, begin=0, end=10, frequency=2
  ).only_prunes
  assert algorithms.pdp(0.9, begin=0, end=10).only_prunes
  assert not algorithms.magnitude(
    0.5, step=3, structure=jaxprune.Channel()
  ).only_prunes
  densify = jaxprune.pruner.ScorePruner(
    score=jaxprune.core.scores.magnitude,
    schedule=schedules.polynomial(0.2, 0, 10, 1, initial=0.5),
  )
  assert not densify.only_prunes
  for regrows in (algorithms.rigl(0.9, end=10), algorithms.set_(0.9, end=10)):
    assert not getattr(regrows, "only_prunes", False)


def test_one_compilation_over_many_mask_updates():
  pruner = jaxprune.algorithms.gradual_magnitude(
    0.9, begin=0, end=40, frequency=2
  )
  tx = jaxprune.wrap(optax.adam(1e-2), pruner)
  params = mlp_params(jax.random.key(3))
  state = tx.init(params)
  step = make_step(tx, apply)
  seen = []
  for _ in range(45):
    params, state = step(params, state)
    seen.append(int(jnp.sum(jaxprune.masks_of(state)["fc1"]["kernel"])))
  assert len(set(seen)) >= 10  # at least 10 distinct mask updates
  assert step._cache_size() == 1
  assert seen[-1] == IN * HID - round(0.9 * IN * HID)


def _primitives(jaxpr):
  """Names of every primitive in a jaxpr, sub-jaxprs included."""
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      names |= _primitives(sub)
  return names


def test_masks_fixed_at_init_leave_the_update_out_of_the_step():
  params = mlp_params(jax.random.key(4))
  w = np.abs(np.asarray(params["fc1"]["kernel"])).ravel()
  magnitude = jaxprune.algorithms.magnitude(0.5)
  state = jaxprune.wrap(optax.adam(1e-2), magnitude).init(params)
  # The largest half of |w| (no ties in normal draws), by numpy's sort.
  expect = w >= np.sort(w)[w.size // 2]
  kept = np.asarray(jaxprune.masks_of(state)["fc1"]["kernel"]).ravel()
  np.testing.assert_array_equal(kept, expect)
  rand = jaxprune.algorithms.random(0.75, distribution="uniform")
  state = jaxprune.wrap(optax.adam(1e-2), rand, key=jax.random.key(1)).init(
    params
  )
  for k, size in (("fc1", IN * HID), ("fc2", HID * OUT)):
    kept = int(jaxprune.masks_of(state)[k]["kernel"].sum())
    assert kept == size - round(0.75 * size)

  def update_primitives(pruner):
    tx = jaxprune.wrap(optax.adam(1e-2), pruner, key=jax.random.key(1))
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    return _primitives(jax.make_jaxpr(tx.update)(grads, state, params).jaxpr)

  # Selection searches run in while loops inside a cond: a step whose
  # masks never change holds neither; one that prunes at step 1 holds both.
  for pruner in (magnitude, rand, jaxprune.algorithms.fixed()):
    assert not {"cond", "while"} & update_primitives(pruner)
  later = jaxprune.algorithms.magnitude(0.5, step=1)
  assert {"cond", "while"} <= update_primitives(later)


def test_a_donated_state_leaves_the_callers_key_alive():
  key = jax.random.key(3)
  pruner = jaxprune.algorithms.set_(0.5, end=10, frequency=1)
  tx = jaxprune.wrap(optax.sgd(0.1), pruner, key=key)
  params = mlp_params(jax.random.key(0))
  step = jax.jit(tx.update, donate_argnums=(1,))
  grads = jax.tree.map(jnp.ones_like, params)
  _, state = step(grads, tx.init(params), params)
  _, state = step(grads, state, params)
  assert jax.random.uniform(key).shape == ()  # raises if `key` was deleted


def test_list_pytree_and_saliency_under_jit():
  params = [jnp.arange(1.0, 13.0).reshape(3, 4), jnp.ones(4)]
  grads = [jnp.ones((3, 4)) * jnp.array([4.0, 3.0, 2.0, 1.0]), jnp.ones(4)]
  pruner = jaxprune.algorithms.saliency(0.5)
  tx = jaxprune.wrap(optax.sgd(0.0), pruner)
  state = tx.init(params)
  updates, state = jax.jit(tx.update)(grads, state, params)
  masks = jaxprune.masks_of(state)
  assert masks[1] is None
  scores = np.abs(np.asarray(params[0]) * np.asarray(grads[0])).ravel()
  order = np.lexsort((np.arange(12), -scores))
  expect = np.zeros(12, bool)
  expect[order[:6]] = True
  np.testing.assert_array_equal(np.asarray(masks[0]).ravel(), expect)
  new = optax.apply_updates(params, updates)
  np.testing.assert_array_equal(
    np.asarray(new[0]).ravel(), np.where(expect, np.arange(1.0, 13.0), 0)
  )


def test_nnx_state():
  model = nnx.Sequential(
    nnx.Linear(IN, HID, rngs=nnx.Rngs(0)),
    nnx.Linear(HID, OUT, rngs=nnx.Rngs(1)),
  )
  graphdef, params = nnx.split(model, nnx.Param)
  pruned, masks = jaxprune.prune(params, 0.75)
  leaves = {
    path_str(p): m
    for p, m in jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
  }
  kernels = [k for k, m in leaves.items() if m is not None]
  assert len(kernels) == 2 and all("kernel" in k for k in kernels)
  tx = jaxprune.wrap(
    optax.adam(1e-2), jaxprune.algorithms.random(0.75), key=jax.random.key(0)
  )
  state = tx.init(params)
  x = jnp.ones((8, IN))

  @jax.jit
  def step(params, state):
    def loss(p):
      return jnp.mean(nnx.merge(graphdef, p)(x) ** 2)

    g = jax.grad(loss)(jaxprune.forward(params, state))
    u, state = tx.update(g, state, params)
    return optax.apply_updates(params, u), state

  for _ in range(3):
    params, state = step(params, state)
  s = jaxprune.summary(jaxprune.masks_of(state))
  assert s.kept == s.size - round(0.75 * HID * OUT) - round(0.75 * IN * HID)


def test_update_without_params_raises():
  tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.magnitude(0.5))
  params = mlp_params(jax.random.key(0))
  state = tx.init(params)
  with pytest.raises(ValueError, match="needs params"):
    tx.update(params, state)


def test_set_masks_rejects_mismatch():
  tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.fixed())
  params = mlp_params(jax.random.key(0))
  state = tx.init(params)
  masks = jaxprune.masks_of(state)
  bad = dict(masks, fc1=dict(masks["fc1"], kernel=jnp.ones((2, 2), bool)))
  with pytest.raises(ValueError, match="same leaves, shapes"):
    jaxprune.set_masks(state, bad)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Net:
  """A custom pytree node (not a dict) holding parameters."""

  w1: jax.Array
  w2: jax.Array
  b: jax.Array


def test_custom_pytree_node():
  net = Net(
    w1=jax.random.normal(jax.random.key(0), (IN, HID)),
    w2=jax.random.normal(jax.random.key(1), (HID, OUT)),
    b=jnp.zeros(OUT),
  )
  pruned, masks = jaxprune.prune(net, 0.5, distribution="global")
  assert isinstance(masks, Net) and masks.b is None
  total = IN * HID + HID * OUT
  assert int(masks.w1.sum()) + int(masks.w2.sum()) == total // 2
  tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.fixed())
  state = jaxprune.set_masks(tx.init(pruned), masks)
  grads = jax.tree.map(jnp.ones_like, pruned)
  updates, state = jax.jit(tx.update)(grads, state, pruned)
  new = optax.apply_updates(pruned, updates)
  assert (np.asarray(new.w1)[~np.asarray(masks.w1)] == 0).all()
  np.testing.assert_allclose(
    np.asarray(new.w1)[np.asarray(masks.w1)],
    np.asarray(pruned.w1)[np.asarray(masks.w1)] - 0.1,
    rtol=1e-6,
  )


def test_tuple_params_under_a_chain_of_the_same_length():
  # A chain's state is a tuple laid out like tuple params at the top level:
  # the moments inside it must still be found and masked.
  params = (
    jax.random.normal(jax.random.key(0), (4, 6)),
    jax.random.normal(jax.random.key(1), (6, 3)),
  )
  inner = optax.chain(optax.scale_by_adam(), optax.scale(-0.1))
  tx = jaxprune.wrap(inner, jaxprune.algorithms.magnitude(0.5, step=1))
  state = tx.init(params)
  for _ in range(3):
    updates, state = tx.update(params, state, params)
    params = optax.apply_updates(params, updates)
  masks = jaxprune.masks_of(state)
  adam = jaxprune.inner_state(state)[0]
  for i in range(2):
    m = np.asarray(masks[i])
    assert int(m.sum()) == m.size // 2
    assert (np.asarray(params[i])[~m] == 0).all()
    for moment in (adam.mu[i], adam.nu[i]):
      assert (np.asarray(moment)[~m] == 0).all()
      assert (np.asarray(moment)[m] != 0).any()
