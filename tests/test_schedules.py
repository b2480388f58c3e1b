"""Schedules against hand-worked values."""

import numpy as np
import pytest

from jaxprune.core import schedules


def test_polynomial_matches_zhu_gupta_table():
  # s_i = 0, s_f = 0.9, 10 updates (ALGORITHMS.md section 3).
  expect = [0, 0.244, 0.439, 0.591, 0.706, 0.788, 0.842, 0.876, 0.893, 0.899]
  s = schedules.polynomial(0.9, begin=0, end=1000, frequency=100)
  got = [float(s.sparsity(t)) for t in range(0, 1000, 100)]
  np.testing.assert_allclose(got, expect, atol=6e-4)
  assert float(s.sparsity(1000)) == np.float32(0.9)
  assert float(s.sparsity(5000)) == np.float32(0.9)


def test_polynomial_updates_at_end_when_window_is_not_a_multiple():
  s = schedules.polynomial(0.5, begin=10, end=95, frequency=20)
  steps = [t for t in range(0, 120) if bool(s.is_update(t))]
  assert steps == [10, 30, 50, 70, 90, 95]
  assert float(s.sparsity(95)) == np.float32(0.5)


def test_polynomial_with_initial_sparsity():
  s = schedules.polynomial(0.9, begin=0, end=100, frequency=10, initial=0.5)
  assert float(s.sparsity(0)) == np.float32(0.5)
  np.testing.assert_allclose(float(s.sparsity(50)), 0.9 - 0.4 * 0.125)


def test_one_shot_and_constant():
  s = schedules.one_shot(0.7, step=3)
  assert [bool(s.is_update(t)) for t in range(5)] == [0, 0, 0, 1, 0]
  c = schedules.constant(0.5, begin=10, end=30, frequency=10)
  assert [t for t in range(50) if bool(c.is_update(t))] == [10, 20, 30]


def test_geometric_rounds():
  got = [float(schedules.geometric(0.2, r)) for r in (0, 1, 3)]
  np.testing.assert_allclose(got, [0.0, 0.2, 1 - 0.8**3], rtol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_sparsity_out_of_range(bad):
  with pytest.raises(ValueError, match=f"sparsity={bad}.*\\[0, 1\\]"):
    schedules.one_shot(bad)
  with pytest.raises(ValueError, match=f"final={bad}"):
    schedules.polynomial(bad, 0, 10, 1)


def test_bad_window():
  with pytest.raises(ValueError, match="frequency=0"):
    schedules.polynomial(0.5, 0, 10, 0)
  with pytest.raises(ValueError, match="end > begin"):
    schedules.polynomial(0.5, 10, 10, 1)


def test_which_schedules_never_decrease():
  assert schedules.one_shot(0.7, step=3).monotone
  assert schedules.constant(0.5, end=10).monotone
  assert schedules.polynomial(0.9, 0, 100, 10, initial=0.5).monotone
  assert not schedules.polynomial(0.2, 0, 100, 10, initial=0.5).monotone
