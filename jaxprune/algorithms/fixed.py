"""Training under masks chosen elsewhere (IMP rounds, prune-at-init)."""

import dataclasses
from typing import Any

import jax

from jaxprune.core.policy import Policy
from jaxprune.core.types import Masks, Params
from jaxprune.pruner import all_kept


@dataclasses.dataclass(frozen=True)
class FixedPruner:
  """Never changes the masks; set them with `jaxprune.set_masks`."""

  policy: Policy = Policy()
  name: str = "fixed"

  def init(self, params: Params, key: jax.Array) -> tuple[Masks, Any]:
    del key
    return all_kept(params, self.policy), ()

  def is_update_step(self, step: jax.Array) -> bool:
    return False

  def update(self, params, grads, masks, aux, step, key):
    return masks, aux

  def forward(self, params: Params, masks: Masks, aux: Any) -> Params:
    return params


def fixed(*, policy: Policy = Policy()) -> FixedPruner:
  """A pruner that keeps whatever masks the state holds.

  >>> import jax.numpy as jnp, optax, jaxprune
  >>> params = {'w': jnp.ones((2, 2))}
  >>> tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.fixed())
  >>> state = jaxprune.set_masks(tx.init(params), {'w': jnp.eye(2, dtype=bool)})
  >>> jaxprune.summary(jaxprune.masks_of(state)).kept
  2
  """
  return FixedPruner(policy=policy)
