"""Fused CPU kernels of the multilevel cycle: CSR products with their updates.

A Chebyshev step is a sparse product followed by three vector updates; run
one after the other through SciPy and NumPy, each reads and writes whole
vectors, and the updates cost as much memory traffic as the product. These
numba kernels do the product and the updates of one row together, in one
pass, in parallel over rows (rows are independent: each thread writes only
its own rows and reads only vectors that the kernel does not write). The
generic array-API code in :mod:`~sparsesolve.poisson._multilevel` is their
reference (tests compare the two) and runs every other namespace (CuPy).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["chebyshev_step", "csr_image_and_dots", "update_pair"]


@numba.njit(cache=True, nogil=True, parallel=True)
def chebyshev_step(indptr, indices, data, inverse_diagonal, step, residual,
                   correction, next_step, keep, weight, last):
    """``residual -= A step``; unless ``last``, the next step and its sum.

    ``next_step = keep * step + weight * D^{-1} residual`` and
    ``correction += next_step``, row by row after the row's product.
    ``residual``, ``correction`` and ``next_step`` are written in place.
    """
    n = indptr.size - 1
    for row in numba.prange(n):
        total = 0.0
        for position in range(indptr[row], indptr[row + 1]):
            total += data[position] * step[indices[position]]
        value = residual[row] - total
        residual[row] = value
        if not last:
            new = keep * step[row] + weight * inverse_diagonal[row] * value
            next_step[row] = new
            correction[row] += new


@numba.njit(cache=True, nogil=True, parallel=True)
def csr_image_and_dots(indptr, indices, data, direction, residual, image):
    """``image = A direction``; return ``direction . image, direction . residual``."""
    n = indptr.size - 1
    curvature = 0.0
    gain = 0.0
    for row in numba.prange(n):
        total = 0.0
        for position in range(indptr[row], indptr[row + 1]):
            total += data[position] * direction[indices[position]]
        image[row] = total
        curvature += direction[row] * total
        gain += direction[row] * residual[row]
    return curvature, gain


@numba.njit(cache=True, nogil=True, parallel=True)
def update_pair(correction, direction, residual, image, step):
    """``correction += step * direction`` and ``residual -= step * image``."""
    for row in numba.prange(correction.size):
        correction[row] += step * direction[row]
        residual[row] -= step * image[row]


def as_kernel_arrays(matrix):
    """CSR arrays of a SciPy matrix with the index types the kernels compile for."""
    return (np.ascontiguousarray(matrix.indptr, dtype=np.int64),
            np.ascontiguousarray(matrix.indices, dtype=np.int64),
            np.ascontiguousarray(matrix.data))
