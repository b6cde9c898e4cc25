"""Sparse k-nearest-neighbour affinity graphs for the Laplacian term.

Exact neighbours come from :class:`sklearn.neighbors.NearestNeighbors`
(brute force or trees, scikit-learn decides); for large inputs the
approximate nearest-neighbour descent of ``pynndescent`` is used when it is
installed. The directed k-NN graph is symmetrised (the bound derivation needs
a symmetric ``W``), and :func:`psd_shift` gives the diagonal shift ``delta``
that makes ``W + delta I`` positive semi-definite, under which every bound
sweep provably lowers the energy.
"""

from __future__ import annotations

import importlib.util
import numbers

import numpy as np
import scipy.sparse as sp

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import N_JOBS_CONSTRAINT, check_array_argument, power_of_two_scale

__all__ = ["knn_affinity", "psd_shift"]

# Above this many points "auto" switches to approximate neighbours: exact
# search costs O(N^2 D) and takes tens of seconds on 2 cores at 1e5 points.
_APPROXIMATE_ABOVE = 50_000

# Up to this many points the smallest eigenvalue of W comes from a dense
# eigensolve; above, from Lanczos iterations on the sparse matrix.
_DENSE_EIGEN_BELOW = 400

# Up to this many points exact neighbours come from one dense distance matrix:
# for a few-shot episode (about a hundred points) this takes microseconds,
# while a NearestNeighbors round trip costs milliseconds of set-up.
_DIRECT_BELOW = 512

# Shortest candidate list handed to pynndescent (see _directed_neighbours).
_DESCENT_MIN_NEIGHBORS = 15

# Feature counts up to which the projection eigendecomposes the covariance.
_COVARIANCE_PCA_BELOW = 2048

# Sample counts up to which a wide X (more features than samples) is
# projected through the eigendecomposition of its n x n Gram matrix.
_GRAM_PCA_BELOW = 2048

_METHODS = ("auto", "exact", "approximate")
_SYMMETRIZE = ("max", "mean")


def _brute_force_neighbours(X, n_neighbors):
    """Exact neighbours of a small set from its dense distance matrix."""
    squared_norms = np.einsum("ij,ij->i", X, X)
    distances = squared_norms[:, None] - 2.0 * (X @ X.T) + squared_norms[None, :]
    # A point is never its own neighbour, even when duplicates tie at zero.
    np.fill_diagonal(distances, np.inf)
    # Stable sort: equal distances keep index order, as NearestNeighbors does.
    return np.argsort(distances, axis=1, kind="stable")[:, :n_neighbors]


def _directed_neighbours(X, n_neighbors, method, random_state, n_jobs):
    """Return the (N, k) neighbour indices of every point, itself excluded."""
    if method == "auto":
        large = X.shape[0] > _APPROXIMATE_ABOVE
        have_pynndescent = importlib.util.find_spec("pynndescent") is not None
        method = "approximate" if large and have_pynndescent else "exact"
    if method == "exact" and X.shape[0] <= _DIRECT_BELOW:
        return _brute_force_neighbours(X, n_neighbors)
    if method == "exact":
        from sklearn.neighbors import NearestNeighbors

        search = NearestNeighbors(n_neighbors=n_neighbors, n_jobs=n_jobs).fit(X)
        # kneighbors() without X leaves each point out of its own list, also
        # when duplicates make the distance tie at zero.
        return search.kneighbors(return_distance=False)
    if importlib.util.find_spec("pynndescent") is None:
        raise ImportError(
            "method='approximate' needs pynndescent: pip install pynndescent."
        )
    from pynndescent import NNDescent

    seed = random_state if isinstance(random_state, numbers.Integral) else None
    # NN-descent refines candidate lists of the size it is asked for; with
    # very short lists (k + 1 = 3..6) its recall drops to about 80 %, so it
    # searches at least _DESCENT_MIN_NEIGHBORS and the k nearest are kept.
    index = NNDescent(
        X,
        n_neighbors=max(n_neighbors + 1, _DESCENT_MIN_NEIGHBORS),
        random_state=seed,
        n_jobs=-1 if n_jobs is None else n_jobs,
        compressed=True,
    )
    candidates, _ = index.neighbor_graph
    # Drop the point itself wherever the search placed it; keep k others.
    rows = np.arange(X.shape[0])[:, None]
    others = candidates != rows
    order = np.argsort(~others, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)[:, :n_neighbors]


def _gram_principal_scores(X, n_components):
    """Principal component scores of a wide ``X`` from its Gram matrix.

    With fewer samples than features the scores ``U_k S_k`` are the leading
    eigenvectors of the centred ``X X^T`` scaled by the square roots of their
    eigenvalues (the dual form of PCA); one ``n x n`` product and a partial
    symmetric eigensolve cost far less than an SVD of ``X`` (a 200-image
    face set: about 1/10 of scikit-learn's solvers). Signs are arbitrary, as
    in any PCA; the neighbour search only uses distances.
    """
    from scipy.linalg import eigh

    # The product in the data's precision (as scikit-learn's PCA computes
    # it), the small eigensolve in double.
    centred = X - X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    n_samples = centred.shape[0]
    gram = (centred @ centred.T).astype(np.float64)
    values, vectors = eigh(gram, subset_by_index=[n_samples - n_components,
                                                  n_samples - 1])
    scores = vectors[:, ::-1] * np.sqrt(np.maximum(values[::-1], 0.0))
    return np.ascontiguousarray(scores, dtype=X.dtype)


def _projected(X, n_components, random_state):
    """``X`` on its first ``n_components`` principal axes (or ``X`` itself)."""
    if n_components is None or n_components >= min(X.shape):
        return X
    from sklearn.decomposition import PCA

    if X.shape[0] < X.shape[1] and X.shape[0] <= _GRAM_PCA_BELOW:
        return _gram_principal_scores(X, n_components)
    seed = random_state if isinstance(random_state, numbers.Integral) else 0
    # Up to a few thousand features one product X^T X and a small symmetric
    # eigensolve are much cheaper than randomized SVD's power iterations.
    solver = "covariance_eigh" if X.shape[1] <= _COVARIANCE_PCA_BELOW else "randomized"
    projection = PCA(n_components, svd_solver=solver, random_state=seed)
    return np.ascontiguousarray(projection.fit_transform(X), dtype=X.dtype)


@validate_params(
    {
        "X": ["array-like"],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [StrOptions(set(_METHODS))],
        "symmetrize": [StrOptions(set(_SYMMETRIZE))],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS_CONSTRAINT,
    },
    prefer_skip_nested_validation=True,
)
def knn_affinity(
    X,
    n_neighbors=5,
    *,
    method="auto",
    symmetrize="max",
    n_components=None,
    random_state=None,
    n_jobs=None,
):
    """Build the symmetric binary k-nearest-neighbour affinity of ``X``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Real, finite points (a dense host array; CuPy input is copied to the
        host). The graph does not depend on the scale of ``X``: the search
        runs on ``X`` divided by a power of two near its largest magnitude,
        so distances of 1e300 data do not overflow.
    n_neighbors : int, default=5
        Neighbours per point, the point itself not counted. Clipped to
        ``n_samples - 1``.
    method : {"auto", "exact", "approximate"}, default="auto"
        ``"exact"``: scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors`.
        ``"approximate"``: pynndescent's nearest-neighbour descent.
        ``"auto"``: exact up to 50,000 points, approximate above when
        pynndescent is installed.
    symmetrize : {"max", "mean"}, default="max"
        ``"max"``: ``w_pq = 1`` if either point is among the other's
        neighbours (union). ``"mean"``: ``(W + W^T) / 2``.
    n_components : int or None, default=None
        Search the neighbours among the projections of ``X`` on its first
        ``n_components`` principal axes (scikit-learn's
        :class:`~sklearn.decomposition.PCA`) instead of the raw features;
        ``None`` or a value not below ``n_features`` uses ``X`` itself. For
        images (hundreds of pixels) 50 components find nearly the same
        neighbours at a fraction of the cost of an exact search in full
        dimension, the usual preprocessing of neighbour-graph methods.
    random_state : int, RandomState instance or None, default=None
        Seed of the approximate search and of the randomized projection.
    n_jobs : int or None, default=None
        Threads of the neighbour search.

    Returns
    -------
    W : scipy.sparse.csr_array of shape (n_samples, n_samples)
        Symmetric, non-negative, zero diagonal, sorted indices.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.clustering import knn_affinity
    >>> X = np.array([[0.0], [0.1], [5.0], [5.2]])
    >>> knn_affinity(X, n_neighbors=1).toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 0., 0.],
           [0., 0., 0., 1.],
           [0., 0., 1., 0.]])
    """
    from .._backend import to_numpy

    if sp.issparse(X):
        raise TypeError("knn_affinity: X must be a dense array; got a sparse "
                        "matrix (call .toarray() first).")
    X = np.asarray(to_numpy(X)) if hasattr(X, "shape") else X
    X = check_array_argument(X, "X", ndim=2, allow_empty=True,
                             caller="knn_affinity")
    if X.shape[0] == 0:
        raise ValueError("knn_affinity: X has 0 samples; a graph needs at least "
                         "one point.")
    if X.shape[1] == 0:
        raise ValueError("knn_affinity: X has 0 features; at least one is "
                         "needed to measure distances.")
    if X.size:
        # Neighbours are invariant to scaling; dividing by a power of two is
        # exact and keeps squared distances inside the float range.
        scale = power_of_two_scale(float(np.max(np.abs(X))))
        if scale != 1.0:
            X = X / scale
    n_samples = X.shape[0]
    n_neighbors = min(int(n_neighbors), n_samples - 1)
    if n_neighbors < 1:
        return sp.csr_array((n_samples, n_samples), dtype=X.dtype)
    search = _projected(X, n_components, random_state)
    neighbours = _directed_neighbours(
        search, n_neighbors, method, random_state, n_jobs
    )
    rows = np.repeat(np.arange(n_samples), n_neighbors)
    directed = sp.csr_array(
        (np.ones(rows.size, dtype=X.dtype), (rows, neighbours.ravel())),
        shape=(n_samples, n_samples),
    )
    directed.sum_duplicates()
    directed.data[:] = 1
    if symmetrize == "max":
        graph = directed.maximum(directed.T)
    else:
        graph = (directed + directed.T) * 0.5
    graph = sp.csr_array(graph)
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph


@validate_params(
    {"W": ["array-like", "sparse matrix"]},
    prefer_skip_nested_validation=True,
)
def psd_shift(W):
    """Return ``delta >= 0`` with ``W + delta I`` positive semi-definite.

    ``delta = -lambda_min(W)`` (or 0), from a dense eigensolve for small
    graphs and from Lanczos (:func:`scipy.sparse.linalg.eigsh`) for large
    ones, with a small relative margin. Should Lanczos not converge,
    Gershgorin's bound ``max_p sum_q |w_pq|`` is used: safe, but it can be
    far larger (hub points) and then damps the updates more than needed.

    Parameters
    ----------
    W : sparse or dense array of shape (n_samples, n_samples)
        Real, finite, symmetric affinity (complex, non-square or asymmetric
        matrices are refused: the shift is defined through the eigenvalues
        of a symmetric matrix).

    Returns
    -------
    delta : float
        Smallest non-negative shift (plus a tiny margin) for which
        ``W + delta I`` has no negative eigenvalue.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsesolve.clustering import psd_shift
    >>> path = sp.csr_array([[0.0, 1.0], [1.0, 0.0]])   # eigenvalues -1 and 1
    >>> round(psd_shift(path), 4)
    1.0
    """
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    W = _checked_affinity(W)
    if W.nnz == 0:
        return 0.0
    # Eigenvalues scale with W: solve for W divided by a power of two
    # (exact) so that Gershgorin sums of 1e300 weights do not overflow.
    largest = float(np.max(np.abs(W.data)))
    if largest == 0.0:  # only explicit zeros: the zero matrix is PSD
        return 0.0
    if not 2.0**-500 < largest < 2.0**500:
        scale = power_of_two_scale(largest)
        return psd_shift(W / scale) * scale
    if W.shape[0] <= _DENSE_EIGEN_BELOW:
        smallest = float(np.linalg.eigvalsh(W.toarray())[0])
    else:
        try:
            # A Ritz value never lies below the true smallest eigenvalue; the
            # relative margin below covers the solver's tolerance.
            smallest = float(eigsh(W, k=1, which="SA", tol=1e-8)[0][0])
        except ArpackNoConvergence:
            return float(np.max(abs(W).sum(axis=1)))
    if smallest >= 0:
        return 0.0
    # Margin so that round-off cannot leave W + delta I indefinite (the
    # energy tests compare consecutive iterates exactly).
    return -smallest * (1.0 + 1e-6)


def _checked_affinity(W):
    """``W`` as a float64 CSR array after the checks of :func:`psd_shift`."""
    from .._backend import to_numpy

    if not sp.issparse(W):
        W = np.asarray(to_numpy(W)) if hasattr(W, "shape") else W
        W = check_array_argument(W, "W", ndim=2, allow_empty=True,
                                 caller="psd_shift")
    elif np.dtype(W.dtype).kind == "c":
        raise ValueError(
            "Complex data not supported for W: psd_shift works on real "
            f"symmetric affinities; got dtype {W.dtype}."
        )
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"psd_shift: W must be a square matrix; got shape "
                         f"{tuple(W.shape)}.")
    if W.shape[0] == 0:
        raise ValueError("psd_shift: W is empty (shape (0, 0)); it needs at "
                         "least one point.")
    W = sp.csr_array(W, dtype=np.float64)
    if not np.all(np.isfinite(W.data)):
        raise ValueError("Input W contains NaN or infinity.")
    if W.nnz:
        asymmetry = abs(W - W.T)
        largest = float(np.max(np.abs(W.data)))
        if asymmetry.nnz and float(asymmetry.max()) > 1e-10 * largest:
            raise ValueError(
                "psd_shift: W must be symmetric (the bound sweeps need a "
                f"symmetric affinity); max |W - W^T| = {float(asymmetry.max()):.3g}. "
                "Symmetrise it first, e.g. W.maximum(W.T) or (W + W.T) / 2."
            )
    return W
