"""Random pruning with layerwise ratios (uniform, ERK, ER): static sparsity."""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune.algorithms.fixed import FixedPruner
from jaxprune.core import schedules, scores
from jaxprune.core.policy import Policy
from jaxprune.core.types import Masks, Params
from jaxprune.pruner import ScorePruner


@dataclasses.dataclass(frozen=True)
class RandomMaskPruner(FixedPruner):
  """Masks that `draw` (a one-shot random pruner) sets when the optimizer
  state is created, with the key its update would have used at step 0,
  and that never change after: the train step holds no selection code,
  which costs compilation time and, on CPU, time on every step."""

  draw: ScorePruner | None = None
  name: str = "random"

  @property
  def distribution(self) -> str | tuple:
    return self.draw.distribution

  def init(self, params: Params, key: jax.Array) -> tuple[Masks, Any]:
    masks, aux = self.draw.init(params, key)

    @jax.jit
    def draw(params, masks, aux, key):
      step = jnp.zeros((), jnp.int32)
      return self.draw.update(params, None, masks, aux, step, key)[0]

    return draw(params, masks, aux, jax.random.fold_in(key, 0)), ()


def random(
  sparsity: float,
  *,
  distribution: str | Mapping = "erk",
  step: int = 0,
  policy: Policy = Policy(),
) -> ScorePruner | RandomMaskPruner:
  """A random mask with exact per-leaf counts, drawn once at `step`.

  Positions are the top-k of uniform noise from the key given to
  `jaxprune.wrap` (or `jaxprune.prune`); counts follow `distribution`.
  At `step=0` (static sparse training) the masks are drawn when the
  optimizer state is created (`tx.init`): `masks_of(tx.init(params))`
  holds them, and the first update zeroes the pruned params.

  >>> random(0.9).distribution
  'erk'
  """
  draw = ScorePruner(
    score=scores.random,
    schedule=schedules.one_shot(sparsity, step),
    distribution=distribution,
    policy=policy,
    name="random",
  )
  if step == 0:
    return RandomMaskPruner(policy=policy, draw=draw)
  return draw
