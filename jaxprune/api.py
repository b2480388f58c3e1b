"""One-shot pruning and pruners from configs."""

import inspect
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune.algorithms import ALGORITHMS
from jaxprune.core import scores as scores_lib
from jaxprune.core.policy import Policy
from jaxprune.core.schedules import one_shot
from jaxprune.core.tree import apply_masks
from jaxprune.core.types import Masks, Params
from jaxprune.pruner import NM, Channel, ScorePruner


def prune(
  params: Params,
  sparsity: float,
  *,
  score: str = "magnitude",
  distribution: str | Mapping = "uniform",
  min_fraction: float = 0.0,
  structure: NM | Channel | None = None,
  policy: Policy = Policy(),
  grads: Params | None = None,
  key: jax.Array | None = None,
) -> tuple[Params, Masks]:
  """Prunes `params` once, with no optimizer.

  Args:
    params: any pytree of arrays.
    sparsity: fraction of the prunable entries removed, in [0, 1].
    score: 'magnitude', 'random' (needs `key`), 'saliency' (needs `grads`),
      or a score function `(params, grads, key) -> scores`.
    distribution: 'uniform', 'erk', 'er', 'global' or a path-pattern map.
    min_fraction: minimum kept per leaf under 'global', as a fraction of all
      prunable entries.
    structure: None, `jaxprune.NM(m)` or `jaxprune.Channel()`.
    policy: which leaves are pruned (`jaxprune.Policy`).
    grads: gradients for gradient-based scores.
    key: a `jax.random` key for random scores.

  Returns:
    `(params * masks, masks)`.

  Raises:
    ValueError: for a sparsity outside [0, 1], an unknown score or
      distribution, a missing key or gradient, or non-finite scores.

  >>> import jax.numpy as jnp, jaxprune
  >>> params = {'w': jnp.array([[0.1, -3.0], [2.0, 0.5]]), 'b': jnp.ones(2)}
  >>> pruned, masks = jaxprune.prune(params, 0.5)
  >>> pruned['w'], masks['b']
  (Array([[ 0., -3.],
         [ 2.,  0.]], dtype=float32), None)
  """
  if isinstance(score, str):
    if score not in scores_lib.SCORES:
      raise ValueError(
        f"score='{score}' is unknown; expected one of "
        f"{list(scores_lib.SCORES)} or a function"
      )
    score = scores_lib.SCORES[score]
  if score is scores_lib.random and key is None:
    raise ValueError("score='random' needs key=jax.random.key(...)")
  pruner = ScorePruner(
    score=score,
    schedule=one_shot(sparsity),
    distribution=distribution,
    min_fraction=min_fraction,
    structure=structure,
    policy=policy,
    name="prune",
  )
  key = jax.random.key(0) if key is None else key
  masks, aux = pruner.init(params, key)
  masks, _ = pruner.update(params, grads, masks, aux, jnp.int32(0), key)
  return apply_masks(params, masks), masks


def create(config: Mapping | Any) -> ScorePruner:
  """Builds a pruner from a config with an `algorithm` name.

  Every other key is passed to the algorithm's factory under the same name
  (see `jaxprune.algorithms`); a `policy` entry is a mapping of `Policy`
  fields.

  >>> import jaxprune
  >>> p = jaxprune.create({'algorithm': 'gradual_magnitude',
  ...   'final_sparsity': 0.9, 'begin': 0, 'end': 100, 'frequency': 10})
  >>> p.name
  'gradual_magnitude'

  Raises:
    ValueError: for a missing or unknown algorithm (listing the known ones)
      or a key the factory does not take (listing the ones it does).
  """
  fields = dict(config.to_dict() if hasattr(config, "to_dict") else config)
  name = fields.pop("algorithm", None)
  if name not in ALGORITHMS:
    raise ValueError(
      f"algorithm={name!r} is unknown; known algorithms: {sorted(ALGORITHMS)}"
    )
  factory = ALGORITHMS[name]
  accepted = inspect.signature(factory).parameters
  unknown = sorted(set(fields) - set(accepted))
  if unknown:
    raise ValueError(
      f"algorithm '{name}' takes no {unknown}; it takes {list(accepted)}"
    )
  if "policy" in fields and isinstance(fields["policy"], Mapping):
    fields["policy"] = Policy(**fields["policy"])
  return factory(**fields)
