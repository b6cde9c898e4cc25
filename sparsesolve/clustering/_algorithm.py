"""Laplacian K-prototypes by block-coordinate descent with bound sweeps.

Written once against an array namespace ``xp``: NumPy runs on the CPU (the
sweep is a numba ``prange`` kernel), CuPy on the GPU (the same row body as a
numba-cuda kernel), both through :func:`sparsesolve._backend.kernel`.
Outer iterations alternate

1. prototypes from the hard labels (cluster means, or cluster modes found by
   mean shift with a Gaussian kernel) and the unary costs ``a_pk``;
2. bound sweeps ``y_p <- softmax(-a_p + lambda ((W + delta I) Y)_p)`` with the
   labelled points clamped to their class, until the relaxed energy settles;
3. hard labels ``argmax_k y_pk``; stop when they no longer change, when the
   energy settles, or (restoring the previous state) when a cluster empties.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from .._backend import get_namespace, kernel, to_numpy
from . import _kernels  # noqa: F401 - registers the bound update

__all__ = [
    "bound_sweep",
    "kprototypes_loop",
    "laplacian_kprototypes",
    "mean_shift",
    "scaled_unary",
    "start_assignments",
    "unary_costs",
]

# Mean-shift iterations and relative tolerance of the mode prototypes.
_MODE_MAX_ITER = 100
_MODE_TOL = 1e-5

# A sweep that raises the relaxed energy by more than this relative amount is
# undone by the safeguard (smaller changes are round-off).
_RISE = 1e-10

# Entries of the (n_samples, n_clusters) assignment matrix above which the CPU
# sweep runs in parallel; below, thread start-up outweighs the work.
_PARALLEL_ABOVE = 20_000


def negative_entropy(y, xp):
    """``sum_k y_pk log y_pk`` of every row (0 log 0 = 0)."""
    tiny = xp.finfo(y.dtype).smallest_normal
    return xp.sum(y * xp.log(xp.where(y > tiny, y, xp.ones_like(y))), axis=1)


def bound_sweep(
    unary,
    indptr,
    indices,
    weights,
    y_old,
    entropy_old,
    laplacian_weight,
    self_weight,
    clamp,
):
    """One parallel bound update of every row.

    Returns ``(y_new, entropy_new, energy_rows)``: the new assignments, their
    row-wise negative entropy (carried to the next sweep) and each row's share
    of the relaxed energy ``R`` at ``y_old`` (see
    :mod:`sparsesolve.clustering._kernels`).
    """
    xp = get_namespace(unary)
    n_samples = y_old.shape[0]
    y_new = xp.empty_like(y_old)
    entropy_new = xp.empty(n_samples, dtype=y_old.dtype,
                           device=array_api_compat.device(y_old))
    energy_rows = xp.empty(n_samples, dtype=y_old.dtype,
                           device=array_api_compat.device(y_old))
    # The rows updated are the rows of ``unary``; ``y_old`` may carry more
    # (neighbours' assignments from other blocks), which are only read.
    kernel("clustering_bound_update", xp)(
        unary.shape[0],
        unary,
        indptr,
        indices,
        weights,
        y_old,
        entropy_old,
        y_new,
        entropy_new,
        float(laplacian_weight),
        float(self_weight),
        clamp,
        energy_rows,
        # For a few-shot episode (about a hundred points) waking the thread
        # pool costs more than the whole sweep.
        parallel=unary.shape[0] * unary.shape[1] >= _PARALLEL_ABOVE,
    )
    return y_new, entropy_new, energy_rows


def _one_hot(labels, n_clusters, dtype, xp):
    clusters = xp.arange(n_clusters, device=array_api_compat.device(labels))
    return xp.astype(clusters[None, :] == labels[:, None], dtype)


def _squared_distances(X, centers, xp):
    cross = X @ centers.T
    squared = (
        xp.sum(X * X, axis=1)[:, None]
        - 2.0 * cross
        + xp.sum(centers * centers, axis=1)[None, :]
    )
    return xp.clip(squared, 0.0, None)


def unary_costs(X, centers, prototype, bandwidth, xp):
    """Cost ``a_pk`` of assigning point ``p`` to prototype ``k``.

    ``"mean"``: squared Euclidean distance. ``"mode"``: minus the Gaussian
    kernel ``exp(-||x - m||^2 / (2 bandwidth^2))``.
    """
    squared = _squared_distances(X, centers, xp)
    if prototype == "mean":
        return squared
    return -xp.exp(-squared / (2.0 * bandwidth**2))


def _means_from_sums(sums, counts, previous, xp):
    """Cluster means from per-cluster sums; an empty cluster keeps ``previous``.

    Shared by the in-memory update and the blocked one, whose sums arrive
    added up over row blocks.
    """
    safe = xp.where(counts > 0, counts, xp.ones_like(counts))
    means = sums / safe[:, None]
    return xp.where((counts > 0)[:, None], means, previous)


def _cluster_means(X, member, counts, previous, xp):
    return _means_from_sums(member.T @ X, counts, previous, xp)


def _mode_statistics(X, member, modes, bandwidth, xp):
    """Kernel-weighted sums and masses of every cluster's points around ``modes``."""
    kernel = xp.exp(-_squared_distances(X, modes, xp) / (2.0 * bandwidth**2)) * member
    return kernel.T @ X, xp.sum(kernel, axis=0)


def mean_shift(modes, statistics, xp):
    """Mean-shift iterations from ``modes``; ``statistics(modes)`` gives the
    kernel-weighted sums and masses (over all points, or summed over blocks).
    """
    for _ in range(_MODE_MAX_ITER):
        sums, mass = statistics(modes)
        safe = xp.where(mass > 0, mass, xp.ones_like(mass))
        shifted = xp.where((mass > 0)[:, None], sums / safe[:, None], modes)
        change = float(xp.max(xp.abs(shifted - modes)))
        scale = float(xp.max(xp.abs(modes))) + 1e-12
        modes = shifted
        if change <= _MODE_TOL * scale:
            break
    return modes


def _cluster_modes(X, member, counts, previous, bandwidth, xp):
    """Mean shift of every cluster's prototype over that cluster's points."""
    modes = _cluster_means(X, member, counts, previous, xp)
    return mean_shift(
        modes, lambda current: _mode_statistics(X, member, current, bandwidth, xp), xp
    )


def _softmax_rows(logits, xp):
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    exp = xp.exp(shifted)
    return exp / xp.sum(exp, axis=1, keepdims=True)


def scaled_unary(X, centers, prototype, bandwidth, unary_scale, dtype, xp):
    """Unary costs of ``X`` in the units the sweeps use (mean costs scaled)."""
    unary = xp.asarray(unary_costs(X, centers, prototype, bandwidth, xp), dtype=dtype)
    if prototype == "mean" and unary_scale != 1.0:
        unary = unary * unary_scale
    return unary


def start_assignments(unary, assignments, labelled, clamp_one_hot, warm_start, xp):
    """Assignments entering an outer iteration's sweeps and their entropy."""
    if warm_start:
        y = xp.where(labelled[:, None], clamp_one_hot, assignments)
    else:
        y = _softmax_rows(-unary, xp)
        y = xp.where(labelled[:, None], clamp_one_hot, y)
    return y, negative_entropy(y, xp)


class _ArrayProblem:
    """The steps of :func:`kprototypes_loop` on arrays in one namespace.

    The loop only sees opaque handles (labels, assignments, an iterate of
    assignments and their entropy, unary costs); the blocked fit of
    :mod:`sparsesolve.distributed._clustering` supplies the same steps over
    row blocks, so both run one copy of the control flow.
    """

    def __init__(self, X, graph, clamp, prototype, bandwidth, unary_scale):
        self.xp = get_namespace(X)
        self.X = X
        self.graph = graph
        self.clamp = clamp
        self.prototype = prototype
        self.bandwidth = bandwidth
        self.unary_scale = unary_scale
        self.labelled = clamp >= 0
        self.n_clusters = None
        self.clamp_one_hot = None

    def start(self, initial_centers, initial_labels):
        xp = self.xp
        self.n_clusters = initial_centers.shape[0]
        self.clamp_one_hot = _one_hot(self.clamp, self.n_clusters, self.X.dtype, xp)
        if initial_labels is None:
            labels = xp.argmin(_squared_distances(self.X, initial_centers, xp), axis=1)
        else:
            labels = initial_labels
        labels = xp.where(self.labelled, self.clamp, labels)
        return labels, _one_hot(labels, self.n_clusters, self.X.dtype, xp)

    def prototypes(self, labels, centers):
        xp = self.xp
        member = _one_hot(labels, self.n_clusters, self.X.dtype, xp)
        counts = xp.sum(member, axis=0)
        if self.prototype == "mean":
            new_centers = _cluster_means(self.X, member, counts, centers, xp)
        else:
            new_centers = _cluster_modes(
                self.X, member, counts, centers, self.bandwidth, xp
            )
        return new_centers, counts

    def outer_start(self, centers, assignments, warm_start):
        xp = self.xp
        unary = scaled_unary(self.X, centers, self.prototype, self.bandwidth,
                             self.unary_scale, self.X.dtype, xp)
        iterate = start_assignments(unary, assignments, self.labelled,
                                    self.clamp_one_hot, warm_start, xp)
        return unary, iterate

    def sweep(self, unary, iterate, laplacian_weight, self_weight):
        xp = self.xp
        indptr, indices, weights = self.graph
        y_new, entropy_new, energy_rows = bound_sweep(
            unary, indptr, indices, weights, iterate[0], iterate[1],
            laplacian_weight, self_weight, self.clamp,
        )
        return (y_new, entropy_new), float(xp.sum(xp.astype(energy_rows, xp.float64)))

    def hard_labels(self, iterate):
        return self.xp.argmax(iterate[0], axis=1)

    def assignments(self, iterate):
        return iterate[0]

    def label_counts(self, labels):
        return self.xp.sum(_one_hot(labels, self.n_clusters, self.X.dtype, self.xp),
                           axis=0)

    def any_empty(self, counts):
        return bool(self.xp.any(counts == 0))

    def same_labels(self, labels, other):
        return bool(self.xp.all(labels == other))


def laplacian_kprototypes(
    X,
    graph,
    initial_centers,
    clamp,
    *,
    laplacian_weight,
    self_weight,
    prototype,
    bandwidth,
    max_iter,
    max_inner_iter,
    tol,
    inner_tol,
    progress=None,
    unary_scale=1.0,
    warm_start=False,
    initial_labels=None,
    shift_on_rise=None,
):
    """Run the block-coordinate Laplacian K-prototypes solver.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Points, in namespace ``xp`` (NumPy or CuPy).
    graph : tuple (indptr, indices, weights)
        Symmetric affinity in CSR form, already in ``xp``.
    initial_centers : array of shape (n_clusters, n_features)
        Starting prototypes.
    clamp : int array of shape (n_samples,)
        Cluster of each labelled point, -1 for free points.
    laplacian_weight, self_weight : float
        ``lambda`` and the PSD shift ``delta``.
    prototype : {"mean", "mode"}
    bandwidth : float
        Gaussian kernel width of the mode prototypes (unused for means).
    max_iter, max_inner_iter : int
        Outer (prototype) and inner (bound sweep) iteration limits.
    tol, inner_tol : float
        Relative energy tolerances of the outer and inner loops.
    progress : Progress or None
        Receives one update per outer iteration.
    unary_scale : float, default=1.0
        Factor on the squared distances of mean prototypes (an inverse
        temperature); mode costs are already dimensionless.
    warm_start : bool, default=False
        Start every outer iteration's sweeps from the previous assignments
        (the first from the one-hot starting labels) rather than from
        ``softmax(-a_p)``, which forgets the graph's agreement at each
        prototype update and pulls the partition back to nearest-prototype
        labels.
    initial_labels : int array of shape (n_samples,) or None
        Starting partition; ``None`` assigns every point to its nearest
        initial centre.
    shift_on_rise : callable or None
        With ``self_weight == 0``: called (once) when a sweep raises the
        energy; it returns the PSD shift ``delta``, the sweep is undone and
        the outer iteration goes on with ``delta``, so the recorded energy
        still never increases (safeguarded Jacobi sweeps: unshifted sweeps
        move faster, the shift is paid only where they would oscillate).

    Returns
    -------
    result : dict
        ``labels``, ``assignments`` (soft, rows on the simplex), ``centers``,
        ``energy`` (list of floats, ``R`` at every sweep), ``sweeps`` (list,
        sweeps per outer iteration), ``n_iter``, ``converged``,
        ``emptied`` (True when a cluster emptied and the previous state was
        kept), ``inner_converged`` (False when the bound sweeps of the last
        outer iteration stopped at ``max_inner_iter``) and ``self_weight``.
    """
    problem = _ArrayProblem(X, graph, clamp, prototype, bandwidth, unary_scale)
    return kprototypes_loop(
        problem,
        initial_centers,
        initial_labels,
        laplacian_weight=laplacian_weight,
        self_weight=self_weight,
        max_iter=max_iter,
        max_inner_iter=max_inner_iter,
        tol=tol,
        inner_tol=inner_tol,
        progress=progress,
        warm_start=warm_start,
        shift_on_rise=shift_on_rise,
    )


def kprototypes_loop(
    problem,
    initial_centers,
    initial_labels,
    *,
    laplacian_weight,
    self_weight,
    max_iter,
    max_inner_iter,
    tol,
    inner_tol,
    progress=None,
    warm_start=False,
    shift_on_rise=None,
):
    """Outer and inner iterations of :func:`laplacian_kprototypes`.

    ``problem`` carries the data and performs each step (prototype update,
    unary costs and starting assignments, one bound sweep with its energy,
    hard labels and their counts); see :class:`_ArrayProblem`. The blocked
    fit passes a problem whose steps run over row blocks on a Dask cluster,
    so that it takes the decisions below (safeguard, stopping rules) on the
    same energies as the in-memory fit. Parameters and result as
    :func:`laplacian_kprototypes`.
    """
    centers = initial_centers
    labels, assignments = problem.start(initial_centers, initial_labels)
    energy, sweeps = [], []
    converged, emptied = False, False
    inner_converged = True
    previous_outer = None
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        new_centers, counts = problem.prototypes(labels, centers)
        unary, iterate = problem.outer_start(new_centers, assignments, warm_start)
        previous_inner = None
        before = None
        redo = False
        n_sweeps = 0
        n_recorded = 0
        inner_converged = False
        while n_sweeps < max_inner_iter:
            n_sweeps += 1
            swept, current = problem.sweep(
                unary, iterate, laplacian_weight, self_weight
            )
            if redo:
                # The energy of this iterate is already in the history.
                redo = False
                iterate = swept
                continue
            if (
                before is not None
                and current - previous_inner > _RISE * max(abs(previous_inner), 1.0)
            ):
                # The unshifted sweep into ``iterate`` raised the energy: undo
                # it and sweep again from the previous iterate with the shift.
                self_weight = float(shift_on_rise())
                iterate = before
                before = None
                redo = True
                continue
            energy.append(current)
            n_recorded += 1
            if shift_on_rise is not None and self_weight == 0:
                before = iterate
            iterate = swept
            if previous_inner is not None and abs(previous_inner - current) <= (
                inner_tol * max(abs(previous_inner), 1.0)
            ):
                inner_converged = True
                break
            previous_inner = current
        sweeps.append(n_recorded)
        new_labels = problem.hard_labels(iterate)
        new_counts = problem.label_counts(new_labels)
        if problem.any_empty(new_counts) and not problem.any_empty(counts):
            # The bound step emptied a cluster: keep the last state with all
            # clusters populated (as the reference code does) and stop.
            emptied = True
            break
        unchanged = problem.same_labels(new_labels, labels)
        labels, centers = new_labels, new_centers
        assignments = problem.assignments(iterate)
        if progress is not None:
            progress.update(energy=energy[-1], sweeps=n_sweeps)
        outer = energy[-1]
        if unchanged or (
            previous_outer is not None
            and abs(previous_outer - outer) <= (tol * max(abs(previous_outer), 1.0))
        ):
            converged = True
            break
        previous_outer = outer
    return {
        "labels": labels,
        "assignments": assignments,
        "centers": centers,
        "energy": energy,
        "sweeps": sweeps,
        "n_iter": n_iter,
        "converged": converged,
        "emptied": emptied,
        # Whether the bound sweeps of the last outer iteration met inner_tol
        # (False: they stopped at max_inner_iter).
        "inner_converged": inner_converged,
        "self_weight": self_weight,
    }


# Edges sampled (evenly over the CSR order) to estimate the bandwidth; an RMS
# over this many lengths is accurate to a fraction of a percent.
_BANDWIDTH_EDGES = 20_000


def default_bandwidth(X, graph_matrix):
    """Kernel width of the mode prototypes: RMS length of the graph's edges.

    Large graphs use an even subsample of ``_BANDWIDTH_EDGES`` edges (the
    full gather would copy ``nnz x n_features`` values).
    """
    X = np.asarray(to_numpy(X))
    coo = graph_matrix.tocoo()
    if coo.nnz == 0:
        return 1.0
    step = max(coo.nnz // _BANDWIDTH_EDGES, 1)
    rows, cols, data = coo.row[::step], coo.col[::step], coo.data[::step]
    difference = X[rows].astype(np.float64) - X[cols]
    lengths = np.einsum("ij,ij->i", difference, difference)
    value = math.sqrt(float(np.sum(data * lengths) / np.sum(data)))
    return value if value > 0 else 1.0
