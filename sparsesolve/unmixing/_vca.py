"""Vertex component analysis (VCA): pick endmembers among the pixels."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from array_api_compat import device
from sklearn.utils import check_random_state

from .._backend import get_namespace, to_namespace, to_numpy
from .._sklearn_compat import Interval, validate_params
from .._validation import (
    check_finite,
    check_real,
    float_dtype_of,
    power_of_two_scale_of,
)

__all__ = ["vca"]


def _check_vca_input(X, n_endmembers, xp):
    if getattr(X, "ndim", None) != 2:
        raise ValueError(
            "X must be a 2-D array of shape (n_pixels, n_bands); got shape "
            f"{tuple(getattr(X, 'shape', ()))}."
        )
    check_real(X, "X", xp, reason="VCA finds the vertices of a real simplex;")
    n_pixels, n_bands = X.shape
    if n_pixels == 0 or n_bands == 0:
        raise ValueError(f"X is empty (shape {tuple(X.shape)}); VCA needs pixels "
                         "and bands.")
    if n_endmembers > min(n_pixels, n_bands):
        raise ValueError(
            f"n_endmembers={n_endmembers} exceeds min(n_pixels, n_bands)="
            f"{min(n_pixels, n_bands)}: VCA picks that many distinct pixels in a "
            "subspace of that dimension."
        )
    check_finite(X, "X", xp)
    if not bool(xp.any(X != 0)):
        raise ValueError(
            "X is all zeros: its pixels span no simplex, so VCA has no endmember "
            "to find.")


@validate_params(
    {
        "X": ["array-like"],
        "n_endmembers": [Interval(Integral, 1, None, closed="left")],
        "snr_threshold": [Interval(Real, None, None, closed="both"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def vca(X, n_endmembers, *, snr_threshold=None, random_state=None):
    """Vertex component analysis: the pixels at the corners of the data simplex.

    Under the linear mixing model the pixel spectra lie in a simplex whose
    vertices are the endmembers. VCA (Nascimento and Bioucas-Dias, 2005)
    projects the data onto an ``n_endmembers``-dimensional subspace, then
    repeatedly projects it onto a random direction orthogonal to the
    vertices found so far and takes the pixel with the extreme projection as
    the next vertex. It assumes pure (or nearly pure) pixels are present.

    Parameters
    ----------
    X : array of shape (n_pixels, n_bands)
        Pixel spectra (NumPy or CuPy; the result comes back in the same
        namespace).
    n_endmembers : int
        Number of endmembers to extract.
    snr_threshold : float, default=None
        Signal-to-noise ratio in dB above which the data are projected with
        a plain (projective) SVD subspace, and below which mean-removed PCA
        is used instead. ``None`` uses ``15 + 10 log10(n_endmembers)``, the
        choice of the original paper.
    random_state : int, RandomState instance or None, default=None
        Seeds the random projection directions (drawn on the host).

    Returns
    -------
    endmembers : array of shape (n_endmembers, n_bands)
        Spectra of the selected pixels.
    indices : ndarray of shape (n_endmembers,)
        Row indices of the selected pixels in ``X`` (NumPy integers).

    References
    ----------
    J. M. P. Nascimento and J. M. Bioucas-Dias, "Vertex component analysis: a
    fast algorithm to unmix hyperspectral data", IEEE Trans. Geosci. Remote
    Sens. 43(4), 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.unmixing import vca
    >>> rng = np.random.RandomState(0)
    >>> endmembers = rng.rand(3, 20)
    >>> abundances = rng.dirichlet(np.ones(3), size=200)
    >>> abundances[:3] = np.eye(3)  # three pure pixels
    >>> found, indices = vca(abundances @ endmembers, 3, random_state=0)
    >>> sorted(indices.tolist())
    [0, 1, 2]
    """
    xp = get_namespace(X)
    X = xp.asarray(X)
    _check_vca_input(X, n_endmembers, xp)
    rng = check_random_state(random_state)
    dtype = float_dtype_of(X, xp)
    X = xp.astype(X, dtype)
    n_pixels, n_bands = X.shape
    k = int(n_endmembers)
    # Subspace estimates in float64: the band covariance is small (bands x
    # bands) and float32 loses the weak directions. The picks do not depend
    # on the scale of X: work at magnitude one (an exact power-of-two
    # division), where the covariance of data at 1e300 does not overflow.
    data = xp.astype(X, xp.float64)
    data = data / power_of_two_scale_of(data, xp=xp)
    mean = xp.mean(data, axis=0)
    centered = data - mean
    covariance = centered.T @ centered / n_pixels
    eigenvalues, eigenvectors = xp.linalg.eigh(covariance)
    basis_centered = eigenvectors[:, n_bands - max(k - 1, 1):]  # top k-1 directions
    projected_centered = centered @ basis_centered
    power_signal = float(xp.sum(data * data)) / (n_pixels * n_bands)
    power_projected = float(
        xp.sum(projected_centered * projected_centered)
    ) / n_pixels + float(xp.sum(mean * mean))
    noise = max(power_signal - power_projected, 0.0) * n_bands / max(n_bands - k, 1)
    signal = max(power_projected - k / n_bands * noise, 0.0)
    snr = 10.0 * math.log10(signal / noise) if noise > 0 and signal > 0 else math.inf
    threshold = 15.0 + 10.0 * math.log10(k) if snr_threshold is None else snr_threshold

    if snr > threshold:
        # Projective projection: the k-dimensional subspace through the origin,
        # then every pixel scaled onto the hyperplane <u, y> = 1.
        correlation = data.T @ data / n_pixels
        _, vectors = xp.linalg.eigh(correlation)
        basis = vectors[:, n_bands - k:]
        reduced = data @ basis  # (n_pixels, k)
        direction = xp.mean(reduced, axis=0)
        denominators = reduced @ direction
        tiny = 1e-12 * float(xp.max(xp.abs(denominators)))
        denominators = xp.where(xp.abs(denominators) < tiny, tiny, denominators)
        points = reduced / denominators[:, None]
    else:
        # Low SNR: PCA on k-1 directions plus a constant coordinate large
        # enough that the simplex stays on one side of the origin.
        reduced = projected_centered[:, : k - 1] if k > 1 else projected_centered[:, :0]
        norms = xp.sqrt(xp.sum(reduced * reduced, axis=1))
        lift = float(xp.max(norms)) if n_pixels else 0.0
        points = _append_constant(xp, reduced, max(lift, 1.0))

    # Host copy of the (k x k) vertex matrix; the (n_pixels x k) projections
    # stay in xp.
    vertices = np.zeros((k, k))
    vertices[-1, 0] = 1.0
    indices = np.zeros(k, dtype=np.intp)
    for i in range(k):
        direction = rng.standard_normal(k)
        # Remove the span of the vertices found so far.
        found = vertices[:, :i] if i else vertices[:, :1]
        projector = found @ np.linalg.pinv(found)
        direction = direction - projector @ direction
        norm = np.linalg.norm(direction)
        if norm == 0:
            direction = rng.standard_normal(k)
            norm = np.linalg.norm(direction)
        direction = to_namespace(direction / norm, xp, like=points)
        scores = xp.abs(points @ direction)
        if i:
            # Never pick the same pixel twice (duplicates make pinv rank-deficient).
            taken = to_namespace(indices[:i], xp, like=points)
            scores = _mask_taken(xp, scores, taken)
        index = int(xp.argmax(scores))
        indices[i] = index
        vertices[:, i] = to_numpy(points[index, :])
    endmembers = xp.take(X, to_namespace(indices, xp, like=X), axis=0)
    return endmembers, indices


def _append_constant(xp, reduced, value):
    column = xp.ones_like(reduced[:, :1]) if reduced.shape[1] else None
    if column is None:
        column = xp.ones(
            (reduced.shape[0], 1), dtype=reduced.dtype, device=device(reduced)
        )
        return column * value
    return xp.concat([reduced, column * value], axis=1)


def _mask_taken(xp, scores, taken):
    positions = xp.arange(scores.shape[0], device=device(scores))
    mask = xp.zeros(scores.shape, dtype=xp.bool, device=device(scores))
    for index in to_numpy(taken).tolist():
        mask = xp.logical_or(mask, positions == index)
    return xp.where(mask, -xp.inf, scores)
