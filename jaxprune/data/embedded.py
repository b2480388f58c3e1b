"""The 8x8 handwritten digits bundled with scikit-learn: no download needed."""

import numpy as np
from sklearn import datasets

from jaxprune.data.dataset import Dataset, from_arrays

TEST_SIZE = 300
VALIDATION_SIZE = 200


def load_digits(
  *, seed: int, validation_size: int | None = None, test_size: int | None = None
) -> Dataset:
  """Loads scikit-learn's 1,797 digits as 8x8x1 images in ten classes.

  The data has no official test split, so ``seed`` draws both:
  ``test_size`` (300 by default) test images first, then
  ``validation_size`` (200 by default) validation images from the rest,
  leaving 1,297 for training by default.

  Args:
    seed: Seed of the test and validation draws.
    validation_size: Images to hold out for validation.
    test_size: Images to hold out for testing.

  Raises:
    ValueError: If ``test_size`` is not an integer in [1, 1796].

  Returns:
    The standardised dataset.

  >>> ds = load_digits(seed=0)
  >>> [len(s.labels) for s in (ds.train, ds.validation, ds.test)]
  [1297, 200, 300]
  """
  digits = datasets.load_digits()
  n = len(digits.target)
  test_size = TEST_SIZE if test_size is None else test_size
  if not (isinstance(test_size, int) and 0 < test_size < n):
    raise ValueError(
      f"test_size must be an integer in [1, {n - 1}] for 'digits' ({n} "
      f"images); got {test_size!r}."
    )
  order = np.random.default_rng(seed).permutation(n)
  test, rest = np.sort(order[:test_size]), np.sort(order[test_size:])
  if validation_size is None:
    validation_size = VALIDATION_SIZE
  return from_arrays(
    "digits",
    10,
    (digits.images[rest], digits.target[rest]),
    (digits.images[test], digits.target[test]),
    seed=seed,
    validation_size=validation_size,
  )
