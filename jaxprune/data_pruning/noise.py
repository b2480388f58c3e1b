"""Label noise for data-pruning experiments."""

import numpy as np


def corrupt_labels(
  labels: np.ndarray, fraction: float, num_classes: int, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Gives `fraction` of the examples, drawn at random, a wrong label.

  Each chosen example gets one of the other `num_classes - 1` classes,
  uniformly.

  Args:
    labels: `(n,)` int labels.
    fraction: the fraction corrupted, in [0, 1]; `round(fraction * n)`
      examples.
    num_classes: labels lie in `[0, num_classes)`, at least 2.
    seed: the draw's seed.

  Returns:
    The new labels and the sorted indices of the corrupted examples.

  >>> new, flipped = corrupt_labels(np.zeros(10, int), 0.3, 2, seed=0)
  >>> new.sum().item(), len(flipped)
  (3, 3)
  """
  if not 0 <= fraction <= 1:
    raise ValueError(
      f"label noise = {fraction!r}: expected a fraction in [0, 1]"
    )
  if num_classes < 2:
    raise ValueError(f"num_classes = {num_classes}: label noise needs >= 2")
  rng = np.random.default_rng(seed)
  n = len(labels)
  flipped = np.sort(rng.choice(n, round(fraction * n), replace=False))
  shift = rng.integers(1, num_classes, len(flipped))
  new = np.array(labels, copy=True)
  new[flipped] = (new[flipped] + shift) % num_classes
  return new, flipped
