import array_api_strict
import numpy as np
import pytest
from sklearn.base import BaseEstimator

from sparsesolve._progress import Progress
from sparsesolve._validation import (
    check_finite,
    check_same_device,
    float_dtype_of,
    validate_data,
)


def test_validate_numpy_sets_features_and_keeps_float32():
    est = BaseEstimator()
    X = np.ones((3, 2), dtype=np.float32)
    out = validate_data(est, X)
    assert out.dtype == np.float32
    assert est.n_features_in_ == 2
    with pytest.raises(ValueError, match="3 features"):
        validate_data(est, np.ones((2, 3)), reset=False)


def test_validate_foreign_array_stays_in_namespace():
    est = BaseEstimator()
    X = array_api_strict.asarray([[1, 2], [3, 4]])
    out = validate_data(est, X)
    assert out.dtype == array_api_strict.float64
    assert est.n_features_in_ == 2
    with pytest.raises(ValueError, match="NaN"):
        validate_data(est, array_api_strict.asarray([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2D"):
        validate_data(est, array_api_strict.asarray([1.0, 2.0]))


def test_complex_input_only_when_allowed():
    est = BaseEstimator()
    X = np.ones((2, 2)) + 1j
    out = validate_data(est, X, allow_complex=True)
    assert np.iscomplexobj(out)
    with pytest.raises(ValueError, match="Complex"):
        validate_data(est, X)


def test_caller_array_not_modified():
    X = np.arange(6, dtype=float).reshape(3, 2)
    before = X.copy()
    validate_data(BaseEstimator(), X)
    np.testing.assert_array_equal(X, before)


def test_check_finite_names_argument():
    with pytest.raises(ValueError, match="Input Y"):
        check_finite(np.array([np.inf]), name="Y")


def test_float_dtype_of():
    assert float_dtype_of(np.ones(1, dtype=np.complex64)) == np.complex64
    assert float_dtype_of(np.ones(1, dtype=np.int32)) == np.float64


def test_check_same_device_rejects_mixed_namespaces():
    est = BaseEstimator()
    est.components_ = array_api_strict.asarray([1.0])
    with pytest.raises(TypeError, match="fitted on"):
        check_same_device(np.ones((1, 1)), est, attribute="components_",
                          method="transform")


def test_progress_bar_counts_iterations(capsys):
    with Progress(total=2, verbose=2, desc="toy") as progress:
        progress.update(objective=1.0)
        progress.update(objective=0.5)
    assert progress.n_updates == 2
    captured = capsys.readouterr()
    assert "iteration 2" in captured.out + captured.err


def test_foreign_array_allow_nan_rejects_only_infinity():
    est = BaseEstimator()
    X = array_api_strict.asarray([[np.nan, 1.0]])
    assert validate_data(est, X, ensure_all_finite="allow-nan").shape == (1, 2)
    with pytest.raises(ValueError, match="infinity"):
        validate_data(est, array_api_strict.asarray([[np.inf, 1.0]]),
                      ensure_all_finite="allow-nan")
