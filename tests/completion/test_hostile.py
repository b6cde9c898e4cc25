"""Bad input, extreme scales and non-convergence of the completion (issue 16)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sparsesolve._sklearn_compat import InvalidParameterError
from sparsesolve._validation import AllocationError
from sparsesolve.completion import AltMinCompletion, RatingsKFold

RATINGS = np.array([[0, 0, 5.0], [0, 1, 3.0], [1, 0, 4.0], [1, 2, 2.0],
                    [2, 1, 1.0], [2, 2, 4.0]])


@pytest.fixture
def matrix():
    rng = np.random.RandomState(0)
    low_rank = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 20))
    observed = low_rank.copy()
    observed[rng.rand(*observed.shape) < 0.4] = np.nan
    return observed


@pytest.mark.parametrize("n_jobs", [0, 2.0, "1"])
def test_n_jobs_zero_refused(matrix, n_jobs):
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        AltMinCompletion(n_jobs=n_jobs).fit(matrix)


@pytest.mark.parametrize("n_jobs", [1, -1, -2])
def test_joblib_n_jobs_accepted(matrix, n_jobs):
    reference = AltMinCompletion(rank=3, random_state=0).fit(matrix).transform(matrix)
    completed = AltMinCompletion(rank=3, random_state=0,
                                 n_jobs=n_jobs).fit(matrix).transform(matrix)
    np.testing.assert_allclose(completed, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("empty", [np.full((5, 4), np.nan), sp.csr_matrix((5, 4))])
def test_nothing_observed_refused(empty):
    with pytest.raises(ValueError, match="X holds no observed entries"):
        AltMinCompletion(rank=2).fit(empty)


@pytest.mark.parametrize(("loss", "scale"), [
    ("squared", 1e-300), ("squared", 2.0**-990), ("squared", 3.0),
    ("squared", 2.0**990), ("squared", 1e300), ("huber", 1e-300), ("huber", 1e300)])
def test_predictions_scale_with_the_ratings(matrix, loss, scale):
    # The objective is equivariant in the units of the data (alpha is
    # relative to their spread), so completing s X gives s times the
    # completion of X; before the fit normalised, 1e300 gave LinAlgError.
    reference = AltMinCompletion(rank=3, loss=loss, random_state=0).fit(matrix)
    model = AltMinCompletion(rank=3, loss=loss, random_state=0).fit(scale * matrix)
    completed = model.transform(scale * matrix)
    assert np.all(np.isfinite(completed))
    expected = reference.transform(matrix)
    # Powers of two scale exactly; other factors round the data once.
    np.testing.assert_allclose(completed / scale, expected, rtol=1e-9,
                               atol=1e-9 * np.abs(expected).max())
    rows, cols = np.nonzero(np.isnan(matrix))
    np.testing.assert_allclose(model.predict_entries(rows, cols) / scale,
                               reference.predict_entries(rows, cols), rtol=1e-9,
                               atol=1e-9 * np.abs(expected).max())
    assert model.alpha_ == reference.alpha_


@pytest.mark.parametrize("scale", [2.0**-990, 1e-300, 1e300])
def test_ratings_input_scales(matrix, scale):
    rows, cols = np.nonzero(~np.isnan(matrix))
    pairs, ratings = np.column_stack([rows, cols]), 3.0 + matrix[rows, cols]
    settings = dict(rank=3, input_type="ratings", alpha=0.01, random_state=0,
                    max_iter=200, tol=1e-10)
    reference = AltMinCompletion(**settings).fit(pairs, ratings)
    model = AltMinCompletion(**settings).fit(pairs, scale * ratings)
    unseen = np.column_stack(np.nonzero(np.isnan(matrix)))
    np.testing.assert_allclose(model.predict_ratings(unseen) / scale,
                               reference.predict_ratings(unseen), rtol=1e-7)
    assert model.global_mean_ / scale == pytest.approx(reference.global_mean_)


@pytest.mark.parametrize("loss", ["squared", "huber", "implicit"])
def test_all_zero_data_give_zero_predictions(loss):
    zeros = np.zeros((10, 8))
    model = AltMinCompletion(rank=2, loss=loss, random_state=0).fit(zeros)
    values = model.predict_entries(np.arange(8), np.arange(8))
    assert np.all(np.isfinite(values))
    if loss != "implicit":
        np.testing.assert_array_equal(model.transform(zeros), zeros)
        np.testing.assert_array_equal(values, 0.0)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_implicit_extreme_strengths_are_finite(matrix, scale):
    strengths = scale * np.abs(np.nan_to_num(matrix))
    model = AltMinCompletion(rank=2, loss="implicit", random_state=0).fit(strengths)
    assert np.all(np.isfinite(model.row_factors_))
    assert np.all(np.isfinite(model.col_factors_))


def test_complex_input_refused_by_name(matrix):
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        AltMinCompletion().fit(matrix + 1j)
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        AltMinCompletion().fit(sp.csr_matrix(np.nan_to_num(matrix) + 1j))
    model = AltMinCompletion(rank=2, random_state=0).fit(matrix)
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        model.transform(matrix + 1j)
    with pytest.raises(ValueError, match="Complex data not supported for y"):
        AltMinCompletion(rank=1, input_type="ratings").fit(RATINGS[:, :2],
                                                           RATINGS[:, 2] + 1j)
    with pytest.raises(ValueError, match="Complex data not supported"):
        AltMinCompletion(rank=1, input_type="ratings").fit(
            sp.csr_matrix(np.array([[1.0 + 1j, 0.0], [0.0, 2.0]])))


def test_huge_sketch_refused_before_allocating(matrix):
    model = AltMinCompletion(rank=2, solver="sketch", sketch_size=10**9)
    with pytest.raises(AllocationError, match="lower sketch_size"):
        model.fit(matrix)


def test_ratings_kfold_refuses_more_folds_than_ratings():
    with pytest.raises(ValueError, match="n_splits=7 greater than the number"):
        list(RatingsKFold(n_splits=7).split(RATINGS))
    assert len(list(RatingsKFold(n_splits=6).split(RATINGS))) == 6


def test_non_convergence_says_which_parameter_to_raise(matrix):
    model = AltMinCompletion(rank=3, max_iter=1, tol=1e-12, init="random",
                             alpha=1e-3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        model.fit(matrix)
    implicit = AltMinCompletion(rank=3, max_iter=1, tol=1e-12, loss="implicit",
                                init="random", random_state=0)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        implicit.fit(np.abs(np.nan_to_num(matrix)))


def test_score_of_huge_ratings_is_finite(matrix):
    # An RMSE has the units of the data: computed on the residuals divided
    # by a power of two, it does not overflow at 1e300.
    reference = AltMinCompletion(rank=3, random_state=0).fit(matrix)
    model = AltMinCompletion(rank=3, random_state=0).fit(1e300 * matrix)
    score = model.score(1e300 * matrix)
    assert np.isfinite(score)
    assert score / 1e300 == pytest.approx(reference.score(matrix), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("X", "message"), [
    (np.zeros((0, 2)), "X holds no ratings"),
    (np.array([[np.nan, 1.0], [0.0, 1.0]]), "X: user ids contain NaN"),
])
def test_ratings_kfold_errors_name_X(X, message):
    with pytest.raises(ValueError, match=message):
        list(RatingsKFold(n_splits=2).split(X))
