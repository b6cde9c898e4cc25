"""Support refinement of Kronecker SBL by marginal-likelihood slab moves.

EM with per-mode pruning has two blind spots that the SBL cost itself can
see. A slab (one grid point of one mode, i.e. the coefficients
``x[..., j, ...]`` along that mode) pruned early can never come back, even
when the data support it; and the iterations can settle in a local optimum
whose support in one mode is wrong and so large that it explains the data
anyway (more active slabs than that mode has independent measurements).

This module works directly on the type-II cost
``L(gamma) = n_samples log|C| + sum_l y_l^H C^-1 y_l`` with
``C = s2 I + (⊗ A_i Gamma_i A_i^H)``: ``-2 log`` evidence for real data and
``-log`` evidence for circular complex data, up to a constant. Changing one
variance ``gamma_i[j]`` by ``delta`` adds ``delta a ⊗ K`` to ``C``, where
``a = A_i[:, j] A_i[:, j]^H`` and ``K`` is the Kronecker product of the other
modes' covariances. In the eigenbasis of ``C`` (the per-mode eigenvectors the
E-step already uses) the update is diagonal, so with

* ``q[j, s] = P[s] sum_r |(U_i^H A_i)[r, j]|^2 d[r, s]`` and
* ``e[j, s] = P[s] sum_l |sum_r conj((U_i^H A_i)[r, j]) d[r, s] t_l[r, s]|^2``

(``d = 1 / (s2 + ⊗p)`` reshaped with mode ``i`` first, ``P`` the product of
the other modes' eigenvalues, ``t_l`` the rotated measurements) the change of
the cost is exactly

``n_samples sum_s log(1 + delta q[j, s]) - delta sum_s e[j, s] / (1 + delta q[j, s])``.

This is the fast marginal-likelihood add / delete / re-estimate analysis of
Tipping and Faul carried from single columns to Kronecker slabs; one pass
scores every slab of a mode in ``O(n_i M)``.

The moves minimise the penalised cost ``L(gamma) + tau * (active slabs)``
with the extended-BIC weight ``tau = log(n_obs) + log(sum n_i)`` (``n_obs``
real observations; halved for complex data, whose cost is ``-log``
evidence): a slab is added only when it explains more than a model-selection
test expects from noise among the ``sum n_i`` candidates, and a slab that
does not pay for itself is deleted. A mode whose active slabs are too many
for its support to be identifiable from its ``m_i`` measurements (``2 |S_i|
> m_i``; a ``k``-sparse representation is unique only when ``k < spark /
2 <= (m_i + 1) / 2``) is rebuilt from an empty support by a forward beam
search over the same moves, and the result is kept only if the penalised
cost drops. Every accepted step lowers the penalised cost, so the refinement
never returns a worse point (by that cost) than it was given.

Everything of size ``M`` stays in the array namespace ``xp``; the per-slab
statistics (``n_i x M / m_i`` numbers) and all decisions are on the host.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from .._backend import to_namespace, to_numpy
from ._operator import _hermitian, mode_product_apply
from ._posterior import kron_vector

__all__ = ["penalised_cost", "refine_support", "slab_gains", "slab_penalty",
           "type2_cost"]

# Smallest decrease of the (penalised) cost worth a move, per measurement
# vector: the cost is a log-likelihood, so this is a negligible 0.01 nat.
_MOVE_TOL = 1e-2
# Candidate variances per slab: a log grid around a moment estimate, refined
# by one parabola in log(gamma).
_GRID = np.logspace(-4.0, 2.0, 13)
# Width of the beam and how many depths without a better support the beam
# search of a rebuilt mode tolerates before it stops.
_BEAM_WIDTH = 4
_BEAM_PATIENCE = 2


def slab_penalty(n_measurements, n_samples, n_slabs, is_complex):
    """Extended-BIC weight ``tau`` per active slab (cost units).

    Parameters
    ----------
    n_measurements, n_samples : int
        ``M`` and the number of measurement vectors.
    n_slabs : int
        ``sum n_i``, the number of candidate slabs.
    is_complex : bool
        Complex data count two real observations per entry and their cost is
        ``-log`` (not ``-2 log``) evidence, hence the factor one half.

    Returns
    -------
    float
    """
    if is_complex:
        return 0.5 * (math.log(2 * n_measurements * n_samples) + math.log(n_slabs))
    return math.log(n_measurements * n_samples) + math.log(n_slabs)


class _State:
    """Per-mode variances (host, full length, zero = inactive) and their eigs."""

    def __init__(self, factors, gammas, noise_variance, Y, xp):
        self.factors = factors
        self.gammas = [np.array(g, dtype=np.float64) for g in gammas]
        self.noise_variance = noise_variance
        self.Y = Y
        self.xp = xp
        self.eigs = [self._eig(i) for i in range(len(factors))]

    def copy(self):
        other = _State.__new__(_State)
        other.factors, other.noise_variance = self.factors, self.noise_variance
        other.Y, other.xp = self.Y, self.xp
        other.gammas = [g.copy() for g in self.gammas]
        other.eigs = list(self.eigs)
        return other

    def _eig(self, mode):
        xp, factor = self.xp, self.factors[mode]
        gamma = to_namespace(self.gammas[mode], xp, like=self.Y)
        covariance = (factor * gamma[None, :]) @ _hermitian(factor, xp)
        covariance = 0.5 * (covariance + _hermitian(covariance, xp))
        values, vectors = xp.linalg.eigh(covariance)
        return xp.maximum(values, 0.0), vectors

    def set(self, mode, index, value):
        self.gammas[mode][index] = value
        self.eigs[mode] = self._eig(mode)

    def clear(self, mode):
        self.gammas[mode][:] = 0.0
        self.eigs[mode] = self._eig(mode)

    def n_active(self):
        return sum(int(np.count_nonzero(g)) for g in self.gammas)

    def spectrum(self):
        """``(rotated Y, 1 / (s2 + ⊗p))``: the cost's diagonal form."""
        xp = self.xp
        rotated = mode_product_apply(
            [_hermitian(vectors, xp) for _, vectors in self.eigs], self.Y, xp)
        precision = 1.0 / (self.noise_variance
                           + kron_vector([values for values, _ in self.eigs], xp))
        return rotated, precision

    def cost(self):
        xp = self.xp
        rotated, precision = self.spectrum()
        n_samples = int(self.Y.shape[0])
        return float(-n_samples * xp.sum(xp.log(precision))
                     + xp.sum(_abs_squared(rotated, xp) * precision[None, :]))

    def statistics(self, mode, rotated, precision):
        """``q`` and ``e`` of every slab of ``mode`` (host arrays, n_i x S)."""
        xp = self.xp
        sizes = [int(f.shape[0]) for f in self.factors]
        n_samples = int(self.Y.shape[0])
        rest = math.prod(sizes) // sizes[mode]
        others = [values for k, (values, _) in enumerate(self.eigs) if k != mode]
        weight = (kron_vector(others, xp) if others
                  else xp.ones(1, dtype=precision.dtype))
        d = xp.reshape(xp.moveaxis(xp.reshape(precision, tuple(sizes)), mode, 0),
                       (sizes[mode], rest))
        t = xp.moveaxis(xp.reshape(rotated, (n_samples, *sizes)), mode + 1, 1)
        t = xp.reshape(t, (n_samples, sizes[mode], rest))
        atoms = _hermitian(self.eigs[mode][1], xp) @ self.factors[mode]  # U^H A
        q = (xp.permute_dims(_abs_squared(atoms, xp), (1, 0)) @ d) * weight[None, :]
        weighted = t * d[None, :, :]
        conj_atoms = xp.conj(atoms) if _is_complex(atoms, xp) else atoms
        # z[j, l, s] = sum_r conj(atoms[r, j]) d[r, s] t_l[r, s]
        z = xp.tensordot(conj_atoms, weighted, axes=([0], [1]))
        e = xp.sum(_abs_squared(z, xp), axis=1) * weight[None, :]
        return to_numpy(q).astype(np.float64), to_numpy(e).astype(np.float64)


def _abs_squared(array, xp):
    if _is_complex(array, xp):
        return xp.real(array) ** 2 + xp.imag(array) ** 2
    return array * array


def _is_complex(array, xp):
    return xp.isdtype(array.dtype, "complex floating")


def _cost_change(q, e, n_samples, delta):
    """Exact cost change for variance changes ``delta`` (n_i x G) per slab."""
    one = np.maximum(1.0 + delta[:, :, None] * q[:, None, :], np.finfo(float).tiny)
    return (n_samples * np.sum(np.log(one), axis=2)
            - delta * np.sum(e[:, None, :] / one, axis=2))


def _best_values(q, e, n_samples, gamma, penalty, rows=None):
    """Best new variance of every slab and the penalised cost decrease.

    Candidates are ``0`` (delete / stay out), the current value, and a log
    grid around the moment estimate ``sum(e / L - q) / sum(q^2)`` (the exact
    optimum when the slab has one eigen-direction), refined by a parabola in
    ``log(gamma)`` through the best grid point and its neighbours. ``rows``
    restricts the search to some slabs (the others get a gain of ``-inf``).
    """
    if rows is not None:
        value, gain = np.zeros(gamma.size), np.full(gamma.size, -np.inf)
        if rows.size:
            value[rows], gain[rows] = _best_values(q[rows], e[rows], n_samples,
                                                   gamma[rows], penalty)
        return value, gain
    n = gamma.size
    rows = np.arange(n)
    moment = np.sum(e / n_samples - q, axis=1) / np.maximum(
        np.sum(q * q, axis=1), np.finfo(float).tiny)
    centre = np.where(moment > 0, moment, np.maximum(gamma, np.finfo(float).tiny))
    candidates = np.concatenate(
        [np.zeros((n, 1)), np.maximum(gamma, np.finfo(float).tiny)[:, None],
         centre[:, None] * _GRID[None, :]], axis=1)
    active = gamma > 0

    def penalised(values):
        change = _cost_change(q, e, n_samples, values - gamma[:, None])
        return change + penalty * ((values > 0).astype(float) - active[:, None])

    scores = penalised(candidates)
    best = np.argmin(scores, axis=1)
    value, score = candidates[rows, best], scores[rows, best]
    # Parabola through the grid neighbours (grid points start at column 2).
    first, last = 3, candidates.shape[1] - 2
    inner = (best >= first) & (best <= last)
    k = np.clip(best, first, last)
    x0, x1, x2 = (np.log(candidates[rows, k + o]) for o in (-1, 0, 1))
    f0, f1, f2 = (scores[rows, k + o] for o in (-1, 0, 1))
    numerator = (x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)
    denominator = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = x1 - 0.5 * numerator / denominator
    usable = inner & np.isfinite(vertex)
    trial = np.exp(np.clip(np.where(usable, vertex, x1), x0, x2))
    trial_score = penalised(trial[:, None])[:, 0]
    better = usable & (trial_score < score)
    value = np.where(better, trial, value)
    score = np.where(better, trial_score, score)
    return value, -score


def _greedy_moves(state, penalty, modes, *, fixed_support=False, max_moves):
    """Apply the best single-slab move while it lowers the penalised cost."""
    n_samples = int(state.Y.shape[0])
    tol = _MOVE_TOL * n_samples
    n_moves = 0
    current = penalised_cost(state, penalty)
    while n_moves < max_moves:
        rotated, precision = state.spectrum()
        choice = None
        for mode in modes:
            q, e = state.statistics(mode, rotated, precision)
            gamma = state.gammas[mode]
            # With a fixed support only the active slabs are re-estimated.
            rows = np.flatnonzero(gamma > 0) if fixed_support else None
            values, gains = _best_values(q, e, n_samples, gamma, penalty, rows)
            if fixed_support:
                gains = np.where(values > 0, gains, -np.inf)
            j = int(np.argmax(gains))
            if gains[j] > tol and (choice is None or gains[j] > choice[0]):
                choice = (gains[j], mode, j, values[j])
        if choice is None:
            break
        _, mode, j, value = choice
        previous = state.gammas[mode][j]
        state.set(mode, j, value)
        # The predicted change is exact in exact arithmetic; checking the
        # cost itself keeps every accepted move a true decrease even where
        # 1 + delta q cancels (a delete at very high SNR).
        updated = penalised_cost(state, penalty)
        if not updated < current - 0.5 * tol:
            state.set(mode, j, previous)
            break
        current = updated
        n_moves += 1
    return n_moves


def penalised_cost(state, penalty):
    """Type-II cost plus ``penalty`` per active slab."""
    return state.cost() + penalty * state.n_active()


def _rebuild(state, mode, penalty, max_moves):
    """Forward beam search over the support of ``mode``, other modes fixed."""
    n_samples = int(state.Y.shape[0])
    start = state.copy()
    start.clear(mode)
    beam = [(penalised_cost(start, penalty), start)]
    best, seen, stale = beam[0], set(), 0
    active = []
    for _ in range(int(state.factors[mode].shape[0])):
        if not beam or stale >= _BEAM_PATIENCE:
            break
        children = []
        for score, parent in beam:
            rotated, precision = parent.spectrum()
            q, e = parent.statistics(mode, rotated, precision)
            values, gains = _best_values(q, e, n_samples, parent.gammas[mode],
                                         penalty)
            active = np.flatnonzero(parent.gammas[mode] > 0).tolist()
            for j in np.flatnonzero((parent.gammas[mode] == 0) & (values > 0)):
                key = frozenset([*active, int(j)])
                if key not in seen:
                    seen.add(key)
                    children.append((score - gains[j], parent, int(j), values[j]))
        children.sort(key=lambda child: child[0])
        beam = []
        for _, parent, j, value in children[:_BEAM_WIDTH]:
            child = parent.copy()
            child.set(mode, j, value)
            # Re-balance the variances already in before scoring the support
            # (a few re-estimates: the ranking needs no tight convergence).
            _greedy_moves(child, penalty, [mode], fixed_support=True,
                          max_moves=min(max_moves, 2 * len(active) + 2))
            beam.append((penalised_cost(child, penalty), child))
        stale += 1
        for score, child in beam:
            if score < best[0]:
                best, stale = (score, child), 0
    return best[1]


def type2_cost(factors, gammas, noise_variance, Y, xp):
    """SBL type-II cost ``n log|C| + sum_l y_l^H C^-1 y_l`` of a Kronecker prior.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
    gammas : list of arrays of shape (n_i,)
        Per-mode variances (zeros allowed).
    noise_variance : float
    Y : array of shape (n_samples, prod(m_i))
    xp : module

    Returns
    -------
    float
    """
    host = [to_numpy(g) for g in gammas]
    return _State(factors, host, noise_variance, Y, xp).cost()


def slab_gains(factors, gammas, noise_variance, Y, xp, mode):
    """Largest type-II cost decrease one slab of ``mode`` can bring, per slab.

    For every slab ``j`` of ``mode`` the best new variance (``0`` included)
    is searched as in the refinement moves, with every other variance held,
    and no model-selection penalty is charged. The result says how much
    evidence the data hold for adding (or re-weighting) each slab: a true
    slab whose gain is below the gain of some false slab cannot be told
    apart from noise by any rule that ranks slabs by evidence.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
    gammas : list of arrays of shape (n_i,)
        Per-mode variances, full length (zero = inactive slab).
    noise_variance : float
    Y : array of shape (n_samples, prod(m_i))
    xp : module
    mode : int

    Returns
    -------
    gains : ndarray of shape (n_mode,)
        Cost decrease (nats for complex data, twice that for real data) of
        each slab's best move; ``0`` when the current value is best.
    """
    host = [np.asarray(to_numpy(g), dtype=np.float64) for g in gammas]
    state = _State(factors, host, noise_variance, Y, xp)
    rotated, precision = state.spectrum()
    q, e = state.statistics(mode, rotated, precision)
    n_samples, gamma = int(Y.shape[0]), state.gammas[mode]
    values, gains = _best_values(q, e, n_samples, gamma, 0.0)
    # The moves only need a good step; a diagnostic needs the optimum, so
    # polish each slab's variance by a bounded scalar search in log(gamma)
    # between the grid neighbours of the moves' choice.
    step = math.log(_GRID[1] / _GRID[0])
    for j in np.flatnonzero(values > 0):

        def change(log_value, j=j):
            delta = np.array([[math.exp(log_value) - gamma[j]]])
            return float(_cost_change(q[j:j + 1], e[j:j + 1], n_samples, delta)[0, 0])

        result = minimize_scalar(change, bounds=(math.log(values[j]) - step,
                                                 math.log(values[j]) + step),
                                 method="bounded", options={"xatol": 1e-6})
        gains[j] = max(gains[j], -result.fun)
    return np.maximum(gains, 0.0)


def refine_support(factors, kept, gammas, noise_variance, Y, xp, *, free_modes):
    """Polish a fitted Kronecker prior by slab moves and mode rebuilds.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
        All columns of every factor (``xp``, working dtype).
    kept : list of int arrays
        Host indices of the active slabs per mode (after EM).
    gammas : list of arrays
        Variances on ``kept`` (``xp``).
    noise_variance : float
    Y : array of shape (n_samples, M)
    xp : module
    free_modes : list of int
        Modes the moves may change (coupled modes keep their variances).

    Returns
    -------
    kept : list of int arrays
    gammas : list of arrays (``xp``, float64)
    n_moves : int
        Accepted moves (0: the EM result was kept as it was).
    """
    sizes = [int(f.shape[1]) for f in factors]
    full = []
    for size, index, gamma in zip(sizes, kept, gammas, strict=True):
        vector = np.zeros(size)
        vector[np.asarray(index)] = to_numpy(gamma)
        full.append(vector)
    state = _State(factors, full, noise_variance, Y, xp)
    is_complex = _is_complex(Y, xp) or _is_complex(factors[0], xp)
    penalty = slab_penalty(int(Y.shape[1]), int(Y.shape[0]), sum(sizes), is_complex)
    max_moves = 20 * sum(sizes)
    n_moves = _greedy_moves(state, penalty, free_modes, max_moves=max_moves)
    best, best_score = state, penalised_cost(state, penalty)
    for mode in free_modes:
        n_measurements = int(factors[mode].shape[0])
        if 2 * int(np.count_nonzero(best.gammas[mode])) < n_measurements + 1:
            continue
        candidate = _rebuild(best, mode, penalty, max_moves)
        _greedy_moves(candidate, penalty, free_modes, max_moves=max_moves)
        score = penalised_cost(candidate, penalty)
        if score < best_score:
            best, best_score = candidate, score
            n_moves += 1
    new_kept, new_gammas = [], []
    for vector in best.gammas:
        index = np.flatnonzero(vector > 0)
        if index.size == 0:
            # Every slab of a mode deleted: the prior is zero, nothing to keep.
            index = np.array([int(np.argmax(vector))])
        new_kept.append(index)
        new_gammas.append(to_namespace(vector[index], xp, like=Y))
    return new_kept, new_gammas, n_moves
