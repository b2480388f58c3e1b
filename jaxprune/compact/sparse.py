"""Unstructured masks at high sparsity: dense kernels as BCSR matrices.

`jax.experimental.sparse` is a reference implementation, fast only at high
sparsity: on this project's CPUs BCSR beat a dense jitted matmul from
about 95% sparsity at batch 256 and 98-99% at batch 1, and lost below
(benchmarks/inference.py, docs/compact.md). So `export_bcsr` converts only the
dense-layer kernels at or above `min_sparsity`, and `apply_sparse` runs a
Flax model with those layers computed from BCSR, every other layer as is.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from jaxprune.core.tree import apply_masks, check_masks, path_str
from jaxprune.core.types import Masks, Params

MIN_SPARSITY = 0.95
"""The sparsity from which BCSR beat dense at batch 256 here (see above)."""


def to_bcsr(kernel: jax.Array) -> sparse.BCSR:
  """A `(in, out)` dense kernel as BCSR of its transpose, `(out, in)`, the
  operand `sparse_matmul` takes.

  >>> import jax.numpy as jnp
  >>> k = jnp.array([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
  >>> sparse_matmul(jnp.ones((1, 3)), to_bcsr(k))
  Array([[3., 2.]], dtype=float32)
  """
  return sparse.BCSR.fromdense(jnp.asarray(kernel).T)


def sparse_matmul(x: jax.Array, kernel_t: sparse.BCSR) -> jax.Array:
  """`x @ kernel` for `kernel_t = to_bcsr(kernel)`, any leading axes."""
  lead = x.shape[:-1]
  y = kernel_t @ x.reshape(-1, x.shape[-1]).T
  return y.T.reshape(*lead, kernel_t.shape[0])


def export_bcsr(
  params: Params, masks: Masks, min_sparsity: float = MIN_SPARSITY
) -> dict[str, sparse.BCSR]:
  """The 2-D masked kernels at `min_sparsity` or more, as BCSR, by path.

  Raises:
    ValueError: for `min_sparsity` outside [0, 1], or masks that do not
      match `params` (naming the leaf).
  """
  if not 0.0 <= min_sparsity <= 1.0:
    raise ValueError(f"min_sparsity={min_sparsity}: expected a fraction")
  check_masks(params, masks)
  masked = apply_masks(params, masks)
  out = {}
  flat = jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
  values = dict((path_str(p), x) for p, x in jax.tree.leaves_with_path(masked))
  for p, m in flat:
    if m is None or np.ndim(m) != 2:
      continue
    if 1.0 - np.count_nonzero(m) / np.size(m) >= min_sparsity:
      out[path_str(p)] = to_bcsr(values[path_str(p)])
  return out


def apply_sparse(
  apply_fn: Callable[..., Any],
  variables: Params,
  kernels: dict[str, sparse.BCSR],
  *args,
  **kwargs,
) -> Any:
  """`apply_fn(variables, *args, **kwargs)` with every `nn.Dense` whose
  kernel path is in `kernels` computed from its BCSR matrix (jit it as a
  whole; the BCSR matrices may be arguments).

  Raises:
    ValueError: if a path of `kernels` names no dense layer the model ran.
  """
  used = set()

  def intercept(next_fun, args_, kwargs_, context):
    module = context.module
    if not isinstance(module, nn.Dense) or context.method_name != "__call__":
      return next_fun(*args_, **kwargs_)
    path = "/".join(("params", *module.path, "kernel"))
    if path not in kernels:
      return next_fun(*args_, **kwargs_)
    used.add(path)
    y = sparse_matmul(args_[0], kernels[path])
    if module.use_bias:
      y = y + module.get_variable("params", "bias")
    return y

  with nn.intercept_methods(intercept):
    out = apply_fn(variables, *args, **kwargs)
  unused = sorted(set(kernels) - used)
  if unused:
    raise ValueError(
      f"no dense layer of the model reads {unused}; BCSR kernels replace "
      "nn.Dense kernels, named by their paths ('params/fc1/kernel')"
    )
  return out
