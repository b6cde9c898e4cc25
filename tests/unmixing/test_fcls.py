"""FCLS against brute-force constrained solvers and the CUDA twin."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize, nnls

from sparsesolve import _backend
from sparsesolve.unmixing import fcls
from sparsesolve.unmixing._kernels import cpu_fcls, launch_cuda_fcls


def _slsqp_best(x, endmembers, rng, n_starts=6):
    """Best of several SLSQP runs on the simplex (independent reference)."""
    k = endmembers.shape[0]

    def objective(a):
        return np.sum((x - a @ endmembers) ** 2)

    best = None
    for _ in range(n_starts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = minimize(
                objective, rng.dirichlet(np.ones(k)), method="SLSQP",
                bounds=[(0, 1)] * k,
                constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1}],
                options={"ftol": 1e-15, "maxiter": 1000},
            )
        if best is None or result.fun < best.fun:
            best = result
    return best.fun


@pytest.mark.parametrize("n_endmembers", [1, 2, 3, 5, 8])
def test_fcls_matches_slsqp_brute_force(n_endmembers, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    endmembers = rng.rand(n_endmembers, 12)
    # Mixtures plus large noise so that many pixels leave the simplex.
    X = rng.dirichlet(np.ones(n_endmembers), size=25) @ endmembers
    X += 0.3 * rng.standard_normal(X.shape)
    A = fcls(X, endmembers)
    assert A.min() >= 0
    assert_allclose(A.sum(axis=1), 1.0, atol=1e-12)
    for pixel in range(X.shape[0]):
        ours = np.sum((X[pixel] - A[pixel] @ endmembers) ** 2)
        reference = _slsqp_best(X[pixel], endmembers, rng)
        # Ours is exact; SLSQP stops at ~1e-10, so ours may be slightly lower.
        assert ours <= reference + 1e-9


def test_fcls_matches_delta_augmented_nnls():
    # The usual scipy recipe: nnls on [E^T; delta 1^T] approaches FCLS as
    # delta grows; with delta = 1e4 it agrees to ~1e-6.
    rng = np.random.RandomState(0)
    endmembers = rng.rand(4, 30)
    X = rng.dirichlet(np.ones(4), size=40) @ endmembers + 0.05 * rng.randn(40, 30)
    delta = 1e4
    augmented = np.vstack([endmembers.T, delta * np.ones(4)])
    expected = np.array([nnls(augmented, np.append(x, delta))[0] for x in X])
    assert_allclose(fcls(X, endmembers), expected, atol=1e-5)


def test_fcls_recovers_exact_mixtures_and_vertices():
    rng = np.random.RandomState(1)
    endmembers = rng.rand(5, 40)
    abundances = rng.dirichlet(np.ones(5), size=50)
    abundances[:5] = np.eye(5)
    assert_allclose(fcls(abundances @ endmembers, endmembers), abundances, atol=1e-9)


def test_zero_band_weight_equals_dropping_the_band():
    rng = np.random.RandomState(2)
    endmembers = rng.rand(3, 10)
    X = rng.rand(20, 10)
    X[:, 4] = 100.0  # an outlier band
    weights = np.ones(10)
    weights[4] = 0.0
    kept = np.delete(np.arange(10), 4)
    assert_allclose(
        fcls(X, endmembers, band_weights=weights),
        fcls(X[:, kept], endmembers[:, kept]),
        atol=1e-10,
    )


def test_fcls_keeps_float32_and_inputs():
    rng = np.random.RandomState(3)
    endmembers = rng.rand(3, 8).astype(np.float32)
    X = rng.rand(30, 8).astype(np.float32)
    before = X.copy(), endmembers.copy()
    A = fcls(X, endmembers)
    assert A.dtype == np.float32
    # float32 output of an exact float64 solve: sum-to-one to float32 rounding.
    assert_allclose(A.sum(axis=1), 1.0, atol=1e-6)
    assert_allclose(A, fcls(X.astype(float), endmembers.astype(float)), atol=1e-5)
    assert_allclose(X, before[0])
    assert_allclose(endmembers, before[1])


def test_fcls_mirrors_the_input_namespace(foreign_namespace):
    ns = foreign_namespace
    rng = np.random.RandomState(4)
    endmembers = rng.rand(4, 20)
    X = rng.rand(500, 20)
    out = fcls(ns.asarray(X), ns.asarray(endmembers))
    assert ns.is_own(out)
    # One exact active-set solve per pixel on either side.
    assert_allclose(ns.to_numpy(out), fcls(X, endmembers), atol=1e-10)


def test_fcls_rejects_bad_input():
    X = np.ones((4, 5))
    with pytest.raises(ValueError, match="endmembers has 3 bands"):
        fcls(X, np.ones((2, 3)))
    with pytest.raises(ValueError, match="X must be a 2-D"):
        fcls(np.ones(5), np.ones((2, 5)))
    with pytest.raises(ValueError, match="band_weights must have shape"):
        fcls(X, np.ones((2, 5)), band_weights=np.ones(3))
    with pytest.raises(ValueError, match="nonnegative"):
        fcls(X, np.ones((2, 5)), band_weights=-np.ones(5))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        fcls(bad, np.ones((2, 5)))


@pytest.mark.cudasim
def test_cuda_kernel_matches_cpu_driver():
    rng = np.random.RandomState(5)
    endmembers = rng.rand(4, 15)
    X = rng.dirichlet(np.ones(4), size=64) @ endmembers + 0.2 * rng.randn(64, 15)
    gram = endmembers @ endmembers.T
    correlations = X @ endmembers.T
    expected = cpu_fcls(gram, correlations)
    if _backend.cuda_simulator_enabled():
        out = np.empty_like(correlations)
        launch_cuda_fcls(gram, correlations, out)
    else:
        cupy = _backend.require_cupy()
        out = fcls(cupy.asarray(X), cupy.asarray(endmembers)).get()
    assert_allclose(out, expected, atol=1e-12)
