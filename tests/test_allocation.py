"""Layerwise ratios: the ERK table for LeNet-300-100, ER, fixed leaves."""

import numpy as np
import pytest

from jaxprune.core import allocation
from jaxprune.core.policy import LeafRule

LENET = [(784, 300), (300, 100), (100, 10)]

# Densities from ALGORITHMS.md section 5 (rigl's ERK with dense capping).
ERK_TABLE = {
  0.5: (0.434, 1.0, 1.0),
  0.2: (0.162, 0.469, 1.0),
  0.1: (0.080, 0.230, 1.0),
  0.05: (0.039, 0.111, 0.919),
  0.02: (0.015, 0.045, 0.367),
}


@pytest.mark.parametrize("density", sorted(ERK_TABLE))
def test_erk_lenet_table(density):
  got = 1.0 - np.asarray(allocation.erk(LENET, 1.0 - density))
  np.testing.assert_allclose(got, ERK_TABLE[density], atol=1e-3)
  sizes = np.array([np.prod(s) for s in LENET])
  assert abs((got * sizes).sum() / sizes.sum() - density) < 1e-6


def test_er_ignores_kernel_dims():
  shapes = [(3, 3, 16, 32), (3, 3, 32, 64)]
  erk = 1 - np.asarray(allocation.erk(shapes, 0.9, kernel=True))
  er = 1 - np.asarray(allocation.erk(shapes, 0.9, kernel=False))
  # ER: density ratio of the two layers is (16+32)/(16*32) : (32+64)/(32*64)
  np.testing.assert_allclose(er[0] / er[1], (48 / 512) / (96 / 2048), rtol=1e-5)
  np.testing.assert_allclose(
    erk[0] / erk[1], (6 + 48) / (9 * 512) / ((6 + 96) / (9 * 2048)), rtol=1e-5
  )


def test_erk_fixed_leaf_taken_out_of_budget():
  rules = [None, None, 0.0]  # output layer dense
  got = 1 - np.asarray(allocation.erk(LENET, 0.9, rules))
  sizes = np.array([np.prod(s) for s in LENET])
  assert got[2] == 1.0
  np.testing.assert_allclose((got * sizes).sum() / sizes.sum(), 0.1, atol=1e-6)
  # the free layers keep the ERK proportion between them
  raw = [(784 + 300) / (784 * 300), (300 + 100) / (300 * 100)]
  np.testing.assert_allclose(got[0] / got[1], raw[0] / raw[1], rtol=1e-5)


def test_uniform_scale_and_fixed():
  rules = [LeafRule(), LeafRule(scale=0.5), LeafRule(fixed=0.25)]
  got = allocation.leaf_sparsities(
    "uniform", ["a", "b", "c"], LENET, rules, 0.8
  )
  np.testing.assert_allclose([float(x) for x in got], [0.8, 0.4, 0.25])


def test_user_map_and_unmatched_leaf():
  rules = [LeafRule()] * 2
  got = allocation.leaf_sparsities(
    {"fc1": 0.9, "fc2": 0.5},
    ["p/fc1/kernel", "p/fc2/kernel"],
    LENET[:2],
    rules,
    0.0,
  )
  np.testing.assert_allclose([float(x) for x in got], [0.9, 0.5])
  with pytest.raises(ValueError, match="no pattern matching 'p/fc2/kernel'"):
    allocation.leaf_sparsities(
      {"fc1": 0.9}, ["p/fc1/kernel", "p/fc2/kernel"], LENET[:2], rules, 0.0
    )


def test_unknown_distribution_lists_known():
  with pytest.raises(ValueError, match="distribution='erdos'.*'erk'"):
    allocation.check_distribution("erdos")


def test_scale_refused_under_erk():
  with pytest.raises(ValueError, match="Policy.scale matches 'b'"):
    allocation.leaf_sparsities(
      "erk", ["a", "b"], LENET[:2], [LeafRule(), LeafRule(scale=0.5)], 0.9
    )
