"""Scoring unmixing results: spectral angles after optimal matching, cube reshapes."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._backend import to_numpy
from .._sklearn_compat import validate_params
from .._validation import check_finite, check_real

__all__ = ["cube_to_pixels", "match_endmembers", "spectral_angles"]


def _host_spectra(values, name):
    """``values`` as a finite real float64 host array of spectra (rows)."""
    values = np.asarray(to_numpy(values))
    check_real(values, name, np, reason="spectral angles compare real spectra;")
    values = values.astype(np.float64)
    if values.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_spectra, n_bands); got shape "
            f"{values.shape}.")
    if values.shape[0] < 1 or values.shape[1] < 1:
        raise ValueError(f"{name} must hold at least one spectrum and one band; got "
                         f"shape {values.shape}.")
    check_finite(values, name, np)
    return values


def _unit_rows(values):
    """Rows scaled to unit norm (zero rows stay zero), safe from 1e-300 to 1e300."""
    # Divide by each row's largest magnitude first: the squares of 1e300
    # overflow and those of 1e-300 underflow.
    peak = np.max(np.abs(values), axis=1, keepdims=True)
    values = values / np.where(peak > 0, peak, 1.0)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.where(norms > 0, norms, 1.0)


@validate_params(
    {"reference": ["array-like"], "estimate": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def spectral_angles(reference, estimate):
    """Angles in degrees between every pair of spectra.

    Parameters
    ----------
    reference : array of shape (n_reference, n_bands)
    estimate : array of shape (n_estimate, n_bands)

    Returns
    -------
    ndarray of shape (n_reference, n_estimate)
        Spectral angle distances (SAD) in degrees.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.unmixing import spectral_angles
    >>> spectral_angles(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])).round(6)
    array([[45.]])
    """
    reference = _host_spectra(reference, "reference")
    estimate = _host_spectra(estimate, "estimate")
    return _angles(reference, estimate)


def _angles(reference, estimate):
    if reference.shape[1] != estimate.shape[1]:
        raise ValueError(
            "reference and estimate must be 2-D arrays (n_spectra, n_bands) with the "
            f"same number of bands; got shapes {reference.shape} and {estimate.shape}."
        )
    # A zero spectrum has no direction: its angle to anything is 90 degrees.
    cosines = _unit_rows(reference) @ _unit_rows(estimate).T
    # Rounding can push cosines of parallel spectra just above 1.
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


@validate_params(
    {"reference": ["array-like"], "estimate": ["array-like"],
     "bands": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def match_endmembers(reference, estimate, *, bands=None):
    """Match estimated endmembers to reference ones by minimal total angle.

    Uses the Hungarian method (:func:`scipy.optimize.linear_sum_assignment`)
    on the spectral angle matrix, not a greedy pairing.

    Parameters
    ----------
    reference : array of shape (n_endmembers, n_bands)
        True endmembers.
    estimate : array of shape (n_estimated, n_bands)
        Estimated endmembers, at least as many as ``reference`` (when there
        are more, the best matching subset is used).
    bands : array-like of int or bool mask, default=None
        Bands to compare on (for example the clean ones: robust methods leave
        arbitrary values in corrupted bands). ``None`` uses all.

    Returns
    -------
    order : ndarray of shape (n_endmembers,)
        ``estimate[order]`` lines up with ``reference``.
    angles : ndarray of shape (n_endmembers,)
        Spectral angle (degrees) of each matched pair.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.unmixing import match_endmembers
    >>> reference = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    >>> order, angles = match_endmembers(reference, reference[::-1])
    >>> order.tolist(), angles.round(3).tolist()
    ([1, 0], [0.0, 0.0])
    """
    reference = _host_spectra(reference, "reference")
    estimate = _host_spectra(estimate, "estimate")
    if estimate.shape[0] < reference.shape[0]:
        raise ValueError(
            f"estimate has {estimate.shape[0]} spectra but reference has "
            f"{reference.shape[0]}: every reference endmember needs its own "
            "estimate to be matched with.")
    if bands is not None:
        bands = _band_selection(bands, reference.shape[1])
        reference = reference[:, bands]
        estimate = estimate[:, bands]
    angles = _angles(reference, estimate)
    rows, columns = linear_sum_assignment(angles)
    order = np.empty(reference.shape[0], dtype=np.intp)
    order[rows] = columns
    return order, angles[np.arange(reference.shape[0]), order]


def _band_selection(bands, n_bands):
    """``bands`` as valid integer indices into ``n_bands`` bands."""
    bands = np.asarray(to_numpy(bands))
    if bands.ndim != 1:
        raise ValueError(f"bands must be 1-D (indices or a mask); got shape "
                         f"{bands.shape}.")
    if bands.dtype == bool:
        if bands.shape[0] != n_bands:
            raise ValueError(f"bands as a mask must have {n_bands} entries (one per "
                             f"band); got {bands.shape[0]}.")
        bands = np.flatnonzero(bands)
    elif bands.size and not np.issubdtype(bands.dtype, np.integer):
        raise TypeError(f"bands must hold integer indices or booleans; got dtype "
                        f"{bands.dtype}.")
    if bands.size == 0:
        raise ValueError("bands selects no band; at least one is needed.")
    if bands.min() < -n_bands or bands.max() >= n_bands:
        raise ValueError(f"bands holds indices outside [-{n_bands}, {n_bands}) for "
                         f"{n_bands} bands.")
    return bands.astype(np.intp)


@validate_params({"cube": ["array-like"]}, prefer_skip_nested_validation=True)
def cube_to_pixels(cube):
    """Reshape an image cube (n_rows, n_cols, n_bands) into (n_pixels, n_bands).

    Pixels are taken row by row (C order), so ``pixels.reshape(n_rows,
    n_cols, -1)`` gives per-pixel results back as maps.

    Parameters
    ----------
    cube : array of shape (n_rows, n_cols, n_bands)

    Returns
    -------
    array of shape (n_rows * n_cols, n_bands)
        A view when possible, in the cube's namespace.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.unmixing import cube_to_pixels
    >>> cube_to_pixels(np.zeros((4, 5, 3))).shape
    (20, 3)
    """
    if getattr(cube, "ndim", None) != 3:
        raise ValueError(
            "cube must be a 3-D array of shape (n_rows, n_cols, n_bands); got shape "
            f"{tuple(getattr(cube, 'shape', ()))}."
        )
    from .._backend import get_namespace

    xp = get_namespace(cube)
    n_rows, n_cols, n_bands = cube.shape
    return xp.reshape(cube, (n_rows * n_cols, n_bands))
