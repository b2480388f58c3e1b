"""Saliency pruning: |w * g|, the first-order estimate of a weight's effect."""

from collections.abc import Mapping

from jaxprune.core import schedules, scores
from jaxprune.core.policy import Policy
from jaxprune.pruner import ScorePruner


def saliency(
  sparsity: float,
  *,
  step: int = 0,
  distribution: str | Mapping = "uniform",
  min_fraction: float = 0.0,
  policy: Policy = Policy(),
) -> ScorePruner:
  """One-shot pruning by |w * g| at `step`, with the step's dense gradient.

  >>> saliency(0.5, distribution='global').distribution
  'global'
  """
  return ScorePruner(
    score=scores.saliency,
    schedule=schedules.one_shot(sparsity, step),
    distribution=distribution,
    min_fraction=min_fraction,
    policy=policy,
    name="saliency",
  )
