"""Reconstruction after structured pruning: no training, no backprop.

Removing units (hidden units, channels, FFN neurons, attention heads)
deletes input features of the layers that read them. A consuming layer
computes `y = W x + b` with `x = (x_S, x_P)`, the features of the kept and
the removed units; its kernel `K = W^T` holds one row per input feature.
Three ways to set the consuming layer after removal:

- 'none': keep `W_S` and `b` (the masked layer as it is).
- 'rescale' (Kwon et al. 2022): one scale `s_u` per kept unit,
  `y ~ sum_{u in S} s_u W_u x_u + b`, by least squares against the
  unpruned `W x + b` over the calibration inputs.
- 'liar' (Wang et al. 2024, linear interpolation): fit the removed
  features from the kept ones, `x_P ~ Q x_S + p`, by ridge least squares,
  and fold the fit in: `W_S' = W_S + W_P Q`, `b' = b + W_P p`. This is the
  least-squares consuming layer that reads only `x_S` (docs/structured.md
  derives it).

Both need only the Gram matrix of `[x_t; 1]` over calibration rows
(`moments`), streamed batch by batch. A consuming layer without a bias
whose output goes straight into a BatchNorm (a ResNet's convolution) takes
its intercept through the normalisation: in inference mode BatchNorm maps
each channel affinely, `(y - mean) * scale + shift`, so adding `c` to `y`
is subtracting `c` from the running mean (`following_norms`). Any other
layer without a bias fits `x_P ~ Q x_S` (no intercept to fold into).
"""

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.compact.compaction import kept_units
from jaxprune.compact.groups import Group, Member, Units
from jaxprune.core.tree import path_str
from jaxprune.core.types import Masks, Params
from jaxprune.posttrain.calibration import linen_rows

METHODS = ("none", "rescale", "liar")
_LINEN = (nn.Dense, nn.DenseGeneral, nn.Conv)


@contextlib.contextmanager
def _capture(paths: frozenset[str], found: dict):
  """Records `path -> (rows, n_in)` for the linen layers whose kernel
  paths are in `paths` (rows as `calibration` makes them)."""

  def interceptor(next_fn, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__" and isinstance(module, _LINEN):
      path = "/".join(("params", *module.path, "kernel"))
      if path in paths and path not in found:
        found[path] = linen_rows(module, args[0])
    return next_fn(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    yield


def following_norms(
  apply_fn: Callable[[Params, Any], Any], variables: Params, batch: Any
) -> dict[str, str]:
  """The BatchNorm that reads each linen layer's output as it is.

  Args:
    apply_fn: `apply_fn(variables, batch)` runs the model; traced, not run.
    variables: its variables.
    batch: an example batch.

  Returns:
    kernel path -> the path of that BatchNorm's running mean
    ('batch_stats/.../mean'), for the Dense, DenseGeneral and Conv layers
    whose output array is the input of a `flax.linen.BatchNorm`.

  >>> import flax.linen as nn, jax, jax.numpy as jnp
  >>> class Net(nn.Module):
  ...   @nn.compact
  ...   def __call__(self, x):
  ...     x = nn.Dense(3, use_bias=False, name='fc1')(x)
  ...     x = nn.relu(nn.BatchNorm(use_running_average=True, name='bn')(x))
  ...     return nn.Dense(2, name='fc2')(x)
  >>> x = jnp.ones((1, 4))
  >>> v = Net().init(jax.random.key(0), x)
  >>> following_norms(Net().apply, v, x)
  {'params/fc1/kernel': 'batch_stats/bn/mean'}
  """
  outputs, found = {}, {}

  def interceptor(next_fn, args, kwargs, context):
    out = next_fn(*args, **kwargs)
    module = context.module
    if context.method_name != "__call__":
      return out
    if isinstance(module, _LINEN):
      path = "/".join(("params", *module.path, "kernel"))
      outputs[id(out)] = (path, out)  # `out` held: its id stays unique
    elif isinstance(module, nn.BatchNorm) and id(args[0]) in outputs:
      path = outputs[id(args[0])][0]
      found[path] = "/".join(("batch_stats", *module.path, "mean"))
    return out

  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda v, b: apply_fn(v, b), variables, batch)
  return found


def moments(
  apply_fn: Callable[[Params, Any], Any],
  variables: Params,
  batches: Iterable[Any],
  paths: Iterable[str],
) -> dict[str, tuple[jax.Array, int]]:
  """The Gram matrix of `[x_t; 1]` over the input rows `x_t` of layers.

  Args:
    apply_fn: `apply_fn(variables, batch)` runs the model (linen layers).
    variables: its variables.
    batches: calibration batches.
    paths: kernel paths of the Dense, DenseGeneral or Conv layers to
      record ('params/layer0/output/kernel').

  Returns:
    path -> `(A, n_in)`: `A = sum_t [x_t; 1][x_t; 1]^T`, shape
    `(d_in + 1, d_in + 1)`, float32 (its last row and column hold
    `sum_t x_t` and the row count), and the number of leading kernel axes
    that are inputs.

  Raises:
    ValueError: naming the paths no layer of the model matched.

  >>> import flax.linen as nn, jax, jax.numpy as jnp
  >>> model = nn.Dense(2)
  >>> v = model.init(jax.random.key(0), jnp.ones((1, 2)))
  >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  >>> a, n_in = moments(model.apply, v, [x], ['params/kernel'])['params/kernel']
  >>> a.tolist(), n_in
  ([[10.0, 14.0, 4.0], [14.0, 20.0, 6.0], [4.0, 6.0, 2.0]], 1)
  """
  paths = frozenset(paths)

  def grams(variables, batch):
    found = {}
    with _capture(paths, found):
      apply_fn(variables, batch)
    out, axes = {}, {}
    for path, (rows, n_in) in found.items():
      rows = rows.astype(jnp.float32)
      rows = jnp.concatenate([rows, jnp.ones((rows.shape[0], 1))], axis=1)
      out[path] = jax.lax.dot_general(
        rows, rows, (((0,), (0,)), ((), ())), precision="highest"
      )
      axes[path] = n_in
    return out, axes

  @jax.jit
  def step(total, variables, batch):
    return jax.tree.map(jnp.add, total, grams(variables, batch)[0])

  total, n_in = None, {}
  for batch in batches:
    if total is None:
      found = {}
      with _capture(paths, found):  # a new function: traced, not cached
        jax.eval_shape(lambda v, b: apply_fn(v, b), variables, batch)
      n_in = {p: n for p, (_, n) in found.items()}
      missing = sorted(paths - set(n_in))
      if missing:
        raise ValueError(
          f"no Dense, DenseGeneral or Conv layer of the model has the "
          f"kernel paths {missing}"
        )
      total = {
        p: jnp.zeros((r.shape[-1] + 1,) * 2, jnp.float32)
        for p, (r, _) in found.items()
      }
    total = step(total, variables, batch)
  if total is None:
    raise ValueError("moments needs at least one calibration batch")
  return {p: (total[p], n_in[p]) for p in total}


def _solve(a: np.ndarray, b: np.ndarray, ridge: float, free: int = 0):
  """`(a + damp I) x = b`, the damping `ridge * mean(diag(a))` left off
  the last `free` rows (an intercept)."""
  n = a.shape[0] - free
  damp = np.zeros(a.shape[0])
  damp[:n] = ridge * max(float(np.mean(np.diag(a)[:n])), 1e-12)
  return np.linalg.lstsq(a + np.diag(damp), b, rcond=None)[0]


def _check(name, keep, d_in):
  keep = np.asarray(keep, bool)
  if keep.shape != (d_in,):
    raise ValueError(
      f"{name}: keep has shape {keep.shape}; expected ({d_in},), one entry "
      "per input feature of the kernel"
    )
  if not keep.any():
    raise ValueError(f"{name}: keep removes every input feature")
  return keep


def _check_gram(gram, d_in):
  gram = np.asarray(gram, np.float64)
  if gram.shape != (d_in + 1, d_in + 1):
    raise ValueError(
      f"gram has shape {gram.shape}; expected {(d_in + 1, d_in + 1)}: "
      "sum_t [x_t; 1][x_t; 1]^T over the kernel's input features"
    )
  return gram


def fold_in(
  kernel: jax.Array,
  bias: jax.Array | None,
  gram: jax.Array,
  keep: np.ndarray,
  ridge: float = 1e-4,
) -> tuple[jax.Array, jax.Array | None]:
  """LIAR's fold-in: the consuming layer that best reads only kept inputs.

  Args:
    kernel: `(d_in, d_out)`, rows are input features.
    bias: `(d_out,)`, or None for a layer without one (then no intercept
      is fitted).
    gram: `(d_in + 1, d_in + 1)` from `moments`.
    keep: bool `(d_in,)`, the input features that stay.
    ridge: damping of the fit of `x_P` from `x_S`, relative to the mean
      squared kept input.

  Returns:
    The kernel (removed rows zero) and the bias.

  Raises:
    ValueError: for shapes that do not fit, or a `keep` with no feature.

  >>> k = jnp.array([[1.0], [2.0]])
  >>> x = jnp.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])  # x_1 = 2 x_0
  >>> a = jnp.concatenate([x, jnp.ones((3, 1))], 1)
  >>> k2, b2 = fold_in(k, jnp.ones(1), a.T @ a, [True, False], ridge=0.0)
  >>> k2.round(4).tolist(), b2.round(4).tolist()
  ([[5.0], [0.0]], [1.0])
  """
  kernel = np.asarray(kernel, np.float64)
  keep = _check("fold_in", keep, kernel.shape[0])
  a = _check_gram(gram, kernel.shape[0])
  fit = np.append(keep, bias is not None)  # the ones column is last
  removed = np.append(~keep, False)
  c = _solve(
    a[np.ix_(fit, fit)], a[np.ix_(fit, removed)], ridge, bias is not None
  )
  out = np.zeros_like(kernel)
  out[keep] = kernel[keep] + c[: keep.sum()] @ kernel[~keep]
  if bias is None:
    return jnp.asarray(out, jnp.float32), None
  new_bias = np.asarray(bias, np.float64) + c[-1] @ kernel[~keep]
  return jnp.asarray(out, jnp.float32), jnp.asarray(new_bias, jnp.float32)


def rescale(
  kernel: jax.Array,
  gram: jax.Array,
  unit: np.ndarray,
  keep: np.ndarray,
  ridge: float = 1e-4,
) -> np.ndarray:
  """Kwon et al.'s scales: one per kept unit of a consuming layer.

  Minimises `sum_t ||W x_t - sum_{u kept} s_u W_u x_{u,t}||^2` (the bias
  cancels), where `W_u x_u` is what unit u's input features contribute.
  With `H = (K K^T) * G` (elementwise; `G = sum_t x_t x_t^T`), the normal
  equations are `M s = r` with `M_uv = sum_{f in u, g in v} H_fg` over kept
  units and `r_u = sum_{f in u} sum_g H_fg`.

  Args:
    kernel: `(d_in, d_out)`.
    gram: `(d_in + 1, d_in + 1)` from `moments` (the ones column unused).
    unit: int `(d_in,)`, the unit each input feature belongs to, in
      `[0, len(keep))`.
    keep: bool, one per unit.
    ridge: damping relative to the mean diagonal of `M`.

  Returns:
    float64 scales, one per unit (0 for removed ones): multiply kernel row
    f by `scales[unit[f]]`.

  >>> k = jnp.array([[1.0], [1.0]])
  >>> x = jnp.array([[1.0, 1.0], [2.0, 2.0]])  # two equal features
  >>> a = jnp.concatenate([x, jnp.ones((2, 1))], 1)
  >>> rescale(k, a.T @ a, [0, 1], [True, False], ridge=0.0).round(6).tolist()
  [2.0, 0.0]
  """
  kernel = np.asarray(kernel, np.float64)
  d_in = kernel.shape[0]
  gram = _check_gram(gram, d_in)[:d_in, :d_in]
  keep = np.asarray(keep, bool)
  unit = np.asarray(unit)
  if unit.shape != (d_in,) or unit.min() < 0 or unit.max() >= keep.size:
    raise ValueError(
      f"rescale: unit must give each of the {d_in} input features a unit "
      f"in [0, {keep.size}); got shape {unit.shape}, range "
      f"[{unit.min()}, {unit.max()}]"
    )
  _check("rescale", keep[unit], d_in)
  h = (kernel @ kernel.T) * gram
  onehot = np.eye(keep.size)[unit]  # (d_in, units)
  m = onehot.T @ h @ onehot
  r = onehot.T @ h.sum(axis=1)
  scales = np.zeros(keep.size)
  scales[keep] = _solve(m[np.ix_(keep, keep)], r[keep], ridge)
  return scales


def _feature_units(member: Member, in_shape: tuple[int, ...]) -> np.ndarray:
  """The unit of each flattened input feature of a consuming kernel, -1
  where the feature is not the group's."""
  along = np.full(in_shape[member.axis], -1)
  for u, indices in enumerate(member.indices):
    along[list(indices)] = u
  shape = [1] * len(in_shape)
  shape[member.axis] = -1
  return np.broadcast_to(along.reshape(shape), in_shape).reshape(-1)


def _leaves(variables):
  return {path_str(p): x for p, x in jax.tree.leaves_with_path(variables)}


def _consume(method, kernel, bias, gram, n_in, member, keep, ridge):
  """The consuming layer's kernel and bias after 'rescale' or 'liar'."""
  in_shape = kernel.shape[:n_in]
  if member.axis >= n_in:
    raise ValueError(
      f"'{member.path}' reads the units along axis {member.axis}, which is "
      f"not one of its {n_in} input axes"
    )
  unit = _feature_units(member, in_shape)
  matrix = kernel.reshape(int(np.prod(in_shape)), -1)
  mine = unit >= 0
  features = ~mine | keep[np.maximum(unit, 0)]
  if method == "liar":
    matrix, bias = fold_in(matrix, bias, gram, features, ridge)
  elif method == "rescale":
    # Features of other groups keep their weights: the residual to fit is
    # this group's contribution alone, so the fit reads only its block.
    block = np.append(mine, True)
    scales = rescale(
      np.asarray(matrix)[mine],
      np.asarray(gram)[np.ix_(block, block)],
      unit[mine],
      keep,
      ridge,
    )
    factor = np.ones(len(unit))
    factor[mine] = scales[unit[mine]]
    matrix = jnp.asarray(np.asarray(matrix) * factor[:, None])
  return jnp.reshape(matrix, kernel.shape).astype(kernel.dtype), bias


def _remove(leaves, group: Group, keep: np.ndarray) -> None:
  """Zeroes, in `leaves`, every slice of the units `keep` drops."""
  for member in group.members:
    indices = group.owned(member, keep)
    x = np.array(leaves[member.path])
    index = [slice(None)] * x.ndim
    index[member.axis] = indices
    x[tuple(index)] = 0
    leaves[member.path] = jnp.asarray(x)


def reconstruct(
  apply_fn: Callable[[Params, Any], Any],
  variables: Params,
  masks: Masks,
  units: Units,
  batches: Iterable[Any],
  method: str = "liar",
  ridge: float = 1e-4,
) -> Params:
  """Removes the units `masks` prune and resets the layers that read them.

  Sequential: groups go in the order of `units.groups`; each group's
  consuming layers are calibrated on the model with every earlier group
  already removed and reconstructed (and this one still whole), so the
  target of each fit is the consuming layer's unpruned output on the
  inputs it will see. A consuming layer that also reads other groups'
  features keeps their weights ('rescale' scales only this group's); one
  without a bias that feeds a BatchNorm gets its 'liar' intercept through
  the norm's running mean (`following_norms`).

  Args:
    apply_fn: `apply_fn(variables, batch)` runs the model (linen layers).
    variables: all its variables.
    masks: unit masks (whole units pruned in the kernels that compute
      them: `jaxprune.Channel` or `jaxprune.compact.select_units` masks).
    units: `find_groups(...)` of the model.
    batches: calibration batches (a sequence: read once per group).
    method: 'none', 'rescale' or 'liar' (see the module docstring).
    ridge: relative damping of the least-squares fits.

  Returns:
    The variables with every slice of the removed units zero (what
    `compact` then drops) and the consuming layers reconstructed.

  Raises:
    ValueError: for an unknown method, and as `compact.kept_units`.
  """
  if method not in METHODS:
    raise ValueError(f"method={method!r}: expected one of {list(METHODS)}")
  if not ridge >= 0:
    raise ValueError(f"ridge={ridge!r}: expected a number >= 0")
  batches = list(batches)
  keeps = kept_units(variables, masks, units)
  norms = following_norms(apply_fn, variables, batches[0]) if batches else {}
  leaves = _leaves(variables)
  for group, keep in zip(units.groups, keeps, strict=True):
    if keep.all():
      continue
    readers = [m for m in group.members if m.role == "in"]
    if method != "none" and readers:
      current = jax.tree.unflatten(
        jax.tree.structure(variables), list(leaves.values())
      )
      stats = moments(apply_fn, current, batches, [m.path for m in readers])
    for member in readers if method != "none" else ():
      path = member.path
      bias_path = path.rsplit("/", 1)[0] + "/bias"
      bias = leaves.get(bias_path)
      norm = None if bias_path in leaves else norms.get(path)
      if norm is not None:  # the intercept goes into the norm's mean
        bias = jnp.zeros(leaves[norm].shape, jnp.float32)
      gram, n_in = stats[path]
      leaves[path], bias = _consume(
        method, leaves[path], bias, gram, n_in, member, keep, ridge
      )
      if norm is not None:
        leaves[norm] = (leaves[norm] - bias).astype(leaves[norm].dtype)
      elif bias is not None:
        leaves[bias_path] = bias
    _remove(leaves, group, keep)
  return jax.tree.unflatten(
    jax.tree.structure(variables), list(leaves.values())
  )
