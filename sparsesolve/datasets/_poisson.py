"""Poisson pressure systems on grids with obstacles (fluid pressure projection)."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.utils import check_random_state

from .._sklearn_compat import StrOptions, validate_params
from .._validation import check_allocation

__all__ = ["make_poisson_problem"]

_OBSTACLES = ("none", "sphere", "box", "random", "torus", "cylinders")
_RHS = ("white", "smooth", "divergence")


def _ball(shape, centre, radius):
    grids = np.meshgrid(*[np.arange(n) + 0.5 for n in shape], indexing="ij")
    distance2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
    return distance2 <= radius**2


def _solid_mask(shape, obstacle, rng):
    shape = tuple(shape)
    n = min(shape)
    if obstacle == "none":
        return np.zeros(shape, dtype=bool)
    if obstacle == "sphere":
        return _ball(shape, [s / 2 for s in shape], 0.2 * n)
    if obstacle == "box":
        solid = np.zeros(shape, dtype=bool)
        # A centred box a third of the domain wide, flattened along the
        # first axis like a plate in a channel.
        index = tuple(
            slice(int(s * (0.45 if axis == 0 else 1 / 3)),
                  int(np.ceil(s * (0.55 if axis == 0 else 2 / 3))))
            for axis, s in enumerate(shape)
        )
        solid[index] = True
        return solid
    if obstacle in ("torus", "cylinders") and len(shape) != 3:
        raise ValueError(f"obstacle={obstacle!r} needs a 3D shape; got {shape}.")
    if obstacle == "torus":
        # A ring around the first axis, like a duct insert: the fluid passes
        # through its hole and around it.
        grids = np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij")
        centre = [s / 2 for s in shape]
        ring = np.hypot(grids[1] - centre[1], grids[2] - centre[2]) - 0.28 * n
        return ring**2 + (grids[0] - centre[0]) ** 2 <= (0.1 * n) ** 2
    if obstacle == "cylinders":
        # Random rods parallel to the grid axes, spanning the whole box (a
        # tube bank); each touches two faces, so no fluid region floats.
        grids = np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij")
        solid = np.zeros(shape, dtype=bool)
        for _ in range(int(rng.randint(3, 7))):
            axis = int(rng.randint(3))
            others = [k for k in range(3) if k != axis]
            radius = rng.uniform(0.05, 0.12) * n
            centre = [rng.uniform(radius + 1, shape[k] - radius - 1) for k in others]
            solid |= np.hypot(grids[others[0]] - centre[0],
                              grids[others[1]] - centre[1]) <= radius
        return solid
    # "random": a few balls and boxes at random places, never touching the
    # box faces so every fluid cell stays connected to a Dirichlet face.
    solid = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.randint(2, 5))):
        radius = rng.uniform(0.08, 0.18) * n
        centre = [rng.uniform(radius + 1, s - radius - 1) for s in shape]
        if rng.rand() < 0.5:
            solid |= _ball(shape, centre, radius)
        else:
            index = tuple(slice(int(c - radius), int(c + radius) + 1) for c in centre)
            solid[index] = True
    return solid


def _divergence(shape, solid, boundary, rng):
    """Divergence of a random smooth velocity on a staggered (MAC) grid.

    Each velocity component lives on the faces normal to its axis (``n + 1``
    faces along that axis), is low-pass filtered white noise (width 3 cells)
    and is zero on faces that touch a solid cell (no flow through walls) and,
    unless the box has Dirichlet faces, on the faces of the box.
    """
    padded = np.pad(solid, 1, constant_values=boundary != "dirichlet")
    divergence = np.zeros(shape)
    for axis, n in enumerate(shape):
        face_shape = tuple(n + 1 if k == axis else m for k, m in enumerate(shape))
        velocity = gaussian_filter(rng.standard_normal(face_shape), sigma=3.0)
        # The cells on both sides of each face, read off the padded mask.
        inner = tuple(slice(1, -1) if k != axis else slice(None)
                      for k in range(len(shape)))
        cells = padded[inner]
        walls = (np.take(cells, range(n + 1), axis=axis)
                 | np.take(cells, range(1, n + 2), axis=axis))
        velocity[walls] = 0.0
        divergence += np.diff(velocity, axis=axis)
    return divergence


@validate_params(
    {
        "shape": [tuple, list],
        "obstacle": [StrOptions(set(_OBSTACLES))],
        "boundary": [StrOptions({"dirichlet", "neumann", "open_top"})],
        "rhs": [StrOptions(set(_RHS))],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_poisson_problem(shape, obstacle="none", *, boundary="dirichlet",
                         rhs="white", random_state=None):
    """Make a Poisson system ``A p = b`` on a grid with a solid obstacle.

    Parameters
    ----------
    shape : tuple of int
        Grid shape, 2D or 3D (for example ``(32, 32, 32)``).
    obstacle : {"none", "sphere", "box", "random", "torus", "cylinders"}, \
default="none"
        Solid cells: nothing, a centred ball of radius ``0.2 * min(shape)``,
        a centred plate, 2-4 random balls and boxes (drawn from
        ``random_state``), a ring around the first axis (3D only), or 3-6
        random rods parallel to the axes spanning the box (3D only).
    boundary : {"dirichlet", "neumann", "open_top"}, default="dirichlet"
        Condition on the faces of the box, see
        :func:`~sparsesolve.poisson.poisson_matrix`.
    rhs : {"white", "smooth", "divergence"}, default="white"
        White Gaussian noise; the same noise low-pass filtered (Gaussian,
        width 2 cells); or the divergence of a random smooth velocity field
        on the cell faces, with no flow through solid walls (the right-hand
        side of a pressure projection in a fluid solver).
    random_state : int, RandomState instance or None, default=None
        Seed of the obstacles and of the right-hand side.

    Returns
    -------
    A : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        The matrix from :func:`~sparsesolve.poisson.poisson_matrix`.
    b : ndarray of shape (n_cells,)
        Right-hand side, zero on solid cells and orthogonal to the null
        space of ``A`` (so that the system has solutions).
    solid : ndarray of bool of shape ``shape``
        The obstacle mask.

    Examples
    --------
    >>> from sparsesolve.datasets import make_poisson_problem
    >>> A, b, solid = make_poisson_problem((16, 16, 16), "sphere", random_state=0)
    >>> A.shape, b.shape, int(solid.sum())
    ((4096, 4096), (4096,), 136)
    """
    from ..poisson import floating_components, poisson_matrix, project_to_range

    if obstacle not in _OBSTACLES:
        raise ValueError(f"obstacle must be one of {_OBSTACLES}; got {obstacle!r}.")
    if rhs not in _RHS:
        raise ValueError(f"rhs must be one of {_RHS}; got {rhs!r}.")
    rng = check_random_state(random_state)
    if not hasattr(shape, "__len__") or len(shape) not in (2, 3) or not all(
            isinstance(n, Integral) and not isinstance(n, bool) and n >= 1
            for n in shape):
        raise ValueError(f"shape must be a tuple of 2 or 3 positive ints; got "
                         f"{shape!r}.")
    # The matrix (see poisson_matrix), the masks and right-hand side.
    check_allocation(450.0 * math.prod(shape), "shape",
                     what=f"a Poisson problem on a {tuple(shape)} grid")
    solid = _solid_mask(shape, obstacle, rng)
    A = poisson_matrix(tuple(shape), solid, boundary=boundary)
    if rhs == "divergence":
        noise = _divergence(tuple(shape), solid, boundary, rng)
    else:
        noise = rng.standard_normal(tuple(shape))
    if rhs == "smooth":
        noise = gaussian_filter(noise, sigma=2.0)
    noise[solid] = 0.0
    labels, n_floating = floating_components(A)
    b = project_to_range(noise.ravel(), labels, n_floating)
    return A, b, solid
