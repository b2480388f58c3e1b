"""Multiply-adds read from the traced program, and training FLOPs.

`flops` counts the multiply-adds of every matrix product (`dot_general`)
and convolution in `apply_fn`'s program for one batch of the example
input: a product of `m x k` by `k x n` costs `m k n`; a convolution costs
its output size times the kernel's entries per output channel (padding
positions included, as is usual). A product that reads a masked kernel
costs, effectively, its dense count times the kernel's kept fraction: every
weight of a dense or convolution kernel takes part in the same number of
multiply-adds.

`training_flops` follows the accounting of the RigL paper (Evci et al.
2020, "Rigging the lottery"): a step costs the forward pass at the current
masks, f, plus a backward pass of twice that, 3 f in all; a step that
needs the dense gradient (RigL's and GraNet's growth steps) computes the
weight gradient densely: 2 f + f_dense. Dense training (PDP's soft masks
included) costs 3 f_dense a step.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxprune.compact.program import trace
from jaxprune.core.tree import check_masks, path_str
from jaxprune.core.types import Masks, Params


class Flops(NamedTuple):
  """Multiply-adds of one forward pass.

  Attributes:
    layers: name -> (dense, effective) multiply-adds, by the kernel leaf a
      product reads ('dot_general:3' for a product of two activations).
    dense: all products at full density.
    effective: counting only the weights the masks keep.
  """

  layers: dict[str, tuple[int, int]]
  dense: int
  effective: int

  @property
  def ratio(self) -> float:
    """Dense over effective multiply-adds (the theoretical speed-up)."""
    return self.dense / self.effective


def flops(
  apply_fn: Callable[..., Any],
  params: Params,
  masks: Masks | None,
  example_input: Any,
) -> Flops:
  """Dense and effective multiply-adds of `apply_fn(params, example_input)`.

  Args:
    apply_fn: e.g. `model.apply`; traced, not run.
    params: the variables it takes.
    masks: bool masks over `params` (None leaves: dense), or None.
    example_input: one batch; counts scale with its size.

  Returns:
    Per-layer and total multiply-adds.

  Raises:
    ValueError: if `masks` does not match `params` (naming the leaf).

  >>> import jax, jax.numpy as jnp
  >>> from jaxprune.models import LeNet300
  >>> model, x = LeNet300(), jnp.zeros((1, 28, 28, 1))
  >>> params = model.init(jax.random.key(0), x)
  >>> flops(model.apply, params, None, x).dense  # 784*300 + 300*100 + 1000
  266200
  """
  program = trace(apply_fn, params, example_input)
  kept = {}
  if masks is not None:
    check_masks(params, masks)
    for p, m in jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None):
      if m is not None:
        m = np.asarray(m)
        kept[path_str(p)] = (int(np.count_nonzero(m)), m.size)
  layers = {}
  for i, op in enumerate(program.ops):
    if op.name == "dot_general":
      (lc, _), _ = op.params["dimension_numbers"]
      depth = math.prod(op.in_shapes[0][a] for a in lc)
    elif op.name == "conv_general_dilated":
      out_feature = op.params["dimension_numbers"][1][0]
      rhs = op.in_shapes[1]
      depth = math.prod(rhs) // rhs[out_feature]
    else:
      continue
    dense = math.prod(op.out_shapes[0]) * depth
    name = next(
      (program.leaves[v] for v in op.inputs[::-1] if v in program.leaves),
      f"{op.name}:{i}",
    )
    nonzero, size = kept.get(name, (1, 1))
    effective = dense * nonzero // size
    old = layers.get(name, (0, 0))
    layers[name] = (old[0] + dense, old[1] + effective)
  return Flops(
    layers,
    sum(d for d, _ in layers.values()),
    sum(e for _, e in layers.values()),
  )


def training_flops(
  forward: Sequence[float],
  dense_forward: float,
  update_steps: Sequence[int] = (),
  dense_gradient: bool = False,
) -> float:
  """FLOPs of a training run, by the RigL paper's accounting.

  Args:
    forward: the forward pass's FLOPs (or multiply-adds) at each step, at
      that step's masks; a constant sequence for static masks, the dense
      count throughout for dense training and PDP.
    dense_forward: the dense network's forward FLOPs.
    update_steps: the steps (indices into `forward`) that update masks.
    dense_gradient: whether update steps compute the dense gradient
      (RigL, GraNet's regrowth); SET and magnitude pruning do not.

  Returns:
    The run's total. Divide by `3 * dense_forward * len(forward)` for the
    fraction of dense training.

  >>> training_flops([10.0] * 4, 100.0)  # static sparse: 3 f a step
  120.0
  >>> training_flops([10.0] * 4, 100.0, update_steps=[2], dense_gradient=True)
  210.0
  """
  total = 3.0 * float(np.sum(forward))
  if dense_gradient:
    for step in update_steps:
      total += dense_forward - forward[step]
  return total
