"""Batched proximal-gradient sparse coding, written once against ``xp``.

Each row ``x`` of ``X`` is coded by minimising

    0.5 ||x - c D||^2 + alpha sum_i psi(c_i)

over the row vector ``c``, where the rows of ``D`` are the atoms (the
scikit-learn convention) and ``psi`` is one of the penalties of
:func:`~sparsesolve.coding.threshold`. The iteration is ISTA, or FISTA with
a per-sample adaptive restart (momentum is dropped for a sample as soon as it
points uphill, which keeps the non-convex penalties from oscillating).

Everything is computed on the Gram matrix ``G = D D^T`` and the correlations
``B = X D^T``: the gradient of a batch of codes is ``C G - B``. Samples whose
codes stop moving are taken out of the working set (per-sample early
stopping), and on the CPU the product ``C G`` touches only the nonzero
entries of ``C``, so an iteration costs (active atoms) x (atoms) per sample
instead of (atoms)^2.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from .._backend import is_numpy_namespace
from ._kernels import fused_proximal_gradient, sparse_rows_times_dense
from ._thresholding import apply_prox

__all__ = [
    "continuation_alphas", "dictionary_lipschitz", "encode", "encode_batched",
    "encode_continuation", "gram_product", "l1_start_alpha", "objective",
    "penalty_value",
]

# Above this fraction of nonzero codes a dense BLAS product beats the
# sparse-row loop (measured on 2 cores at 512 atoms: break-even near 15-25%).
_SPARSE_PRODUCT_MAX_DENSITY = 0.15

# lambda-continuation of the non-convex coders (the default start of
# LqSparseCoder): the weights 8 alpha, 4 alpha, 2 alpha, alpha, each stage
# started from the codes of the previous one. Halving is the usual
# continuation step; the first stage's codes are much sparser than the final
# ones, so the extra stages cost little (measured on whitened 16x16 patches:
# no more gradient work than the zero start in all, about 1.2x its time for
# CEL0). The intermediate stages only supply a start, so they stop at a
# loose tolerance.
CONTINUATION_RATIO = 2.0
CONTINUATION_STAGES = 4
CONTINUATION_TOL = 1e-2

# Samples are taken out of the working set once this fraction of it has
# converged: compacting on every single convergence would copy the working
# set each iteration.
_COMPACT_FRACTION = 0.05


def dictionary_lipschitz(dictionary, xp):
    """Return ``||D||_2**2``, the Lipschitz constant of the coding gradient.

    Computed exactly from the eigenvalues of the smaller of ``D D^T`` and
    ``D^T D`` (a few milliseconds for a 512 x 256 dictionary).

    Parameters
    ----------
    dictionary : array of shape (n_atoms, n_features)
        Atoms as rows.
    xp : module
        Namespace of ``dictionary``.

    Returns
    -------
    float
    """
    if dictionary.shape[0] <= dictionary.shape[1]:
        small_gram = dictionary @ dictionary.T
    else:
        small_gram = dictionary.T @ dictionary
    eigenvalues = xp.linalg.eigvalsh(small_gram)
    return float(xp.max(eigenvalues))


def gram_product(codes, gram, xp):
    """Return ``codes @ gram``, skipping zero codes on the CPU when that pays.

    Parameters
    ----------
    codes : array of shape (n_samples, n_atoms)
    gram : array of shape (n_atoms, n_atoms)
    xp : module

    Returns
    -------
    array of shape (n_samples, n_atoms)
    """
    if is_numpy_namespace(xp) and codes.shape[0] > 0:
        density = float(xp.count_nonzero(codes)) / (codes.shape[0] * codes.shape[1])
        if density <= _SPARSE_PRODUCT_MAX_DENSITY:
            return sparse_rows_times_dense(codes, gram)
    return codes @ gram


def l1_start_alpha(penalty, alpha, step, atom_norms=None):
    """l1 weight of the lasso solve that starts a non-convex coder.

    The rule (a warm start from the l1 solution, see the user guide): take
    the l1 weight ``tau`` whose zeroing threshold on the correlations
    ``|x . d_i|`` equals the penalty's, then use ``tau / 2``.

    * l0 and CEL0: ``tau = sqrt(2 alpha)`` (times the mean atom norm for
      CEL0), the one-atom threshold below which the l0 minimiser is zero and
      the width of CEL0's dead zone at zero. ``tau / 2`` is then the mean
      slope of the penalty over the range where it rises from 0 to
      ``alpha``: the l1 penalty that matches it on average there rather
      than at its steepest point.
    * l1/2: ``tau = (54**(1/3) / 4) (2 alpha)**(2/3) step**(-1/3)``, the
      correlation at which the first half-thresholding step from zero
      keeps a coefficient; the same factor 1/2 is applied.

    The halved weight gives a denser l1 support, so the non-convex iteration
    mostly prunes atoms instead of having to find new ones.

    Parameters
    ----------
    penalty : {"l0", "l1/2", "cel0"}
    alpha : float
        Weight of the non-convex penalty.
    step : float
        Step of the iteration (``1 / ||D||_2**2``).
    atom_norms : float, optional
        Mean atom norm (CEL0 only); 1 when omitted.

    Returns
    -------
    float
    """
    if penalty == "l1/2":
        tau = (54.0 ** (1.0 / 3.0) / 4.0) * (2.0 * alpha) ** (2.0 / 3.0)
        tau *= step ** (-1.0 / 3.0)
    elif penalty in ("l0", "cel0"):
        tau = math.sqrt(2.0 * alpha)
        if penalty == "cel0" and atom_norms is not None:
            tau *= float(atom_norms)
    else:
        raise ValueError(f"l1 start is for non-convex penalties; got {penalty!r}.")
    return 0.5 * tau


def continuation_alphas(alpha, stages=CONTINUATION_STAGES,
                        ratio=CONTINUATION_RATIO):
    """Decreasing penalty weights of a lambda-continuation ending at ``alpha``.

    Parameters
    ----------
    alpha : float
        Final weight.
    stages : int, default=4
        Number of weights (1 gives ``[alpha]``).
    ratio : float, default=2.0
        Ratio of consecutive weights.

    Returns
    -------
    list of float
        ``[alpha * ratio**(stages - 1), ..., alpha * ratio, alpha]``.
    """
    return [alpha * ratio ** (stages - 1 - k) for k in range(stages)]


def encode_continuation(X, dictionary, penalty, alpha, *, xp, tol=1e-4,
                        stages=CONTINUATION_STAGES, ratio=CONTINUATION_RATIO,
                        stage_tol=CONTINUATION_TOL, **options):
    """Sparse codes by lambda-continuation: :func:`encode` at decreasing weights.

    Why: a non-convex coder started from zero stops at the
    first local minimiser its greedy first steps lead to. Solving first
    with a larger weight (a sparse problem, cheap to solve) and lowering it
    in a few warm-started stages lets atoms enter gradually, and the final
    stage mostly re-weights a support it already has. On whitened image
    patches this lowers the error at equal sparsity and, because the early
    stages are sparse, costs about as much as the zero start (see the user
    guide).

    Parameters
    ----------
    X, dictionary, penalty, alpha, xp :
        As in :func:`encode_batched`.
    tol : float, default=1e-4
        Tolerance of the final stage.
    stages : int, default=4
        Number of weights, see :func:`continuation_alphas`.
    ratio : float, default=2.0
        Ratio of consecutive weights.
    stage_tol : float, default=1e-2
        Tolerance of the earlier stages (at least ``tol``): they only
        supply a start.
    **options :
        Passed to :func:`encode` (``init`` starts the first stage).

    Returns
    -------
    codes : array of shape (n_samples, n_atoms)
    n_iter : int
        Iterations of the slowest sample, summed over the stages.
    n_unconverged : int
        Samples that hit ``max_iter`` in the final stage.
    """
    # X @ D^T once for all stages (it is a large share of a cheap stage).
    if options.get("correlations") is None:
        options["correlations"] = X @ dictionary.T
    weights = continuation_alphas(alpha, stages, ratio)
    total_iter = 0
    for position, weight in enumerate(weights):
        last = position == len(weights) - 1
        codes, n_iter, n_unconverged = encode(
            X, dictionary, penalty, weight, xp=xp,
            tol=tol if last else max(tol, stage_tol), **options)
        options["init"] = codes
        total_iter += n_iter
    return codes, total_iter, n_unconverged


def default_step(lipschitz, dtype, xp):
    """Step ``1 / L`` (``0.99 / L`` in float32, whose rounding can overshoot)."""
    if lipschitz <= 0:
        return 1.0
    return (0.99 if dtype == xp.float32 else 1.0) / lipschitz


def encode(X, dictionary, penalty, alpha, *, xp, refit=True, **options):
    """Sparse codes of the rows of ``X``: the fused CPU loop or the batched one.

    NumPy input runs :func:`~sparsesolve.coding._kernels.fused_proximal_gradient`
    (the whole iteration of a sample in one numba loop, no per-step array
    traffic); every other namespace (CuPy on the GPU) runs
    :func:`encode_batched`, which is one GEMM and one elementwise kernel per
    step. Both compute the same iterates; see :func:`encode_batched` for the
    parameters and return values.

    On the CPU, ``refit=True`` also ends a sample early at the stationary
    point of its settled support and signs once one step confirms it is a
    fixed point (see ``fused_proximal_gradient``). For l1 that is the same
    minimiser the iteration tends to; for the non-convex penalties it can be
    a different (equally stationary) point than the batched iteration stops
    at. The batched path has no refit: a per-sample small solve is not a
    GPU-shaped operation.
    """
    if is_numpy_namespace(xp):
        return _encode_fused(X, dictionary, penalty, alpha, xp=xp, refit=refit,
                             **options)
    return encode_batched(X, dictionary, penalty, alpha, xp=xp, **options)


def _prepare(X, dictionary, penalty, xp, gram, step, atom_norms):
    if gram is None:
        gram = dictionary @ dictionary.T
    if step is None:
        step = default_step(dictionary_lipschitz(dictionary, xp), X.dtype, xp)
    if atom_norms is None:
        if penalty == "cel0":
            atom_norms = xp.sqrt(xp.sum(dictionary * dictionary, axis=1))
        else:
            atom_norms = xp.ones(dictionary.shape[0], dtype=X.dtype,
                                 device=array_api_compat.device(X))
    return gram, step, atom_norms


def _encode_fused(
    X, dictionary, penalty, alpha, *, xp, max_iter=500, tol=1e-4,
    algorithm="fista", init=None, gram=None, step=None, atom_norms=None,
    refit=True, correlations=None,
):
    gram, step, atom_norms = _prepare(X, dictionary, penalty, xp, gram, step,
                                      atom_norms)
    if correlations is None:
        correlations = X @ dictionary.T
    if init is None:
        init = xp.zeros(correlations.shape, dtype=X.dtype)
    codes, iterations, converged = fused_proximal_gradient(
        correlations, gram, atom_norms, init, penalty, alpha, step, max_iter, tol,
        accelerate=algorithm == "fista", refit=refit,
    )
    n_iter = int(iterations.max()) if iterations.size else 0
    return codes, n_iter, int(np.sum(~converged))


def encode_batched(
    X,
    dictionary,
    penalty,
    alpha,
    *,
    xp,
    max_iter=500,
    tol=1e-4,
    algorithm="fista",
    init=None,
    gram=None,
    step=None,
    atom_norms=None,
    correlations=None,
):
    """Sparse codes of the rows of ``X`` over the rows of ``dictionary``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Signals, in namespace ``xp``.
    dictionary : array of shape (n_atoms, n_features)
        Atoms as rows, same namespace and dtype as ``X``.
    penalty : {"l1", "l0", "l1/2", "cel0"}
        Penalty ``psi``.
    alpha : float
        Penalty weight.
    xp : module
        Array namespace of ``X``.
    max_iter : int, default=500
        Most proximal-gradient iterations per sample.
    tol : float, default=1e-4
        A sample stops when ``||c_new - c|| <= tol * ||c_new||``.
    algorithm : {"fista", "ista"}, default="fista"
        Plain proximal gradient or FISTA with adaptive restart.
    init : array of shape (n_samples, n_atoms), default=None
        Warm start; zeros when None.
    gram : array of shape (n_atoms, n_atoms), default=None
        ``D D^T`` if already computed.
    step : float, default=None
        Step size; ``1 / ||D||_2**2`` when None.
    atom_norms : array of shape (n_atoms,), default=None
        Atom norms for CEL0; computed from ``dictionary`` when None.
    correlations : array of shape (n_samples, n_atoms), default=None
        ``X @ dictionary.T`` if already computed.

    Returns
    -------
    codes : array of shape (n_samples, n_atoms)
    n_iter : int
        Iterations run by the slowest sample.
    n_unconverged : int
        Samples that hit ``max_iter`` before meeting ``tol``.
    """
    n_samples = X.shape[0]
    n_atoms = dictionary.shape[0]
    dtype = X.dtype
    gram, step, atom_norms = _prepare(X, dictionary, penalty, xp, gram, step,
                                      atom_norms)
    if correlations is None:
        correlations = X @ dictionary.T

    device = array_api_compat.device(X)
    if init is None:
        codes = xp.zeros((n_samples, n_atoms), dtype=dtype, device=device)
    else:
        codes = xp.asarray(init, dtype=dtype, copy=True, device=device)
    momentum_point = codes
    momentum_t = xp.ones(n_samples, dtype=dtype, device=device)
    active_index = xp.arange(n_samples, device=device)
    finished_index, finished_codes = [], []
    n_iter = 0
    tiny = xp.finfo(dtype).smallest_normal

    for iteration in range(max_iter):
        if active_index.shape[0] == 0:
            break
        n_iter = iteration + 1
        gradient = gram_product(momentum_point, gram, xp) - correlations
        new_codes = apply_prox(
            momentum_point - step * gradient, penalty, alpha, step, atom_norms, xp
        )
        difference = new_codes - codes
        if algorithm == "fista":
            # Adaptive restart (O'Donoghue & Candes 2015) per sample: drop
            # the momentum when the step and the momentum disagree.
            restart = xp.sum((momentum_point - new_codes) * difference, axis=1) > 0
            next_t = (1.0 + xp.sqrt(1.0 + 4.0 * momentum_t * momentum_t)) / 2.0
            beta = xp.where(restart, xp.zeros_like(next_t), (momentum_t - 1.0) / next_t)
            momentum_t = xp.where(restart, xp.ones_like(next_t), next_t)
            momentum_point = new_codes + beta[:, None] * difference
        else:
            momentum_point = new_codes
        change = xp.linalg.vector_norm(difference, axis=1)
        size = xp.linalg.vector_norm(new_codes, axis=1)
        converged = change <= tol * xp.maximum(size, xp.full_like(size, tiny))
        # A zero code that stays zero has converged (change 0 <= 0).
        converged = converged | (change == 0)
        codes = new_codes

        n_converged = int(xp.sum(xp.astype(converged, xp.int32)))
        n_active = active_index.shape[0]
        if n_converged and (
            n_converged == n_active or n_converged >= _COMPACT_FRACTION * n_active
        ):
            done = xp.nonzero(converged)[0]
            keep = xp.nonzero(~converged)[0]
            finished_index.append(xp.take(active_index, done, axis=0))
            finished_codes.append(xp.take(codes, done, axis=0))
            active_index = xp.take(active_index, keep, axis=0)
            codes = xp.take(codes, keep, axis=0)
            momentum_point = xp.take(momentum_point, keep, axis=0)
            momentum_t = xp.take(momentum_t, keep, axis=0)
            correlations = xp.take(correlations, keep, axis=0)

    n_unconverged = int(active_index.shape[0])
    finished_index.append(active_index)
    finished_codes.append(codes)
    order = xp.argsort(xp.concat(finished_index))
    codes = xp.take(xp.concat(finished_codes, axis=0), order, axis=0)
    return codes, n_iter, n_unconverged


def objective(X, dictionary, codes, penalty, alpha, xp, atom_norms=None):
    """Per-sample value of ``0.5 ||x - c D||^2 + alpha sum psi(c_i)``.

    Used by tests and benchmarks to compare solvers on equal terms.

    Parameters
    ----------
    X, dictionary, codes : arrays
        As in :func:`encode`.
    penalty : str
    alpha : float
    xp : module
    atom_norms : array, default=None

    Returns
    -------
    array of shape (n_samples,)
    """
    residual = X - codes @ dictionary
    data_term = 0.5 * xp.sum(residual * residual, axis=1)
    if penalty == "cel0" and atom_norms is None:
        atom_norms = xp.sqrt(xp.sum(dictionary * dictionary, axis=1))
    return data_term + penalty_value(codes, penalty, alpha, xp, atom_norms)


def penalty_value(codes, penalty, alpha, xp, atom_norms=None):
    """Per-sample ``alpha * sum_i psi(c_i)`` (``atom_norms`` for CEL0).

    Parameters
    ----------
    codes : array of shape (n_samples, n_atoms)
    penalty : str
    alpha : float
    xp : module
    atom_norms : array of shape (n_atoms,), default=None
        Unit norms when None.

    Returns
    -------
    array of shape (n_samples,)
    """
    magnitude = xp.abs(codes)
    if penalty == "l1":
        penalty_term = magnitude
    elif penalty == "l0":
        penalty_term = xp.astype(magnitude > 0, codes.dtype)
    elif penalty == "l1/2":
        penalty_term = xp.sqrt(magnitude)
    else:
        if alpha == 0:
            return xp.zeros(codes.shape[0], dtype=codes.dtype,
                            device=array_api_compat.device(codes))
        if atom_norms is None:
            atom_norms = 1.0
        root = math.sqrt(2.0 * alpha)
        gap = xp.maximum(root - atom_norms * magnitude, xp.zeros_like(magnitude))
        # CEL0 / alpha = 1 - (a|c| - sqrt(2 alpha))^2 / (2 alpha) inside the
        # concave part, 1 beyond it.
        penalty_term = 1.0 - gap * gap / (2.0 * alpha)
    return alpha * xp.sum(penalty_term, axis=1)
