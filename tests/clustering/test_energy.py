"""The relaxed energy (lambda/2 scaling, PSD-shifted graph) never increases."""

import numpy as np
import pytest

from sparsesolve.clustering import LaplacianKMeans
from sparsesolve.clustering._affinity import knn_affinity, psd_shift
from sparsesolve.clustering._algorithm import bound_sweep, negative_entropy

# Energies are sums of O(n_samples) terms of order one; a rise smaller than
# this relative amount is floating-point round-off, not an increase.
_ROUNDOFF = 1e-10


def _rises(energy):
    energy = np.asarray(energy)
    steps = np.diff(energy)
    return np.flatnonzero(steps > _ROUNDOFF * np.maximum(np.abs(energy[:-1]), 1.0))


@pytest.mark.parametrize("prototype", ["mean", "mode"])
def test_energy_never_increases_over_many_seeds(prototype):
    # 40 seeds x 3 weights of semi-supervised problems on random blobs.
    from sklearn.datasets import make_blobs

    for seed in range(40):
        X, truth = make_blobs(
            90, n_features=4, centers=4, cluster_std=2.0, random_state=seed
        )
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        y = np.full(X.shape[0], -1)
        y[:8] = truth[:8] if np.unique(truth[:8]).size == 4 else -1
        for lam in (0.5, 2.0, 6.0):
            model = LaplacianKMeans(
                n_clusters=4,
                laplacian_weight=lam,
                n_neighbors=3,
                prototype=prototype,
                random_state=seed,
                max_iter=20,
            )
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, known_labels=y if np.any(y >= 0) else None)
            start = 0
            for sweeps in model.n_sweeps_:
                segment = model.energy_[start : start + sweeps]
                start += sweeps
                assert _rises(segment).size == 0, (seed, lam, segment)


def test_energy_rises_without_the_shift_but_not_with_it():
    # The shift is what the guarantee rests on: with a non-PSD kNN graph and
    # a large weight the plain Jacobi sweep oscillates (the energy goes up);
    # with W + delta I it decreases at every sweep. Fixed unary costs.
    rng = np.random.RandomState(0)
    rises = {True: 0, False: 0}
    for seed in range(20):
        rng = np.random.RandomState(seed)
        X = rng.standard_normal((60, 3))
        W = knn_affinity(X, 3)
        graph = (W.indptr.astype(np.int64), W.indices.astype(np.int64), W.data)
        unary = rng.uniform(0, 1, size=(60, 3))
        clamp = np.full(60, -1, dtype=np.int64)
        for shifted in (True, False):
            delta = psd_shift(W) if shifted else 0.0
            y = rng.dirichlet(np.ones(3), size=60)
            energy = []
            for _ in range(30):
                y, _, rows = bound_sweep(
                    unary, *graph, y, negative_entropy(y, np), 4.0, delta, clamp
                )
                energy.append(rows.sum())
            rises[shifted] += _rises(energy).size
    assert rises[True] == 0
    assert rises[False] > 0


def test_fewshot_energy_history_via_the_clusterer_is_monotone():
    from sklearn.datasets import load_digits

    from sparsesolve.datasets import make_fewshot_episodes

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    for X_s, y_s, X_q, _ in make_fewshot_episodes(X, y, 5, 1, 15, 30, random_state=0):
        Z = np.vstack([X_s, X_q])
        Z = Z - Z.mean(axis=0)
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        labels = np.concatenate(
            [np.searchsorted(np.unique(y_s), y_s), -np.ones(75, int)]
        )
        model = LaplacianKMeans(5, laplacian_weight=1.0, n_neighbors=2).fit(
            Z, known_labels=labels
        )
        start = 0
        for sweeps in model.n_sweeps_:
            assert _rises(model.energy_[start : start + sweeps]).size == 0
            start += sweeps
