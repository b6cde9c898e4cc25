"""Starting partitions for Laplacian K-prototypes from the graph's spectrum.

The bound sweeps refine a partition locally: from k-means++ seeds they stay
near a K-means solution, however large the graph weight. Seeding them with
the partition that K-means finds on the leading eigenvectors of the
normalised affinity ``D^-1/2 W D^-1/2`` (the embedding of Ng, Jordan and
Weiss, "On spectral clustering", NIPS 2001) starts them at a graph-cut
solution instead; the sweeps and the prototype updates then move it towards
a lower Laplacian K-means energy. The eigenvectors are only needed to a loose
tolerance (the partition, not the spectrum, is used), which keeps this step
a small share of the fit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "embedding_from_vectors",
    "leading_vectors",
    "spectral_embedding_rows",
    "spectral_seed_labels",
]

# Up to this many points the eigenvectors come from a dense eigensolve.
_DENSE_BELOW = 500

# Relative tolerance of the Lanczos eigensolve: K-means on the rows needs
# the invariant subspace roughly, not eigenvalues to machine precision.
_EIGEN_TOL = 1e-3

# K-means starts on the embedding (cheap: n_samples x n_clusters).
_EMBEDDING_N_INIT = 3


def spectral_embedding_rows(W, n_components, random_state):
    """Row-normalised leading eigenvectors of ``D^-1/2 W D^-1/2``.

    Parameters
    ----------
    W : sparse array of shape (n_samples, n_samples)
        Symmetric non-negative affinity.
    n_components : int
        Number of eigenvectors (the number of clusters).
    random_state : RandomState
        Draws the Lanczos start vector.

    Returns
    -------
    rows : ndarray of shape (n_samples, n_components)
        The eigenvectors scaled by ``D^-1/2`` (the random-walk eigenvectors),
        each row then scaled to unit length.
    """
    W = sp.csr_array(W, dtype=np.float64)
    n_samples = W.shape[0]
    degree = np.asarray(W.sum(axis=1)).ravel()
    # An isolated point (no edges) gets degree 1: its row stays 0 in S.
    scale = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    S = sp.csr_array(sp.diags_array(scale) @ W @ sp.diags_array(scale))
    n_components = min(n_components, n_samples)
    if n_samples <= _DENSE_BELOW or n_components >= n_samples - 1:
        from scipy.linalg import eigh

        # Only the leading eigenvectors: a partial solve costs a fraction of
        # the full decomposition.
        _, vectors = eigh(S.toarray(), subset_by_index=[n_samples - n_components,
                                                        n_samples - 1])
    else:
        vectors = leading_vectors(S, n_samples, n_components, random_state)
    return embedding_from_vectors(vectors, scale)


def leading_vectors(S, n_samples, n_components, random_state):
    """Leading eigenvectors of ``S`` by Lanczos, to a loose tolerance.

    ``S`` is a sparse matrix or a :class:`~scipy.sparse.linalg.LinearOperator`
    (the blocked fit multiplies by the graph block by block); the start
    vector is drawn from ``random_state``, so the same products give the same
    vectors.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    start = random_state.uniform(-1.0, 1.0, n_samples)
    try:
        _, vectors = eigsh(S, k=n_components, which="LA", tol=_EIGEN_TOL, v0=start)
    except ArpackNoConvergence as error:
        # The partially converged vectors still span most of the
        # leading subspace; K-means on them is a usable start.
        vectors = error.eigenvectors
        if vectors.shape[1] == 0:
            vectors = random_state.standard_normal((n_samples, n_components))
    return vectors


def embedding_from_vectors(vectors, scale):
    """Random-walk eigenvectors (``D^-1/2`` times ``vectors``), rows unit length."""
    rows = vectors * scale[:, None]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def spectral_seed_labels(W, n_clusters, random_state, embedding=None):
    """Partition into ``n_clusters`` by K-means on the spectral embedding.

    Parameters
    ----------
    W : sparse array of shape (n_samples, n_samples)
        Symmetric non-negative affinity.
    n_clusters : int
        Number of clusters.
    random_state : RandomState
        Seeds the K-means starts (and the eigensolve when ``embedding`` is
        not given).
    embedding : ndarray of shape (n_samples, n_clusters) or None
        A precomputed :func:`spectral_embedding_rows`, shared between
        restarts.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        Cluster of every point; every cluster is non-empty.
    """
    from sklearn.cluster import KMeans

    if embedding is None:
        embedding = spectral_embedding_rows(W, n_clusters, random_state)
    seed = int(random_state.randint(np.iinfo(np.int32).max))
    model = KMeans(n_clusters, n_init=_EMBEDDING_N_INIT, random_state=seed)
    return model.fit(embedding).labels_.astype(np.int64)
