"""k-NN affinity against scikit-learn's kneighbors_graph; the PSD shift."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.neighbors import kneighbors_graph

from sparsesolve.clustering import knn_affinity, psd_shift


def _reference(X, n_neighbors, symmetrize):
    directed = kneighbors_graph(X, n_neighbors, mode="connectivity", include_self=False)
    if symmetrize == "max":
        return directed.maximum(directed.T).toarray()
    return ((directed + directed.T) * 0.5).toarray()


@pytest.mark.parametrize("n_samples", [60, 900])  # dense path and NearestNeighbors
@pytest.mark.parametrize("symmetrize", ["max", "mean"])
def test_exact_graph_matches_kneighbors_graph(n_samples, symmetrize):
    X = np.random.RandomState(0).standard_normal((n_samples, 5))
    W = knn_affinity(X, 4, method="exact", symmetrize=symmetrize)
    assert_array_equal(W.toarray(), _reference(X, 4, symmetrize))
    assert (abs(W - W.T)).nnz == 0
    assert np.all(W.diagonal() == 0)


def test_duplicates_never_link_a_point_to_itself():
    X = np.repeat(np.arange(10.0)[:, None], 3, axis=0)
    W = knn_affinity(X, 2)
    assert np.all(W.diagonal() == 0)
    assert W.nnz >= 2 * X.shape[0]


def test_neighbours_are_clipped_to_the_sample_size():
    W = knn_affinity(np.eye(3), 10)
    assert_array_equal(W.toarray(), 1 - np.eye(3))
    assert knn_affinity(np.ones((1, 2)), 3).nnz == 0


@pytest.mark.slow  # pynndescent compiles its numba code on first use (~1 min)
def test_approximate_graph_recall():
    pytest.importorskip("pynndescent")
    X = np.random.RandomState(1).standard_normal((1500, 8)).astype(np.float32)
    exact = knn_affinity(X, 5, method="exact")
    approximate = knn_affinity(X, 5, method="approximate", random_state=0)
    assert approximate.dtype == np.float32
    assert np.all(approximate.diagonal() == 0)
    recall = exact.multiply(approximate).sum() / exact.sum()
    # NN-descent typically finds > 99 % of the exact edges on such data.
    assert recall > 0.95


def test_affinity_rejects_bad_arguments():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="method"):
        knn_affinity(X, 2, method="hnsw")
    with pytest.raises(ValueError, match="symmetrize"):
        knn_affinity(X, 2, symmetrize="min")
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_affinity(X, 0)
    with pytest.raises(ValueError, match="2-D"):
        knn_affinity(np.ones(4), 2)


@pytest.mark.parametrize("n_samples", [200, 800])  # dense eigensolve, Lanczos
def test_psd_shift_makes_the_graph_psd(n_samples):
    X = np.random.RandomState(2).standard_normal((n_samples, 3))
    W = knn_affinity(X, 3)
    delta = psd_shift(W)
    smallest = np.linalg.eigvalsh(W.toarray())[0]
    assert delta >= -smallest
    assert delta == pytest.approx(-smallest, rel=1e-5)
    assert psd_shift(sp.csr_array((3, 3))) == 0.0
    assert psd_shift(sp.csr_array(np.eye(3))) == 0.0


@pytest.mark.parametrize("shape", [(60, 300), (300, 60)])
def test_projection_matches_pca_distances(shape):
    # Wide data go through the Gram matrix (dual PCA), tall data through
    # scikit-learn's PCA; both must give the distances of an exact PCA.
    from scipy.spatial.distance import pdist
    from sklearn.decomposition import PCA

    from sparsesolve.clustering._affinity import _projected

    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape) @ np.diag(np.linspace(3.0, 0.1, shape[1]))
    projected = _projected(X, 10, 0)
    reference = PCA(10, svd_solver="full").fit_transform(X)
    assert projected.shape == (shape[0], 10)
    np.testing.assert_allclose(pdist(projected), pdist(reference), rtol=1e-6, atol=1e-8)
