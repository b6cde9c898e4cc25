"""Learned multilevel search directions: smoothing, then the network on a coarse grid.

The direction network costs about 2,000 floating-point operations per cell,
a sparse matrix-vector product about 14, so calling it on the full grid at
every iteration cannot beat a classical solver on a CPU however fast the
convolutions run. Here it is used where it pays: as the *coarse-grid solver*
of a multigrid V-cycle. The cycle builds, once per matrix,

* a hierarchy of grids, each cell of a coarser grid the union of a 2 x 2 x 2
  block of the finer one (plain aggregation, ``P`` the 0/1 matrix that copies
  a coarse value onto its block), and Galerkin operators ``A_c = P^T A P``,
  which keep the 7-point pattern, solid cells and boundary conditions of the
  caller's matrix (Neumann, obstacles, mixed) without being told about them;
* on every level but the coarsest, a Chebyshev polynomial smoother in
  ``D^{-1} A`` aimed at the upper part of the spectrum, ``[0.3, 1.1]`` times
  the largest eigenvalue estimated by power iteration (the interval of the
  Chebyshev smoothers in hypre's BoomerAMG; Adams, Brezina, Hu and Tuminaro,
  J. Comput. Phys. 188, 2003, for polynomial smoothing in multigrid);

and then, for a residual ``r``, returns the V-cycle correction ``q`` and
``A q``: pre-smooth, restrict, recurse, prolong, post-smooth. On the coarsest
grid (at most ``coarsest_size`` cells a side) the network's direction for the
normalised residual is the coarse solve. Aggregation undershoots the coarse
correction by a factor of about two and the network's output has no fixed
scale, so every coarse correction is scaled by its exact energy-minimising
step, ``(p . r) / (p . A p)`` (as in the K-cycle of Notay and Vassilevski,
Numer. Linear Algebra Appl. 15, 2008, with one vector instead of two).

``q`` is a nonlinear function of ``r`` (the network has ReLUs), so it is used
as the search direction of the flexible conjugate-direction iteration in
:mod:`~sparsesolve.poisson._dcdm`, which A-orthogonalises and line-searches
every direction and therefore converges whatever the direction is. With
``coarse_solver="smoother"`` (a Chebyshev sweep in place of the network) or
``"none"`` (no coarsest-level correction) the same cycle measures what the
network contributes.

Written against the array namespace of the residual; the hierarchy is built
on the host with SciPy and moved to the device of the caller's matrix once.
On the CPU the smoothing sweeps and line steps run through the fused numba
kernels of :mod:`~sparsesolve.poisson._cycle_kernels` (the same arithmetic in
fewer passes over memory, on every core).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import scipy.sparse as sp

from .._backend import kernel_target, sparse_like, to_namespace
from . import _cycle_kernels

__all__ = ["MultilevelHierarchy", "chebyshev_smooth"]

# Chebyshev smoothing interval, as fractions of the estimated largest
# eigenvalue of D^{-1} A: the upper 70 % of the spectrum is damped (the
# lower part is the coarse grids' job); the top is widened by 10 % because a
# few power steps underestimate the largest eigenvalue.
_SMOOTH_LOW, _SMOOTH_HIGH = 0.3, 1.1
_POWER_STEPS = 15
# The network needs at least 4 cells a side on the grid it sees (one pooling
# level, then 3x3x3 convolutions).
_MIN_COARSE_SIDE = 4


@dataclasses.dataclass
class _Level:
    """One grid of the hierarchy, with its smoother and line step (any namespace)."""

    operator: object          # CSR matrix of this level (SciPy or cupyx)
    inverse_diagonal: object  # 1 / diag(A), 0 on empty rows (solid cells)
    lambda_max: float         # estimated largest eigenvalue of D^{-1} A
    shape: tuple              # grid of this level
    fluid: np.ndarray         # host mask of cells that carry an unknown
    restriction: object       # P^T to the next coarser level (None on the coarsest)

    def smooth(self, residual, degree):
        return chebyshev_smooth(self.operator, self.inverse_diagonal,
                                self.lambda_max, residual, degree)

    def line_step(self, correction, residual, direction):
        return _line_step(self.operator, correction, residual, direction)


class _FusedLevel(_Level):
    """A level on the CPU: the same steps through the fused numba kernels."""

    def __init__(self, *args):
        super().__init__(*args)
        stencil = _cycle_kernels.stencil_diagonals(self.operator, self.shape)
        if stencil is None:
            self._matrix = _cycle_kernels.as_kernel_arrays(self.operator)
            self._step = _cycle_kernels.chebyshev_step
            self._image_and_dots = _cycle_kernels.csr_image_and_dots
        else:
            self._matrix = stencil
            self._step = _cycle_kernels.stencil_chebyshev_step
            self._image_and_dots = _cycle_kernels.stencil_image_and_dots

    def smooth(self, residual, degree):
        centre, half_width, sigma = _chebyshev_interval(self.lambda_max)
        rho = 1.0 / sigma
        residual = np.array(residual)  # a copy: the caller's stays as it was
        step = (self.inverse_diagonal * residual) / centre
        correction = step.copy()
        next_step = np.empty_like(step)
        for k in range(degree):
            last = k == degree - 1
            rho_next = 1.0 / (2.0 * sigma - rho)
            self._step(
                *self._matrix, self.inverse_diagonal, step, residual, correction,
                next_step, rho_next * rho, 2.0 * rho_next / half_width, last)
            step, next_step = next_step, step
            rho = rho_next
        return correction, residual

    def line_step(self, correction, residual, direction):
        image = np.empty_like(direction)
        curvature, gain = self._image_and_dots(
            *self._matrix, direction, residual, image)
        if not curvature > 0.0:
            return correction, residual
        correction = np.array(correction)
        residual = np.array(residual)
        _cycle_kernels.update_pair(correction, direction, residual, image,
                                   gain / curvature)
        return correction, residual


def _aggregation(shape, fluid):
    """0/1 prolongation from the grid of 2 x 2 x 2 blocks onto ``shape`` (CSR).

    Rows of solid cells are empty, so a prolonged correction never enters a
    solid (and the Galerkin product is unchanged: those rows of ``A`` are
    empty too).
    """
    coarse = tuple((n + 1) // 2 for n in shape)
    index = np.arange(int(np.prod(coarse))).reshape(coarse)
    fine = index.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    fine = fine[: shape[0], : shape[1], : shape[2]].ravel()
    inside = np.flatnonzero(fluid.ravel())
    prolongation = sp.csr_matrix(
        (np.ones(inside.size), (inside, fine[inside])),
        shape=(fine.size, index.size))
    return prolongation, coarse


def _inverse_diagonal(operator):
    diagonal = operator.diagonal()
    inverse = np.zeros_like(diagonal)
    positive = diagonal > 0
    inverse[positive] = 1.0 / diagonal[positive]
    return inverse


def _largest_eigenvalue(operator, inverse_diagonal, rng):
    """Power-iteration estimate of the largest eigenvalue of ``D^{-1} A``."""
    vector = rng.standard_normal(operator.shape[0]) * (inverse_diagonal > 0)
    estimate = 0.0
    for _ in range(_POWER_STEPS):
        norm = np.linalg.norm(vector)
        if norm == 0.0:
            return 1.0  # no unknowns on this level: nothing to smooth
        vector = vector / norm
        image = inverse_diagonal * (operator @ vector)
        estimate = float(np.linalg.norm(image))
        vector = image
    return estimate if estimate > 0 else 1.0


def _chebyshev_interval(lambda_max):
    upper = _SMOOTH_HIGH * lambda_max
    lower = _SMOOTH_LOW * lambda_max
    centre, half_width = (upper + lower) / 2, (upper - lower) / 2
    return centre, half_width, centre / half_width


def chebyshev_smooth(operator, inverse_diagonal, lambda_max, residual, degree):
    """``degree`` Chebyshev steps for ``A e = r`` from ``e = 0``; return ``e, r - A e``.

    The polynomial in ``D^{-1} A`` is the one that is smallest on
    ``[0.3, 1.1] * lambda_max`` (the three-term recurrence of Saad, *Iterative
    Methods for Sparse Linear Systems*, 2nd ed., algorithm 12.1). The residual
    is updated along the way, so ``A e`` costs nothing extra.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import poisson_matrix
    >>> from sparsesolve.poisson._multilevel import chebyshev_smooth
    >>> A = poisson_matrix((6, 6, 6)).tocsr()
    >>> r = np.ones(216)
    >>> e, rest = chebyshev_smooth(A, 1 / A.diagonal(), 2.0, r, 3)
    >>> bool(np.allclose(A @ e, r - rest))
    True
    """
    centre, half_width, sigma = _chebyshev_interval(lambda_max)
    rho = 1.0 / sigma
    residual = residual + 0.0  # a new array: the caller's is not touched
    step = (inverse_diagonal * residual) / centre
    correction = step
    for k in range(degree):
        residual = residual - operator @ step
        if k == degree - 1:
            break
        rho_next = 1.0 / (2.0 * sigma - rho)
        step = (rho_next * rho) * step + (2.0 * rho_next / half_width) * (
            inverse_diagonal * residual)
        correction = correction + step
        rho = rho_next
    return correction, residual


class MultilevelHierarchy:
    """Aggregation hierarchy of a grid operator and its V-cycle directions.

    Parameters
    ----------
    operator : scipy.sparse matrix of shape (n, n)
        Symmetric positive (semi-)definite, one row per grid cell (solid
        cells as empty rows), float64.
    grid_shape : tuple of 3 ints
        The grid of the unknowns (C order).
    coarsest_size : int
        Coarsen while any side of the grid exceeds this many cells.
    random_state : numpy.random.Generator
        Start vectors of the eigenvalue estimates.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import poisson_matrix
    >>> from sparsesolve.poisson._multilevel import MultilevelHierarchy
    >>> A = poisson_matrix((32, 32, 32)).tocsr()
    >>> levels = MultilevelHierarchy(A, (32, 32, 32), 16, np.random.default_rng(0))
    >>> levels.shapes
    [(32, 32, 32), (16, 16, 16)]
    """

    def __init__(self, operator, grid_shape, coarsest_size, random_state):
        operator = sp.csr_matrix(operator, dtype=np.float64)
        shape = tuple(int(n) for n in grid_shape)
        fluid = (np.diff(operator.indptr) > 0).reshape(shape)
        self._host = []
        while True:
            inverse = _inverse_diagonal(operator)
            level = _Level(operator, inverse,
                           _largest_eigenvalue(operator, inverse, random_state),
                           shape, fluid, None)
            self._host.append(level)
            coarse_shape = tuple((n + 1) // 2 for n in shape)
            if max(shape) <= coarsest_size or min(
                    n for n in coarse_shape if n > 1) < _MIN_COARSE_SIDE:
                break
            prolongation, coarse_shape = _aggregation(shape, fluid)
            level.restriction = prolongation.T.tocsr()
            operator = (level.restriction @ operator @ prolongation).tocsr()
            operator.eliminate_zeros()
            shape = coarse_shape
            fluid = (np.diff(operator.indptr) > 0).reshape(shape)
        self._on_device = {}

    def host_copy(self):
        """The same hierarchy without its device copies."""
        moved = copy.copy(self)
        moved._on_device = {}
        return moved

    @property
    def shapes(self):
        """Grid shape of every level, finest first."""
        return [level.shape for level in self._host]

    def levels_for(self, xp, like_matrix, like_array):
        """The levels in ``like_array``'s namespace and dtype (cached)."""
        key = (xp.__name__, str(like_array.dtype), type(like_matrix).__module__)
        if key not in self._on_device:
            dtype = np.dtype(str(like_array.dtype))
            # NumPy vectors with SciPy matrices take the fused CPU kernels;
            # every other pairing (CuPy with cupyx) the array-API steps.
            on_host = kernel_target(xp) == "cpu" and sp.issparse(like_matrix)
            level_type = _FusedLevel if on_host else _Level
            moved = []
            for level in self._host:
                moved.append(level_type(
                    sparse_like(level.operator.astype(dtype), like_matrix),
                    to_namespace(level.inverse_diagonal.astype(dtype), xp,
                                 like=like_array),
                    level.lambda_max,
                    level.shape,
                    level.fluid,
                    None if level.restriction is None else sparse_like(
                        level.restriction.astype(dtype), like_matrix),
                ))
            self._on_device[key] = moved
        return self._on_device[key]

    def cycle(self, levels, residual, coarse_direction, degree):
        """One V-cycle for ``A q = r`` on the finest level; return ``q, A q``.

        Parameters
        ----------
        levels : list
            From :meth:`levels_for`.
        residual : array of shape (n,)
            Finest-level residual.
        coarse_direction : callable, "smoother" or "none"
            ``coarse_direction(r, level)`` gives the coarsest-level direction
            for the residual ``r`` of the coarsest level (the network);
            ``"smoother"`` uses a Chebyshev sweep there and ``"none"`` no
            coarsest-level correction at all.
        degree : int
            Chebyshev degree of every smoothing sweep.
        """
        correction, residual_left = self._cycle(levels, 0, residual,
                                                coarse_direction, degree)
        return correction, residual - residual_left

    def _cycle(self, levels, depth, residual, coarse_direction, degree):
        level = levels[depth]
        if depth == len(levels) - 1:
            return self._coarsest(level, residual, coarse_direction, degree)
        correction, residual = level.smooth(residual, degree)
        coarse, _ = self._cycle(levels, depth + 1, level.restriction @ residual,
                                coarse_direction, degree)
        # Prolongation is the transpose of the stored restriction.
        direction = level.restriction.T @ coarse
        correction, residual = level.line_step(correction, residual, direction)
        smoothed, residual = level.smooth(residual, degree)
        return correction + smoothed, residual

    def _coarsest(self, level, residual, coarse_direction, degree):
        if isinstance(coarse_direction, str) and coarse_direction == "none":
            return 0.0 * residual, residual
        if isinstance(coarse_direction, str):
            direction, _ = level.smooth(residual, degree)
        else:
            direction = coarse_direction(residual, level)
        return level.line_step(0.0 * residual, residual, direction)


def _line_step(operator, correction, residual, direction):
    """Add to ``correction`` the energy-minimising multiple of ``direction``."""
    image = operator @ direction
    curvature = float(direction @ image)
    if not curvature > 0.0:
        return correction, residual  # a useless direction: skip it
    step = float(direction @ residual) / curvature
    return correction + step * direction, residual - step * image
