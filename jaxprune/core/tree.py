"""Key-path helpers: every jaxprune function walks pytrees through these."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune.core.types import Masks, Params


def _key_name(key: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def path_str(path: tuple[Any, ...]) -> str:
  """Writes a jax key path as 'a/b/0/kernel'.

  >>> import jax
  >>> [path_str(p) for p, _ in jax.tree.leaves_with_path({'a': [1, 2]})]
  ['a/0', 'a/1']
  """
  return "/".join(_key_name(k) for k in path)


def leaf_name(path: str) -> str:
  """The last meaningful component of a path ('value' of nnx is skipped)."""
  parts = path.split("/")
  if len(parts) > 1 and parts[-1] == "value":
    return parts[-2]
  return parts[-1]


def _is_none(x: Any) -> bool:
  return x is None


def map_masked(
  fn: Callable[..., Any], masks: Masks, *trees: Any, absent: Any = None
) -> Any:
  """Maps `fn(mask, *leaves)` over leaves whose mask is not `None`.

  Leaves without a mask become `absent(*leaves)` if `absent` is callable,
  else the value `absent`.
  """

  def go(mask, *leaves):
    if mask is None:
      return absent(*leaves) if callable(absent) else absent
    return fn(mask, *leaves)

  return jax.tree.map(go, masks, *trees, is_leaf=_is_none)


def check_masks(params: Params, masks: Masks) -> None:
  """Raises ValueError unless `masks` matches `params` leaf for leaf.

  Args:
    params: the parameter pytree.
    masks: a pytree with the same structure, bool arrays of the same shape
      as the parameter, or `None` for leaves that are not pruned.

  Raises:
    ValueError: naming the first leaf path whose structure, shape or dtype
      does not match.
  """
  p_paths = jax.tree.leaves_with_path(params)
  m_paths = jax.tree.leaves_with_path(masks, is_leaf=_is_none)
  p_keys = [path_str(p) for p, _ in p_paths]
  m_keys = [path_str(p) for p, _ in m_paths]
  if p_keys != m_keys:
    missing = sorted(set(p_keys) - set(m_keys))
    extra = sorted(set(m_keys) - set(p_keys))
    raise ValueError(
      "masks do not match the params tree: "
      f"params leaves missing from masks: {missing or 'none'}; "
      f"mask leaves not in params: {extra or 'none'}"
    )
  for key, (_, p), (_, m) in zip(p_keys, p_paths, m_paths, strict=True):
    if m is None:
      continue
    if getattr(m, "shape", None) != getattr(p, "shape", None):
      raise ValueError(
        f"mask for '{key}' has shape {getattr(m, 'shape', None)}, expected "
        f"the parameter's shape {getattr(p, 'shape', None)}"
      )
    if getattr(m, "dtype", None) != jnp.bool_:
      raise ValueError(
        f"mask for '{key}' has dtype {getattr(m, 'dtype', None)}, expected bool"
      )


def apply_masks(params: Params, masks: Masks) -> Params:
  """Zeroes the pruned entries: `params * masks`, unmasked leaves as is.

  >>> import jax.numpy as jnp
  >>> apply_masks({'w': jnp.ones(3)}, {'w': jnp.array([True, False, True])})
  {'w': Array([1., 0., 1.], dtype=float32)}

  Raises:
    ValueError: unless `masks` matches `params` leaf for leaf (see
      `check_masks`): a mask is never broadcast.
  """
  check_masks(params, masks)
  return map_masked(
    lambda m, p: jnp.where(m, p, jnp.zeros((), p.dtype)),
    masks,
    params,
    absent=lambda p: p,
  )
