"""One-shot pruning and pruners from configs."""

import dataclasses
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
from jaxprune.posttrain.method import PostTrain
from jaxprune.pruner import NM, Channel, ScorePruner, all_kept


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
  dense = all_kept(params, policy)
  masks, _ = pruner.update(params, grads, dense, (), jnp.int32(0), key)
  return apply_masks(params, masks), masks


def create(config: Mapping | Any) -> ScorePruner | PostTrain:
  """Builds a pruner from a config with an `algorithm` name.

  `algorithm='posttrain'` builds a post-training method instead
  (`jaxprune.posttrain.PostTrain`: `method` 'magnitude', 'wanda',
  'sparsegpt' or 'least_squares', `sparsity` or `nm`, ...), called as
  `method(model, params, batches)`.

  Every other key is passed to the algorithm's factory under the same name
  (see `jaxprune.algorithms`); a `policy` entry is a mapping of `Policy`
  fields; a `structure` entry is a mapping with a `kind`, 'nm' (fields `m`,
  `axis`: `jaxprune.NM`) or 'channel' (field `axis`: `jaxprune.Channel`).

  >>> import jaxprune
  >>> p = jaxprune.create({'algorithm': 'gradual_magnitude',
  ...   'final_sparsity': 0.9, 'begin': 0, 'end': 100, 'frequency': 10})
  >>> p.name
  'gradual_magnitude'
  >>> jaxprune.create({'algorithm': 'magnitude', 'sparsity': 0.5,
  ...   'structure': {'kind': 'nm', 'm': 4, 'axis': -2}}).structure
  NM(m=4, axis=-2)

  Raises:
    ValueError: for a missing or unknown algorithm (listing the known ones),
      a key the factory does not take (listing the ones it does), or a
      structure with an unknown kind, field or value.
  """
  fields = dict(config.to_dict() if hasattr(config, "to_dict") else config)
  name = fields.pop("algorithm", None)
  factories = {**ALGORITHMS, "posttrain": PostTrain}
  if name not in factories:
    raise ValueError(
      f"algorithm={name!r} is unknown; known algorithms: {sorted(factories)}"
    )
  factory = factories[name]
  accepted = inspect.signature(factory).parameters
  unknown = sorted(set(fields) - set(accepted))
  if unknown:
    raise ValueError(
      f"algorithm '{name}' takes no {unknown}; it takes {list(accepted)}"
    )
  if "policy" in fields and isinstance(fields["policy"], Mapping):
    fields["policy"] = Policy(**fields["policy"])
  if "structure" in fields:
    fields["structure"] = structure_of(fields["structure"])
  return factory(**fields)


STRUCTURES = {"nm": NM, "channel": Channel}
"""Structure classes by the `kind` a config names them with."""


def structure_of(value: Mapping | NM | Channel | None) -> NM | Channel | None:
  """A structure from its config form: `{'kind': 'nm', 'm': 4, 'axis': -2}`,
  `{'kind': 'channel', 'axis': -1}` (omitted fields take the class
  defaults), or None; structures and None pass through.

  >>> structure_of({'kind': 'channel'})
  Channel(axis=-1)

  Raises:
    ValueError: naming the field, the value and what is expected, for
      anything else.
  """
  if value is None or isinstance(value, NM | Channel):
    return value
  if not isinstance(value, Mapping):
    raise ValueError(
      f"structure={value!r}: expected None, jaxprune.NM, jaxprune.Channel or "
      f"a mapping with a kind in {list(STRUCTURES)}"
    )
  fields = dict(value)
  kind = fields.pop("kind", None)
  if kind not in STRUCTURES:
    raise ValueError(
      f"structure.kind={kind!r}: expected one of {list(STRUCTURES)} "
      "('nm': N:M groups along an axis; 'channel': whole slices)"
    )
  cls = STRUCTURES[kind]
  accepted = [f.name for f in dataclasses.fields(cls)]
  unknown = sorted(set(fields) - set(accepted))
  if unknown:
    hint = " (n follows from the sparsity: 1 - n/m)" if kind == "nm" else ""
    raise ValueError(
      f"structure of kind '{kind}' takes no {unknown}; it takes "
      f"{accepted}{hint}"
    )
  try:
    return cls(**fields)
  except ValueError as e:
    raise ValueError(f"structure.{e}") from None
