"""Per-pixel fully constrained least squares, compiled for the CPU and the GPU.

Each pixel solves the small quadratic program

    minimise 0.5 a^T G a - b^T a   subject to   a >= 0,  sum(a) = 1,

where ``G = E E^T`` is the (shared) Gram matrix of the endmembers and
``b = E x`` the pixel's correlations with them. The scalar body
:func:`simplex_qp_pixel` is a primal active-set method: it is exact (finite
termination, constraints hold to rounding) and needs only loops and scalar
arithmetic, so the same Python function is compiled (by
:mod:`sparsesolve._backend`, as the row kernel ``"unmixing_simplex_qp"``) with
``numba.njit`` for a ``prange`` CPU driver and with
``numba.cuda.jit(device=True)`` for a one-thread-per-pixel GPU kernel.
"""

from __future__ import annotations

import numpy as np

from .._backend import register_row_kernel


def simplex_qp_pixel(gram, b, out, passive, kkt, z, n_components, tolerance):
    """Solve one pixel's simplex-constrained QP in place into ``out``.

    Parameters
    ----------
    gram : 2-D array, shape (n_components, n_components)
        ``E E^T``, symmetric positive (semi)definite.
    b : 1-D array, shape (n_components,)
        ``E x`` for this pixel.
    out : 1-D array, shape (n_components,)
        Receives the abundances.
    passive : 1-D array, length >= n_components
        Scratch; 1.0 marks coordinates that are free (not clamped at zero).
    kkt : 1-D array, length >= (n_components + 1) * (n_components + 2)
        Scratch for the augmented KKT system, row-major.
    z : 1-D array, length >= 2 * (n_components + 1)
        Scratch for the equality-constrained solution and current iterate.
    n_components : int
        Number of endmembers.
    tolerance : float
        Relative tolerance of the multiplier test.
    """
    k = n_components
    width = k + 2  # augmented matrix [KKT | rhs]
    # Start at the barycentre with every coordinate free: feasible.
    for i in range(k):
        passive[i] = 1.0
        z[k + 1 + i] = 1.0 / k
    scale = 0.0
    for i in range(k):
        scale += abs(gram[i, i]) + abs(b[i])
    scale = scale / k + 1e-300
    for _ in range(4 * k + 20):
        # Equality-constrained QP on the free set: [G_PP 1; 1^T 0][z; nu] = [b; 1]
        # written on all k coordinates, clamped ones replaced by z_i = 0.
        for i in range(k + 1):
            for j in range(width):
                kkt[i * width + j] = 0.0
        for i in range(k):
            if passive[i] > 0.5:
                for j in range(k):
                    if passive[j] > 0.5:
                        kkt[i * width + j] = gram[i, j]
                kkt[i * width + k] = 1.0
                kkt[k * width + i] = 1.0
                kkt[i * width + k + 1] = b[i]
            else:
                kkt[i * width + i] = 1.0
        kkt[k * width + k + 1] = 1.0
        # Gaussian elimination with partial pivoting (the system is symmetric
        # indefinite, so pivoting matters).
        for col in range(k + 1):
            pivot = col
            best = abs(kkt[col * width + col])
            for row in range(col + 1, k + 1):
                value = abs(kkt[row * width + col])
                if value > best:
                    best = value
                    pivot = row
            if best < 1e-300:
                continue
            if pivot != col:
                for j in range(width):
                    swap = kkt[col * width + j]
                    kkt[col * width + j] = kkt[pivot * width + j]
                    kkt[pivot * width + j] = swap
            for row in range(col + 1, k + 1):
                factor = kkt[row * width + col] / kkt[col * width + col]
                if factor != 0.0:
                    for j in range(col, width):
                        kkt[row * width + j] -= factor * kkt[col * width + j]
        for row in range(k, -1, -1):
            total = kkt[row * width + k + 1]
            for j in range(row + 1, k + 1):
                total -= kkt[row * width + j] * z[j]
            diagonal = kkt[row * width + row]
            z[row] = total / diagonal if abs(diagonal) > 1e-300 else 0.0
        nu = z[k]
        # Is the free-set solution feasible?
        feasible = True
        for i in range(k):
            if passive[i] > 0.5 and z[i] < 0.0:
                feasible = False
        if feasible:
            for i in range(k):
                z[k + 1 + i] = z[i] if passive[i] > 0.5 else 0.0
            # Multipliers of the clamped coordinates: lambda_j = (G a - b)_j + nu.
            worst = -tolerance * scale
            entering = -1
            for j in range(k):
                if passive[j] < 0.5:
                    gradient = -b[j]
                    for i in range(k):
                        gradient += gram[j, i] * z[k + 1 + i]
                    multiplier = gradient + nu
                    if multiplier < worst:
                        worst = multiplier
                        entering = j
            if entering < 0:
                break
            passive[entering] = 1.0
        else:
            # Walk from the current feasible point towards z until the first
            # free coordinate hits zero, then clamp it.
            step = 1.0
            blocking = -1
            for i in range(k):
                if passive[i] > 0.5 and z[i] < 0.0:
                    current = z[k + 1 + i]
                    ratio = current / (current - z[i])
                    if blocking < 0 or ratio < step:
                        step = ratio
                        blocking = i
            for i in range(k):
                if passive[i] > 0.5:
                    current = z[k + 1 + i]
                    moved = current + step * (z[i] - current)
                    # The blocking coordinate is exactly zero in exact
                    # arithmetic; clamp it (and any rounding-level ties).
                    if i == blocking or moved <= 1e-15:
                        moved = 0.0
                        passive[i] = 0.0
                    z[k + 1 + i] = moved
    total = 0.0
    for i in range(k):
        value = z[k + 1 + i]
        if value < 0.0:
            value = 0.0
        out[i] = value
        total += value
    # The KKT solve gives sum 1 to rounding; renormalising removes the
    # rounding left by clamping tiny negatives.
    if total > 0.0:
        for i in range(k):
            out[i] = out[i] / total


def _simplex_qp_workspaces(gram, correlations, out, tolerance):
    # The solve runs in float64 whatever the dtype of the pixels (the KKT
    # systems are small and indefinite); the result is written at the end.
    k = correlations.shape[1]
    return [((k,), np.float64), (((k + 1) * (k + 2),), np.float64),
            ((2 * (k + 1),), np.float64), ((k,), np.float64)]


@register_row_kernel("unmixing_simplex_qp", workspace=_simplex_qp_workspaces,
                     writes=("out",))
def simplex_qp_row(row, gram, correlations, out, tolerance, passive, kkt, z,
                   abundances):
    """Solve pixel ``row`` (linear term ``correlations[row]``) into ``out[row]``.

    Parameters
    ----------
    row : int
        Pixel index.
    gram : 2-D float64 array, shape (n_components, n_components)
        Shared quadratic term.
    correlations : 2-D array, shape (n_pixels, n_components)
        Linear terms, one row per pixel.
    out : 2-D array, shape (n_pixels, n_components)
        Receives the abundances (in its own dtype).
    tolerance : float
        Relative tolerance of the multiplier test.
    passive, kkt, z, abundances : 1-D float64 arrays
        Workspaces (see :func:`simplex_qp_pixel`; ``abundances`` holds the
        float64 result before it is stored).
    """
    k = correlations.shape[1]
    simplex_qp_pixel(gram, correlations[row], abundances, passive, kkt, z, k,
                     tolerance)
    for i in range(k):
        out[row, i] = abundances[i]
