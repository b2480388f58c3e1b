"""Data-pruning scores and selection against independent references."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxprune import data_pruning as dp
from jaxprune.algorithms import fixed
from jaxprune.data import Dataset, Split
from jaxprune.train import Trainer


class _MLP(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.relu(nn.Dense(5, name="fc1")(x.reshape((x.shape[0], -1))))
    return nn.Dense(3, name="fc2")(x)


class _Conv(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(2, (2, 2), name="conv")(x)
    return nn.Dense(3, name="fc")(x.reshape((x.shape[0], -1)))


@pytest.fixture(scope="module")
def tiny():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(11, 2, 2, 1)).astype(np.float32)
  y = rng.integers(0, 3, 11).astype(np.int32)
  model = _MLP()
  params = model.init(jax.random.key(0), x[:1])["params"]
  return model, params, x, y


def _numpy_forward(params, x):
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  pre = x @ p["fc1"]["kernel"] + p["fc1"]["bias"]
  h = np.maximum(pre, 0)
  return x, pre, h, h @ p["fc2"]["kernel"] + p["fc2"]["bias"]


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_el2n_matches_numpy(tiny):
  model, params, x, y = tiny
  apply_fn = lambda p, x: model.apply({"params": p}, x)
  got = dp.el2n(apply_fn, params, x, y, batch_size=4)  # padded last batch
  probs = _softmax(_numpy_forward(params, x)[3])
  want = np.linalg.norm(probs - np.eye(3)[y], axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def _numpy_grand(params, x, y):
  """Per-example gradients by hand-written backpropagation."""
  w2 = np.asarray(params["fc2"]["kernel"], np.float64)
  x, pre, h, logits = _numpy_forward(params, x)
  out = []
  for i in range(len(y)):
    d2 = _softmax(logits[i]) - np.eye(3)[y[i]]
    d1 = (w2 @ d2) * (pre[i] > 0)
    grads = [np.outer(h[i], d2), d2, np.outer(x[i], d1), d1]
    out.append(np.sqrt(sum(np.sum(g**2) for g in grads)))
  return np.array(out)


def test_grand_and_grand_dense_match_hand_backprop(tiny):
  model, params, x, y = tiny
  apply_fn = lambda p, x: model.apply({"params": p}, x)
  want = _numpy_grand(params, x, y)
  np.testing.assert_allclose(
    dp.grand(apply_fn, params, x, y, batch_size=4), want, rtol=1e-5
  )
  np.testing.assert_allclose(
    dp.grand_dense(model, params, x, y, batch_size=4), want, rtol=1e-5
  )


def test_grand_dense_refuses_params_outside_dense_layers(tiny):
  _, _, x, y = tiny
  model = _Conv()
  params = model.init(jax.random.key(0), x[:1])["params"]
  with pytest.raises(ValueError, match="outside Dense layers"):
    dp.grand_dense(model, params, x, y, batch_size=4)


def test_input_norm_and_random_scores(tiny):
  _, _, x, _ = tiny
  want = np.sqrt((np.asarray(x, np.float64) ** 2).reshape(11, -1).sum(1))
  np.testing.assert_allclose(dp.input_norm(x), want, rtol=1e-6)
  a = dp.random_scores(jax.random.key(3), 11)
  assert a.shape == (11,)
  assert np.array_equal(a, dp.random_scores(jax.random.key(3), 11))
  assert not np.array_equal(a, dp.random_scores(jax.random.key(4), 11))


def test_forgetting_counts_a_hand_made_sequence():
  # 5 examples; batches (indices, correct) as a training run would see them.
  sequence = [
    ([0, 1, 2], [1, 1, 0]),
    ([3, 0, 1], [0, 0, 1]),  # 0 forgotten
    ([2, 3, 0], [1, 0, 1]),
    ([1, 2, 0], [0, 0, 0]),  # 1, 2 and 0 forgotten
    ([0, 0, 3], [1, 1, 0]),  # 0 twice in one batch: no event
  ]
  state = dp.forgetting.init(5)
  update = jax.jit(dp.forgetting.update)
  for indices, correct in sequence:
    state = update(state, jnp.array(indices), jnp.array(correct, bool))
  # 0: 1->0, 0->1, 1->0, 0->1: 2 events; 1: 1 event; 2: 1 event; 3 never
  # learned, 4 never seen: both score max(2, 1, 1) + 1 = 3.
  assert state.events.tolist() == [2, 1, 1, 0, 0]
  assert dp.forgetting.scores(state).tolist() == [2, 1, 1, 3, 3]


@pytest.mark.parametrize(
  "n, fraction, count",
  [(10, 0.25, 3), (10, 0.35, 4), (7, 0.5, 4), (1000, 0.1, 100), (3, 0.01, 1)],
)
def test_keep_count_is_exact(n, fraction, count):
  assert dp.keep_count(n, fraction) == count
  scores = np.random.default_rng(n).normal(size=n)
  for method in dp.METHODS:
    kept = dp.select(scores, fraction, method=method, key=jax.random.key(0))
    assert len(kept) == count == len(np.unique(kept)), method
    assert np.all(np.diff(kept) > 0)


def test_ties_go_to_the_lower_index():
  scores = [1.0, 3.0, 3.0, 1.0, 2.0, 3.0, 1.0, 0.0]
  assert dp.select(scores, 0.25, method="hardest").tolist() == [1, 2]
  assert dp.select(scores, 0.5, method="hardest").tolist() == [1, 2, 4, 5]
  assert dp.select(scores, 0.25, method="easiest").tolist() == [0, 7]
  # Hardest order: 1, 2, 5, 4, 0, 3, 6, 7; skip 2, keep the next 3.
  kept = dp.select(scores, 0.375, method="offset", offset=0.25)
  assert kept.tolist() == [0, 4, 5]
  # An offset past the easy end slides the band back: the 4 easiest.
  kept = dp.select(scores, 0.5, method="offset", offset=0.75)
  assert kept.tolist() == [0, 3, 6, 7]


def test_ccs_spreads_the_budget_over_strata():
  # Two strata (scores 0..1 and 9..10): 2 and 10 examples. Budget 6: the
  # small stratum takes min(2, 6 // 2) = 2, the large one the other 4.
  scores = np.array([0.0, 1.0] + [9.0 + i / 10 for i in range(10)])
  for seed in range(3):
    kept = dp.select(
      scores, 0.5, method="ccs", strata=2, key=jax.random.key(seed)
    )
    assert kept[:2].tolist() == [0, 1] and len(kept) == 6
  # Offset: the 3 hardest (indices 9-11) are skipped first.
  kept = dp.select(
    scores, 0.5, method="ccs", strata=2, offset=0.25, key=jax.random.key(0)
  )
  assert len(kept) == 6 and kept.max() <= 8


def test_per_class_selection_keeps_each_class_its_share():
  labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
  scores = np.arange(10.0)
  # Keep 5 of 10: quotas 2.5, 1.5, 1.0 -> floors 2, 1, 1 and the extra one
  # to class 0 (fractional parts 0.5, 0.5, 0: the lower class first).
  kept = dp.select(scores, 0.5, method="hardest", labels=labels)
  assert kept.tolist() == [2, 3, 4, 7, 9]
  kept = dp.select(scores, 0.5, method="easiest", labels=labels)
  assert kept.tolist() == [0, 1, 2, 5, 8]


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(keep_fraction=0.0), "keep_fraction = 0.0"),
    (dict(keep_fraction=1.5), "keep_fraction = 1.5"),
    (dict(keep_fraction=True), "keep_fraction = True"),
    (dict(scores=[1.0, np.nan, 2.0, 3.0]), "non-finite.*at example 1"),
    (dict(scores=[[1.0, 2.0]]), "one score per training example"),
    (dict(labels=[0, 1, 0]), r"shape \(3,\); got shape \(4,\)"),
    (dict(method="middle"), "method = 'middle' is unknown"),
    (dict(method="offset", offset=1.0), "offset = 1.0"),
    (dict(method="ccs"), "give it a key"),
    (dict(strata=0), "strata = 0"),
  ],
)
def test_bad_selection_input_is_named(kwargs, match):
  settings = dict(scores=[1.0, 2.0, 3.0, 4.0], keep_fraction=0.5)
  settings["method"] = "hardest"
  settings.update(kwargs)
  scores = settings.pop("scores")
  fraction = settings.pop("keep_fraction")
  with pytest.raises(ValueError, match=match):
    dp.select(scores, fraction, **settings)


def test_corrupt_labels_flips_exactly_the_fraction():
  labels = np.arange(100) % 4
  new, flipped = dp.corrupt_labels(labels, 0.1, 4, seed=0)
  assert len(flipped) == 10
  assert np.all(new[flipped] != labels[flipped])
  others = np.setdiff1d(np.arange(100), flipped)
  assert np.array_equal(new[others], labels[others])
  assert new.min() >= 0 and new.max() < 4
  with pytest.raises(ValueError, match="label noise = 1.5"):
    dp.corrupt_labels(labels, 1.5, 4, seed=0)


def _dataset(n=40):
  rng = np.random.default_rng(0)
  split = lambda k: Split(
    rng.normal(size=(k, 2, 2, 1)).astype(np.float32),
    rng.integers(0, 3, k).astype(np.int32),
  )
  return Dataset("toy", 3, split(n), split(8), split(8))


def _subset_trainer(data, **kwargs):
  return Trainer(
    _MLP(),
    data,
    pruner=fixed(),
    optimizer=optax.sgd,
    learning_rate=0.1,
    batch_size=4,
    eval_every=10,
    **kwargs,
  )


def test_subset_training_sees_only_the_chosen_examples():
  data = _dataset()
  subset = np.array([3, 7, 8, 20, 21, 30, 33, 39])
  # Every other example is NaN: one look at it would make the loss NaN.
  images = np.full_like(data.train.images, np.nan)
  images[subset] = data.train.images[subset]
  data = Dataset("toy", 3, Split(images, data.train.labels), *([data.test] * 2))
  seen = lambda counts, indices, correct: counts.at[indices].add(1)
  trainer = _subset_trainer(data, example_hook=seen).with_subset(subset)
  state = trainer.init(
    trainer.init_variables(jax.random.key(0)),
    seed=0,
    extra=jnp.zeros(40, jnp.int32),
  )
  result = trainer.fit(state, 6)  # 24 examples: 3 epochs of the 8
  counts = np.asarray(result.state.extra)
  want = np.zeros(40, int)
  want[subset] = 3
  assert counts.tolist() == want.tolist()
  assert np.isfinite(result.final["test_loss"])


def test_forgetting_hook_matches_a_replay_of_the_training_run():
  data = _dataset()
  trainer = _subset_trainer(data, example_hook=dp.forgetting.update)
  start = trainer.init(
    trainer.init_variables(jax.random.key(0)),
    seed=0,
    extra=dp.forgetting.init(40),
  )
  result = trainer.fit(start, 30)
  # Replay: one step at a time, predictions made by hand before each step.
  from jaxprune.train import batch_indices

  state, previous = start, np.zeros(40, bool)
  events, learned = np.zeros(40, int), np.zeros(40, bool)
  for step in range(30):
    batch = batch_indices(0, 40, 4, step, 1)[0]
    logits = _numpy_forward(state.params, data.train.images[batch])[3]
    correct = logits.argmax(1) == data.train.labels[batch]
    events[batch] += previous[batch] & ~correct
    previous[batch], learned[batch] = correct, learned[batch] | correct
    state = trainer.fit(state, step + 1).state
  assert np.asarray(result.state.extra.events).tolist() == events.tolist()
  assert np.asarray(result.state.extra.learned).tolist() == learned.tolist()


@pytest.mark.parametrize(
  "subset, match",
  [
    (np.array([1, 1, 2]), "distinct"),
    (np.array([0, 40]), r"\[0, 40\)"),
    (np.array([], int), "non-empty"),
    (np.array([0.0, 1.0]), "integer"),
  ],
)
def test_bad_subset_is_named(subset, match):
  with pytest.raises(ValueError, match=match):
    _subset_trainer(_dataset(), subset=subset)


def test_example_hook_needs_one_device():
  with pytest.raises(ValueError, match="example_hook needs parallel"):
    _subset_trainer(
      _dataset(), example_hook=dp.forgetting.update, parallel="pmap"
    )
