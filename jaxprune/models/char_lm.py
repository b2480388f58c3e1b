"""A small decoder-only transformer over characters (GPT-style, pre-LN)."""

import flax.linen as nn
import jax

_INIT = nn.initializers.normal(0.02)


class DecoderBlock(nn.Module):
  """Causal self-attention then an MLP, each behind a LayerNorm and added
  back to its input.

  Attributes:
    heads: attention heads; the width must be a multiple.
    mlp_ratio: MLP hidden width over the model width.
  """

  heads: int
  mlp_ratio: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    width = x.shape[-1]
    h = nn.LayerNorm(name="attention_norm")(x)
    x = x + nn.MultiHeadDotProductAttention(
      self.heads, kernel_init=_INIT, name="attention"
    )(h, mask=mask)
    h = nn.LayerNorm(name="mlp_norm")(x)
    h = nn.Dense(self.mlp_ratio * width, kernel_init=_INIT, name="mlp_in")(h)
    h = nn.Dense(width, kernel_init=_INIT, name="mlp_out")(nn.gelu(h))
    return x + h


class CharLM(nn.Module):
  """Token embedding plus learned positions, `depth` decoder blocks, a final
  LayerNorm and a separate (untied) output layer.

  Attention's query, key and value kernels are `(width, heads, width //
  heads)` and its output kernel `(heads, width // heads, width)`
  (`nn.MultiHeadDotProductAttention`, DenseGeneral layers named `query`,
  `key`, `value`, `out`). Layers are named `embed`, `positions`,
  `block<i>/...`, `final_norm` and `head`.

  Attributes:
    num_classes: vocabulary size (the registry's name for it), e.g.
      `jaxprune.data.text.VOCAB_SIZE`.
    context: the longest sequence (learned positions).
    width: model width.
    depth: decoder blocks.
    heads: attention heads per block.

  >>> import jax, jax.numpy as jnp
  >>> model = CharLM(num_classes=11, context=8, width=16, depth=1, heads=2)
  >>> tokens = jnp.zeros((3, 8), jnp.int32)
  >>> variables = model.init(jax.random.key(0), tokens)
  >>> variables['params']['block0']['attention']['query']['kernel'].shape
  (16, 2, 8)
  >>> model.apply(variables, tokens).shape
  (3, 8, 11)
  """

  num_classes: int
  context: int = 128
  width: int = 128
  depth: int = 4
  heads: int = 4

  @nn.compact
  def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
    """Logits of every next character, `(batch, length, num_classes)`.

    Args:
      tokens: int inputs `(batch, length)`, `length <= context`; position
        t sees positions up to t only.
      train: ignored (no dropout); accepted as every model does.

    Raises:
      ValueError: if the sequences are longer than `context`.
    """
    del train
    length = tokens.shape[-1]
    if length > self.context:
      raise ValueError(
        f"sequences of {length} tokens: expected at most context = "
        f"{self.context}"
      )
    x = nn.Embed(
      self.num_classes, self.width, embedding_init=_INIT, name="embed"
    )(tokens)
    positions = self.param("positions", _INIT, (self.context, self.width))
    x = x + positions[:length]
    mask = nn.make_causal_mask(tokens)
    for i in range(self.depth):
      x = DecoderBlock(self.heads, name=f"block{i}")(x, mask)
    x = nn.LayerNorm(name="final_norm")(x)
    return nn.Dense(self.num_classes, kernel_init=_INIT, name="head")(x)
