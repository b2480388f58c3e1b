"""Checking the PRNG keys users pass in."""

from typing import Any

import jax
import jax.numpy as jnp


def check_key(key: Any, where: str) -> None:
  """Raises unless `key` is a `jax.random.key(...)` (or a legacy raw
  `jax.random.PRNGKey(...)`, uint32 of shape (2,)).

  >>> check_key(jax.random.key(0), 'prune')
  >>> check_key(42, 'prune')
  Traceback (most recent call last):
  ...
  ValueError: prune: key=42 is not a PRNG key; expected jax.random.key(...), ...

  Raises:
    ValueError: naming `where`, the value and what is expected.
  """
  dtype = getattr(key, "dtype", None)
  shape = getattr(key, "shape", None)
  if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
    if shape == ():
      return
  elif dtype == jnp.uint32 and shape == (2,):
    return
  shown = repr(key) if dtype is None else f"an array of {dtype}{list(shape)}"
  example = key if isinstance(key, int) and not isinstance(key, bool) else 0
  raise ValueError(
    f"{where}: key={shown} is not a PRNG key; expected jax.random.key(...), "
    f"e.g. key=jax.random.key({example})"
  )
