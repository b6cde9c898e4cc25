"""cg, ic0_pcg and the IC(0) factor against SciPy and brute force."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import IncompleteCholesky, cg, ic0_pcg, poisson_matrix


def _dense_ic0(A):
    """Textbook IC(0) on a dense copy (independent reference)."""
    A = A.toarray()
    n = A.shape[0]
    L = np.zeros_like(A)
    for i in range(n):
        for k in range(i):
            if A[i, k] != 0:
                L[i, k] = (A[i, k] - L[i, :k] @ L[k, :k]) / L[k, k]
        L[i, i] = np.sqrt(A[i, i] - L[i, :i] @ L[i, :i])
    return L


def _scipy_cg_iterations(A, b, tol, M=None):
    iterations = []
    x, info = spla.cg(A, b, rtol=tol, atol=0.0, M=M, maxiter=10 * A.shape[0],
                      callback=lambda xk: iterations.append(1))
    assert info == 0
    return x, len(iterations)


@pytest.mark.parametrize("shape", [(12, 12, 12), (20, 30)])
def test_cg_matches_scipy(shape, global_random_seed):
    A = poisson_matrix(shape)
    b = np.random.default_rng(global_random_seed).standard_normal(A.shape[0])
    b_before = b.copy()
    result = cg(A, b, tol=1e-8)
    x_ref, n_ref = _scipy_cg_iterations(A, b, 1e-8)
    assert np.array_equal(b, b_before)
    assert result.converged
    # Same algorithm and stopping rule; rounding may move the last step.
    assert abs(result.n_iter - n_ref) <= 1
    np.testing.assert_allclose(result.x, x_ref, rtol=0, atol=1e-6 * np.abs(x_ref).max())
    np.testing.assert_allclose(result.x, spla.spsolve(A.tocsc(), b), atol=1e-6)
    assert result.residuals.shape == (result.n_iter + 1,)
    assert result.residuals[0] == pytest.approx(1.0)
    assert result.residuals[-1] <= 1e-8
    assert result.true_residual == pytest.approx(
        np.linalg.norm(b - A @ result.x) / np.linalg.norm(b))


def test_ic0_is_exact_cholesky_for_tridiagonal():
    A = poisson_matrix((1, 9))
    L = IncompleteCholesky(A).factor.toarray()
    np.testing.assert_allclose(L, np.linalg.cholesky(A.toarray()), atol=1e-14)


@pytest.mark.parametrize("shape", [(5, 6), (4, 4, 5)])
def test_ic0_matches_dense_reference_and_pattern_property(shape):
    solid = np.zeros(shape, dtype=bool)
    A = poisson_matrix(shape, solid)
    L = IncompleteCholesky(A).factor
    np.testing.assert_allclose(L.toarray(), _dense_ic0(A), atol=1e-13)
    # IC(0): L L^T reproduces A wherever A has a stored entry.
    product = (L @ L.T).toarray()
    rows, cols = A.nonzero()
    np.testing.assert_allclose(product[rows, cols], A.toarray()[rows, cols],
                               atol=1e-12)
    assert (sp.triu(L, k=1).nnz) == 0


def test_ic0_pcg_against_scipy_with_same_preconditioner():
    A, b, _ = make_poisson_problem((14, 14, 14), "sphere", random_state=0)
    factor = IncompleteCholesky(A)
    M = spla.LinearOperator(A.shape, matvec=factor.solve)
    x_ref, n_ref = _scipy_cg_iterations(A, b, 1e-8, M=M)
    result = ic0_pcg(A, b, tol=1e-8, preconditioner=factor)
    assert result.converged
    assert abs(result.n_iter - n_ref) <= 1
    assert result.n_iter < cg(A, b, tol=1e-8).n_iter / 2
    np.testing.assert_allclose(A @ result.x, b, atol=1e-7 * np.linalg.norm(b))


def test_ic0_preconditioner_is_the_inverse_of_l_lt():
    A = poisson_matrix((6, 5, 4))
    factor = IncompleteCholesky(A)
    r = np.random.default_rng(0).standard_normal(A.shape[0])
    L = factor.factor.toarray()
    np.testing.assert_allclose(factor.solve(r), np.linalg.solve(L @ L.T, r),
                               atol=1e-10)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_singular_neumann_system(solver):
    A, b, solid = make_poisson_problem((10, 10, 10), "sphere", boundary="neumann",
                                       random_state=2)
    result = solver(A, b, tol=1e-8)
    assert result.converged
    assert np.linalg.norm(b - A @ result.x) <= 1e-8 * np.linalg.norm(b)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_incompatible_rhs_warns_and_solves_projected_system(solver):
    A = poisson_matrix((8, 8), boundary="neumann")
    b = np.ones(64) + np.random.default_rng(0).standard_normal(64)
    with pytest.warns(UserWarning, match="null space"):
        result = solver(A, b)
    projected = b - b.mean()
    assert np.linalg.norm(projected - A @ result.x) <= 1e-6 * np.linalg.norm(projected)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_non_convergence_warns(solver):
    A = poisson_matrix((16, 16, 16))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    with pytest.warns(ConvergenceWarning, match="did not reach"):
        result = solver(A, b, max_iter=3)
    assert not result.converged
    assert result.true_residual > 1e-6


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_float32_stays_float32(solver):
    A = poisson_matrix((8, 8, 8))
    b = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    result = solver(A, b, tol=1e-4)
    assert result.x.dtype == np.float32
    assert result.converged


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.eye(3), np.ones(3)), {}, TypeError, "A must be"),
        ((sp.eye(3), np.ones(4)), {}, ValueError, "b must be"),
        ((sp.eye(3), np.array([1.0, np.nan, 0])), {}, ValueError, "NaN"),
        ((sp.eye(3), np.ones(3)), {"tol": 2.0}, ValueError, "tol"),
        ((sp.eye(3), np.ones(3)), {"max_iter": 0}, ValueError, "max_iter"),
        ((sp.eye(3), np.ones(3, dtype=int)), {}, TypeError, "floating"),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        cg(*args, **kwargs)


def test_preconditioner_checked():
    A = poisson_matrix((4, 4))
    with pytest.raises(TypeError, match="preconditioner"):
        ic0_pcg(A, np.ones(16), preconditioner="ilu")
    with pytest.raises(ValueError, match="shape"):
        ic0_pcg(A, np.ones(16),
                preconditioner=IncompleteCholesky(poisson_matrix((3, 3))))


@pytest.mark.gpu
@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_cupy_matches_numpy(solver):
    cupy = pytest.importorskip("cupy")
    import cupyx.scipy.sparse as cusparse

    A, b, _ = make_poisson_problem((12, 12, 12), "sphere", random_state=0)
    cpu = solver(A, b, tol=1e-8)
    gpu = solver(cusparse.csr_matrix(A), cupy.asarray(b), tol=1e-8)
    assert isinstance(gpu.x, cupy.ndarray)
    assert abs(gpu.n_iter - cpu.n_iter) <= 1
    np.testing.assert_allclose(gpu.x.get(), cpu.x, atol=1e-6)


def test_device_mismatch_is_a_clear_error():
    array_api_strict = pytest.importorskip("array_api_strict")
    A = poisson_matrix((4, 4))
    with pytest.raises(TypeError, match="different devices"):
        cg(A, array_api_strict.ones(16, dtype=array_api_strict.float64))
