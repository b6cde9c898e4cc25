"""Robust sparse unmixing by block majorise-minimise steps.

Model: ``X ~ A E`` with ``X`` (n_pixels, n_bands), abundances ``A``
(n_pixels, n_endmembers) on the probability simplex (nonnegative rows that sum
to one) and nonnegative endmembers ``E`` (n_endmembers, n_bands). The
objective is

    J(A, E, h) = data(A, E) + alpha sum_n h_n sum_k (A_nk + eps_p)^p
                 + gamma ||h||^2

with ``data = (n_pixels / 2) sum_l log(||x_l - A e_l||^2 + eps_r^2)`` (``x_l``
the l-th band over all pixels: the Gaussian likelihood with an unknown noise
variance per band, maximised over those variances), or
``c sum_l sqrt(||x_l - A e_l||^2 + eps_r^2)`` (l_2,1 over bands), or
``||X - A E||_F^2 / (2 s^2)``.
``s^2`` is the noise variance of a typical band, estimated once from the
start (median band residual), and ``c = sqrt(n_pixels) / s``: the data
terms then have the same curvature at a typical band whatever the scale of
the data or the size of the image, so ``alpha`` (a per-pixel prior weight)
means the same on every scene.

One iteration: (1) the abundances minimise a majoriser of ``J`` exactly
(IRLS for the logarithms and square roots, the tangent of the concave
``(A + eps_p)^p``): a simplex-constrained quadratic program per pixel,
solved by the FCLS active-set kernel; (2) the endmembers minimise the
band-separable least squares (the IRLS weights cancel band by band) by exact
coordinate steps
(HALS, Cichocki and Phan 2009); (3) ``h`` is the exact projection onto the
scaled simplex. Every step decreases ``J``, so ``J`` never increases. The
exact block steps are what make the iteration fast on nearly collinear
endmembers, where multiplicative updates crawl. The code is written once
against the array namespace ``xp``.
"""

from __future__ import annotations

import warnings

from array_api_compat import device
from sklearn.exceptions import ConvergenceWarning

from .._progress import Progress
from ._fcls import simplex_qp

__all__ = [
    "band_noise_levels",
    "project_simplex",
    "robust_unmixing",
    "unmixing_objective",
]

# Smoothing of the l_p penalty, (a + eps_p)^p: its slope at a = 0 is then
# finite, so an abundance that reaches zero can come back (with the plain
# a^p the tangent majoriser has an infinite slope at 0 and locks it there).
SPARSITY_SMOOTHING = 1e-3
# Coordinate sweeps over the endmembers per iteration: each costs only
# O(k^2 n_bands) (the products with the data are shared), so several sweeps
# make the endmember step nearly exact.
_ENDMEMBER_SWEEPS = 10
# Largest IRLS band weight, relative to a typical band's.
WEIGHT_CAP = 10.0
# No stop before this many iterations: the decrease ratio needs a history.
_MIN_ITER = 10
# Number of recent decrease ratios the stopping rule looks at.
_RATIO_WINDOW = 5


class TailStop:
    """The stopping rule of the alternating minimisation, on its objective.

    Stops when the objective is stationary to rounding, or when the decrease
    still to come, estimated as a geometric tail with the slowest recent
    contraction ratio (a cautious estimate), is at most ``tol`` times the
    decrease achieved since the first step (the first step mostly repairs
    the start: VCA pixels are noisy). Shared by the in-memory and the
    distributed fit so that both stop on the same iteration.

    Parameters
    ----------
    tol : float
        Relative tolerance.
    initial : float
        Objective at the start.
    """

    def __init__(self, tol, initial):
        self.tol = tol
        self.history = [initial]
        self._previous_decrease = None
        self._ratios = []

    def converged(self, value, n_iter):
        """Record the objective after iteration ``n_iter``; True to stop."""
        history = self.history
        history.append(value)
        decrease = history[-2] - history[-1]
        achieved = history[1] - history[-1]
        if decrease <= 1e-13 * abs(history[-1]):
            # Stationary to rounding (or the start was already optimal).
            return True
        if self._previous_decrease is not None:
            self._ratios.append(decrease / self._previous_decrease)
        self._previous_decrease = decrease
        if n_iter >= _MIN_ITER and len(self._ratios) >= _RATIO_WINDOW:
            ratio = max(self._ratios[-_RATIO_WINDOW:])
            if ratio < 1.0:
                remaining = decrease * ratio / (1.0 - ratio)
                return remaining <= self.tol * achieved
        return False


def warn_not_converged(converged, max_iter, tol):
    """The ConvergenceWarning of a fit that ran out of iterations."""
    if not converged and max_iter > 0:
        warnings.warn(
            f"RobustUnmixing did not converge in max_iter={max_iter} iterations "
            f"(expected further decrease above tol={tol} of the decrease so far); "
            "increase max_iter.",
            ConvergenceWarning,
            stacklevel=4,
        )
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
    """Per-pixel costs ``sum_k (A_nk + eps_p)^p`` (float64) and slopes.

    Both come from one power (one square root for ``p = 1/2``); the slopes
    ``(A + eps_p)^(p - 1)`` are the tangent of the concave penalty.
    """
    shifted = xp.clip(A, 0.0, None) + SPARSITY_SMOOTHING
    if p == 0.5:
        powered = xp.sqrt(shifted)
        slopes = 1.0 / powered
    elif p == 1.0:
        powered = shifted
        slopes = xp.ones_like(A)
    else:
        powered = shifted**p
        slopes = powered / shifted
    return xp.sum(powered, axis=1, dtype=xp.float64), slopes


class _Objective:
    """The objective ``J`` of one fit: its constants are fixed at the start.

    Parameters are those of :func:`robust_unmixing`; ``X_squared`` holds the
    squared norm of every band and ``squared_norms_start`` the band residuals
    at the start, from which the noise scale is set once (a constant factor,
    so descent is unaffected).
    """

    def __init__(self, X_squared, squared_norms_start, n_pixels, *, loss,
                 guidance, p, alpha, guidance_sharpness, xp):
        self.xp = xp
        self.loss = loss
        self.guidance = guidance
        self.p = p
        self.alpha = alpha
        self.use_sparsity = guidance is not None and alpha > 0
        self.gamma = alpha / (2.0 * guidance_sharpness)
        scale_of_data = float(xp.max(X_squared)) ** 0.5
        # Noise variance of a typical band (per entry); the floor keeps a
        # noise-free start from giving an infinite scale.
        floor = (1e-6 * scale_of_data + 1e-300) ** 2
        typical = float(_median(squared_norms_start, xp))
        self.noise_variance = max(typical, floor) / n_pixels
        # sqrt(r^2 + eps_r^2) caps the IRLS weights at WEIGHT_CAP times a
        # typical band's: a band that is fitted almost exactly (dead, or
        # saturated to a constant) would otherwise get a huge weight and
        # dictate the abundances through a nearly zero endmember row.
        self.eps_r_squared = max(typical, floor) / WEIGHT_CAP**2
        self.l21_scale = (n_pixels / self.noise_variance) ** 0.5
        self.n_pixels = n_pixels

    def band_weights(self, squared_norms):
        """IRLS weights ``w_l`` of the majoriser ``0.5 sum_l w_l ||r_l||^2``."""
        xp = self.xp
        if self.loss == "log":
            return self.n_pixels / (squared_norms + self.eps_r_squared)
        if self.loss == "l21":
            return self.l21_scale / xp.sqrt(squared_norms + self.eps_r_squared)
        return xp.full(squared_norms.shape, 1.0 / self.noise_variance,
                       dtype=xp.float64, device=device(squared_norms))

    def __call__(self, squared_norms, h, costs):
        xp = self.xp
        if self.loss == "log":
            # Normalised so that a typical band contributes about 0.
            value = 0.5 * self.n_pixels * float(xp.sum(xp.log(
                (squared_norms + self.eps_r_squared)
                / (self.n_pixels * self.noise_variance))))
        elif self.loss == "l21":
            value = self.l21_scale * float(
                xp.sum(xp.sqrt(squared_norms + self.eps_r_squared)))
        else:
            value = 0.5 * float(xp.sum(squared_norms)) / self.noise_variance
        if self.use_sparsity:
            h64 = xp.astype(h, xp.float64)
            value += self.alpha * float(xp.sum(h64 * costs))
            if self.guidance == "learned":
                value += self.gamma * float(xp.sum(h64 * h64))
        return value


def _guidance_step(costs, sharpness, n_pixels, dtype, xp):
    """Exact minimiser over ``h`` of ``alpha h.c + gamma ||h||^2`` on the simplex."""
    return xp.astype(project_simplex(-sharpness * costs, float(n_pixels), xp), dtype)


def _endmember_step(E, gram, cross, xp):
    """Coordinate (HALS) sweeps on ``0.5 ||X - A E||^2`` over ``E >= 0``.

    Each row update is the exact minimiser over that row for every band at
    once, so the band-separable least squares never increases.
    """
    rows = [E[k, :] for k in range(E.shape[0])]
    gram_host = [[float(gram[i, j]) for j in range(E.shape[0])]
                 for i in range(E.shape[0])]
    for _ in range(_ENDMEMBER_SWEEPS):
        for k in range(len(rows)):
            diagonal = gram_host[k][k]
            if diagonal <= 0.0:
                # An endmember no pixel uses: nothing determines it.
                continue
            fitted = gram_host[k][0] * rows[0]
            for j in range(1, len(rows)):
                fitted = fitted + gram_host[k][j] * rows[j]
            rows[k] = xp.clip(rows[k] + (cross[k, :] - fitted) / diagonal, 0.0, None)
    return xp.stack(rows, axis=0)


def unmixing_objective(X, abundances, endmembers, reference_abundances,
                       reference_endmembers, *, loss="log", guidance="learned",
                       p=0.5, alpha=1.0, guidance_sharpness=1.0, guidance_map=None):
    """Objective of :func:`robust_unmixing` at a point, scale set at a reference.

    The noise scale of ``J`` is set from the residual of the reference point
    (the start of a fit). Used to check that a fit ends below its start.

    Returns
    -------
    float
    """
    from .._backend import get_namespace

    xp = get_namespace(X)
    X_squared = xp.sum(xp.astype(X, xp.float64) ** 2, axis=0)
    start = _band_residual_norms(X_squared, reference_abundances.T @ X,
                                 reference_abundances.T @ reference_abundances,
                                 reference_endmembers, xp)
    objective = _Objective(X_squared, start, X.shape[0], loss=loss, guidance=guidance,
                           p=p, alpha=alpha, guidance_sharpness=guidance_sharpness,
                           xp=xp)
    squared = _band_residual_norms(X_squared, abundances.T @ X,
                                   abundances.T @ abundances, endmembers, xp)
    costs = _sparsity_terms(abundances, p, xp)[0] if objective.use_sparsity else None
    h = guidance_map if guidance_map is not None else xp.ones_like(X[:, 0])
    return objective(squared, h, costs)


def robust_unmixing(
    X,
    abundances,
    endmembers,
    *,
    loss="log",
    guidance="learned",
    p=0.5,
    alpha=1.0,
    guidance_sharpness=1.0,
    max_iter=300,
    tol=1e-3,
    verbose=0,
):
    """Run the block majorise-minimise iteration from a starting point.

    Parameters
    ----------
    X : array of shape (n_pixels, n_bands)
        Data (any scale; small negative values from noise are fine).
    abundances : array of shape (n_pixels, n_endmembers)
        Starting abundances (rows on the simplex, for example FCLS).
    endmembers : array of shape (n_endmembers, n_bands)
        Nonnegative starting endmembers.
    loss : {"log", "l21", "l2"}
    guidance : {"learned", "uniform"} or None
    p : float in (0, 1]
    alpha : float >= 0
        Per-pixel weight of the sparsity penalty, in units of one typical
        band's noise-normalised squared error.
    guidance_sharpness : float > 0
        ``alpha / (2 gamma)``: larger values give a sparser guidance map.
    max_iter : int
    tol : float
        Stop when the decrease still expected (the last decrease extrapolated
        geometrically with the observed ratio of successive decreases) falls
        below ``tol`` times the decrease achieved since the start.
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
    h = xp.ones_like(X[:, 0])

    X_squared = xp.sum(xp.astype(X, xp.float64) ** 2, axis=0)  # per band
    cross = A.T @ X  # (k, n_bands)
    gram = A.T @ A
    squared_norms = _band_residual_norms(X_squared, cross, gram, E, xp)
    objective = _Objective(X_squared, squared_norms, n_pixels, loss=loss,
                           guidance=guidance, p=p, alpha=alpha,
                           guidance_sharpness=guidance_sharpness, xp=xp)
    use_sparsity = objective.use_sparsity
    costs, slopes = _sparsity_terms(A, p, xp) if use_sparsity else (None, None)
    if use_sparsity and guidance == "learned":
        h = _guidance_step(costs, guidance_sharpness, n_pixels, dtype, xp)
    stop = TailStop(tol, objective(squared_norms, h, costs))
    converged = False
    n_iter = 0
    with Progress(max_iter, verbose, desc="RobustUnmixing") as progress:
        for n_iter in range(1, max_iter + 1):
            # A-step: exact minimiser of the majoriser (weighted least squares
            # + tangent of the l_p term) on the simplex, pixel by pixel.
            weights = objective.band_weights(squared_norms)
            weighted_E = E * xp.astype(weights, dtype)
            E64 = xp.astype(E, xp.float64)
            weighted_gram = (E64 * weights) @ E64.T
            linear = X @ weighted_E.T
            if use_sparsity:
                linear = linear - (alpha * p) * (h[:, None] * slopes)
            A = simplex_qp(weighted_gram, linear)
            # E-step: the band weights cancel (the problem separates over
            # bands), so it is plain nonnegative least squares.
            cross = A.T @ X
            gram = A.T @ A
            E = _endmember_step(E, gram, cross, xp)
            if use_sparsity:
                costs, slopes = _sparsity_terms(A, p, xp)
            if use_sparsity and guidance == "learned":
                h = _guidance_step(costs, guidance_sharpness, n_pixels, dtype, xp)
            squared_norms = _band_residual_norms(X_squared, cross, gram, E, xp)
            value = objective(squared_norms, h, costs)
            progress.update(objective=value)
            if stop.converged(value, n_iter):
                converged = True
                break
    warn_not_converged(converged, max_iter, tol)
    return {
        "abundances": A,
        "endmembers": E,
        "guidance": h,
        "band_weights": (objective.band_weights(squared_norms)
                         * objective.noise_variance),
        "objective": stop.history,
        "n_iter": n_iter,
        "converged": converged,
    }


def _median(values, xp):
    ordered = xp.sort(values)
    n = ordered.shape[0]
    if n % 2:
        return ordered[n // 2]
    return 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
