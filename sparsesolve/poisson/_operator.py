"""The discrete Poisson operator on a cell grid with solid obstacles.

The operator is stored on the *full* grid, one row per cell, in the layout of
Kaneda et al. (2023): rows and columns of solid cells are entirely zero, so a
vector lives on the same grid whatever the obstacle, and a convolutional
network can read it as an image. Fluid rows hold the 7-point (3D) or 5-point
(2D) Laplacian with unit spacing: ``-1`` towards every fluid neighbour and a
diagonal that counts the faces through which pressure is exchanged
(fluid neighbours plus Dirichlet faces). Faces towards solids are Neumann
(no flux) and contribute nothing.

A fluid region that touches no Dirichlet face has a constant null vector;
:func:`floating_components` finds those regions from the matrix alone and
:func:`project_to_range` makes a right-hand side compatible with them.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .._backend import to_numpy
from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_allocation

# Peak bytes per cell while poisson_matrix assembles (COO triplets of the
# 2 * ndim off-diagonals and the diagonal, int64 indices, the CSR copy).
_ASSEMBLY_BYTES_PER_CELL = 400

__all__ = ["floating_components", "poisson_matrix", "project_to_range"]

_BOUNDARIES = ("dirichlet", "neumann", "open_top")


def _check_shape(shape):
    if isinstance(shape, numbers.Integral) or not hasattr(shape, "__len__"):
        raise TypeError(
            f"shape must be a tuple of 2 or 3 positive ints; got {shape!r}."
        )
    shape = tuple(shape)
    if len(shape) not in (2, 3) or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
        for n in shape
    ):
        raise ValueError(
            f"shape must be a tuple of 2 or 3 positive ints; got {shape!r}."
        )
    return tuple(int(n) for n in shape)


def _check_solid(solid, shape):
    if solid is None:
        return np.zeros(shape, dtype=bool)
    solid = np.asarray(solid)
    if solid.shape != shape:
        raise ValueError(
            f"solid must be a boolean array of shape {shape}; got shape "
            f"{solid.shape}."
        )
    if solid.dtype != bool:
        raise TypeError(f"solid must be a boolean array; got dtype {solid.dtype}.")
    return solid


@validate_params(
    {
        "shape": [tuple, list, np.ndarray],
        "solid": ["array-like", None],
        "boundary": [StrOptions(set(_BOUNDARIES))],
    },
    prefer_skip_nested_validation=True,
)
def poisson_matrix(shape, solid=None, boundary="dirichlet"):
    """Return the cell-centred Poisson matrix ``-Laplacian`` on a 2D or 3D grid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape, ``(nz, ny, nx)`` in 3D (7-point stencil) or ``(ny, nx)``
        in 2D (5-point stencil). Cells are numbered in C order.
    solid : ndarray of bool of shape ``shape``, default=None
        True for solid cells (obstacles). Their rows and columns are zero and
        the faces between fluid and solid cells are Neumann (no flux).
    boundary : {"dirichlet", "neumann", "open_top"}, default="dirichlet"
        Condition on the faces of the box: ``"dirichlet"`` (pressure zero
        outside every face, an SPD matrix when every fluid region touches the
        box), ``"neumann"`` (closed box: every fluid region has a constant
        null vector) or ``"open_top"`` (closed walls, Dirichlet on the far
        face of the first axis, as for a free surface above a tank).

    Returns
    -------
    A : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        Symmetric, positive semi-definite, float64. With no solid and
        ``boundary="dirichlet"`` it equals ``pyamg.gallery.poisson(shape)``.

    See Also
    --------
    floating_components : Fluid regions whose rows make ``A`` singular.
    project_to_range : Make a right-hand side solvable for such regions.

    Examples
    --------
    >>> from sparsesolve.poisson import poisson_matrix
    >>> A = poisson_matrix((3, 3))
    >>> A.shape
    (9, 9)
    >>> A.diagonal().tolist()
    [4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    >>> float(poisson_matrix((2, 2), boundary="neumann").sum())
    0.0
    """
    shape = _check_shape(shape)
    check_allocation(_ASSEMBLY_BYTES_PER_CELL * float(np.prod(shape, dtype=float)),
                     "shape", what=f"a Poisson matrix on a {shape} grid")
    solid = _check_solid(solid, shape)
    if boundary not in _BOUNDARIES:
        raise ValueError(
            f"boundary must be one of {_BOUNDARIES}; got {boundary!r}."
        )
    fluid = ~solid
    n_cells = fluid.size
    index = np.arange(n_cells).reshape(shape)
    diagonal = np.zeros(shape)
    rows, cols = [], []
    for axis in range(len(shape)):
        # Interior faces along this axis: a flux couples two fluid cells.
        low = [slice(None)] * len(shape)
        high = [slice(None)] * len(shape)
        low[axis] = slice(None, -1)
        high[axis] = slice(1, None)
        low, high = tuple(low), tuple(high)
        open_face = fluid[low] & fluid[high]
        rows.append(index[low][open_face])
        cols.append(index[high][open_face])
        diagonal[low] += open_face
        diagonal[high] += open_face
        # Faces of the box along this axis: Dirichlet faces add one to the
        # diagonal (pressure zero in the ghost cell), Neumann faces nothing.
        first = [slice(None)] * len(shape)
        last = [slice(None)] * len(shape)
        first[axis] = 0
        last[axis] = -1
        first, last = tuple(first), tuple(last)
        if boundary == "dirichlet":
            diagonal[first] += fluid[first]
            diagonal[last] += fluid[last]
        elif boundary == "open_top" and axis == 0:
            diagonal[last] += fluid[last]
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    off = -np.ones(rows.size)
    A = sp.coo_matrix(
        (
            np.concatenate([off, off, diagonal.ravel()]),
            (
                np.concatenate([rows, cols, index.ravel()]),
                np.concatenate([cols, rows, index.ravel()]),
            ),
        ),
        shape=(n_cells, n_cells),
    ).tocsr()
    A.eliminate_zeros()
    A.sort_indices()
    return A


def _check_square_sparse(A, name):
    """``A`` as a finite square CSR matrix (real or complex)."""
    if not (sp.issparse(A) or isinstance(A, np.ndarray)):
        raise TypeError(f"{name} must be a sparse matrix or a 2-D NumPy array; got "
                        f"{type(A).__name__}.")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix (n, n); got shape "
                         f"{A.shape}.")
    if not np.issubdtype(A.dtype, np.number) or np.issubdtype(A.dtype, np.timedelta64):
        raise TypeError(f"{name} must hold numbers; got dtype {A.dtype}.")
    A = sp.csr_matrix(A)
    if not np.all(np.isfinite(A.data)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return A


@validate_params({"A": ["array-like", "sparse matrix"]},
                 prefer_skip_nested_validation=True)
def floating_components(A):
    """Label the connected groups of rows of ``A`` whose rows sum to zero.

    For a Poisson (graph-Laplacian-like) matrix, a connected fluid region
    with no Dirichlet face has zero row sums and the constant vector on it is
    a null vector; an all-zero row (a solid cell) is a trivial such region.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        A symmetric Poisson matrix, as from :func:`poisson_matrix`.

    Returns
    -------
    labels : ndarray of int of shape (n,)
        Component label of every row, ``-1`` for rows in components that
        touch a Dirichlet face (nothing to project there).
    n_floating : int
        Number of floating components, zero-row cells included.

    Examples
    --------
    >>> from sparsesolve.poisson import floating_components, poisson_matrix
    >>> labels, n = floating_components(poisson_matrix((4, 4), boundary="neumann"))
    >>> n, sorted(set(labels.tolist()))
    (1, [0])
    """
    A = _check_square_sparse(A, "A")
    # The graph comes from |A|, so that complex (Hermitian) couplings count
    # whatever their phase; the zero-row-sum test reads A itself.
    magnitude = abs(A)
    n_components, labels = connected_components(magnitude, directed=False)
    row_sums = np.abs(np.asarray(A.sum(axis=1)).ravel())
    scale = magnitude.max() if A.nnz else 0.0
    # A component is singular when every one of its rows sums to zero up to
    # rounding in the stored values, relative to their size (so a matrix
    # scaled by 1e-300 or 1e300 gives the same components).
    leaky = np.zeros(n_components, dtype=bool)
    np.logical_or.at(leaky, labels, row_sums > 1e-12 * scale)
    floating = ~leaky
    relabel = -np.ones(n_components, dtype=np.int64)
    relabel[floating] = np.arange(np.count_nonzero(floating))
    return relabel[labels], int(np.count_nonzero(floating))


@validate_params(
    {
        "b": ["array-like"],
        "labels": ["array-like"],
        "n_floating": [Interval(numbers.Integral, 0, None, closed="left")],
        "xp": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def project_to_range(b, labels, n_floating, xp=None):
    """Remove from ``b`` its mean over every floating component.

    Parameters
    ----------
    b : array of shape (n,) or (n, k)
        Right-hand side(s), NumPy or CuPy.
    labels : ndarray of int of shape (n,)
        From :func:`floating_components` (already in ``b``'s namespace or on
        the host).
    n_floating : int
        From :func:`floating_components`.
    xp : module, optional
        Namespace of ``b``.

    Returns
    -------
    b_projected : array
        A new array, orthogonal to every null vector of the matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import (floating_components, poisson_matrix,
    ...                                  project_to_range)
    >>> labels, n = floating_components(poisson_matrix((2, 2), boundary="neumann"))
    >>> project_to_range(np.array([1.0, 2.0, 3.0, 6.0]), labels, n).tolist()
    [-2.0, -1.0, 0.0, 3.0]
    """
    import array_api_compat

    if not hasattr(b, "ndim") or not array_api_compat.is_array_api_obj(b):
        b = np.asarray(b)
    if isinstance(b, np.ndarray):
        if not np.issubdtype(b.dtype, np.number):
            raise TypeError(f"b must hold numbers; got dtype {b.dtype}.")
        if not np.issubdtype(b.dtype, np.inexact):
            b = b.astype(np.float64)  # integer right-hand sides compute in float
    namespace = array_api_compat.array_namespace(b)
    if not bool(namespace.all(namespace.isfinite(b))):
        raise ValueError("b contains NaN or infinity.")
    if xp is None:
        xp = array_api_compat.array_namespace(b)
    if b.ndim not in (1, 2):
        raise ValueError(f"b must have shape (n,) or (n, k); got {tuple(b.shape)}.")
    labels_host = np.asarray(to_numpy(labels))
    if labels_host.shape != (b.shape[0],) or not (
            labels_host.size == 0 or np.issubdtype(labels_host.dtype, np.integer)):
        raise ValueError(
            f"labels must be integers of shape ({b.shape[0]},) (one per row of b, "
            f"from floating_components); got {labels_host.dtype} of shape "
            f"{labels_host.shape}.")
    if labels_host.size and (labels_host.min() < -1
                             or labels_host.max() >= n_floating):
        raise ValueError(
            f"labels must lie in [-1, n_floating={n_floating}); got values in "
            f"[{labels_host.min()}, {labels_host.max()}].")
    if n_floating == 0:
        return xp.asarray(b, copy=True)
    inside = labels_host >= 0
    # Dense one-hot of the floating components would be n x n_floating; the
    # component sums go through a host-side sparse indicator instead, moved
    # to b's device only as the small per-component means.
    indicator = sp.csr_matrix(
        (np.ones(np.count_nonzero(inside)),
         (labels_host[inside], np.flatnonzero(inside))),
        shape=(n_floating, labels_host.size),
    )
    counts = np.asarray(indicator.sum(axis=1)).ravel()
    b_host = np.asarray(to_numpy(b))
    # Complex right-hand sides (Hermitian systems) keep their imaginary part.
    b_host = b_host.astype(np.complex128 if np.iscomplexobj(b_host) else np.float64)
    means = (indicator @ b_host) / (counts[:, None] if b_host.ndim == 2 else counts)
    correction = indicator.T @ means
    result = b_host - correction
    if isinstance(b, np.ndarray):
        return result.astype(b.dtype, copy=False)
    return xp.asarray(result, dtype=b.dtype, device=array_api_compat.device(b))
