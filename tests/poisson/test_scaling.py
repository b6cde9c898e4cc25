"""Scale invariance of the Poisson solvers: s * b and s * A for s = 1e+-300."""

import warnings

import numpy as np
import pytest

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import DeepConjugateDirection, cg, ic0_pcg


@pytest.fixture(scope="module")
def problem():
    A, b, _ = make_poisson_problem((8, 8, 8), "sphere", random_state=0)
    return A.tocsr(), b


def _solvers():
    return {
        "cg": lambda A, b: cg(A, b, rtol=1e-8).x,
        "ic0_pcg": lambda A, b: ic0_pcg(A, b, rtol=1e-8).x,
        "DeepConjugateDirection": lambda A, b: DeepConjugateDirection(
            tol=1e-8).fit(A).solve(b),
    }


@pytest.mark.parametrize("name", list(_solvers()))
@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
def test_scaled_right_hand_side_gives_scaled_solution(problem, name, scale):
    A, b = problem
    solve = _solvers()[name]
    reference = solve(A, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow inside
        x = solve(A, scale * b)
    # Each solve meets 1e-8 relative to its own b: the two solutions agree
    # to that accuracy times the condition number of this small system.
    np.testing.assert_allclose(x / scale, reference,
                               atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("name", list(_solvers()))
@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_scaled_matrix_gives_inversely_scaled_solution(problem, name, scale):
    A, b = problem
    solve = _solvers()[name]
    reference = solve(A, b)
    x = solve(scale * A, b)
    np.testing.assert_allclose(x * scale, reference,
                               atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("name", list(_solvers()))
def test_zero_right_hand_side_gives_zero(problem, name):
    A, _ = problem
    x = _solvers()[name](A, np.zeros(A.shape[0]))
    assert np.array_equal(x, np.zeros(A.shape[0]))
