"""LeNet-5, the small convolutional network of the pruning literature.

LeCun et al. (1998) with today's usual choices: ReLU and 2x2 max-pooling,
and 28x28 inputs padded by the first convolution ('SAME') where the paper
padded the images to 32x32. Two 5x5 convolutions (6 and 16 filters), then
dense layers of 120 and 84 units and the output layer: 61,706 parameters
for 10 classes, about a thirtieth of the multiply-adds of Conv-4 per image.
"""

import flax.linen as nn
import jax

from jaxprune.models import shift_conv

_INIT = nn.initializers.glorot_normal()


class LeNet5(nn.Module):
  """LeNet-5: conv 6 (5x5, SAME), pool, conv 16 (5x5, VALID), pool; dense
  120, 84, ``num_classes``.

  Convolutions are named ``conv1`` and ``conv2``, the dense layers ``fc1``,
  ``fc2`` and ``fc3`` (the output). Kernels are Glorot-normal, biases start
  at zero.

  Attributes:
    num_classes: Number of output logits.
    features: Filters of the two convolutions and units of the two hidden
      dense layers (smaller after compaction).
    conv_impl: 'xla' (`lax.conv_general_dilated`) or 'shifts'
      (`shift_conv.conv_by_shifts`: the first convolution, and the second
      once compaction leaves it three input channels or fewer, as sums of
      shifted inputs; much faster on CPU, same outputs within float
      rounding). The program of 'shifts' has no convolution for those
      layers, so find groups, count FLOPs and calibrate with 'xla'.

  >>> import jax, jax.numpy as jnp
  >>> x = jnp.zeros((1, 28, 28, 1))
  >>> params = LeNet5().init(jax.random.key(0), x)["params"]
  >>> params["conv2"]["kernel"].shape, params["fc1"]["kernel"].shape
  ((5, 5, 6, 16), (400, 120))
  """

  num_classes: int = 10
  features: tuple[int, int, int, int] = (6, 16, 120, 84)
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Returns logits of shape ``(batch, num_classes)``.

    Args:
      x: NHWC images, 28x28 as in MNIST (any size from 12x12 up runs; the
        first dense layer's input size follows the image size).
      train: Ignored; accepted so every model shares one calling convention.

    Raises:
      ValueError: for images under 12x12, which leave the second
        convolution and pooling nothing to cover.
    """
    del train
    if min(x.shape[1:3]) < 12:
      raise ValueError(
        f"LeNet5 got images of {tuple(x.shape[1:3])} pixels: expected at "
        "least 12x12 (28x28 as in MNIST)"
      )
    conv = lambda n, pad, name: nn.Conv(
      n,
      (5, 5),
      padding=pad,
      kernel_init=_INIT,
      conv_general_dilated=shift_conv.implementation(self.conv_impl),
      name=name,
    )
    conv1, conv2, fc1, fc2 = self.features
    x = nn.max_pool(nn.relu(conv(conv1, "SAME", "conv1")(x)), (2, 2), (2, 2))
    x = nn.max_pool(nn.relu(conv(conv2, "VALID", "conv2")(x)), (2, 2), (2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(fc1, kernel_init=_INIT, name="fc1")(x))
    x = nn.relu(nn.Dense(fc2, kernel_init=_INIT, name="fc2")(x))
    return nn.Dense(self.num_classes, kernel_init=_INIT, name="fc3")(x)

  def compacted(self, variables, kept) -> "LeNet5":
    """This network with the widths of compacted `variables`
    (`jaxprune.compact.compact_model`)."""
    del kept
    p = variables["params"]
    names = ("conv1", "conv2", "fc1", "fc2")
    return self.clone(features=tuple(p[n]["bias"].size for n in names))
