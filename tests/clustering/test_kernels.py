"""The bound sweep against dense NumPy formulas and a simplex minimiser."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.optimize import minimize

from sparsesolve import _backend
from sparsesolve.clustering._algorithm import bound_sweep, negative_entropy

_BOUND_UPDATE = _backend.kernel("clustering_bound_update")


def _random_problem(seed, n_samples=40, n_clusters=4, dtype=np.float64, n_labelled=5):
    rng = np.random.RandomState(seed)
    unary = rng.uniform(0, 3, size=(n_samples, n_clusters)).astype(dtype)
    dense = (rng.uniform(size=(n_samples, n_samples)) < 0.1).astype(dtype)
    dense = np.maximum(dense, dense.T)
    np.fill_diagonal(dense, 0)
    W = sp.csr_array(dense)
    y = rng.dirichlet(np.ones(n_clusters), size=n_samples).astype(dtype)
    clamp = np.full(n_samples, -1, dtype=np.int64)
    clamp[:n_labelled] = rng.randint(n_clusters, size=n_labelled)
    graph = (
        W.indptr.astype(np.int64),
        W.indices.astype(np.int64),
        W.data.astype(dtype),
    )
    return unary, dense, graph, y, clamp


def _dense_reference(unary, dense, y, lam, delta, clamp):
    """softmax(-A + lam (W + delta I) Y) and the lambda/2 energy of Y."""
    field = dense @ y + delta * y
    logits = -unary + lam * field
    logits -= logits.max(axis=1, keepdims=True)
    expected = np.exp(logits)
    expected /= expected.sum(axis=1, keepdims=True)
    labelled = clamp >= 0
    expected[labelled] = np.eye(unary.shape[1])[clamp[labelled]]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.where(y > 0, y * np.log(y), 0.0)
    energy = entropy + y * unary - 0.5 * lam * y * field
    return expected, energy.sum(axis=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("lam", "delta"), [(0.0, 0.0), (0.7, 0.0), (2.0, 1.5)])
def test_sweep_matches_dense_formula(dtype, lam, delta):
    unary, dense, graph, y, clamp = _random_problem(0, dtype=dtype)
    entropy = negative_entropy(y, np)
    y_new, entropy_new, energy_rows = bound_sweep(
        unary, *graph, y, entropy, lam, delta, clamp
    )
    expected, energy = _dense_reference(
        unary.astype(float), dense, y.astype(float), lam, delta, clamp
    )
    # The carried negative entropy of the new rows, against a direct log.
    assert_allclose(entropy_new, negative_entropy(expected, np), atol=1e-4)
    # float32 rounding of exp/log over a handful of terms stays below 1e-5.
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert y_new.dtype == dtype
    assert_allclose(y_new, expected, atol=tolerance)
    assert_allclose(energy_rows, energy, atol=tolerance * 10)


def test_serial_and_parallel_drivers_agree():
    unary, _, graph, y, clamp = _random_problem(1, n_samples=200)
    outputs = []
    entropy = negative_entropy(y, np)
    for parallel in (False, True):
        y_new, energy = np.empty_like(y), np.empty(y.shape[0])
        entropy_new = np.empty(y.shape[0])
        _BOUND_UPDATE.run_cpu(
            y.shape[0], unary, *graph, y, entropy, y_new, entropy_new, 1.0, 0.5,
            clamp, energy, parallel=parallel,
        )
        outputs.append((y_new, energy))
    assert_allclose(outputs[0][0], outputs[1][0], rtol=0, atol=0)
    assert_allclose(outputs[0][1], outputs[1][1], rtol=0, atol=0)


def test_sweep_minimises_the_bound_on_the_simplex():
    # Independent reference: minimise y.(log y + a - lam b) over the simplex
    # numerically (SLSQP) for each free row and compare with the closed form.
    unary, dense, graph, y, clamp = _random_problem(2, n_samples=12, n_clusters=3)
    lam, delta = 1.3, 0.4
    y_new, _, _ = bound_sweep(
        unary, *graph, y, negative_entropy(y, np), lam, delta, clamp
    )
    field = dense @ y + delta * y
    for row in np.flatnonzero(clamp < 0):
        linear = unary[row] - lam * field[row]

        def bound(values, linear=linear):
            values = np.clip(values, 1e-12, None)
            return float(np.sum(values * (np.log(values) + linear)))

        found = minimize(
            bound,
            np.full(3, 1 / 3),
            method="SLSQP",
            bounds=[(1e-12, 1)] * 3,
            constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        # SLSQP's optimality tolerance limits agreement to about 1e-4.
        assert_allclose(y_new[row], found.x, atol=2e-4)


@pytest.mark.cudasim
def test_cuda_sweep_matches_cpu_sweep():
    unary, _, graph, y, clamp = _random_problem(3, n_samples=300, n_clusters=5)
    entropy = negative_entropy(y, np)
    expected, expected_entropy, expected_energy = bound_sweep(
        unary, *graph, y, entropy, 0.9, 0.7, clamp
    )
    if _backend.cuda_simulator_enabled():
        y_new, energy = np.empty_like(y), np.empty(y.shape[0])
        entropy_new = np.empty(y.shape[0])
        _BOUND_UPDATE.run_cuda(
            y.shape[0], unary, *graph, y, entropy, y_new, entropy_new, 0.9, 0.7,
            clamp, energy,
        )
    else:
        cupy = _backend.require_cupy()
        device = [cupy.asarray(a) for a in (unary, *graph, y, entropy, clamp)]
        outputs = bound_sweep(*device[:6], 0.9, 0.7, device[6])
        y_new, entropy_new, energy = (a.get() for a in outputs)
    assert_allclose(entropy_new, expected_entropy, rtol=1e-12, atol=1e-12)
    # Same operations in the same order; only exp/log implementations differ.
    assert_allclose(y_new, expected, rtol=1e-12, atol=1e-14)
    assert_allclose(energy, expected_energy, rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
def test_cupy_sweep_mirrors_input():
    cupy = _backend.require_cupy()
    unary, _, graph, y, clamp = _random_problem(4)
    device = [cupy.asarray(a) for a in (unary, *graph, y, negative_entropy(y, np))]
    y_new, _, energy = bound_sweep(*device, 1.0, 0.0, cupy.asarray(clamp))
    assert isinstance(y_new, cupy.ndarray)
    assert isinstance(energy, cupy.ndarray)
