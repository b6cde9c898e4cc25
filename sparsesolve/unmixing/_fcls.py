"""Fully constrained least squares (FCLS): abundances for known endmembers."""

from __future__ import annotations

from numbers import Real

import array_api_compat

from .._backend import get_namespace, kernel
from .._sklearn_compat import Interval, validate_params
from .._validation import (
    check_finite,
    check_real,
    float_dtype_of,
    power_of_two_scale_of,
)
from . import _kernels  # noqa: F401 - registers the per-pixel solver

__all__ = ["fcls"]


def _check_pair(X, endmembers, band_weights, xp):
    reason = "abundances of the linear mixing model are real;"
    check_real(X, "X", xp, reason=reason)
    check_real(endmembers, "endmembers", xp, reason=reason)
    if band_weights is not None:
        check_real(band_weights, "band_weights", xp, reason=reason)
    if getattr(X, "ndim", None) != 2:
        raise ValueError(
            "X must be a 2-D array of shape (n_pixels, n_bands); got shape "
            f"{tuple(getattr(X, 'shape', ()))}. Reshape a cube with "
            "sparsesolve.unmixing.cube_to_pixels."
        )
    if getattr(endmembers, "ndim", None) != 2:
        raise ValueError(
            "endmembers must be a 2-D array of shape (n_endmembers, n_bands); got "
            f"shape {tuple(getattr(endmembers, 'shape', ()))}."
        )
    if endmembers.shape[1] != X.shape[1]:
        raise ValueError(
            f"endmembers has {endmembers.shape[1]} bands but X has {X.shape[1]}; "
            "both need shape (..., n_bands)."
        )
    if endmembers.shape[0] < 1:
        raise ValueError("endmembers must hold at least one endmember.")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must hold at least one pixel and one band; got shape "
                         f"{tuple(X.shape)}.")
    check_finite(X, "X", xp)
    check_finite(endmembers, "endmembers", xp)
    if band_weights is not None:
        if tuple(band_weights.shape) != (X.shape[1],):
            raise ValueError(
                f"band_weights must have shape ({X.shape[1]},); got "
                f"{tuple(band_weights.shape)}."
            )
        check_finite(band_weights, "band_weights", xp)
        if not bool(xp.all(band_weights >= 0)):
            raise ValueError("band_weights must be nonnegative.")
        if not bool(xp.any(band_weights > 0)):
            raise ValueError("band_weights are all zero: no band is left to fit.")


@validate_params(
    {
        "X": ["array-like"],
        "endmembers": ["array-like"],
        "band_weights": ["array-like", None],
        "tol": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)

def fcls(X, endmembers, *, band_weights=None, tol=1e-12):
    """Fully constrained least squares abundances of every pixel.

    Solves, independently for each pixel ``x`` (a row of ``X``),

    .. math:: \\min_a \\sum_l w_l (x_l - (a^T E)_l)^2
              \\quad \\text{s.t.}\\quad a \\ge 0,\\ \\sum_k a_k = 1

    exactly, with a primal active-set method on the ``n_endmembers`` x
    ``n_endmembers`` Gram matrix. The per-pixel loop runs in a numba
    ``prange`` kernel on the CPU and in a numba-cuda kernel (one thread per
    pixel) for CuPy input; the result is returned in the input's namespace.

    Parameters
    ----------
    X : array of shape (n_pixels, n_bands)
        Pixel spectra (NumPy or CuPy).
    endmembers : array of shape (n_endmembers, n_bands)
        Endmember spectra, in the same namespace as ``X``.
    band_weights : array of shape (n_bands,), default=None
        Nonnegative weight of each band in the squared error (for example
        :attr:`RobustUnmixing.band_weights_`, which down-weights corrupted
        bands). ``None`` weighs all bands equally.
    tol : float, default=1e-12
        Relative tolerance of the optimality (multiplier) test.

    Returns
    -------
    abundances : array of shape (n_pixels, n_endmembers)
        Nonnegative rows that sum to one (to rounding), float32 for float32
        input and float64 otherwise.

    See Also
    --------
    vca : Pick endmembers among the pixels.
    RobustUnmixing : Learn endmembers and abundances together.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.unmixing import fcls
    >>> endmembers = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    >>> X = np.array([[0.3, 0.7, 0.5], [2.0, -1.0, 0.5]])
    >>> fcls(X, endmembers).round(6)
    array([[0.3, 0.7],
           [1. , 0. ]])
    """
    xp = get_namespace(X, endmembers, band_weights)
    X = xp.asarray(X)
    endmembers = xp.asarray(endmembers)
    if band_weights is not None:
        band_weights = xp.asarray(band_weights)
    _check_pair(X, endmembers, band_weights, xp)
    dtype = float_dtype_of(X, xp)
    X = xp.astype(X, dtype)
    endmembers = xp.astype(endmembers, dtype)
    # The abundances do not change when X and the endmembers are scaled
    # together (nor when all weights are): solve at magnitude one, so that
    # the Gram matrix of data at 1e300 does not overflow (or at 1e-300
    # underflow). A power of two divides exactly.
    scale = power_of_two_scale_of(X, endmembers, xp=xp)
    X = X / scale
    endmembers = endmembers / scale
    if band_weights is not None:
        # Weighted least squares = plain least squares on sqrt(w)-scaled bands.
        weights = xp.astype(band_weights, xp.float64)
        weights = weights / power_of_two_scale_of(weights, xp=xp)
        root = xp.astype(xp.sqrt(weights), dtype)
        X = X * root
        endmembers = endmembers * root
    # The Gram matrix is tiny: float64 keeps the KKT solves accurate even
    # for float32 data.
    endmembers64 = xp.astype(endmembers, xp.float64)
    gram = endmembers64 @ endmembers64.T
    correlations = X @ endmembers.T
    return simplex_qp(gram, correlations, tol=tol)


def simplex_qp(gram, correlations, *, tol=1e-12):
    """Solve ``min_a 0.5 a^T G a - b_n^T a`` on the simplex for every row ``b_n``.

    The per-pixel problem behind :func:`fcls` with a general linear term (a
    linearised penalty can be folded into it), dispatched to the numba CPU
    driver or the numba-cuda kernel by the namespace of ``correlations``.

    Parameters
    ----------
    gram : array of shape (k, k)
        Symmetric positive semidefinite matrix (float64), same namespace.
    correlations : array of shape (n, k)
        Linear terms ``b_n``; the result has their dtype.
    tol : float, default=1e-12

    Returns
    -------
    array of shape (n, k)
        Rows on the probability simplex.
    """
    xp = get_namespace(correlations)
    gram = xp.asarray(gram, dtype=xp.float64)
    # The compiled kernel indexes gram[i, j] for i, j < correlations.shape[1]
    # and trusts finite values: check both before it runs.
    k = correlations.shape[1] if correlations.ndim == 2 else -1
    if correlations.ndim != 2 or tuple(gram.shape) != (k, k):
        raise ValueError(
            f"simplex_qp needs gram of shape (k, k) and correlations of shape "
            f"(n, k); got {tuple(gram.shape)} and {tuple(correlations.shape)}.")
    if k < 1:
        raise ValueError("simplex_qp needs at least one component (k >= 1).")
    check_finite(gram, "gram", xp)
    check_finite(correlations, "correlations", xp)
    out = xp.empty(correlations.shape, dtype=correlations.dtype,
                   device=array_api_compat.device(correlations))
    kernel("unmixing_simplex_qp", xp)(correlations.shape[0], gram, correlations,
                                      out, float(tol))
    return out
