"""Per-entry variances on a Kronecker candidate set, chosen by the evidence.

The Kronecker prior ``gamma = gamma_1 ⊗ ⋯ ⊗ gamma_I`` can only describe
supports that are Kronecker products. Sources at independent positions (for
instance three far-field sources at unrelated ``(u, v)`` on a rectangular
array) occupy a set of grid points that is not one; the smallest Kronecker
support covering them also holds every cross term ``(u_a, v_b)``. That
support is still the right *candidate set*: it contains the true entries and
is small (``prod |S_i|`` points). This module runs classical SBL with one
variance per entry on those candidates only, so the dictionary it forms has
``M x prod |S_i|`` entries, never ``M x N``, and compares the two priors by
their type-II cost penalised per hyperparameter (the same extended-BIC
weight the slab moves use), which is how the estimator picks the prior with
``prior="auto"``.

The free prior nests the Kronecker one (any ``⊗ gamma_i`` is a vector of
per-entry variances), so the unpenalised evidence alone would always prefer
it; the penalty charges each active entry (free) or slab (Kronecker) the
``log`` of its number of candidates plus ``log`` of the number of
observations, as in the extended BIC of Chen and Chen (Biometrika, 2008).
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import to_namespace, to_numpy
from ._posterior import dense_log_evidence, dense_posterior, kron_vector

__all__ = ["cost_from_log_evidence", "refine_entries"]

# Fixed-point iterations of the per-entry refinement and its stopping rule.
_MAX_ITER = 200
_TOL = 1e-4
# Relative pruning threshold of the per-entry variances.
_PRUNE = 1e-4


def cost_from_log_evidence(total_log_evidence, is_complex):
    """Type-II cost in the units of :mod:`._moves` (``-log`` or ``-2 log``)."""
    return -total_log_evidence if is_complex else -2.0 * total_log_evidence


def entry_penalty(n_measurements, n_samples, n_candidates, is_complex):
    """Extended-BIC weight per active entry (cost units, as ``slab_penalty``)."""
    if is_complex:
        return 0.5 * (math.log(2 * n_measurements * n_samples)
                      + math.log(n_candidates))
    return math.log(n_measurements * n_samples) + math.log(n_candidates)


def refine_entries(columns, gamma, noise_variance, Y, xp, *, learn_noise=False,
                   noise_floor=0.0, tol=_TOL, max_iter=_MAX_ITER):
    """Classical SBL (MacKay fixed point) on a small candidate set.

    Parameters
    ----------
    columns : array of shape (M, C)
        Dictionary columns of the candidates.
    gamma : array of shape (C,)
        Starting variances (the Kronecker prior on the candidates).
    noise_variance : float
        Known noise variance, or the starting value when ``learn_noise``.
    Y : array of shape (n_samples, M)
    xp : module
    learn_noise : bool, default=False
        Re-learn the noise variance by EM alongside the variances: a
        Kronecker prior that cannot describe the support leaves part of the
        signal in its noise estimate, which would hide the entries that the
        free prior can explain.
    noise_floor : float, default=0.0
    tol : float
        Stop when the relative change of the variances is below.
    max_iter : int

    Returns
    -------
    keep : ndarray of int
        Positions (among the candidates) that stay active.
    gamma : array of shape (len(keep),)
        Their variances.
    log_evidence : float
        Total log marginal likelihood of ``Y`` under the refined prior.
    noise_variance : float
        The noise variance used (re-learned with ``learn_noise``).
    """
    n_samples = int(Y.shape[0])
    keep = np.arange(int(columns.shape[1]))
    gamma = xp.asarray(gamma)
    tiny = float(np.finfo(np.float64).tiny)
    for _ in range(max_iter):
        if keep.size == 0:
            # Every entry pruned (measurements that are all noise, or zero):
            # the empty support is the answer.
            break
        A = xp.take(columns, to_namespace(keep, xp, like=columns), axis=1)
        mean, variance = dense_posterior(A, gamma, noise_variance, Y, xp)
        power = xp.sum(xp.abs(mean) ** 2, axis=0) / n_samples
        # MacKay's update gamma = <|mu|^2> / (1 - Sigma_nn / gamma) converges
        # in far fewer iterations than EM (Tipping, JMLR 2001, section 2.2);
        # the denominator is the "well-determinedness" of the entry.
        determined = xp.maximum(1.0 - variance / gamma, 1e-12)
        new_gamma = xp.maximum(power / determined, tiny)
        if learn_noise:
            residual = Y - mean @ xp.permute_dims(A, (1, 0))
            misfit = float(xp.sum(xp.abs(residual) ** 2)) / n_samples
            explained = float(xp.sum(1.0 - variance / gamma))
            noise_variance = max((misfit + noise_variance * explained)
                                 / int(Y.shape[1]), noise_floor)
        change = float(xp.sqrt(xp.sum((new_gamma - gamma) ** 2))
                       / xp.sqrt(xp.sum(gamma ** 2)))
        gamma = new_gamma
        host = to_numpy(gamma)
        alive = np.flatnonzero(host >= _PRUNE * host.max())
        if alive.size < keep.size:
            keep = keep[alive]
            gamma = xp.take(gamma, to_namespace(alive, xp, like=gamma))
            continue
        if change < tol:
            break
    A = xp.take(columns, to_namespace(keep, xp, like=columns), axis=1)
    log_evidence = float(xp.sum(dense_log_evidence(A, gamma, noise_variance, Y, xp)))
    return keep, gamma, log_evidence, noise_variance


def candidate_gammas(gammas, xp):
    """The Kronecker prior on the flat candidate grid ``S_1 x ⋯ x S_I``."""
    return kron_vector(gammas, xp)


def addition_gains(factors, columns, gamma, noise_variance, Y, xp):
    """Best cost decrease of adding each grid entry to a free prior.

    The fast marginal-likelihood add step of Tipping and Faul (AISTATS 2003)
    for multiple measurement vectors: with ``C = s2 I + A_S Gamma_S A_S^H``,
    ``s_n = a_n^H C^-1 a_n`` and ``Q_n = sum_l |a_n^H C^-1 y_l|^2``, giving
    entry ``n`` the variance ``g`` changes the cost by
    ``n_samples log(1 + g s_n) - g Q_n / (1 + g s_n)``, minimised at
    ``g = (Q_n / n_samples - s_n) / s_n^2``. ``C^-1`` is applied by Woodbury
    through the ``k`` active columns and ``a_n^H v`` for all ``n`` by mode
    products with the factors, so the ``M x N`` dictionary is never formed.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
    columns : array of shape (M, k)
        Active columns.
    gamma : array of shape (k,)
    noise_variance : float
    Y : array of shape (n_samples, M)
    xp : module

    Returns
    -------
    gain : ndarray of shape (N,)
        Cost decrease (host; zero where adding does not help).
    best : ndarray of shape (N,)
        The variance that achieves it.
    """
    from ._operator import _hermitian, mode_product_apply

    n_samples = int(Y.shape[0])
    adjoints = [_hermitian(f, xp) for f in factors]
    norms = kron_vector([xp.sum(xp.abs(f) ** 2, axis=0) for f in factors], xp)
    if int(columns.shape[1]) == 0:  # C = s2 I
        s = norms / noise_variance
        q = mode_product_apply(adjoints, Y / noise_variance, xp)
        Q = xp.sum(xp.abs(q) ** 2, axis=0)
        return _gains(to_numpy(s), to_numpy(Q), n_samples)
    columns_h = _hermitian(columns, xp)
    # H = (s2 Gamma^-1 + A_S^H A_S)^-1, k x k.
    inner = columns_h @ columns
    k = int(inner.shape[0])
    from array_api_compat import device

    eye = xp.eye(k, dtype=inner.dtype, device=device(inner))
    inner = inner + eye * (noise_variance / gamma)[None, :]
    inner = 0.5 * (inner + _hermitian(inner, xp))
    H = xp.linalg.inv(inner)
    # B[j, n] = a_n^H a_j: rows are (⊗A)^H applied to each active column.
    B = mode_product_apply(adjoints, xp.permute_dims(columns, (1, 0)), xp)
    B = xp.conj(B) if xp.isdtype(B.dtype, "complex floating") else B  # a_j^H a_n
    # s_n = (||a_n||^2 - b_n^H H b_n) / s2 with b_n = A_S^H a_n = B[:, n].
    quad = xp.real(xp.sum(xp.conj(B) * (H @ B), axis=0))
    s = xp.maximum((norms - quad) / noise_variance, 1e-300)
    # C^-1 y = (y - A_S H A_S^H y) / s2, per row of Y.
    projected = Y @ xp.conj(columns) if xp.isdtype(
        columns.dtype, "complex floating") else Y @ columns  # rows: A_S^H y
    z = (Y - (projected @ xp.permute_dims(H, (1, 0))) @ xp.permute_dims(
        columns, (1, 0))) / noise_variance
    q = mode_product_apply(adjoints, z, xp)
    Q = xp.sum(xp.abs(q) ** 2, axis=0)
    return _gains(to_numpy(s), to_numpy(Q), n_samples)


def _gains(s, Q, n_samples):
    # An atom the others already explain (or a zero atom) has s = 0 up to
    # round-off: it can explain nothing new, its gain is 0 (not 0 / 0).
    excess = np.maximum(Q / n_samples - s, 0.0)
    squared = s ** 2
    best = np.divide(excess, squared, out=np.zeros_like(excess),
                     where=squared > 0)
    gain = -(n_samples * np.log1p(best * s) - best * Q / (1.0 + best * s))
    return np.maximum(gain, 0.0), best
