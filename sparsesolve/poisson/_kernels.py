"""Incomplete Cholesky IC(0) factorisation and its triangular solves (numba).

The factor ``L`` keeps exactly the sparsity of the lower triangle of ``A``
(stored CSR, column indices sorted, diagonal last in each row), so that
``(L L^T)_ij = A_ij`` wherever ``A_ij`` is stored. Both the factorisation and
the triangular solves are sequential recurrences (row ``i`` needs the rows
before it), so these kernels are plain ``njit`` loops, not ``prange`` ones.

Poisson matrices from :func:`~sparsesolve.poisson.poisson_matrix` may have
all-zero rows (solid cells) and, for closed regions, a singular block whose
last pivot cancels to rounding noise. Both get a safe pivot: ``1`` for an
empty row (the unknown decouples) and the original diagonal when the pivot
would fall below ``pivot_floor * A_ii`` (the usual fix in fluid solvers).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["conv3x3x3", "ic0_factor", "ic0_solve"]


@numba.njit(cache=True, nogil=True)
def ic0_factor(indptr, indices, data, pivot_floor):
    """Return the values of ``L`` on the pattern ``(indptr, indices)``.

    ``indptr, indices, data`` are the CSR arrays of ``tril(A)`` with sorted
    indices and the diagonal stored (last) in every row.
    """
    n = indptr.size - 1
    values = np.empty_like(data)
    for i in range(n):
        start, end = indptr[i], indptr[i + 1]
        diagonal_position = end - 1
        for p in range(start, diagonal_position):
            k = indices[p]
            # Sparse dot of row i (columns < k, already final) with row k
            # (columns < k): a merge of two sorted index lists.
            total = data[p]
            a, a_end = start, p
            b, b_end = indptr[k], indptr[k + 1] - 1
            while a < a_end and b < b_end:
                col_a, col_b = indices[a], indices[b]
                if col_a == col_b:
                    total -= values[a] * values[b]
                    a += 1
                    b += 1
                elif col_a < col_b:
                    a += 1
                else:
                    b += 1
            values[p] = total / values[indptr[k + 1] - 1]
        pivot = data[diagonal_position]
        for p in range(start, diagonal_position):
            pivot -= values[p] * values[p]
        original = data[diagonal_position]
        if original <= 0.0:
            pivot = 1.0
        elif pivot < pivot_floor * original:
            pivot = original
        values[diagonal_position] = np.sqrt(pivot)
    return values


@numba.njit(cache=True, nogil=True)
def ic0_solve(indptr, indices, values, rhs):
    """Return ``z = (L L^T)^{-1} rhs`` for the IC(0) factor from ``ic0_factor``."""
    n = indptr.size - 1
    y = rhs.copy()
    # Forward substitution L y = rhs, row by row.
    for i in range(n):
        total = y[i]
        for p in range(indptr[i], indptr[i + 1] - 1):
            total -= values[p] * y[indices[p]]
        y[i] = total / values[indptr[i + 1] - 1]
    # Backward substitution L^T z = y, column by column of L^T = row of L.
    for i in range(n - 1, -1, -1):
        y[i] /= values[indptr[i + 1] - 1]
        zi = y[i]
        for p in range(indptr[i], indptr[i + 1] - 1):
            y[indices[p]] -= values[p] * zi
    return y


# The direction network's convolution lives with the network's other kernels;
# re-exported here, where it used to be.
from ._conv_kernels import conv3x3x3  # noqa: E402
