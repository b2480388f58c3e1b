"""Units of a network, found in its traced program: slices removed together.

A *unit* is one output unit of a layer (a dense layer's hidden unit, a
convolution's output channel) together with every slice of every variable
that exists only for it: the kernel column that computes it, its bias, its
normalisation's scale, shift and statistics, and the kernel rows of the
layers that read it. Units tied by an elementwise operation (a residual
add) are one unit: removing a channel of a residual stream removes it from
every layer that writes to the stream.

`find_groups` finds the units from the program itself (`program.trace`),
not from layer names: every axis of every value is a row of elements, and
each operation ties elements of its inputs to elements of its outputs
(an elementwise op ties equal positions; a matmul ties the contracted axes
of its operands together and each free axis to the output's; a
convolution its input features to the kernel's, the kernel's output
features to the output's; a pad, slice, reshape or pooling maps positions
along the axes it keeps). A union-find over the elements then yields the
units as connected components. Components that reach the model's input or
output are fixed (they cannot be removed); operations the rules do not know
fix everything they touch, so an unknown program fails loudly rather than
compacting wrongly.

Units that span the same slices of the same leaves form a `Group`: a
layer's output units, or the channels of one stretch of a residual stream.
A group's units are listed by the `indices` of each `Member`: unit u owns
the indices `indices[u]` along `axis` of leaf `path`. Attention heads fit the
same shape (a member's slice may hold many entries: one head of a
``(d, heads, head_dim)`` kernel along axis 1).
"""

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jaxprune.compact.program import Op, Program, trace
from jaxprune.core.types import Params

_ELEMENTWISE = frozenset(
  [
    "abs",
    "add",
    "add_any",
    "and",
    "atan2",
    "cbrt",
    "ceil",
    "clamp",
    "convert_element_type",
    "copy",
    "copy_p",
    "cos",
    "div",
    "eq",
    "erf",
    "erf_inv",
    "erfc",
    "exp",
    "exp2",
    "expm1",
    "floor",
    "ge",
    "gt",
    "integer_pow",
    "is_finite",
    "le",
    "log",
    "log1p",
    "logistic",
    "lt",
    "max",
    "min",
    "mul",
    "ne",
    "neg",
    "nextafter",
    "not",
    "or",
    "pow",
    "reduce_precision",
    "rem",
    "round",
    "rsqrt",
    "select_n",
    "sign",
    "sin",
    "sqrt",
    "square",
    "stop_gradient",
    "sub",
    "tan",
    "tanh",
    "xor",
  ]
)
_REDUCE = frozenset(
  [
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_and",
    "reduce_or",
    "argmax",
    "argmin",
  ]
)
_WINDOW = {"reduce_window_max", "reduce_window_min", "reduce_window_sum"}


class Member(NamedTuple):
  """The slices of one leaf that a group's units own.

  Attributes:
    path: the leaf's key path, e.g. 'params/fc1/kernel'.
    axis: the axis the units run along (non-negative).
    indices: unit u owns the indices `indices[u]` (a tuple: one for a
      dense unit, several where a flatten spreads a channel over many
      inputs of the next layer) along `axis`.
    role: 'out' (a kernel axis that computes the units), 'in' (a kernel
      axis that reads them) or 'vector' (a value per unit: bias, norm).
  """

  path: str
  axis: int
  indices: tuple[int, ...]
  role: str


class Group(NamedTuple):
  """Units that span the same slices of the same leaves."""

  name: str
  members: tuple[Member, ...]

  @property
  def size(self) -> int:
    """The number of units."""
    return len(self.members[0].indices)

  def owned(self, member: Member, keep: np.ndarray) -> np.ndarray:
    """The indices along `member.axis` owned by the units where `keep` is
    False."""
    del self
    units = zip(member.indices, keep, strict=True)
    return np.array([i for u, k in units if not k for i in u], int)

  @property
  def producers(self) -> tuple[Member, ...]:
    """The members that compute the units (kernels' output axes)."""
    return tuple(m for m in self.members if m.role == "out")


class Units(NamedTuple):
  """What `find_groups` returns.

  Attributes:
    groups: the removable units, grouped.
    fixed: (path, axis) -> indices that cannot be removed along that axis
      of a kernel that computes them: units reaching the model's input or
      output, or an operation the grouping does not know.
  """

  groups: tuple[Group, ...]
  fixed: dict[tuple[str, int], tuple[int, ...]]

  def select(self, pattern: str) -> tuple[Group, ...]:
    """The groups whose name `re.search`-matches `pattern`."""
    return tuple(g for g in self.groups if re.search(pattern, g.name))


class _UnionFind:
  def __init__(self):
    self.parent: dict[Any, Any] = {}

  def find(self, x):
    parent = self.parent
    root = x
    while parent.get(root, root) != root:
      root = parent[root]
    while x != root:
      parent[x], x = root, parent.get(x, x)
    return root

  def union(self, a, b):
    ra, rb = self.find(a), self.find(b)
    if ra != rb:
      self.parent[ra] = rb


def find_groups(
  apply_fn: Callable[..., Any], variables: Params, *example_args
) -> Units:
  """The units of `apply_fn(variables, *example_args)`, grouped.

  Args:
    apply_fn: e.g. `model.apply`; traced, not run.
    variables: the variables it takes (all collections, e.g. params and
      batch_stats); paths in the result are their key paths.
    *example_args: example inputs (shapes and dtypes matter; a batch of
      one is enough).

  Returns:
    The groups of removable units and the fixed kernel slices.

  >>> import jax, jax.numpy as jnp
  >>> from jaxprune.models import LeNet300
  >>> model, x = LeNet300(), jnp.zeros((1, 28, 28, 1))
  >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)
  >>> units = find_groups(model.apply, variables, x)
  >>> [(g.name, g.size) for g in units.groups]
  [('params/fc1/kernel', 300), ('params/fc2/kernel', 100)]
  >>> [(m.path, m.axis, m.role) for m in units.groups[1].members]
  [('params/fc2/bias', 0, 'vector'), ('params/fc2/kernel', 1, 'out'),
   ('params/fc3/kernel', 0, 'in')]
  """
  program = trace(apply_fn, variables, *example_args)
  ties = _UnionFind()
  roles: dict[tuple[str, int], str] = {}
  pins = [*program.inputs, *(v for v in program.outputs if v is not None)]
  for op in program.ops:
    pins += _tie(op, ties, roles, program.leaves)
  pinned = set()
  for value in pins:
    for axis, size in enumerate(program.shapes[value]):
      pinned.update(ties.find((value, axis, i)) for i in range(size))
  return _collect(program, ties, roles, pinned)


def _identity(ties, a, axis_a, b, axis_b, size):
  for i in range(size):
    ties.union((a, axis_a, i), (b, axis_b, i))


def _tie(op: Op, ties: _UnionFind, roles, leaves) -> list[int]:
  """Ties the elements `op` connects; returns values to pin (for unknown
  operations: all their inputs and outputs)."""
  name, params = op.name, op.params
  pairs = zip(op.inputs, op.in_shapes, strict=True)
  ins = [(v, s) for v, s in pairs if v is not None]
  out, out_shape = op.outputs[0], op.out_shapes[0]
  if name in _ELEMENTWISE:
    for v, shape in ins:
      if len(shape) == len(out_shape):
        for axis, (d, e) in enumerate(zip(shape, out_shape, strict=True)):
          if d == e:
            _identity(ties, v, axis, out, axis, d)
  elif name == "broadcast_in_dim":
    if not ins:  # a literal broadcast: nothing to tie
      return []
    ((v, shape),) = ins[:1]
    for axis, target in enumerate(params["broadcast_dimensions"]):
      if shape[axis] == out_shape[target]:
        _identity(ties, v, axis, out, target, shape[axis])
  elif name in ("reshape", "squeeze"):
    _reshape(ties, *ins[0], out, out_shape)
  elif name in _REDUCE:
    v, shape = ins[0]
    kept = [a for a in range(len(shape)) if a not in params["axes"]]
    for target, axis in enumerate(kept):
      _identity(ties, v, axis, out, target, shape[axis])
  elif name in _WINDOW:
    v, shape = ins[0]
    for axis in range(len(shape)):
      untouched = (
        params["window_dimensions"][axis] == 1
        and params["window_strides"][axis] == 1
        and tuple(params["padding"][axis]) == (0, 0)
      )
      if untouched:
        _identity(ties, v, axis, out, axis, shape[axis])
  elif name == "pad":
    v, shape = ins[0]
    for axis, (lo, _, interior) in enumerate(params["padding_config"]):
      for i in range(shape[axis]):
        j = lo + i * (interior + 1)
        if 0 <= j < out_shape[axis]:
          ties.union((v, axis, i), (out, axis, j))
  elif name == "slice":
    v, _ = ins[0]
    strides = params["strides"] or (1,) * len(out_shape)
    for axis, (start, step) in enumerate(
      zip(params["start_indices"], strides, strict=True)
    ):
      for i in range(out_shape[axis]):
        ties.union((v, axis, start + i * step), (out, axis, i))
  elif name == "transpose":
    v, shape = ins[0]
    for target, axis in enumerate(params["permutation"]):
      _identity(ties, v, axis, out, target, shape[axis])
  elif name == "dot_general":
    _dot(op, ties, roles, leaves)
  elif name == "conv_general_dilated":
    return _conv(op, ties, roles, leaves)
  elif op.inputs or op.outputs:
    return [*(v for v, _ in ins), *op.outputs]
  return []


def _reshape(ties, value, shape, out, out_shape):
  """Ties positions along the innermost axis of each block of axes that a
  reshape merges or splits (a flatten of (h, w, c) ties entry f of the
  result to channel f % c)."""
  src = [a for a, d in enumerate(shape) if d != 1]
  dst = [a for a, d in enumerate(out_shape) if d != 1]
  i = j = 0
  while i < len(src) and j < len(dst):
    block_src, block_dst = [src[i]], [dst[j]]
    p, q = shape[src[i]], out_shape[dst[j]]
    i, j = i + 1, j + 1
    while p != q:
      if p < q:
        block_src.append(src[i])
        p, i = p * shape[src[i]], i + 1
      else:
        block_dst.append(dst[j])
        q, j = q * out_shape[dst[j]], j + 1
    a, b = block_src[-1], block_dst[-1]
    d, e = shape[a], out_shape[b]
    if d == e:
      _identity(ties, value, a, out, b, d)
    elif e % d == 0:
      for f in range(e):
        ties.union((value, a, f % d), (out, b, f))
    elif d % e == 0:
      for f in range(d):
        ties.union((value, a, f), (out, b, f % e))


def _dot(op, ties, roles, leaves):
  (lhs, rhs), (ls, rs) = op.inputs, op.in_shapes
  out = op.outputs[0]
  (lc, rc), (lb, rb) = op.params["dimension_numbers"]
  for a, b in zip(lc, rc, strict=True):
    _identity(ties, lhs, a, rhs, b, ls[a])
  position = 0
  for a, b in zip(lb, rb, strict=True):
    _identity(ties, lhs, a, rhs, b, ls[a])
    _identity(ties, lhs, a, out, position, ls[a])
    position += 1
  for value, shape, skip in ((lhs, ls, (*lc, *lb)), (rhs, rs, (*rc, *rb))):
    for axis in range(len(shape)):
      if axis not in skip:
        _identity(ties, value, axis, out, position, shape[axis])
        position += 1
  for value, shape, contracted in ((lhs, ls, lc), (rhs, rs, rc)):
    if value in leaves and len(shape) >= 2:
      for axis in range(len(shape)):
        role = "in" if axis in contracted else "out"
        roles[(leaves[value], axis)] = role


def _conv(op, ties, roles, leaves):
  (lhs, rhs), (ls, rs) = op.inputs, op.in_shapes
  out = op.outputs[0]
  lhs_spec, rhs_spec, out_spec = op.params["dimension_numbers"]
  grouped = (
    op.params["feature_group_count"] != 1 or op.params["batch_group_count"] != 1
  )
  if grouped:
    return [lhs, rhs, out]
  _identity(ties, lhs, lhs_spec[0], out, out_spec[0], ls[lhs_spec[0]])
  _identity(ties, lhs, lhs_spec[1], rhs, rhs_spec[1], ls[lhs_spec[1]])
  _identity(ties, rhs, rhs_spec[0], out, out_spec[1], rs[rhs_spec[0]])
  if rhs in leaves:
    roles[(leaves[rhs], rhs_spec[0])] = "out"
    roles[(leaves[rhs], rhs_spec[1])] = "in"
  return []


def _collect(program: Program, ties, roles, pinned) -> Units:
  members = defaultdict(list)
  fixed = defaultdict(list)
  first = {}
  for value, path in program.leaves.items():
    first.setdefault(path, value)
  kernels = {path for path, _ in roles}
  for path, value in first.items():
    shape = program.shapes[value]
    for axis, size in enumerate(shape):
      # A leaf no matmul or convolution reads (a bias, a norm's scale,
      # DenseGeneral's (heads, head_dim) bias) holds values per unit.
      vector = "vector" if path not in kernels else None
      role = roles.get((path, axis), vector)
      if role is None:
        continue
      for i in range(size):
        root = ties.find((value, axis, i))
        if root in pinned:
          if role == "out":
            fixed[(path, axis)].append(i)
        else:
          members[root].append((path, axis, i, role))
  families = defaultdict(list)
  for slices in members.values():
    if not any(role == "out" for *_, role in slices):
      continue
    owned = defaultdict(set)
    for path, axis, i, role in slices:
      owned[(path, axis, role)].add(i)
    owned = sorted((k, tuple(sorted(v))) for k, v in owned.items())
    signature = tuple((k, len(v)) for k, v in owned)
    families[signature].append(tuple(v for _, v in owned))
  groups = []
  for signature, units in families.items():
    units.sort()
    columns = list(zip(*units, strict=True))
    group_members = tuple(
      Member(p, a, col, r)
      for ((p, a, r), _), col in zip(signature, columns, strict=True)
    )
    producers = [m.path for m in group_members if m.role == "out"]
    name = producers[0]
    if len(producers) > 1:
      name += f" (+{len(producers) - 1} tied)"
    groups.append(Group(name, group_members))
  groups.sort(key=lambda g: _leaf_order(program, g))
  fixed = {k: tuple(np.unique(v).tolist()) for k, v in fixed.items()}
  return Units(tuple(groups), fixed)


def _leaf_order(program, group):
  order = {p: i for i, p in enumerate(dict.fromkeys(program.leaves.values()))}
  first = group.producers[0]
  return order[first.path], first.indices[0]
