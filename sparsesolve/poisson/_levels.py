"""Grid coarsening for multi-level use of the direction network.

The network's receptive field is a few tens of cells, so on a large grid it
cannot see the long-range part of a residual. Applied to the residual
averaged over 2 x 2 x 2 blocks, the same fully convolutional network sees
twice as far; its output, copied back onto the blocks, is a search
direction for the smooth part of the error (the coarse-grid correction of a
two-grid method, with the learned inverse in place of a coarse solve).

Written against the array API (reshape, broadcast, slicing), so the same
code runs on NumPy and CuPy.
"""

from __future__ import annotations

__all__ = ["coarse_shape", "prolong", "restrict"]


def coarse_shape(shape):
    """Shape of the grid of 2 x 2 x 2 blocks covering ``shape`` (ceil)."""
    return tuple((n + 1) // 2 for n in shape)


def restrict(xp, grid):
    """Average ``grid`` over 2 x 2 x 2 blocks (odd sizes padded with zeros).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson._levels import restrict
    >>> restrict(np, np.ones((4, 4, 3))).shape
    (2, 2, 2)
    """
    shape = tuple(int(n) for n in grid.shape)
    coarse = coarse_shape(shape)
    if any(n % 2 for n in shape):
        padded = xp.zeros(tuple(2 * n for n in coarse), dtype=grid.dtype)
        padded[: shape[0], : shape[1], : shape[2]] = grid
        grid = padded
    blocks = xp.reshape(grid, (coarse[0], 2, coarse[1], 2, coarse[2], 2))
    return xp.mean(blocks, axis=(1, 3, 5))


def prolong(xp, grid, shape):
    """Copy each coarse cell onto its 2 x 2 x 2 block, cropped to ``shape``.

    Up to a factor 8 this is the transpose of :func:`restrict`.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson._levels import prolong
    >>> prolong(np, np.ones((2, 2, 2)), (4, 4, 3)).shape
    (4, 4, 3)
    """
    nz, ny, nx = (int(n) for n in grid.shape)
    blocks = xp.broadcast_to(xp.reshape(grid, (nz, 1, ny, 1, nx, 1)),
                             (nz, 2, ny, 2, nx, 2))
    fine = xp.reshape(blocks, (2 * nz, 2 * ny, 2 * nx))
    return fine[: shape[0], : shape[1], : shape[2]]
