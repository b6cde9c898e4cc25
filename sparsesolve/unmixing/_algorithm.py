"""Robust sparse unmixing by majorise-minimise multiplicative updates.

Model: ``X ~ A E`` with ``X`` (n_pixels, n_bands), abundances ``A``
(n_pixels, n_endmembers) and endmembers ``E`` (n_endmembers, n_bands). The
objective is

    J(A, E, h) = data(A, E) + (delta^2 / 2) ||A 1 - 1||^2
                 + alpha sum_n h_n sum_k A_nk^p + gamma ||h||^2

with ``data = scale * sum_l sqrt(||x_l - A e_l||^2 + eps_r^2)`` (l_2,1 over
bands, ``x_l`` the l-th band over all pixels) or ``0.5 ||X - A E||_F^2``.
Every step minimises a majoriser of ``J`` at the current point (IRLS for the
square roots, the tangent of the concave ``A^p``, the Lee-Seung diagonal
bound for the quadratics, an exact projection for ``h``), so ``J`` never
increases. The code is written once against the array namespace ``xp``.
"""

from __future__ import annotations

import warnings

from array_api_compat import device
from sklearn.exceptions import ConvergenceWarning

from .._progress import Progress

__all__ = ["band_noise_levels", "project_simplex", "robust_unmixing"]

# Added to denominators of the multiplicative updates (never divide by 0).
_DENOMINATOR_FLOOR = 1e-12
# Abundances are floored here before A**(p - 1), which is infinite at 0.
_POWER_FLOOR = 1e-12


def band_noise_levels(X, xp):
    """Noise standard deviation of each band, from regression on the others.

    Each band is regressed on all other bands over the pixels (the HySime
    noise estimate, Bioucas-Dias and Nascimento 2008); for least squares the
    residual sum of squares of band ``l`` is ``1 / [(X^T X)^-1]_ll``, so one
    small inverse gives all of them. Corrupted bands (water absorption,
    hot or dead detectors) stand out with large residuals.

    Parameters
    ----------
    X : array of shape (n_pixels, n_bands)
    xp : module

    Returns
    -------
    noise : array of shape (n_bands,)
        float64.
    """
    n_pixels, n_bands = X.shape
    data = xp.astype(X, xp.float64)
    gram = data.T @ data
    # A small ridge keeps the inverse finite for collinear bands.
    ridge = 1e-10 * float(xp.sum(xp.linalg.diagonal(gram))) / n_bands + 1e-300
    inverse_diagonal = xp.linalg.diagonal(
        xp.linalg.inv(
            gram + ridge * xp.eye(n_bands, dtype=xp.float64, device=device(X))
        )
    )
    return xp.sqrt(1.0 / (n_pixels * xp.clip(inverse_diagonal, 1e-300, None)))


def project_simplex(values, total, xp):
    """Euclidean projection of a vector onto ``{h >= 0, sum(h) = total}``.

    Sort-based (Held, Wolfe and Crowder 1974): exact, O(n log n).

    Parameters
    ----------
    values : array of shape (n,)
    total : float
        Positive sum of the result.
    xp : module

    Returns
    -------
    array of shape (n,)
    """
    ordered = xp.flip(xp.sort(values))
    cumulative = xp.cumulative_sum(ordered) - total
    ranks = xp.arange(
        1, values.shape[0] + 1, dtype=values.dtype, device=device(values)
    )
    condition = ordered - cumulative / ranks > 0
    n_positive = int(xp.sum(xp.astype(condition, xp.int64)))
    threshold = cumulative[n_positive - 1] / n_positive
    return xp.clip(values - threshold, 0.0, None)


def _band_residual_norms(X_squared, cross, gram, endmembers, xp):
    """``||x_l - A e_l||^2`` for every band without forming the residual.

    ``||x_l||^2 - 2 e_l . (A^T x_l) + e_l^T (A^T A) e_l``, in float64 (the
    subtraction cancels badly in float32), clamped at 0.
    """
    E = xp.astype(endmembers, xp.float64)
    cross64 = xp.astype(cross, xp.float64)
    gram64 = xp.astype(gram, xp.float64)
    values = X_squared - 2.0 * xp.sum(E * cross64, axis=0) + xp.sum(
        E * (gram64 @ E), axis=0
    )
    return xp.clip(values, 0.0, None)


def _sparsity_terms(A, p, xp):
    """Per-pixel costs ``sum_k A_nk^p`` (float64) and tangent slopes ``A^(p-1)``.

    Both come from one power of ``A`` (one square root for ``p = 1/2``); the
    slopes use ``A`` floored at ``_POWER_FLOOR`` because ``A^(p-1)`` is
    infinite at 0.
    """
    nonnegative = xp.clip(A, 0.0, None)
    if p == 0.5:
        root = xp.sqrt(nonnegative)
        slopes = 1.0 / xp.clip(root, _POWER_FLOOR**0.5, None)
        powered = root
    elif p == 1.0:
        powered = nonnegative
        slopes = xp.ones_like(A)
    else:
        powered = nonnegative**p
        slopes = xp.clip(A, _POWER_FLOOR, None) ** (p - 1.0)
    return xp.sum(powered, axis=1, dtype=xp.float64), slopes


def robust_unmixing(
    X,
    abundances,
    endmembers,
    *,
    loss="l21",
    guidance="learned",
    p=0.5,
    alpha=0.02,
    delta=15.0,
    guidance_sharpness=1.0,
    max_iter=1000,
    tol=1e-6,
    verbose=0,
):
    """Run the multiplicative majorise-minimise updates from a starting point.

    Parameters
    ----------
    X : array of shape (n_pixels, n_bands)
        Data (reflectances; small negative values from noise are fine).
    abundances : array of shape (n_pixels, n_endmembers)
        Positive starting abundances (zeros never move under multiplicative
        updates).
    endmembers : array of shape (n_endmembers, n_bands)
        Positive starting endmembers.
    loss : {"l21", "l2"}
    guidance : {"learned", "uniform"} or None
    p : float in (0, 1]
    alpha : float >= 0
    delta : float >= 0
    guidance_sharpness : float > 0
        ``alpha / (2 gamma)``: larger values give a sparser guidance map.
    max_iter : int
    tol : float
        Stop when the relative decrease of the objective falls below it.
    verbose : int

    Returns
    -------
    result : dict
        ``abundances``, ``endmembers``, ``guidance`` (n_pixels,), ``band_weights``
        (n_bands,), ``objective`` (list of floats, one per iteration plus the
        start), ``n_iter``, ``converged``.
    """
    from .._backend import get_namespace

    xp = get_namespace(X)
    A = abundances
    E = endmembers
    n_pixels, n_bands = X.shape
    dtype = X.dtype
    use_sparsity = guidance is not None and alpha > 0
    h = xp.ones_like(X[:, 0])
    gamma = alpha / (2.0 * guidance_sharpness) if guidance_sharpness > 0 else 0.0
    delta_squared = float(delta) ** 2

    X_squared = xp.sum(xp.astype(X, xp.float64) ** 2, axis=0)  # per band
    scale_of_data = float(xp.max(X_squared)) ** 0.5
    # Smooths sqrt near 0: a perfectly fitted (or dead) band would otherwise
    # get an infinite weight.
    eps_r_squared = (1e-6 * scale_of_data + 1e-300) ** 2

    cross = A.T @ X  # (k, n_bands)
    gram = A.T @ A
    squared_norms = _band_residual_norms(X_squared, cross, gram, E, xp)
    if loss == "l21":
        norms = xp.sqrt(squared_norms + eps_r_squared)
        # A fixed constant makes the band weights ~1 at the start, so alpha
        # and delta mean the same for both losses and any image size.
        loss_scale = max(float(_median(norms, xp)), 1e-300)
    else:
        loss_scale = 1.0

    def objective(squared_norms, A, h, costs):
        if loss == "l21":
            data = loss_scale * float(xp.sum(xp.sqrt(squared_norms + eps_r_squared)))
        else:
            data = 0.5 * float(xp.sum(squared_norms))
        row_sums = xp.sum(A, axis=1, dtype=xp.float64)
        value = data + 0.5 * delta_squared * float(xp.sum((row_sums - 1.0) ** 2))
        if use_sparsity:
            h64 = xp.astype(h, xp.float64)
            value += alpha * float(xp.sum(h64 * costs))
            if guidance == "learned":
                value += gamma * float(xp.sum(h64 * h64))
        return value

    costs, slopes = _sparsity_terms(A, p, xp) if use_sparsity else (None, None)
    history = [objective(squared_norms, A, h, costs)]
    converged = False
    n_iter = 0
    with Progress(max_iter, verbose, desc="RobustUnmixing") as progress:
        for n_iter in range(1, max_iter + 1):
            if loss == "l21":
                weights = xp.astype(
                    loss_scale / xp.sqrt(squared_norms + eps_r_squared), dtype
                )
                weighted_E = E * weights
            else:
                weighted_E = E
            # A-step: minimiser of the Lee-Seung majoriser of the weighted
            # least squares + sum-to-one penalty + tangent of the l_p term.
            # Noise can make some data negative: the negative part of the
            # linear term moves to the denominator, which keeps A >= 0 and the
            # Lee-Seung bound valid (it only adds to the bound's diagonal).
            linear = X @ weighted_E.T + delta_squared
            numerator = xp.clip(linear, 0.0, None)
            denominator = A @ (weighted_E @ E.T) + delta_squared * xp.sum(
                A, axis=1, keepdims=True
            ) + xp.clip(-linear, 0.0, None)
            if use_sparsity:
                denominator = denominator + (alpha * p) * (h[:, None] * slopes)
            A = A * numerator / (denominator + _DENOMINATOR_FLOOR)
            # E-step: band weights cancel (the problem separates over bands).
            cross = A.T @ X
            gram = A.T @ A
            E = E * xp.clip(cross, 0.0, None) / (
                gram @ E + xp.clip(-cross, 0.0, None) + _DENOMINATOR_FLOOR
            )
            if use_sparsity:
                costs, slopes = _sparsity_terms(A, p, xp)
            # h-step: exact minimiser over the scaled simplex.
            if use_sparsity and guidance == "learned":
                h = xp.astype(
                    project_simplex(-guidance_sharpness * costs, float(n_pixels), xp),
                    dtype,
                )
            squared_norms = _band_residual_norms(X_squared, cross, gram, E, xp)
            history.append(objective(squared_norms, A, h, costs))
            progress.update(objective=history[-1])
            previous, current = history[-2], history[-1]
            if n_iter >= 10 and abs(previous - current) <= tol * abs(previous):
                converged = True
                break
    if not converged and max_iter > 0:
        warnings.warn(
            f"RobustUnmixing did not converge in max_iter={max_iter} iterations "
            f"(relative objective change above tol={tol}); increase max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if loss == "l21":
        band_weights = loss_scale / xp.sqrt(squared_norms + eps_r_squared)
    else:
        band_weights = xp.ones((n_bands,), dtype=xp.float64, device=device(X))
    return {
        "abundances": A,
        "endmembers": E,
        "guidance": h,
        "band_weights": band_weights,
        "objective": history,
        "n_iter": n_iter,
        "converged": converged,
    }


def _median(values, xp):
    ordered = xp.sort(values)
    n = ordered.shape[0]
    if n % 2:
        return ordered[n // 2]
    return 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
