"""The EM loop of (Kronecker-structured) sparse Bayesian learning.

Written once against an array namespace ``xp``: NumPy arrays run on the CPU,
CuPy arrays on the GPU. Pruning decisions and index bookkeeping involve only
the per-mode vectors (a few dozen numbers) and are made on the host.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._backend import to_namespace, to_numpy
from .._progress import Progress
from ._moves import refine_support
from ._mstep import (
    am_update,
    couple,
    coupling_matrix,
    kron_distance_squared,
    normalise_scale,
    svd_update,
)
from ._operator import mode_product_apply
from ._posterior import (
    dense_log_evidence,
    dense_posterior,
    kron_vector,
    kronecker_log_evidence,
    kronecker_posterior,
)

__all__ = [
    "SBLResult",
    "log_evidence_on_support",
    "posterior_on_support",
    "sparse_bayesian_learning",
]

# Noise variance never drops below this fraction of the mean measurement
# power: at zero the posterior precision 1 / (s2 + p) would be unbounded.
_NOISE_FLOOR = 1e-10


@dataclasses.dataclass
class SBLResult:
    """What :func:`sparse_bayesian_learning` learns.

    ``kept`` holds, per mode, the host indices of the grid points that
    survived pruning; ``gammas`` the prior variances on them (``xp`` arrays).
    """

    kept: list
    gammas: list
    noise_variance: float
    mean: object
    n_iter: int
    converged: bool
    history: list
    n_moves: int = 0
    variance: object = None
    em_kept: list = None
    em_gammas: list = None


def _take_columns(factors, kept, xp):
    return [
        xp.take(factor, to_namespace(index, xp, like=factor), axis=1)
        for factor, index in zip(factors, kept, strict=True)
    ]


def posterior_on_support(factors, kept, gammas, noise_variance, Y, xp, *, dense):
    """Run one E-step on the surviving grid.

    For Kronecker methods ``kept`` holds per-mode column indices and
    ``gammas`` per-mode variances; for classical SBL (``dense=True``) both
    hold one entry: flat indices on the full grid and their variances.
    """
    if dense:
        A = _dense_support_columns(factors, kept[0], xp)
        return dense_posterior(A, gammas[0], noise_variance, Y, xp)
    return kronecker_posterior(
        _take_columns(factors, kept, xp), gammas, noise_variance, Y, xp
    )


def log_evidence_on_support(factors, kept, gammas, noise_variance, Y, xp, *, dense):
    """Log marginal likelihood ``log p(y)`` of each row of ``Y`` (see E-step)."""
    if dense:
        A = _dense_support_columns(factors, kept[0], xp)
        return dense_log_evidence(A, gammas[0], noise_variance, Y, xp)
    return kronecker_log_evidence(
        _take_columns(factors, kept, xp), gammas, noise_variance, Y, xp
    )


def _initial_gammas(sizes, xp, like):
    """Per-mode variances whose Kronecker product is the all-ones vector."""
    gammas = [np.full(size, 1.0 / math.sqrt(size)) for size in sizes[:-1]]
    gammas.append(np.full(sizes[-1], math.sqrt(math.prod(sizes[:-1]))))
    return [to_namespace(g, xp, like=like) for g in gammas]


def _prune(kept, gammas, couplings, threshold, xp):
    """Drop, per mode, the grid points with ``gamma < threshold * max gamma``."""
    new_kept, new_gammas, new_couplings = [], [], []
    for index, gamma, matrix in zip(kept, gammas, couplings, strict=True):
        host = to_numpy(gamma)
        keep = np.flatnonzero(host >= threshold * host.max())
        if keep.size == host.size:
            new_kept.append(index)
            new_gammas.append(gamma)
            new_couplings.append(matrix)
            continue
        new_kept.append(index[keep])
        new_gammas.append(xp.take(gamma, to_namespace(keep, xp, like=gamma), axis=0))
        new_couplings.append(None if matrix is None else matrix[np.ix_(keep, keep)])
    return new_kept, new_gammas, new_couplings


def _restrict(gammas_before, kept_before, kept_after, xp):
    """Old variances restricted to the grid that survived pruning."""
    restricted = []
    for gamma, before, after in zip(gammas_before, kept_before, kept_after,
                                    strict=True):
        positions = np.searchsorted(before, after)
        restricted.append(xp.take(gamma, to_namespace(positions, xp, like=gamma)))
    return restricted


def _relative_change(old_gammas, old_kept, new_gammas, new_kept, xp):
    """``||gamma_new - gamma_old|| / ||gamma_old||`` on the full zero-filled grid.

    Both vectors are Kronecker products, so the norms come from per-mode inner
    products; the entries pruned this iteration count with their old values.
    """
    old_on_kept = _restrict(old_gammas, old_kept, new_kept, xp)
    change_kept, _ = kron_distance_squared(old_on_kept, new_gammas, xp)
    old_norm = math.prod(float(xp.sum(g * g)) for g in old_gammas)
    old_kept_norm = math.prod(float(xp.sum(g * g)) for g in old_on_kept)
    change = change_kept + max(old_norm - old_kept_norm, 0.0)
    return math.sqrt(change / old_norm) if old_norm > 0 else math.inf


def sparse_bayesian_learning(
    factors,
    Y,
    *,
    method,
    noise_variance,
    max_iter,
    tol,
    prune_threshold,
    couplings,
    verbose,
    xp,
    refine=False,
):
    """Learn Kronecker-structured (or free) prior variances by EM.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
        Dictionary factors in the working dtype.
    Y : array of shape (n_samples, prod(m_i))
        Measurements in the working dtype; all rows share the prior.
    method : {"svd", "am", "classic"}
        M-step: SVD-KroSBL, AM-KroSBL, or unstructured classical SBL (which
        forms the dense dictionary on the surviving columns).
    noise_variance : float or None
        Known noise variance, or ``None`` to learn it.
    max_iter : int
    tol : float
        Stop when the relative change of the full variance vector is below.
    prune_threshold : float
        Relative pruning threshold (per mode; on the full vector for classic).
    couplings : list of (float or None)
        Pattern-coupling strength ``beta`` per mode (``None``: free mode).
    verbose : int
    xp : module
    refine : bool, default=False
        After EM, polish the support of the uncoupled modes by
        marginal-likelihood slab moves (:func:`._moves.refine_support`).
        Ignored for ``"classic"``.

    Returns
    -------
    SBLResult
    """
    sizes = [int(f.shape[1]) for f in factors]
    n_measurements = int(Y.shape[1])
    n_samples = int(Y.shape[0])
    dense = method == "classic"
    power = float(xp.sum(xp.abs(Y) ** 2)) / (n_samples * n_measurements)
    noise_floor = _NOISE_FLOOR * (power if power > 0 else 1.0)
    if noise_variance is None:
        learn_noise = True
        centred = Y - xp.mean(Y, axis=0, keepdims=True) if n_samples > 1 else Y
        # The authors start from 0.1 var(y); centring over samples only when
        # there are several, since a single vector has no sample mean.
        variance = float(xp.sum(xp.abs(centred) ** 2)) / (n_samples * n_measurements)
        sigma2 = max(0.1 * variance, noise_floor)
    else:
        learn_noise = False
        sigma2 = max(float(noise_variance), noise_floor)

    if dense:
        # Classical SBL: one free variance per coefficient of the full grid.
        gammas = [to_namespace(np.ones(math.prod(sizes)), xp, like=Y)]
        kept = [np.arange(math.prod(sizes))]
        mode_couplings = [None]
    else:
        kept = [np.arange(size) for size in sizes]
        gammas = _initial_gammas(sizes, xp, like=Y)
        mode_couplings = [
            None if beta is None else coupling_matrix(size, beta)
            for beta, size in zip(couplings, sizes, strict=True)
        ]
        if any(m is not None for m in mode_couplings):
            gammas = [
                g if m is None else couple(g, m, xp, like=g)
                for g, m in zip(gammas, mode_couplings, strict=True)
            ]

    def e_step(kept, gammas, sigma2):
        return posterior_on_support(factors, kept, gammas, sigma2, Y, xp,
                                    dense=dense)

    history = []
    converged = False
    n_iter = 0
    with Progress(max_iter, verbose, desc=f"KroneckerSBL({method})") as progress:
        for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
            old_kept, old_gammas = kept, gammas
            kept, gammas, mode_couplings = _prune(
                kept, gammas, mode_couplings, prune_threshold, xp
            )
            mean, variance = e_step(kept, gammas, sigma2)
            Lambda = variance + xp.sum(xp.abs(mean) ** 2, axis=0) / n_samples
            prior = kron_vector(gammas, xp)
            if learn_noise:
                residual = Y - _forward(factors, kept, mean, xp, dense)
                misfit = float(xp.sum(xp.abs(residual) ** 2)) / n_samples
                explained = float(xp.sum(1.0 - variance / prior))
                sigma2 = max((misfit + sigma2 * explained) / n_measurements,
                             noise_floor)
            if method == "svd":
                new_gammas = svd_update(Lambda, [len(k) for k in kept], xp)
                if any(m is not None for m in mode_couplings):
                    new_gammas = [
                        g if m is None else couple(g, m, xp, like=g)
                        for g, m in zip(new_gammas, mode_couplings, strict=True)
                    ]
                new_gammas = normalise_scale(new_gammas, xp)
            elif method == "am":
                new_gammas = am_update(Lambda, gammas, xp, couplings=mode_couplings)
            else:
                new_gammas = [xp.maximum(Lambda, float(np.finfo(np.float64).tiny))]
            change = _relative_change(old_gammas, old_kept, new_gammas, kept, xp)
            gammas = new_gammas
            history.append(change)
            progress.update(change=change, noise_variance=sigma2)
            if change < tol:
                converged = True
                break
    if not converged:
        warnings.warn(
            f"KroneckerSBL(method={method!r}) did not converge in {max_iter} "
            f"iterations (last relative change {history[-1]:.3g} > tol={tol:g}); "
            "increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=4,  # the caller of fit, past sklearn's fit wrapper
        )
    # The final estimate is one E-step on the support that survives pruning.
    kept, gammas, mode_couplings = _prune(
        kept, gammas, mode_couplings, prune_threshold, xp
    )
    n_moves = 0
    em_kept, em_gammas = kept, gammas
    free_modes = [mode for mode, matrix in enumerate(mode_couplings)
                  if matrix is None]
    if refine and not dense and free_modes:
        kept, gammas, n_moves = refine_support(
            factors, kept, gammas, sigma2, Y, xp, free_modes=free_modes)
        if all(float(xp.max(g)) > 0 for g in gammas):
            gammas = normalise_scale(gammas, xp)
    mean, variance = e_step(kept, gammas, sigma2)
    return SBLResult(
        kept=kept,
        gammas=gammas,
        noise_variance=sigma2,
        mean=mean,
        n_iter=n_iter,
        converged=converged,
        history=history,
        n_moves=n_moves,
        variance=variance,
        em_kept=em_kept,
        em_gammas=em_gammas,
    )


def _dense_columns(factors, multi_index, xp):
    """Columns ``⊗_i A_i[:, j_i]`` for a list of flat grid points (Khatri-Rao)."""
    result = None
    for factor, index in zip(factors, multi_index, strict=True):
        piece = xp.take(factor, to_namespace(index, xp, like=factor), axis=1)
        if result is None:
            result = piece
            continue
        rows = result.shape[0]
        result = xp.reshape(
            result[:, None, :] * piece[None, :, :], (rows * piece.shape[0], -1)
        )
    return result


def _dense_support_columns(factors, flat, xp):
    """:func:`_dense_columns` at the flat grid indices ``flat`` (dense mode)."""
    sizes = [int(f.shape[1]) for f in factors]
    multi_index = [np.asarray(i) for i in np.unravel_index(flat, sizes)]
    return _dense_columns(factors, multi_index, xp)


def _forward(factors, kept, mean, xp, dense):
    """``A x`` for coefficients ``mean`` on the surviving grid (rows)."""
    if dense:
        A = _dense_support_columns(factors, kept[0], xp)
        return mean @ xp.permute_dims(A, (1, 0))
    return mode_product_apply(_take_columns(factors, kept, xp), mean, xp)
