"""E-step and M-steps against dense references (inverse, SVD, stationarity)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve._backend import get_namespace
from sparsesolve.kronecker._mstep import (
    am_update,
    couple,
    coupling_matrix,
    svd_update,
)
from sparsesolve.kronecker._posterior import (
    dense_posterior,
    kron_vector,
    kronecker_posterior,
)

XP = get_namespace(np.ones(1))
# The S size of benchmarks/bench_kronecker.py: A_i of shapes (4, 8), (5, 8),
# (6, 8): M = 120, N = 512.
S_SHAPES = [(4, 8), (5, 8), (6, 8)]


def _problem(rng, shapes, complex_values, n_samples=2):
    def draw(shape):
        values = rng.standard_normal(shape)
        if complex_values:
            values = values + 1j * rng.standard_normal(shape)
        return values

    factors = [draw(shape) for shape in shapes]
    gammas = [rng.uniform(0.05, 2.0, n) for _, n in shapes]
    M = int(np.prod([m for m, _ in shapes]))
    return factors, gammas, draw((n_samples, M))


def _dense_reference(A, gamma, noise_variance, Y, refine=False):
    """Textbook posterior: Sigma = (A^H A / s2 + Gamma^-1)^-1 by a dense inverse.

    With ``refine``, two steps of iterative refinement with residuals in
    extended precision (np.longdouble) remove the ``cond * eps`` error of the
    float64 inverse, so that the reference is accurate well below 1e-10.
    """
    precision = A.conj().T @ A / noise_variance + np.diag(1.0 / gamma)
    Sigma = np.linalg.inv(precision)
    rhs = A.conj().T @ Y.T / noise_variance
    mean = Sigma @ rhs
    if refine:
        wide = np.clongdouble if np.iscomplexobj(precision) else np.longdouble
        A_wide = A.astype(wide)
        precision_wide = A_wide.conj().T @ A_wide / noise_variance + np.diag(
            1.0 / gamma.astype(np.longdouble))
        rhs_wide = A_wide.conj().T @ Y.T.astype(wide) / noise_variance
        identity = np.eye(len(gamma), dtype=wide)
        for _ in range(2):
            residual = (identity - precision_wide @ Sigma.astype(wide))
            Sigma = Sigma + Sigma @ residual.astype(Sigma.dtype)
            residual = rhs_wide - precision_wide @ mean.astype(wide)
            mean = mean + Sigma @ residual.astype(mean.dtype)
    return mean.T, np.real(np.diag(Sigma))


def _kron(factors):
    dense = factors[0]
    for factor in factors[1:]:
        dense = np.kron(dense, factor)
    return dense


@pytest.mark.parametrize("complex_values", [False, True])
def test_fast_estep_matches_dense_sbl_on_s_size(complex_values):
    rng = np.random.RandomState(0)
    factors, gammas, Y = _problem(rng, S_SHAPES, complex_values)
    noise_variance = 0.3
    mean, variance = kronecker_posterior(factors, gammas, noise_variance, Y, XP)
    ref_mean, ref_variance = _dense_reference(
        _kron(factors), kron_vector(gammas, XP), noise_variance, Y, refine=True
    )
    # 1e-10 relative at the S size (the README's E-step figure), against an N x N
    # inverse refined in extended precision (a plain float64 inverse is only
    # good to about cond * eps ~ 1e-10 here).
    assert np.linalg.norm(mean - ref_mean) <= 1e-10 * np.linalg.norm(ref_mean)
    assert np.linalg.norm(variance - ref_variance) <= 1e-10 * np.linalg.norm(
        ref_variance
    )


@pytest.mark.parametrize("complex_values", [False, True])
@pytest.mark.parametrize("n_columns", [30, 6])  # M-space and N-space branches
def test_dense_posterior_matches_inverse(complex_values, n_columns):
    rng = np.random.RandomState(1)
    A = rng.standard_normal((12, n_columns))
    if complex_values:
        A = A + 1j * rng.standard_normal(A.shape)
    gamma = rng.uniform(0.1, 3.0, n_columns)
    Y = rng.standard_normal((3, 12))
    mean, variance = dense_posterior(A, gamma, 0.2, Y, XP)
    ref_mean, ref_variance = _dense_reference(A, gamma, 0.2, Y)
    assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-12)
    assert_allclose(variance, ref_variance, rtol=1e-10, atol=1e-12)


def test_svd_update_recovers_planted_separable_prior():
    # A separable Lambda is its own closest Kronecker vector; a wrong kron
    # ordering (mode 1 must be the slowest index) would mix the modes.
    rng = np.random.RandomState(2)
    planted = [rng.uniform(0.1, 1.0, n) for n in (3, 4, 5)]
    Lambda = kron_vector(planted, XP)
    gammas = svd_update(Lambda, [3, 4, 5], XP)
    assert_allclose(kron_vector(gammas, XP), Lambda, rtol=1e-12)
    for got, want in zip(gammas[:2], planted[:2], strict=True):
        assert_allclose(got / np.linalg.norm(got), want / np.linalg.norm(want),
                        rtol=1e-12)


def test_svd_update_matches_numpy_svd_rank_one():
    # Two modes: the result is the best rank-1 approximation of the unfolding.
    rng = np.random.RandomState(3)
    Lambda = rng.uniform(0.0, 1.0, 6 * 7)
    gammas = svd_update(Lambda, [6, 7], XP)
    u, s, vt = np.linalg.svd(Lambda.reshape(6, 7))
    best = s[0] * np.outer(u[:, 0], vt[0])
    assert_allclose(np.outer(*gammas), np.abs(best), rtol=1e-10)


def _cost(Lambda, gammas):
    prior = kron_vector(gammas, XP)
    return np.sum(np.log(prior) + Lambda / prior)


def test_am_update_reaches_a_stationary_point_of_the_cost():
    rng = np.random.RandomState(4)
    sizes = [3, 4, 5]
    Lambda = rng.uniform(0.01, 1.0, int(np.prod(sizes)))
    start = [np.ones(n) for n in sizes]
    gammas = am_update(Lambda, start, XP, tol=1e-12, max_sweeps=2000)
    assert _cost(Lambda, gammas) < _cost(Lambda, start)
    # Gradient of sum(log g + Lambda / g) with respect to each factor entry
    # vanishes: d/dg_i[a] = sum_others (1 - Lambda / prior) / g_i[a].
    prior = kron_vector(gammas, XP).reshape(sizes)
    residual = (1.0 - Lambda.reshape(sizes) / prior)
    for mode in range(3):
        others = tuple(axis for axis in range(3) if axis != mode)
        gradient = residual.sum(axis=others) / gammas[mode]
        assert np.max(np.abs(gradient * gammas[mode])) < 1e-6
    # Perturbing any factor by +-1% increases the cost (local minimum).
    for mode in range(3):
        for factor in (0.99, 1.01):
            moved = list(gammas)
            moved[mode] = moved[mode] * np.where(np.arange(sizes[mode]) == 0,
                                                 factor, 1.0)
            assert _cost(Lambda, moved) >= _cost(Lambda, gammas)


def test_am_update_is_exact_on_separable_lambda():
    rng = np.random.RandomState(5)
    planted = [rng.uniform(0.1, 1.0, n) for n in (4, 6)]
    Lambda = kron_vector(planted, XP)
    gammas = am_update(Lambda, [np.ones(4), np.ones(6)], XP, tol=1e-13,
                       max_sweeps=500)
    assert_allclose(kron_vector(gammas, XP), Lambda, rtol=1e-9)


def test_coupling_projection_lands_in_the_coupled_cone():
    rng = np.random.RandomState(6)
    C = coupling_matrix(6, 0.8)
    weights = np.array([0.0, 1.0, 0.5, 0.0, 0.0, 2.0])
    target = C @ weights
    projected = couple(target, C, XP, like=target)
    # A target already in the cone is reproduced up to the small offset.
    assert_allclose(projected, target, rtol=0, atol=2e-5 * target.max())
    noisy = rng.uniform(0, 1, 6)
    projected = couple(noisy, C, XP, like=noisy)
    assert np.all(projected > 0)
    # beta = 0 gives the identity: the projection is the positive part.
    identity = couple(noisy, coupling_matrix(6, 0.0), XP, like=noisy)
    assert_allclose(identity, noisy, atol=2e-5)
