"""Type aliases and call signatures shared across jaxprune."""

from collections.abc import Callable
from typing import Any, Protocol

import jax

Params = Any
"""A pytree of arrays: linen variables, `nnx.State`, lists, custom nodes."""

Masks = Any
"""A pytree shaped like the params: bool arrays, `None` where not pruned."""

Scores = Any
"""A pytree shaped like the params: float arrays, `None` where not pruned."""

Path = str
"""A leaf's key path written with '/' separators, e.g. 'params/fc1/kernel'."""


class ScoreFn(Protocol):
  """Scores every prunable leaf; higher scores are kept.

  `grads` is the dense gradient with respect to the effective parameters, or
  `None` where no gradient is available (one-shot pruning without data).
  `key` is a `jax.random` key, used by random scores and ignored otherwise.
  """

  def __call__(
    self, params: Params, grads: Params | None, key: jax.Array
  ) -> Scores: ...


SparsityFn = Callable[[jax.Array], jax.Array]
"""Maps a (traced) step to a target sparsity in [0, 1]."""
