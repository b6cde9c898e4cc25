"""Per-row least-squares solves over a CSR structure, for the CPU and the GPU.

One half-sweep of alternating minimisation solves, for every row ``i`` of a
sparse matrix of observations, the weighted ridge problem

    x_i = argmin_x  sum_{j in Omega_i} w_ij (m_ij - <y_j, x>)^2 + reg_i ||x||^2

against the fixed factor ``Y`` of the other side. Rows are independent, so a
row is the unit of parallelism: a ``prange`` iteration on the CPU and a
thread on the GPU. The row bodies below are plain Python with scalar loops;
:func:`_compile_all` compiles them once with ``numba.njit`` (CPU) and once with
``numba.cuda.jit(device=True)`` (GPU), so both devices run the same code.

Three ways to solve a row (``solver``):

* ``"exact"``: form the k x k Gram matrix and solve by Cholesky,
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

import functools
import math
import types

import numpy as np
from numba import prange

# The Cholesky bodies shared with the other families' row kernels; listed in
# _BODIES below so that they are compiled with the bodies that call them.
from .._small_linalg import cholesky_factor, cholesky_solve, relative_pivot_floor

__all__ = ["cpu_kernels", "cuda_kernels", "uses_sketch", "SOLVERS"]

SOLVERS = ("exact", "cg", "sketch")

# numba.cuda, imported on first GPU use. It must be a module global: the CUDA
# simulator swaps the module it finds in a kernel's globals for its fake one.
cuda = None

_CUDA_THREADS_PER_BLOCK = 128

# The sketch driver splits the rows into this many contiguous blocks (prange
# iterations) and allocates its per-row workspaces once per block. numba
# splits prange iterations evenly across threads either way; 256 blocks
# amortise the allocations and keep that split as fine as it was per row
# for any realistic thread count.
_ROW_BLOCKS = 256


# --------------------------------------------------------------------------
# Row bodies (plain Python; compiled by _compile_all for each target; the
# Cholesky factor and solve come from sparsesolve._small_linalg)
# --------------------------------------------------------------------------
def ridge_cholesky(gram, k, ridge):
    """Add ``ridge`` to the diagonal of ``gram`` and factor it in place.

    The pivot floor is relative, 1e-12 of the largest diagonal, which keeps
    the factor finite for rows with fewer observations than the rank.
    """
    for a in range(k):
        gram[a, a] += ridge
    cholesky_factor(gram, k, relative_pivot_floor(gram, k))


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


def cg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol,
           residual, direction, precond, product, diag, factor):
    """Jacobi-preconditioned CG: O(|Omega_i| k) per step, no k x k matrix."""
    pcg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol,
            residual, direction, precond, product, diag, factor, False)


def uses_sketch(count, sketch_size):
    """Whether ``sketch_row`` sketches a row of ``count`` observations.

    Shorter rows (at most twice the sketch size) are solved exactly: their
    sketch would hold nearly as much data as the row itself. Plain
    comparisons only, so it also works elementwise on NumPy arrays of counts.
    """
    return count > 2 * sketch_size


def sketch_row(row, indptr, indices, values, weights, other, reg, x, n_steps,
               tol, bucket, sign, sketched, factor, residual, direction,
               precond, product, diag):
    """Sketch-and-precondition: CountSketch, small Cholesky, then PCG."""
    k = other.shape[1]
    sketch_size = sketched.shape[0]
    if not uses_sketch(indptr[row + 1] - indptr[row], sketch_size):
        # The sketch would be as large as the data: solve directly.
        exact_row(row, indptr, indices, values, weights, other, reg, x, factor,
                  residual)
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
            residual, direction, precond, product, diag, factor, True)


def predict_entry(entry, rows, cols, left, right, out):
    """out[entry] = <left[rows[entry]], right[cols[entry]]>."""
    i = rows[entry]
    j = cols[entry]
    value = 0.0
    for a in range(left.shape[1]):
        value += left[i, a] * right[j, a]
    out[entry] = value


# Order matters: each body is compiled after the bodies it calls.
_BODIES = (
    "relative_pivot_floor", "cholesky_factor", "ridge_cholesky", "cholesky_solve",
    "exact_row", "precondition", "pcg_row", "cg_row", "uses_sketch", "sketch_row",
    "predict_entry",
)


def _compile_all(names, decorate, namespace=None):
    """Compile the module-level functions ``names`` with ``decorate``.

    Each compiled function is a copy of the plain one whose globals point at
    the compiled versions of the others, so one source serves numba's CPU
    target, its CUDA target and plain Python (in the tests). Copies carry no
    closure, which keeps numba's on-disk cache valid across processes.
    """
    namespace = dict(globals()) if namespace is None else namespace
    compiled = {}
    for name in names:
        plain = globals()[name]
        copy = types.FunctionType(plain.__code__, namespace, name, plain.__defaults__)
        copy.__qualname__ = plain.__qualname__
        copy.__module__ = plain.__module__
        copy.__doc__ = plain.__doc__
        compiled[name] = namespace[name] = decorate(copy)
    return compiled, namespace


# --------------------------------------------------------------------------
# CPU: numba njit + prange drivers
# --------------------------------------------------------------------------
def exact_pass(indptr, indices, values, weights, other, reg, x):
    """Exact solve of every row (CPU driver)."""
    k = other.shape[1]
    for row in prange(x.shape[0]):
        gram = np.empty((k, k), dtype=other.dtype)
        rhs = np.empty(k, dtype=other.dtype)
        exact_row(row, indptr, indices, values, weights, other, reg, x, gram, rhs)


def cg_pass(indptr, indices, values, weights, other, reg, x, n_steps, tol):
    """Warm-started Jacobi CG on every row (CPU driver)."""
    k = other.shape[1]
    for row in prange(x.shape[0]):
        work = np.empty((5, k), dtype=other.dtype)
        factor = np.empty((1, 1), dtype=other.dtype)
        cg_row(row, indptr, indices, values, weights, other, reg, x, n_steps, tol,
               work[0], work[1], work[2], work[3], work[4], factor)


def sketch_pass(indptr, indices, values, weights, other, reg, x, n_steps, tol,
                bucket, sign, sketch_size):
    """Sketch-and-precondition CG on every row (CPU driver)."""
    k = other.shape[1]
    n_rows = x.shape[0]
    # Workspaces are allocated once per block of rows, not once per row: the
    # sketch buffer is s x k (128 KiB at k = 64), and allocating it for every
    # row cost as much as the row's arithmetic when k is small.
    n_blocks = min(n_rows, _ROW_BLOCKS)
    for block in prange(n_blocks):
        sketched = np.empty((sketch_size, k), dtype=other.dtype)
        factor = np.empty((k, k), dtype=other.dtype)
        work = np.empty((5, k), dtype=other.dtype)
        for row in range(block * n_rows // n_blocks, (block + 1) * n_rows // n_blocks):
            sketch_row(row, indptr, indices, values, weights, other, reg, x,
                       n_steps, tol, bucket, sign, sketched, factor, work[0],
                       work[1], work[2], work[3], work[4])


def predict_pass(rows, cols, left, right, out):
    """Model value at every listed entry (CPU driver)."""
    for entry in prange(rows.shape[0]):
        predict_entry(entry, rows, cols, left, right, out)


@functools.cache
def cpu_kernels():
    """Return the CPU drivers ``{name: function}`` (compiled on first use).

    Every driver takes the CSR arrays of the side being solved, the fixed
    factor ``other`` (n_other x k), per-row ridge ``reg`` and the factor
    ``x`` (n_rows x k) that is updated in place (it is also the warm start).
    The plain functions above run the same loops in pure Python.
    """
    from numba import njit

    _, namespace = _compile_all(_BODIES, njit(nogil=True, cache=True))
    # The drivers share the namespace, so they call the compiled bodies.
    drivers, _ = _compile_all(
        ("exact_pass", "cg_pass", "sketch_pass", "predict_pass"),
        njit(parallel=True, nogil=True, cache=True),
        namespace,
    )
    return {
        "exact": drivers["exact_pass"],
        "cg": drivers["cg_pass"],
        "sketch": drivers["sketch_pass"],
        "predict": drivers["predict_pass"],
    }


# --------------------------------------------------------------------------
# GPU: numba.cuda grid kernels, one thread per row
# --------------------------------------------------------------------------
# Scratch space per launch, in elements: rows are processed in chunks so the
# per-thread workspaces (k x k Gram, sketch) stay within a bounded buffer.
_CUDA_WORKSPACE_ELEMENTS = 1 << 26


def _array_module(array):
    """NumPy for host arrays (CUDA simulator), CuPy for device arrays."""
    if isinstance(array, np.ndarray):
        return np
    from .._backend import require_cupy

    return require_cupy()


def _launch_chunks(n_rows, per_row):
    chunk = max(1, min(n_rows, _CUDA_WORKSPACE_ELEMENTS // max(per_row, 1)))
    for first in range(0, n_rows, chunk):
        size = min(chunk, n_rows - first)
        blocks = (size + _CUDA_THREADS_PER_BLOCK - 1) // _CUDA_THREADS_PER_BLOCK
        yield first, size, max(blocks, 1)


@functools.cache
def cuda_kernels():
    """Return the GPU launchers, with the same signatures as :func:`cpu_kernels`.

    They take CuPy arrays (NumPy arrays under ``NUMBA_ENABLE_CUDASIM=1``,
    which is how their logic is tested without a GPU).
    """
    global cuda
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba always ships cuda
        raise RuntimeError(
            "The GPU path needs numba-cuda; install sparsesolve[gpu]."
        ) from exc

    bodies, _ = _compile_all(_BODIES, cuda.jit(device=True))
    exact_row = bodies["exact_row"]
    cg_row = bodies["cg_row"]
    sketch_row = bodies["sketch_row"]
    predict_entry = bodies["predict_entry"]

    @cuda.jit
    def exact_kernel(first, size, indptr, indices, values, weights, other, reg, x,
                     gram, rhs):
        thread = cuda.grid(1)
        if thread < size:
            exact_row(first + thread, indptr, indices, values, weights, other, reg, x,
                      gram[thread], rhs[thread])

    @cuda.jit
    def cg_kernel(first, size, indptr, indices, values, weights, other, reg, x,
                  n_steps, tol, work, factor):
        thread = cuda.grid(1)
        if thread < size:
            scratch = work[thread]
            cg_row(first + thread, indptr, indices, values, weights, other, reg, x,
                   n_steps, tol, scratch[0], scratch[1], scratch[2], scratch[3],
                   scratch[4], factor)

    @cuda.jit
    def sketch_kernel(first, size, indptr, indices, values, weights, other, reg, x,
                      n_steps, tol, bucket, sign, sketched, factor, work):
        thread = cuda.grid(1)
        if thread < size:
            scratch = work[thread]
            sketch_row(first + thread, indptr, indices, values, weights, other, reg,
                       x, n_steps, tol, bucket, sign, sketched[thread],
                       factor[thread], scratch[0], scratch[1], scratch[2],
                       scratch[3], scratch[4])

    @cuda.jit
    def predict_kernel(rows, cols, left, right, out):
        entry = cuda.grid(1)
        if entry < rows.shape[0]:
            predict_entry(entry, rows, cols, left, right, out)

    def exact(indptr, indices, values, weights, other, reg, x):
        module, k = _array_module(x), other.shape[1]
        for first, size, blocks in _launch_chunks(x.shape[0], k * k + k):
            gram = module.empty((size, k, k), dtype=other.dtype)
            rhs = module.empty((size, k), dtype=other.dtype)
            exact_kernel[blocks, _CUDA_THREADS_PER_BLOCK](
                first, size, indptr, indices, values, weights, other, reg, x, gram, rhs
            )

    def cg(indptr, indices, values, weights, other, reg, x, n_steps, tol):
        module, k = _array_module(x), other.shape[1]
        factor = module.empty((1, 1), dtype=other.dtype)
        for first, size, blocks in _launch_chunks(x.shape[0], 5 * k):
            work = module.empty((size, 5, k), dtype=other.dtype)
            cg_kernel[blocks, _CUDA_THREADS_PER_BLOCK](
                first, size, indptr, indices, values, weights, other, reg, x,
                n_steps, tol, work, factor
            )

    def sketch(indptr, indices, values, weights, other, reg, x, n_steps, tol,
               bucket, sign, sketch_size):
        module, k = _array_module(x), other.shape[1]
        per_row = sketch_size * k + k * k + 5 * k
        for first, size, blocks in _launch_chunks(x.shape[0], per_row):
            sketched = module.empty((size, sketch_size, k), dtype=other.dtype)
            factor = module.empty((size, k, k), dtype=other.dtype)
            work = module.empty((size, 5, k), dtype=other.dtype)
            sketch_kernel[blocks, _CUDA_THREADS_PER_BLOCK](
                first, size, indptr, indices, values, weights, other, reg, x,
                n_steps, tol, bucket, sign, sketched, factor, work
            )

    def predict(rows, cols, left, right, out):
        threads = _CUDA_THREADS_PER_BLOCK
        blocks = (rows.shape[0] + threads - 1) // threads
        predict_kernel[max(blocks, 1), _CUDA_THREADS_PER_BLOCK](
            rows, cols, left, right, out
        )

    return {"exact": exact, "cg": cg, "sketch": sketch, "predict": predict}
