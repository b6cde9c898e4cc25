"""Scalar bodies of the proximal (thresholding) operators, and one CPU loop.

Each registered body maps one coefficient ``x`` to the minimiser of
``0.5 * (u - x)**2 + penalty(u)`` for one penalty; it is compiled for the CPU
and the GPU by :mod:`sparsesolve._backend`. Bodies use only scalar arithmetic
and the :mod:`math` module so that numba can compile them for both targets.

The conventions follow the objective ``0.5 ||x - D c||^2 + lam sum psi(c_i)``
with gradient step ``step``; the public :func:`~sparsesolve.coding.threshold`
converts ``(lam, step)`` into the parameters each body takes.
"""

import math

import numpy as np
from numba import njit, prange

from .._backend import register_elementwise

# (54 ** (1/3)) / 4: the l1/2 threshold of Xu et al. (2012) in units of t^(2/3).
_HALF_THRESHOLD_FACTOR = 54.0 ** (1.0 / 3.0) / 4.0
# cos(phi) of the half-thresholding formula at that threshold.
_HALF_THRESHOLD_COSINE = math.sqrt(0.5)


@register_elementwise("soft_threshold", n_params=1)
def soft_threshold(x, threshold):
    """Proximal map of ``threshold * |u|``: shrink towards zero by ``threshold``."""
    if x > threshold:
        return x - threshold
    if x < -threshold:
        return x + threshold
    return 0.0 * x


@register_elementwise("hard_threshold", n_params=1)
def hard_threshold(x, threshold):
    """Proximal map of ``0.5 * threshold**2 * [u != 0]``: keep ``|x| > threshold``.

    With penalty ``lam * ||u||_0`` and step 1 the threshold is ``sqrt(2 lam)``;
    the caller converts, so this body stays a pure comparison.
    """
    if x > threshold or x < -threshold:
        return x
    return 0.0 * x


@register_elementwise("half_threshold", n_params=1)
def half_threshold(x, t):
    """Half thresholding of Xu et al. (2012): minimiser of ``(u - x)**2 + t |u|**0.5``.

    Xu's objective has no factor 1/2, so the proximal map of
    ``tau * |u|**0.5`` (with the 1/2) is this operator with ``t = 2 tau``.
    Entries with ``|x| <= (54**(1/3) / 4) t**(2/3)`` go to zero; the others
    jump to at least two thirds of that threshold.
    """
    magnitude = abs(x)
    if t <= 0.0:
        return x
    if magnitude == 0.0:
        return 0.0 * x
    # cos(phi) = (t / 8) (|x| / 3)**-1.5 equals 1/sqrt(2) exactly at the
    # threshold |x| = (54**(1/3) / 4) t**(2/3), so comparing it saves a pow
    # (and, below 1/sqrt(2) < 1, arccos never sees an argument above 1).
    third = magnitude / 3.0
    cosine = (t / 8.0) / (third * math.sqrt(third))
    if cosine >= _HALF_THRESHOLD_COSINE:
        return 0.0 * x
    phi = math.acos(cosine)
    return (2.0 / 3.0) * x * (1.0 + math.cos(2.0 * math.pi / 3.0 - (2.0 / 3.0) * phi))


@register_elementwise("cel0_threshold", n_params=3)
def cel0_threshold(x, step, lam, atom_norm):
    """Proximal map of ``step`` times the CEL0 penalty of one atom.

    CEL0 (Soubies et al., 2015) with weight ``lam`` for an atom of norm
    ``a = atom_norm`` is ``lam - (a**2 / 2) (|u| - sqrt(2 lam) / a)**2`` for
    ``|u| <= sqrt(2 lam) / a`` and ``lam`` beyond. For ``step a**2 < 1`` its
    proximal map has a dead zone ``|x| <= sqrt(2 lam) a step``, a linear part
    of slope ``1 / (1 - a**2 step)`` and is the identity from
    ``|x| >= sqrt(2 lam) / a``. For ``step a**2 >= 1`` the penalty is no longer
    weakly convex enough and the map is hard thresholding at
    ``sqrt(2 step lam)``.
    """
    magnitude = abs(x)
    curvature = atom_norm * atom_norm * step
    root = math.sqrt(2.0 * lam)
    if curvature >= 1.0:
        if magnitude > math.sqrt(2.0 * step * lam):
            return x
        return 0.0 * x
    dead_zone = root * atom_norm * step
    if magnitude <= dead_zone:
        return 0.0 * x
    # |x| >= sqrt(2 lam) / a, written without dividing by a (dead atoms a=0
    # have no penalty: the map is then the identity).
    if magnitude * atom_norm >= root:
        return x
    shrunk = (magnitude - dead_zone) / (1.0 - curvature)
    return shrunk if x > 0 else -shrunk


@njit(parallel=True, nogil=True, cache=True)
def _sparse_rows_times_dense(codes, gram, out):
    # One row of codes at a time: only its nonzero entries touch the Gram
    # matrix, so the cost is (nonzeros per row) * n_atoms, not n_atoms**2.
    n_atoms = gram.shape[1]
    for row in prange(codes.shape[0]):
        for k in range(n_atoms):
            out[row, k] = 0.0
        for j in range(codes.shape[1]):
            value = codes[row, j]
            if value != 0.0:
                for k in range(n_atoms):
                    out[row, k] += value * gram[j, k]


def sparse_rows_times_dense(codes, gram):
    """Return ``codes @ gram`` for a NumPy ``codes`` with mostly zero rows.

    The CPU twin of the dense product used on other devices (a GEMM is what
    a GPU does best); the two agree to rounding (tested).

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_atoms)
        C-contiguous codes.
    gram : ndarray of shape (n_atoms, n_columns)
        Dense matrix of the same dtype.

    Returns
    -------
    ndarray of shape (n_samples, n_columns)
    """
    codes = np.ascontiguousarray(codes)
    gram = np.ascontiguousarray(gram, dtype=codes.dtype)
    out = np.empty((codes.shape[0], gram.shape[1]), dtype=codes.dtype)
    _sparse_rows_times_dense(codes, gram, out)
    return out


# --------------------------------------------------------------------------
# Fused CPU coder: the whole proximal-gradient loop of one sample in numba.
# --------------------------------------------------------------------------
# Penalty codes of the fused coder, in the order of PENALTY_CODES.
PENALTY_CODES = {"l1": 0, "l0": 1, "l1/2": 2, "cel0": 3}

_soft_scalar = njit(inline="always", nogil=True, cache=True)(soft_threshold)
_hard_scalar = njit(inline="always", nogil=True, cache=True)(hard_threshold)
_half_scalar = njit(inline="always", nogil=True, cache=True)(half_threshold)
_cel0_scalar = njit(inline="always", nogil=True, cache=True)(cel0_threshold)


@njit(inline="always", nogil=True, cache=True)
def _prox_scalar(code, z, step, alpha, atom_norm):
    # The same scalar bodies the elementwise kernels compile, with the
    # (alpha, step) -> threshold conversions of threshold().
    if code == 0:
        return _soft_scalar(z, alpha * step)
    if code == 1:
        return _hard_scalar(z, math.sqrt(2.0 * step * alpha))
    if code == 2:
        return _half_scalar(z, 2.0 * step * alpha)
    return _cel0_scalar(z, step, alpha, atom_norm)


@njit(nogil=True, cache=True)
def _dead_zones(penalty_code, alpha, step, atom_norms, out):
    # Largest |z| each atom's operator maps to zero, computed with the same
    # expressions as the scalar bodies so the shortcut below changes no
    # result: most entries of a sparse code fall in the dead zone and then
    # skip the operator (and its pow / arccos) entirely.
    for k in range(atom_norms.shape[0]):
        if penalty_code == 0:
            out[k] = alpha * step
        elif penalty_code == 1:
            out[k] = math.sqrt(2.0 * step * alpha)
        elif penalty_code == 2:
            t = 2.0 * step * alpha
            out[k] = _HALF_THRESHOLD_FACTOR * t ** (2.0 / 3.0) if t > 0.0 else -1.0
        else:
            norm = atom_norms[k]
            if norm * norm * step >= 1.0:
                out[k] = math.sqrt(2.0 * step * alpha)
            else:
                out[k] = math.sqrt(2.0 * alpha) * norm * step


# The support-refit shortcut is tried once the signs of the codes have not
# changed for this many iterations (and once per sign pattern).
_STABLE_ITERATIONS = 3
# Newton steps of the l1/2 refit; it starts next to the answer (quadratic
# convergence), so a handful suffice or the pattern was not the right one.
_NEWTON_STEPS = 8


@njit(nogil=True, cache=True)
def _cholesky_solve(matrix, rhs):
    # In-place Cholesky of a small symmetric matrix, then two triangular
    # solves; returns False when the matrix is not positive definite.
    n = matrix.shape[0]
    for j in range(n):
        pivot = matrix[j, j]
        for k in range(j):
            pivot -= matrix[j, k] * matrix[j, k]
        if not pivot > 0.0:
            return False
        pivot = math.sqrt(pivot)
        matrix[j, j] = pivot
        for i in range(j + 1, n):
            value = matrix[i, j]
            for k in range(j):
                value -= matrix[i, k] * matrix[j, k]
            matrix[i, j] = value / pivot
    for i in range(n):
        value = rhs[i]
        for k in range(i):
            value -= matrix[i, k] * rhs[k]
        rhs[i] = value / matrix[i, i]
    for i in range(n - 1, -1, -1):
        value = rhs[i]
        for k in range(i + 1, n):
            value -= matrix[k, i] * rhs[k]
        rhs[i] = value / matrix[i, i]
    return True


@njit(nogil=True, cache=True)
def _support_refit(penalty_code, codes, b, gram, atom_norms, alpha, step, out):
    """Stationary point of the objective on the support and signs of ``codes``.

    With the support S and the signs s fixed, the fixed points of the
    proximal-gradient map solve small systems: ``G_SS c = b_S - alpha s``
    (l1), ``G_SS c = b_S`` (l0, and CEL0 when every entry is past its
    concave zone), ``G_SS c - b_S + alpha s / (2 sqrt|c|) = 0`` (l1/2,
    solved by Newton from ``codes``). Writes the candidate into ``out``
    (zeros off S) and returns False when it leaves the assumed pattern.
    The caller still checks it with one proximal-gradient step.
    """
    n_atoms = codes.shape[0]
    support = np.empty(n_atoms, dtype=np.int64)
    n_support = 0
    for j in range(n_atoms):
        if codes[j] != 0.0:
            support[n_support] = j
            n_support += 1
    if n_support == 0:
        return False
    root = math.sqrt(2.0 * alpha)
    solution = np.empty(n_support, dtype=np.float64)
    matrix = np.empty((n_support, n_support), dtype=np.float64)
    for p in range(n_support):
        solution[p] = codes[support[p]]
    steps = _NEWTON_STEPS if penalty_code == 2 else 1
    for _newton in range(steps):
        rhs = np.empty(n_support, dtype=np.float64)
        for p in range(n_support):
            j = support[p]
            for q in range(n_support):
                matrix[p, q] = gram[j, support[q]]
            sign = 1.0 if codes[j] > 0.0 else -1.0
            if penalty_code == 0:
                rhs[p] = b[j] - alpha * sign
            elif penalty_code == 2:
                # Newton on F(c) = G c - b + alpha s / (2 sqrt|c|).
                magnitude = abs(solution[p])
                residual = -b[j] + 0.5 * alpha * sign / math.sqrt(magnitude)
                for q in range(n_support):
                    residual += gram[j, support[q]] * solution[q]
                rhs[p] = residual
                matrix[p, p] -= 0.25 * alpha / (magnitude * math.sqrt(magnitude))
            else:
                rhs[p] = b[j]
        if not _cholesky_solve(matrix, rhs):
            return False
        if penalty_code != 2:
            for p in range(n_support):
                solution[p] = rhs[p]
            break
        change = 0.0
        size = 0.0
        for p in range(n_support):
            solution[p] -= rhs[p]
            change += rhs[p] * rhs[p]
            size += solution[p] * solution[p]
        if change <= 1e-24 * size:
            break
    for k in range(n_atoms):
        out[k] = 0.0
    for p in range(n_support):
        j = support[p]
        value = solution[p]
        # The candidate must keep the signs it was solved for (and, for
        # CEL0, lie where the penalty is flat).
        if value * codes[j] <= 0.0:
            return False
        if (penalty_code == 3 and atom_norms[j] * atom_norms[j] * step < 1.0
                and abs(value) * atom_norms[j] < root):
            return False
        out[j] = value
    return True


@njit(parallel=True, nogil=True, cache=True)
def _fused_proximal_gradient(
    correlations, gram, atom_norms, codes, n_iter, penalty_code, alpha, step,
    max_iter, tol, accelerate, refit,
):
    n_samples, n_atoms = correlations.shape
    dead_zone = np.empty(n_atoms, dtype=np.float64)
    _dead_zones(penalty_code, alpha, step, atom_norms, dead_zone)
    for sample in prange(n_samples):
        b = correlations[sample]
        current = codes[sample].copy()
        point = current.copy()
        gradient = np.empty(n_atoms, dtype=correlations.dtype)
        support = np.empty(n_atoms, dtype=np.int64)
        signs = np.zeros(n_atoms, dtype=np.int8)
        candidate = np.empty(n_atoms, dtype=np.float64)
        saved_current = np.empty(n_atoms, dtype=correlations.dtype)
        saved_point = np.empty(n_atoms, dtype=correlations.dtype)
        saved_momentum = 1.0
        checking = False  # this iteration starts from a refit candidate
        stable = 0
        momentum = 1.0
        iterations = 0
        for iteration in range(max_iter):
            iterations = iteration + 1
            # gradient = point @ gram - b over the support of point only.
            n_support = 0
            for j in range(n_atoms):
                if point[j] != 0.0:
                    support[n_support] = j
                    n_support += 1
            for k in range(n_atoms):
                gradient[k] = -b[k]
            for position in range(n_support):
                j = support[position]
                value = point[j]
                for k in range(n_atoms):
                    gradient[k] += value * gram[j, k]
            change = 0.0
            size = 0.0
            uphill = 0.0
            pattern_changed = False
            # Reuse gradient to hold the new codes.
            for k in range(n_atoms):
                z = point[k] - step * gradient[k]
                if abs(z) <= dead_zone[k]:
                    new = 0.0
                else:
                    new = _prox_scalar(penalty_code, z, step, alpha, atom_norms[k])
                difference = new - current[k]
                uphill += (point[k] - new) * difference
                change += difference * difference
                size += new * new
                gradient[k] = new
                sign = 1 if new > 0.0 else (-1 if new < 0.0 else 0)
                if sign != signs[k]:
                    pattern_changed = True
                    signs[k] = sign
            if change == 0.0 or change <= tol * tol * size:
                for k in range(n_atoms):
                    current[k] = gradient[k]
                iterations = -iterations  # converged (sign flag)
                break
            if checking:
                # The refit candidate is not a fixed point: forget it and
                # go on from where the iteration was.
                checking = False
                for k in range(n_atoms):
                    current[k] = saved_current[k]
                    point[k] = saved_point[k]
                    signs[k] = 1 if current[k] > 0.0 else (
                        -1 if current[k] < 0.0 else 0)
                momentum = saved_momentum
                continue
            if accelerate:
                if uphill > 0.0:
                    # Adaptive restart: momentum disagrees with the step.
                    beta = 0.0
                    momentum = 1.0
                else:
                    next_momentum = (
                        1.0 + math.sqrt(1.0 + 4.0 * momentum * momentum)
                    ) / 2.0
                    beta = (momentum - 1.0) / next_momentum
                    momentum = next_momentum
                for k in range(n_atoms):
                    new = gradient[k]
                    point[k] = new + beta * (new - current[k])
                    current[k] = new
            else:
                for k in range(n_atoms):
                    current[k] = gradient[k]
                    point[k] = gradient[k]
            stable = 0 if pattern_changed else stable + 1
            # Signs settled: jump to the stationary point they define and
            # let the next step confirm it is a fixed point.
            if refit and stable == _STABLE_ITERATIONS and _support_refit(
                penalty_code, current, b, gram, atom_norms, alpha, step, candidate
            ):
                checking = True
                saved_momentum = momentum
                for k in range(n_atoms):
                    saved_current[k] = current[k]
                    saved_point[k] = point[k]
                    current[k] = candidate[k]
                    point[k] = candidate[k]
                momentum = 1.0
        for k in range(n_atoms):
            codes[sample, k] = current[k]
        n_iter[sample] = iterations


def fused_proximal_gradient(
    correlations, gram, atom_norms, init, penalty, alpha, step, max_iter, tol,
    accelerate, refit=True,
):
    """Run ISTA/FISTA for every row of ``correlations`` in one numba loop.

    The CPU twin of the batched, namespace-generic iteration of
    :func:`sparsesolve.coding._algorithm.encode` (which the GPU uses: one GEMM
    and one elementwise kernel per step); they agree to rounding (tested).
    Samples run in parallel (``prange``), each until its own relative change
    falls below ``tol``; the gradient touches only the nonzero codes.

    Parameters
    ----------
    correlations : ndarray of shape (n_samples, n_atoms)
        ``X @ D.T``.
    gram : ndarray of shape (n_atoms, n_atoms)
        ``D @ D.T``.
    atom_norms : ndarray of shape (n_atoms,)
        Atom norms (used by CEL0 only).
    init : ndarray of shape (n_samples, n_atoms)
        Starting codes.
    penalty : str
        One of ``PENALTY_CODES``.
    alpha, step, tol : float
    max_iter : int
    accelerate : bool
        FISTA with adaptive restart when True, ISTA when False.
    refit : bool, default=True
        Once a sample's signs have not changed for a few iterations, jump to
        the stationary point of the objective on that support and sign
        pattern (a small Cholesky solve, Newton for l1/2) and keep it if one
        proximal-gradient step from it meets ``tol``; otherwise go on from
        where the iteration was. The iteration converges to that same point
        when its pattern is final, so this only ends it sooner.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_atoms)
    iterations : ndarray of shape (n_samples,)
        Iterations run by each sample.
    converged : ndarray of bool, shape (n_samples,)
    """
    dtype = correlations.dtype
    correlations = np.ascontiguousarray(correlations)
    gram = np.ascontiguousarray(gram, dtype=dtype)
    atom_norms = np.ascontiguousarray(atom_norms, dtype=dtype)
    codes = np.array(init, dtype=dtype, order="C", copy=True)
    n_iter = np.zeros(codes.shape[0], dtype=np.int64)
    _fused_proximal_gradient(
        correlations, gram, atom_norms, codes, n_iter, PENALTY_CODES[penalty],
        float(alpha), float(step), int(max_iter), float(tol), bool(accelerate),
        bool(refit),
    )
    return codes, np.abs(n_iter), n_iter < 0
