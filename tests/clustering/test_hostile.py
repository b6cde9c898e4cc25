"""Bad input, extreme scales and non-convergence of the clusterers (issue 16)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sparsesolve._sklearn_compat import InvalidParameterError
from sparsesolve.clustering import (
    LaplacianKMeans,
    TransductiveFewShotClassifier,
    knn_affinity,
    psd_shift,
)

SCALES = [1e-300, 2.0**-1000, 1e-150, 3.0, 1e150, 2.0**1000, 1e300]


@pytest.fixture
def blobs():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    X = np.vstack([rng.standard_normal((20, 3)) + c for c in centres])
    return X, np.repeat([0, 1, 2], 20)


@pytest.mark.parametrize("estimator", [
    lambda n_jobs: LaplacianKMeans(3, n_jobs=n_jobs),
    lambda n_jobs: TransductiveFewShotClassifier(n_jobs=n_jobs),
])
def test_n_jobs_zero_refused(blobs, estimator):
    X, y = blobs
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        estimator(0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        knn_affinity(X, n_jobs=0)
    estimator(-2).fit(X, y)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("init", ["spectral", "k-means++", "random"])
def test_labels_do_not_depend_on_the_scale(blobs, scale, init):
    X, _ = blobs
    reference = LaplacianKMeans(3, init=init, random_state=0).fit(X)
    model = LaplacianKMeans(3, init=init, random_state=0).fit(scale * X)
    np.testing.assert_array_equal(model.labels_, reference.labels_)
    np.testing.assert_allclose(model.cluster_centers_ / scale,
                               reference.cluster_centers_, rtol=1e-12, atol=1e-12)
    assert model.bandwidth_ / scale == pytest.approx(reference.bandwidth_)
    np.testing.assert_allclose(model.label_distributions_,
                               reference.label_distributions_, atol=1e-12)
    np.testing.assert_allclose(model.energy_, reference.energy_, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(scale * X), reference.predict(X))
    assert np.isfinite(model.discrete_energy_)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_mode_prototypes_and_known_labels_at_extreme_scales(blobs, scale):
    X, y = blobs
    known = np.where(np.arange(60) % 10 == 0, y, -1)
    for kwargs in (dict(prototype="mode"), dict()):
        reference = LaplacianKMeans(3, random_state=0, **kwargs).fit(
            X, known_labels=known)
        model = LaplacianKMeans(3, random_state=0, **kwargs).fit(
            scale * X, known_labels=known)
        np.testing.assert_array_equal(model.labels_, reference.labels_)
        assert np.all(np.isfinite(model.cluster_centers_ / scale))


def test_score_scales_with_the_square_of_the_data(blobs):
    X, _ = blobs
    reference = LaplacianKMeans(3, random_state=0).fit(X)
    for scale in (1e-100, 1e100):
        model = LaplacianKMeans(3, random_state=0).fit(scale * X)
        assert model.score(scale * X) / scale**2 == pytest.approx(reference.score(X))


def test_init_given_in_the_units_of_X(blobs):
    X, _ = blobs
    init = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    reference = LaplacianKMeans(3, init=init, random_state=0).fit(X)
    model = LaplacianKMeans(3, init=1e300 * init, random_state=0).fit(1e300 * X)
    np.testing.assert_array_equal(model.labels_, reference.labels_)


@pytest.mark.parametrize(("init", "error", "message"), [
    (np.full((3, 3), np.nan), ValueError, "Input init contains NaN"),
    (np.ones((3, 3)) + 1j, ValueError, "Complex data not supported for init"),
    (np.ones((2, 3)), ValueError, "init must have shape"),
    (np.ones(3), ValueError, "init must be a 2-D array"),
    ([["a", "b", "c"]] * 3, TypeError, "init must hold numbers"),
])
def test_bad_init_refused_by_name(blobs, init, error, message):
    X, _ = blobs
    with pytest.raises(error, match=message):
        LaplacianKMeans(3, init=init).fit(X)


@pytest.mark.parametrize(("feature_mean", "message"), [
    (np.full(3, np.nan), "Input feature_mean contains NaN"),
    (np.array([0.0, np.inf, 0.0]), "Input feature_mean contains NaN or infinity"),
    (np.ones(3) + 1j, "Complex data not supported for feature_mean"),
    (np.ones(4), "feature_mean must have n_features=3"),
    (np.ones((3, 3)), "feature_mean must have n_features=3"),
])
def test_bad_feature_mean_refused_by_name(blobs, feature_mean, message):
    X, y = blobs
    with pytest.raises(ValueError, match=message):
        TransductiveFewShotClassifier(feature_mean=feature_mean).fit(X[::5], y[::5])


def test_complex_input_refused_by_name(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        LaplacianKMeans(3).fit(X + 1j)
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        TransductiveFewShotClassifier().fit(X + 1j, y)
    model = TransductiveFewShotClassifier().fit(X[::5], y[::5])
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        model.predict(X + 1j)
    with pytest.raises(ValueError, match="Complex data not supported for y"):
        TransductiveFewShotClassifier().fit(X[::5], y[::5] + 1j)
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        knn_affinity(X + 1j)


@pytest.mark.parametrize("scale", SCALES)
def test_few_shot_predictions_do_not_depend_on_the_scale(blobs, scale):
    # Centred, L2-normalised features (the default) are scale-free.
    X, y = blobs
    mean = X.mean(axis=0) + 0.5
    for feature_mean in (None, mean):
        reference = TransductiveFewShotClassifier(feature_mean=feature_mean).fit(
            X[::5], y[::5])
        scaled_mean = None if feature_mean is None else scale * feature_mean
        model = TransductiveFewShotClassifier(feature_mean=scaled_mean).fit(
            scale * X[::5], y[::5])
        proba = model.predict_proba(scale * X)
        assert np.all(np.isfinite(proba))
        np.testing.assert_allclose(proba, reference.predict_proba(X), atol=1e-10)
        np.testing.assert_array_equal(model.predict(scale * X), reference.predict(X))


def test_unnormalised_few_shot_refuses_overflowing_distances(blobs):
    X, y = blobs
    model = TransductiveFewShotClassifier(normalize=False).fit(1e300 * X[::5], y[::5])
    with pytest.raises(ValueError, match="squared distances between these features"):
        model.predict(1e300 * X)
    # Moderate scales still work, with finite probabilities.
    model = TransductiveFewShotClassifier(normalize=False).fit(1e100 * X[::5], y[::5])
    assert np.all(np.isfinite(model.predict_proba(1e100 * X)))


def test_all_zero_data_give_defined_results():
    zeros = np.zeros((20, 3))
    labels = LaplacianKMeans(3, random_state=0).fit(zeros).labels_
    assert labels.shape == (20,)
    proba = TransductiveFewShotClassifier().fit(zeros[:6], [0, 1] * 3).predict_proba(
        zeros)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("scale", [1e-300, 3.0, 1e300])
def test_knn_graph_does_not_depend_on_the_scale(blobs, scale):
    # Before the search normalised, 1e300 data had infinite distances and
    # 1e-300 data zero ones: 856 and 836 of the 3600 entries changed.
    X, _ = blobs
    difference = knn_affinity(scale * X) != knn_affinity(X)
    assert difference.nnz == 0


@pytest.mark.parametrize(("X", "error", "message"), [
    (np.full((5, 2), np.nan), ValueError, "Input X contains NaN"),
    (np.ones((5, 2)) + 1j, ValueError, "Complex data not supported for X"),
    (np.ones(5), ValueError, "X must be a 2-D array"),
    (np.ones((5, 0)), ValueError, "0 features"),
    (np.array([["a", "b"]] * 5), TypeError, "X must hold numbers"),
    (sp.csr_matrix(np.ones((5, 2))), (TypeError, ValueError), "X"),
])
def test_knn_affinity_refuses_bad_points(X, error, message):
    with pytest.raises(error, match=message):
        knn_affinity(X, n_neighbors=2)


@pytest.mark.parametrize(("kwargs", "name"), [
    (dict(n_neighbors=0), "n_neighbors"), (dict(method="fast"), "method"),
    (dict(symmetrize="min"), "symmetrize"), (dict(n_components=0), "n_components"),
    (dict(random_state="seed"), "random_state"), (dict(n_jobs=1.5), "n_jobs"),
])
def test_knn_affinity_validates_its_parameters(blobs, kwargs, name):
    X, _ = blobs
    with pytest.raises(InvalidParameterError, match=name):
        knn_affinity(X, **kwargs)


def test_psd_shift_checks_its_matrix():
    path = sp.csr_array([[0.0, 1.0], [1.0, 0.0]])
    assert psd_shift(path) == pytest.approx(1.0, rel=1e-5)
    assert psd_shift(path.toarray()) == pytest.approx(1.0, rel=1e-5)
    # Eigenvalues scale with W (computed on W divided by a power of two).
    assert psd_shift(1e300 * path) == pytest.approx(1e300, rel=1e-5)
    assert psd_shift(1e-300 * path) == pytest.approx(1e-300, rel=1e-5)
    with pytest.raises(ValueError, match="Complex data not supported for W"):
        psd_shift(path * (1 + 1j))
    with pytest.raises(ValueError, match="Input W contains NaN"):
        psd_shift(path * np.nan)
    with pytest.raises(ValueError, match="square"):
        psd_shift(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        psd_shift(np.triu(np.ones((3, 3))))
    with pytest.raises(InvalidParameterError, match="W"):
        psd_shift("graph")


def test_non_convergence_says_which_parameter_to_raise(blobs):
    # Uniform points have no clusters to settle into: one outer iteration
    # from random centres leaves labels moving.
    X, y = blobs
    uniform = np.random.RandomState(0).uniform(size=(200, 2))
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        LaplacianKMeans(8, max_iter=1, init="random", tol=0,
                        random_state=0).fit(uniform)
    with pytest.warns(ConvergenceWarning, match="increase max_inner_iter"):
        LaplacianKMeans(3, max_inner_iter=1, inner_tol=0, laplacian_weight=5.0,
                        random_state=0).fit(X)
    model = TransductiveFewShotClassifier(max_iter=1, tol=0).fit(
        uniform[:8], np.arange(8) % 4)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        model.predict(uniform[8:])
    model = TransductiveFewShotClassifier(max_inner_iter=1, inner_tol=0).fit(
        X[::5], y[::5])
    with pytest.warns(ConvergenceWarning, match="increase max_inner_iter"):
        model.predict(X)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_predict_measures_distances_without_overflow(blobs, scale):
    # Squared distances of 1e300 points overflow: measured in the units of
    # the data every point ties at infinity (and gets label 0).
    X, _ = blobs
    centres = LaplacianKMeans(3, random_state=0).fit(X).cluster_centers_
    model = LaplacianKMeans(3, init=scale * centres, max_iter=1,
                            random_state=0).fit(scale * X)
    np.testing.assert_array_equal(model.predict(model.cluster_centers_), [0, 1, 2])


def test_score_that_overflows_is_an_error_naming_X(blobs):
    X, _ = blobs
    model = LaplacianKMeans(3, random_state=0).fit(1e300 * X)
    with pytest.raises(ValueError, match="score of X .* overflows float64"):
        model.score(1e300 * X)


def test_empty_graph_inputs_refused():
    with pytest.raises(ValueError, match="X has 0 samples"):
        knn_affinity(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="W is empty"):
        psd_shift(sp.csr_array((0, 0)))
