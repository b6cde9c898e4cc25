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
    reference = cg(A, b, rtol=1e-8)
    assert fallbacks == 0
    assert residuals.size == reference.residuals.size
    np.testing.assert_allclose(residuals, reference.residuals, rtol=1e-5)


@pytest.mark.parametrize("method", ["multilevel", "dcdm"])
def test_default_model_beats_cg_and_ic0_on_training_domain(method):
    A, b, _ = make_poisson_problem((16, 16, 16), random_state=0)
    solver = DeepConjugateDirection(grid_shape=(16, 16, 16), method=method).fit(A)
    result = solver.solve(b, return_result=True)
    x = result.x
    np.testing.assert_allclose(x, spla.spsolve(A.tocsc(), b),
                               atol=1e-5 * np.abs(x).max())
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)
    assert result.converged
    assert result.residuals.shape == (result.n_iter + 1,)
    assert result.residuals[-1] <= 1e-6
    # Measured 12 for both methods (CG 51, IC(0)-PCG 18); the bounds leave
    # room for rounding.
    assert result.n_iter < cg(A, b).n_iter / 3
    assert result.n_iter < ic0_pcg(A, b).n_iter


@pytest.mark.parametrize("method", ["multilevel", "dcdm"])
def test_unseen_obstacle_with_neumann_null_space(method):
    A, b, solid = make_poisson_problem((8, 8, 8), "sphere", boundary="neumann",
                                       random_state=1)
    solver = DeepConjugateDirection(grid_shape=(8, 8, 8), method=method).fit(A)
    x = solver.solve(b)
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)
    assert np.all(x[solid.ravel()] == 0)  # no direction ever enters a solid


@pytest.mark.parametrize("method", ["multilevel", "dcdm"])
def test_random_network_never_increases_the_error_and_warns(method):
    # A useless network: every step is an exact A-norm line search, so the
    # A-norm error cannot grow; the solver says it did not converge.
    A = poisson_matrix((6, 6, 6))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    exact = spla.spsolve(A.tocsc(), b)
    network = DirectionNetwork.random(channels=2, random_state=0)
    errors = []
    for max_iter in (1, 2, 3, 4, 5, 6):
        solver = DeepConjugateDirection(model=network, max_iter=max_iter,
                                        method=method, tol=1e-12).fit(A)
        with pytest.warns(ConvergenceWarning, match="did not reach"):
            x = solver.solve(b)
        errors.append(np.sqrt((x - exact) @ A @ (x - exact)))
    assert np.sqrt(exact @ A @ exact) > errors[0]
    assert np.all(np.diff(errors) <= 1e-12 * errors[0])


def test_transform_solves_each_row_and_mirrors_dtype():
    A = poisson_matrix((4, 6, 4))
    B = np.random.default_rng(0).standard_normal((3, A.shape[0]))
    solver = DeepConjugateDirection(grid_shape=(4, 6, 4)).fit(A)
    X = solver.transform(B)
    assert X.shape == B.shape
    np.testing.assert_allclose(X[1], solver.solve(B[1]), rtol=1e-10, atol=1e-12)
    X32 = solver.transform(B.astype(np.float32))
    assert X32.dtype == np.float32
    # float32 Krylov arithmetic: the solution is good to float32 accuracy.
    assert np.linalg.norm(B[0] - A @ X32[0]) <= 1e-4 * np.linalg.norm(B[0])
    assert -1e-4 <= solver.score(B) <= 0.0


def test_solve_does_not_modify_input_or_estimator_and_accepts_x0():
    A, b, _ = make_poisson_problem((4, 4, 4), random_state=0)
    b_before = b.copy()
    solver = DeepConjugateDirection().fit(A)
    state = {k: v for k, v in vars(solver).items() if k.endswith("_")}
    x = solver.solve(b)
    assert np.array_equal(b, b_before)
    assert solver.solve(b, x0=x, return_result=True).n_iter == 0
    solver.transform(b[None, :])
    after = {k: v for k, v in vars(solver).items() if k.endswith("_")}
    assert after.keys() == state.keys()
    assert all(after[k] is state[k] for k in state)


def test_callback_sees_every_iterate():
    A, b, _ = make_poisson_problem((8, 8, 8), random_state=0)
    iterates = []
    result = DeepConjugateDirection().fit(A).solve(
        b, return_result=True, callback=lambda xk: iterates.append(xk.copy()))
    assert len(iterates) == result.n_iter
    np.testing.assert_array_equal(iterates[-1], result.x)
    with pytest.raises(TypeError, match="callback"):
        DeepConjugateDirection().fit(A).solve(b, callback=3)


def test_one_solver_shared_between_threads_matches_serial():
    from concurrent.futures import ThreadPoolExecutor

    A = poisson_matrix((16, 16, 16))
    B = np.random.default_rng(3).standard_normal((4, A.shape[0]))
    solver = DeepConjugateDirection().fit(A)
    serial = [solver.solve(b, return_result=True) for b in B]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda b: solver.solve(b, return_result=True), B))
    for one, other in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(one.x, other.x)
        assert one.n_iter == other.n_iter


def test_fit_checks():
    A = poisson_matrix((4, 4, 4))
    with pytest.raises(ValueError, match="grid_shape"):
        DeepConjugateDirection(grid_shape=(4, 4, 5)).fit(A)
    with pytest.raises(ValueError, match="grid_shape"):
        DeepConjugateDirection(grid_shape=(8, 8)).fit(A)
    with pytest.raises(ValueError, match="symmetric"):
        DeepConjugateDirection().fit(A + poisson_matrix((4, 4, 4)).multiply(
            np.tril(np.ones((64, 64)))))
    with pytest.raises(ValueError, match="square"):
        DeepConjugateDirection().fit(np.ones((3, 4)))
    with pytest.raises(TypeError, match="LinearOperator"):
        DeepConjugateDirection().fit(spla.aslinearoperator(A))
    bad = A.copy().astype(float)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DeepConjugateDirection().fit(bad)
    solver = DeepConjugateDirection().fit(A)
    assert solver.grid_shape_ == (4, 4, 4)
    with pytest.raises(ValueError, match="b must be"):
        solver.solve(np.ones(10))


def test_grid_shape_at_fit_is_deprecated_but_works():
    A = poisson_matrix((4, 6, 4))
    with pytest.warns(FutureWarning, match="constructor"):
        solver = DeepConjugateDirection().fit(A, grid_shape=(4, 6, 4))
    assert solver.grid_shape_ == (4, 6, 4)


def test_preconditioner_and_operator_for_scipy():
    A, b, _ = make_poisson_problem((16, 16, 16), random_state=4)
    solver = DeepConjugateDirection(coarse_solver="smoother", coarsest_size=4).fit(A)
    assert solver.n_levels_ == 3
    iterations = []
    x, info = spla.cg(A, b, rtol=1e-8, atol=0.0, M=solver.aspreconditioner(),
                      callback=lambda xk: iterations.append(1))
    assert info == 0
    assert np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)
    assert len(iterations) < cg(A, b, rtol=1e-8).n_iter / 3
    inverse = solver.aslinearoperator()
    np.testing.assert_allclose(A @ (inverse @ b), b, atol=2e-6 * np.linalg.norm(b))


@pytest.mark.gpu
@pytest.mark.parametrize("params", [
    {"method": "multilevel"}, {"method": "dcdm", "n_levels": 1},
    {"method": "dcdm", "n_levels": 2}])
def test_cupy_matches_numpy(params):
    cupy = pytest.importorskip("cupy")
    import cupyx.scipy.sparse as cusparse

    A, b, _ = make_poisson_problem((16, 16, 16), "sphere", random_state=0)
    cpu = DeepConjugateDirection(**params).fit(A)
    gpu = DeepConjugateDirection(**params).fit(cusparse.csr_matrix(A))
    on_gpu = gpu.solve(cupy.asarray(b), return_result=True)
    assert isinstance(on_gpu.x, cupy.ndarray)
    on_cpu = cpu.solve(b, return_result=True)
    np.testing.assert_allclose(on_gpu.x.get(), on_cpu.x, atol=1e-6)
    assert abs(on_gpu.n_iter - on_cpu.n_iter) <= 1


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
    solver = DeepConjugateDirection(method="dcdm", n_levels=2).fit(A)
    result = solver.solve(b, return_result=True)
    x = result.x
    fluid = ~solid.ravel()  # solid cells are empty rows: solve the rest
    reference = spla.spsolve(A[fluid][:, fluid].tocsc(), b[fluid])
    np.testing.assert_allclose(x[fluid], reference, atol=1e-5 * np.abs(x).max())
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)
    assert np.all(x[solid.ravel()] == 0)
    assert result.residuals.shape == (result.n_iter + 1,)


@pytest.mark.slow
def test_coarse_level_cuts_iterations_on_smooth_right_hand_sides():
    # The coarse call sees twice as far: on a smooth right-hand side at 32^3
    # (measured: 18 iterations with one level, 9 with two) it must help.
    A, b, _ = make_poisson_problem((32, 32, 32), rhs="smooth", random_state=1)
    one = DeepConjugateDirection(method="dcdm", n_levels=1).fit(A)
    two = DeepConjugateDirection(method="dcdm", n_levels=2).fit(A)
    n_one = one.solve(b, return_result=True).n_iter
    n_two = two.solve(b, return_result=True).n_iter
    assert n_two < 0.75 * n_one


def test_too_many_levels_for_the_grid():
    A = poisson_matrix((8, 8, 8))
    dcdm = {"method": "dcdm", "grid_shape": (8, 8, 8)}
    with pytest.raises(ValueError, match="n_levels=3"):
        DeepConjugateDirection(n_levels=3, **dcdm).fit(A)
    DeepConjugateDirection(n_levels=2, **dcdm).fit(A)
    # "auto" takes the coarse level wherever the grid holds one.
    assert DeepConjugateDirection(**dcdm).fit(A).n_levels_ == 2
    small = poisson_matrix((4, 8, 8))
    assert DeepConjugateDirection(method="dcdm", grid_shape=(4, 8, 8)).fit(
        small).n_levels_ == 1
    with pytest.raises(ValueError, match="n_levels"):
        DeepConjugateDirection(n_levels="two", **dcdm).fit(A)


def test_levels_run_in_a_foreign_namespace():
    # The coarse level runs on CuPy through the same array-API code.
    xp = pytest.importorskip("array_api_strict")
    from sparsesolve.poisson._levels import prolong, restrict

    grid = np.random.default_rng(1).standard_normal((5, 6, 7))
    coarse = restrict(xp, xp.asarray(grid))
    np.testing.assert_allclose(np.asarray(coarse), restrict(np, grid))
    np.testing.assert_allclose(np.asarray(prolong(xp, coarse, (5, 6, 7))),
                               prolong(np, restrict(np, grid), (5, 6, 7)))
