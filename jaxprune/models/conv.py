"""Conv-2, Conv-4 and Conv-6 from the Lottery Ticket Hypothesis paper.

Frankle & Carbin (2019), Figure 2: stacks of 3x3 convolutions (SAME padding,
ReLU) in pairs, each pair followed by 2x2 max-pooling, then two hidden dense
layers of 256 units and the output layer.
"""

from typing import ClassVar

import flax.linen as nn
import jax

_INIT = nn.initializers.glorot_normal()


class _ConvNet(nn.Module):
  """Shared body of the Conv-N networks.

  Subclasses set ``widths``: the filters of each convolution. A 2x2 max-pool
  follows every second convolution. Convolutions are named ``conv1`` ...
  ``convN``; the dense layers ``fc1``, ``fc2`` and ``fc3`` (the output).

  Attributes:
    num_classes: Number of output logits.
    conv_features: Filters of each convolution, replacing ``widths`` (for
      a compacted network); None keeps ``widths``.
    dense_features: Units of ``fc1`` and ``fc2``.
  """

  widths: ClassVar[tuple[int, ...]] = ()
  num_classes: int = 10
  conv_features: tuple[int, ...] | None = None
  dense_features: tuple[int, int] = (256, 256)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Returns logits of shape ``(batch, num_classes)``.

    Args:
      x: NHWC images.
      train: Ignored; accepted so every model shares one calling convention.
    """
    del train
    widths = self.widths if self.conv_features is None else self.conv_features
    if len(widths) != len(self.widths):
      raise ValueError(
        f"conv_features={self.conv_features}: expected {len(self.widths)} "
        "filter counts, one per convolution"
      )
    for i, width in enumerate(widths, start=1):
      conv = nn.Conv(
        width, (3, 3), padding="SAME", kernel_init=_INIT, name=f"conv{i}"
      )
      x = nn.relu(conv(x))
      if i % 2 == 0:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    width1, width2 = self.dense_features
    x = nn.relu(nn.Dense(width1, kernel_init=_INIT, name="fc1")(x))
    x = nn.relu(nn.Dense(width2, kernel_init=_INIT, name="fc2")(x))
    return nn.Dense(self.num_classes, kernel_init=_INIT, name="fc3")(x)

  def compacted(self, variables, kept) -> "_ConvNet":
    """This network with the widths of compacted `variables`
    (`jaxprune.compact.compact_model`)."""
    del kept
    p = variables["params"]
    convs = range(1, len(self.widths) + 1)
    return self.clone(
      conv_features=tuple(p[f"conv{i}"]["bias"].size for i in convs),
      dense_features=tuple(p[f"fc{i}"]["bias"].size for i in (1, 2)),
    )


class Conv2(_ConvNet):
  """Conv-2: conv 64, 64, pool; dense 256, 256, ``num_classes``.

  >>> import jax, jax.numpy as jnp
  >>> x = jnp.zeros((2, 28, 28, 1))
  >>> shapes = jax.eval_shape(Conv2().init, jax.random.key(0), x)
  >>> shapes["params"]["fc1"]["kernel"].shape
  (12544, 256)
  """

  widths: ClassVar[tuple[int, ...]] = (64, 64)


class Conv4(_ConvNet):
  """Conv-4: conv 64, 64, pool, 128, 128, pool; dense 256, 256, output."""

  widths: ClassVar[tuple[int, ...]] = (64, 64, 128, 128)


class Conv6(_ConvNet):
  """Conv-6: Conv-4 plus conv 256, 256, pool; dense 256, 256, output."""

  widths: ClassVar[tuple[int, ...]] = (64, 64, 128, 128, 256, 256)
