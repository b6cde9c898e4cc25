"""The bound update of Laplacian K-prototypes, one row (point) at a time.

The relaxed energy with the corrected (lambda / 2) scaling is

    R(Y) = sum_p y_p . (log y_p + a_p) - (lambda / 2) tr(Y^T (W + delta I) Y)

and its bound (the concave Laplacian term linearised at the current ``Y``)
is minimised, independently for every point, by

    y_p <- softmax(-a_p + lambda * (sum_q w_pq y_q + delta y_p)).

Every row only reads the previous iterate, so the rows of one sweep run in
parallel: a ``prange`` loop on the CPU and one GPU thread per row. The scalar
row body below is plain Python, compiled twice (``numba.njit`` and
``numba.cuda.jit(device=True)``). While it forms ``(W Y)_p`` it also adds up
row ``p``'s share of ``R`` at the previous iterate, so the energy history
costs no extra pass over the graph and no N x K temporary.
"""

from __future__ import annotations

import functools
import math

# Threads per block of the CUDA grid kernel (a multiple of the warp size).
_CUDA_THREADS_PER_BLOCK = 128

# numba.cuda, bound by _cuda_sweep on first GPU use. It must be a module
# global: numba's CUDA simulator swaps the ``cuda`` module it finds in a
# kernel's globals for its fake one, and a closure variable would escape that.
cuda = None


def bound_update_row(
    row,
    unary,
    indptr,
    indices,
    weights,
    y_old,
    entropy_old,
    y_new,
    entropy_new,
    laplacian_weight,
    self_weight,
    clamp,
    row_energy,
):
    """Update row ``row`` of ``y_new`` from ``y_old``; store its energy share.

    Parameters
    ----------
    row : int
        Point index ``p``.
    unary : array of shape (n_samples, n_clusters)
        Prototype costs ``a_pk`` (squared distance, or minus a kernel).
    indptr, indices, weights : arrays
        The symmetric affinity ``W`` in CSR form (no diagonal needed).
    y_old : array of shape (n_samples, n_clusters)
        Current assignments (rows on the simplex). Read only.
    entropy_old : array of shape (n_samples,)
        ``sum_k y_old[p, k] log y_old[p, k]`` of every row. Read only.
    y_new : array of shape (n_samples, n_clusters)
        Output; row ``row`` is overwritten.
    entropy_new : array of shape (n_samples,)
        Output; ``entropy_new[row]`` is the negative entropy of the new row.
    laplacian_weight : float
        ``lambda``.
    self_weight : float
        ``delta``, the diagonal shift that makes ``W + delta I`` positive
        semi-definite (the bound then majorises ``R``).
    clamp : int array of shape (n_samples,)
        Cluster of a labelled point, or -1 for a free one.
    row_energy : array of shape (n_samples,)
        Output; ``row_energy[row]`` is row ``row``'s share of ``R(y_old)``.

    Notes
    -----
    The negative entropy of a softmax row needs one logarithm, not one per
    entry: with ``y = exp(l - c) / t``, ``sum y log y = sum y (l - c) - log t``.
    Carrying it from sweep to sweep keeps the energy nearly free (a log per
    entry would cost about as much as the rest of the sweep).
    """
    n_clusters = unary.shape[1]
    # Pass 1: y_new[row] <- (W y_old)_row, neighbour by neighbour so that the
    # rows of y_old are read contiguously.
    for k in range(n_clusters):
        y_new[row, k] = 0.0
    for position in range(indptr[row], indptr[row + 1]):
        neighbour = indices[position]
        weight = weights[position]
        for k in range(n_clusters):
            y_new[row, k] += weight * y_old[neighbour, k]
    # Pass 2: energy share of y_old and the logits, with their maximum.
    energy = entropy_old[row]
    largest = -math.inf
    for k in range(n_clusters):
        y = y_old[row, k]
        field = y_new[row, k] + self_weight * y
        energy += y * (unary[row, k] - 0.5 * laplacian_weight * field)
        logit = laplacian_weight * field - unary[row, k]
        y_new[row, k] = logit
        if logit > largest:
            largest = logit
    row_energy[row] = energy
    label = clamp[row]
    if label >= 0:
        # A labelled point keeps its one-hot assignment (supervision constraint).
        for k in range(n_clusters):
            y_new[row, k] = 0.0
        y_new[row, label] = 1.0
        entropy_new[row] = 0.0
        return
    # Pass 3: numerically stable softmax (the maximum logit maps to exp(0)).
    total = 0.0
    weighted = 0.0
    for k in range(n_clusters):
        shifted = y_new[row, k] - largest
        value = math.exp(shifted)
        y_new[row, k] = value
        total += value
        weighted += value * shifted
    for k in range(n_clusters):
        y_new[row, k] = y_new[row, k] / total
    entropy_new[row] = weighted / total - math.log(total)


# Argument order shared by the row body, the CPU driver and the CUDA kernel
# (after ``row``): unary, indptr, indices, weights, y_old, entropy_old, y_new,
# entropy_new, laplacian_weight, self_weight, clamp, row_energy.


@functools.cache
def cpu_sweep(parallel=True):
    """Return the numba CPU driver ``sweep(unary, indptr, ..., row_energy)``.

    ``parallel=False`` gives a serial loop: for a few-shot episode (about a
    hundred points) waking the thread pool costs more than the whole sweep.
    """
    from numba import njit, prange

    row_body = njit(inline="always", nogil=True, cache=True)(bound_update_row)

    @njit(parallel=parallel, nogil=True, cache=True)
    def sweep(
        unary,
        indptr,
        indices,
        weights,
        y_old,
        entropy_old,
        y_new,
        entropy_new,
        laplacian_weight,
        self_weight,
        clamp,
        row_energy,
    ):
        for row in prange(unary.shape[0]):
            row_body(
                row,
                unary,
                indptr,
                indices,
                weights,
                y_old,
                entropy_old,
                y_new,
                entropy_new,
                laplacian_weight,
                self_weight,
                clamp,
                row_energy,
            )

    return sweep


@functools.cache
def cuda_sweep():
    """Return the CUDA launcher ``sweep(unary, indptr, ..., row_energy)``.

    It takes device arrays (CuPy, via ``__cuda_array_interface__``), or NumPy
    arrays under ``NUMBA_ENABLE_CUDASIM=1``, which is how its logic is tested
    on machines without a GPU.
    """
    global cuda
    from numba import cuda

    row_body = cuda.jit(device=True)(bound_update_row)

    @cuda.jit
    def grid_kernel(
        unary,
        indptr,
        indices,
        weights,
        y_old,
        entropy_old,
        y_new,
        entropy_new,
        laplacian_weight,
        self_weight,
        clamp,
        row_energy,
    ):
        row = cuda.grid(1)
        if row < unary.shape[0]:
            row_body(
                row,
                unary,
                indptr,
                indices,
                weights,
                y_old,
                entropy_old,
                y_new,
                entropy_new,
                laplacian_weight,
                self_weight,
                clamp,
                row_energy,
            )

    def sweep(
        unary,
        indptr,
        indices,
        weights,
        y_old,
        entropy_old,
        y_new,
        entropy_new,
        laplacian_weight,
        self_weight,
        clamp,
        row_energy,
    ):
        n_rows = unary.shape[0]
        blocks = max(
            (n_rows + _CUDA_THREADS_PER_BLOCK - 1) // _CUDA_THREADS_PER_BLOCK, 1
        )
        grid_kernel[blocks, _CUDA_THREADS_PER_BLOCK](
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
            row_energy,
        )

    return sweep
