"""Deterministic data order: the batch of a step depends only on the step.

The training examples are visited epoch after epoch, each epoch in its own
random permutation drawn from `(seed, epoch)`; step t takes positions
`[t * batch_size, (t + 1) * batch_size)` of that endless sequence, so a batch
may straddle two epochs. Resuming at step k, after an interruption or for a
rewind to step k, sees exactly the batches an uninterrupted run sees.
"""

import numpy as np


def batch_indices(
  seed: int, num_examples: int, batch_size: int, start: int, count: int
) -> np.ndarray:
  """Example indices of the `count` batches of steps `start, start + 1, ...`.

  Args:
    seed: the data order's seed.
    num_examples: training examples.
    batch_size: examples per step.
    start: first step.
    count: number of steps.

  Returns:
    int32 array of shape `(count, batch_size)`.

  >>> a = batch_indices(0, 10, 4, 0, 3)
  >>> sorted(a.ravel()[:10].tolist()) == list(range(10))
  True
  >>> bool((batch_indices(0, 10, 4, 2, 1) == a[2]).all())
  True
  """
  if num_examples < 1 or batch_size < 1 or start < 0 or count < 0:
    raise ValueError(
      f"batch_indices needs num_examples >= 1, batch_size >= 1, start >= 0 "
      f"and count >= 0; got {num_examples}, {batch_size}, {start}, {count}"
    )
  positions = np.arange(start * batch_size, (start + count) * batch_size)
  epochs = positions // num_examples
  out = np.empty(positions.shape, np.int32)
  for epoch in np.unique(epochs):
    order = np.random.default_rng((seed, int(epoch))).permutation(num_examples)
    here = epochs == epoch
    out[here] = order[positions[here] % num_examples]
  return out.reshape(count, batch_size)
