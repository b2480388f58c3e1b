"""Sparsity schedules: pure functions of the (traced) step."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxprune.core.types import SparsityFn


class Schedule(NamedTuple):
  """When masks change and what sparsity they aim for.

  Attributes:
    sparsity: step -> target sparsity.
    is_update: step -> whether the masks are recomputed at this step.
    once_at: the one step a one-shot schedule updates at; None for
      schedules that update more than once.
    monotone: the target never decreases from one update to the next, so
      a pruner following it never needs to bring a pruned entry back.
  """

  sparsity: SparsityFn
  is_update: SparsityFn
  once_at: int | None = None
  monotone: bool = False


def check_sparsity(name: str, value: float) -> float:
  """`value` as a float, if it is a sparsity in [0, 1]; else raises."""
  value = float(value)
  if not 0.0 <= value <= 1.0:
    raise ValueError(f"{name}={value}: a sparsity must be in [0, 1]")
  return value


def one_shot(sparsity: float, step: int = 0) -> Schedule:
  """Prunes once, at `step`, to `sparsity`; the masks stay fixed after.

  >>> s = one_shot(0.9, step=10)
  >>> [round(float(s.sparsity(t)), 6) for t in (9, 10)], bool(s.is_update(10))
  ([0.0, 0.9], True)
  """
  sparsity = check_sparsity("sparsity", sparsity)
  return Schedule(
    sparsity=lambda t: jnp.where(jnp.asarray(t) >= step, sparsity, 0.0),
    is_update=lambda t: jnp.asarray(t) == step,
    once_at=step,
    monotone=True,
  )


def constant(
  sparsity: float, begin: int = 0, end: int = 0, frequency: int = 1
) -> Schedule:
  """Holds `sparsity`; masks are recomputed every `frequency` steps from
  `begin` up to and including `end` (`end=begin`: only at `begin`).

  Drop-and-grow methods (SET, RigL) run at constant sparsity this way.

  >>> s = constant(0.5, begin=0, end=200, frequency=100)
  >>> [bool(s.is_update(t)) for t in (0, 50, 100, 200, 300)]
  [True, False, True, True, False]
  """
  sparsity = check_sparsity("sparsity", sparsity)
  _check_window(begin, end, frequency)
  return Schedule(
    sparsity=lambda t: jnp.float32(sparsity),
    is_update=_window(begin, end, frequency),
    monotone=True,
  )


def polynomial(
  final: float,
  begin: int,
  end: int,
  frequency: int,
  initial: float = 0.0,
  power: int = 3,
) -> Schedule:
  """Zhu & Gupta's gradual schedule, exact at `end`.

  sparsity(t) = final + (initial - final) * (1 - p) ** power, with
  p = clip((t - begin) / (end - begin), 0, 1). Masks change every
  `frequency` steps in [begin, end] and always at `end`, so the run ends on
  `final` exactly even when `end - begin` is not a multiple of `frequency`.

  >>> s = polynomial(0.9, begin=0, end=1000, frequency=100)
  >>> [round(float(s.sparsity(t)), 3) for t in (0, 100, 400, 1000, 2000)]
  [0.0, 0.244, 0.706, 0.9, 0.9]
  """
  final = check_sparsity("final", final)
  initial = check_sparsity("initial", initial)
  _check_window(begin, end, frequency)
  if end <= begin:
    raise ValueError(f"polynomial needs end > begin, got {begin=}, {end=}")

  def sparsity(t):
    p = jnp.clip((jnp.asarray(t, jnp.float32) - begin) / (end - begin), 0, 1)
    ramp = final + (initial - final) * (1.0 - p) ** power
    return jnp.where(p >= 1.0, final, jnp.where(p <= 0.0, initial, ramp))

  return Schedule(
    sparsity, _window(begin, end, frequency), monotone=initial <= final
  )


def geometric(rate: float, rounds: jax.Array | int) -> jax.Array:
  """Sparsity after `rounds` rounds that each prune `rate` of the remainder.

  >>> round(float(geometric(0.2, 3)), 4)
  0.488
  """
  rate = check_sparsity("rate", rate)
  return 1.0 - (1.0 - rate) ** jnp.asarray(rounds, jnp.float32)


def _check_window(begin: int, end: int, frequency: int) -> None:
  if frequency < 1:
    raise ValueError(f"frequency={frequency}: expected an integer >= 1")
  if begin < 0 or end < begin:
    raise ValueError(f"expected 0 <= begin <= end, got {begin=}, {end=}")


def _window(begin: int, end: int, frequency: int) -> SparsityFn:
  def is_update(t):
    t = jnp.asarray(t)
    inside = (t >= begin) & (t <= end)
    return inside & (((t - begin) % frequency == 0) | (t == end))

  return is_update
