"""The shared small Cholesky bodies against NumPy and SciPy."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import cho_solve

from sparsesolve import _small_linalg
from sparsesolve._small_linalg import (
    cholesky_factor,
    cholesky_solve,
    relative_pivot_floor,
)


def _spd(rng, n):
    matrix = rng.standard_normal((n, n + 3))
    return matrix @ matrix.T + 0.1 * np.eye(n)


def _compiled():
    from numba import njit

    floor = njit(relative_pivot_floor)
    factor = njit(cholesky_factor)
    solve = njit(cholesky_solve)
    return floor, factor, solve


@pytest.mark.parametrize("compiled", [False, True], ids=["python", "numba"])
@pytest.mark.parametrize("n", [1, 2, 7, 20])
def test_factor_and_solve_match_numpy_and_scipy(compiled, n):
    rng = np.random.RandomState(n)
    floor, factor, solve = _compiled() if compiled else (
        relative_pivot_floor, cholesky_factor, cholesky_solve)
    matrix = _spd(rng, n)
    rhs = rng.standard_normal(n)
    # Workspace larger than the system: only the leading n x n block is used.
    work = np.full((n + 2, n + 2), np.nan)
    work[:n, :n] = matrix
    assert factor(work, n, floor(work, n)) == 0
    lower = np.linalg.cholesky(matrix)
    assert_allclose(np.tril(work[:n, :n]), lower, rtol=1e-12, atol=1e-12)
    assert np.isnan(work[n:, :]).all()
    assert np.isnan(work[:, n:]).all()
    out = np.zeros(n + 1)
    solve(work, rhs, out, n)
    assert_allclose(out[:n], cho_solve((lower, True), rhs), rtol=1e-10)
    # In place (out is rhs), as the coding refit calls it.
    again = rhs.copy()
    solve(work, again, again, n)
    assert_allclose(again, out[:n], rtol=0, atol=0)


def test_only_the_lower_triangle_is_read():
    rng = np.random.RandomState(0)
    matrix = _spd(rng, 5)
    work = np.tril(matrix) + np.triu(np.full((5, 5), 1e6), 1)
    cholesky_factor(work, 5, relative_pivot_floor(work, 5))
    assert_allclose(np.tril(work), np.linalg.cholesky(matrix), rtol=1e-12)


def test_singular_and_indefinite_matrices_are_floored_and_counted():
    # Rank one: the second pivot is round-off, floored (a tiny ridge) and
    # counted; the factor stays finite (completion relies on that).
    vector = np.array([1.0, 2.0, 3.0])
    work = np.outer(vector, vector)
    floored = cholesky_factor(work, 3, relative_pivot_floor(work, 3))
    assert floored == 2
    assert np.isfinite(np.tril(work)).all()
    # Indefinite: the coding refit treats a nonzero count as "no solution".
    work = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert cholesky_factor(work, 2, relative_pivot_floor(work, 2)) == 1


def test_one_cholesky_body_in_the_package():
    # Every row kernel that factors a small matrix (the coding refit, the
    # completion row solves) calls these bodies; no module defines its own.
    import ast
    import pathlib

    import sparsesolve
    from sparsesolve.coding import _kernels as coding_kernels
    from sparsesolve.completion import _kernels as completion_kernels

    for module in (coding_kernels, completion_kernels):
        assert module.cholesky_factor is _small_linalg.cholesky_factor
        assert module.cholesky_solve is _small_linalg.cholesky_solve
    root = pathlib.Path(sparsesolve.__file__).parent
    definitions = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and "cholesky" in node.name.lower()
        and node.name not in {"ridge_cholesky"}
    )
    assert set(definitions) == {"_small_linalg.py"}, definitions
