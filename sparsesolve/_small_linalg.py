"""Small dense Cholesky factor and solve, as row bodies for CPU and GPU kernels.

Per-row solvers (a least-squares row of matrix completion, the support refit
of a sparse code) each factor a small symmetric positive definite matrix that
lives in the workspace of one row. These bodies are plain Python on scalars
and preallocated arrays, with no allocation and no library call, so the same
source is compiled with ``numba.njit`` for a CPU ``prange`` driver and with
``numba.cuda.jit(device=True)`` for a GPU thread, and runs as it is in the
tests. Each row kernel that needs them lists them among its bodies; the
backend compiles them with the row kernel that calls them.

Only the leading ``n x n`` block of the arrays is read and written, so one
workspace sized for the largest system serves every row. The bodies use no
module-level names other than :mod:`math`: a caller may compile them in its
own module's namespace.
"""

from __future__ import annotations

import math

__all__ = ["cholesky_factor", "cholesky_solve", "relative_pivot_floor"]


def cholesky_factor(matrix, n, pivot_floor):
    """Overwrite the lower triangle of ``matrix[:n, :n]`` with its Cholesky factor.

    Only the lower triangle is read (the upper one is left as it was). A
    pivot at or below ``pivot_floor`` (a singular or indefinite matrix, or
    round-off on a nearly singular one) is replaced by the floor, which acts
    as a tiny extra ridge on that direction instead of producing NaN.

    Parameters
    ----------
    matrix : array of shape (>= n, >= n)
        Symmetric matrix, factored in place.
    n : int
        Size of the system.
    pivot_floor : float
        Smallest pivot accepted; must be positive.

    Returns
    -------
    int
        Number of pivots that were floored (0 for a positive definite matrix
        whose pivots all exceed the floor): a caller that needs the exact
        factor treats a nonzero count as failure.

    Examples
    --------
    >>> import numpy as np
    >>> matrix = np.array([[4.0, 2.0], [2.0, 3.0]])
    >>> cholesky_factor(matrix, 2, 1e-300)
    0
    >>> np.tril(matrix)
    array([[2.        , 0.        ],
           [1.        , 1.41421356]])
    """
    floored = 0
    for col in range(n):
        pivot = matrix[col, col]
        for inner in range(col):
            pivot -= matrix[col, inner] * matrix[col, inner]
        if not pivot > pivot_floor:
            pivot = pivot_floor
            floored += 1
        diagonal = math.sqrt(pivot)
        matrix[col, col] = diagonal
        for row in range(col + 1, n):
            value = matrix[row, col]
            for inner in range(col):
                value -= matrix[row, inner] * matrix[col, inner]
            matrix[row, col] = value / diagonal
    return floored


def relative_pivot_floor(matrix, n):
    """The pivot floor of :func:`cholesky_factor` for ``matrix[:n, :n]``.

    ``1e-12`` times its largest diagonal entry (plus the smallest normal
    float64 scale, so that the floor stays positive): below that a pivot is
    round-off, and dividing by the square root of the floor cannot overflow
    for entries of the matrix's own scale.

    Examples
    --------
    >>> import numpy as np
    >>> float(relative_pivot_floor(np.diag([1.0, 4.0]), 2))
    4e-12
    """
    largest = 0.0
    for index in range(n):
        if matrix[index, index] > largest:
            largest = matrix[index, index]
    return largest * 1e-12 + 1e-300


def cholesky_solve(factor, rhs, out, n):
    """Solve ``L L^T out = rhs`` with the lower factor ``L`` in ``factor[:n, :n]``.

    ``out`` may be ``rhs`` itself (each entry of ``rhs`` is read before the
    same entry of ``out`` is written).

    Parameters
    ----------
    factor : array of shape (>= n, >= n)
        Lower triangle from :func:`cholesky_factor`.
    rhs : array of shape (>= n,)
        Right-hand side.
    out : array of shape (>= n,)
        Solution, written in place.
    n : int
        Size of the system.

    Examples
    --------
    >>> import numpy as np
    >>> matrix = np.array([[4.0, 2.0], [2.0, 3.0]])
    >>> _ = cholesky_factor(matrix, 2, 1e-300)
    >>> out = np.empty(2)
    >>> cholesky_solve(matrix, np.array([2.0, 1.0]), out, 2)
    >>> out
    array([0.5, 0. ])
    """
    for row in range(n):
        value = rhs[row]
        for inner in range(row):
            value -= factor[row, inner] * out[inner]
        out[row] = value / factor[row, row]
    for row in range(n - 1, -1, -1):
        value = out[row]
        for inner in range(row + 1, n):
            value -= factor[inner, row] * out[inner]
        out[row] = value / factor[row, row]
