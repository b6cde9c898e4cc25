"""Thresholding operators against brute-force proximal minimisation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparsesolve.coding import threshold

# Brute force: minimise 0.5 (u - x)^2 + step * lam * penalty(u) on a fine grid
# around x. The grid spacing 1e-4 bounds the error of the minimiser location.
_GRID_SPACING = 1e-4


def _brute_force_prox(x, penalty, lam, step):
    grid = np.arange(-abs(x) - 1, abs(x) + 1, _GRID_SPACING)
    grid = np.append(grid, 0.0)
    values = {"l1": np.abs(grid), "l0": (grid != 0).astype(float)}[penalty]
    objective = 0.5 * (grid - x) ** 2 + step * lam * values
    return grid[np.argmin(objective)]


@settings(max_examples=60, deadline=None)
@given(
    x=st.floats(-5, 5),
    lam=st.floats(0.01, 2),
    step=st.floats(0.1, 2),
    penalty=st.sampled_from(["l1", "l0"]),
)
def test_threshold_is_the_proximal_minimiser(x, lam, step, penalty):
    expected = _brute_force_prox(x, penalty, lam, step)
    got = threshold(np.array([x]), penalty, lam, step)[0]
    if penalty == "l0" and abs(abs(x) - np.sqrt(2 * step * lam)) < 1e-3:
        return  # two minimisers tie at the threshold; either is correct
    assert abs(got - expected) <= 2 * _GRID_SPACING


def test_soft_threshold_is_nonexpansive():
    rng = np.random.RandomState(0)
    a, b = rng.standard_normal((2, 500))
    pa, pb = threshold(a, "l1", 0.3), threshold(b, "l1", 0.3)
    assert np.all(np.abs(pa - pb) <= np.abs(a - b) + 1e-15)


def test_threshold_validates_arguments():
    with pytest.raises(ValueError, match="penalty"):
        threshold(np.ones(2), "l2", 1.0)
    with pytest.raises(ValueError, match="step"):
        threshold(np.ones(2), "l1", 1.0, step=0.0)
    with pytest.raises(ValueError, match="lam"):
        threshold(np.ones(2), "l1", -1.0)


def test_per_column_lambda_matches_loop():
    rng = np.random.RandomState(1)
    x = rng.standard_normal((4, 3))
    lam = np.array([0.1, 0.5, 1.0])
    expected = np.column_stack([threshold(x[:, j], "l1", lam[j]) for j in range(3)])
    assert_allclose(threshold(x, "l1", lam), expected)
