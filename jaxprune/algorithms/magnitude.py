"""Magnitude pruning: layerwise, global with a per-layer minimum, gradual."""

from collections.abc import Mapping

from jaxprune.core import schedules, scores
from jaxprune.core.policy import Policy
from jaxprune.pruner import NM, Channel, ScorePruner


def magnitude(
  sparsity: float,
  *,
  step: int = 0,
  distribution: str | Mapping = "uniform",
  structure: NM | Channel | None = None,
  policy: Policy = Policy(),
) -> ScorePruner:
  """One-shot magnitude pruning at `step`, each leaf by its own ranking.

  >>> p = magnitude(0.9)
  >>> p.name, round(float(p.schedule.sparsity(0)), 6)
  ('magnitude', 0.9)
  """
  return ScorePruner(
    score=scores.magnitude,
    schedule=schedules.one_shot(sparsity, step),
    distribution=distribution,
    structure=structure,
    policy=policy,
    name="magnitude",
  )


def global_magnitude(
  sparsity: float,
  *,
  step: int = 0,
  min_fraction: float = 0.0005,
  policy: Policy = Policy(),
) -> ScorePruner:
  """One-shot global magnitude pruning with a minimum per layer (Global MP).

  All prunable weights are ranked together by |w|, with no per-layer
  normalisation; every leaf keeps at least `int(min_fraction * N)` weights
  (Gupta et al. 2022 use 0.05% of all weights), or all of them if smaller.

  >>> global_magnitude(0.95).min_fraction
  0.0005
  """
  return ScorePruner(
    score=scores.magnitude,
    schedule=schedules.one_shot(sparsity, step),
    distribution="global",
    min_fraction=min_fraction,
    policy=policy,
    name="global_magnitude",
  )


def gradual_magnitude(
  final_sparsity: float,
  *,
  begin: int,
  end: int,
  frequency: int,
  initial_sparsity: float = 0.0,
  power: int = 3,
  distribution: str | Mapping = "uniform",
  min_fraction: float = 0.0,
  structure: NM | Channel | None = None,
  policy: Policy = Policy(),
) -> ScorePruner:
  """Zhu & Gupta gradual magnitude pruning on the polynomial schedule.

  Masks are recomputed every `frequency` steps in [begin, end] and at `end`,
  where the sparsity is exactly `final_sparsity`. With `NM(m)` the kept
  count per group steps down from m to `kept_count(m, final_sparsity)`;
  with `Channel` whole channels go, per leaf.

  >>> p = gradual_magnitude(0.9, begin=0, end=1000, frequency=100)
  >>> round(float(p.schedule.sparsity(100)), 3)
  0.244
  """
  return ScorePruner(
    score=scores.magnitude,
    schedule=schedules.polynomial(
      final_sparsity, begin, end, frequency, initial_sparsity, power
    ),
    distribution=distribution,
    min_fraction=min_fraction,
    structure=structure,
    policy=policy,
    name="gradual_magnitude",
  )
