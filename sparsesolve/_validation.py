"""Input checks shared by every estimator, on top of scikit-learn's.

NumPy-compatible input (lists, NumPy arrays, pandas frames, SciPy sparse
matrices) goes through :func:`sklearn.utils.validation.validate_data`, so
error messages and feature-name handling are exactly scikit-learn's. Arrays
from another array library (CuPy on the GPU, array-api-strict in the tests)
are checked where they live, without a round trip to the host, when
scikit-learn's array API dispatch is off; with dispatch on, scikit-learn
handles them itself.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import validate_data as _sklearn_validate_data

from ._backend import get_namespace, kernel_target

__all__ = [
    "check_finite",
    "check_is_fitted",
    "check_same_device",
    "float_dtype_of",
    "validate_data",
]


def _is_foreign_array(X):
    """True for arrays of another library (CuPy, array-api-strict, ...)."""
    if isinstance(X, np.ndarray) or not array_api_compat.is_array_api_obj(X):
        return False
    return kernel_target(get_namespace(X)) != "cpu"


def float_dtype_of(X, xp=None):
    """Return the floating dtype results should have for input ``X``.

    float32 and complex64 stay single precision (GPU users rely on it);
    everything else computes in float64 / complex128.

    Parameters
    ----------
    X : array
        Input array.
    xp : module, optional
        Its namespace.

    Returns
    -------
    dtype
        A dtype object of ``xp``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._validation import float_dtype_of
    >>> float_dtype_of(np.ones(2, dtype=np.float32)) == np.float32
    True
    >>> float_dtype_of(np.ones(2, dtype=int)) == np.float64
    True
    """
    xp = get_namespace(X) if xp is None else xp
    if xp.isdtype(X.dtype, "complex floating"):
        return X.dtype
    if X.dtype == xp.float32:
        return xp.float32
    return xp.float64


def check_finite(X, name="X", xp=None):
    """Raise ``ValueError`` naming ``name`` when ``X`` holds NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._validation import check_finite
    >>> check_finite(np.array([1.0, np.nan]), name="Y")
    Traceback (most recent call last):
    ...
    ValueError: Input Y contains NaN or infinity.
    """
    xp = get_namespace(X) if xp is None else xp
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"Input {name} contains NaN or infinity.")


def _check_foreign(X, *, ensure_2d, allow_complex, ensure_all_finite, dtype):
    """Check a non-NumPy array where it lives (GPU stays on the GPU)."""
    xp = get_namespace(X)
    if ensure_2d and X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array for X, got {X.ndim}D array with shape "
            f"{tuple(X.shape)}; reshape your data."
        )
    if xp.isdtype(X.dtype, "complex floating"):
        if not allow_complex:
            raise ValueError("Complex data not supported for X.")
    elif not xp.isdtype(X.dtype, "real floating"):
        if xp.isdtype(X.dtype, ("integral", "bool")):
            X = xp.astype(X, xp.float64)
        else:
            raise TypeError(f"X must hold numbers; got dtype {X.dtype}.")
    elif dtype is not None and X.dtype not in [getattr(xp, d) for d in dtype]:
        X = xp.astype(X, getattr(xp, dtype[0]))
    if X.ndim >= 1 and X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            "minimum of 1 is required."
        )
    if ensure_all_finite == "allow-nan":
        if bool(xp.any(xp.isinf(X))):
            raise ValueError("Input X contains infinity.")
    elif ensure_all_finite:
        check_finite(X, "X", xp)
    return X


def _check_complex_numpy(X, *, ensure_2d, ensure_all_finite):
    """NumPy path for complex input, which scikit-learn's checks refuse."""
    X = np.asarray(X)
    if ensure_2d and X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array for X, got {X.ndim}D array with shape "
            f"{X.shape}; reshape your data."
        )
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of "
            "1 is required."
        )
    if ensure_all_finite:
        check_finite(X, "X")
    return X


def _set_or_check_n_features(estimator, X, reset):
    n_features = X.shape[1] if X.ndim == 2 else 1
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif getattr(estimator, "n_features_in_", n_features) != n_features:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_in_} features as input."
        )


def validate_data(
    estimator,
    X,
    *,
    reset=True,
    allow_complex=False,
    ensure_2d=True,
    ensure_all_finite=True,
    dtype=("float64", "float32"),
    **check_params,
):
    """Validate ``X`` for ``estimator`` and return it in its own namespace.

    Parameters
    ----------
    estimator : estimator instance
        Receives ``n_features_in_`` (and ``feature_names_in_``) when
        ``reset=True``; is checked against them otherwise.
    X : array-like
        Input data.
    reset : bool, default=True
        True in ``fit``, False in ``transform``/``predict``.
    allow_complex : bool, default=False
        Accept complex input (sparse Bayesian recovery, Krylov solvers).
    ensure_2d : bool, default=True
        Require a 2D array.
    ensure_all_finite : bool, default=True
        Reject NaN and infinity (set False for methods about missing data).
    dtype : tuple of str or None, default=("float64", "float32")
        Accepted real dtypes; others are converted to the first one.
    **check_params : dict
        Passed on to :func:`sklearn.utils.validation.validate_data`.

    Returns
    -------
    X : array
        Validated array, NumPy for host input, CuPy for CuPy input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from sparsesolve._validation import validate_data
    >>> est = BaseEstimator()
    >>> validate_data(est, [[1, 2], [3, 4]]).dtype
    dtype('float64')
    >>> est.n_features_in_
    2
    """
    if _is_foreign_array(X) and not get_config()["array_api_dispatch"]:
        X = _check_foreign(
            X,
            ensure_2d=ensure_2d,
            allow_complex=allow_complex,
            ensure_all_finite=ensure_all_finite,
            dtype=dtype,
        )
        _set_or_check_n_features(estimator, X, reset)
        return X
    if allow_complex and not _is_foreign_array(X) and np.iscomplexobj(X):
        X = _check_complex_numpy(
            X, ensure_2d=ensure_2d, ensure_all_finite=ensure_all_finite
        )
        _set_or_check_n_features(estimator, X, reset)
        return X
    if dtype is not None:
        # Under scikit-learn's array API dispatch dtypes must be objects of
        # the input's namespace; plain NumPy accepts the names.
        xp = get_namespace(X)
        dtype = [getattr(xp, name) for name in dtype]
    return _sklearn_validate_data(
        estimator,
        X,
        reset=reset,
        ensure_2d=ensure_2d,
        ensure_all_finite=ensure_all_finite,
        dtype=dtype,
        **check_params,
    )


def check_same_device(X, estimator, *, attribute, method):
    """Raise when ``X`` and a fitted attribute live in different namespaces.

    scikit-learn's ``check_same_namespace`` only runs with array API dispatch
    on; this also catches the common mistake of fitting on the GPU and
    transforming NumPy data (or the reverse) with dispatch off.

    Parameters
    ----------
    X : array-like
        Data passed to ``method``.
    estimator : estimator instance
        A fitted estimator.
    attribute : str
        Name of a fitted array attribute, such as ``"components_"``.
    method : str
        Name of the calling method, for the error message.
    """
    from ._sklearn_compat import check_same_namespace

    check_same_namespace(X, estimator, attribute=attribute, method=method)
    fitted = getattr(estimator, attribute)
    fitted_ns = get_namespace(fitted).__name__
    # Lists, scalars and anything else that is not an array count as NumPy.
    x_ns = get_namespace(X).__name__
    if fitted_ns != x_ns:
        raise TypeError(
            f"{type(estimator).__name__}.{method} got X from namespace {x_ns!r} "
            f"but the estimator was fitted on {fitted_ns!r}; move X to the same "
            "device (cupy.asarray / sparsesolve._backend.to_numpy)."
        )
