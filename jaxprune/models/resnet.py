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

_INIT = nn.initializers.he_normal()


def _batch_norm(train: bool, name: str) -> nn.BatchNorm:
  """BatchNorm with the usual CIFAR settings (momentum 0.9, epsilon 1e-5)."""
  return nn.BatchNorm(
    use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name
  )


class _BasicBlock(nn.Module):
  """Two 3x3 conv-BN layers with a parameter-free (option A) shortcut."""

  filters: int
  stride: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = functools.partial(
      nn.Conv, self.filters, (3, 3), use_bias=False, kernel_init=_INIT
    )
    y = conv(strides=self.stride, name="conv1")(x)
    y = nn.relu(_batch_norm(train, "bn1")(y))
    y = conv(name="conv2")(y)
    y = _batch_norm(train, "bn2")(y)
    shortcut = x[:, :: self.stride, :: self.stride, :]
    extra = self.filters - x.shape[-1]
    if extra:
      pad = ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2))
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

  >>> import jax, jax.numpy as jnp
  >>> model, x = ResNet20(), jnp.zeros((1, 32, 32, 3))
  >>> shapes = jax.eval_shape(model.init, jax.random.key(0), x)  # No compute.
  >>> sorted(shapes)
  ['batch_stats', 'params']
  >>> jax.eval_shape(model.apply, shapes, x).shape
  (1, 10)
  """

  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Returns logits of shape ``(batch, num_classes)``.

    Args:
      x: NHWC images.
      train: Normalise with batch statistics and update the running averages
        (pass ``mutable=["batch_stats"]`` to ``apply``); otherwise use the
        running averages.
    """
    x = nn.Conv(16, (3, 3), use_bias=False, kernel_init=_INIT, name="conv")(x)
    x = nn.relu(_batch_norm(train, "bn")(x))
    for stage, filters in enumerate((16, 32, 64), start=1):
      for block in range(1, 4):
        stride = 2 if stage > 1 and block == 1 else 1
        name = f"stage{stage}_block{block}"
        x = _BasicBlock(filters, stride, name=name)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="fc")(x)
