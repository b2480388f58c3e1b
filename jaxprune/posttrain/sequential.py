"""The driver: prunes a model's layers block by block from calibration data.

Only this module knows block order. Calibration (`calibration.layers`)
lists the prunable layers in the order the model calls them; a block is
the layers sharing a block name: the top-level submodule by default
('params/block_0/attn/query/kernel' -> 'block_0'; for nnx the first path
component with any list indices after it, 'layers/0/kernel/value' ->
'layers/0'), or the first match of a `blocks` regex on the path. Blocks go
in the order their first layer runs.

Sequential (as SparseGPT and Wanda): the model runs on the calibration
batches with every earlier block already pruned, its statistics are
taken for all layers of the next block in that one pass, and those layers
are pruned. The run is the whole model (so blocks need not be chained
directly), but XLA drops everything after the block, since only its
statistics are returned. Non-sequential: one pass over the dense model
for every layer.
"""

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxprune.core.policy import Policy
from jaxprune.core.tree import path_str
from jaxprune.posttrain import calibration, solvers
from jaxprune.posttrain.calibration import Layer, NnxModel


class LayerReport(NamedTuple):
  """What pruning did to one layer.

  Attributes:
    module: the layer's kind ('Dense', 'DenseGeneral', 'Conv', 'Linear').
    kept: entries kept.
    size: entries of the kernel.
    rel_error: `||W X - W' X|| / ||W X||` over the calibration inputs the
      layer saw (in sequential mode, those of the pruned blocks before it).
    seconds: wall time of the solver on this layer (compilation included
      the first time a shape is solved in a process).
  """

  module: str
  kept: int
  size: int
  rel_error: float
  seconds: float


class Result(NamedTuple):
  """Pruned params, their masks and a per-layer report.

  Attributes:
    params: the pruned params, same structure as the input (zero where
      masked).
    masks: jaxprune masks: bool arrays on the leaves the policy prunes
      (all True on a layer left dense, such as the head), None elsewhere;
      they fit `jaxprune.set_masks` on `jaxprune.algorithms.fixed(policy=)`
      with the same policy.
    report: kernel path -> `LayerReport`, in pruning order.
  """

  params: Any
  masks: Any
  report: dict[str, LayerReport]


def block_name(path: str, pattern: str | None = None) -> str:
  """The block a layer belongs to (see the module docstring).

  >>> block_name('params/block_0/attn/query/kernel')
  'block_0'
  >>> block_name('layers/0/kernel/value')
  'layers/0'
  >>> block_name('params/encoder/layer_3/ffn/kernel', r'layer_\\d+')
  'layer_3'
  """
  if pattern is not None:
    found = re.search(pattern, path)
    return found.group(0) if found else path
  parts = path.split("/")
  if parts[0] == "params" and len(parts) > 2:
    parts = parts[1:]
  name = [parts[0]]
  for part in parts[1:]:
    if not part.isdigit():
      break
    name.append(part)
  return "/".join(name)


def blocks_of(layers: list[Layer], pattern: str | None = None) -> list[list]:
  """Layers grouped by `block_name`, blocks in the order they first run."""
  groups: dict[str, list[Layer]] = {}
  for layer in layers:
    groups.setdefault(block_name(layer.path, pattern), []).append(layer)
  return list(groups.values())


def _leaves(params: Any) -> dict[str, Any]:
  return {path_str(p): x for p, x in jax.tree.leaves_with_path(params)}


def _replace(params: Any, new: Mapping[str, jax.Array]) -> Any:
  return jax.tree.map_with_path(lambda p, x: new.get(path_str(p), x), params)


def _check_layers(
  found: list[Layer],
  prunable: Iterable[str],
  leaves: Mapping[str, Any],
  nm: tuple[int, int] | None,
  head: str | None,
) -> None:
  paths = {layer.path for layer in found}
  never = [p for p in prunable if p not in paths]
  if never:
    raise ValueError(
      f"layers {never} never ran during calibration, but the policy prunes "
      "them; exclude them with jaxprune.Policy(exclude=...) or run them; "
      f"layers that ran: {sorted(paths)}"
    )
  for layer in found:
    if nm is not None and layer.path in prunable and layer.path != head:
      d_in = int(np.prod(np.shape(leaves[layer.path])[: layer.n_in]))
      if d_in % int(nm[1]):
        raise ValueError(
          f"nm={tuple(nm)!r}: m={nm[1]} does not divide the input width "
          f"{d_in} of layer '{layer.path}'"
        )


def pruned_layers(
  model: Any,
  params: Any,
  batch: Any,
  *,
  nm: tuple[int, int] | None = None,
  policy: Policy = Policy(),
  prune_head: bool = False,
) -> list[Layer]:
  """The layers `prune` would prune, in call order, after its checks.

  Traced abstractly, so `params` may be `jax.ShapeDtypeStruct`s: a caller
  can check a target before the model is trained. Arguments as `prune`'s
  (an nnx model already split, `NnxModel`).

  Raises:
    ValueError: for a prunable layer that never runs on `batch`, or an N:M
      whose m does not divide a pruned layer's input width (naming it).
  """
  found = calibration.layers(model, params, batch)
  rules = policy.rules(params)
  head = found[-1].path if found and not prune_head else None
  _check_layers(found, list(rules), _leaves(params), nm, head)
  return [x for x in found if x.path in rules and x.path != head]


def prune(
  model: Any,
  params: Any,
  batches: Iterable[Any],
  *,
  method: str = "sparsegpt",
  sparsity: float | None = None,
  nm: tuple[int, int] | None = None,
  policy: Policy = Policy(),
  sequential: bool = True,
  blocks: str | None = None,
  prune_head: bool = False,
  options: Mapping[str, Any] | None = None,
) -> Result:
  """Prunes a trained model once, from calibration batches.

  Args:
    model: a linen module (run as `model.apply(params, batch)`), a function
      `apply(params, batch)` that calls linen layers, or an nnx module (its
      `nnx.Param` state is then the params, unless `params` is given).
    params: linen variables (`{'params': ...}`) or an `nnx.State`; never
      modified.
    batches: calibration inputs, each the model's one argument (a list:
      sequential mode passes over it once per block). Every row a layer
      sees counts, padding tokens too: calibrate on unpadded batches
      (fixed-length windows of text, as SparseGPT and Wanda do).
    method: 'magnitude', 'wanda', 'sparsegpt' or 'least_squares'.
    sparsity: unstructured target in [0, 1), per layer; or
    nm: `(n, m)`: keep `n` of every `m` consecutive inputs of each output.
    policy: which kernels are pruned (`jaxprune.Policy`); embeddings are
      never layers here.
    sequential: calibrate each block on the outputs of the pruned blocks
      before it (else all layers on the dense model, in one pass).
    blocks: a regex whose first match on a kernel path names its block;
      by default the top-level submodule.
    prune_head: also prune the layer the model calls last (the head,
      left dense by default).
    options: more keyword arguments for the solver (`damping`,
      `block_size` for SparseGPT; `per_row` for magnitude).

  Returns:
    `Result(params, masks, report)`.

  Raises:
    ValueError: for an unknown method, a sparsity outside [0, 1), an N:M
      whose m does not divide a layer's input width, a batch that does not
      fit the model, a prunable layer that never ran, or a failing
      Cholesky (naming the layer and the damping needed).

  >>> import flax.linen as nn, jax, jax.numpy as jnp, optax, jaxprune
  >>> model = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(8), nn.Dense(2)])
  >>> x = jax.random.normal(jax.random.key(0), (64, 8))
  >>> params = model.init(jax.random.key(1), x)
  >>> result = prune(model, params, [x], method='sparsegpt', sparsity=0.5)
  >>> [r.kept for r in result.report.values()]
  [32, 32]
  >>> tx = jaxprune.wrap(optax.adam(1e-3), jaxprune.algorithms.fixed())
  >>> state = jaxprune.set_masks(tx.init(result.params), result.masks)
  >>> jaxprune.summary(jaxprune.masks_of(state)).kept  # the head: dense
  80
  """
  if method not in solvers.METHODS:
    raise ValueError(
      f"method={method!r} is unknown; expected one of {list(solvers.METHODS)}"
    )
  solvers.check_target(sparsity, nm)
  nm = None if nm is None else (int(nm[0]), int(nm[1]))
  if isinstance(model, nnx.Module):
    model, state = NnxModel.split(model)
    params = state if params is None else params
  batches = list(batches)
  if not batches:
    raise ValueError("batches is empty: at least one calibration batch needed")
  order = pruned_layers(
    model, params, batches[0], nm=nm, policy=policy, prune_head=prune_head
  )
  rules = policy.rules(params)
  groups = blocks_of(order, blocks) if sequential else [order]
  solve = solvers.METHODS[method]
  target = dict(sparsity=sparsity, nm=nm, **(options or {}))

  current, report, masks = params, {}, {}
  for group in groups:
    stats = calibration.calibrate(
      model, current, batches, [x.path for x in group]
    )
    # Dispatch is asynchronous: wait here, so a layer's seconds are its
    # solver's alone.
    stats = jax.block_until_ready(stats)
    now = _leaves(current)
    new = {}
    for layer in group:
      kernel = now[layer.path]
      start = time.perf_counter()
      try:
        kernel_new, mask = solve(
          kernel, stats[layer.path], n_in=layer.n_in, **target
        )
        kernel_new = jax.block_until_ready(kernel_new)
      except ValueError as e:
        raise ValueError(f"layer '{layer.path}': {e}") from e
      seconds = time.perf_counter() - start
      error = solvers.relative_error(
        kernel, kernel_new, stats[layer.path], layer.n_in
      )
      new[layer.path], masks[layer.path] = kernel_new, mask
      report[layer.path] = LayerReport(
        layer.module, int(jnp.sum(mask)), mask.size, float(error), seconds
      )
    current = _replace(current, new)
  mask_tree = jax.tree.map_with_path(
    lambda p, x: (
      masks.get(path_str(p), jnp.ones(jnp.shape(x), bool))
      if path_str(p) in rules
      else None
    ),
    params,
  )
  return Result(current, mask_tree, report)
