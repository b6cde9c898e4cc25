"""Every public estimator works under GridSearchCV and cross_val_score.

Both are run with their defaults (no ``scoring``), so they call the
estimator's own ``score``: the idiom a scikit-learn user reaches for first.
Estimators are found by :func:`sparsesolve.utils.all_estimators`; each needs
a small problem of its family below, and a new estimator without one fails
``test_every_estimator_has_a_case``.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sparsesolve.utils import all_estimators


def _blobs():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(90, n_features=3, centers=3, random_state=0)
    return X, y


def _laplacian_kmeans():
    from sparsesolve.clustering import LaplacianKMeans

    X, y = _blobs()
    return LaplacianKMeans(3, random_state=0), X, None, {"n_neighbors": [3, 6]}


def _fewshot():
    from sparsesolve.clustering import TransductiveFewShotClassifier

    X, y = _blobs()
    return TransductiveFewShotClassifier(), X, y, {"n_neighbors": [3, 5]}


def _patches():
    rng = np.random.RandomState(0)
    dictionary = rng.standard_normal((12, 8))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = rng.standard_normal((60, 12)) * (rng.uniform(size=(60, 12)) < 0.2)
    return dictionary, codes @ dictionary + 0.01 * rng.standard_normal((60, 8))


def _sparse_coder():
    from sparsesolve.coding import LqSparseCoder

    dictionary, X = _patches()
    return LqSparseCoder(dictionary), X, None, {"alpha": [0.01, 0.1]}


def _dictionary_learning():
    from sparsesolve.coding import LqDictionaryLearning

    _, X = _patches()
    model = LqDictionaryLearning(n_components=6, max_iter=5, random_state=0)
    return model, X, None, {"alpha": [0.01, 0.1]}


def _kronecker():
    from sparsesolve.datasets import make_kronecker_sparse
    from sparsesolve.kronecker import KroneckerSBL

    Y, factors, _ = make_kronecker_sparse(
        [(4, 6), (5, 6)], n_nonzero_per_mode=2, n_samples=10, snr_db=20,
        random_state=0,
    )
    return KroneckerSBL(factors), Y, None, {"method": ["svd", "am"]}


def _unmixing():
    from sparsesolve.datasets import make_hyperspectral
    from sparsesolve.unmixing import RobustUnmixing, cube_to_pixels

    cube, *_ = make_hyperspectral(8, 8, n_endmembers=3, n_bands=20,
                                  random_state=0)
    model = RobustUnmixing(3, max_iter=30, random_state=0)
    return model, cube_to_pixels(cube), None, {"loss": ["l21", "l2"]}


def _completion():
    from sparsesolve.completion import AltMinCompletion
    from sparsesolve.datasets import make_completion_problem

    problem = make_completion_problem(60, 40, 2, 0.4, random_state=0)
    # Cross-validation splits observed entries: (row, column, value) triples,
    # as a ratings table would be.
    entries = problem.X_train.tocoo()
    X = np.column_stack([entries.row, entries.col, entries.data])
    model = AltMinCompletion(rank=2, max_iter=10, random_state=0,
                             input_type="ratings")
    return model, X, None, {"rank": [1, 2]}


def _poisson():
    from sparsesolve.datasets import make_poisson_problem
    from sparsesolve.poisson import DeepConjugateDirection

    A, _, _ = make_poisson_problem((6, 6, 6), random_state=0)
    return DeepConjugateDirection(max_iter=5), A, None, {"tol": [1e-4, 1e-6]}


CASES = {
    "AltMinCompletion": _completion,
    "DeepConjugateDirection": _poisson,
    "KroneckerSBL": _kronecker,
    "LaplacianKMeans": _laplacian_kmeans,
    "LqDictionaryLearning": _dictionary_learning,
    "LqSparseCoder": _sparse_coder,
    "RobustUnmixing": _unmixing,
    "TransductiveFewShotClassifier": _fewshot,
}


def test_every_estimator_has_a_case():
    assert {name for name, _ in all_estimators()} <= set(CASES)


def _fit_args(y):
    return () if y is None else (y,)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grid_search_with_default_scoring(name):
    estimator, X, y, grid = CASES[name]()
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(estimator, grid, cv=cv, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, *_fit_args(y))
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (len(next(iter(grid.values()))),)
    assert np.all(np.isfinite(scores))
    assert search.best_params_ in search.cv_results_["params"]
    # The refitted model scores the data it was fitted on with its own score.
    assert np.isfinite(search.score(X, *_fit_args(y)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_cross_val_score_with_default_scoring(name):
    estimator, X, y, _ = CASES[name]()
    cv = KFold(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(estimator, X, *_fit_args(y), cv=cv,
                                 error_score="raise")
        # The default scorer is the estimator's score on the held-out fold.
        train, test = next(cv.split(X))
        X_train, X_test = X[train], X[test]
        if estimator.__sklearn_tags__().input_tags.pairwise:
            # An operator or kernel is split on both axes, as scikit-learn does.
            X_train, X_test = X_train[:, train], X_test[:, train]
        fitted = clone(estimator).fit(X_train, *_fit_args(
            None if y is None else y[train]))
        expected = fitted.score(X_test, *_fit_args(None if y is None else y[test]))
    assert scores.shape == (3,)
    assert np.all(np.isfinite(scores))
    assert scores[0] == pytest.approx(expected, rel=1e-8)
