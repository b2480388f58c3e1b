"""ResNet-20 for 32x32 images (He et al., 2016, Section 4.2).

Three stages of three basic blocks with 16, 32 and 64 filters; the first block
of stages two and three halves the resolution. Shortcuts are parameter-free
(the paper's option A): identity, or when the shape changes, stride-2
subsampling with the new channels zero-padded. The network has 0.27M
parameters.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.models import shift_conv

_INIT = nn.initializers.he_normal()


def _batch_norm(train: bool, name: str) -> nn.BatchNorm:
  """BatchNorm with the usual CIFAR settings (momentum 0.9, epsilon 1e-5)."""
  return nn.BatchNorm(
    use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name
  )


class _BasicBlock(nn.Module):
  """Two 3x3 conv-BN layers with a parameter-free (option A) shortcut.

  ``inner`` is the first convolution's width (``filters`` when None); ``pad``
  the zero channels added below and above the shortcut when it widens (an
  even split when None); ``conv_impl`` as ``ResNet20``'s.
  """

  filters: int
  stride: int
  inner: int | None = None
  pad: tuple[int, int] | None = None
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = functools.partial(
      nn.Conv,
      kernel_size=(3, 3),
      use_bias=False,
      kernel_init=_INIT,
      conv_general_dilated=shift_conv.implementation(self.conv_impl),
    )
    inner = self.filters if self.inner is None else self.inner
    y = conv(inner, strides=self.stride, name="conv1")(x)
    y = nn.relu(_batch_norm(train, "bn1")(y))
    y = conv(self.filters, name="conv2")(y)
    y = _batch_norm(train, "bn2")(y)
    shortcut = x[:, :: self.stride, :: self.stride, :]
    extra = self.filters - x.shape[-1]
    below, above = self.pad or (extra // 2, extra - extra // 2)
    if below + above != extra or min(below, above) < 0:
      raise ValueError(
        f"{self.name}: pad={self.pad} must add {extra} channels to the "
        f"{x.shape[-1]} of the shortcut to reach filters={self.filters}"
      )
    if extra:
      pad = ((0, 0), (0, 0), (0, 0), (below, above))
      shortcut = jnp.pad(shortcut, pad)
    return nn.relu(y + shortcut)


class ResNet20(nn.Module):
  """CIFAR ResNet-20 with BatchNorm and option-A shortcuts.

  Convolutions are He-normal initialised and have no bias (BatchNorm follows
  each one). Layers are named ``conv``/``bn`` (stem), ``stage{s}_block{b}``
  (each holding ``conv1``, ``bn1``, ``conv2``, ``bn2``) and ``fc`` (output,
  after global average pooling).

  Attributes:
    num_classes: Number of output logits.
    stream: Channels of the residual stream in each stage (the stem's
      convolution has the first stage's); smaller after compaction.
    inner: The width of each block's first convolution, nine values in
      block order; None: the stage's stream width.
    pads: For stages two and three, the zero channels the first block's
      shortcut adds below and above its input; None: an even split.
    conv_impl: 'xla' or 'shifts': convolutions of three input channels or
      fewer (the stem's) as sums of shifted inputs, as in ``LeNet5``.

  >>> import jax, jax.numpy as jnp
  >>> model, x = ResNet20(), jnp.zeros((1, 32, 32, 3))
  >>> shapes = jax.eval_shape(model.init, jax.random.key(0), x)  # No compute.
  >>> sorted(shapes)
  ['batch_stats', 'params']
  >>> jax.eval_shape(model.apply, shapes, x).shape
  (1, 10)
  """

  num_classes: int = 10
  stream: tuple[int, int, int] = (16, 32, 64)
  inner: tuple[int, ...] | None = None
  pads: tuple[tuple[int, int], tuple[int, int]] | None = None
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Returns logits of shape ``(batch, num_classes)``.

    Args:
      x: NHWC images.
      train: Normalise with batch statistics and update the running averages
        (pass ``mutable=["batch_stats"]`` to ``apply``); otherwise use the
        running averages.
    """
    inner = self.inner or tuple(w for w in self.stream for _ in range(3))
    if len(inner) != 9:
      raise ValueError(f"inner={self.inner}: expected 9 widths, one a block")
    pads = (None,) + tuple(self.pads or (None, None))
    x = nn.Conv(
      self.stream[0],
      (3, 3),
      use_bias=False,
      kernel_init=_INIT,
      conv_general_dilated=shift_conv.implementation(self.conv_impl),
      name="conv",
    )(x)
    x = nn.relu(_batch_norm(train, "bn")(x))
    for stage, filters in enumerate(self.stream, start=1):
      for block in range(1, 4):
        first = block == 1
        x = _BasicBlock(
          filters,
          2 if stage > 1 and first else 1,
          inner[3 * (stage - 1) + block - 1],
          pads[stage - 1] if first else None,
          self.conv_impl,
          name=f"stage{stage}_block{block}",
        )(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="fc")(x)

  def compacted(self, variables, kept) -> "ResNet20":
    """This network with the widths of compacted `variables`; `kept` (the
    original channels kept, by leaf and axis) places each widening
    shortcut's input among the channels it feeds
    (`jaxprune.compact.compact_model`)."""
    p = variables["params"]
    blocks = [f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2, 3)]
    width = lambda name, conv: p[name][conv]["kernel"].shape[-1]
    stream = tuple(width(f"stage{s}_block1", "conv2") for s in (1, 2, 3))
    pads = []
    for s in (2, 3):
      old_in, old_out = self.stream[s - 2], self.stream[s - 1]
      extra = old_out - old_in
      below = self.pads[s - 2][0] if self.pads else extra // 2
      stay = kept.get(
        (f"params/stage{s}_block1/conv2/kernel", 3), np.arange(old_out)
      )
      low = int(np.sum(stay < below))
      high = int(np.sum(stay >= below + old_in))
      pads.append((low, high))
    return self.clone(
      stream=stream,
      inner=tuple(width(b, "conv1") for b in blocks),
      pads=tuple(pads),
    )
