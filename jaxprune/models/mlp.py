"""LeNet-300-100, the fully connected network of the pruning literature."""

import flax.linen as nn
import jax

_INIT = nn.initializers.glorot_normal()


class LeNet300(nn.Module):
  """LeNet-300-100: flatten, Dense 300, Dense 100, Dense ``num_classes``.

  Hidden layers use ReLU. Kernels are Glorot-normal, biases start at zero.
  Parameters are named ``fc1``, ``fc2`` and ``fc3`` (the output layer).

  Attributes:
    num_classes: Number of output logits.
    features: Units of the two hidden layers (smaller after compaction).

  >>> import jax, jax.numpy as jnp
  >>> x = jnp.zeros((1, 28, 28, 1))
  >>> variables = LeNet300().init(jax.random.key(0), x)
  >>> variables["params"]["fc1"]["kernel"].shape
  (784, 300)
  """

  num_classes: int = 10
  features: tuple[int, int] = (300, 100)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Returns logits of shape ``(batch, num_classes)``.

    Args:
      x: Inputs of shape ``(batch, ...)``; all trailing axes are flattened.
      train: Ignored; accepted so every model shares one calling convention.
    """
    del train
    x = x.reshape((x.shape[0], -1))
    width1, width2 = self.features
    x = nn.relu(nn.Dense(width1, kernel_init=_INIT, name="fc1")(x))
    x = nn.relu(nn.Dense(width2, kernel_init=_INIT, name="fc2")(x))
    return nn.Dense(self.num_classes, kernel_init=_INIT, name="fc3")(x)

  def compacted(self, variables, kept) -> "LeNet300":
    """This network with the widths of compacted `variables`
    (`jaxprune.compact.compact_model`)."""
    del kept
    p = variables["params"]
    return self.clone(features=tuple(p[f"fc{i}"]["bias"].size for i in (1, 2)))
