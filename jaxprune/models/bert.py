"""A BERT encoder (post-LN) and mean-pooled sentence embeddings.

The defaults are the shape of all-MiniLM-L6-v2 (6 layers, width 384, 12
heads, FFN 1536); `jaxprune.models.pretrained.load_minilm` fills them with
its trained weights. Attention's query, key and value kernels are
`(width, heads, width // heads)` and its output kernel `(heads, width //
heads, width)` (`nn.MultiHeadDotProductAttention`, DenseGeneral layers named
`query`, `key`, `value`, `out`), so post-training pruning sees 3-D kernels.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def sentence_embeddings(
  hidden: jax.Array, attention_mask: jax.Array
) -> jax.Array:
  """The mean of `hidden` over the tokens `attention_mask` keeps, scaled to
  unit L2 norm (as sentence-transformers' Pooling and Normalize modules).

  Args:
    hidden: token states `(batch, length, width)`.
    attention_mask: `(batch, length)`, 1 (or True) on real tokens.

  Returns:
    `(batch, width)` unit vectors.

  >>> import numpy as np
  >>> h = np.array([[[3., 0.], [1., 8.], [9., 9.]]])
  >>> sentence_embeddings(h, np.array([[1, 1, 0]])).tolist()
  [[0.4472135901451111, 0.8944271802902222]]
  """
  mask = attention_mask[..., None].astype(hidden.dtype)
  mean = jnp.sum(hidden * mask, 1) / jnp.maximum(jnp.sum(mask, 1), 1e-9)
  norm = jnp.linalg.norm(mean, axis=-1, keepdims=True)
  return mean / jnp.maximum(norm, 1e-12)


class BertLayer(nn.Module):
  """Self-attention and a GELU feed-forward network, each added to its
  input and followed by a LayerNorm.

  Attributes:
    heads: attention heads.
    ffn: the feed-forward network's hidden width.
    epsilon: the LayerNorms' epsilon.
  """

  heads: int
  ffn: int
  epsilon: float

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    attention = nn.MultiHeadDotProductAttention(self.heads, name="attention")
    x = nn.LayerNorm(self.epsilon, name="attention_norm")(
      x + attention(x, mask=mask)
    )
    h = nn.Dense(self.ffn, name="intermediate")(x)
    # BERT's GELU is the exact one, through erf.
    h = nn.Dense(x.shape[-1], name="output")(nn.gelu(h, approximate=False))
    return nn.LayerNorm(self.epsilon, name="output_norm")(x + h)


class BertEncoder(nn.Module):
  """Token, position and segment embeddings, a LayerNorm, then `depth`
  `BertLayer`s named `layer<i>`. No dropout (inference and post-training
  pruning only).

  Attributes:
    vocab_size: token vocabulary.
    max_length: positions.
    type_vocab_size: segment types.
    width: hidden width.
    depth: layers.
    heads: attention heads.
    ffn: feed-forward hidden width.
    epsilon: LayerNorm epsilon.

  >>> import jax, jax.numpy as jnp
  >>> model = BertEncoder(vocab_size=10, max_length=8, width=8, depth=1,
  ...                     heads=2, ffn=16)
  >>> ids, mask = jnp.ones((2, 5), jnp.int32), jnp.ones((2, 5), jnp.int32)
  >>> variables = model.init(jax.random.key(0), ids, mask)
  >>> variables['params']['layer0']['attention']['out']['kernel'].shape
  (2, 4, 8)
  >>> model.apply(variables, ids, mask, method='embed').shape
  (2, 8)
  """

  vocab_size: int = 30522
  max_length: int = 512
  type_vocab_size: int = 2
  width: int = 384
  depth: int = 6
  heads: int = 12
  ffn: int = 1536
  epsilon: float = 1e-12

  @nn.compact
  def __call__(
    self,
    input_ids: jax.Array,
    attention_mask: jax.Array,
    token_type_ids: jax.Array | None = None,
    train: bool = False,
  ) -> jax.Array:
    """Token states `(batch, length, width)`.

    Args:
      input_ids: int token ids `(batch, length)`, `length <= max_length`.
      attention_mask: `(batch, length)`, 1 on real tokens, 0 on padding
        (padding is never attended to).
      token_type_ids: segment ids (default zeros).
      train: ignored (no dropout).
    """
    del train
    if token_type_ids is None:
      token_type_ids = jnp.zeros_like(input_ids)
    length = input_ids.shape[-1]
    embed = lambda n, name: nn.Embed(n, self.width, name=name)
    x = (
      embed(self.vocab_size, "word_embeddings")(input_ids)
      + embed(self.max_length, "position_embeddings")(jnp.arange(length))
      + embed(self.type_vocab_size, "token_type_embeddings")(token_type_ids)
    )
    x = nn.LayerNorm(self.epsilon, name="embeddings_norm")(x)
    # Keys only: (batch, 1 head, 1 query, length).
    mask = attention_mask.astype(bool)[:, None, None, :]
    for i in range(self.depth):
      x = BertLayer(self.heads, self.ffn, self.epsilon, name=f"layer{i}")(
        x, mask
      )
    return x

  def embed(
    self,
    input_ids: jax.Array,
    attention_mask: jax.Array,
    token_type_ids: jax.Array | None = None,
  ) -> jax.Array:
    """Sentence embeddings `(batch, width)`: `sentence_embeddings` of the
    token states. Call as `model.apply(variables, ..., method='embed')`."""
    hidden = self(input_ids, attention_mask, token_type_ids)
    return sentence_embeddings(hidden, attention_mask)
