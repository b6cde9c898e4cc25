"""DeepConjugateDirection and the DCDM iteration."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import (
    DeepConjugateDirection,
    DirectionNetwork,
    cg,
    ic0_pcg,
    poisson_matrix,
)
from sparsesolve.poisson._dcdm import deep_conjugate_directions


def test_iteration_with_identity_direction_is_cg():
    # With q = r, A-orthogonalising against the previous direction alone
    # reproduces CG's directions exactly (r_k is already A-orthogonal to
    # the older ones), so the residual histories must coincide.
    A = poisson_matrix((10, 10, 10))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    norm_b = np.linalg.norm(b)
    x, residuals, fallbacks = deep_conjugate_directions(
        A, b, np.zeros_like(b), lambda r: r, norm_b=norm_b, tol=1e-8,
        max_iter=1000, n_orthogonal=1)
    reference = cg(A, b, tol=1e-8)
    assert fallbacks == 0
    assert residuals.size == reference.residuals.size
    np.testing.assert_allclose(residuals, reference.residuals, rtol=1e-5)


def test_default_model_beats_cg_and_ic0_on_training_domain():
    A, b, _ = make_poisson_problem((16, 16, 16), random_state=0)
    solver = DeepConjugateDirection().fit(A, grid_shape=(16, 16, 16))
    x = solver.solve(b)
    np.testing.assert_allclose(x, spla.spsolve(A.tocsc(), b),
                               atol=1e-5 * np.abs(x).max())
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)
    assert solver.residuals_.shape == (solver.n_iter_ + 1,)
    assert solver.residuals_[-1] <= 1e-6
    # Measured 12 (CG 51, IC(0)-PCG 18); the bound leaves room for rounding.
    assert solver.n_iter_ < cg(A, b).n_iter / 3
    assert solver.n_iter_ < ic0_pcg(A, b).n_iter


def test_unseen_obstacle_with_neumann_null_space():
    A, b, solid = make_poisson_problem((8, 8, 8), "sphere", boundary="neumann",
                                       random_state=1)
    solver = DeepConjugateDirection().fit(A, grid_shape=(8, 8, 8))
    x = solver.solve(b)
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)
    assert np.all(x[solid.ravel()] == 0)  # no direction ever enters a solid


def test_random_network_never_increases_the_error_and_warns():
    # A useless network: every step is an exact A-norm line search, so the
    # A-norm error cannot grow; the solver says it did not converge.
    A = poisson_matrix((6, 6, 6))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    exact = spla.spsolve(A.tocsc(), b)
    network = DirectionNetwork.random(channels=2, random_state=0)
    errors = []
    for max_iter in (1, 2, 3, 4, 5, 6):
        solver = DeepConjugateDirection(model=network, max_iter=max_iter).fit(A)
        with pytest.warns(ConvergenceWarning, match="did not reach"):
            x = solver.solve(b)
        errors.append(np.sqrt((x - exact) @ A @ (x - exact)))
    assert np.sqrt(exact @ A @ exact) > errors[0]
    assert np.all(np.diff(errors) <= 1e-12 * errors[0])


def test_transform_solves_each_row_and_mirrors_dtype():
    A = poisson_matrix((4, 6, 4))
    B = np.random.default_rng(0).standard_normal((3, A.shape[0]))
    solver = DeepConjugateDirection().fit(A, grid_shape=(4, 6, 4))
    X = solver.transform(B)
    assert X.shape == B.shape
    assert solver.n_iter_.shape == (3,)
    np.testing.assert_allclose(X[1], solver.solve(B[1]), rtol=1e-10, atol=1e-12)
    X32 = solver.transform(B.astype(np.float32))
    assert X32.dtype == np.float32
    # float32 Krylov arithmetic: the solution is good to float32 accuracy.
    assert np.linalg.norm(B[0] - A @ X32[0]) <= 1e-4 * np.linalg.norm(B[0])


def test_solve_does_not_modify_input_and_accepts_x0():
    A, b, _ = make_poisson_problem((4, 4, 4), random_state=0)
    b_before = b.copy()
    solver = DeepConjugateDirection().fit(A)
    x = solver.solve(b)
    assert np.array_equal(b, b_before)
    solver.solve(b, x0=x)
    assert solver.n_iter_ == 0


def test_fit_checks():
    A = poisson_matrix((4, 4, 4))
    with pytest.raises(ValueError, match="grid_shape"):
        DeepConjugateDirection().fit(A, grid_shape=(4, 4, 5))
    with pytest.raises(ValueError, match="grid_shape"):
        DeepConjugateDirection().fit(A, grid_shape=(8, 8))
    with pytest.raises(ValueError, match="symmetric"):
        DeepConjugateDirection().fit(A + poisson_matrix((4, 4, 4)).multiply(
            np.tril(np.ones((64, 64)))))
    with pytest.raises(ValueError, match="square"):
        DeepConjugateDirection().fit(np.ones((3, 4)))
    solver = DeepConjugateDirection().fit(A)
    assert solver.grid_shape_ == (4, 4, 4)
    with pytest.raises(ValueError, match="b must be"):
        solver.solve(np.ones(10))


@pytest.mark.gpu
@pytest.mark.parametrize("n_levels", [1, 2])
def test_cupy_matches_numpy(n_levels):
    cupy = pytest.importorskip("cupy")
    import cupyx.scipy.sparse as cusparse

    A, b, _ = make_poisson_problem((16, 16, 16), "sphere", random_state=0)
    cpu = DeepConjugateDirection(n_levels=n_levels).fit(A, grid_shape=(16, 16, 16))
    gpu = DeepConjugateDirection(n_levels=n_levels).fit(
        cusparse.csr_matrix(A), grid_shape=(16, 16, 16))
    x_gpu = gpu.solve(cupy.asarray(b))
    assert isinstance(x_gpu, cupy.ndarray)
    np.testing.assert_allclose(x_gpu.get(), cpu.solve(b), atol=1e-6)
    assert abs(gpu.n_iter_ - cpu.n_iter_) <= 1


@pytest.mark.parametrize("shape", [(4, 6, 8), (5, 7, 3)])
def test_restrict_and_prolong_are_adjoint(shape):
    from sparsesolve.poisson._levels import coarse_shape, prolong, restrict

    rng = np.random.default_rng(0)
    fine = rng.standard_normal(shape)
    coarse = rng.standard_normal(coarse_shape(shape))
    # <R u, v> = <u, P v> / 8: averaging over blocks against copying onto them.
    assert np.isclose(8 * np.sum(restrict(np, fine) * coarse),
                      np.sum(fine * prolong(np, coarse, shape)))
    # A constant survives the round trip where blocks are whole.
    assert np.allclose(restrict(np, np.ones((4, 4, 4))), 1.0)


@pytest.mark.parametrize("obstacle", ["none", "sphere"])
def test_two_levels_solve_correctly(obstacle):
    A, b, solid = make_poisson_problem((16, 16, 16), obstacle, rhs="smooth",
                                       random_state=2)
    solver = DeepConjugateDirection(n_levels=2).fit(A, grid_shape=(16, 16, 16))
    x = solver.solve(b)
    fluid = ~solid.ravel()  # solid cells are empty rows: solve the rest
    reference = spla.spsolve(A[fluid][:, fluid].tocsc(), b[fluid])
    np.testing.assert_allclose(x[fluid], reference, atol=1e-5 * np.abs(x).max())
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)
    assert np.all(x[solid.ravel()] == 0)
    assert solver.residuals_.shape == (solver.n_iter_ + 1,)


def test_coarse_level_cuts_iterations_on_smooth_right_hand_sides():
    # The coarse call sees twice as far: on a smooth right-hand side at 32^3
    # (measured: 18 iterations with one level, 9 with two) it must help.
    A, b, _ = make_poisson_problem((32, 32, 32), rhs="smooth", random_state=1)
    one = DeepConjugateDirection(n_levels=1).fit(A, grid_shape=(32, 32, 32))
    two = DeepConjugateDirection(n_levels=2).fit(A, grid_shape=(32, 32, 32))
    one.solve(b)
    two.solve(b)
    assert two.n_iter_ < 0.75 * one.n_iter_


def test_too_many_levels_for_the_grid():
    A = poisson_matrix((8, 8, 8))
    with pytest.raises(ValueError, match="n_levels=3"):
        DeepConjugateDirection(n_levels=3).fit(A, grid_shape=(8, 8, 8))
    DeepConjugateDirection(n_levels=2).fit(A, grid_shape=(8, 8, 8))
    # "auto" takes the coarse level wherever the grid holds one.
    assert DeepConjugateDirection().fit(A, grid_shape=(8, 8, 8)).n_levels_ == 2
    small = poisson_matrix((4, 8, 8))
    assert DeepConjugateDirection().fit(small, grid_shape=(4, 8, 8)).n_levels_ == 1
    with pytest.raises(ValueError, match="n_levels"):
        DeepConjugateDirection(n_levels="two").fit(A, grid_shape=(8, 8, 8))


def test_levels_run_in_a_foreign_namespace():
    # The coarse level runs on CuPy through the same array-API code.
    xp = pytest.importorskip("array_api_strict")
    from sparsesolve.poisson._levels import prolong, restrict

    grid = np.random.default_rng(1).standard_normal((5, 6, 7))
    coarse = restrict(xp, xp.asarray(grid))
    np.testing.assert_allclose(np.asarray(coarse), restrict(np, grid))
    np.testing.assert_allclose(np.asarray(prolong(xp, coarse, (5, 6, 7))),
                               prolong(np, restrict(np, grid), (5, 6, 7)))
