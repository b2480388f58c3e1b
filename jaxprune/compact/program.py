"""A model's traced program as a flat list of operations on numbered values.

`trace` runs `jax.make_jaxpr` on `apply_fn(variables, *args)` and inlines
every nested call (`jit`, `custom_jvp_call`, ...): a nested program's
inputs and outputs are the caller's values themselves, and each call site
gets values of its own (JAX reuses one traced jaxpr for repeated calls of
the same function, so its variables alone would merge the call sites).
Grouping (`groups.py`) and FLOP counting (`flops.py`) read this list.
"""

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from jax.extend import core as jax_core

from jaxprune.core.tree import path_str
from jaxprune.core.types import Params

_NESTED = {
  "jit": "jaxpr",
  "pjit": "jaxpr",
  "closed_call": "call_jaxpr",
  "core_call": "call_jaxpr",
  "custom_jvp_call": "call_jaxpr",
  "custom_vjp_call": "call_jaxpr",
  "remat": "jaxpr",
  "checkpoint": "jaxpr",
}

# Operations through which a value still is its input leaf (for finding
# which kernel a matmul or convolution reads).
_SAME_LEAF = {"convert_element_type", "copy", "copy_p", "reduce_precision"}


class Op(NamedTuple):
  """One primitive operation; values are ints, `None` for literals."""

  name: str
  params: dict[str, Any]
  inputs: tuple[int | None, ...]
  in_shapes: tuple[tuple[int, ...], ...]
  outputs: tuple[int, ...]
  out_shapes: tuple[tuple[int, ...], ...]


class Program(NamedTuple):
  """The flat program of `apply_fn(variables, *args)`.

  Attributes:
    ops: primitive operations in execution order, nested calls inlined.
    leaves: value -> key path of the variable leaf it holds; values derived
      from one leaf by a type conversion or copy map to that leaf too.
    shapes: value -> shape.
    inputs: the values of `args`' leaves.
    outputs: the values of the outputs' leaves (`None` for literals).
  """

  ops: list[Op]
  leaves: dict[int, str]
  shapes: dict[int, tuple[int, ...]]
  inputs: list[int]
  outputs: list[int | None]


def trace(apply_fn: Callable[..., Any], variables: Params, *args) -> Program:
  """Traces `apply_fn(variables, *args)` (nothing is computed).

  >>> import jax.numpy as jnp
  >>> p = trace(lambda v, x: jnp.tanh(x @ v['w']), {'w': jnp.ones((3, 2))},
  ...           jnp.ones((4, 3)))
  >>> [op.name for op in p.ops], p.leaves
  (['dot_general', 'tanh'], {0: 'w'})
  """
  closed = jax.make_jaxpr(apply_fn)(variables, *args)
  paths = [path_str(p) for p, _ in jax.tree.leaves_with_path(variables)]
  counter = itertools.count()
  ops, shapes = [], {}

  def fresh(var):
    value = next(counter)
    shapes[value] = tuple(var.aval.shape)
    return value

  def read(env, atom):
    return None if isinstance(atom, jax_core.Literal) else env[atom]

  def run(jaxpr, inputs, consts):
    env = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, inputs, strict=True))
    for eqn in jaxpr.eqns:
      ins = tuple(read(env, a) for a in eqn.invars)
      nested = eqn.params.get(_NESTED.get(eqn.primitive.name, ""))
      if nested is not None:
        inner = getattr(nested, "jaxpr", nested)
        outs = run(inner, ins, [fresh(c) for c in inner.constvars])
      else:
        outs = tuple(fresh(v) for v in eqn.outvars)
        ops.append(
          Op(
            eqn.primitive.name,
            dict(eqn.params),
            ins,
            tuple(tuple(a.aval.shape) for a in eqn.invars),
            outs,
            tuple(tuple(v.aval.shape) for v in eqn.outvars),
          )
        )
      env.update(zip(eqn.outvars, outs, strict=True))
    return [read(env, a) for a in jaxpr.outvars]

  jaxpr = closed.jaxpr
  invars = [fresh(v) for v in jaxpr.invars]
  outputs = run(jaxpr, invars, [fresh(c) for c in jaxpr.constvars])
  leaves = dict(zip(invars[: len(paths)], paths, strict=True))
  for op in ops:
    if op.name in _SAME_LEAF and op.inputs[0] in leaves:
      leaves[op.outputs[0]] = leaves[op.inputs[0]]
  return Program(ops, leaves, shapes, invars[len(paths) :], outputs)
