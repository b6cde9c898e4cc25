"""Fused CPU kernels of the multilevel cycle: CSR products with their updates.

A Chebyshev step is a sparse product followed by three vector updates; run
one after the other through SciPy and NumPy, each reads and writes whole
vectors, and the updates cost as much memory traffic as the product. These
numba kernels do the product and the updates of one row together, in one
pass, in parallel over rows (rows are independent: each thread writes only
its own rows and reads only vectors that the kernel does not write). They
are compiled for the host only, by :func:`sparsesolve._backend.cpu_kernel`
(serially too, for the small vectors of coarse levels). The
generic array-API code in :mod:`~sparsesolve.poisson._multilevel` is their
reference (tests compare the two) and runs every other namespace (CuPy).
"""

from __future__ import annotations

import numpy as np

from .._backend import cpu_kernel, prange

__all__ = [
    "chebyshev_step",
    "csr_image_and_dots",
    "stencil_chebyshev_step",
    "stencil_diagonals",
    "stencil_image_and_dots",
    "update_pair",
]


# Rows below which a kernel runs on the calling thread (a 16^3 grid): waking
# numba's thread pool then costs more than the work, and on a loaded machine
# far more (milliseconds per call).
_SERIAL_ROWS = 16**3


def _csr_rows(indptr, *args):
    return indptr.size - 1


def _vector_rows(vector, *args):
    return vector.size


@cpu_kernel(parallel=True, serial_below=_SERIAL_ROWS, work=_csr_rows)
def chebyshev_step(indptr, indices, data, inverse_diagonal, step, residual,
                   correction, next_step, keep, weight, last):
    """``residual -= A step``; unless ``last``, the next step and its sum.

    ``next_step = keep * step + weight * D^{-1} residual`` and
    ``correction += next_step``, row by row after the row's product.
    ``residual``, ``correction`` and ``next_step`` are written in place.
    """
    n = indptr.size - 1
    for row in prange(n):
        total = 0.0
        for position in range(indptr[row], indptr[row + 1]):
            total += data[position] * step[indices[position]]
        value = residual[row] - total
        residual[row] = value
        if not last:
            new = keep * step[row] + weight * inverse_diagonal[row] * value
            next_step[row] = new
            correction[row] += new


@cpu_kernel(parallel=True, serial_below=_SERIAL_ROWS, work=_csr_rows)
def csr_image_and_dots(indptr, indices, data, direction, residual, image):
    """``image = A direction``; return ``direction . image, direction . residual``."""
    n = indptr.size - 1
    curvature = 0.0
    gain = 0.0
    for row in prange(n):
        total = 0.0
        for position in range(indptr[row], indptr[row + 1]):
            total += data[position] * direction[indices[position]]
        image[row] = total
        curvature += direction[row] * total
        gain += direction[row] * residual[row]
    return curvature, gain


@cpu_kernel(parallel=True, serial_below=_SERIAL_ROWS, work=_vector_rows)
def update_pair(correction, direction, residual, image, step):
    """``correction += step * direction`` and ``residual -= step * image``."""
    for row in prange(correction.size):
        correction[row] += step * direction[row]
        residual[row] -= step * image[row]


def as_kernel_arrays(matrix):
    """CSR arrays of a SciPy matrix with the index types the kernels compile for."""
    return (np.ascontiguousarray(matrix.indptr, dtype=np.int64),
            np.ascontiguousarray(matrix.indices, dtype=np.int64),
            np.ascontiguousarray(matrix.data))


# --------------------------------------------------------------------------
# Seven-point stencils: the same steps without index arrays
# --------------------------------------------------------------------------
# A Poisson matrix on a grid (and every Galerkin aggregate of it) has its
# entries on seven diagonals, offsets 0, +-1, +-nx and +-nx*ny. Stored as
# the main diagonal and the three upper ones (the lower ones are the same
# values shifted, by symmetry), a product reads 4 coefficients per row
# instead of 7 values and 7 indices, and its inner loop has no indirection,
# so it vectorises. Rows closer than the largest offset to either end take
# the guarded path.
_BLOCK = 2048


def stencil_diagonals(matrix, shape):
    """Main and upper grid diagonals of a symmetric ``matrix``, or None.

    Returns ``(main, upper, offsets)``: ``upper[k, i] = A[i, i + offsets[k]]``
    (zero past the end) for the offsets ``1, nx, nx * ny`` of ``shape``.
    None when some nonzero entry lies off those seven diagonals (each
    nonzero lies on exactly one diagonal, so counting them is enough), or
    the grid is too flat for three distinct offsets; then the CSR kernels
    are used.
    """
    nz, ny, nx = shape
    offsets = np.array([1, nx, nx * ny], dtype=np.int64)
    n = matrix.shape[0]
    if n < 2 * offsets[-1] + 2 or len(set(offsets.tolist())) < 3:
        return None
    main = np.ascontiguousarray(matrix.diagonal())
    upper = np.zeros((3, n), dtype=matrix.dtype)
    on_diagonals = np.count_nonzero(main)
    for k, offset in enumerate(offsets):
        upper[k, : n - offset] = matrix.diagonal(int(offset))
        on_diagonals += 2 * np.count_nonzero(upper[k])
    if on_diagonals != np.count_nonzero(matrix.data):
        return None
    return main, upper, offsets


@cpu_kernel(inline=True)
def _guarded_row(i, n, main, upper, offsets, vector):
    total = main[i] * vector[i]
    for k in range(3):
        offset = offsets[k]
        if i >= offset:
            total += upper[k, i - offset] * vector[i - offset]
        if i + offset < n:
            total += upper[k, i] * vector[i + offset]
    return total


@cpu_kernel(inline=True)
def _inner_row(i, main, upper, o1, o2, o3, vector):
    return (main[i] * vector[i]
            + upper[0, i - o1] * vector[i - o1] + upper[0, i] * vector[i + o1]
            + upper[1, i - o2] * vector[i - o2] + upper[1, i] * vector[i + o2]
            + upper[2, i - o3] * vector[i - o3] + upper[2, i] * vector[i + o3])


@cpu_kernel(parallel=True, serial_below=_SERIAL_ROWS, work=_vector_rows)
def stencil_chebyshev_step(main, upper, offsets, inverse_diagonal, step, residual,
                           correction, next_step, keep, weight, last):
    """:func:`chebyshev_step` for a matrix stored by :func:`stencil_diagonals`."""
    n = main.size
    o1, o2, o3 = offsets[0], offsets[1], offsets[2]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for block in prange(n_blocks):
        start = block * _BLOCK
        stop = min(start + _BLOCK, n)
        for i in range(start, stop):
            if i >= o3 and i + o3 < n:
                product = _inner_row(i, main, upper, o1, o2, o3, step)
            else:
                product = _guarded_row(i, n, main, upper, offsets, step)
            value = residual[i] - product
            residual[i] = value
            if not last:
                new = keep * step[i] + weight * inverse_diagonal[i] * value
                next_step[i] = new
                correction[i] += new


@cpu_kernel(parallel=True, serial_below=_SERIAL_ROWS, work=_vector_rows)
def stencil_image_and_dots(main, upper, offsets, direction, residual, image):
    """:func:`csr_image_and_dots` for a matrix stored by :func:`stencil_diagonals`."""
    n = main.size
    o1, o2, o3 = offsets[0], offsets[1], offsets[2]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    curvature = 0.0
    gain = 0.0
    for block in prange(n_blocks):
        start = block * _BLOCK
        stop = min(start + _BLOCK, n)
        block_curvature = 0.0
        block_gain = 0.0
        for i in range(start, stop):
            if i >= o3 and i + o3 < n:
                product = _inner_row(i, main, upper, o1, o2, o3, direction)
            else:
                product = _guarded_row(i, n, main, upper, offsets, direction)
            image[i] = product
            block_curvature += direction[i] * product
            block_gain += direction[i] * residual[i]
        curvature += block_curvature
        gain += block_gain
    return curvature, gain
