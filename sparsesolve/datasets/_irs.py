"""IRS-aided MIMO channel estimation as a Kronecker-sparse recovery problem."""

from __future__ import annotations

import functools
import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state

from .._sklearn_compat import Interval, validate_params
from .._validation import check_allocation

__all__ = ["make_irs_channel"]


def _steering(n_antennas, grid_size):
    """Half-wavelength ULA steering vectors on a grid uniform in cosine space.

    Column ``k`` is ``exp(j pi (2k / G - 1) n) / sqrt(d)``, ``n = 0..d-1``.
    """
    grid = 2.0 * np.arange(grid_size) / grid_size - 1.0
    return np.exp(1j * np.pi * np.outer(np.arange(n_antennas), grid)) / math.sqrt(
        n_antennas)


def _gains(rng, size):
    return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) / math.sqrt(2)


@validate_params(
    {
        "snr_db": [Interval(Real, None, None, closed="neither")],
        "n_ms_antennas": [Interval(Integral, 1, None, closed="left")],
        "n_bs_antennas": [Interval(Integral, 1, None, closed="left")],
        "n_irs_elements": [Interval(Integral, 1, None, closed="left")],
        "grid_size": [Interval(Integral, 1, None, closed="left")],
        "n_pilots": [Interval(Integral, 1, None, closed="left")],
        "n_patterns": [Interval(Integral, 1, None, closed="left")],
        "angle_spread": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_irs_channel(
    snr_db,
    *,
    n_ms_antennas=6,
    n_bs_antennas=16,
    n_irs_elements=256,
    grid_size=18,
    n_pilots=3,
    n_patterns=6,
    angle_spread=3,
    random_state=None,
):
    """Generate an uplink IRS-aided MIMO channel-estimation problem.

    The setting of He and Joseph's PC-KroSBL experiment: a mobile station
    (MS) sends ``n_pilots`` QPSK pilot vectors to a base station (BS) through
    an intelligent reflecting surface (IRS) that cycles through
    ``n_patterns`` random +-1 phase patterns. There is one path MS -> IRS and
    one path IRS -> BS; the IRS arrival and the BS arrival are spread over
    ``angle_spread`` neighbouring grid angles with CN(0, 1) gains. All arrays
    are half-wavelength uniform linear arrays and the angular grids are
    uniform in cosine space.

    On these grids the cascaded channel is exactly sparse in the angular
    domain, and the measurements are ``y = (F_irs ⊗ F_ms ⊗ F_bs) x + noise``
    with

    * ``F_irs`` (n_patterns x G): the patterns applied to the IRS steering
      vectors of the cascaded angle (arrival minus departure, which wraps
      onto the same G-point grid);
    * ``F_ms = P^T conj(A_ms)`` (n_pilots x G): the pilots seen through the
      MS steering matrix;
    * ``F_bs = A_bs`` (n_bs_antennas x G): the BS steering matrix.

    The support of ``x`` is the Kronecker product of the three per-mode
    supports (``angle_spread``, 1 and ``angle_spread`` grid points), and its
    values are rank-1: a block-sparse, clustered Kronecker signal, the use
    case of :class:`~sparsesolve.kronecker.KroneckerSBL` with ``coupling``.
    The measurements are computed from the physical channels, not from
    ``x``.

    Parameters
    ----------
    snr_db : float
        Signal-to-noise ratio in dB of the received pilots (all patterns).
    n_ms_antennas, n_bs_antennas : int, default=6, 16
        Antennas at the mobile and the base station.
    n_irs_elements : int, default=256
        Reflecting elements of the IRS.
    grid_size : int, default=18
        Points of each angular grid (``G``); the code has ``G**3`` entries.
    n_pilots : int, default=3
        Pilot vectors per IRS pattern (at most ``n_ms_antennas``).
    n_patterns : int, default=6
        IRS phase patterns.
    angle_spread : int, default=3
        Neighbouring grid angles of the IRS and BS arrivals (at most
        ``grid_size``).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    Y : ndarray of shape (1, n_patterns * n_pilots * n_bs_antennas), complex
        Noisy received pilots, ordered (pattern, pilot, BS antenna) with the
        antenna fastest.
    dictionaries : list of three complex ndarrays
        ``[F_irs, F_ms, F_bs]`` of shapes ``(n_patterns, G)``,
        ``(n_pilots, G)`` and ``(n_bs_antennas, G)``.
    X_true : ndarray of shape (1, G**3), complex
        The angular-domain cascaded channel, C-ordered over (IRS, MS, BS).
    info : :class:`~sklearn.utils.Bunch`
        ``noise_variance`` (float); ``channels``, the true cascaded channels
        ``H_bs diag(phi_t) H_ms`` of shape ``(n_patterns, n_bs_antennas,
        n_ms_antennas)``; ``channels_of``, a function that maps a code of
        length ``G**3`` (an estimate) to its channels of that shape,
        ``(F_irs ⊗ conj(A_ms) ⊗ A_bs) x`` rearranged (``channels_of(X_true)``
        equals ``channels``); ``pilots`` ``(n_ms_antennas, n_pilots)`` and
        ``irs_patterns`` ``(n_irs_elements, n_patterns)``.

    References
    ----------
    Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse
    vector recovery with application to IRS-MIMO channel estimation", IEEE
    Transactions on Signal Processing, 2024 (arXiv:2307.14719), section VI.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.datasets import make_irs_channel
    >>> Y, factors, X, info = make_irs_channel(snr_db=20, random_state=0)
    >>> Y.shape, [F.shape for F in factors], X.shape
    ((1, 288), [(6, 18), (3, 18), (16, 18)], (1, 5832))
    >>> int(np.count_nonzero(X)), info.channels.shape
    (9, (6, 16, 6))
    """
    counts = dict(n_ms_antennas=n_ms_antennas, n_bs_antennas=n_bs_antennas,
                  n_irs_elements=n_irs_elements, grid_size=grid_size,
                  n_pilots=n_pilots, n_patterns=n_patterns,
                  angle_spread=angle_spread)
    for name, value in counts.items():
        if not (isinstance(value, Integral) and value >= 1):
            raise ValueError(f"{name} must be a positive int; got {value!r}.")
    if n_pilots > n_ms_antennas:
        raise ValueError(f"n_pilots must be at most n_ms_antennas={n_ms_antennas}; "
                         f"got {n_pilots!r}.")
    if angle_spread > grid_size:
        raise ValueError(f"angle_spread must be at most grid_size={grid_size}; "
                         f"got {angle_spread!r}.")
    if not (isinstance(snr_db, Real) and np.isfinite(snr_db)):
        raise ValueError(f"snr_db must be a finite number; got {snr_db!r}.")
    # Steering dictionaries (n x G each, complex) and the channel matrices.
    check_allocation(16.0 * (grid_size * (n_ms_antennas + n_bs_antennas
                                          + n_irs_elements)
                             + n_irs_elements * (n_ms_antennas + n_bs_antennas
                                                 + n_patterns)),
                     "n_irs_elements and grid_size",
                     what=f"the dictionaries of a {grid_size}-point grid")
    rng = check_random_state(random_state)
    G = grid_size

    A_ms = _steering(n_ms_antennas, G)
    A_bs = _steering(n_bs_antennas, G)
    A_irs = _steering(n_irs_elements, G)
    qpsk = np.exp(1j * np.pi * (2 * rng.randint(4, size=(n_ms_antennas, n_pilots))
                                + 1) / 4)
    pilots = qpsk / math.sqrt(n_ms_antennas)
    signs = 2.0 * (rng.random_sample((n_irs_elements, n_patterns)) > 0.5) - 1.0
    patterns = signs / math.sqrt(n_irs_elements)

    # Angles: one MS departure and one IRS departure; the IRS and BS arrivals
    # are contiguous runs of `angle_spread` grid points.
    ms_departure = rng.randint(G)
    irs_arrivals = rng.randint(G - angle_spread + 1) + np.arange(angle_spread)
    irs_departure = rng.randint(G)
    bs_arrivals = rng.randint(G - angle_spread + 1) + np.arange(angle_spread)
    irs_gains = _gains(rng, angle_spread)
    bs_gains = _gains(rng, angle_spread)

    # Physical channels MS -> IRS (n_irs x n_ms) and IRS -> BS (n_bs x n_irs).
    scale_ms = math.sqrt(n_ms_antennas * n_irs_elements / angle_spread)
    scale_bs = math.sqrt(n_bs_antennas * n_irs_elements / angle_spread)
    H_ms = scale_ms * np.outer(A_irs[:, irs_arrivals] @ irs_gains,
                               np.conj(A_ms[:, ms_departure]))
    H_bs = scale_bs * np.outer(A_bs[:, bs_arrivals] @ bs_gains,
                               np.conj(A_irs[:, irs_departure]))

    def cascaded(pattern):
        return H_bs @ (pattern[:, None] * H_ms)

    channels = np.empty((n_patterns, n_bs_antennas, n_ms_antennas), complex)
    for t in range(n_patterns):
        # A pattern that nearly cancels the path would leave nothing to
        # estimate; like the authors' simulation, draw it again.
        while np.linalg.norm(cascaded(patterns[:, t])) < 1e-5:
            patterns[:, t] = (2.0 * (rng.random_sample(n_irs_elements) > 0.5)
                              - 1.0) / math.sqrt(n_irs_elements)
        channels[t] = cascaded(patterns[:, t])
    # Received pilots, (pattern, pilot, BS antenna): C_t P.
    clean = np.einsum("tbm,mp->tpb", channels, pilots).reshape(1, -1)
    noise_variance = float(np.mean(np.abs(clean) ** 2) * 10.0 ** (-snr_db / 10.0))
    Y = clean + math.sqrt(noise_variance) * _gains(rng, clean.shape)

    # Angular-domain factors. The IRS sees arrival a and departure d as one
    # cascaded steering vector a_irs(a) * conj(a_irs(d)), whose angle
    # difference falls back on the grid: it equals a_irs(0) * conj(a_irs(k))
    # with k = (d - a) mod G.
    cascade = A_irs[:, :1] * np.conj(A_irs)  # column k: grid point k
    F_irs = patterns.T @ cascade
    F_ms = pilots.T @ np.conj(A_ms)
    X = np.zeros((G, G, G), complex)
    X[np.ix_((irs_departure - irs_arrivals) % G, [ms_departure], bs_arrivals)] = (
        scale_ms * scale_bs * np.outer(irs_gains, bs_gains)[:, None, :])
    channel_factors = [F_irs, np.conj(A_ms), A_bs]

    # A partial of a module function (not a closure): the Bunch pickles.
    channels_of = functools.partial(_channels_of, channel_factors, G)

    return Y, [F_irs, F_ms, A_bs], X.reshape(1, -1), Bunch(
        noise_variance=noise_variance,
        channels=channels,
        channels_of=channels_of,
        pilots=pilots,
        irs_patterns=patterns,
    )


def _channels_of(channel_factors, G, code):
    """Channels of a code.

    ``C_t[b, m] = sum_{k, j, l} F_irs[t, k] conj(A_ms)[m, j] A_bs[b, l] x[k, j, l]``.
    """
    tensor = np.reshape(np.asarray(code), (G, G, G))
    return np.einsum("tk,mj,bl,kjl->tbm", *channel_factors, tensor, optimize=True)
