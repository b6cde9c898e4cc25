"""LaplacianKMeans and TransductiveFewShotClassifier against references."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.clustering import LaplacianKMeans, TransductiveFewShotClassifier
from sparsesolve.datasets import make_fewshot_episodes


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_zero_weight_is_lloyds_kmeans():
    # lambda = 0: the sweep is softmax(-A) whose argmax is the nearest
    # centre, so the outer loop is Lloyd's algorithm from the same start.
    X, _ = make_blobs(300, n_features=3, centers=5, random_state=0)
    start = X[[0, 50, 100, 150, 200]]
    ours = LaplacianKMeans(5, laplacian_weight=0.0, init=start, tol=0).fit(X)
    theirs = KMeans(5, init=start, n_init=1, algorithm="lloyd", tol=0).fit(X)
    assert_array_equal(ours.labels_, theirs.labels_)
    assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=1e-12)
    assert_array_equal(ours.predict(X), theirs.predict(X))


def test_labelled_points_are_clamped_and_transduced(global_random_seed):
    X, truth = make_blobs(
        200, n_features=2, centers=3, cluster_std=1.5, random_state=global_random_seed
    )
    rng = np.random.RandomState(global_random_seed)
    y = np.full(200, -1)
    labelled = rng.choice(200, 20, replace=False)
    # Deliberately wrong labels on a few points must still be honoured.
    y[labelled] = (truth[labelled] + (np.arange(20) < 3)) % 3 + 10
    y_copy = y.copy()
    model = LaplacianKMeans(3, laplacian_weight=1.0, random_state=0).fit(
        X, known_labels=y
    )
    assert_array_equal(y, y_copy)
    assert_array_equal(model.transduction_[labelled], y[labelled])
    assert_array_equal(model.classes_, [10, 11, 12])
    assert_array_equal(model.classes_[model.labels_], model.transduction_)
    assert model.label_distributions_.shape == (200, 3)
    assert_allclose(model.label_distributions_.sum(axis=1), 1.0)


def test_extra_clusters_have_no_class():
    X, truth = make_blobs(150, n_features=2, centers=3, random_state=1)
    y = np.full(150, -1)
    y[np.flatnonzero(truth == 0)[:3]] = 0
    model = LaplacianKMeans(3, random_state=0).fit(X, known_labels=y)
    assert set(np.unique(model.transduction_)) <= {0, -1}
    assert np.any(model.transduction_ == -1)


def test_graph_term_helps_on_two_moons():
    # Non-convex clusters: prototypes alone cut the moons across; the graph
    # term pulls the assignments along each moon (K-modes, 5 labels a moon).
    from sklearn.datasets import make_moons
    from sklearn.metrics import adjusted_rand_score

    X, truth = make_moons(400, noise=0.05, random_state=0)
    y = np.full(400, -1)
    y[np.flatnonzero(truth == 0)[:5]] = 0
    y[np.flatnonzero(truth == 1)[:5]] = 1
    plain = LaplacianKMeans(2, laplacian_weight=0.0, prototype="mode").fit(
        X, known_labels=y
    )
    graph = LaplacianKMeans(2, laplacian_weight=1.0, prototype="mode").fit(
        X, known_labels=y
    )
    assert adjusted_rand_score(truth, graph.transduction_) > (
        adjusted_rand_score(truth, plain.transduction_) + 0.3
    )


def test_mode_prototypes_resist_an_outlier():
    # A cluster mode sits in the dense part; the mean is dragged by outliers.
    rng = np.random.RandomState(0)
    dense = rng.normal(0, 0.05, size=(60, 2))
    far = np.array([[3.0, 3.0], [3.1, 2.9], [2.9, 3.1]])
    X = np.vstack([dense, far])
    y = np.full(len(X), -1)
    y[0] = 0
    mode = LaplacianKMeans(1, prototype="mode", n_neighbors=3).fit(X, known_labels=y)
    mean = LaplacianKMeans(1, prototype="mean", n_neighbors=3).fit(X, known_labels=y)
    assert np.linalg.norm(mode.cluster_centers_[0]) < 0.05
    assert np.linalg.norm(mean.cluster_centers_[0]) > 0.1


def test_float32_stays_float32(global_dtype):
    X, _ = make_blobs(80, n_features=4, centers=3, random_state=0)
    X = X.astype(global_dtype)
    model = LaplacianKMeans(3, random_state=0).fit(X)
    assert model.cluster_centers_.dtype == global_dtype
    assert model.label_distributions_.dtype == global_dtype
    support, y_support = X[:6], np.array([0, 0, 1, 1, 2, 2])
    proba = TransductiveFewShotClassifier().fit(support, y_support).predict_proba(X)
    assert proba.dtype == global_dtype


def test_bad_input_is_rejected():
    X = np.random.RandomState(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="n_clusters must be at least"):
        LaplacianKMeans(2).fit(X, known_labels=np.arange(10))
    with pytest.raises(ValueError, match="one label per sample"):
        LaplacianKMeans(2).fit(X, known_labels=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="integer class labels"):
        LaplacianKMeans(2).fit(X, known_labels=np.full(10, 0.5))
    with pytest.raises(ValueError, match="n_samples=10 should be >= n_clusters=20"):
        LaplacianKMeans(20).fit(X)
    with pytest.raises(ValueError, match="init must have shape"):
        LaplacianKMeans(2, init=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match="feature_mean"):
        TransductiveFewShotClassifier(feature_mean=np.zeros(5)).fit(
            X, np.arange(10) % 2
        )
    with pytest.raises(ValueError, match="requires y"):
        TransductiveFewShotClassifier().fit(X, None)


def test_non_convergence_warns():
    X, _ = make_blobs(200, n_features=2, centers=6, random_state=3)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        LaplacianKMeans(6, max_iter=1, random_state=0).fit(X)


def _constrained_kmeans(support, y_support, queries, n_classes, n_iter=50):
    """Reference: K-means on support+queries with the supports clamped."""
    points = np.vstack([support, queries])
    centers = np.stack([support[y_support == c].mean(0) for c in range(n_classes)])
    for _ in range(n_iter):
        labels = ((points[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        labels[: len(support)] = y_support
        new = np.stack([points[labels == c].mean(0) for c in range(n_classes)])
        if np.allclose(new, centers):
            break
        centers = new
    return labels[len(support) :]


def test_zero_weight_classifier_is_constrained_kmeans(digits):
    X, y = digits
    model = TransductiveFewShotClassifier(
        laplacian_weight=0.0,
        normalize=False,
        shift_query=False,
        feature_mean=np.zeros(64),
    )
    for X_s, y_s, X_q, _ in make_fewshot_episodes(X, y, 5, 2, 10, 10, random_state=0):
        classes, y_index = np.unique(y_s, return_inverse=True)
        expected = classes[_constrained_kmeans(X_s, y_index, X_q, 5)]
        assert_array_equal(model.fit(X_s, y_s).predict(X_q), expected)


def test_fewshot_beats_nearest_prototype_on_digits(digits):
    # Transductive inference must improve on SimpleShot on the same episodes
    # (1-shot; 40 episodes: the gap, about 9 points, is several CIs wide).
    X, y = digits
    mean = X.mean(axis=0)
    ours, simple = [], []
    for X_s, y_s, X_q, y_q in make_fewshot_episodes(X, y, 5, 1, 15, 40, random_state=1):
        model = TransductiveFewShotClassifier(feature_mean=mean).fit(X_s, y_s)
        proba = model.predict_proba(X_q)
        assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
        assert_array_equal(model.classes_[proba.argmax(1)], model.predict(X_q))
        ours.append(np.mean(model.predict(X_q) == y_q))
        s = (X_s - mean) / np.linalg.norm(X_s - mean, axis=1, keepdims=True)
        q = (X_q - mean) / np.linalg.norm(X_q - mean, axis=1, keepdims=True)
        simple.append(
            np.mean(y_s[((q[:, None] - s[None]) ** 2).sum(-1).argmin(1)] == y_q)
        )
    assert np.mean(ours) > np.mean(simple) + 0.04


def test_fewshot_keeps_string_labels_and_does_not_modify_input(digits):
    X, y = digits
    names = np.array(list("abcdefghij"))[y]
    X_s, y_s, X_q, _ = make_fewshot_episodes(X, names, 3, 2, 5, 1, random_state=0)[0]
    X_q_copy = X_q.copy()
    predicted = TransductiveFewShotClassifier().fit(X_s, y_s).predict(X_q)
    assert predicted.dtype.kind == "U"
    assert set(predicted) <= set(y_s)
    assert_array_equal(X_q, X_q_copy)


def test_fit_ignores_ground_truth_y():
    # scikit-learn's clusterers ignore y: labels passed by cross_val_score
    # must not leak into the fit (they used to be clamped, giving ARI 1.0).
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import KFold, cross_val_score

    X, truth = make_blobs(300, n_features=2, centers=3, cluster_std=2.5,
                          random_state=3)
    with_y = LaplacianKMeans(3, random_state=0).fit(X, truth)
    without = LaplacianKMeans(3, random_state=0).fit(X)
    assert_array_equal(with_y.labels_, without.labels_)
    assert with_y.classes_.size == 0
    scores = cross_val_score(LaplacianKMeans(3, random_state=0), X, truth,
                             scoring="adjusted_rand_score")
    # The same folds (KFold(5), as cross_val_score uses for a clusterer) with
    # y withheld from fit and used only to score.
    withheld = [
        adjusted_rand_score(
            truth[test],
            LaplacianKMeans(3, random_state=0).fit(X[train]).predict(X[test]),
        )
        for train, test in KFold(5).split(X)
    ]
    assert_allclose(scores, withheld)


def test_partial_labels_in_y_are_deprecated():
    X, truth = make_blobs(60, n_features=2, centers=2, random_state=0)
    known = np.full(60, -1)
    known[:4] = truth[:4]
    with pytest.warns(FutureWarning, match="known_labels"):
        old = LaplacianKMeans(2, random_state=0).fit(X, known)
    new = LaplacianKMeans(2, random_state=0).fit(X, known_labels=known)
    assert_array_equal(old.transduction_, new.transduction_)
    assert_array_equal(new.transduction_[:4], truth[:4])


def test_known_labels_are_routed_through_a_pipeline():
    import sklearn
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, truth = make_blobs(120, n_features=3, centers=3, random_state=2)
    known = np.full(120, -1)
    known[::20] = truth[::20] + 5
    direct = LaplacianKMeans(3, random_state=0).fit(
        StandardScaler().fit_transform(X), known_labels=known)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler(),
            LaplacianKMeans(3, random_state=0).set_fit_request(known_labels=True),
        )
        pipe.fit(X, known_labels=known)
    assert_array_equal(pipe[-1].transduction_, direct.transduction_)
    assert_array_equal(pipe[-1].classes_, np.unique(truth) + 5)


def test_score_is_minus_the_kmeans_inertia():
    # Reference: scikit-learn's KMeans.score on the same prototypes.
    from sklearn.cluster import KMeans

    X, _ = make_blobs(200, n_features=4, centers=4, random_state=0)
    model = LaplacianKMeans(4, random_state=0).fit(X)
    reference = KMeans(4, init=model.cluster_centers_, n_init=1, max_iter=1)
    reference.fit(X).cluster_centers_ = model.cluster_centers_
    X_new = X[::3] + 0.1
    assert_allclose(model.score(X_new), reference.score(X_new), rtol=1e-10)
    assert model.score(X_new) < 0
