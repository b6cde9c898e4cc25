"""The bound update of Laplacian K-prototypes, one row (point) at a time.

The relaxed energy with the corrected (lambda / 2) scaling is

    R(Y) = sum_p y_p . (log y_p + a_p) - (lambda / 2) tr(Y^T (W + delta I) Y)

and its bound (the concave Laplacian term linearised at the current ``Y``)
is minimised, independently for every point, by

    y_p <- softmax(-a_p + lambda * (sum_q w_pq y_q + delta y_p)).

Every row only reads the previous iterate, so the rows of one sweep run in
parallel: a ``prange`` loop on the CPU and one GPU thread per row. The row
body below is plain Python, registered as a row kernel of
:mod:`sparsesolve._backend`, which compiles it for both (``numba.njit`` and
``numba.cuda.jit(device=True)``). While it forms ``(W Y)_p`` it also adds up
row ``p``'s share of ``R`` at the previous iterate, so the energy history
costs no extra pass over the graph and no N x K temporary.
"""

from __future__ import annotations

import math

from .._backend import register_row_kernel


@register_row_kernel("clustering_bound_update",
                     writes=("y_new", "entropy_new", "row_energy"))
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
