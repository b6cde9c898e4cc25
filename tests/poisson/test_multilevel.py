"""The aggregation hierarchy and V-cycle of the multilevel DCDM directions."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg as spla

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import DeepConjugateDirection, cg, poisson_matrix
from sparsesolve.poisson._multilevel import MultilevelHierarchy, chebyshev_smooth


def _dense_aggregation(shape, solid=None):
    """P[fine, coarse] = 1 when the fluid fine cell lies in the coarse 2x2x2 block."""
    coarse = tuple((n + 1) // 2 for n in shape)
    P = np.zeros((int(np.prod(shape)), int(np.prod(coarse))))
    for z, y, x in itertools.product(*(range(n) for n in shape)):
        if solid is not None and solid[z, y, x]:
            continue
        fine = np.ravel_multi_index((z, y, x), shape)
        P[fine, np.ravel_multi_index((z // 2, y // 2, x // 2), coarse)] = 1.0
    return P


def _hierarchy(A, shape, coarsest=2):
    return MultilevelHierarchy(A, shape, coarsest, np.random.default_rng(0))


@pytest.mark.parametrize("shape", [(8, 8, 8), (9, 12, 7)])
def test_galerkin_operators_match_dense_products(shape):
    A, _, solid = make_poisson_problem(shape, "random", random_state=3)
    levels = _hierarchy(A, shape, coarsest=4)._host
    assert len(levels) >= 2
    P = _dense_aggregation(shape, solid)
    np.testing.assert_allclose(levels[1].operator.toarray(), P.T @ A.toarray() @ P)
    np.testing.assert_array_equal(levels[0].restriction.toarray(), P.T)
    assert levels[1].shape == tuple((n + 1) // 2 for n in shape)


def test_hierarchy_shapes_stop_at_coarsest_size():
    A = poisson_matrix((40, 20, 9))
    shapes = MultilevelHierarchy(A, (40, 20, 9), 16, np.random.default_rng(0)).shapes
    # 40 -> 20 -> 10: stop once every side is at most 16; the coarse grid
    # keeps at least 4 cells where the fine one had them.
    assert shapes == [(40, 20, 9), (20, 10, 5), (10, 5, 3)] or shapes == [
        (40, 20, 9), (20, 10, 5)]
    assert max(shapes[-1]) <= 16 or min(shapes[-1]) < 8


def test_largest_eigenvalue_estimate_is_close_from_below():
    A, _, _ = make_poisson_problem((8, 8, 8), "sphere", random_state=0)
    level = _hierarchy(A, (8, 8, 8), coarsest=8)._host[0]
    fluid = level.inverse_diagonal > 0
    scale = np.sqrt(level.inverse_diagonal[fluid])
    dense = A.toarray()[np.ix_(fluid, fluid)] * scale[:, None] * scale[None, :]
    exact = scipy.linalg.eigvalsh(dense)[-1]
    # Power iteration approaches from below; the smoother's interval is
    # widened by 10 % above the estimate, which must cover the true value.
    assert 0.9 * exact <= level.lambda_max <= exact * (1 + 1e-12)
    assert 1.1 * level.lambda_max >= exact


def test_chebyshev_smoother_is_the_minimax_polynomial():
    # Reference from the eigendecomposition of the symmetrically scaled
    # matrix: the error propagator I - p(D^-1 A) D^-1 A is
    # T_k((c - t) / h) / T_k(c / h) on every eigenvalue t.
    A = poisson_matrix((4, 5, 3)).toarray()
    inverse_diagonal = 1.0 / np.diag(A)
    scale = np.sqrt(inverse_diagonal)
    values, vectors = scipy.linalg.eigh(A * scale[:, None] * scale[None, :])
    lambda_max = values[-1]
    lower, upper = 0.3 * lambda_max, 1.1 * lambda_max
    centre, half = (upper + lower) / 2, (upper - lower) / 2
    r = np.random.default_rng(0).standard_normal(A.shape[0])
    for degree in (1, 2, 3, 5):
        damping = (np.polynomial.chebyshev.chebval((centre - values) / half,
                                                   [0] * degree + [1])
                   / np.polynomial.chebyshev.chebval(centre / half,
                                                     [0] * degree + [1]))
        # e = D^-1/2 V diag((1 - damping) / t) V^T D^-1/2 r
        expected = scale * (vectors @ (((1 - damping) / values)
                                       * (vectors.T @ (scale * r))))
        e, rest = chebyshev_smooth(A, inverse_diagonal, lambda_max, r, degree)
        np.testing.assert_allclose(e, expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rest, r - A @ e, atol=1e-12)


def test_two_level_cycle_with_exact_coarse_solve_matches_dense_reference():
    shape = (8, 10, 8)
    A = poisson_matrix(shape).tocsr()
    hierarchy = MultilevelHierarchy(A, shape, 5, np.random.default_rng(0))
    assert len(hierarchy.shapes) == 2
    levels = hierarchy.levels_for(np, A, np.zeros(1))
    coarse_matrix = levels[1].operator.toarray()

    def exact(residual, level):
        return np.linalg.solve(coarse_matrix, residual)

    r = np.random.default_rng(1).standard_normal(A.shape[0])
    q, Aq = hierarchy.cycle(levels, r, exact, 2)
    # Dense reference of the same two-grid cycle.
    fine = levels[0]
    dense = A.toarray()
    e, rest = chebyshev_smooth(dense, fine.inverse_diagonal, fine.lambda_max, r, 2)
    P = _dense_aggregation(shape)
    direction = P @ np.linalg.solve(P.T @ dense @ P, P.T @ rest)
    step = (direction @ rest) / (direction @ dense @ direction)
    e, rest = e + step * direction, rest - step * (dense @ direction)
    e2, rest = chebyshev_smooth(dense, fine.inverse_diagonal, fine.lambda_max,
                                rest, 2)
    np.testing.assert_allclose(q, e + e2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Aq, dense @ q, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("coarse_solver", ["network", "smoother", "none"])
@pytest.mark.parametrize(("obstacle", "boundary"), [
    ("none", "dirichlet"), ("random", "dirichlet"), ("sphere", "neumann"),
    ("sphere", "open_top")])
def test_every_coarse_solver_converges_on_every_boundary(coarse_solver, obstacle,
                                                          boundary):
    shape = (16, 16, 16)
    A, b, solid = make_poisson_problem(shape, obstacle, boundary=boundary,
                                       random_state=5)
    solver = DeepConjugateDirection(coarse_solver=coarse_solver, coarsest_size=8,
                                    max_iter=300).fit(A)
    result = solver.solve(b, return_result=True)
    assert result.converged
    assert np.linalg.norm(b - A @ result.x) <= 1e-6 * np.linalg.norm(b)
    assert np.all(result.x[solid.ravel()] == 0)
    fluid = ~solid.ravel()
    if boundary == "dirichlet":
        reference = spla.spsolve(A[fluid][:, fluid].tocsc(), b[fluid])
        np.testing.assert_allclose(result.x[fluid], reference,
                                   atol=1e-5 * np.abs(reference).max())


def test_network_on_the_coarsest_grid_beats_the_smoother_there():
    # At 32^3 with a 16^3 coarsest grid (measured 12 iterations with the
    # network, 21 with a Chebyshev sweep, 36 with nothing, CG 78).
    A, b, _ = make_poisson_problem((32, 32, 32), rhs="white", random_state=7)
    counts = {
        solver: DeepConjugateDirection(coarse_solver=solver,
                                       coarsest_size=16).fit(A).solve(
            b, return_result=True).n_iter
        for solver in ("network", "smoother", "none")
    }
    assert counts["network"] < 0.8 * counts["smoother"] < counts["none"]
    assert counts["network"] < cg(A, b).n_iter / 4


def test_float32_right_hand_side_runs_the_cycle_in_float32():
    A = poisson_matrix((16, 16, 16))
    b = np.random.default_rng(0).standard_normal(A.shape[0]).astype(np.float32)
    solver = DeepConjugateDirection(tol=1e-5).fit(A)
    x = solver.solve(b)
    assert x.dtype == np.float32
    assert np.linalg.norm(b - A @ x) <= 1e-5 * np.linalg.norm(b)


@pytest.mark.parametrize("kernels", ["stencil", "csr"])
def test_fused_cpu_steps_match_the_array_api_steps(kernels):
    from sparsesolve.poisson import _cycle_kernels
    from sparsesolve.poisson._multilevel import _FusedLevel, _Level

    shape = (12, 10, 9)
    A, b, _ = make_poisson_problem(shape, "random", boundary="open_top",
                                   random_state=2)
    A = A.tocsr()
    if kernels == "csr":
        # One entry off the seven grid diagonals (kept symmetric) sends the
        # level to the CSR kernels.
        A = (A + 1e-3 * (poisson_matrix(shape) != 0).astype(float)).tolil()
        A[0, 50] = A[50, 0] = -1e-3
        A = A.tocsr()
        assert _cycle_kernels.stencil_diagonals(A, shape) is None
    else:
        assert _cycle_kernels.stencil_diagonals(A, shape) is not None
    hierarchy = MultilevelHierarchy(A, shape, 6, np.random.default_rng(0))
    fused = hierarchy.levels_for(np, A, b)
    assert all(isinstance(level, _FusedLevel) for level in fused)
    generic = [_Level(level.operator, level.inverse_diagonal, level.lambda_max,
                      level.shape, level.fluid, level.restriction)
               for level in fused]
    for degree in (1, 2, 3):
        for ours, reference in zip(fused[0].smooth(b, degree),
                                   generic[0].smooth(b, degree), strict=True):
            np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    direction = np.random.default_rng(3).standard_normal(b.size)
    for ours, reference in zip(fused[0].line_step(b, b, direction),
                               generic[0].line_step(b, b, direction), strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    q_fused, image_fused = hierarchy.cycle(fused, b, "smoother", 2)
    q_generic, image_generic = hierarchy.cycle(generic, b, "smoother", 2)
    np.testing.assert_allclose(q_fused, q_generic, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(image_fused, A @ q_fused, rtol=1e-9, atol=1e-9)
