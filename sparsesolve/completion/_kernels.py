"""Per-row least-squares solves over a CSR structure, for the CPU and the GPU.

One half-sweep of alternating minimisation solves, for every row ``i`` of a
sparse matrix of observations, the weighted ridge problem

    x_i = argmin_x  sum_{j in Omega_i} w_ij (m_ij - <y_j, x>)^2 + reg_i ||x||^2

against the fixed factor ``Y`` of the other side. Rows are independent, so a
row is the unit of parallelism: a ``prange`` iteration on the CPU and a
thread on the GPU. The row bodies below are plain Python with scalar loops,
registered as row kernels of :mod:`sparsesolve._backend`, which compiles them
(and the helpers they call) once with ``numba.njit`` for the CPU and once with
``numba.cuda.jit(device=True)`` for the GPU, so both devices run the same code.

Three ways to solve a row (``solver``):

* ``"exact"``: form the k x k Gram matrix and solve by Cholesky (the
  package's one small Cholesky, :mod:`sparsesolve._small_linalg`),
  O(|Omega_i| k^2 + k^3) per row (Jain, Netrapalli and Sanghavi's AltMin).
* ``"cg"``: a few warm-started conjugate-gradient steps on the normal
  equations with a Jacobi preconditioner; every step costs O(|Omega_i| k), so
  a sweep has no k^2 term.
* ``"sketch"``: sketch-and-precondition (Gu, Song, Yin and Zhang): a
  CountSketch ``S A`` of the row's design matrix gives a k x k factor ``R``
  with ``cond(A R^-1) = O(1)``, then a few preconditioned CG steps. Rows that
  are shorter than twice the sketch are solved exactly, where that is cheaper.
"""

from __future__ import annotations

import math

from .._backend import register_row_kernel
from .._small_linalg import cholesky_factor, cholesky_solve, relative_pivot_floor

__all__ = ["uses_sketch", "SOLVERS"]

SOLVERS = ("exact", "cg", "sketch")

# Launches below these sizes run on one CPU thread: a row solve of a few
# dozen observations takes microseconds, an entry prediction nanoseconds,
# and waking numba's thread pool costs more (milliseconds on a loaded
# machine).
SERIAL_ROWS = 128
SERIAL_ENTRIES = 1 << 15


# --------------------------------------------------------------------------
# Row bodies (plain Python; compiled by the backend for each target)
# --------------------------------------------------------------------------
def ridge_cholesky(gram, k, ridge):
    """Add ``ridge`` to the diagonal of ``gram`` and factor it in place.

    The pivot floor is relative, 1e-12 of the largest diagonal
    (:func:`~sparsesolve._small_linalg.relative_pivot_floor`), which keeps
    the factor finite for rows with fewer observations than the rank.
    """
    for a in range(k):
        gram[a, a] += ridge
    cholesky_factor(gram, k, relative_pivot_floor(gram, k))


def _exact_workspaces(indptr, indices, values, weights, other, reg, out):
    k = other.shape[1]
    return [((k, k), other.dtype), ((k,), other.dtype)]


@register_row_kernel("completion_exact", workspace=_exact_workspaces,
                     writes=("out",), serial_below=SERIAL_ROWS)
def exact_row(row, indptr, indices, values, weights, other, reg, out, gram, rhs):
    """Exact weighted ridge solve of one row by Cholesky."""
    k = other.shape[1]
    for a in range(k):
        rhs[a] = 0.0
        for b in range(k):
            gram[a, b] = 0.0
    for entry in range(indptr[row], indptr[row + 1]):
        col = indices[entry]
        weight = weights[entry]
        value = values[entry]
        for a in range(k):
            scaled = weight * other[col, a]
            rhs[a] += scaled * value
            for b in range(a + 1):
                gram[a, b] += scaled * other[col, b]
    ridge_cholesky(gram, k, reg[row])
    cholesky_solve(gram, rhs, out[row], k)


def precondition(residual, out, diag, factor, k, use_factor):
    """Apply the Jacobi (diag) or sketched Cholesky (factor) preconditioner."""
    if use_factor:
        cholesky_solve(factor, residual, out, k)
    else:
        for a in range(k):
            out[a] = residual[a] / diag[a]


def pcg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol,
            residual, direction, precond, product, diag, factor, use_factor):
    """Warm-started preconditioned CG on one row's normal equations."""
    k = other.shape[1]
    current = x[row]
    # residual = A^T W (b - A x) - reg x, and the Jacobi diagonal
    for a in range(k):
        residual[a] = -reg[row] * current[a]
        diag[a] = reg[row]
    for entry in range(indptr[row], indptr[row + 1]):
        col = indices[entry]
        weight = weights[entry]
        predicted = 0.0
        for a in range(k):
            predicted += other[col, a] * current[a]
        coefficient = weight * (values[entry] - predicted)
        for a in range(k):
            residual[a] += coefficient * other[col, a]
            diag[a] += weight * other[col, a] * other[col, a]
    for a in range(k):
        if diag[a] <= 0.0:
            diag[a] = 1.0
    precondition(residual, precond, diag, factor, k, use_factor)
    rz = 0.0
    for a in range(k):
        direction[a] = precond[a]
        rz += residual[a] * precond[a]
    threshold = rz * tol * tol
    for _ in range(n_steps):
        if rz <= threshold or rz <= 0.0:
            break
        # product = (A^T W A + reg I) direction, without forming A^T W A
        for a in range(k):
            product[a] = reg[row] * direction[a]
        for entry in range(indptr[row], indptr[row + 1]):
            col = indices[entry]
            projected = 0.0
            for a in range(k):
                projected += other[col, a] * direction[a]
            projected *= weights[entry]
            for a in range(k):
                product[a] += projected * other[col, a]
        curvature = 0.0
        for a in range(k):
            curvature += direction[a] * product[a]
        if curvature <= 0.0:
            break
        step = rz / curvature
        for a in range(k):
            current[a] += step * direction[a]
            residual[a] -= step * product[a]
        precondition(residual, precond, diag, factor, k, use_factor)
        rz_next = 0.0
        for a in range(k):
            rz_next += residual[a] * precond[a]
        beta = rz_next / rz
        rz = rz_next
        for a in range(k):
            direction[a] = precond[a] + beta * direction[a]


def _cg_workspaces(indptr, indices, values, weights, other, reg, x, n_steps, tol):
    return [((5, other.shape[1]), other.dtype)]


@register_row_kernel("completion_cg", workspace=_cg_workspaces, writes=("x",),
                     serial_below=SERIAL_ROWS)
def cg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol, work):
    """Jacobi-preconditioned CG: O(|Omega_i| k) per step, no k x k matrix.

    ``work`` holds the five CG vectors of length k, one per row.
    """
    # ``work`` also fills the (unused) factor slot of the shared PCG body.
    pcg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol,
            work[0], work[1], work[2], work[3], work[4], work, False)


def uses_sketch(count, sketch_size):
    """Whether ``sketch_row`` sketches a row of ``count`` observations.

    Shorter rows (at most twice the sketch size) are solved exactly: their
    sketch would hold nearly as much data as the row itself. Plain
    comparisons only, so it also works elementwise on NumPy arrays of counts.
    """
    return count > 2 * sketch_size


def _sketch_workspaces(indptr, indices, values, weights, other, reg, x, n_steps,
                       tol, bucket, sign, sketch_size):
    k = other.shape[1]
    return [((sketch_size, k), other.dtype), ((k, k), other.dtype),
            ((5, k), other.dtype)]


@register_row_kernel("completion_sketch", workspace=_sketch_workspaces,
                     writes=("x",), serial_below=SERIAL_ROWS)
def sketch_row(row, indptr, indices, values, weights, other, reg, x, n_steps,
               tol, bucket, sign, sketch_size, sketched, factor, work):
    """Sketch-and-precondition: CountSketch, small Cholesky, then PCG.

    ``sketched`` (sketch_size x k), ``factor`` (k x k) and ``work`` (the five
    CG vectors) are the row's workspaces.
    """
    k = other.shape[1]
    if not uses_sketch(indptr[row + 1] - indptr[row], sketch_size):
        # The sketch would be as large as the data: solve directly.
        exact_row(row, indptr, indices, values, weights, other, reg, x, factor,
                  work[0])
        return
    for s in range(sketch_size):
        for a in range(k):
            sketched[s, a] = 0.0
    for entry in range(indptr[row], indptr[row + 1]):
        col = indices[entry]
        scale = sign[entry] * math.sqrt(weights[entry])
        target = bucket[entry]
        for a in range(k):
            sketched[target, a] += scale * other[col, a]
    # Lower triangle of (S A)^T (S A), accumulated one sketch row at a time
    # so that the innermost loop walks contiguous memory (a column-wise dot
    # product strides by k and made this O(s k^2) step dominate the sweep).
    for a in range(k):
        for b in range(a + 1):
            factor[a, b] = 0.0
    for s in range(sketch_size):
        for a in range(k):
            value = sketched[s, a]
            for b in range(a + 1):
                factor[a, b] += value * sketched[s, b]
    ridge_cholesky(factor, k, reg[row])
    pcg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol,
            work[0], work[1], work[2], work[3], work[4], factor, True)


@register_row_kernel("completion_predict", writes=("out",),
                     serial_below=SERIAL_ENTRIES)
def predict_entry(entry, rows, cols, left, right, out):
    """out[entry] = <left[rows[entry]], right[cols[entry]]>."""
    i = rows[entry]
    j = cols[entry]
    value = 0.0
    for a in range(left.shape[1]):
        value += left[i, a] * right[j, a]
    out[entry] = value
