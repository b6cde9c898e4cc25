"""Per-row solves of confidence-weighted ALS (implicit feedback), CPU and GPU.

Hu, Koren and Volinsky (2008) fit preferences ``p_ij`` in {0, 1} over every
entry with confidences ``c_ij = 1 + w_ij``, ``w_ij = 0`` off the observed
set. A row's normal equations are

    (G + sum_{j in Omega_i} w_ij y_j y_j^T) x_i = sum_{j in Omega_i} c_ij p_ij y_j

with ``G = Y^T Y + reg I`` shared by every row (the paper's "Gram trick"),
so a row costs ``O(|Omega_i| k + k^2)`` per conjugate-gradient step, or
``O(|Omega_i| k^2 + k^3)`` for an exact Cholesky solve. ``G`` is passed to
the kernels as a dense k x k matrix and applied column by column (one axpy
per column, which the compiler vectorises).

The other hot loop is the length-k dot product of every observed entry,
once per CG step. Its helpers are marked
:func:`~sparsesolve._backend.reassociable`, so that on the CPU the sum is
vectorised as in BLAS's ``sdot``/``ddot`` (which the ``implicit`` library
calls) instead of running as one chain of dependent additions. Sums are
carried in the data's precision: float32 data get float32 arithmetic, as
in ``implicit``.
"""

from __future__ import annotations

from .._backend import reassociable, register_row_kernel
from ._kernels import cholesky_solve, ridge_cholesky

__all__ = []


# --------------------------------------------------------------------------
# Helpers (plain Python; compiled with the kernels that call them)
# --------------------------------------------------------------------------
@reassociable
def dot_rows(left, i, right, j, k):
    """``<left[i, :k], right[j, :k]>`` (``k >= 1``), in the arrays' dtype."""
    total = left[i, 0] * right[j, 0]
    for a in range(1, k):
        total += left[i, a] * right[j, a]
    return total


@reassociable
def dot_vector(matrix, i, vector, k):
    """``<matrix[i, :k], vector[:k]>`` (``k >= 1``), in the arrays' dtype."""
    total = matrix[i, 0] * vector[0]
    for a in range(1, k):
        total += matrix[i, a] * vector[a]
    return total


def gram_product(gram, vectors, i, out, k):
    """``out = gram @ vectors[i]`` for a symmetric ``gram``, column by column.

    Four columns per pass over ``out``: the compiler cannot tell that
    ``out`` and ``gram`` do not overlap, so it reloads and stores ``out``
    once per pass.
    """
    for a in range(k):
        out[a] = 0
    blocked = k - k % 4
    for b in range(0, blocked, 4):
        s0 = vectors[i, b]
        s1 = vectors[i, b + 1]
        s2 = vectors[i, b + 2]
        s3 = vectors[i, b + 3]
        for a in range(k):
            out[a] += (gram[b, a] * s0 + gram[b + 1, a] * s1) + (
                gram[b + 2, a] * s2 + gram[b + 3, a] * s3)
    for b in range(blocked, k):
        scale = vectors[i, b]
        for a in range(k):
            out[a] += gram[b, a] * scale


# --------------------------------------------------------------------------
# Row kernels
# --------------------------------------------------------------------------
def _cg_workspaces(indptr, indices, values, weights, other, gram, x, n_steps,
                   tol):
    k = other.shape[1]
    return [((2, k), other.dtype), ((k,), other.dtype)]


@register_row_kernel("completion_implicit_cg", workspace=_cg_workspaces,
                     writes=("x",))
def implicit_cg_row(row, indptr, indices, values, weights, other, gram, x,
                    n_steps, tol, work, product):
    """Warm-started conjugate gradients on one row's implicit system.

    ``values[e]`` holds ``c p`` and ``weights[e]`` holds ``c - 1`` of entry
    ``e``; ``gram`` is ``Y^T Y + reg I``. ``work`` rows: residual and search
    direction; ``product``, the system matrix times the direction, is a
    separate array so that the compiler sees that the loops writing it do
    not change what they read. Plain CG, as in the ``implicit`` library
    (Takacs, Pilaszy and Tikk 2011, "Applications of the conjugate gradient
    method for implicit feedback collaborative filtering"): a Jacobi
    preconditioner costs one more pass over the row's entries, and on
    implicit MovieLens-100K (64 factors, 3 steps) it bought no ranking
    quality. ``n_steps`` steps at most; stops early once the squared
    residual is ``tol**2`` times that of the warm start.
    """
    k = other.shape[1]
    residual = 0
    direction = 1
    # residual = b - G x - sum_j w_j (y_j . x) y_j
    gram_product(gram, x, row, product, k)
    for a in range(k):
        work[residual, a] = -product[a]
    for entry in range(indptr[row], indptr[row + 1]):
        col = indices[entry]
        coefficient = values[entry] - weights[entry] * dot_rows(other, col, x, row, k)
        for a in range(k):
            work[residual, a] += coefficient * other[col, a]
    for a in range(k):
        work[direction, a] = work[residual, a]
    rz = dot_rows(work, residual, work, residual, k)
    threshold = rz * tol * tol
    for _ in range(n_steps):
        if rz <= threshold or rz <= 0:
            break
        # product = (G + Y_i^T W_i Y_i) direction
        gram_product(gram, work, direction, product, k)
        for entry in range(indptr[row], indptr[row + 1]):
            col = indices[entry]
            projected = weights[entry] * dot_rows(other, col, work, direction, k)
            for a in range(k):
                product[a] += projected * other[col, a]
        curvature = dot_vector(work, direction, product, k)
        if curvature <= 0:
            break
        step = rz / curvature
        for a in range(k):
            x[row, a] += step * work[direction, a]
            work[residual, a] -= step * product[a]
        rz_next = dot_rows(work, residual, work, residual, k)
        beta = rz_next / rz
        rz = rz_next
        for a in range(k):
            work[direction, a] = work[residual, a] + beta * work[direction, a]


def _exact_workspaces(indptr, indices, values, weights, other, gram, out):
    k = other.shape[1]
    return [((k, k), other.dtype), ((k,), other.dtype)]


@register_row_kernel("completion_implicit_exact", workspace=_exact_workspaces,
                     writes=("out",))
def implicit_exact_row(row, indptr, indices, values, weights, other, gram, out,
                       matrix, rhs):
    """Exact solve of one row's implicit system by Cholesky.

    ``matrix`` starts as the shared ``gram`` (``Y^T Y + reg I``, lower
    triangle) and gains the row's ``w_j y_j y_j^T``; ``rhs`` sums
    ``c_j p_j y_j``.
    """
    k = other.shape[1]
    for a in range(k):
        rhs[a] = 0
        for b in range(a + 1):
            matrix[a, b] = gram[a, b]
    for entry in range(indptr[row], indptr[row + 1]):
        col = indices[entry]
        weight = weights[entry]
        value = values[entry]
        for a in range(k):
            scaled = weight * other[col, a]
            rhs[a] += value * other[col, a]
            for b in range(a + 1):
                matrix[a, b] += scaled * other[col, b]
    # The ridge is already in ``gram``; this adds the relative pivot floor.
    ridge_cholesky(matrix, k, 0.0)
    cholesky_solve(matrix, rhs, out[row], k)


@register_row_kernel("completion_implicit_loss", writes=("out",))
def implicit_loss_row(row, indptr, indices, values, weights, left, right, out):
    """``out[row] = sum_j [c (p - x)^2 - x^2]`` over the row's observed entries.

    With ``x = <left[row], right[j]>``, ``values = c p`` and ``weights = c -
    1`` (``p`` in {0, 1}, so ``c p^2 = c p``) the term is ``c p - 2 c p x +
    (c - 1) x^2``; the caller adds the sum of ``x^2`` over all entries.
    Accumulated in float64.
    """
    k = left.shape[1]
    total = 0.0
    for entry in range(indptr[row], indptr[row + 1]):
        predicted = dot_rows(left, row, right, indices[entry], k)
        value = values[entry]
        total += value - 2 * value * predicted + weights[entry] * predicted * predicted
    out[row] = total
