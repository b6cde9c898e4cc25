"""The shared checks added for hostile input (issue 16)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from sparsesolve._sklearn_compat import (
    SKLEARN_PRIVATE_API,
    InvalidParameterError,
    validate_params,
)
from sparsesolve._validation import (
    N_JOBS_CONSTRAINT,
    AllocationError,
    available_memory,
    check_allocation,
    check_array_argument,
    check_finite_score,
    power_of_two_scale,
    validate_data,
)


@validate_params({"n_jobs": N_JOBS_CONSTRAINT}, prefer_skip_nested_validation=True)
def _uses_threads(n_jobs=None):
    return n_jobs


@pytest.mark.parametrize("n_jobs", [None, 1, 4, -1, -2, -8])
def test_n_jobs_constraint_accepts_joblib_values(n_jobs):
    assert _uses_threads(n_jobs) == n_jobs


@pytest.mark.parametrize("n_jobs", [0, 1.0, "2", np.nan])
def test_n_jobs_constraint_refuses_zero_and_non_integers(n_jobs):
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        _uses_threads(n_jobs)


def test_n_jobs_constraint_message_lists_the_allowed_values():
    with pytest.raises(InvalidParameterError) as info:
        _uses_threads(0)
    message = str(info.value)
    assert "(-inf, -1]" in message
    assert "[1, inf)" in message
    assert SKLEARN_PRIVATE_API or "None" in message


@pytest.mark.parametrize("X", [
    np.ones((3, 2)) + 1j,
    pd.DataFrame({"a": [1.0 + 1j, 2.0], "b": [0.0, 1.0]}),
    sp.csr_matrix(np.ones((2, 2)) + 1j),
    [[1 + 2j, 3.0]],
])
def test_complex_X_refused_naming_X_and_the_estimator(X):
    with pytest.raises(ValueError, match="Complex data not supported for X: "
                       "BaseEstimator works on real numbers"):
        validate_data(BaseEstimator(), X, accept_sparse=True)


def test_non_numeric_X_named():
    X = np.array([["1.0", "a"], ["2", "3"]], dtype=object)
    with pytest.raises(ValueError, match="X must hold numbers for BaseEstimator: .* "
                       "for example 'a' is not"):
        validate_data(BaseEstimator(), X)
    X[0, 0] = {"foo": "bar"}
    # A TypeError, as NumPy's (scikit-learn's check_dtype_object).
    with pytest.raises(TypeError, match="argument must be .* string.* number"):
        validate_data(BaseEstimator(), X)


@pytest.mark.parametrize(("array", "kwargs", "error", "message"), [
    (np.ones((2, 2)) + 1j, {}, ValueError, "Complex data not supported for init"),
    ([np.nan, 1.0], {}, ValueError, "Input init contains NaN"),
    (np.zeros((0, 3)), {}, ValueError, "init is empty"),
    (np.ones(3), {"ndim": 2}, ValueError, "init must be a 2-D array"),
    (np.ones((2, 3)), {"shape": (2, 4)}, ValueError, r"init must have shape \(2, 4\)"),
    (np.array(["a", "b"]), {}, TypeError, "init must hold numbers"),
    ("abc", {}, TypeError, "init must be an array of numbers"),
    (None, {}, TypeError, "init must be an array of numbers"),
    (sp.csr_matrix(np.ones((2, 2))), {}, TypeError, "init must be a dense array"),
])
def test_check_array_argument_names_the_argument(array, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_array_argument(array, "init", **kwargs)


def test_check_array_argument_keeps_float32_and_converts_ints():
    assert check_array_argument(np.ones(2, np.float32), "a").dtype == np.float32
    assert check_array_argument(np.ones(2, int), "a").dtype == np.float64
    assert check_array_argument(np.ones(2, np.float16), "a").dtype == np.float64
    complex_ok = check_array_argument(np.ones(2) + 1j, "a", allow_complex=True)
    assert complex_ok.dtype == np.complex128
    shaped = check_array_argument(np.ones((2, 5)), "a", shape=(None, 5))
    assert shaped.shape == (2, 5)


def test_check_array_argument_prefixes_the_caller():
    with pytest.raises(ValueError, match="^LqSparseCoder: dictionary is empty"):
        check_array_argument(np.zeros((0, 2)), "dictionary", caller="LqSparseCoder")


def test_check_allocation_names_parameter_and_sizes():
    check_allocation(1024, parameter="n_components")
    available = available_memory()
    assert available is None or available > 0
    with pytest.raises(AllocationError) as info:
        check_allocation(8 * 10**12 * 10**6, parameter="n_components",
                         value=10**6, what="The atoms")
    message = str(info.value)
    assert message.startswith("n_components asks for the atoms of ")
    assert "lower n_components (got n_components=1000000)" in message
    assert "EiB" in message
    assert isinstance(info.value, MemoryError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [1e-300, 3e-5, 0.75, 1.0, 3.0, 1e300,
                                   np.finfo(float).max, np.finfo(float).tiny])
@pytest.mark.parametrize("even", [False, True])
def test_power_of_two_scale_normalises_exactly(value, even):
    scale = power_of_two_scale(value, even=even)
    mantissa, _ = np.frexp(scale)
    assert mantissa == 0.5  # a power of two
    ratio = value / scale
    # Below one, or below four for the largest floats (2**1024 overflows).
    assert 0.125 <= ratio <= (4.0 if value > 2.0**1020 else 1.0)
    # Dividing by it is exact: multiplying back gives the value again.
    assert ratio * scale == value
    if even:
        root = np.sqrt(scale)
        assert root * root == scale


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_power_of_two_scale_of_degenerate_magnitudes_is_one(value):
    assert power_of_two_scale(value) == 1.0


def test_check_finite_score():
    assert check_finite_score(-3.0, BaseEstimator()) == -3.0
    with pytest.raises(ValueError, match="BaseEstimator.score: the score of X .* "
                       r"largest entry is 1e\+300"):
        check_finite_score(-np.inf, BaseEstimator(), np.array([[1e300, 1.0]]))


def test_check_finite_on_object_arrays():
    from sparsesolve._validation import check_finite

    check_finite(np.array([1, 2.5], dtype=object), name="E")
    with pytest.raises(ValueError, match="Input E contains NaN"):
        check_finite(np.array([1, np.nan], dtype=object), name="E")
    with pytest.raises(TypeError, match="Input E must hold numbers"):
        check_finite(np.array(["a", 1], dtype=object), name="E")
    with pytest.raises(TypeError, match="Input E must hold numbers"):
        check_finite(np.array(["a", "b"]), name="E")
