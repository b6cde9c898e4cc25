"""M-steps of Kronecker-structured SBL: fit ``gamma_1 ⊗ ⋯ ⊗ gamma_I`` to ``Lambda``.

After an E-step, classical SBL sets ``gamma = Lambda`` with
``Lambda = diag(Sigma) + |mu|^2``. KroSBL keeps the prior Kronecker-shaped:

* SVD-KroSBL takes the closest Kronecker vector to ``Lambda`` by peeling
  leading singular vectors off its unfoldings, mode after mode.
* AM-KroSBL minimises ``sum(log gamma + Lambda / gamma)`` over one factor at
  a time (a closed form), sweeping over the modes until ``⊗ gamma`` settles.
* The pattern-coupled variant (PC-KroSBL) restricts a factor to
  ``eps + C_beta g`` with ``g >= 0`` and ``C_beta`` tridiagonal, which ties the
  variances of neighbouring grid points (clustered, angle-spread supports).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from .._backend import to_namespace, to_numpy
from ._posterior import kron_vector

__all__ = [
    "am_update",
    "coupling_matrix",
    "couple",
    "kron_distance_squared",
    "normalise_scale",
    "svd_update",
]

# Smallest value a variance may take relative to the largest one of its mode:
# the AM update divides by the other modes' variances.
_RELATIVE_FLOOR = 1e-14
# Offset of a coupled factor, relative to its largest target value (the
# authors' code adds an absolute 1e-5; a relative value keeps the update
# independent of the scale of the data).
_COUPLING_OFFSET = 1e-5


def _floor(gamma, xp):
    ceiling = float(xp.max(gamma))
    floor = max(ceiling * _RELATIVE_FLOOR, float(np.finfo(np.float64).tiny))
    return xp.maximum(gamma, floor)


def svd_update(Lambda, sizes, xp):
    """Closest Kronecker vector to ``Lambda`` by sequential rank-1 peeling.

    Parameters
    ----------
    Lambda : array of shape (prod(sizes),)
        Nonnegative unconstrained M-step solution.
    sizes : sequence of int
        ``n_i`` per mode.
    xp : module

    Returns
    -------
    gammas : list of arrays of shape (n_i,)
    """
    gammas = []
    remainder = Lambda
    for size in sizes[:-1]:
        unfolding = xp.reshape(remainder, (size, -1))
        # The leading left singular vector of the unfolding is the leading
        # eigenvector of its n_i x n_i Gram matrix: cheaper than an SVD.
        gram = unfolding @ xp.permute_dims(unfolding, (1, 0))
        _, vectors = xp.linalg.eigh(gram)
        # Lambda >= 0, so by Perron-Frobenius the leading singular vectors are
        # nonnegative up to one global sign, which the absolute value removes.
        left = xp.abs(vectors[:, -1])
        gammas.append(_floor(left, xp))
        # s * v = unfolding^T u: the scale travels on to the next modes.
        remainder = xp.reshape(xp.permute_dims(unfolding, (1, 0)) @ left, (-1,))
    gammas.append(_floor(remainder, xp))
    return gammas


def kron_distance_squared(first, second, xp):
    """``||⊗first - ⊗second||^2`` from per-mode inner products, in O(sum n_i)."""
    norm_first = norm_second = cross = 1.0
    for a, b in zip(first, second, strict=True):
        norm_first *= float(xp.sum(a * a))
        norm_second *= float(xp.sum(b * b))
        cross *= float(xp.sum(a * b))
    return max(norm_first + norm_second - 2.0 * cross, 0.0), norm_second


def normalise_scale(gammas, xp):
    """Give every factor but the last unit norm; the last carries the scale."""
    if len(gammas) == 1:
        return list(gammas)
    scale = 1.0
    result = []
    for gamma in gammas[:-1]:
        norm = float(xp.sqrt(xp.sum(gamma * gamma)))
        scale *= norm
        result.append(gamma / norm)
    result.append(gammas[-1] * scale)
    return result


def coupling_matrix(size, beta):
    """Tridiagonal ``C_beta = I + beta (super- and sub-diagonal ones)`` (NumPy).

    Examples
    --------
    >>> from sparsesolve.kronecker._mstep import coupling_matrix
    >>> coupling_matrix(3, 0.5)
    array([[1. , 0.5, 0. ],
           [0.5, 1. , 0.5],
           [0. , 0.5, 1. ]])
    """
    matrix = np.eye(size)
    if size > 1:
        off = np.full(size - 1, float(beta))
        matrix += np.diag(off, 1) + np.diag(off, -1)
    return matrix


def couple(target, matrix, xp, like):
    """Project a factor onto ``{eps + C g : g >= 0}`` in the least-squares sense.

    ``matrix`` is the (pruned) coupling matrix on the host; the factors are a
    few dozen long, so the nonnegative least squares runs on the host.
    """
    host_target = to_numpy(target).astype(np.float64)
    weights, _ = nnls(matrix, host_target)
    offset = _COUPLING_OFFSET * max(float(host_target.max()), 0.0)
    coupled = matrix @ weights + max(offset, np.finfo(np.float64).tiny)
    return to_namespace(coupled, xp, like=like)


def am_update(Lambda, gammas, xp, *, couplings=None, tol=1e-6, max_sweeps=50):
    """Alternating minimisation of ``sum(log gamma + Lambda / gamma)``.

    With all factors but ``gamma_i`` fixed the minimiser is
    ``gamma_i[a] = mean over the other indices of Lambda / ⊗_{j != i} gamma_j``.
    Modes are updated in turn with the fresh values (Gauss-Seidel); after each
    sweep the scale is moved to the last factor, and sweeps stop when the
    relative change of ``⊗ gamma`` is below ``tol``.

    Parameters
    ----------
    Lambda : array of shape (prod(n_i),)
    gammas : list of arrays of shape (n_i,)
        Starting factors (the previous EM iterate).
    xp : module
    couplings : list of (ndarray or None), optional
        Coupling matrix per mode (PC-KroSBL) or ``None`` for a free mode.
    tol : float, default=1e-6
    max_sweeps : int, default=50

    Returns
    -------
    gammas : list of arrays of shape (n_i,)
    """
    sizes = [int(g.shape[0]) for g in gammas]
    total = int(np.prod(sizes))
    couplings = couplings or [None] * len(gammas)
    gammas = list(gammas)
    tensor_shape = tuple(sizes)
    for _ in range(max_sweeps):
        previous = list(gammas)
        for mode, size in enumerate(sizes):
            ratio = xp.reshape(Lambda / kron_vector(gammas, xp), tensor_shape)
            others = tuple(axis for axis in range(len(sizes)) if axis != mode)
            summed = xp.sum(ratio, axis=others) if others else ratio
            # Lambda / ⊗_{j!=i} gamma_j = gamma_i * Lambda / ⊗ gamma.
            target = gammas[mode] * summed * (size / total)
            if couplings[mode] is not None:
                target = couple(target, couplings[mode], xp, like=target)
            gammas[mode] = _floor(target, xp)
        gammas = normalise_scale(gammas, xp)
        change, norm = kron_distance_squared(previous, gammas, xp)
        if change <= (tol**2) * norm:
            break
    return gammas
