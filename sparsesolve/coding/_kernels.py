"""Scalar bodies of the proximal (thresholding) operators, and the per-sample coder.

Each registered body maps one coefficient ``x`` to the minimiser of
``0.5 * (u - x)**2 + penalty(u)`` for one penalty; it is compiled for the CPU
and the GPU by :mod:`sparsesolve._backend`. Bodies use only scalar arithmetic
and the :mod:`math` module so that numba can compile them for both targets.

The conventions follow the objective ``0.5 ||x - D c||^2 + lam sum psi(c_i)``
with gradient step ``step``; the public :func:`~sparsesolve.coding.threshold`
converts ``(lam, step)`` into the parameters each body takes.
"""

import math

import array_api_compat
import numpy as np

from .._backend import (
    as_contiguous,
    get_namespace,
    kernel,
    register_elementwise,
    register_row_kernel,
)
from .._small_linalg import (
    cholesky_factor,
    cholesky_solve,
    relative_pivot_floor,
)

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


# --------------------------------------------------------------------------
# The coder of one sample: proximal gradient (FISTA with adaptive restart, or
# ISTA) with a dead-zone shortcut and a support refit. Plain Python row
# bodies, registered as one row kernel of the backend, which compiles them
# for the CPU and for the GPU (one thread per sample), see ``code_rows``.
# --------------------------------------------------------------------------
# Penalty codes of the row kernel.
PENALTY_CODES = {"l1": 0, "l0": 1, "l1/2": 2, "cel0": 3}

# Rows of a sample's workspace in the dtype of the data...
_CURRENT, _POINT, _NEW, _SAVED_CURRENT, _SAVED_POINT, _SIGNS = range(6)
N_WORK_ROWS = 6
# ...and in float64 (the dead zones are compared with what the scalar bodies
# compute in float64; the refit is a small linear solve).
_DEAD_ZONE, _CANDIDATE, _SOLUTION, _RHS = range(4)
N_WIDE_ROWS = 4

# The support refit is tried once the signs of the codes have not changed for
# this many iterations (and once per sign pattern).
STABLE_ITERATIONS = 3
# Newton steps of the l1/2 refit; it starts next to the answer (quadratic
# convergence), so a handful suffice or the pattern was not the right one.
NEWTON_STEPS = 8


def prox_entry(penalty_code, z, step, alpha, atom_norm):
    """Proximal map of one coefficient: the registered scalar bodies above.

    The ``(alpha, step)`` to threshold conversions are those of
    :func:`~sparsesolve.coding.threshold`.
    """
    if penalty_code == 0:
        return soft_threshold(z, alpha * step)
    if penalty_code == 1:
        return hard_threshold(z, math.sqrt(2.0 * step * alpha))
    if penalty_code == 2:
        return half_threshold(z, 2.0 * step * alpha)
    return cel0_threshold(z, step, alpha, atom_norm)


def dead_zone(penalty_code, alpha, step, atom_norm):
    """Largest ``|z|`` that :func:`prox_entry` maps to zero (-1 when none).

    Written with the same expressions as the scalar bodies, so skipping the
    operator for ``|z| <= dead_zone`` changes no result: most entries of a
    sparse code fall there and then skip the operator (and its pow and
    arccos) entirely.
    """
    if penalty_code == 0:
        return alpha * step
    if penalty_code == 1:
        return math.sqrt(2.0 * step * alpha)
    if penalty_code == 2:
        t = 2.0 * step * alpha
        if t > 0.0:
            return _HALF_THRESHOLD_FACTOR * t ** (2.0 / 3.0)
        return -1.0
    if atom_norm * atom_norm * step >= 1.0:
        return math.sqrt(2.0 * step * alpha)
    return math.sqrt(2.0 * alpha) * atom_norm * step


def sign_of(value):
    """-1, 0 or 1 as a float."""
    if value > 0.0:
        return 1.0
    if value < 0.0:
        return -1.0
    return 0.0


def gather_support(codes, support):
    """Write the indices of the nonzero ``codes`` into ``support``; return how many."""
    n_support = 0
    for j in range(codes.shape[0]):
        if codes[j] != 0.0:
            support[n_support] = j
            n_support += 1
    return n_support


def sparse_gradient(point, correlations, gram, support, gradient):
    """``gradient = point @ gram - correlations`` over the nonzeros of ``point``.

    The cost is (nonzeros) x (atoms), not (atoms)**2: the reason a sample's
    iteration gets cheaper as its code gets sparser.
    """
    n_atoms = point.shape[0]
    n_support = gather_support(point, support)
    for k in range(n_atoms):
        gradient[k] = -correlations[k]
    for position in range(n_support):
        j = support[position]
        value = point[j]
        for k in range(n_atoms):
            gradient[k] += value * gram[j, k]


def lasso_duality_gap(point, gradient, correlations, squared_norm, alpha):
    """Duality gap of the lasso ``0.5 ||x - c D||^2 + alpha ||c||_1`` at ``c = point``.

    Needs only the gradient ``c G - b`` (``b = x D^T``) and ``||x||^2``: the
    residual ``r = x - c D`` has ``||r||^2 = ||x||^2 - c.b + c.(c G - b)``,
    ``r.x = ||x||^2 - c.b`` and correlations ``D r = -gradient``. The dual
    point is ``r`` scaled into the feasible set ``||D theta||_inf <= alpha``
    (the gap of scikit-learn's coordinate descent, written for one sample).
    """
    code_dot_b = 0.0
    code_dot_gradient = 0.0
    l1_norm = 0.0
    dual_norm = 0.0
    for k in range(point.shape[0]):
        value = point[k]
        code_dot_b += value * correlations[k]
        code_dot_gradient += value * gradient[k]
        l1_norm += abs(value)
        if abs(gradient[k]) > dual_norm:
            dual_norm = abs(gradient[k])
    residual_dot_x = squared_norm - code_dot_b
    residual_norm2 = residual_dot_x + code_dot_gradient
    if residual_norm2 < 0.0:
        residual_norm2 = 0.0
    scale = 1.0
    if dual_norm > alpha:
        scale = alpha / dual_norm
    return (0.5 * residual_norm2 * (1.0 + scale * scale) + alpha * l1_norm
            - scale * residual_dot_x)


def proximal_step(penalty_code, point, gradient, current, signs, dead_zones,
                  atom_norms, alpha, step):
    """One proximal-gradient step from ``point``; the new codes overwrite ``gradient``.

    Returns ``(change, size, uphill, pattern_changed)``: ``||new - current||^2``,
    ``||new||^2``, ``(point - new) . (new - current)`` (positive when the
    momentum points uphill) and 1.0 when a sign of the code changed (the
    signs in ``signs`` are updated), else 0.0.
    """
    change = 0.0
    size = 0.0
    uphill = 0.0
    pattern_changed = 0.0
    for k in range(point.shape[0]):
        z = point[k] - step * gradient[k]
        if abs(z) <= dead_zones[k]:
            new = 0.0
        else:
            new = prox_entry(penalty_code, z, step, alpha, atom_norms[k])
        difference = new - current[k]
        uphill += (point[k] - new) * difference
        change += difference * difference
        size += new * new
        gradient[k] = new
        sign = sign_of(new)
        if sign != signs[k]:
            pattern_changed = 1.0
            signs[k] = sign
    return change, size, uphill, pattern_changed


def momentum_step(new, current, point, momentum, uphill, accelerate):
    """Move to ``new`` and extrapolate ``point``; return the next momentum.

    FISTA (Beck and Teboulle, 2009) with adaptive restart (O'Donoghue and
    Candes, 2015): the momentum is dropped as soon as it points uphill, which
    keeps the discontinuous l0-type operators from oscillating. Plain ISTA
    when ``accelerate`` is 0.
    """
    beta = 0.0
    if accelerate:
        if uphill > 0.0:
            momentum = 1.0
        else:
            next_momentum = (1.0 + math.sqrt(1.0 + 4.0 * momentum * momentum)) / 2.0
            beta = (momentum - 1.0) / next_momentum
            momentum = next_momentum
    for k in range(new.shape[0]):
        point[k] = new[k] + beta * (new[k] - current[k])
        current[k] = new[k]
    return momentum


def refit_system(penalty_code, codes, correlations, gram, alpha, support,
                 n_support, solution, matrix, rhs):
    """Fill the lower triangle of ``matrix`` and ``rhs`` of one refit (Newton) step.

    ``G_SS c = b_S - alpha s`` for l1, ``G_SS c = b_S`` for l0 and CEL0, and
    for l1/2 the Newton step of ``F(c) = G_SS c - b_S + alpha s / (2 sqrt|c|)``
    at ``c = solution`` (its Jacobian and ``F`` itself).
    """
    for p in range(n_support):
        j = support[p]
        for q in range(p + 1):
            matrix[p, q] = gram[j, support[q]]
        sign = sign_of(codes[j])
        if penalty_code == 0:
            rhs[p] = correlations[j] - alpha * sign
        elif penalty_code == 2:
            magnitude = abs(solution[p])
            residual = -correlations[j] + 0.5 * alpha * sign / math.sqrt(magnitude)
            for q in range(n_support):
                residual += gram[j, support[q]] * solution[q]
            rhs[p] = residual
            matrix[p, p] -= 0.25 * alpha / (magnitude * math.sqrt(magnitude))
        else:
            rhs[p] = correlations[j]


def support_refit(penalty_code, codes, correlations, gram, atom_norms, alpha, step,
                  support, matrix, solution, rhs, out):
    """Stationary point of the objective on the support and signs of ``codes``.

    With the support S and the signs s fixed, the fixed points of the
    proximal-gradient map solve the small systems of :func:`refit_system`
    (by Cholesky; by Newton from ``codes`` for l1/2). Writes the candidate
    into ``out`` (zeros off S) and returns False when there is no support,
    when it is larger than ``matrix`` (a support wider than the signals has
    a singular ``G_SS``), when a system is singular, or when the candidate
    leaves the assumed pattern. The caller still checks it with one
    proximal-gradient step.
    """
    n_support = gather_support(codes, support)
    if n_support == 0 or n_support > matrix.shape[0]:
        return False
    for p in range(n_support):
        solution[p] = codes[support[p]]
    steps = NEWTON_STEPS if penalty_code == 2 else 1
    for _newton in range(steps):
        refit_system(penalty_code, codes, correlations, gram, alpha, support,
                     n_support, solution, matrix, rhs)
        # A floored pivot is a singular (for l1/2: indefinite) system.
        floor = relative_pivot_floor(matrix, n_support)
        if cholesky_factor(matrix, n_support, floor) > 0:
            return False
        cholesky_solve(matrix, rhs, rhs, n_support)
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
    root = math.sqrt(2.0 * alpha)
    for k in range(out.shape[0]):
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


def has_converged(penalty_code, change, size, gap, squared_norm, tol):
    """The stopping rule of one sample.

    l1: duality gap at most ``tol ||x||^2`` (the rule of scikit-learn's
    ``Lasso``). The other (non-convex) penalties have no gap: the relative
    change ``||c_new - c|| <= tol ||c_new||`` (a zero code that stays zero
    has converged).
    """
    if penalty_code == 0:
        return gap <= tol * squared_norm
    return change == 0.0 or change <= tol * tol * size


def _code_sample_workspaces(correlations, gram, atom_norms, squared_norms, codes,
                            n_iter, converged, penalty_code, alpha, step,
                            max_iter, tol, accelerate, refit, max_support):
    n_atoms = correlations.shape[1]
    return [((N_WORK_ROWS, n_atoms), correlations.dtype),
            ((N_WIDE_ROWS, n_atoms), np.float64),
            ((n_atoms,), np.int64),
            ((max_support, max_support), np.float64)]


@register_row_kernel("code_sample", workspace=_code_sample_workspaces,
                     writes=("codes", "n_iter", "converged"))
def code_sample(sample, correlations, gram, atom_norms, squared_norms, codes,
                n_iter, converged, penalty_code, alpha, step, max_iter, tol,
                accelerate, refit, max_support, work, wide, support, matrix):
    """Code one sample: ``codes[sample]`` (its start) is overwritten by its code.

    ``work`` (6 x n_atoms, dtype of the data), ``wide`` (4 x n_atoms,
    float64), ``support`` (n_atoms integers) and ``matrix`` (the largest
    refit system, ``max_support`` x ``max_support`` float64) are this
    sample's workspace. ``n_iter[sample]`` receives the iterations run and
    ``converged[sample]`` 1 when the stopping rule was met within
    ``max_iter``.

    With ``refit``, once the signs have not changed for a few iterations the
    iteration jumps to the stationary point those signs define
    (:func:`support_refit`) and keeps it if one proximal-gradient step from
    it meets the stopping rule; otherwise it goes on from where it was. The
    iteration converges to that same point when its pattern is final, so this
    only ends it sooner.
    """
    b = correlations[sample]
    current = work[_CURRENT]
    point = work[_POINT]
    new = work[_NEW]
    saved_current = work[_SAVED_CURRENT]
    saved_point = work[_SAVED_POINT]
    signs = work[_SIGNS]
    dead_zones = wide[_DEAD_ZONE]
    candidate = wide[_CANDIDATE]
    n_atoms = b.shape[0]
    for k in range(n_atoms):
        current[k] = codes[sample, k]
        point[k] = current[k]
        signs[k] = 0.0
        dead_zones[k] = dead_zone(penalty_code, alpha, step, atom_norms[k])
    squared_norm = squared_norms[sample]
    momentum = 1.0
    saved_momentum = 1.0
    checking = False  # this iteration starts from a refit candidate
    stable = 0
    iterations = 0
    done = False
    gap = 0.0
    for iteration in range(max_iter):
        iterations = iteration + 1
        sparse_gradient(point, b, gram, support, new)
        if penalty_code == 0:
            # The gap of the point the step starts from; the step does not
            # increase the objective (step <= 1/L), so it bounds the new
            # codes' gap too.
            gap = lasso_duality_gap(point, new, b, squared_norm, alpha)
        change, size, uphill, pattern_changed = proximal_step(
            penalty_code, point, new, current, signs, dead_zones, atom_norms,
            alpha, step)
        if has_converged(penalty_code, change, size, gap, squared_norm, tol):
            for k in range(n_atoms):
                current[k] = new[k]
            done = True
            break
        if checking:
            # The refit candidate is not a fixed point: forget it and go on
            # from where the iteration was.
            checking = False
            for k in range(n_atoms):
                current[k] = saved_current[k]
                point[k] = saved_point[k]
                signs[k] = sign_of(current[k])
            momentum = saved_momentum
            continue
        momentum = momentum_step(new, current, point, momentum, uphill, accelerate)
        stable = stable + 1 if pattern_changed == 0.0 else 0
        if refit and stable == STABLE_ITERATIONS and support_refit(
            penalty_code, current, b, gram, atom_norms, alpha, step, support,
            matrix, wide[_SOLUTION], wide[_RHS], candidate,
        ):
            # Signs settled: jump to the stationary point they define and
            # let the next step confirm it is a fixed point.
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
    converged[sample] = 1 if done else 0


def code_rows(correlations, gram, atom_norms, squared_norms, init, penalty, alpha,
              step, max_iter, tol, accelerate, refit, max_support):
    """Run :func:`code_sample` for every row of ``correlations``.

    The backend runs the row kernel where the arrays live (see
    :func:`sparsesolve._backend.kernel`): the CPU driver for NumPy, one GPU
    thread per sample for CuPy, the host for other array API libraries.

    Returns
    -------
    codes : array of shape (n_samples, n_atoms)
    n_iter : array of int64, shape (n_samples,)
    converged : array of int8, shape (n_samples,)
    """
    xp = get_namespace(correlations)
    dtype = correlations.dtype
    arrays = [as_contiguous(a, dtype)
              for a in (correlations, gram, atom_norms, squared_norms)]
    codes = as_contiguous(init, dtype, copy=True)
    device = array_api_compat.device(codes)
    n_iter = xp.zeros(codes.shape[0], dtype=xp.int64, device=device)
    converged = xp.zeros(codes.shape[0], dtype=xp.int8, device=device)
    kernel("code_sample", xp)(
        codes.shape[0], *arrays, codes, n_iter, converged, PENALTY_CODES[penalty],
        float(alpha), float(step), int(max_iter), float(tol),
        int(bool(accelerate)), int(bool(refit)), int(max_support))
    return codes, n_iter, converged
