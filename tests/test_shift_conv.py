"""Convolutions as sums of shifted inputs (jaxprune.models.shift_conv).

Expected values come from a float64 numpy convolution written here
(zero-pad, then per output position the patch times the kernel).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import compact, models
from jaxprune.models import shift_conv

DIMS = ("NHWC", "HWIO", "NHWC")


def _numpy_conv(x, k, strides, pads):
  """Cross-correlation of NHWC `x` with HWIO `k`, float64."""
  x = np.pad(np.asarray(x, np.float64), [(0, 0), *pads, (0, 0)])
  k = np.asarray(k, np.float64)
  kh, kw = k.shape[:2]
  sh, sw = strides
  oh = (x.shape[1] - kh) // sh + 1
  ow = (x.shape[2] - kw) // sw + 1
  out = np.zeros((x.shape[0], oh, ow, k.shape[-1]))
  for i in range(oh):
    for j in range(ow):
      patch = x[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
      out[:, i, j] = np.einsum("nhwc,hwco->no", patch, k)
  return out


@pytest.mark.parametrize(
  "c_in,size,strides,padding,pads",
  [
    (1, (5, 5), (1, 1), "SAME", [(2, 2), (2, 2)]),
    (3, (3, 3), (1, 1), "SAME", [(1, 1), (1, 1)]),
    (2, (5, 5), (1, 1), "VALID", [(0, 0), (0, 0)]),
    (3, (3, 3), (2, 2), "SAME", [(1, 1), (1, 1)]),  # 9x9 -> 5x5
    (1, (3, 2), (2, 1), [(1, 0), (2, 1)], [(1, 0), (2, 1)]),
  ],
)
def test_conv_by_shifts_equals_numpy(c_in, size, strides, padding, pads):
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, c_in))
  k = jax.random.normal(jax.random.key(1), (*size, c_in, 4))
  conv = jax.jit(
    lambda x, k: shift_conv.conv_by_shifts(
      x, k, strides, padding, dimension_numbers=DIMS
    )
  )
  y = conv(x, k)
  np.testing.assert_allclose(y, _numpy_conv(x, k, strides, pads), atol=1e-5)
  # Computed by shifts: no convolution in the program.
  assert "conv_general_dilated" not in str(jax.make_jaxpr(conv)(x, k))


def test_other_convolutions_go_to_xla():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))  # 4 > 3 channels
  k = jax.random.normal(jax.random.key(1), (3, 3, 4, 2))
  conv = lambda x, k: shift_conv.conv_by_shifts(
    x, k, (1, 1), "SAME", dimension_numbers=DIMS
  )
  assert "conv_general_dilated" in str(jax.make_jaxpr(conv)(x, k))
  pads = [(1, 1), (1, 1)]
  np.testing.assert_allclose(
    conv(x, k), _numpy_conv(x, k, (1, 1), pads), atol=1e-4
  )
  dilated = lambda x, k: shift_conv.conv_by_shifts(
    x[..., :1],
    k[:, :, :1],
    (1, 1),
    "SAME",
    rhs_dilation=(2, 2),
    dimension_numbers=DIMS,
  )
  assert "conv_general_dilated" in str(jax.make_jaxpr(dilated)(x, k))


def test_lenet5_and_resnet20_with_shifts_equal_xla():
  x = jax.random.normal(jax.random.key(2), (3, 28, 28, 1))
  model = models.LeNet5()
  variables = model.init(jax.random.key(0), x)
  fast = model.clone(conv_impl="shifts")
  np.testing.assert_allclose(
    fast.apply(variables, x), model.apply(variables, x), atol=1e-5
  )
  # Compacted to 2 of conv1's 6 filters, conv2 reads 2 channels: shifts too.
  units = compact.find_groups(model.apply, variables, x[:1])
  masks = compact.select_units(variables, units, 0.75)
  small_model, small = compact.compact_model(model, variables, masks, x[:1])
  assert small["params"]["conv2"]["kernel"].shape[2] == 2
  fast_small = small_model.clone(conv_impl="shifts")
  jaxpr = str(jax.make_jaxpr(fast_small.apply)(small, x))
  assert "conv_general_dilated" not in jaxpr
  np.testing.assert_allclose(
    fast_small.apply(small, x), small_model.apply(small, x), atol=1e-5
  )
  x = jax.random.normal(jax.random.key(3), (2, 32, 32, 3))
  model = models.ResNet20()
  variables = model.init(jax.random.key(0), x)
  fast = model.clone(conv_impl="shifts")
  np.testing.assert_allclose(
    fast.apply(variables, x), model.apply(variables, x), atol=1e-5
  )


def test_unknown_conv_impl():
  x = jnp.zeros((1, 28, 28, 1))
  with pytest.raises(ValueError, match="conv_impl='fft'.*'xla', 'shifts'"):
    models.LeNet5(conv_impl="fft").init(jax.random.key(0), x)
