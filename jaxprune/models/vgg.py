"""A small VGG-style network (Simonyan & Zisserman, 2015)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

_INIT = nn.initializers.glorot_normal()

VGG11_STAGES = ((64,), (128,), (256, 256), (512, 512), (512, 512))


class VGG(nn.Module):
  """Stages of 3x3 convolutions, each stage ending in 2x2 max-pooling.

  Each convolution is followed by optional BatchNorm and ReLU. Pooling uses
  SAME padding, so inputs smaller than ``2 ** len(stages)`` pixels still work
  (a 1x1 map stays 1x1). Global average pooling feeds the output layer.
  Layers are named ``conv1`` ... ``convN``, ``bn1`` ... ``bnN`` and ``fc``.

  Attributes:
    stages: Filters of each convolution, grouped by stage; the default is
      VGG-11.
    batch_norm: Whether to add BatchNorm (momentum 0.9, epsilon 1e-5) after
      each convolution; convolutions then have no bias.
    num_classes: Number of output logits.

  >>> import jax, jax.numpy as jnp
  >>> model = VGG(stages=((8,), (16, 16)), batch_norm=False)
  >>> x = jnp.zeros((2, 8, 8, 1))
  >>> shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  >>> jax.eval_shape(model.apply, shapes, x).shape
  (2, 10)
  """

  stages: tuple[tuple[int, ...], ...] = VGG11_STAGES
  batch_norm: bool = True
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Returns logits of shape ``(batch, num_classes)``.

    Args:
      x: NHWC images.
      train: With BatchNorm: normalise with batch statistics and update the
        running averages (pass ``mutable=["batch_stats"]`` to ``apply``).
        Ignored without BatchNorm.
    """
    index = 0
    for widths in self.stages:
      for width in widths:
        index += 1
        x = nn.Conv(
          width,
          (3, 3),
          use_bias=not self.batch_norm,
          kernel_init=_INIT,
          name=f"conv{index}",
        )(x)
        if self.batch_norm:
          x = nn.BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            name=f"bn{index}",
          )(x)
        x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, kernel_init=_INIT, name="fc")(x)

  def compacted(self, variables, kept) -> "VGG":
    """This network with the widths of compacted `variables`
    (`jaxprune.compact.compact_model`)."""
    del kept
    p = variables["params"]
    index = iter(range(1, sum(map(len, self.stages)) + 1))
    stages = tuple(
      tuple(p[f"conv{next(index)}"]["kernel"].shape[-1] for _ in stage)
      for stage in self.stages
    )
    return self.clone(stages=stages)
