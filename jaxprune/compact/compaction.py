"""From structured masks to the variables of a physically smaller network.

A unit (`groups.py`) is removed when every kernel that computes it prunes
its slice (a kernel without a mask prunes nothing): the output column of
a dense kernel, the output channel of a convolution (`jaxprune.Channel`
masks are exactly these). Removing it
deletes every slice it owns: those columns, its bias and normalisation
entries, and the rows of the kernels that read it. The smaller network
computes what the masked one computes once the masks cover the whole unit,
which `unit_masks` returns: a pruned unit whose bias or normalisation shift
was left unmasked still sends a constant forward, and compaction drops it.
"""

from collections import defaultdict
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.compact.groups import Units, find_groups
from jaxprune.core.tree import apply_masks, check_masks, path_str
from jaxprune.core.types import Masks, Params


class Compacted(NamedTuple):
  """What `compact` returns.

  Attributes:
    variables: the smaller variables, same tree and leaf names.
    kept: (path, axis) -> the original indices kept along that axis, for
      every leaf axis that lost some.
    keep: one bool array per group of `Units.groups`: the units kept.
  """

  variables: Params
  kept: dict[tuple[str, int], np.ndarray]
  keep: tuple[np.ndarray, ...]


def kept_units(variables: Params, masks: Masks, units: Units) -> list:
  """Which units `masks` keep, one bool array per group.

  Raises:
    ValueError: naming the leaf, for masks that do not match the
      variables, that prune entries inside kept units (unstructured or
      N:M masks), that prune a unit the model's input or output fixes,
      that keep a unit in one kernel and prune it in another (a residual
      stream cut in one block only), or that remove every unit of a group.
  """
  check_masks(variables, masks)
  votes = _axis_keeps(masks, units)
  out = []
  for group in units.groups:
    kept = np.zeros(group.size, int)
    removed = np.zeros(group.size, int)
    where = defaultdict(list)
    for member in group.producers:
      # A kernel without a mask keeps all its units.
      keep = votes.get((member.path, member.axis))
      for u, indices in enumerate(member.indices):
        k = keep is None or bool(keep[list(indices)].all())
        kept[u] += k
        removed[u] += not k
        where[(u, k)].append(member.path)
    for u in np.flatnonzero((kept > 0) & (removed > 0)):
      raise ValueError(
        f"unit {u} of group '{group.name}' is pruned in "
        f"{where[(u, False)]} but kept in {where[(u, True)]}: units tied "
        "by a residual add are removed everywhere or nowhere"
      )
    keep = ~((removed > 0) & (kept == 0))
    if not keep.any():
      raise ValueError(
        f"the masks remove all {group.size} units of group '{group.name}'; "
        "at least one must stay"
      )
    out.append(keep)
  return out


def _axis_keeps(masks, units):
  """(path, axis) -> per-index keep of the masked leaves' unit axes."""
  axes = defaultdict(set)
  for group in units.groups:
    for m in group.members:
      axes[m.path].add(m.axis)
  for path, axis in units.fixed:
    axes[path].add(axis)
  keeps = {}
  for p, mask in jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None):
    if mask is None:
      continue
    path, mask = path_str(p), np.asarray(mask)
    structured = np.ones_like(mask)
    for axis in sorted(axes[path]):
      others = tuple(a for a in range(mask.ndim) if a != axis)
      keep = mask.any(axis=others)
      keeps[(path, axis)] = keep
      shape = [1] * mask.ndim
      shape[axis] = -1
      structured &= keep.reshape(shape)
    if not np.array_equal(mask, structured):
      along = sorted(axes[path]) or "none"
      raise ValueError(
        f"the mask of '{path}' prunes {int((structured & ~mask).sum())} "
        f"entries inside kept units; compaction removes whole units only "
        f"(unit axes of this leaf: {along}): use jaxprune.Channel or "
        "jaxprune.compact.select_units masks"
      )
    for axis in sorted(axes[path]):
      fixed = units.fixed.get((path, axis), ())
      lost = [i for i in fixed if not keeps[(path, axis)][i]]
      if lost:
        raise ValueError(
          f"the mask of '{path}' prunes indices {lost[:8]} along axis "
          f"{axis}, which reach the model's input or output (or an "
          "operation compaction does not know) and cannot be removed"
        )
  return keeps


def _removed(units: Units, keep: list) -> dict[str, dict[int, np.ndarray]]:
  """path -> axis -> sorted indices removed along it."""
  out = defaultdict(lambda: defaultdict(list))
  for group, k in zip(units.groups, keep, strict=True):
    for member in group.members:
      out[member.path][member.axis].extend(group.owned(member, k))
  return {
    p: {a: np.unique(np.asarray(i, int)) for a, i in axes.items() if i}
    for p, axes in out.items()
  }


def unit_masks(variables: Params, masks: Masks, units: Units) -> Masks:
  """`masks` extended to every slice of every unit they remove.

  The masked network `apply_masks(variables, unit_masks(...))` computes
  what the compacted one does (up to float rounding).

  Raises:
    ValueError: as `kept_units`.
  """
  removed = _removed(units, kept_units(variables, masks, units))

  def extend(p, x, m):
    axes = removed.get(path_str(p), {})
    if not axes:
      return m
    out = np.ones(np.shape(x), bool) if m is None else np.array(m)
    for axis, indices in axes.items():
      index = [slice(None)] * out.ndim
      index[axis] = indices
      out[tuple(index)] = False
    return jnp.asarray(out)

  return jax.tree.map_with_path(
    extend, variables, masks, is_leaf=lambda x: x is None
  )


def compact(variables: Params, masks: Masks, units: Units) -> Compacted:
  """The variables of the network without the units `masks` remove.

  Entries the masks prune inside kept units (none, for unit masks) stay
  zero. Build the network that runs them with the model's `compacted`
  method, or call `compact_model`.

  Args:
    variables: all the network's variables (params, batch_stats, ...).
    masks: bool masks over the same tree, None where a leaf is not masked;
      whole units pruned in the kernels that compute them.
    units: `find_groups(apply_fn, variables, example_input)`.

  Returns:
    The smaller variables, the indices kept along each reduced axis and the
    units kept per group.

  Raises:
    ValueError: as `kept_units`.

  >>> import jax, jax.numpy as jnp, jaxprune
  >>> from jaxprune.compact import find_groups
  >>> from jaxprune.models import LeNet300
  >>> model, x = LeNet300(), jnp.ones((2, 28, 28, 1))
  >>> variables = model.init(jax.random.key(0), x)
  >>> _, masks = jaxprune.prune(variables, 0.5, structure=jaxprune.Channel(),
  ...                           policy=jaxprune.Policy(exclude=('fc3',)))
  >>> small = compact(variables, masks, find_groups(model.apply, variables, x))
  >>> small.variables['params']['fc2']['kernel'].shape
  (150, 50)
  """
  keep = kept_units(variables, masks, units)
  removed = _removed(units, keep)
  kept = {}

  def shrink(p, x):
    out = x
    for axis, indices in removed.get(path_str(p), {}).items():
      stay = np.setdiff1d(np.arange(np.shape(x)[axis]), indices)
      kept[(path_str(p), axis)] = stay
      out = jnp.take(out, stay, axis=axis)
    return out

  small = jax.tree.map_with_path(shrink, apply_masks(variables, masks))
  return Compacted(small, kept, tuple(keep))


def compact_model(model, variables: Params, masks: Masks, *example_args):
  """The smaller network and its variables, for a Flax model that has a
  `compacted(variables, kept)` method (every model of jaxprune.models).

  Args:
    model: the Flax module; its `apply` is traced to find the units.
    variables: its variables (all collections).
    masks: unit masks over `variables` (see `compact`).
    *example_args: example inputs for tracing.

  Returns:
    `(smaller model, its variables)`.

  Raises:
    TypeError: if the model has no `compacted` method.
    ValueError: as `kept_units`.
  """
  build = getattr(model, "compacted", None)
  if build is None:
    raise TypeError(
      f"{type(model).__name__} has no compacted(variables, kept) method to "
      "build the smaller network; call compact() and build it yourself"
    )
  units = find_groups(model.apply, variables, *example_args)
  small = compact(variables, masks, units)
  return build(small.variables, small.kept), small.variables
