"""The two-device backend: namespaces, host/device moves, kernels, threads."""

import types

import array_api_strict
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsesolve import _backend
from sparsesolve._backend import (
    ElementwiseKernel,
    device_of,
    get_namespace,
    kernel,
    numba_threads,
    to_namespace,
    to_numpy,
)
from sparsesolve._validation import check_same_device, validate_data


class ToyShrinker(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Soft-thresholds each feature by ``shrink`` times its mean magnitude.

    Written only through the backend so that it runs on any namespace: the
    array API checks of scikit-learn exercise it on array-api-strict.
    """

    def __init__(self, shrink=0.5):
        self.shrink = shrink

    def fit(self, X, y=None):
        X = validate_data(self, X)
        xp = get_namespace(X)
        self.scale_ = self.shrink * xp.mean(xp.abs(X), axis=0)
        return self

    def transform(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        check_same_device(X, self, attribute="scale_", method="transform")
        X = validate_data(self, X, reset=False)
        return kernel("soft_threshold")(X, self.scale_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


@parametrize_with_checks([ToyShrinker()])
def test_toy_transformer_passes_sklearn_checks(estimator, check):
    check(estimator)


def test_get_namespace_mirrors_input():
    assert get_namespace(np.ones(2)).__name__ == "array_api_compat.numpy"
    strict = array_api_strict.asarray([1.0])
    assert get_namespace(strict) is array_api_strict
    # None, scalars and lists are ignored.
    assert get_namespace(None, 3.0, [1, 2], strict) is array_api_strict


def test_get_namespace_rejects_mixed_libraries():
    with pytest.raises(TypeError, match="same array library"):
        get_namespace(np.ones(2), array_api_strict.asarray([1.0]))


def test_host_round_trip():
    strict = array_api_strict.asarray([1.0, 2.0])
    host = to_numpy(strict)
    assert isinstance(host, np.ndarray)
    back = to_namespace(host, array_api_strict, like=strict)
    assert get_namespace(back) is array_api_strict
    assert device_of(np.zeros(1)) == "cpu"


def test_kernel_runs_on_array_api_strict_and_mirrors_namespace():
    x = np.linspace(-2, 2, 9)
    expected = kernel("soft_threshold")(x, 0.5)
    strict = kernel("soft_threshold")(array_api_strict.asarray(x), 0.5)
    assert get_namespace(strict) is array_api_strict
    assert_allclose(to_numpy(strict), expected)


def test_kernel_parameter_broadcasting_and_errors():
    x = np.arange(6.0).reshape(2, 3) - 2.5
    per_column = np.array([0.0, 1.0, 10.0])
    out = kernel("soft_threshold")(x, per_column)
    assert_allclose(out, np.sign(x) * np.maximum(np.abs(x) - per_column, 0))
    assert_allclose(kernel("soft_threshold")(x, np.full_like(x, 1.0)),
                    kernel("soft_threshold")(x, 1.0))
    with pytest.raises(ValueError, match="Parameter 0"):
        kernel("soft_threshold")(x, np.ones(4))
    with pytest.raises(TypeError, match="takes 1 parameter"):
        kernel("soft_threshold")(x)
    with pytest.raises(KeyError, match="No kernel named"):
        kernel("no_such_kernel")


def test_kernel_does_not_modify_input_and_keeps_float32():
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    before = x.copy()
    out = kernel("soft_threshold")(x, 0.25)
    assert out.dtype == np.float32
    assert_allclose(x, before)


def test_elementwise_kernel_rejects_bad_arity():
    with pytest.raises(ValueError, match="n_params"):
        ElementwiseKernel(lambda x: x, n_params=0)


def test_numba_threads_restores_setting():
    import numba

    before = numba.get_num_threads()
    with numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with numba_threads(-1):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_require_cupy_explains_missing_gpu(monkeypatch):
    monkeypatch.setattr(_backend, "_cupy_status", lambda: (None, "no device here"))
    with pytest.raises(RuntimeError, match="no device here"):
        _backend.require_cupy()
    with pytest.raises(RuntimeError, match="no device here"):
        kernel("soft_threshold", types.SimpleNamespace(__name__="cupy"))


@pytest.mark.cudasim
def test_cuda_kernel_matches_cpu_driver():
    # Under NUMBA_ENABLE_CUDASIM=1 the grid kernel runs on NumPy arrays; on a
    # GPU machine the same launcher runs on the device.
    rng = np.random.RandomState(0)
    x = rng.standard_normal(1000)
    thresholds = np.abs(rng.standard_normal(1000))
    for name in ("soft_threshold", "hard_threshold"):
        elementwise = kernel(name)
        expected = elementwise(x, thresholds)
        if _backend.cuda_simulator_enabled():
            out = np.empty_like(x)
            elementwise.cuda_driver(out, x, thresholds)
        else:
            cupy = _backend.require_cupy()
            out = elementwise(cupy.asarray(x), cupy.asarray(thresholds)).get()
        assert_allclose(out, expected, rtol=0, atol=0)


@pytest.mark.gpu
def test_cupy_input_mirrors_output():
    cupy = _backend.require_cupy()
    x = cupy.linspace(-2, 2, 9)
    out = kernel("soft_threshold")(x, 0.5)
    assert isinstance(out, cupy.ndarray)
    assert_allclose(out.get(), kernel("soft_threshold")(x.get(), 0.5))
