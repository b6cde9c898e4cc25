"""Shared test set-up: markers, GPU/simulator skipping, seeded fixtures."""

import os

# scikit-learn's array API checks need SciPy's own array API support, which
# SciPy reads once at import: set it before anything imports scipy.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

from sparsesolve._backend import cuda_simulator_enabled, cupy_or_none


def _global_seeds():
    """Seeds from SPARSESOLVE_TESTS_GLOBAL_RANDOM_SEED: "42", "all" or "0-9"."""
    spec = os.environ.get("SPARSESOLVE_TESTS_GLOBAL_RANDOM_SEED", "42")
    if spec == "all":
        return list(range(100))
    if "-" in spec:
        low, high = (int(v) for v in spec.split("-"))
        return list(range(low, high + 1))
    return [int(spec)]


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run tests marked slow (benchmarks cover them otherwise)",
    )


def pytest_collection_modifyitems(config, items):
    has_gpu = cupy_or_none() is not None
    in_simulator = cuda_simulator_enabled()
    skip_gpu = pytest.mark.skip(reason="CuPy cannot reach a CUDA device")
    skip_sim = pytest.mark.skip(
        reason="numba CUDA kernels: run with NUMBA_ENABLE_CUDASIM=1"
    )
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    run_slow = config.getoption("--run-slow")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "cudasim" in item.keywords and not (in_simulator or has_gpu):
            item.add_marker(skip_sim)


@pytest.fixture(params=_global_seeds())
def global_random_seed(request):
    """A seed (42 by default) that CI can widen to many seeds."""
    return request.param


@pytest.fixture
def rng(global_random_seed):
    """A NumPy RandomState seeded with :func:`global_random_seed`."""
    return np.random.RandomState(global_random_seed)


@pytest.fixture(params=["float64", "float32"])
def global_dtype(request):
    """Both floating dtypes: float32 must stay float32."""
    return np.dtype(request.param)
