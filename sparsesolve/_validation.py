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

import numbers

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import validate_data as _sklearn_validate_data

from ._backend import get_namespace, is_numpy_namespace

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
    return not is_numpy_namespace(get_namespace(X))


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
    if isinstance(X, (list, tuple, numbers.Number)) or not (
        array_api_compat.is_array_api_obj(X)
    ):
        x_ns = "array_api_compat.numpy"
    else:
        x_ns = get_namespace(X).__name__
    if fitted_ns != x_ns:
        raise TypeError(
            f"{type(estimator).__name__}.{method} got X from namespace {x_ns!r} "
            f"but the estimator was fitted on {fitted_ns!r}; move X to the same "
            "device (cupy.asarray / sparsesolve._backend.to_numpy)."
        )


# ---------------------------------------------------------------------------
# Scale, dtype and resource helpers (i16-fixa: kronecker, unmixing, poisson,
# datasets). Kept in one block at the end of the module so that parallel
# additions above merge cleanly.
# ---------------------------------------------------------------------------


def power_of_two_scale(*arrays, xp=None):
    """A power of two near the largest magnitude in ``arrays`` (1.0 if all zero).

    Dividing by a power of two is exact in binary floating point, so solvers
    can work on data of magnitude about one (no overflow of squares at
    ``1e300``, no underflow at ``1e-300``) and multiply their results back
    without adding any rounding of their own.

    Parameters
    ----------
    *arrays : arrays or None
        Finite arrays of one namespace (``None`` entries are skipped).
    xp : module, optional
        Their namespace.

    Returns
    -------
    float
        ``2**e`` with ``2**e <= max|a| < 2**(e + 1)``, or 1.0 when every
        entry is zero (or there are no entries).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._validation import power_of_two_scale
    >>> power_of_two_scale(np.array([3.0, -5.0]))
    4.0
    >>> power_of_two_scale(np.zeros(3))
    1.0
    """
    import math

    largest = 0.0
    for array in arrays:
        if array is None or int(np.prod(array.shape)) == 0:
            continue
        namespace = get_namespace(array) if xp is None else xp
        largest = max(largest, float(namespace.max(namespace.abs(array))))
    if largest == 0.0 or not math.isfinite(largest):
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)


def check_real(X, name, xp=None, *, reason=None):
    """Raise ``TypeError`` naming ``name`` unless ``X`` holds real numbers.

    Complex input is refused (never cast silently to its real part), as are
    non-numeric dtypes (strings, objects). Integers and booleans pass.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._validation import check_real
    >>> check_real(np.ones(2) + 1j, "X")
    Traceback (most recent call last):
    ...
    TypeError: X is complex (dtype complex128) but must be real; ...
    """
    xp = get_namespace(X) if xp is None else xp
    if xp.isdtype(X.dtype, "complex floating"):
        why = f" {reason}" if reason else ""
        raise TypeError(
            f"{name} is complex (dtype {X.dtype}) but must be real;{why} pass "
            f"the real part or the magnitude explicitly if that is what you mean."
        )
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}.")


def check_allocation(n_bytes, parameter, *, what="", limit=None, advice=None):
    """Raise ``ValueError`` naming ``parameter`` when ``n_bytes`` is not sane.

    Used where a parameter sets the size of an allocation: a typo such as
    ``n_components=10**6`` then fails at once with the memory it would
    need, instead of a ``MemoryError`` (or swapping) deep in a solver.

    Parameters
    ----------
    n_bytes : int or float
        Bytes the allocation would take.
    parameter : str
        The parameter (or parameters) that set its size, for the message.
    what : str, optional
        What would be allocated, for the message.
    limit : int, optional
        Largest accepted size in bytes; by default the machine's physical
        memory (64 GiB when it cannot be read).
    advice : str, optional
        What to do instead; by default "lower <parameter>".

    Examples
    --------
    >>> from sparsesolve._validation import check_allocation
    >>> check_allocation(8 * 10**18, "n_vectors", what="training vectors")
    Traceback (most recent call last):
    ...
    ValueError: n_vectors asks for training vectors of 6.9 EiB, more than ...
    """
    if limit is None:
        limit = _physical_memory()
    if n_bytes <= limit:
        return
    raise ValueError(
        f"{parameter} asks for {what + ' of ' if what else ''}"
        f"{_format_bytes(n_bytes)}, more than this machine's memory "
        f"({_format_bytes(limit)}); {advice or 'lower ' + parameter}."
    )


def _physical_memory():
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 64 * 2**30


def _format_bytes(n_bytes):
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} EiB"
