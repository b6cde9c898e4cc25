"""Shared test set-up: markers, GPU/simulator skipping, seeded fixtures.

The array-namespace fixtures follow the pattern of PyLops and CuPy's own
test suites: a reference test takes ``array_namespace`` (or one of its
narrower variants) and builds its inputs with it, so the same test, against
the same independent reference, runs on NumPy, on array-api-strict and, on
a machine whose CuPy reaches a GPU, on CuPy (the ``cupy`` case carries the
``gpu`` mark and is skipped elsewhere).
"""

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


class ArrayNamespace:
    """One array library a test runs in: its module and conversions.

    Parameters
    ----------
    name : {"numpy", "array_api_strict", "cupy"}
        The library.
    """

    def __init__(self, name):
        self.name = name
        self.device = None
        if name == "numpy":
            self.xp = np
        else:
            self.xp = pytest.importorskip(name)
        if name == "array_api_strict":
            # A non-default device: an array created without device= (a
            # host leak that would break CuPy) fails here.
            self.device = self.xp.Device("device1")

    def __repr__(self):
        return f"ArrayNamespace({self.name!r})"

    def asarray(self, array):
        """``array`` (NumPy or a list) in this library."""
        if self.device is None:
            return self.xp.asarray(array)
        return self.xp.asarray(array, device=self.device)

    def matrix(self, A):
        """A SciPy sparse matrix as this library holds one.

        SciPy sparse for NumPy, ``cupyx.scipy.sparse`` CSR for CuPy, and a
        dense array for array-api-strict, which has no sparse type.
        """
        if self.name == "numpy":
            return A
        if self.name == "cupy":
            import cupyx.scipy.sparse

            return cupyx.scipy.sparse.csr_matrix(A)
        return self.asarray(A.toarray())

    def to_numpy(self, array):
        """A NumPy copy of an array of this library (NumPy passes through)."""
        if isinstance(array, np.ndarray):
            return array
        if self.name == "cupy":
            return array.get()
        if self.name == "array_api_strict":
            array = array.to_device(self.xp.Device("CPU_DEVICE"))
        return np.asarray(array)

    def is_own(self, array):
        """Whether ``array`` belongs to this library (and device)."""
        if self.name == "numpy":
            return isinstance(array, np.ndarray)
        own = isinstance(array, type(self.xp.asarray(0.0)))
        return own and (self.device is None or array.device == self.device)


_NAMESPACES = {
    "numpy": pytest.param("numpy", id="numpy"),
    "array_api_strict": pytest.param("array_api_strict", id="array_api_strict"),
    "cupy": pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
}


@pytest.fixture(params=list(_NAMESPACES.values()))
def array_namespace(request):
    """NumPy, array-api-strict and CuPy (with a GPU): for reference tests."""
    return ArrayNamespace(request.param)


@pytest.fixture(params=[_NAMESPACES["numpy"], _NAMESPACES["cupy"]])
def sparse_namespace(request):
    """NumPy and CuPy (with a GPU): libraries with sparse matrices and kernels."""
    return ArrayNamespace(request.param)


@pytest.fixture(params=[_NAMESPACES["array_api_strict"], _NAMESPACES["cupy"]])
def foreign_namespace(request):
    """array-api-strict and CuPy: for tests that compare a run with NumPy's."""
    return ArrayNamespace(request.param)


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
