"""Two-dimensional angle-of-arrival problems on a uniform rectangular array."""

from __future__ import annotations

import functools
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_allocation, check_finite, check_real

__all__ = ["make_ura_doa", "ula_steering"]


@validate_params(
    {"n_elements": [Interval(Integral, 1, None, closed="left")],
     "direction_cosines": ["array-like", Real]},
    prefer_skip_nested_validation=True,
)
def ula_steering(n_elements, direction_cosines):
    """Steering vectors of a half-wavelength uniform linear array.

    ``a(u)[k] = exp(j pi k u)`` for element ``k = 0, ..., n_elements - 1``
    and direction cosine ``u`` in ``[-1, 1)``: unit-modulus entries, so
    ``||a(u)||^2 = n_elements``. The steering is periodic in ``u`` with
    period 2 (a half-wavelength array aliases ``u`` and ``u + 2``), so any
    finite ``u`` is accepted: the off-grid refinement of
    :class:`~sparsesolve.kronecker.KroneckerSBL` steps just past the ends of
    the grid and wraps its estimates back. A uniform rectangular array of
    ``m_1 x m_2`` elements has steering ``kron(a_1(u), a_2(v))``.

    Parameters
    ----------
    n_elements : int
        Number of array elements.
    direction_cosines : array-like of shape (k,)
        Directions ``u`` (scalar input is treated as one direction).

    Returns
    -------
    steering : ndarray of shape (n_elements, k), complex
        One steering vector per column.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.datasets import ula_steering
    >>> ula_steering(4, [0.0, 0.5]).shape
    (4, 2)
    >>> bool(np.allclose(np.abs(ula_steering(4, [0.3])), 1.0))
    True
    """
    if not isinstance(n_elements, Integral) or n_elements < 1:
        raise ValueError(f"n_elements must be a positive integer; got {n_elements!r}.")
    u = np.atleast_1d(np.asarray(direction_cosines))
    check_real(u, "direction_cosines", np, reason="they are direction cosines;")
    u = u.astype(np.float64)
    check_finite(u, "direction_cosines", np)
    check_allocation(16.0 * n_elements * u.size, "n_elements",
                     what=f"{u.size} steering vectors of {n_elements} elements")
    if u.ndim != 1:
        raise ValueError(
            f"direction_cosines must be 1-D; got shape {np.shape(direction_cosines)}.")
    return np.exp(1j * np.pi * np.arange(n_elements)[:, None] * u[None, :])


def _separated(points, min_separation):
    """Whether every pair differs by ``min_separation`` in some coordinate."""
    for i in range(len(points)):
        for j in range(i):
            if np.max(np.abs(points[i] - points[j])) < min_separation:
                return False
    return True


@validate_params(
    {
        "n_sources": [Interval(Integral, 1, None, closed="left")],
        "layout": [StrOptions({"independent", "separable"})],
        "array_shape": [tuple, list],
        "grid_size": [tuple, list],
        "snr_db": [Interval(Real, None, None, closed="neither")],
        "n_snapshots": [Interval(Integral, 1, None, closed="left")],
        "min_separation": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_ura_doa(
    n_sources=3,
    *,
    layout="independent",
    array_shape=(8, 8),
    grid_size=(16, 16),
    snr_db=20.0,
    n_snapshots=10,
    min_separation=2.0,
    random_state=None,
):
    """Generate snapshots of far-field sources on a uniform rectangular array.

    The array has ``m_1 x m_2`` half-wavelength-spaced elements; a source at
    direction cosines ``(u, v)`` has steering ``kron(a_1(u), a_2(v))`` (see
    :func:`ula_steering`), so the grid dictionary is the Kronecker product of
    two ULA dictionaries on the direction-cosine grids
    ``u_g = -1 + 2 g / n_1`` and ``v_g = -1 + 2 g / n_2``. Directions are
    drawn uniformly in ``[-1 + c, 1 - c)`` (``c`` one grid cell, so no source
    wraps around), off the grid, with every pair at least
    ``min_separation`` cells apart in ``u`` or in ``v``. Source signals are
    independent circular complex normal with unit power, the noise is white
    circular complex normal with variance ``10^(-snr_db / 10)`` per element
    (``snr_db`` is the per-element, per-source SNR).

    Parameters
    ----------
    n_sources : int, default=3
        Number of sources. With ``layout="separable"`` it must be a product
        ``k_1 * k_2``; ``n_sources=4`` means the 2 x 2 layout.
    layout : {"independent", "separable"}, default="independent"
        ``"independent"``: each source at its own random ``(u, v)`` (the set
        of grid cells they occupy is not a Kronecker product).
        ``"separable"``: ``k_1`` random ``u`` values times ``k_2`` random
        ``v`` values, every combination a source (a Kronecker support).
    array_shape : tuple of two int, default=(8, 8)
        Elements per array axis ``(m_1, m_2)``.
    grid_size : tuple of two int, default=(16, 16)
        Grid points per axis ``(n_1, n_2)``.
    snr_db : float, default=20.0
    n_snapshots : int, default=10
    min_separation : float, default=2.0
        Minimum pairwise separation in grid cells (the Rayleigh resolution of
        an ``m``-element ULA is ``2 / m`` in direction cosine, two cells of a
        ``2 m``-point grid).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    Y : ndarray of shape (n_snapshots, m_1 * m_2), complex
        Snapshots, one per row (the layout
        :class:`~sparsesolve.kronecker.KroneckerSBL` reads).
    dictionaries : list of two ndarrays of shape (m_i, n_i)
        ULA steering matrices on the two grids.
    info : dict
        ``"directions"`` (n_sources, 2) true ``(u, v)``; ``"grids"`` the two
        grid vectors; ``"signals"`` (n_snapshots, n_sources);
        ``"noise_variance"``; ``"cell"`` the grid spacing per axis;
        ``"steering"`` a list of two callables ``theta -> a_i(theta)``.

    Examples
    --------
    >>> from sparsesolve.datasets import make_ura_doa
    >>> Y, factors, info = make_ura_doa(3, random_state=0)
    >>> Y.shape, info["directions"].shape
    ((10, 64), (3, 2))
    """
    if layout not in ("independent", "separable"):
        raise ValueError(
            f"layout must be 'independent' or 'separable'; got {layout!r}.")
    if not isinstance(n_sources, Integral) or n_sources < 1:
        raise ValueError(f"n_sources must be a positive integer; got {n_sources!r}.")
    if not isinstance(n_snapshots, Integral) or n_snapshots < 1:
        raise ValueError(
            f"n_snapshots must be a positive integer; got {n_snapshots!r}.")
    if not isinstance(snr_db, Real):
        raise TypeError(f"snr_db must be a number; got {snr_db!r}.")
    for name, pair in (("array_shape", array_shape), ("grid_size", grid_size)):
        if len(pair) != 2 or not all(isinstance(v, Integral) and v >= 1
                                     for v in pair):
            raise ValueError(f"{name} must be a pair of positive ints; got {pair!r}.")
    m1, m2 = (int(m) for m in array_shape)
    n1, n2 = (int(n) for n in grid_size)
    # Measurements, noise and steering of every snapshot, and the factors.
    check_allocation(16.0 * (3 * n_snapshots * m1 * m2 + m1 * m2 * n_sources
                             + m1 * n1 + m2 * n2), "array_shape and n_snapshots",
                     what=f"{n_snapshots} snapshots of a {m1} x {m2} array")
    rng = check_random_state(random_state)
    cell = np.array([2.0 / n1, 2.0 / n2])
    grids = [-1.0 + cell[0] * np.arange(n1), -1.0 + cell[1] * np.arange(n2)]
    low, high = -1.0 + cell, 1.0 - cell
    if layout == "separable":
        k1 = int(round(np.sqrt(n_sources)))
        while n_sources % k1:
            k1 -= 1
        k2 = n_sources // k1
        for _ in range(10000):
            u = rng.uniform(low[0], high[0], k1)
            v = rng.uniform(low[1], high[1], k2)
            if (_separated(u[:, None], min_separation * cell[0])
                    and _separated(v[:, None], min_separation * cell[1])):
                break
        else:  # pragma: no cover - only for absurd separations
            raise ValueError(f"n_sources={n_sources} sources at least min_separation="
                             f"{min_separation} apart do not fit on the grid.")
        directions = np.array([(a, b) for a in u for b in v])
    else:
        for _ in range(10000):
            directions = rng.uniform(low, high, size=(n_sources, 2))
            if _separated(directions / cell, min_separation):
                break
        else:  # pragma: no cover
            raise ValueError(f"n_sources={n_sources} sources at least min_separation="
                             f"{min_separation} apart do not fit on the grid.")
    steering = np.stack(
        [np.kron(ula_steering(m1, [a])[:, 0], ula_steering(m2, [b])[:, 0])
         for a, b in directions], axis=1)
    signals = (rng.standard_normal((n_snapshots, n_sources))
               + 1j * rng.standard_normal((n_snapshots, n_sources))) / np.sqrt(2)
    noise_variance = 10.0 ** (-float(snr_db) / 10.0)
    noise = (rng.standard_normal((n_snapshots, m1 * m2))
             + 1j * rng.standard_normal((n_snapshots, m1 * m2))) * np.sqrt(
                 noise_variance / 2)
    Y = signals @ steering.T + noise
    dictionaries = [ula_steering(m1, grids[0]), ula_steering(m2, grids[1])]
    info = {
        "directions": directions,
        "grids": grids,
        "signals": signals,
        "noise_variance": noise_variance,
        "cell": cell,
        # Partials of a module function (not lambdas): the Bunch pickles.
        "steering": [functools.partial(ula_steering, m1),
                     functools.partial(ula_steering, m2)],
    }
    return Y, dictionaries, info
