"""Scoring unmixing results: spectral angles after optimal matching, cube reshapes."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._backend import to_numpy

__all__ = ["cube_to_pixels", "match_endmembers", "spectral_angles"]


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
    reference = np.asarray(to_numpy(reference), dtype=np.float64)
    estimate = np.asarray(to_numpy(estimate), dtype=np.float64)
    same_bands = reference.ndim == 2 and estimate.ndim == 2 and (
        reference.shape[1] == estimate.shape[1]
    )
    if not same_bands:
        raise ValueError(
            "reference and estimate must be 2-D arrays (n_spectra, n_bands) with the "
            f"same number of bands; got shapes {reference.shape} and {estimate.shape}."
        )
    norms = np.outer(
        np.linalg.norm(reference, axis=1), np.linalg.norm(estimate, axis=1)
    )
    cosines = reference @ estimate.T / np.maximum(norms, 1e-300)
    # Rounding can push cosines of parallel spectra just above 1.
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def match_endmembers(reference, estimate, *, bands=None):
    """Match estimated endmembers to reference ones by minimal total angle.

    Uses the Hungarian method (:func:`scipy.optimize.linear_sum_assignment`)
    on the spectral angle matrix, not a greedy pairing.

    Parameters
    ----------
    reference : array of shape (n_endmembers, n_bands)
        True endmembers.
    estimate : array of shape (n_endmembers, n_bands)
        Estimated endmembers.
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
    reference = np.asarray(to_numpy(reference), dtype=np.float64)
    estimate = np.asarray(to_numpy(estimate), dtype=np.float64)
    if bands is not None:
        reference = reference[:, bands]
        estimate = estimate[:, bands]
    angles = spectral_angles(reference, estimate)
    rows, columns = linear_sum_assignment(angles)
    order = np.empty(reference.shape[0], dtype=np.intp)
    order[rows] = columns
    return order, angles[np.arange(reference.shape[0]), order]


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
