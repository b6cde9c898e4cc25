"""to_cpu: a model fitted in another array library comes back as NumPy.

CuPy is the case users care about; array-api-strict stands in for it on
machines without a GPU (its arrays are not NumPy arrays and refuse NumPy
functions), and the GPU test runs the real thing when a device is present.
"""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sparsesolve._backend import is_array
from sparsesolve.utils import to_cpu

xps = pytest.importorskip("array_api_strict")


def _arrays(value):
    """Every array inside ``value`` (attributes, lists, tuples, dicts)."""
    if is_array(value):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _arrays(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arrays(item)
    elif type(value).__module__.startswith("sparsesolve.") and hasattr(
            value, "__dict__"):
        yield from _arrays(vars(value))


def _cases():
    from sklearn.datasets import make_blobs

    from sparsesolve.clustering import LaplacianKMeans
    from sparsesolve.coding import LqDictionaryLearning
    from sparsesolve.datasets import make_hyperspectral, make_kronecker_sparse
    from sparsesolve.kronecker import KroneckerSBL
    from sparsesolve.unmixing import RobustUnmixing, cube_to_pixels

    X_blobs, _ = make_blobs(60, n_features=3, centers=3, random_state=0)
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=25,
                                          n_samples=3, random_state=0)
    cube, *_ = make_hyperspectral(6, 6, n_endmembers=2, n_bands=12, random_state=0)
    return [
        (LaplacianKMeans(3, random_state=0), X_blobs, "predict"),
        (LqDictionaryLearning(4, alpha=0.1, max_iter=2, random_state=0),
         X_blobs, "transform"),
        (KroneckerSBL([xps.asarray(f) for f in factors]), Y, "transform"),
        (RobustUnmixing(2, max_iter=10, random_state=0), cube_to_pixels(cube),
         "transform"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_to_cpu_gives_a_numpy_copy_of_the_fitted_state(case):
    estimator, X, method = _cases()[case]
    fitted = estimator.fit(xps.asarray(X))
    on_device = getattr(fitted, method)(xps.asarray(X))
    host = to_cpu(fitted)
    assert host is not fitted
    host_arrays = list(_arrays(vars(host)))
    device_arrays = list(_arrays(vars(fitted)))
    assert all(isinstance(a, np.ndarray) for a in host_arrays)
    # The original keeps its arrays where they were; the copy has the same
    # values, attribute by attribute.
    assert any(not isinstance(a, np.ndarray) for a in device_arrays)
    assert len(host_arrays) == len(device_arrays)
    for moved, original in zip(host_arrays, device_arrays, strict=True):
        assert_array_equal(moved, np.asarray(original))
    # It runs on NumPy input (the CPU path) and survives a pickle round trip.
    restored = pickle.loads(pickle.dumps(host))
    assert getattr(restored, method)(X).shape == tuple(on_device.shape)


def test_method_form_and_unfitted_estimator():
    from sparsesolve.coding import LqSparseCoder

    dictionary = xps.asarray(np.eye(3))
    coder = LqSparseCoder(dictionary)
    host = coder.to_cpu()
    assert isinstance(host.get_params()["dictionary"], np.ndarray)
    assert coder.get_params()["dictionary"] is dictionary


@pytest.mark.gpu
def test_to_cpu_from_cupy():
    cupy = pytest.importorskip("cupy")
    from sklearn.datasets import make_blobs

    from sparsesolve.clustering import LaplacianKMeans

    X, _ = make_blobs(60, n_features=3, centers=3, random_state=0)
    fitted = LaplacianKMeans(3, random_state=0).fit(cupy.asarray(X))
    host = fitted.to_cpu()
    assert isinstance(host.cluster_centers_, np.ndarray)
    assert_allclose(host.predict(X), cupy.asnumpy(fitted.predict(cupy.asarray(X))))
