"""The character transformer, sequence labels in training and evaluation,
and its config's run, whose trained variables load back."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune import data, models
from jaxprune.data import Split, text
from jaxprune.data.dataset import Dataset
from jaxprune.experiments import sparse
from jaxprune.train import Trainer, evaluation

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tiny(vocab=11, context=8):
  return models.get(
    "char_lm", num_classes=vocab, context=context, width=16, depth=2, heads=2
  )


def test_shapes_and_attention_kernels():
  model = _tiny()
  tokens = jnp.zeros((3, 8), jnp.int32)
  params = jax.eval_shape(model.init, jax.random.key(0), tokens)["params"]
  attention = params["block1"]["attention"]
  assert attention["query"]["kernel"].shape == (16, 2, 8)
  assert attention["out"]["kernel"].shape == (2, 8, 16)
  assert params["head"]["kernel"].shape == (16, 11)
  logits = jax.eval_shape(model.apply, {"params": params}, tokens)
  assert logits.shape == (3, 8, 11)


def test_causal():
  model = _tiny()
  tokens = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8]])
  variables = model.init(jax.random.key(0), tokens)
  before = model.apply(variables, tokens)
  after = model.apply(variables, tokens.at[0, 5].set(9))
  # Positions before 5 do not see it; position 5 and after do.
  np.testing.assert_array_equal(before[0, :5], after[0, :5])
  assert not np.allclose(before[0, 5:], after[0, 5:])


def test_too_long():
  model = _tiny(context=4)
  with pytest.raises(ValueError, match="9 tokens.*context = 4"):
    model.init(jax.random.key(0), jnp.zeros((1, 9), jnp.int32))


def test_evaluate_sequence_labels_against_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(5, 3, 4)).astype(np.float32)
  labels = rng.integers(0, 4, size=(5, 3)).astype(np.int32)
  split = Split(np.arange(5, dtype=np.int32), labels)
  batches = evaluation.batched(split, 2)  # 3 batches, one padded example
  assert batches.images.dtype == jnp.int32
  assert batches.labels.shape == (3, 2, 3)
  table = jnp.asarray(np.concatenate([logits, np.zeros((1, 3, 4))]))
  got = evaluation.evaluate(lambda v, i: table[i], None, batches)
  # By hand: mean over the 15 real tokens.
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_p, labels[..., None], -1)
  np.testing.assert_allclose(got["loss"], nll.mean(), rtol=1e-6)
  accuracy = np.mean(logits.argmax(-1) == labels)
  np.testing.assert_allclose(got["accuracy"], accuracy, rtol=1e-6)


def test_trainer_learns_a_periodic_sequence():
  # Every sequence cycles 1, 2, 3 from a random phase: after its first
  # token each next one is certain, so 7 of 8 are learnable.
  rng = np.random.default_rng(0)
  phase = rng.integers(0, 3, size=(64, 1))
  seq = (phase + np.arange(9)) % 3 + 1
  split = Split(seq[:, :8].astype(np.int32), seq[:, 1:].astype(np.int32))
  ds = Dataset("cycle", 5, split, split, split)
  trainer = Trainer(
    _tiny(vocab=5),
    ds,
    pruner=jaxprune.algorithms.fixed(),
    optimizer=optax.adam,
    learning_rate=1e-2,
    batch_size=16,
    eval_every=60,
  )
  state = trainer.init(trainer.init_variables(jax.random.key(0)), seed=0)
  result = trainer.fit(state, 60)
  assert result.history[0]["val_accuracy"] < 0.5
  assert result.final["val_accuracy"] > 0.85
  assert result.final["val_loss"] < 0.3


@pytest.mark.skipif(
  not pathlib.Path(text.FORTUNES_DIR).is_dir(),
  reason=f"Debian's fortunes is not installed ({text.INSTALL})",
)
def test_config_trains_and_variables_load_back(tmp_path, monkeypatch):
  monkeypatch.syspath_prepend(str(ROOT))
  from configs.lm import char_fortunes

  # The real text, 64 sequences of each split: evaluations stay quick.
  def load(name, seed):
    ds = data.load(name, seed=seed)
    cut = lambda split: Split(split.images[:64], split.labels[:64])
    return Dataset(
      ds.name, ds.num_classes, cut(ds.train), cut(ds.validation), cut(ds.test)
    )

  monkeypatch.setattr(sparse, "load", load)
  config = char_fortunes.get_config("quick")
  config.train.steps = 4
  config.train.eval_every = 4
  config.train.steps_per_dispatch = 4
  config.train.checkpoint_every = 4
  sparse.run(config, str(tmp_path))
  model, variables = sparse.trained(str(tmp_path))
  assert isinstance(model, models.CharLM) and model.width == 32
  val = load("fortunes_chars", seed=0).validation
  logits = jax.jit(model.apply)(variables, val.images)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, val.labels)
  results = json.loads((tmp_path / "results.json").read_text())
  np.testing.assert_allclose(
    loss.mean(), results["runs"][0]["early_stop_val_loss"], rtol=1e-5
  )
  with pytest.raises(FileNotFoundError, match="seed7/variables.npz"):
    sparse.trained(str(tmp_path), seed=7)
