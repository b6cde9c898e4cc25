"""Off-grid refinement of the sources a grid SBL fit has found.

With a parametric dictionary (a steering vector ``a_i(theta)`` per mode, the
grid columns being ``a_i`` at the grid points), every separate peak of the
learned power on the grid is one source at ``theta_k = (theta_k1, ...,
theta_kI)`` whose atom is ``a_1(theta_k1) ⊗ ⋯ ⊗ a_I(theta_kI)``. A source
off the grid spreads its power over neighbouring grid points and its
estimate is wrong by up to half a cell. Here the directions of all sources
are refined jointly, in continuous parameters, by minimising the
variable-projection residual ``||Y - Y P_A(theta)||^2`` (the deterministic
maximum-likelihood criterion of array processing: the amplitudes are
eliminated in closed form, Golub and Pereyra, SIAM J. Numer. Anal. 1973;
Stoica and Nehorai, IEEE TASSP 1989), each parameter kept within one grid
cell of its peak. At high SNR this is efficient (it attains the
deterministic Cramér-Rao bound); near convergence, ``s2 / 2 (J^T J)^-1``
(``J`` the Jacobian of the real-stacked residual) is the Laplace
approximation of the posterior covariance of the directions under a flat
prior, which gives the per-source standard deviations. A peak whose source
explains less of the data than the Bayesian information criterion charges
for its parameters is dropped (model-order selection, Schwarz, Ann. Statist.
1978).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from ._operator import mode_product_apply

__all__ = ["find_peaks", "refine_directions"]

# Peaks below this fraction of the strongest one are side lobes / leakage.
_PEAK_FLOOR = 1e-2
# Bounded solves from a recentred box when a parameter ends on its bound.
_RECENTRE = 3
# At most this many sources added from the residual after the grid peaks.
_MAX_NEW = 4
# Relative step and cost tolerances of the direction solves. Sources close
# to each other make the Gauss-Newton iteration converge linearly; 1e-6
# moves a direction by about 1e-6 of a grid cell (far below its standard
# deviation) and saves a third of the iterations of 1e-8.
_TOL = 1e-6


def periods(steering, grids):
    """Per mode, the period of a uniform grid that closes on itself, or None.

    A ULA steering vector is periodic in its direction cosine (``a(u + 2) =
    a(u)``); a uniform grid ``g_0, g_0 + h, ..., g_0 + (n - 1) h`` covers a
    full period when ``a(g_0 + n h) = a(g_0)``. Peaks may then straddle the
    two ends of the grid, and estimates are wrapped into the grid's range.
    """
    result = []
    for function, grid in zip(steering, grids, strict=True):
        steps = np.diff(grid)
        if grid.size < 3 or not np.allclose(steps, steps[0]):
            result.append(None)
            continue
        span = steps[0] * grid.size
        ends = np.asarray(function(np.array([grid[0], grid[0] + span])))
        periodic = np.allclose(ends[:, 0], ends[:, 1], rtol=1e-9, atol=1e-9)
        result.append(float(span) if periodic else None)
    return result


def find_peaks(power, sizes, periodic=None):
    """Multi-indices of the local maxima of ``power`` on the grid.

    Parameters
    ----------
    power : ndarray of shape (prod(sizes),)
        Learned power per grid point (zero off the support).
    sizes : list of int
    periodic : list of bool, optional
        Modes whose grid wraps around (neighbours across the ends).

    Returns
    -------
    ndarray of shape (n_peaks, I), strongest first
    """
    grid = np.asarray(power, dtype=np.float64).reshape(sizes)
    if not np.any(grid > 0):
        return np.zeros((0, len(sizes)), dtype=np.intp)
    periodic = periodic or [False] * len(sizes)
    # Neighbours along the axes only: two sources one diagonal cell apart
    # (allowed at the Rayleigh separation) both stay peaks; spurious peaks
    # this admits are removed by the order selection after refinement.
    is_peak = grid > _PEAK_FLOOR * grid.max()
    for axis, wraps in enumerate(periodic):
        for shift in (1, -1):
            neighbour = np.roll(grid, shift, axis=axis)
            if not wraps:
                edge = [slice(None)] * grid.ndim
                edge[axis] = 0 if shift == 1 else -1
                neighbour[tuple(edge)] = 0.0
            is_peak &= grid >= neighbour
    flat = np.flatnonzero(is_peak.ravel())
    flat = flat[np.argsort(-grid.ravel()[flat], kind="stable")]
    return np.stack(np.unravel_index(flat, sizes), axis=1)


def _khatri_rao(pieces):
    """Column-wise Kronecker product of ``(m_i, K)`` arrays (mode 1 slowest)."""
    result = pieces[0]
    for piece in pieces[1:]:
        rows = result.shape[0]
        result = (result[:, None, :] * piece[None, :, :]).reshape(
            rows * piece.shape[0], -1)
    return result


def _atoms(steering, theta):
    """Columns ``⊗_i a_i(theta[k, i])`` for the sources ``theta`` (K, I)."""
    return _khatri_rao([np.asarray(function(theta[:, mode]))
                        for mode, function in enumerate(steering)])


def _residual(theta_flat, steering, Y, n_sources, n_modes):
    theta = theta_flat.reshape(n_sources, n_modes)
    A = _atoms(steering, theta)
    # Rows of Y are snapshots: Y^T = A S^T + noise; project Y^T onto span(A).
    amplitudes, *_ = np.linalg.lstsq(A, Y.T, rcond=None)
    residual = (Y.T - A @ amplitudes).ravel()
    if np.iscomplexobj(residual):
        return np.concatenate([residual.real, residual.imag])
    return residual


def _jacobian(theta_flat, steering, Y, n_sources, n_modes):
    """Kaufman's variable-projection Jacobian of :func:`_residual`.

    ``d r / d theta_ki ~ -P_perp (d a_k / d theta_ki) s_k^T`` (Kaufman, BIT
    15, 1975: the Golub-Pereyra term that moves the projector is dropped;
    on the array benchmark's problems the full Jacobian needed as many
    iterations or more). The derivative of each mode's atoms is a central
    difference of its callable, evaluated for all sources at once (a
    steering callable maps each parameter to its own column), so one
    projection serves every parameter.
    """
    theta = theta_flat.reshape(n_sources, n_modes)
    per_mode = [np.asarray(function(theta[:, mode]))
                for mode, function in enumerate(steering)]
    derivatives = []
    for mode, function in enumerate(steering):
        step = 1e-6 * np.maximum(1.0, np.abs(theta[:, mode]))
        derivatives.append(
            (np.asarray(function(theta[:, mode] + step))
             - np.asarray(function(theta[:, mode] - step))) / (2.0 * step))
    A = _khatri_rao(per_mode)
    # Column k * n_modes + i: the atom of source k differentiated in mode i.
    D = np.stack([_khatri_rao(per_mode[:mode] + [derivatives[mode]]
                              + per_mode[mode + 1:])
                  for mode in range(n_modes)], axis=2).reshape(A.shape[0], -1)
    pseudo = np.linalg.pinv(A)
    amplitudes = pseudo @ Y.T  # (K, n)
    projected = D - A @ (pseudo @ D)  # P_perp dA
    source = np.repeat(np.arange(n_sources), n_modes)
    # -outer(P_perp da_ki, s_k) raveled like the residual (measurement-major).
    jacobian = -(projected[:, None, :] * amplitudes[source].T[None, :, :]).reshape(
        -1, projected.shape[1])
    if np.iscomplexobj(jacobian):
        return np.concatenate([jacobian.real, jacobian.imag])
    return jacobian


def _duplicates(theta, steps, wrap=None):
    """Sources within half a grid step (every mode) of a stronger one.

    On a periodic mode distances are taken modulo the period (a ULA source
    at ``u`` and one at ``u - 2`` are the same).
    """
    periods_ = np.array([np.inf if p is None else p
                         for p in (wrap or [None] * theta.shape[1])])

    def distance(a, b):
        delta = a - b
        finite = np.isfinite(periods_)
        delta[finite] = (delta[finite] + 0.5 * periods_[finite]) % periods_[
            finite] - 0.5 * periods_[finite]
        return np.abs(delta)

    return [k for k in range(theta.shape[0]) if any(
        np.all(distance(theta[k], theta[j]) < 0.5 * steps) for j in range(k))]


def _residual_matrix(theta_flat, steering, Y, n_sources, n_modes):
    """Rows: snapshots minus their projection on the sources' atoms."""
    A = _atoms(steering, theta_flat.reshape(n_sources, n_modes))
    amplitudes, *_ = np.linalg.lstsq(A, Y.T, rcond=None)
    return (Y.T - A @ amplitudes).T


def refine_directions(steering, grids, peaks, Y, noise_variance, wrap=None):
    """Jointly refine the directions of the sources at ``peaks``.

    Parameters
    ----------
    steering : list of callables
        ``a_i(theta) -> (m_i, len(theta))`` per mode.
    grids : list of ndarray of shape (n_i,)
        Grid parameters per mode.
    peaks : ndarray of shape (K, I)
        Grid multi-indices of the sources (strongest first).
    Y : ndarray of shape (n_samples, M)
    noise_variance : float
    wrap : list of (float or None), optional
        Period per mode (see :func:`periods`): estimates are wrapped into
        the grid's range.

    Returns
    -------
    theta : ndarray of shape (K, I)
        Refined directions.
    std : ndarray of shape (K, I)
        Laplace-approximation standard deviations.
    amplitudes : ndarray of shape (n_samples, K)
        Least-squares source amplitudes per snapshot at ``theta``.
    """
    theta, lower, upper, solution = _fit_directions(steering, grids, peaks, Y)
    # Model order: drop the weakest source while the data pay less for it than
    # a BIC charge for its parameters (its I directions and a complex
    # amplitude per snapshot): a leakage peak of an off-grid source, or a
    # side lobe, explains almost nothing once the real sources sit at their
    # continuous directions.
    n_samples, n_measurements = Y.shape
    scale = 1.0 if np.iscomplexobj(Y) else 0.5  # -log likelihood per |r|^2 / s2
    n_obs = n_measurements * n_samples * (2 if np.iscomplexobj(Y) else 1)
    per_source = (peaks.shape[1] + n_samples * (2 if np.iscomplexobj(Y) else 1))
    penalty = 0.5 * per_source * np.log(n_obs)
    keep = np.arange(theta.shape[0])
    # Two peaks of one source (its power split over neighbouring cells)
    # converge to the same place: keep the stronger (earlier) one.
    steps = np.array([np.abs(np.diff(g)).min() if g.size > 1 else np.inf
                      for g in grids])
    duplicate = _duplicates(theta, steps, wrap)
    if duplicate:
        keep = np.delete(keep, duplicate)
        theta, lower, upper, solution = _fit_directions(
            steering, grids, peaks[keep], Y, start=theta[keep])
    def noise_of(cost, n_sources):
        # The deterministic-ML noise estimate of the larger model, never
        # below the SBL value: an SBL prior that keeps leakage entries
        # underestimates the noise and would let spurious sources pass.
        dof = n_samples * max(n_measurements - n_sources, 1)
        return max(noise_variance, cost / dof)

    while keep.size > 1:
        base = np.sum(solution.fun ** 2)
        sigma2 = noise_of(base, keep.size)
        gains = np.array([
            scale * (np.sum(_residual(np.delete(theta, k, axis=0).ravel(), steering, Y,
                                      keep.size - 1, theta.shape[1]) ** 2) - base)
            / sigma2 for k in range(keep.size)])
        weakest = int(np.argmin(gains))
        if gains[weakest] >= penalty:
            break
        keep = np.delete(keep, weakest)
        theta, lower, upper, solution = _fit_directions(
            steering, grids, peaks[keep], Y, start=np.delete(theta, weakest, axis=0))
    # Sources the grid peaks missed (two sources near the Rayleigh limit can
    # share one peak): start a new source at the grid cell where the
    # residual has most power and keep it if it pays the same BIC charge.
    import array_api_compat.numpy as xp_np

    adjoints = [np.asarray(function(grid)).conj().T
                for function, grid in zip(steering, grids, strict=True)]
    sizes = [int(g.size) for g in grids]
    norms = np.ones(1)
    for adjoint in adjoints:
        norms = np.outer(norms, np.sum(np.abs(adjoint) ** 2, axis=1)).ravel()
    for _ in range(_MAX_NEW):
        base = np.sum(solution.fun ** 2)
        residual = _residual_matrix(solution.x, steering, Y, keep.size,
                                    theta.shape[1])
        power = np.sum(np.abs(mode_product_apply(adjoints, residual, xp_np)) ** 2,
                       axis=0)
        best = int(np.argmax(power))
        # The grid atom alone, other sources fixed, explains power / ||a||^2;
        # joint off-grid refinement gains at most a few times that (the
        # power lost by a source half a cell off the grid), so a candidate
        # far below the charge is not worth a solve.
        if scale * power[best] / norms[best] / noise_of(base, keep.size + 1) < (
                0.25 * penalty):
            break
        cell = np.array(np.unravel_index(best, sizes))
        trial_peaks = np.vstack([peaks[keep], cell[None, :]])
        start = np.vstack([theta, [g[c] for g, c in zip(grids, cell, strict=True)]])
        trial = _fit_directions(steering, grids, trial_peaks, Y, start=start)
        # Two atoms converging on one source (huge, cancelling amplitudes) fit
        # a little noise, not a new source.
        if _duplicates(trial[0], steps, wrap):
            break
        after = np.sum(trial[3].fun ** 2)
        gain = scale * (base - after) / noise_of(after, keep.size + 1)
        if gain < penalty:
            break
        peaks = trial_peaks
        keep = np.arange(peaks.shape[0])
        theta, lower, upper, solution = trial
    # A later solve can still bring two atoms onto one source.
    for _ in range(theta.shape[0]):
        duplicate = _duplicates(theta, steps, wrap)
        if not duplicate:
            break
        keep = np.delete(np.arange(theta.shape[0]), duplicate)
        peaks = peaks[keep]
        theta, lower, upper, solution = _fit_directions(
            steering, grids, peaks, Y, start=theta[keep])
    n_sources, n_modes = theta.shape
    for mode, period in enumerate(wrap or [None] * n_modes):
        if period is not None:
            origin = grids[mode][0] - 0.5 * (grids[mode][1] - grids[mode][0])
            theta[:, mode] = origin + np.mod(theta[:, mode] - origin, period)
    jacobian = solution.jac
    scale = noise_variance / 2.0 if np.iscomplexobj(Y) else noise_variance
    information = jacobian.T @ jacobian
    try:
        covariance = scale * np.linalg.pinv(information)
        std = np.sqrt(np.maximum(np.diag(covariance), 0.0)).reshape(
            n_sources, n_modes)
    except np.linalg.LinAlgError:  # pragma: no cover - pinv rarely fails
        std = np.full_like(theta, np.inf)
    A = _atoms(steering, theta)
    amplitudes = np.linalg.lstsq(A, Y.T, rcond=None)[0].T
    return theta, std, amplitudes


def _fit_directions(steering, grids, peaks, Y, start=None):
    """Variable-projection least squares from the grid peaks (bounded)."""
    n_sources, n_modes = peaks.shape
    centre = np.empty((n_sources, n_modes))
    lower, upper = np.empty_like(centre), np.empty_like(centre)
    for mode, grid in enumerate(grids):
        index = peaks[:, mode]
        centre[:, mode] = grid[index]
        step = np.abs(np.diff(grid)).min() if grid.size > 1 else 1.0
        lower[:, mode] = grid[index] - step
        upper[:, mode] = grid[index] + step
    start = centre if start is None else np.clip(start, lower, upper)
    args = (steering, Y, n_sources, n_modes)
    for _ in range(_RECENTRE):
        solution = least_squares(
            _residual, start.ravel(), jac=_jacobian, args=args,
            bounds=(lower.ravel(), upper.ravel()), method="trf", x_scale="jac",
            xtol=_TOL, ftol=_TOL, max_nfev=50 * start.size,
        )
        theta = solution.x.reshape(n_sources, n_modes)
        # A parameter stopped by its bound: the peak cell was a neighbour of
        # the source's (leakage split across cells); recentre and go on.
        width = upper - lower
        at_bound = (np.abs(theta - lower) < 1e-6 * width) | (
            np.abs(theta - upper) < 1e-6 * width)
        if not at_bound.any():
            break
        lower, upper, start = theta - 0.5 * width, theta + 0.5 * width, theta
    return theta, lower, upper, solution
