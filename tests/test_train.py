"""The trainer: whole-split evaluation, NaN errors, resume, compilation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune import data, models
from jaxprune.algorithms import lottery
from jaxprune.train import (
  Checkpoints,
  Trainer,
  batch_indices,
  batched,
  evaluate,
)


@pytest.fixture(scope="module")
def digits():
  return data.load("digits", seed=0)


class _BatchNormMLP(nn.Module):
  """A small net with BatchNorm, to exercise batch_stats."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Dense(32, name="fc1")(x.reshape((x.shape[0], -1)))
    x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
    return nn.Dense(10, name="fc2")(nn.relu(x))


def _trainer(dataset, model=None, **kwargs):
  settings = dict(
    pruner=jaxprune.algorithms.fixed(),
    optimizer=optax.adam,
    learning_rate=1e-3,
    batch_size=32,
    eval_every=10,
  )
  settings.update(kwargs)
  return Trainer(model or models.LeNet300(), dataset, **settings)


def _numpy_lenet(params, images):
  x = np.asarray(images, np.float64).reshape(len(images), -1)
  for i, name in enumerate(("fc1", "fc2", "fc3")):
    layer = params[name]
    x = x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"])
    if i < 2:
      x = np.maximum(x, 0.0)
  return x


def test_evaluation_covers_the_whole_split_with_padding(digits):
  model = models.LeNet300()
  params = model.init(jax.random.key(0), digits.test.images[:1])["params"]
  split = data.Split(digits.test.images[:203], digits.test.labels[:203])
  got = evaluate(
    lambda v, x: model.apply(v, x), {"params": params}, batched(split, 64)
  )
  logits = _numpy_lenet(params, split.images)
  logits -= logits.max(-1, keepdims=True)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  loss = -log_probs[np.arange(203), split.labels].mean()
  accuracy = (logits.argmax(-1) == split.labels).mean()
  np.testing.assert_allclose(float(got["loss"]), loss, rtol=1e-5)
  np.testing.assert_allclose(float(got["accuracy"]), accuracy, rtol=1e-6)


def test_data_order_visits_every_example_once_per_epoch():
  indices = batch_indices(3, 50, 7, 0, 50).ravel()
  for epoch in range(7):
    assert sorted(indices[50 * epoch : 50 * (epoch + 1)]) == list(range(50))
  np.testing.assert_array_equal(
    batch_indices(3, 50, 7, 13, 5), indices.reshape(50, 7)[13:18]
  )


def test_non_finite_loss_names_the_step_and_keeps_the_checkpoint(
  digits, tmp_path
):
  # The update of step 5 uses a NaN learning rate: the loss of step 6 is NaN.
  trainer = _trainer(
    digits,
    learning_rate=lambda step: jnp.where(step >= 5, jnp.nan, 1e-3),
    eval_every=5,
  )
  state = trainer.init(trainer.init_variables(jax.random.key(0)), seed=0)
  with pytest.raises(FloatingPointError, match="at step 6"):
    trainer.fit(state, 20, checkpoint_dir=str(tmp_path))
  with Checkpoints(tmp_path) as ckpt:
    assert ckpt.latest_step() == 5
    restored, meta = ckpt.restore(state)
  assert int(restored.step) == 5
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored.params))
  assert [r["step"] for r in meta["history"]] == [0, 5]


class _Killed(Exception):
  pass


def test_resume_after_an_interruption_is_exact(digits, tmp_path):
  trainer = _trainer(
    digits, model=_BatchNormMLP(), steps_per_dispatch=5, checkpoint_every=20
  )
  variables = trainer.init_variables(jax.random.key(1))
  masks = lottery.next_masks(
    variables["params"], trainer.init(variables, seed=0).opt_state.masks, 0.5
  )
  state = trainer.init(variables, masks, seed=4, step=3)
  reference = trainer.fit(state, 47)

  def kill_at_30(record):
    if record["step"] == 30:
      raise _Killed

  with pytest.raises(_Killed):
    trainer.fit(state, 47, checkpoint_dir=str(tmp_path), callback=kill_at_30)
  with Checkpoints(tmp_path) as ckpt:
    assert ckpt.latest_step() == 20
  seen = []
  resumed = trainer.fit(
    state, 47, checkpoint_dir=str(tmp_path), callback=seen.append
  )
  assert [r["step"] for r in seen] == [30, 40, 47]
  assert resumed.history == reference.history
  assert [r["step"] for r in reference.history] == [3, 10, 20, 30, 40, 47]
  assert jax.tree.all(
    jax.tree.map(
      lambda a, b: bool(np.array_equal(a, b)),
      (resumed.state.params, resumed.state.batch_stats),
      (reference.state.params, reference.state.batch_stats),
    )
  )
  # BatchNorm statistics were trained, and pruned weights stayed zero.
  assert not np.allclose(reference.state.batch_stats["bn"]["var"], 1.0)
  kernel = np.asarray(reference.state.params["fc1"]["kernel"])
  assert np.all(kernel[~np.asarray(masks["fc1"]["kernel"])] == 0)


def test_a_random_mask_follows_the_key_given_to_init(digits):
  # Sparse experiments give each seed its pruner key through `init`: a
  # static random mask must come from that key (the same mask for the same
  # key, another for another key), drawn by `init`, which masks the params.
  pruner = jaxprune.algorithms.random(0.9, distribution="uniform")
  trainer = _trainer(digits, pruner=pruner)
  variables = trainer.init_variables(jax.random.key(0))

  def masks_after_one_step(key):
    state = trainer.init(variables, seed=0, key=jax.random.key(key))
    masks = jaxprune.masks_of(state.opt_state)
    for layer in ("fc1", "fc2", "fc3"):
      w = np.asarray(state.params[layer]["kernel"])
      assert not w[~np.asarray(masks[layer]["kernel"])].any()
    at_init = jax.tree.leaves(masks)
    after = jax.tree.leaves(
      jaxprune.masks_of(trainer.fit(state, 1).state.opt_state)
    )
    for x, y in zip(at_init, after, strict=True):
      np.testing.assert_array_equal(x, y)
    return after

  a, again, b = (masks_after_one_step(k) for k in (1, 1, 2))
  for x, x2, y in zip(a, again, b, strict=True):
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, y)
    assert int(x.sum()) == int(y.sum()) == x.size - round(0.9 * x.size)


def test_one_compilation_serves_every_round(digits):
  trainer = _trainer(digits)
  theta_0 = trainer.init_variables(jax.random.key(2))
  state = trainer.init(theta_0, seed=0)
  masks = jaxprune.masks_of(state.opt_state)
  for _ in range(3):
    result = trainer.fit(state, 25)
    held = jaxprune.masks_of(result.state.opt_state)
    assert jax.tree.all(
      jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), held, masks)
    )
    masks = lottery.next_masks(result.state.params, masks, 0.2)
    start = {"params": lottery.rewind(theta_0["params"], masks)}
    state = trainer.init(start, masks, seed=0)
  assert trainer.train_chunk._cache_size() == 1


def test_bad_settings_are_refused(digits):
  with pytest.raises(ValueError, match="multiple of eval_every"):
    _trainer(digits, checkpoint_every=15)
  with pytest.raises(ValueError, match="batch_size"):
    _trainer(digits, batch_size=0)
