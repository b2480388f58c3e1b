"""Convolutions of few input channels as sums of shifted inputs.

XLA:CPU's convolution is slow with one to three input channels (the
first layer of an image network): 10-80 ms for LeNet-5's first layer at
batch 256 on a loaded 2-core EPYC, and barely less with half the
filters. The same convolution written as a sum over kernel offsets and
input channels of the shifted input times one kernel row,
`y = sum_{offset, c} x[shifted, c] * k[offset, c, :]`, is one fused
elementwise loop: about 1 ms there, and it scales with the filters
(docs/compact.md, "Convolutions: the floor").

On CPU, compile a model that uses it with `compiler_options()` (XLA's
YNNPACK fusion pass is off then): with the pass on, XLA merges the
shifted products and the max-pooling after them into one YNNPACK fusion
that materialises every shifted copy, and LeNet-5 at batch 256 takes
40-47 ms instead of 10 ms.

`conv_by_shifts` has the signature of `jax.lax.conv_general_dilated`, so a
`flax.linen.Conv(..., conv_general_dilated=conv_by_shifts)` uses it; it
computes channels-last convolutions with at most `MAX_IN_CHANNELS` input
channels, no dilation and no feature groups that way and hands every
other one to `lax.conv_general_dilated`. The traced program then has no
convolution for those layers: `jaxprune.compact.find_groups`,
`jaxprune.flops` and calibration read programs with XLA's convolution, so
models use it only when asked (`LeNet5(conv_impl='shifts')`).
"""

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

MAX_IN_CHANNELS = 3
IMPLS = ("xla", "shifts")


def _channels_last(n: int) -> tuple[str, str, str]:
  spatial = "DHW"[-n:]
  return f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"


def _ones(v: Sequence[int] | None) -> bool:
  return v is None or all(d == 1 for d in v)


def conv_by_shifts(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding: str | Sequence[tuple[int, int]],
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers: Any = None,
  feature_group_count: int = 1,
  batch_group_count: int = 1,
  precision: Any = None,
  preferred_element_type: Any = None,
) -> jax.Array:
  """`lax.conv_general_dilated`, as shifted products for few input channels.

  Args: as `jax.lax.conv_general_dilated`. Channels-last inputs and
  kernels (`NHWC`, `HWIO` for 2-D; 1 to 3 spatial axes) with at most
  `MAX_IN_CHANNELS` input channels, unit dilations and one feature and
  batch group are computed as a sum of shifted inputs times kernel rows,
  in the input dtype (`precision` and `preferred_element_type` do not
  apply); anything else goes to `lax.conv_general_dilated` unchanged.

  Returns:
    The convolution, as `lax.conv_general_dilated` returns it (equal
    within float rounding: the products are summed in another order).

  >>> x = jnp.arange(2 * 5 * 5.0).reshape(2, 5, 5, 1)
  >>> k = jnp.ones((3, 3, 1, 2))
  >>> dims = ('NHWC', 'HWIO', 'NHWC')
  >>> y = conv_by_shifts(x, k, (1, 1), 'SAME', dimension_numbers=dims)
  >>> ref = lax.conv_general_dilated(x, k, (1, 1), 'SAME',
  ...                                dimension_numbers=dims)
  >>> y.shape, bool(jnp.allclose(y, ref))
  ((2, 5, 5, 2), True)
  """
  n = rhs.ndim - 2
  kwargs = dict(
    lhs_dilation=lhs_dilation,
    rhs_dilation=rhs_dilation,
    dimension_numbers=dimension_numbers,
    feature_group_count=feature_group_count,
    batch_group_count=batch_group_count,
    precision=precision,
    preferred_element_type=preferred_element_type,
  )
  spec = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  if (
    not 1 <= n <= 3
    or spec
    != lax.conv_dimension_numbers(lhs.shape, rhs.shape, _channels_last(n))
    or lhs.shape[-1] > MAX_IN_CHANNELS
    or not (_ones(lhs_dilation) and _ones(rhs_dilation))
    or feature_group_count != 1
    or batch_group_count != 1
  ):
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)
  size = rhs.shape[:n]
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(
      lhs.shape[1:-1], size, window_strides, padding
    )
  zero = jnp.zeros((), lhs.dtype)
  x = lax.pad(
    lhs, zero, [(0, 0, 0), *((lo, hi, 0) for lo, hi in padding), (0, 0, 0)]
  )
  out_size = [
    (x.shape[1 + d] - size[d]) // window_strides[d] + 1 for d in range(n)
  ]
  y = None
  for offset in itertools.product(*(range(k) for k in size)):
    start = (0, *offset, 0)
    limit = (
      x.shape[0],
      *(
        o + (m - 1) * s + 1
        for o, m, s in zip(offset, out_size, window_strides, strict=True)
      ),
      x.shape[-1],
    )
    shifted = lax.slice(x, start, limit, (1, *window_strides, 1))
    for c in range(lhs.shape[-1]):
      term = shifted[..., c : c + 1] * rhs[(*offset, c)]
      y = term if y is None else y + term
  return y


def compiler_options() -> dict[str, str] | None:
  """`jax.jit(..., compiler_options=...)` for programs using
  `conv_by_shifts`: XLA:CPU's YNNPACK fusion off; None on other backends.

  >>> jax.jit(lambda x: 2 * x, compiler_options=compiler_options())(1.0)
  Array(2., dtype=float32, weak_type=True)
  """
  if jax.default_backend() != "cpu":
    return None
  return {"xla_cpu_experimental_ynn_fusion_type": ""}


def implementation(name: str) -> Any:
  """The `conv_general_dilated` of a `flax.linen.Conv` for `name`: None
  (flax's default, XLA's convolution) for 'xla', `conv_by_shifts` for
  'shifts'.

  Raises:
    ValueError: for another name.
  """
  if name not in IMPLS:
    raise ValueError(f"conv_impl={name!r}: expected one of {list(IMPLS)}")
  return conv_by_shifts if name == "shifts" else None
