"""Blocked LaplacianKMeans on a real 2-process cluster against the in-memory fit."""

import os
import signal

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA

da = pytest.importorskip("dask.array")

from sparsesolve.clustering import LaplacianKMeans, knn_affinity  # noqa: E402
from sparsesolve.clustering._algorithm import default_bandwidth  # noqa: E402
from sparsesolve.clustering._seeding import spectral_embedding_rows  # noqa: E402
from sparsesolve.distributed import _clustering  # noqa: E402

# The bound sweeps update every row with the same kernel from the same
# inputs as in memory, the graph and the spectral start are the in-memory
# ones bit for bit; only sums over blocks (cluster sums, the energies) are
# added in another order, a few ulps. So the partition, the number of outer
# iterations and of sweeps must be exactly the in-memory ones, and the
# energies agree to round-off (1e-10 leaves room for its growth over the
# sweeps; a wrong halo row or unary unit moves them by > 1e-4).
RTOL = 1e-10


def _points():
    X, _ = make_blobs(n_samples=700, centers=5, cluster_std=2.5, n_features=6,
                      random_state=0)
    return X


def _noise():
    # Laplacian weight 20 on unstructured points: unshifted sweeps oscillate
    # and psd_shift="auto" has to compute the shift mid-fit.
    return np.random.RandomState(0).standard_normal((700, 6))


def _wide():
    # More than 100 features: graph_components="auto" searches neighbours
    # among 50 principal components.
    X, _ = make_blobs(n_samples=600, centers=4, cluster_std=3.0, n_features=120,
                      random_state=1)
    return X


def _graph(client, X, chunks):
    lazy = da.from_array(X, chunks=chunks)
    blocks = client.compute(list(lazy.to_delayed()[:, 0]))
    bounds = np.concatenate([[0], np.cumsum(lazy.chunks[0])]).astype(np.int64)
    return blocks, _clustering._BlockedGraph(client, blocks, bounds, 7, X.dtype)


def test_blocked_graph_is_the_knn_affinity(client):
    X = _points()
    _, graph = _graph(client, X, (150, 6))
    expected = knn_affinity(X, 7, method="exact")
    W = graph.assemble()
    assert_array_equal(W.indptr, expected.indptr)
    assert_array_equal(W.indices, expected.indices)
    assert_array_equal(W.data, expected.data)


def test_blocked_bandwidth_and_spectral_start_are_the_in_memory_ones(client):
    X = _points()
    blocks, graph = _graph(client, X, (150, 6))
    W = knn_affinity(X, 7, method="exact")
    # Bit for bit: the same sampled edges and the same sums.
    assert _clustering._bandwidth(client, blocks, graph) == default_bandwidth(X, W)
    # 700 points: the Lanczos path (not the dense one); the blocked products
    # add the terms of SciPy's CSR product in its order, so ARPACK takes the
    # same steps from the same start vector.
    assert X.shape[0] > _clustering._DENSE_BELOW
    blocked = _clustering._spectral_embedding(graph, 5, np.random.RandomState(4))
    expected = spectral_embedding_rows(W, 5, np.random.RandomState(4))
    assert_array_equal(blocked, expected)
    # (The Lanczos PSD shift is checked by the fits with psd_shift=True and
    # with a shift computed mid-fit, below.)


def test_blocked_principal_components_are_pca(client):
    X = _wide()
    lazy = da.from_array(X, chunks=(200, 120))
    blocks = client.compute(list(lazy.to_delayed()[:, 0]))
    projected = np.concatenate(client.gather(
        _clustering._principal_blocks(client, blocks, 600, 50, X.dtype)))
    expected = PCA(50, svd_solver="covariance_eigh").fit_transform(X)
    # Same signs and order of the axes; X^T X summed over blocks.
    assert_allclose(projected, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def _assert_same_fit(fitted, reference, X, rtol=RTOL):
    assert_array_equal(fitted.labels_, reference.labels_)
    assert fitted.n_iter_ == reference.n_iter_
    assert_array_equal(fitted.n_sweeps_, reference.n_sweeps_)
    assert fitted.bandwidth_ == reference.bandwidth_
    # The shift comes from Lanczos (ARPACK's random start) in both fits.
    assert fitted.psd_shift_ == pytest.approx(reference.psd_shift_, rel=1e-6)
    assert fitted.energy_.shape == reference.energy_.shape
    assert_allclose(fitted.energy_, reference.energy_, rtol=rtol)
    assert fitted.discrete_energy_ == pytest.approx(reference.discrete_energy_,
                                                    rel=rtol)
    assert fitted.cluster_centers_.dtype == reference.cluster_centers_.dtype
    assert_allclose(fitted.cluster_centers_, reference.cluster_centers_,
                    rtol=0, atol=rtol * np.abs(X).max())
    # Nothing dropped: one soft row per point, on the simplex.
    soft = fitted.label_distributions_.compute()
    assert soft.shape == reference.label_distributions_.shape
    assert soft.dtype == reference.label_distributions_.dtype
    assert_allclose(soft, reference.label_distributions_, rtol=0,
                    atol=max(1e-8, 100 * rtol))
    assert_array_equal(fitted.predict(X[:30]), reference.predict(X[:30]))


CASES = {
    # The defaults: spectral start, psd_shift="auto", graph_components="auto".
    "defaults": (_points, (150, 6), dict(n_clusters=5, random_state=0)),
    "restarts": (_points, (150, 6), dict(n_clusters=5, laplacian_weight=2.0,
                                         n_neighbors=7, n_init=3, random_state=3)),
    "random-start-fixed-shift": (_points, (150, 6), dict(
        n_clusters=5, laplacian_weight=2.0, n_neighbors=7, init="random",
        n_init=2, neighbors_method="exact", psd_shift=True, random_state=3)),
    "shift-on-rise": (_noise, (150, 6), dict(n_clusters=5, laplacian_weight=20.0,
                                             random_state=0)),
    "principal-components": (_wide, (200, 120), dict(n_clusters=4, random_state=2)),
    # Float32 stays float32; its sums round at 1e-7 instead of 1e-16.
    "float32": (lambda: _points().astype(np.float32), (150, 6),
                dict(n_clusters=5, random_state=0)),
    # Mean-shift modes, one reduction over the blocks per shift.
    "modes": (_points, (150, 6), dict(n_clusters=5, prototype="mode",
                                      random_state=1)),
    # Clamped points: class means and random points of the unlabelled pool.
    "known-labels": (_points, (150, 6), dict(n_clusters=6, laplacian_weight=2.0,
                                             random_state=1)),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", [
    "defaults",
    pytest.param("restarts", marks=pytest.mark.slow),
    pytest.param("random-start-fixed-shift", marks=pytest.mark.slow),
    pytest.param("shift-on-rise", marks=pytest.mark.slow),
    pytest.param("principal-components", marks=pytest.mark.slow),
    pytest.param("known-labels", marks=pytest.mark.slow),
    pytest.param("modes", marks=pytest.mark.slow),
    pytest.param("float32", marks=pytest.mark.slow),
])
def test_blocked_fit_gives_the_in_memory_fit(client, case):
    make, chunks, params = CASES[case]
    X = make()
    known = None
    if case == "known-labels":
        known = np.full(X.shape[0], -1)
        known[::40] = np.arange(0, X.shape[0], 40) % 4   # 4 classes, 6 clusters
    reference = LaplacianKMeans(**params).fit(X, known_labels=known)
    fitted = LaplacianKMeans(**params).fit(
        da.from_array(X, chunks=chunks),
        known_labels=None if known is None else da.from_array(known, chunks=200))
    _assert_same_fit(fitted, reference, X,
                     rtol=1e-5 if X.dtype == np.float32 else RTOL)
    if known is not None:
        assert_array_equal(fitted.classes_, reference.classes_)
        assert_array_equal(fitted.transduction_, reference.transduction_)
        assert_array_equal(fitted.labels_[::40], known[::40])
    if case == "defaults":
        # The Laplacian term does work here: plain nearest-centre labels differ.
        centers = reference.cluster_centers_
        nearest = np.argmin(((X[:, None] - centers) ** 2).sum(-1), 1)
        assert np.any(nearest != reference.labels_)
    if case == "shift-on-rise":
        assert reference.psd_shift_ > 0
    if case == "principal-components":
        projected = knn_affinity(X, 5, n_components=50)
        assert (projected != knn_affinity(X, 5)).nnz > 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_worker_killed_mid_fit_gives_the_same_answer(client, monkeypatch):
    X = _points()
    params = dict(n_clusters=5, laplacian_weight=2.0, n_neighbors=7, random_state=3)
    reference = LaplacianKMeans(**params).fit(X)
    pids = client.run(os.getpid)
    calls = {"sweeps": 0, "killed": False}
    gather, sweep = _clustering.gather, _clustering._BlockedProblem.sweep

    def counted_sweep(self, *args, **kwargs):
        calls["sweeps"] += 1
        return sweep(self, *args, **kwargs)

    def gather_and_kill(client_, futures):
        # In the third bound sweep, with its halo and sweep tasks in flight:
        # the worker's iterates are recomputed from their lineage.
        if calls["sweeps"] == 3 and not calls["killed"]:
            calls["killed"] = True
            os.kill(next(iter(pids.values())), signal.SIGKILL)
        return gather(client_, futures)

    monkeypatch.setattr(_clustering, "gather", gather_and_kill)
    monkeypatch.setattr(_clustering._BlockedProblem, "sweep", counted_sweep)
    disturbed = LaplacianKMeans(**params).fit(da.from_array(X, chunks=(150, 6)))
    client.wait_for_workers(2, timeout=60)
    assert calls["killed"]
    assert calls["sweeps"] > 3
    assert set(client.run(os.getpid).values()) != set(pids.values())
    _assert_same_fit(disturbed, reference, X)


def test_refuses_what_runs_in_memory_only(client):
    X = da.from_array(_points(), chunks=(350, 6))
    with pytest.raises(ValueError, match="init='k-means\\+\\+'"):
        LaplacianKMeans(5, init="k-means++").fit(X)
    bad = _points()
    bad[400, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LaplacianKMeans(5).fit(da.from_array(bad, chunks=(350, 6)))
    with pytest.raises(ValueError, match="known_labels must be 1-D"):
        LaplacianKMeans(5).fit(X, known_labels=np.zeros(699, dtype=int))
    with pytest.raises(ValueError, match="neighbors_method='exact'"):
        LaplacianKMeans(5, neighbors_method="approximate").fit(X)
    with pytest.raises(ValueError, match="graph_components=None"):
        LaplacianKMeans(5).fit(da.zeros((100, 3000), chunks=(50, 3000)))


def test_auto_neighbours_above_the_approximate_threshold_are_refused(client):
    pytest.importorskip("pynndescent")
    n = _clustering._APPROXIMATE_ABOVE + 1
    with pytest.raises(ValueError, match="neighbors_method='exact'"):
        LaplacianKMeans(5).fit(da.zeros((n, 4), chunks=(n // 2 + 1, 4)))



def test_partial_selection_is_the_stable_sort():
    # Integer distances tie everywhere, inf plays the point itself: the
    # partition shortcut must pick what the full stable sort picks.
    rng = np.random.RandomState(0)
    for _ in range(100):
        n, m = rng.randint(1, 30, size=2)
        values = rng.randint(0, 5, (n, m)).astype(float)
        values[:, rng.randint(m)] = np.inf
        keep = int(rng.randint(0, m + 1))
        assert_array_equal(_clustering._smallest_stable(values, keep),
                           np.argsort(values, axis=1, kind="stable")[:, :keep])
