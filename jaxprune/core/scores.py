"""Scores as pure functions of (params, grads, key); higher is kept."""

import jax
import jax.numpy as jnp

from jaxprune.core.types import Params, Scores


def magnitude(params: Params, grads: Params | None, key: jax.Array) -> Scores:
  """|w|.

  >>> import jax, jax.numpy as jnp
  >>> magnitude({'w': jnp.array([-2.0, 1.0])}, None, jax.random.key(0))
  {'w': Array([2., 1.], dtype=float32)}
  """
  del grads, key
  return jax.tree.map(jnp.abs, params)


def random(params: Params, grads: Params | None, key: jax.Array) -> Scores:
  """Uniform noise from `key`, one independent stream per leaf."""
  del grads
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  noise = [
    jax.random.uniform(k, jnp.shape(x))
    for k, x in zip(keys, leaves, strict=True)
  ]
  return jax.tree.unflatten(treedef, noise)


def saliency(params: Params, grads: Params | None, key: jax.Array) -> Scores:
  """|w * g| (first-order loss change of removing w; SNIP's criterion).

  Raises:
    ValueError: if no gradient is given.
  """
  del key
  if grads is None:
    raise ValueError(
      "the saliency score needs gradients: prune inside jaxprune.wrap's "
      "update, or pass grads= to jaxprune.prune"
    )
  return jax.tree.map(lambda w, g: jnp.abs(w * g), params, grads)


SCORES = {"magnitude": magnitude, "random": random, "saliency": saliency}
"""Named scores, for configs."""


def needs_grads(score) -> bool:
  """Whether a score reads the gradient (only `saliency` of the built-ins;
  user scores are assumed to)."""
  return score not in (magnitude, random)
