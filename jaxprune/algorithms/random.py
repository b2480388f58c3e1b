"""Random pruning with layerwise ratios (uniform, ERK, ER): static sparsity."""

from collections.abc import Mapping

from jaxprune.core import schedules, scores
from jaxprune.core.policy import Policy
from jaxprune.pruner import ScorePruner


def random(
  sparsity: float,
  *,
  distribution: str | Mapping = "erk",
  step: int = 0,
  policy: Policy = Policy(),
) -> ScorePruner:
  """A random mask with exact per-leaf counts, drawn once at `step`.

  Positions are the top-k of uniform noise from the key given to
  `jaxprune.wrap` (or `jaxprune.prune`); counts follow `distribution`. At
  `step` 0 (static sparse training) `tx.init` draws the mask and the
  compiled step holds no mask update.

  >>> random(0.9).distribution
  'erk'
  """
  return ScorePruner(
    score=scores.random,
    schedule=schedules.one_shot(sparsity, step),
    distribution=distribution,
    policy=policy,
    name="random",
  )
