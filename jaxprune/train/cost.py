"""Training cost measured step by step: multiply-adds at the masks in force.

A dense or convolution kernel's weights each take part in the same number
of multiply-adds (one per output position), so the forward pass at any
masks is exact from the kept count of each masked leaf:
`dense_l * kept_l // size_l` for a leaf whose products cost `dense_l` at
full density (`jaxprune.flops`, the same rounding), plus the products that
read no masked leaf. Masks change only on the pruner's update steps: the
compiled step counts kept entries (`kept_counts`) on those only, the host
carries the counts in force from step to step (`in_force`) and turns them
into multiply-adds (`ForwardCost`) and a run's total by the RigL paper's
accounting (`jaxprune.compact.flops.training_flops`).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.compact.flops import Flops, training_flops
from jaxprune.core.tree import path_str
from jaxprune.core.types import Masks


def kept_counts(masks: Masks) -> jax.Array:
  """Kept entries of every masked leaf, in pytree order (int32 vector)."""
  leaves = [m for m in jax.tree.leaves(masks) if m is not None]
  if not leaves:
    return jnp.zeros((0,), jnp.int32)
  return jnp.stack([jnp.sum(m, dtype=jnp.int32) for m in leaves])


def in_force(
  current: np.ndarray, changed: np.ndarray, after: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Each step's kept counts, from the updates that changed them.

  Args:
    current: `(leaves,)` counts in force before the first step.
    changed: `(steps,)` whether a step's update may have changed the masks
      (its new masks count from the next step on).
    after: `(steps, leaves)` the counts a changing update left.

  Returns:
    `(steps, leaves)` the counts of each step's forward pass, and the
    counts in force after the last step.

  >>> counts, last = in_force(np.array([5]), np.array([False, True, False]),
  ...                         np.array([[0], [3], [0]]))
  >>> counts.ravel().tolist(), last.tolist()
  ([5, 5, 3], [3])
  """
  counts = np.empty((len(changed), len(current)), np.int64)
  for i, change in enumerate(changed):
    counts[i] = current
    if change:
      current = np.asarray(after[i], np.int64)
  return counts, current


class ForwardCost:
  """One example's forward multiply-adds as a function of kept counts.

  Args:
    counted: `jaxprune.flops` of the dense model on one example.
    masks: the masks (or masks of the same structure) whose `kept_counts`
      will be given; their leaves' sizes and key paths are read.

  >>> counted = Flops({'a': (600, 600), 'b': (20, 20)}, 620, 620)
  >>> cost = ForwardCost(counted, {'a': np.ones((6, 10), bool), 'b': None})
  >>> cost.forward(np.array([[60], [15]])).tolist()  # b is never masked
  [620, 170]
  """

  def __init__(self, counted: Flops, masks: Masks):
    flat = jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
    masked = [(path_str(p), m) for p, m in flat if m is not None]
    self.dense = counted.dense
    self._layer = np.array(
      [counted.layers.get(p, (0, 0))[0] for p, _ in masked], np.int64
    )
    self._size = np.array([np.size(m) for _, m in masked], np.int64)
    self._fixed = counted.dense - int(self._layer.sum())

  def forward(self, kept: np.ndarray) -> np.ndarray:
    """Multiply-adds of each step's forward pass.

    Args:
      kept: `(steps, leaves)` kept counts, `kept_counts` of every step.

    Returns:
      `(steps,)` int64 multiply-adds of one example.
    """
    kept = np.asarray(kept, np.int64).reshape(-1, len(self._size))
    return self._fixed + np.sum(self._layer * kept // self._size, axis=1)

  def training(
    self, kept: np.ndarray, dense_gradient: Sequence[bool], batch_size: int
  ) -> int:
    """Multiply-adds of training steps, by the RigL paper's accounting.

    Args:
      kept: `(steps, leaves)` kept counts of each step's forward pass.
      dense_gradient: per step, whether its update reads the dense gradient.
      batch_size: examples per step.

    Returns:
      The steps' total: `batch_size` times 3 f per step (f: the forward
      at the step's masks), 2 f + f_dense on dense-gradient steps.
    """
    steps = np.flatnonzero(np.asarray(dense_gradient, bool))
    total = training_flops(self.forward(kept), self.dense, steps, True)
    return batch_size * round(total)
