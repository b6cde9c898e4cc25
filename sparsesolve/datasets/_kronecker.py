"""Synthetic sparse codes with Kronecker-structured support."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_allocation

__all__ = ["make_kronecker_sparse"]


def _normal(rng, size, complex_values):
    """Real N(0, 1) or circular complex CN(0, 1) samples."""
    if complex_values:
        return (rng.standard_normal(size) + 1j * rng.standard_normal(size)) / np.sqrt(2)
    return rng.standard_normal(size)


@validate_params(
    {
        "mode_shapes": [list, tuple],
        "n_nonzero_per_mode": [Interval(Integral, 1, None, closed="left"), list, tuple],
        "snr_db": [Interval(Real, None, None, closed="neither"), None],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "complex": ["boolean"],
        "values": [StrOptions({"rank1", "kronsupp"})],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_kronecker_sparse(
    mode_shapes,
    n_nonzero_per_mode,
    snr_db,
    n_samples=1,
    complex=False,  # noqa: A002 - the public keyword shadows the builtin on purpose
    values="rank1",
    random_state=None,
):
    """Generate ``Y = (A_1 ⊗ ⋯ ⊗ A_I) X + noise`` with Kronecker-sparse ``X``.

    Each factor ``A_i`` has i.i.d. standard normal entries (circular complex
    normal with ``complex=True``). Each mode ``i`` gets a random support of
    ``k_i`` of its ``n_i`` grid points; the support of every code is the
    Kronecker product of these (``prod(k_i)`` nonzeros), shared by all
    samples. The noise is white Gaussian with variance
    ``sigma^2 = mean(|A x|^2) * 10^(-snr_db / 10)``.

    Parameters
    ----------
    mode_shapes : sequence of (m_i, n_i) pairs
        Shape of each factor: ``m_i`` measurements of ``n_i`` grid points.
    n_nonzero_per_mode : int or sequence of int
        Support size ``k_i`` per mode (one int for every mode).
    snr_db : float or None
        Signal-to-noise ratio in dB; ``None`` for noiseless measurements.
    n_samples : int, default=1
        Number of measurement vectors (rows of ``Y``).
    complex : bool, default=False
        Complex factors, codes and noise (circular normal).
    values : {"rank1", "kronsupp"}, default="rank1"
        ``"rank1"``: each code is ``x_1 ⊗ ⋯ ⊗ x_I`` with sparse normal
        ``x_i`` (the generator of the KroSBL paper). ``"kronsupp"``: the same
        Kronecker support with independent normal values (no rank-1
        structure in the values).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    Y : ndarray of shape (n_samples, M)
        Noisy measurements, ``M = prod(m_i)``.
    dictionaries : list of ndarray of shape (m_i, n_i)
        The factors.
    X_true : ndarray of shape (n_samples, N)
        The codes, ``N = prod(n_i)``.

    Examples
    --------
    >>> from sparsesolve.datasets import make_kronecker_sparse
    >>> Y, factors, X = make_kronecker_sparse([(4, 8), (5, 8)], 2, snr_db=20,
    ...                                       random_state=0)
    >>> Y.shape, [A.shape for A in factors], X.shape
    ((1, 20), [(4, 8), (5, 8)], (1, 64))
    >>> int((X != 0).sum())
    4
    """
    shapes = [tuple(shape) for shape in mode_shapes]
    if not shapes or any(
        len(s) != 2 or not all(isinstance(v, Integral) and v >= 1 for v in s)
        for s in shapes
    ):
        raise ValueError(
            "mode_shapes must be a non-empty sequence of (m_i, n_i) pairs of "
            f"positive ints; got {mode_shapes!r}."
        )
    n_modes = len(shapes)
    if isinstance(n_nonzero_per_mode, Integral):
        n_nonzero = [int(n_nonzero_per_mode)] * n_modes
    else:
        n_nonzero = [int(k) for k in n_nonzero_per_mode]
    if len(n_nonzero) != n_modes or any(
        not 1 <= k <= n for k, (_, n) in zip(n_nonzero, shapes, strict=True)
    ):
        raise ValueError(
            f"n_nonzero_per_mode must give, per mode, an int in [1, n_i]; got "
            f"{n_nonzero_per_mode!r} for mode shapes {shapes}."
        )
    if snr_db is not None and not (isinstance(snr_db, Real) and np.isfinite(snr_db)):
        raise ValueError(f"snr_db must be a finite number or None; got {snr_db!r}.")
    if not (isinstance(n_samples, Integral) and n_samples >= 1):
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if values not in ("rank1", "kronsupp"):
        raise ValueError(f"values must be 'rank1' or 'kronsupp'; got {values!r}.")
    n_codes = math.prod(n for _, n in shapes)
    n_measured = math.prod(m for m, _ in shapes)
    check_allocation(16.0 * (sum(m * n for m, n in shapes)
                             + 2 * n_samples * (n_codes + n_measured)),
                     "mode_shapes and n_samples",
                     what=f"{n_samples} samples on a {n_codes}-point grid")
    rng = check_random_state(random_state)

    dictionaries = [_normal(rng, shape, complex) for shape in shapes]
    supports = [
        np.sort(rng.choice(n, size=k, replace=False))
        for (_, n), k in zip(shapes, n_nonzero, strict=True)
    ]
    sizes = [n for _, n in shapes]
    grids = np.meshgrid(*supports, indexing="ij")
    flat_support = np.ravel_multi_index([g.ravel() for g in grids], sizes)
    X_true = np.zeros((n_samples, math.prod(sizes)), dtype=np.complex128 if complex
                      else np.float64)
    for sample in range(n_samples):
        if values == "rank1":
            block = np.ones(1)
            for k in n_nonzero:
                block = np.kron(block, _normal(rng, k, complex))
        else:
            block = _normal(rng, math.prod(n_nonzero), complex)
        X_true[sample, flat_support] = block

    # Mode products: y = (⊗A_i) x without forming the Kronecker product.
    tensor = X_true.reshape((n_samples, *sizes))
    for mode, A in enumerate(dictionaries):
        tensor = np.moveaxis(np.tensordot(A, tensor, axes=([1], [mode + 1])), 0,
                             mode + 1)
    clean = tensor.reshape(n_samples, -1)
    if snr_db is None:
        return clean, dictionaries, X_true
    noise_variance = np.mean(np.abs(clean) ** 2) * 10.0 ** (-snr_db / 10.0)
    noise = np.sqrt(noise_variance) * _normal(rng, clean.shape, complex)
    return clean + noise, dictionaries, X_true
