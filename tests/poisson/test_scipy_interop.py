"""cg / ic0_pcg / IncompleteCholesky used the way SciPy users use scipy.sparse.linalg.

Every check runs SciPy on the same data: scipy.sparse.linalg.cg for the
iteration (same recurrence, so the same iterates up to rounding) and
scipy.sparse.linalg.spsolve for the solution.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.poisson import (
    IncompleteCholesky,
    KrylovResult,
    cg,
    ic0_pcg,
    poisson_matrix,
)


def _magnetic_laplacian(shape, seed):
    """Complex Hermitian positive definite: the Dirichlet Poisson matrix with
    a random phase ``exp(i theta)`` on every coupling (a discrete magnetic
    Laplacian). Same magnitudes as the real matrix, so it is diagonally
    dominant and irreducible, hence positive definite."""
    A = poisson_matrix(shape)
    lower = sp.tril(A, k=-1).tocoo()
    theta = np.random.default_rng(seed).uniform(0, 2 * np.pi, lower.nnz)
    L = sp.csr_matrix((lower.data * np.exp(1j * theta), (lower.row, lower.col)),
                      shape=A.shape)
    return (L + L.conj().T + sp.diags(A.diagonal())).tocsr()


def _complex_vector(n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n) + 1j * rng.standard_normal(n)


def _scipy_cg(A, b, **kwargs):
    """SciPy's cg with the iterates it passes to the callback (copied)."""
    iterates = []
    x, info = spla.cg(A, b, callback=lambda xk: iterates.append(xk.copy()), **kwargs)
    return x, info, iterates


def _our_iterates(solver, A, b, **kwargs):
    iterates = []
    result = solver(A, b, callback=lambda xk: iterates.append(xk.copy()), **kwargs)
    return result, iterates


# --------------------------------------------------------------------------
# The stopping rule and the callback
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rtol", "atol_share"),
    # rtol alone, atol alone (rtol 0 and 1e-12) and both active.
    [(1e-8, 0.0), (0.0, 1e-6), (1e-12, 1e-6), (1e-4, 1e-5)],
)
def test_iterations_and_iterates_match_scipy(rtol, atol_share, global_random_seed):
    A = poisson_matrix((10, 12, 9))
    b = np.random.default_rng(global_random_seed).standard_normal(A.shape[0])
    atol = atol_share * np.linalg.norm(b)
    x_ref, info, scipy_iterates = _scipy_cg(A, b, rtol=rtol, atol=atol)
    result, iterates = _our_iterates(cg, A, b, rtol=rtol, atol=atol)
    assert info == 0
    assert result.info == 0
    assert result.converged
    # SciPy stops on ||r|| < atol' (recursive residual), this cg on
    # ||r|| <= atol' (true residual): at most one iteration apart.
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    # The callback runs once per iteration, with the iterate SciPy has.
    assert len(iterates) == result.n_iter
    for ours, theirs in zip(iterates, scipy_iterates, strict=False):
        # Same recurrence; only the summation order of the dots differs.
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=1e-9 * np.abs(theirs).max())
    assert np.linalg.norm(b - A @ result.x) <= max(rtol * np.linalg.norm(b), atol)
    np.testing.assert_allclose(result.x, x_ref, rtol=0,
                               atol=10 * max(rtol, atol_share) * np.abs(x_ref).max())


def test_info_counts_iterations_when_not_converged():
    A = poisson_matrix((12, 12, 12))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    with pytest.warns(ConvergenceWarning, match="did not reach"):
        result, iterates = _our_iterates(cg, A, b, maxiter=7)
    _, info, scipy_iterates = _scipy_cg(A, b, maxiter=7, rtol=1e-6)
    assert result.info == info == 7
    assert result.n_iter == len(iterates) == len(scipy_iterates) == 7
    np.testing.assert_allclose(result.x, scipy_iterates[-1], atol=1e-10)


def test_breakdown_is_reported_not_silent():
    A = sp.diags([1.0, -1.0, 2.0]).tocsr()  # indefinite
    with pytest.warns(ConvergenceWarning, match="breakdown"):
        result = cg(A, np.array([1.0, 1.0, 0.0]))
    assert result.info == -1
    assert not result.converged

    # A LinearOperator cannot be checked for NaN up front; a NaN product
    # still ends the solve as a breakdown instead of a "converged" zero.
    operator = spla.LinearOperator((3, 3), matvec=lambda v: np.full(3, np.nan),
                                   dtype=float)
    with pytest.warns(ConvergenceWarning, match="breakdown"):
        result = cg(operator, np.ones(3))
    assert result.info == -1


def test_result_keeps_its_fields_and_info_defaults_from_converged():
    assert KrylovResult(np.zeros(2), 3, np.ones(4), True, 0.0).info == 0
    assert KrylovResult(np.zeros(2), 3, np.ones(4), False, 1.0).info == 3
    result = cg(poisson_matrix((5, 5)), np.ones(25))
    x, info = result.x, result.info  # reads like SciPy's (x, info)
    assert info == 0
    assert result.residuals.shape == (result.n_iter + 1,)
    assert result.true_residual == pytest.approx(
        np.linalg.norm(np.ones(25) - poisson_matrix((5, 5)) @ x) / 5)


def test_x0_is_used_and_not_modified():
    A = poisson_matrix((8, 8, 8))
    b = np.random.default_rng(0).standard_normal(512)
    noise = np.random.default_rng(1).standard_normal(512)
    x0 = spla.spsolve(A.tocsc(), b) + 1e-3 * noise
    x0_before = x0.copy()
    result, iterates = _our_iterates(cg, A, b, x0=x0, rtol=1e-8)
    _, info, scipy_iterates = _scipy_cg(A, b, x0=x0, rtol=1e-8)
    assert np.array_equal(x0, x0_before)
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    assert result.n_iter < cg(A, b, rtol=1e-8).n_iter
    # (n, 1) columns are accepted as in SciPy; x comes back 1D.
    column = cg(A, b[:, None], x0=x0[:, None], rtol=1e-8)
    assert column.x.shape == (512,)
    np.testing.assert_array_equal(column.x, result.x)


# --------------------------------------------------------------------------
# M as a LinearOperator, a callable or a matrix
# --------------------------------------------------------------------------
def _jacobi_forms(A):
    inverse_diagonal = 1.0 / A.diagonal()
    matrix = sp.diags(inverse_diagonal).tocsr()
    return {
        "sparse": matrix,
        "dense": matrix.toarray(),
        "linear_operator": spla.LinearOperator(
            A.shape, matvec=lambda r: inverse_diagonal * r, dtype=float),
        "callable": lambda r: inverse_diagonal * r,
    }


@pytest.mark.parametrize("form", ["sparse", "dense", "linear_operator", "callable"])
def test_preconditioner_forms_match_scipy(form):
    # A variable-coefficient matrix, so Jacobi actually changes the iterates.
    A = poisson_matrix((9, 10, 11)) + sp.diags(
        np.random.default_rng(3).uniform(0, 5, 990))
    A = A.tocsr()
    b = np.random.default_rng(4).standard_normal(990)
    M = _jacobi_forms(A)[form]
    x_ref, info, scipy_iterates = _scipy_cg(A, b, rtol=1e-8,
                                            M=_jacobi_forms(A)["sparse"])
    result, iterates = _our_iterates(cg, A, b, rtol=1e-8, M=M)
    assert info == 0
    assert result.converged
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    assert result.n_iter < cg(A, b, rtol=1e-8).n_iter
    for ours, theirs in zip(iterates, scipy_iterates, strict=False):
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=1e-9 * np.abs(theirs).max())


def test_incomplete_cholesky_as_scipy_preconditioner_gives_ic0_pcg_iterates():
    A = poisson_matrix((12, 11, 10))
    b = np.random.default_rng(5).standard_normal(A.shape[0])
    factor = IncompleteCholesky(A)
    M = factor.aslinearoperator()
    assert isinstance(M, spla.LinearOperator)
    assert M.shape == A.shape
    x_ref, info, scipy_iterates = _scipy_cg(A, b, rtol=1e-8, M=M)
    result, iterates = _our_iterates(ic0_pcg, A, b, rtol=1e-8,
                                     preconditioner=factor)
    assert info == 0
    assert result.converged
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    for ours, theirs in zip(iterates, scipy_iterates, strict=False):
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=1e-9 * np.abs(theirs).max())
    # The same operator as M of this cg is ic0_pcg.
    via_cg = cg(A, b, rtol=1e-8, M=M)
    assert via_cg.n_iter == result.n_iter
    np.testing.assert_allclose(via_cg.x, result.x, atol=1e-12 * np.abs(result.x).max())
    # matvec is the preconditioner solve, also on (n, 1) columns.
    r = np.random.default_rng(6).standard_normal(A.shape[0])
    np.testing.assert_array_equal(M.matvec(r), factor.solve(r))
    np.testing.assert_array_equal(M.matvec(r[:, None])[:, 0], factor.solve(r))
    np.testing.assert_array_equal(M.rmatvec(r), factor.solve(r))


# --------------------------------------------------------------------------
# A as a LinearOperator or a dense array
# --------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["linear_operator", "custom_operator", "dense"])
def test_operator_forms_of_a(form):
    A = poisson_matrix((10, 10, 10))
    b = np.random.default_rng(7).standard_normal(1000)
    operator = {
        "linear_operator": spla.aslinearoperator(A),
        "custom_operator": spla.LinearOperator(A.shape, matvec=lambda v: A @ v,
                                               dtype=float),
        "dense": A.toarray(),
    }[form]
    x_ref, info, scipy_iterates = _scipy_cg(operator, b, rtol=1e-8)
    result, iterates = _our_iterates(cg, operator, b, rtol=1e-8)
    assert result.converged
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    np.testing.assert_allclose(result.x, spla.spsolve(A.tocsc(), b), atol=1e-6)
    np.testing.assert_allclose(result.x, cg(A, b, rtol=1e-8).x, atol=1e-12)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
@pytest.mark.parametrize("container", [sp.csr_array, sp.csc_array, sp.coo_matrix,
                                       sp.dia_array, sp.lil_matrix])
def test_every_sparse_container_gives_the_csr_result(solver, container):
    A = poisson_matrix((6, 7, 5))
    b = np.random.default_rng(14).standard_normal(A.shape[0])
    reference = solver(A, b, rtol=1e-10)
    result = solver(container(A), b, rtol=1e-10)
    assert result.converged
    assert abs(result.n_iter - reference.n_iter) <= 1
    np.testing.assert_allclose(result.x, reference.x, atol=1e-9)


def test_linear_operator_skips_the_null_space_projection():
    # Closed box: the constant is a null vector. A matrix gets b projected
    # (with a warning); an operator cannot, and b must then be in the range.
    A = poisson_matrix((8, 8), boundary="neumann")
    b = np.random.default_rng(8).standard_normal(64)
    b_range = b - b.mean()
    with pytest.warns(UserWarning, match="null space"):
        matrix_result = cg(A, b, rtol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        operator_result = cg(spla.aslinearoperator(A), b_range, rtol=1e-8)
    assert matrix_result.converged
    assert operator_result.converged
    assert np.linalg.norm(A @ operator_result.x - b_range) <= 1e-8 * np.linalg.norm(b)
    with pytest.warns(ConvergenceWarning):
        cg(spla.aslinearoperator(A), b, maxiter=200)


def test_float32_operator_and_preconditioner_keep_float32():
    A = poisson_matrix((8, 8, 8))
    b = np.random.default_rng(9).standard_normal(512).astype(np.float32)
    M = IncompleteCholesky(A).aslinearoperator()  # float64 output
    result = cg(spla.aslinearoperator(A), b, rtol=1e-4, M=M)
    assert result.x.dtype == np.float32
    assert result.converged


# --------------------------------------------------------------------------
# Complex Hermitian systems
# --------------------------------------------------------------------------
def _dense_complex_ic0(A):
    """Textbook IC(0) for Hermitian A (L L^H on the pattern), dense."""
    A = A.toarray()
    n = A.shape[0]
    L = np.zeros_like(A)
    for i in range(n):
        for k in range(i):
            if A[i, k] != 0:
                L[i, k] = (A[i, k] - L[i, :k] @ L[k, :k].conj()) / L[k, k]
        L[i, i] = np.sqrt(A[i, i].real - np.sum(np.abs(L[i, :i]) ** 2))
    return L


def test_complex_ic0_factor_matches_dense_reference():
    A = _magnetic_laplacian((5, 6), seed=0)
    L = IncompleteCholesky(A).factor
    assert L.dtype == np.complex128
    np.testing.assert_allclose(L.toarray(), _dense_complex_ic0(A), atol=1e-13)
    # IC(0): L L^H reproduces A wherever A has a stored entry.
    product = (L @ L.conj().T).toarray()
    rows, cols = A.nonzero()
    np.testing.assert_allclose(product[rows, cols], A.toarray()[rows, cols],
                               atol=1e-12)
    assert np.all(L.diagonal().imag == 0)


def test_complex_preconditioner_is_the_inverse_of_l_lh():
    A = _magnetic_laplacian((6, 5), seed=1)
    factor = IncompleteCholesky(A)
    L = factor.factor.toarray()
    r = _complex_vector(30, seed=2)
    np.testing.assert_allclose(factor.solve(r), np.linalg.solve(L @ L.conj().T, r),
                               atol=1e-12)
    # A real residual through a complex factor comes back complex.
    assert factor.solve(r.real).dtype == np.complex128


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
@pytest.mark.parametrize("form", ["sparse", "dense"])
def test_complex_hermitian_system_matches_spsolve(solver, form):
    A = _magnetic_laplacian((12, 13), seed=3)
    b = _complex_vector(A.shape[0], seed=4)
    reference = spla.spsolve(A.tocsc(), b)
    result = solver(A if form == "sparse" else A.toarray(), b, rtol=1e-10)
    assert result.converged
    assert result.x.dtype == np.complex128
    # rtol 1e-10 and a condition number near 10 (smallest eigenvalue ~0.6).
    np.testing.assert_allclose(result.x, reference, atol=1e-8)
    assert np.linalg.norm(b - A @ result.x) <= 1e-10 * np.linalg.norm(b)


def test_complex_cg_iterates_match_scipy():
    A = _magnetic_laplacian((11, 12), seed=5)
    b = _complex_vector(A.shape[0], seed=6)
    _, info, scipy_iterates = _scipy_cg(A, b, rtol=1e-10)
    result, iterates = _our_iterates(cg, A, b, rtol=1e-10)
    assert info == 0
    assert result.converged
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    for ours, theirs in zip(iterates, scipy_iterates, strict=False):
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=1e-9 * np.abs(theirs).max())


def test_complex_ic0_as_scipy_preconditioner():
    A = _magnetic_laplacian((14, 14), seed=7)
    b = _complex_vector(A.shape[0], seed=8)
    factor = IncompleteCholesky(A)
    _, info, scipy_iterates = _scipy_cg(A, b, rtol=1e-10, M=factor.aslinearoperator())
    result, iterates = _our_iterates(ic0_pcg, A, b, rtol=1e-10, preconditioner=factor)
    assert info == 0
    assert result.converged
    assert abs(result.n_iter - len(scipy_iterates)) <= 1
    assert result.n_iter < cg(A, b, rtol=1e-10).n_iter
    for ours, theirs in zip(iterates, scipy_iterates, strict=False):
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=1e-9 * np.abs(theirs).max())


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_real_matrix_with_complex_rhs(solver):
    A = poisson_matrix((9, 9, 9))
    b = _complex_vector(A.shape[0], seed=9)
    result = solver(A, b, rtol=1e-10)
    assert result.converged
    assert result.x.dtype == np.complex128
    np.testing.assert_allclose(result.x, spla.spsolve(A.tocsc(), b), atol=1e-8)
    assert solver(A, b.astype(np.complex64), rtol=1e-4).x.dtype == np.complex64


def test_real_matrix_with_complex_rhs_is_projected_per_part():
    # Closed box: the null-space projection removes the mean of the real and
    # the imaginary part alike.
    A = poisson_matrix((8, 8), boundary="neumann")
    b = _complex_vector(64, seed=10)
    with pytest.warns(UserWarning, match="null space"):
        result = cg(A, b, rtol=1e-8)
    b_range = b - b.mean()
    assert np.linalg.norm(A @ result.x - b_range) <= 1e-8 * np.linalg.norm(b_range)


def test_complex_matrix_null_space_is_found():
    # A Hermitian matrix with zero row sums on one block (its constant is a
    # null vector) and purely imaginary couplings elsewhere.
    block = np.array([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]])
    other = np.array([[3.0, 1j], [-1j, 3.0]])
    A = sp.block_diag([block.astype(complex), other]).tocsr()
    b = _complex_vector(5, seed=11)
    with pytest.warns(UserWarning, match="null space"):
        result = cg(A, b, rtol=1e-10)
    b_range = b.copy()
    b_range[:3] -= b[:3].mean()
    np.testing.assert_allclose(A @ result.x, b_range, atol=1e-9)


def test_complex_preconditioner_rejected_for_a_real_system():
    A = _magnetic_laplacian((4, 4), seed=12)
    with pytest.raises(ValueError, match="complex matrix"):
        ic0_pcg(abs(A), np.ones(16), preconditioner=IncompleteCholesky(A))


# --------------------------------------------------------------------------
# The deprecated aliases
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_deprecated_aliases_warn_and_mean_the_same(solver):
    A = poisson_matrix((10, 10))
    b = np.random.default_rng(13).standard_normal(100)
    with pytest.warns(FutureWarning, match=r"\(tol=\.\.\.\) is deprecated; use rtol"):
        old = solver(A, b, tol=1e-9)
    new = solver(A, b, rtol=1e-9)
    assert old.n_iter == new.n_iter
    np.testing.assert_array_equal(old.x, new.x)
    alias_message = r"\(max_iter=\.\.\.\) is deprecated; use maxiter"
    with pytest.warns(FutureWarning, match=alias_message), \
            pytest.warns(ConvergenceWarning):
        old = solver(A, b, max_iter=2)
    assert old.n_iter == 2
    assert old.info == 2


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_alias_and_new_name_together_is_an_error(solver):
    A = poisson_matrix((4, 4))
    with pytest.raises(TypeError, match="both rtol and its deprecated alias tol"):
        solver(A, np.ones(16), rtol=1e-6, tol=1e-6)
    with pytest.raises(TypeError, match="both maxiter and its deprecated alias"):
        solver(A, np.ones(16), maxiter=5, max_iter=5)


def test_new_names_do_not_warn():
    A = poisson_matrix((6, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cg(A, np.ones(36), rtol=1e-6, atol=0.0, maxiter=100)
        ic0_pcg(A, np.ones(36), rtol=1e-6, atol=0.0, maxiter=100)
