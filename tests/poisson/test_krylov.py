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
def test_cg_matches_scipy(shape, global_random_seed, array_namespace):
    ns = array_namespace
    A = poisson_matrix(shape)
    b = np.random.default_rng(global_random_seed).standard_normal(A.shape[0])
    b_before = b.copy()
    b_given = ns.asarray(b)
    result = cg(ns.matrix(A), b_given, rtol=1e-8)
    x_ref, n_ref = _scipy_cg_iterations(A, b, 1e-8)
    assert np.array_equal(ns.to_numpy(b_given), b_before)
    assert ns.is_own(result.x)
    x = ns.to_numpy(result.x)
    assert result.converged
    # Same algorithm and stopping rule; rounding may move the last step.
    assert abs(result.n_iter - n_ref) <= 1
    np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-6 * np.abs(x_ref).max())
    np.testing.assert_allclose(x, spla.spsolve(A.tocsc(), b), atol=1e-6)
    residuals = ns.to_numpy(result.residuals)
    assert residuals.shape == (result.n_iter + 1,)
    assert residuals[0] == pytest.approx(1.0)
    assert residuals[-1] <= 1e-8
    assert result.true_residual == pytest.approx(
        np.linalg.norm(b - A @ x) / np.linalg.norm(b))


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


def test_ic0_pcg_against_scipy_with_same_preconditioner(sparse_namespace):
    ns = sparse_namespace
    A, b, _ = make_poisson_problem((14, 14, 14), "sphere", random_state=0)
    factor = IncompleteCholesky(A)
    M = spla.LinearOperator(A.shape, matvec=factor.solve)
    x_ref, n_ref = _scipy_cg_iterations(A, b, 1e-8, M=M)
    device_A = ns.matrix(A)
    result = ic0_pcg(device_A, ns.asarray(b), rtol=1e-8,
                     preconditioner=IncompleteCholesky(device_A))
    assert ns.is_own(result.x)
    x = ns.to_numpy(result.x)
    assert result.converged
    assert abs(result.n_iter - n_ref) <= 1
    assert result.n_iter < cg(A, b, rtol=1e-8).n_iter / 2
    np.testing.assert_allclose(A @ x, b, atol=1e-7 * np.linalg.norm(b))
    np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-6 * np.abs(x_ref).max())


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
    result = solver(A, b, rtol=1e-8)
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
        result = solver(A, b, maxiter=3)
    assert not result.converged
    assert result.true_residual > 1e-6


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_float32_stays_float32(solver):
    A = poisson_matrix((8, 8, 8))
    b = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    result = solver(A, b, rtol=1e-4)
    assert result.x.dtype == np.float32
    assert result.converged


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("not a matrix", np.ones(3)), {}, TypeError, "A must be"),
        ((sp.random(3, 4, density=0.5, random_state=0), np.ones(3)), {},
         ValueError, "A must be square"),
        ((sp.eye(3), np.ones(4)), {}, ValueError, "b must be"),
        ((sp.eye(3), [1.0, 1.0, 1.0]), {}, TypeError, "b must be an array"),
        ((sp.eye(3), np.array([1.0, np.nan, 0])), {}, ValueError, "b contains NaN"),
        ((sp.eye(3), np.ones(3), np.ones(2)), {}, ValueError, "x0 must be"),
        ((sp.eye(3), np.ones(3), np.array([0.0, np.inf, 0.0])), {}, ValueError,
         "x0 contains NaN"),
        ((sp.eye(3), np.ones(3)), {"rtol": 2.0}, ValueError, "rtol"),
        ((sp.eye(3), np.ones(3)), {"rtol": True}, ValueError, "rtol"),
        ((sp.eye(3), np.ones(3)), {"atol": -1.0}, ValueError, "atol"),
        ((sp.eye(3), np.ones(3)), {"maxiter": 0}, ValueError, "maxiter"),
        ((sp.eye(3), np.ones(3)), {"callback": 3}, TypeError, "callback"),
        ((sp.eye(3), np.ones(3)), {"M": "jacobi"}, TypeError, "M must be"),
        ((sp.eye(3), np.ones(3)), {"M": sp.eye(4)}, ValueError, "M must"),
        ((sp.eye(3), np.ones(3)), {"M": lambda r: r[:2]}, ValueError,
         "M must return"),
        ((sp.eye(3), np.ones(3)), {"M": lambda r: r * 1j}, TypeError, "M returned"),
        ((sp.eye(3), np.ones(3, dtype=int)), {}, TypeError, "floating"),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        cg(*args, **kwargs)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_matrix_is_rejected(solver, bad):
    # Before these checks a NaN in A gave x = 0 and converged=True.
    A = poisson_matrix((4, 4)).astype(float)
    A.data[3] = bad
    with pytest.raises(ValueError, match="A contains NaN"):
        solver(A, np.ones(16))
    with pytest.raises(ValueError, match="A contains NaN"):
        solver(A.toarray(), np.ones(16))
    with pytest.raises(ValueError, match="A contains NaN"):
        IncompleteCholesky(A)


def test_incomplete_cholesky_rejects_bad_matrices():
    with pytest.raises(ValueError, match="A must be square"):
        IncompleteCholesky(sp.random(4, 5, density=0.5, random_state=0))
    with pytest.raises(TypeError, match="A must be a sparse matrix or a dense"):
        IncompleteCholesky(spla.aslinearoperator(poisson_matrix((3, 3))))
    with pytest.raises(TypeError, match="A must be a sparse matrix or a dense"):
        IncompleteCholesky([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(TypeError, match="A must have a numeric dtype"):
        IncompleteCholesky(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="Hermitian"):
        IncompleteCholesky(sp.csr_matrix(np.array([[2.0 + 1j, 0], [0, 2.0]])))


def test_ic0_pcg_rejects_a_linear_operator():
    A = poisson_matrix((4, 4))
    with pytest.raises(TypeError, match="A must be a sparse matrix or a dense"):
        ic0_pcg(spla.aslinearoperator(A), np.ones(16))


@pytest.mark.parametrize("r", [np.ones(3), np.ones(65), np.ones((64, 1)),
                               np.ones((8, 8))])
def test_solve_with_a_wrong_length_residual_raises(r):
    # A 3-vector used to make the triangular solves write past its end.
    factor = IncompleteCholesky(poisson_matrix((4, 4, 4)))
    with pytest.raises(ValueError, match="r must be a 1D array of length 64"):
        factor.solve(r)


def test_solve_rejects_bad_residuals():
    factor = IncompleteCholesky(poisson_matrix((2, 2)))
    with pytest.raises(ValueError, match="r contains NaN"):
        factor.solve(np.array([1.0, np.nan, 0.0, 0.0]))
    with pytest.raises(TypeError, match="r must be an array"):
        factor.solve([1.0, 1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="r must be a numeric"):
        factor.solve(np.array(["a", "b", "c", "d"]))


def test_kernel_checks_the_length_itself():
    # Defence in depth: the compiled solve refuses a short vector even when
    # called directly, without the Python-side checks.
    from sparsesolve.poisson._ic0_kernels import ic0_solve

    factor = IncompleteCholesky(poisson_matrix((4, 4)))
    with pytest.raises(ValueError, match="length"):
        ic0_solve(factor._indptr, factor._indices, factor._values, np.ones(3))


@pytest.mark.parametrize(
    "kwargs",
    [{"b": np.ones(5)}, {"x0": np.ones(5)}, {"rtol": -1.0}, {"maxiter": 0},
     {"callback": "print"}, {"b": np.full(16, np.nan)}],
)
def test_ic0_pcg_checks_everything_before_the_factorisation(kwargs, monkeypatch):
    from sparsesolve.poisson import _krylov

    def kernel_must_not_run(*args):
        raise AssertionError("the IC(0) kernel ran before the arguments were checked")

    monkeypatch.setattr(_krylov, "ic0_factor", kernel_must_not_run)
    arguments = {"b": np.ones(16)} | kwargs
    b = arguments.pop("b")
    with pytest.raises((ValueError, TypeError)):
        ic0_pcg(poisson_matrix((4, 4)), b, **arguments)


def test_inputs_are_not_modified():
    A = poisson_matrix((6, 6))
    A_before = A.copy()
    b = np.random.default_rng(0).standard_normal(36)
    x0 = np.random.default_rng(1).standard_normal(36)
    b_before, x0_before = b.copy(), x0.copy()
    for solver in (cg, ic0_pcg):
        solver(A, b, x0, callback=lambda xk: None)
    assert np.array_equal(b, b_before)
    assert np.array_equal(x0, x0_before)
    assert (A_before != A).nnz == 0


def test_preconditioner_checked():
    A = poisson_matrix((4, 4))
    with pytest.raises(TypeError, match="preconditioner"):
        ic0_pcg(A, np.ones(16), preconditioner="ilu")
    with pytest.raises(ValueError, match="shape"):
        ic0_pcg(A, np.ones(16),
                preconditioner=IncompleteCholesky(poisson_matrix((3, 3))))


def test_device_mismatch_is_a_clear_error():
    array_api_strict = pytest.importorskip("array_api_strict")
    A = poisson_matrix((4, 4))
    with pytest.raises(TypeError, match="different devices"):
        cg(A, array_api_strict.ones(16, dtype=array_api_strict.float64))


@pytest.mark.parametrize("complex_rhs", [False, True])
def test_cg_is_namespace_generic(complex_rhs):
    # array_api_strict has only the standard's functions: any NumPy-only call
    # in the CG loop (which CuPy would not have either) fails here.
    xps = pytest.importorskip("array_api_strict")
    A = poisson_matrix((5, 6), boundary="neumann").toarray()
    rng = np.random.default_rng(0)
    b = rng.standard_normal(30) + (1j * rng.standard_normal(30) if complex_rhs else 0)
    M = np.diag(1.0 / np.diag(A))
    with pytest.warns(UserWarning, match="null space"):
        expected = cg(A, b, rtol=1e-10, M=M)
    with pytest.warns(UserWarning, match="null space"):
        result = cg(xps.asarray(A), xps.asarray(b), rtol=1e-10, M=xps.asarray(M),
                    callback=lambda xk: None)
    assert isinstance(result.x, type(xps.asarray(b)))
    assert result.n_iter == expected.n_iter
    np.testing.assert_allclose(np.asarray(result.x), expected.x, atol=1e-12)
