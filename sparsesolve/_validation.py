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

from ._backend import available_memory, get_namespace, kernel_target
from ._sklearn_compat import Interval

# joblib's meaning of n_jobs (as every scikit-learn estimator): None for the
# default, a positive count, or -1 for all cores, -2 for all but one, ...
# Zero means nothing in joblib (it raises) and is refused here too.
N_JOBS_CONSTRAINT = [
    Interval(numbers.Integral, None, -1, closed="right"),
    Interval(numbers.Integral, 1, None, closed="left"),
    None,
]

__all__ = [
    "N_JOBS_CONSTRAINT",
    "AllocationError",
    "available_memory",
    "check_allocation",
    "check_array_argument",
    "check_finite",
    "check_finite_score",
    "check_real",
    "check_is_fitted",
    "check_same_device",
    "float_dtype_of",
    "power_of_two_scale",
    "power_of_two_scale_of",
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
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    if kind is not None and kind not in "biufc":
        # Object or string arrays: isfinite is undefined on them (NumPy
        # raises "ufunc 'isfinite' not supported"); check their numbers.
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"Input {name} must hold numbers; got an array of dtype "
                f"{X.dtype} with entries that are not numbers."
            ) from None
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"Input {name} contains NaN or infinity.")


def _reject_complex(X, estimator, input_name="X"):
    """Refuse complex ``X`` with a message that names it and the estimator.

    scikit-learn's own refusal prints the whole array and names neither.
    ``estimator`` is an estimator, the name of a caller, or None.
    """
    if estimator is None:
        owner = ""
    elif isinstance(estimator, str):
        owner = f"{estimator} "
    else:
        owner = f"{type(estimator).__name__} "
    dtype = getattr(X, "dtype", None)
    if dtype is None or not hasattr(dtype, "kind"):
        dtype = np.asarray(X).dtype if not hasattr(X, "dtypes") else "complex"
    raise ValueError(
        f"Complex data not supported for {input_name}: {owner}works on real "
        f"numbers only; got dtype {dtype}. Dropping the imaginary part is "
        f"not done silently: pass {input_name}.real, abs({input_name}) or the "
        "real and imaginary parts as separate features if that is what you "
        "mean."
    )


def check_finite_score(score, estimator, X=None):
    """Return ``score``, or raise when it overflowed the float range.

    Scores in squared units of the data (minus a sum of squared errors)
    exceed float64 for data around 1e154 and beyond although every fit in
    the package is scale-free there; an infinite score would pass through
    ``GridSearchCV`` unnoticed, so the caller gets an error naming ``X``.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from sparsesolve._validation import check_finite_score
    >>> check_finite_score(-2.5, BaseEstimator())
    -2.5
    """
    if np.isfinite(score):
        return score
    largest = ""
    if X is not None:
        xp = get_namespace(X)
        largest = f" (its largest entry is {float(xp.max(xp.abs(X))):.3g})"
    raise ValueError(
        f"{type(estimator).__name__}.score: the score of X is a sum of squared "
        f"errors in the units of X squared and overflows float64 for data of "
        f"this magnitude{largest}; rescale X to score it (the fit and the "
        "predictions do not depend on the scale)."
    )


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
            _reject_complex(X, None)
    elif not xp.isdtype(X.dtype, "real floating"):
        if xp.isdtype(X.dtype, ("integral", "bool")):
            X = xp.astype(X, xp.float64)
        else:
            raise TypeError(f"X must hold numbers; got dtype {X.dtype}.")
    elif dtype is not None and X.dtype not in [getattr(xp, d) for d in dtype]:
        X = xp.astype(X, getattr(xp, dtype[0]))
    if X.ndim >= 1 and X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) in X (shape={tuple(X.shape)}) while a "
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
            f"Found array with 0 sample(s) in X (shape={X.shape}) while a minimum of "
            "1 is required."
        )
    if ensure_all_finite:
        check_finite(X, "X")
    return X


def _is_complex_numpy(X):
    """True for NumPy-convertible complex input (arrays, frames, sparse, lists)."""
    dtypes = getattr(X, "dtypes", None)  # pandas frames: one dtype per column
    if dtypes is not None and not hasattr(X, "dtype"):
        return any(getattr(d, "kind", "") == "c" for d in np.atleast_1d(dtypes))
    dtype = getattr(X, "dtype", None)
    if dtype is not None:
        return getattr(dtype, "kind", "") == "c"
    try:
        return bool(np.iscomplexobj(np.asarray(X)))
    except (TypeError, ValueError):
        return False


def _first_non_number(X):
    """Describe the first entry of ``X`` that is not a number, for messages."""
    try:
        flat = np.asarray(X, dtype=object).ravel()
    except (TypeError, ValueError):
        return "ragged or unreadable input"
    for value in flat:
        try:
            float(value)
        except (TypeError, ValueError):
            return f"for example {value!r}"
    return "an entry of a non-numeric dtype"


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
    complex_input = not _is_foreign_array(X) and _is_complex_numpy(X)
    if complex_input and not allow_complex:
        _reject_complex(X, estimator)
    if complex_input:
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
    try:
        return _sklearn_validate_data(
            estimator,
            X,
            reset=reset,
            ensure_2d=ensure_2d,
            ensure_all_finite=ensure_all_finite,
            dtype=dtype,
            **check_params,
        )
    except (TypeError, ValueError) as error:
        # NumPy's "could not convert string to float: 'a'" names neither
        # the argument nor the estimator.
        if "could not convert" not in str(error) and "float() argument" not in str(
                error):
            raise
        # The same exception type as NumPy's (TypeError for objects that
        # are not numbers at all, ValueError for unparsable strings), as
        # scikit-learn's check_dtype_object expects.
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(
            f"X must hold numbers for {type(estimator).__name__}: each entry, "
            "as a float() argument must be a string or a number, and "
            f"{_first_non_number(X)} is not."
        ) from error


def check_array_argument(
    array,
    name,
    *,
    ndim=None,
    shape=None,
    allow_complex=False,
    allow_empty=False,
    ensure_all_finite=True,
    caller=None,
):
    """Validate an array argument other than ``X`` (a dictionary, an init, ...).

    NumPy-convertible input becomes a float64 / float32 (or, when allowed,
    complex) NumPy array; arrays of another library (CuPy) are checked where
    they live. Every error names ``name``.

    Parameters
    ----------
    array : array-like
        The argument.
    name : str
        Its name, for the messages (``"dictionary"``, ``"init"``).
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any length.
    allow_complex : bool, default=False
        Accept complex values (else a ``ValueError``; never a silent cast).
    allow_empty : bool, default=False
        Accept arrays with a zero-length axis.
    ensure_all_finite : bool, default=True
        Reject NaN and infinity.
    caller : str, optional
        Who asks, prefixed to the messages.

    Returns
    -------
    array
        The checked array, NumPy or the namespace it came in.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._validation import check_array_argument
    >>> check_array_argument([[1, 2]], "init", ndim=2).dtype
    dtype('float64')
    >>> check_array_argument([np.nan], "feature_mean")
    Traceback (most recent call last):
    ...
    ValueError: Input feature_mean contains NaN or infinity.
    """
    prefix = "" if caller is None else f"{caller}: "
    if _is_foreign_array(array):
        xp = get_namespace(array)
        if xp.isdtype(array.dtype, "complex floating"):
            if not allow_complex:
                _reject_complex(array, caller, name)
        elif xp.isdtype(array.dtype, ("integral", "bool")):
            array = xp.astype(array, xp.float64)
        elif not xp.isdtype(array.dtype, "real floating"):
            raise TypeError(f"{prefix}{name} must hold numbers; got dtype "
                            f"{array.dtype}.")
    else:
        if isinstance(array, str) or array is None:
            raise TypeError(f"{prefix}{name} must be an array of numbers; got "
                            f"{type(array).__name__}.")
        if hasattr(array, "toarray") and hasattr(array, "nnz"):
            raise TypeError(f"{prefix}{name} must be a dense array; got a sparse "
                            "matrix (call .toarray() first).")
        try:
            array = np.asarray(array)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{prefix}{name} could not be read as an array of "
                             f"numbers: {error}") from None
        xp = get_namespace(array)
        if array.dtype.kind == "c":
            if not allow_complex:
                _reject_complex(array, caller, name)
        elif array.dtype.kind in "biu":
            array = array.astype(np.float64)
        elif array.dtype.kind == "f":
            if array.dtype not in (np.float32, np.float64):
                array = array.astype(np.float64)
        else:
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{prefix}{name} must hold numbers; got dtype "
                                f"{array.dtype}.") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{prefix}{name} must be a {ndim}-D array; got shape "
                         f"{tuple(array.shape)}.")
    if shape is not None and (len(shape) != array.ndim or any(
        want is not None and want != got
        for want, got in zip(shape, array.shape, strict=True)
    )):
        expected = tuple("any" if want is None else want for want in shape)
        raise ValueError(f"{prefix}{name} must have shape {expected}; got "
                         f"{tuple(array.shape)}.")
    if not allow_empty and any(int(n) == 0 for n in array.shape):
        raise ValueError(f"{prefix}{name} is empty (shape {tuple(array.shape)}); "
                         "it needs at least one entry along every axis.")
    if ensure_all_finite:
        check_finite(array, name, xp)
    return array


class AllocationError(MemoryError, ValueError):
    """A parameter asks for more memory than the machine has.

    A ``MemoryError`` (what NumPy raises) and a ``ValueError`` (a bad
    parameter value, what scikit-learn users catch), raised before any of
    the memory is requested.
    """


def power_of_two_scale(max_abs, *, even=False):
    """A power of two close to ``max_abs``, to normalise data exactly.

    Dividing by a power of two only changes the exponent of each float, so
    normalising and unscaling lose nothing (short of underflow below the
    smallest normal number); results on ``s * X`` are then those on ``X``
    scaled, with no overflow at ``1e300`` nor underflow at ``1e-300``.

    Parameters
    ----------
    max_abs : float
        Largest magnitude in the data. Zero, NaN or infinity give ``1.0``.
    even : bool, default=False
        Return a power of four, whose square root is also a power of two
        (for factorisations ``X ~ U V^T`` that split the scale).

    Returns
    -------
    scale : float

    Examples
    --------
    >>> from sparsesolve._validation import power_of_two_scale
    >>> power_of_two_scale(3e300) == 2.0 ** 999
    True
    >>> power_of_two_scale(0.0)
    1.0
    """
    max_abs = float(max_abs)
    if not np.isfinite(max_abs) or max_abs <= 0:
        return 1.0
    _, exponent = np.frexp(max_abs)
    # 2**1024 is not a float64: the largest magnitudes get 2**1023 (2**1022
    # for even), which leaves them below 2 (4) after the division.
    exponent = min(int(exponent), 1023)
    if even and exponent % 2:
        exponent = exponent - 1 if exponent == 1023 else exponent + 1
    return float(np.ldexp(1.0, exponent))


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


def power_of_two_scale_of(*arrays, xp=None):
    """The largest power of two not above ``max |a|`` over ``arrays`` (or 1.0).

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
    >>> from sparsesolve._validation import power_of_two_scale_of
    >>> power_of_two_scale_of(np.array([3.0, -5.0]))
    4.0
    >>> power_of_two_scale_of(np.zeros(3))
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


def check_allocation(nbytes, parameter, *, value=None, what="memory", xp=None,
                     limit=None, advice=None):
    """Raise :class:`AllocationError` when ``nbytes`` cannot fit in memory.

    Call it before allocating arrays whose size a parameter sets (the atoms
    of ``n_components``, a Gram matrix, a grid), so that a typo such as
    ``n_components=10**6`` fails at once with a clear error naming the
    parameter and the memory it would need, instead of NumPy's ``Unable to
    allocate 7.3 TiB`` deep in a solver (or the system swapping first).

    Parameters
    ----------
    nbytes : int or float
        Bytes the arrays will take together.
    parameter : str
        The parameter (or argument) that sets their size.
    value : object, optional
        Its value, quoted in the message.
    what : str, default="memory"
        What the memory is for.
    xp : module, optional
        Namespace the arrays will live in (CuPy: free GPU memory is checked).
    limit : int, optional
        Largest accepted size in bytes; by default the free memory of the
        device (the host's physical memory when the platform does not say).
    advice : str, optional
        What to do instead; by default "lower <parameter>".

    Examples
    --------
    >>> from sparsesolve._validation import check_allocation
    >>> check_allocation(2**20, "n_components")
    >>> check_allocation(2**60, "n_components", value=10**9, what="the atoms")
    Traceback (most recent call last):
    ...
    sparsesolve._validation.AllocationError: n_components asks for the atoms of ...
    """
    where = "this machine has free"
    if limit is None:
        limit = available_memory(xp)
        if limit is None:
            limit, where = _physical_memory(), "this machine's memory"
    else:
        where = "the limit"
    if nbytes <= limit:
        return
    if advice is None:
        advice = f"lower {parameter}"
        if value is not None:
            advice += f" (got {parameter}={value!r})"
    what = what[:1].lower() + what[1:]
    raise AllocationError(
        f"{parameter} asks for {what} of {_format_bytes(nbytes)}, more than "
        f"{where} ({_format_bytes(limit)}); {advice}."
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
