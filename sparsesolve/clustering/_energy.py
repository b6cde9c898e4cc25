"""The discrete Laplacian K-prototypes energy, used to rank restarts.

The relaxed energy ``R`` of the soft assignments includes an entropy term
whose size depends on how soft a run ended, so two runs are compared on the
objective of hard partitions instead (the one ``KMeans`` ranks its starts by
when ``lambda = 0``, plus the cut of the graph):

    E(l) = sum_p a_{p, l_p} + (lambda / 2) sum_{p, q} w_pq [l_p != l_q].
"""

from __future__ import annotations

import numpy as np

__all__ = ["discrete_energy"]


def discrete_energy(unary, labels, W, laplacian_weight):
    """Energy of the hard partition ``labels``.

    Parameters
    ----------
    unary : ndarray of shape (n_samples, n_clusters)
        Prototype costs ``a_pk`` of the partition's prototypes (host array).
    labels : ndarray of shape (n_samples,)
        Cluster of every point.
    W : sparse array of shape (n_samples, n_samples)
        Symmetric affinity (CSR).
    laplacian_weight : float
        ``lambda``.

    Returns
    -------
    energy : float
        ``sum_p a_{p, l_p} + (lambda / 2) * cut``, where ``cut`` sums
        ``w_pq`` over the ordered pairs in different clusters.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> unary = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    >>> W = sp.csr_array(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float))
    >>> float(discrete_energy(unary, np.array([0, 0, 1]), W, 2.0))
    2.0
    """
    labels = np.asarray(labels)
    unary = np.asarray(unary, dtype=np.float64)
    data_term = float(np.sum(unary[np.arange(labels.size), labels]))
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    cut = float(np.sum(W.data[labels[rows] != labels[W.indices]]))
    return data_term + 0.5 * laplacian_weight * cut
