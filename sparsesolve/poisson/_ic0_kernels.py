"""Incomplete Cholesky IC(0) factorisation and its triangular solves (numba).

The factor ``L`` keeps exactly the sparsity of the lower triangle of ``A``
(stored CSR, column indices sorted, diagonal last in each row), so that
``(L L^T)_ij = A_ij`` wherever ``A_ij`` is stored. Both the factorisation and
the triangular solves are sequential recurrences (row ``i`` needs the rows
before it), so these kernels are serial host loops
(:func:`sparsesolve._backend.cpu_kernel`), not parallel ones.

Poisson matrices from :func:`~sparsesolve.poisson.poisson_matrix` may have
all-zero rows (solid cells) and, for closed regions, a singular block whose
last pivot cancels to rounding noise. Both get a safe pivot: ``1`` for an
empty row (the unknown decouples) and the original diagonal when the pivot
would fall below ``pivot_floor * A_ii`` (the usual fix in fluid solvers).
"""

from __future__ import annotations

import numpy as np

from .._backend import cpu_kernel

__all__ = ["ic0_factor", "ic0_solve"]


@cpu_kernel
def ic0_factor(indptr, indices, data, pivot_floor):
    """Return the values of ``L`` on the pattern ``(indptr, indices)``.

    ``indptr, indices, data`` are the CSR arrays of ``tril(A)`` with sorted
    indices and the diagonal stored (last) in every row. ``data`` may be real
    (``L L^T = A`` on the pattern) or complex for a Hermitian ``A``
    (``L L^H = A``): the off-diagonal recurrence then pairs row ``i`` with the
    conjugate of row ``k``, and the pivots ``A_ii - sum_j |L_ij|^2`` stay
    real (Golub and Van Loan, *Matrix Computations*, 4th ed., sec. 4.2 and
    11.5.8).
    """
    n = indptr.size - 1
    values = np.empty_like(data)
    for i in range(n):
        start, end = indptr[i], indptr[i + 1]
        diagonal_position = end - 1
        for p in range(start, diagonal_position):
            k = indices[p]
            # Sparse dot of row i (columns < k, already final) with the
            # conjugate of row k (columns < k): a merge of two sorted lists.
            total = data[p]
            a, a_end = start, p
            b, b_end = indptr[k], indptr[k + 1] - 1
            while a < a_end and b < b_end:
                col_a, col_b = indices[a], indices[b]
                if col_a == col_b:
                    total -= values[a] * np.conj(values[b])
                    a += 1
                    b += 1
                elif col_a < col_b:
                    a += 1
                else:
                    b += 1
            values[p] = total / values[indptr[k + 1] - 1]
        # The diagonal of a Hermitian matrix is real; so is every pivot.
        original = data[diagonal_position].real
        pivot = original
        for p in range(start, diagonal_position):
            pivot -= values[p].real * values[p].real + values[p].imag * values[p].imag
        if original <= 0.0:
            pivot = 1.0
        elif pivot < pivot_floor * original:
            pivot = original
        values[diagonal_position] = np.sqrt(pivot)
    return values


@cpu_kernel
def ic0_solve(indptr, indices, values, rhs):
    """Return ``z = (L L^H)^{-1} rhs`` for the IC(0) factor from ``ic0_factor``.

    ``rhs`` must have one entry per row of ``L`` and a dtype that holds the
    result (complex when ``values`` is); the caller checks both, and the
    length is checked again here so that a wrong vector can never make the
    loops read or write outside the arrays.
    """
    n = indptr.size - 1
    if rhs.shape[0] != n:
        raise ValueError("ic0_solve: rhs length differs from the factor size")
    y = rhs.copy()
    # Forward substitution L y = rhs, row by row.
    for i in range(n):
        total = y[i]
        for p in range(indptr[i], indptr[i + 1] - 1):
            total -= values[p] * y[indices[p]]
        y[i] = total / values[indptr[i + 1] - 1]
    # Backward substitution L^H z = y, column by column of L^H = row of L.
    for i in range(n - 1, -1, -1):
        y[i] /= values[indptr[i + 1] - 1]
        zi = y[i]
        for p in range(indptr[i], indptr[i + 1] - 1):
            y[indices[p]] -= np.conj(values[p]) * zi
    return y
