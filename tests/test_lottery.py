"""IMP masks, rewinding and controls (jaxprune.algorithms.lottery)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune import data, models
from jaxprune.algorithms import lottery
from jaxprune.train import Trainer

LENET = {"fc1": (784, 300), "fc2": (300, 100), "fc3": (100, 10)}


def _lenet_params(key):
  """LeNet-300-100 shaped params (kernels and biases), normal weights."""
  params = {}
  for i, (name, shape) in enumerate(LENET.items()):
    k = jax.random.fold_in(key, i)
    params[name] = {
      "kernel": jax.random.normal(k, shape),
      "bias": jnp.zeros(shape[1]),
    }
  return params


def _all_kept(params, policy=None):
  pruner = jaxprune.algorithms.fixed(policy=policy or jaxprune.Policy())
  tx = jaxprune.wrap(optax.sgd(0.1), pruner)
  return jaxprune.masks_of(tx.init(params))


def _reference_counts(size, rate, rounds):
  """The documented rule, independently: remove round-half-even of the
  float32 product rate * remaining, every round."""
  counts, remaining = [], size
  for _ in range(rounds):
    removed = int(np.round(np.float32(rate) * np.float32(remaining)))
    remaining -= removed
    counts.append(remaining)
  return counts


def _trained(params, masks, key):
  """Params as if trained under `masks`: perturbed, pruned entries zero."""
  noisy = jax.tree.map(
    lambda p: p + 0.3 * jax.random.normal(key, p.shape), params
  )
  return jaxprune.apply_masks(noisy, masks)


@pytest.mark.parametrize(
  "kwargs",
  [
    {"rates": {"fc3": 0.1}},
    {"policy": jaxprune.Policy(scale={"fc3": 0.5})},
  ],
)
def test_lenet_layerwise_counts_follow_the_rounding_rule(kwargs):
  rounds = 4
  params = _lenet_params(jax.random.key(0))
  masks = _all_kept(params)
  rates = {"fc1": 0.2, "fc2": 0.2, "fc3": 0.1}
  expected = {
    name: _reference_counts(np.prod(LENET[name]), rates[name], rounds)
    for name in LENET
  }
  for r in range(rounds):
    trained = _trained(params, masks, jax.random.key(r))
    new = lottery.next_masks(trained, masks, 0.2, **kwargs)
    for name in LENET:
      old_m = np.asarray(masks[name]["kernel"])
      new_m = np.asarray(new[name]["kernel"])
      assert new[name]["bias"] is None
      assert new_m.sum() == expected[name][r], (name, r)
      assert not (new_m & ~old_m).any(), "a pruned weight came back"
      w = np.abs(np.asarray(trained[name]["kernel"]))
      removed = old_m & ~new_m
      assert w[new_m].min() >= w[removed].max()
    masks = new
  kept = sum(expected[name][-1] for name in LENET)
  paper = (265_200 * 0.8**rounds + 1_000 * 0.9**rounds) / 266_200
  # Each round rounds each leaf's count by at most half a weight.
  assert abs(kept / 266_200 - paper) <= 3 * rounds * 0.5 / 266_200
  assert jaxprune.summary(masks).kept == kept


def test_global_ranks_all_leaves_together_and_ignores_excluded():
  params = _lenet_params(jax.random.key(1))
  policy = jaxprune.Policy(exclude=("fc3",))
  masks = _all_kept(params, policy)
  for r in range(2):
    trained = _trained(params, masks, jax.random.key(r))
    new = lottery.next_masks(
      trained, masks, 0.2, policy=policy, layerwise=False
    )
    assert new["fc3"]["kernel"] is None
    before = sum(int(masks[n]["kernel"].sum()) for n in ("fc1", "fc2"))
    after = sum(int(new[n]["kernel"].sum()) for n in ("fc1", "fc2"))
    assert after == before - int(np.round(np.float32(0.2) * before))
    kept, removed = [], []
    for n in ("fc1", "fc2"):
      w = np.abs(np.asarray(trained[n]["kernel"]))
      old_m, new_m = (
        np.asarray(masks[n]["kernel"]),
        np.asarray(new[n]["kernel"]),
      )
      assert not (new_m & ~old_m).any()
      kept.append(w[new_m])
      removed.append(w[old_m & ~new_m])
    assert np.concatenate(kept).min() >= np.concatenate(removed).max()
    masks = new


def test_refuses_per_leaf_rates_globally_and_masks_off_policy():
  params = _lenet_params(jax.random.key(2))
  masks = _all_kept(params)
  with pytest.raises(ValueError, match="layerwise=True"):
    lottery.next_masks(params, masks, 0.2, layerwise=False, rates={"fc3": 0.1})
  with pytest.raises(ValueError, match="fc3/kernel"):
    lottery.next_masks(
      params, masks, 0.2, policy=jaxprune.Policy(exclude=("fc3",))
    )
  with pytest.raises(ValueError, match="rate"):
    lottery.next_masks(params, masks, 1.5)


def test_already_pruned_zero_weights_stay_pruned_among_ties():
  # Every weight is zero: ranking alone cannot tell pruned from kept.
  params = {"w": jnp.zeros((4, 5))}
  masks = {"w": jnp.arange(20).reshape(4, 5) % 3 == 0}
  new = lottery.next_masks(params, masks, 0.5)
  assert int(new["w"].sum()) == 7 - 4
  assert not bool(jnp.any(new["w"] & ~masks["w"]))


def test_rewind_is_exact_and_the_trainer_starts_there_with_fresh_state():
  dataset = data.load("digits", seed=0)
  trainer = Trainer(
    models.LeNet300(),
    dataset,
    pruner=jaxprune.algorithms.fixed(),
    optimizer=optax.adam,
    learning_rate=1e-3,
    batch_size=32,
    eval_every=20,
  )
  theta_0 = trainer.init_variables(jax.random.key(0))
  result = trainer.fit(trainer.init(theta_0, seed=0), 20)
  masks = lottery.next_masks(
    result.state.params, jaxprune.masks_of(result.state.opt_state), 0.5
  )
  rewound = lottery.rewind(theta_0["params"], masks)
  for name in ("fc1", "fc2", "fc3"):
    w0 = np.asarray(theta_0["params"][name]["kernel"])
    m = np.asarray(masks[name]["kernel"])
    got = np.asarray(rewound[name]["kernel"])
    assert np.array_equal(got, np.where(m, w0, 0.0))
    assert np.array_equal(
      np.asarray(rewound[name]["bias"]), theta_0["params"][name]["bias"]
    )
  state = trainer.init({"params": rewound}, masks, seed=0, step=5)
  for a, b in zip(
    jax.tree.leaves(state.params), jax.tree.leaves(rewound), strict=True
  ):
    assert np.array_equal(a, b)
  assert int(state.step) == 5
  # Fresh optimizer state: Adam's moments zero, its count zero.
  adam = state.opt_state.inner_state.inner_state[0]
  assert int(adam.count) == 0
  for leaf in jax.tree.leaves((adam.mu, adam.nu)):
    assert not np.any(np.asarray(leaf))
  trained_adam = result.state.opt_state.inner_state.inner_state[0]
  assert int(trained_adam.count) == 20
  masks_now = jaxprune.masks_of(state.opt_state)
  assert jax.tree.all(
    jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), masks_now, masks)
  )


def test_shuffle_keeps_each_leaf_count_at_new_positions():
  params = _lenet_params(jax.random.key(3))
  masks = lottery.next_masks(params, _all_kept(params), 0.6, rates={"fc3": 0.3})
  a = lottery.shuffle(masks, jax.random.key(0))
  b = lottery.shuffle(masks, jax.random.key(0))
  c = lottery.shuffle(masks, jax.random.key(1))
  for name in LENET:
    m = np.asarray(masks[name]["kernel"])
    sa = np.asarray(a[name]["kernel"])
    assert a[name]["bias"] is None
    assert sa.sum() == m.sum()
    assert np.array_equal(sa, np.asarray(b[name]["kernel"]))
    assert not np.array_equal(sa, m)
    assert not np.array_equal(sa, np.asarray(c[name]["kernel"]))


def test_random_reinit_keeps_the_mask_with_a_fresh_init():
  theta_0 = _lenet_params(jax.random.key(4))
  masks = lottery.next_masks(theta_0, _all_kept(theta_0), 0.5)
  fresh = lottery.random_reinit(_lenet_params, masks, jax.random.key(5))
  again = lottery.random_reinit(_lenet_params, masks, jax.random.key(5))
  for name in LENET:
    m = np.asarray(masks[name]["kernel"])
    w = np.asarray(fresh[name]["kernel"])
    assert np.array_equal(w != 0, m)
    assert np.array_equal(w, np.asarray(again[name]["kernel"]))
    assert not np.allclose(w[m], np.asarray(theta_0[name]["kernel"])[m])
