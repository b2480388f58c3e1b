"""Calibration: the inputs of a model's prunable layers, as statistics.

A model runs on calibration batches while every call of a Dense,
DenseGeneral or Conv layer is intercepted; the layer's input becomes rows
`x_t` (one per token, pixel or patch position) and only their Gram matrix
`sum_t x_t x_t^T` and count are kept (`solvers.Stats`), summed batch by
batch in one jitted step, so activations are never held.

- linen: `flax.linen.intercept_methods` sees every submodule call; a layer
  is named by its kernel's path, `params/<module path>/kernel`.
- nnx: `nnx.Linear` and `nnx.Conv` have no interception hook, so while the
  model is traced their class `__call__` is replaced by one that records
  the input of the instances being calibrated (found with `nnx.iter_graph`)
  and restored afterwards; a layer is named `<path>/kernel/value`, as
  `nnx.State` paths read. (Not thread-safe while tracing.)

Conv inputs become patches with `jax.lax.conv_general_dilated_patches`,
reordered to the kernel's `(kh, kw, c_in)` flattening, so a conv kernel is
the matrix of a Dense layer over its patches.
"""

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import flax.errors
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxprune.posttrain.solvers import Stats


@dataclasses.dataclass(frozen=True)
class Layer:
  """A prunable layer as calibration found it.

  Attributes:
    path: its kernel's key path ('params/block_0/query/kernel').
    n_in: leading kernel axes that are inputs (1 for Dense, the number of
      contracted axes for DenseGeneral, 3 for a 2-D Conv).
    module: 'Dense', 'DenseGeneral', 'Conv' (linen) or 'Linear', 'Conv'
      (nnx), for reports.
  """

  path: str
  n_in: int
  module: str


def _padding(padding: Any, n: int) -> Any:
  if isinstance(padding, str):
    if padding.upper() in ("SAME", "VALID"):
      return padding.upper()
    raise ValueError(f"Conv padding={padding!r} is not supported")
  if isinstance(padding, int):
    return [(padding, padding)] * n
  return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def conv_patches(
  x: jax.Array,
  kernel_size: Sequence[int],
  strides: Sequence[int] | int | None = 1,
  padding: Any = "SAME",
  input_dilation: Sequence[int] | int | None = 1,
  kernel_dilation: Sequence[int] | int | None = 1,
) -> jax.Array:
  """Patches of an NHWC (or N, spatial..., C) input, one row per output
  position, features in the order of a flax kernel `(*kernel_size, c_in)`
  flattened: `conv(x, k) == patches @ k.reshape(-1, c_out)`.

  >>> x = jnp.arange(2 * 4 * 4 * 3.0).reshape(2, 4, 4, 3)
  >>> conv_patches(x, (3, 3), padding='VALID').shape
  (8, 27)
  """
  n = len(kernel_size)

  def tup(v):
    return (1,) * n if v is None else (v,) * n if isinstance(v, int) else v

  spatial = "HWD"[:n] if n <= 3 else None
  dims = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
  patches = jax.lax.conv_general_dilated_patches(
    x,
    filter_shape=tuple(kernel_size),
    window_strides=tup(strides),
    padding=_padding(padding, n),
    lhs_dilation=tup(input_dilation),
    rhs_dilation=tup(kernel_dilation),
    dimension_numbers=dims,
  )
  c = x.shape[-1]
  # Patch features come as (c_in, *kernel_size); flax kernels flatten
  # (*kernel_size, c_in).
  patches = patches.reshape(-1, c, int(np.prod(kernel_size)))
  return jnp.swapaxes(patches, 1, 2).reshape(-1, c * int(np.prod(kernel_size)))


def linen_rows(module: nn.Module, x: jax.Array) -> tuple[jax.Array, int]:
  """The input of a linen Dense, DenseGeneral or Conv layer as rows.

  A layer's kernel is the matrix of a Dense layer over these rows: one row
  per token, pixel or output position (`conv_patches` for a Conv), its
  features flattened in the order of the kernel's input axes.

  Args:
    module: the layer (bound or not; only its attributes are read).
    x: its input.

  Returns:
    `(rows, n_in)`: rows `(positions, features)` and the number of
    leading kernel axes that are inputs (1 for Dense, the contracted axes
    for DenseGeneral, spatial axes + 1 for Conv).

  Raises:
    ValueError: for DenseGeneral with `batch_dims` or a grouped Conv.

  >>> import flax.linen as nn
  >>> rows, n_in = linen_rows(nn.Conv(4, (3, 3)), jnp.zeros((2, 5, 5, 3)))
  >>> rows.shape, n_in
  ((50, 27), 3)
  """
  if isinstance(module, nn.Dense):
    return x.reshape(-1, x.shape[-1]), 1
  if isinstance(module, nn.DenseGeneral):
    if module.batch_dims:
      raise ValueError("DenseGeneral with batch_dims is not supported")
    axis = module.axis if isinstance(module.axis, Sequence) else (module.axis,)
    axis = tuple(sorted(a % x.ndim for a in axis))  # as flax orders them
    rest = [a for a in range(x.ndim) if a not in axis]
    moved = jnp.transpose(x, rest + list(axis))
    width = int(np.prod([x.shape[a] for a in axis]))
    return moved.reshape(-1, width), len(axis)
  kernel_size = module.kernel_size
  if isinstance(kernel_size, int):
    kernel_size = (kernel_size,)
  if module.feature_group_count != 1:
    raise ValueError("Conv with feature_group_count != 1 is not supported")
  patches = conv_patches(
    x,
    kernel_size,
    module.strides,
    module.padding,
    module.input_dilation,
    module.kernel_dilation,
  )
  return patches, len(kernel_size) + 1


def _rows_nnx(module: nnx.Module, x: jax.Array) -> tuple[jax.Array, int]:
  if isinstance(module, nnx.Linear):
    return x.reshape(-1, x.shape[-1]), 1
  if module.feature_group_count != 1:
    raise ValueError("Conv with feature_group_count != 1 is not supported")
  patches = conv_patches(
    x,
    module.kernel_size,
    module.strides,
    module.padding,
    module.input_dilation,
    module.kernel_dilation,
  )
  return patches, len(module.kernel_size) + 1


_LINEN = (nn.Dense, nn.DenseGeneral, nn.Conv)
_NNX = (nnx.Linear, nnx.Conv)


def _stats(rows: jax.Array) -> Stats:
  rows = rows.astype(jnp.float32)
  gram = jax.lax.dot_general(
    rows,
    rows,
    (((0,), (0,)), ((), ())),
    precision=jax.lax.Precision.HIGHEST,
  )
  return Stats(gram, jnp.float32(rows.shape[0]))


def _add(a: Stats | None, b: Stats) -> Stats:
  return b if a is None else Stats(a.gram + b.gram, a.count + b.count)


class UnsupportedLayer(ValueError):
  """A layer whose kind of call calibration cannot turn into rows."""


class _Recorder:
  """Collects, during one trace, the stats of the layers in `targets`
  (all when None) and the order in which prunable layers run."""

  def __init__(self, targets: frozenset[str] | None):
    self.targets = targets
    self.stats: dict[str, Stats] = {}
    self.layers: dict[str, Layer] = {}

  def record(self, path, module, kind, rows_fn, x):
    if path not in self.layers or self.targets is None or path in self.targets:
      try:
        rows, n_in = rows_fn(module, x)
      except ValueError as e:
        raise UnsupportedLayer(f"layer '{path}': {e}") from None
      self.layers.setdefault(path, Layer(path, n_in, kind))
      if self.targets is None or path in self.targets:
        self.stats[path] = _add(self.stats.get(path), _stats(rows))


@contextlib.contextmanager
def _linen_hook(recorder: _Recorder):
  def interceptor(next_fn, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__" and isinstance(module, _LINEN):
      path = "/".join(("params", *module.path, "kernel"))
      kind = type(module).__name__
      if not isinstance(module, nn.Dense | nn.DenseGeneral):
        kind = "Conv"
      recorder.record(path, module, kind, linen_rows, args[0])
    return next_fn(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    yield


@contextlib.contextmanager
def _nnx_hook(recorder: _Recorder, names: dict[int, str]):
  originals = {cls: cls.__call__ for cls in _NNX}

  def patched(cls):
    def call(self, x, *args, **kwargs):
      if id(self) in names:
        recorder.record(names[id(self)], self, cls.__name__, _rows_nnx, x)
      return originals[cls](self, x, *args, **kwargs)

    return call

  try:
    for cls in _NNX:
      cls.__call__ = patched(cls)
    yield
  finally:
    for cls, fn in originals.items():
      cls.__call__ = fn


def _nnx_names(module: nnx.Module) -> dict[int, str]:
  names = {}
  for path, node in nnx.iter_graph(module):
    if isinstance(node, _NNX) and id(node) not in names:
      names[id(node)] = "/".join(map(str, (*path, "kernel", "value")))
  return names


@dataclasses.dataclass(frozen=True)
class NnxModel:
  """An nnx model split as `graphdef, params, rest = nnx.split(model,
  nnx.Param, ...)`: called with `params`, it runs the merged model."""

  graphdef: Any
  rest: Any

  @classmethod
  def split(cls, model: nnx.Module) -> tuple["NnxModel", Any]:
    """`(NnxModel, params)` from an nnx module."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return cls(graphdef, rest), params

  def merge(self, params: Any) -> nnx.Module:
    return nnx.merge(self.graphdef, params, self.rest)


Model = nn.Module | NnxModel | Callable[[Any, Any], Any]
"""A linen module (run as `model.apply(params, batch)`), a function
`apply(params, batch)` that calls linen layers, or an `NnxModel`."""


def _run(model: Model, params: Any, batch: Any, recorder: _Recorder) -> None:
  if isinstance(model, NnxModel):
    merged = model.merge(params)
    with _nnx_hook(recorder, _nnx_names(merged)):
      merged(batch)
  elif isinstance(model, nn.Module):
    with _linen_hook(recorder):
      model.apply(params, batch)
  else:
    with _linen_hook(recorder):
      model(params, batch)


def _describe(batch: Any) -> str:
  return str(jax.tree.map(lambda x: tuple(np.shape(x)), batch))


def layers(model: Model, params: Any, batch: Any) -> list[Layer]:
  """The prunable layers `model` calls on `batch`, in call order (traced
  abstractly: nothing is computed).

  Raises:
    ValueError: if the batch does not fit the model, naming its shape.
  """
  recorder = _Recorder(frozenset())
  try:
    jax.eval_shape(lambda p, b: _run(model, p, b, recorder), params, batch)
  except UnsupportedLayer:
    raise
  except (TypeError, ValueError, flax.errors.FlaxError) as e:
    raise ValueError(
      f"calibration batch of shape {_describe(batch)} does not fit the "
      f"model: {type(e).__name__}: {e}"
    ) from e
  return list(recorder.layers.values())


@functools.lru_cache(maxsize=32)
def _accumulator(model: Model, targets: frozenset) -> tuple[Callable, Any]:
  """`(stats, step)`: one batch's statistics of `targets`, and the jitted
  step adding them to running sums. Kept per (model, targets), so that
  calling `calibrate` again (`prune` at another sparsity, a block of a
  model pruned before) reuses the compiled step instead of tracing and
  compiling the model anew. An `NnxModel` is keyed by its graph alone
  (`rest=None`), its other state passed as `rest`."""

  def stats(params, rest, batch):
    recorder = _Recorder(targets)
    run = model if rest is None else NnxModel(model.graphdef, rest)
    _run(run, params, batch, recorder)
    return recorder.stats

  @jax.jit
  def step(total, params, rest, batch):
    return jax.tree.map(jnp.add, total, stats(params, rest, batch))

  return stats, step


def calibrate(
  model: Model,
  params: Any,
  batches: Iterable[Any],
  targets: Iterable[str],
) -> dict[str, Stats]:
  """Statistics of the layers in `targets` over all `batches`.

  One jitted step per batch adds the batch's Gram matrices to running
  sums; outputs the targets do not feed are dead code that XLA drops, so
  calibrating early layers does not pay for the rest of the model.

  Args:
    model: see `Model`.
    params: its params (linen variables or `nnx.State`).
    batches: calibration inputs, each passed as the model's one argument.
    targets: kernel paths (`Layer.path`) of the layers to calibrate.

  Returns:
    path -> `Stats`, for the targets that ran.

  Raises:
    ValueError: if a batch does not fit the model (naming its index and
      shape).

  >>> import flax.linen as nn, jax, jax.numpy as jnp
  >>> model = nn.Dense(3)
  >>> params = model.init(jax.random.key(0), jnp.ones((1, 2)))
  >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  >>> calibrate(model, params, [x], ['params/kernel'])['params/kernel'].gram
  Array([[10., 14.],
         [14., 20.]], dtype=float32)
  """
  targets = frozenset(targets)
  rest = None
  if isinstance(model, NnxModel):
    model, rest = NnxModel(model.graphdef, None), model.rest
  try:
    stats, step = _accumulator(model, targets)
  except TypeError:  # an unhashable function
    stats, step = _accumulator.__wrapped__(model, targets)
  total = None
  for i, batch in enumerate(batches):
    try:
      if total is None:
        shapes = jax.eval_shape(stats, params, rest, batch)
        total = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
      total = step(total, params, rest, batch)
    except UnsupportedLayer:
      raise
    except (TypeError, ValueError, flax.errors.FlaxError) as e:
      raise ValueError(
        f"calibration batch {i} of shape {_describe(batch)} does not fit "
        f"the model: {type(e).__name__}: {e}"
      ) from e
  return {} if total is None else total
