"""Tests of AltMinCompletion against dense reference ALS and exact recovery."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sparsesolve._backend import get_namespace
from sparsesolve._progress import Progress
from sparsesolve.completion import AltMinCompletion
from sparsesolve.completion._algorithm import alternating_minimization
from sparsesolve.completion._observed import csr_from_input, observed_from_host
from sparsesolve.datasets import make_completion_problem


def _relative_error(model, problem):
    predicted = model.predict_entries(problem.test_rows, problem.test_cols)
    truth = problem.test_values
    return np.linalg.norm(predicted - truth) / np.linalg.norm(truth)


def _reference_als(dense, observed_mask, left, right, alpha, scale, n_sweeps):
    """Plain NumPy ALS: one np.linalg.solve per row, then per column."""
    left, right = left.copy(), right.copy()
    rank = left.shape[1]
    for _ in range(n_sweeps):
        for i in range(dense.shape[0]):
            cols = np.flatnonzero(observed_mask[i])
            design = right[cols]
            ridge = alpha * scale * max(cols.size, 1)
            left[i] = np.linalg.solve(design.T @ design + ridge * np.eye(rank),
                                      design.T @ dense[i, cols])
        for j in range(dense.shape[1]):
            rows = np.flatnonzero(observed_mask[:, j])
            design = left[rows]
            ridge = alpha * scale * max(rows.size, 1)
            right[j] = np.linalg.solve(design.T @ design + ridge * np.eye(rank),
                                       design.T @ dense[rows, j])
    return left, right


@pytest.mark.parametrize(
    ("solver", "cg_steps"),
    # CG in exact arithmetic solves a k x k system in k steps; 3 * k steps
    # absorb round-off, so every solver must then reproduce exact ALS.
    [("exact", 1), ("cg", 12), ("sketch", 12)],
)
def test_sweeps_match_dense_reference_als(solver, cg_steps, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    n_rows, n_cols, rank = 40, 70, 4
    dense = rng.standard_normal((n_rows, n_cols))
    mask = rng.random_sample(dense.shape) < 0.6
    # One long row so that the sketch path (not its exact fallback) is used.
    mask[0] = True
    X = np.where(mask, dense, np.nan)
    left0 = rng.standard_normal((n_rows, rank))
    right0 = rng.standard_normal((n_cols, rank))
    alpha = 0.05
    scale = float(np.sqrt(np.mean(dense[mask] ** 2)))
    expected_left, expected_right = _reference_als(dense, mask, left0, right0, alpha,
                                                   scale, n_sweeps=3)
    xp = get_namespace(dense)
    observed = observed_from_host(csr_from_input(X), xp)
    with Progress(3) as progress:
        left, right, history, _, _, _ = alternating_minimization(
            xp, observed, left0.copy(), right0.copy(), solver=solver, alpha=alpha,
            value_scale=scale, loss="squared", max_iter=3, tol=0.0,
            cg_steps=cg_steps, sketch_size=8, random_state=rng, progress=progress,
        )
    assert len(history) == 3
    # The sketch-preconditioned and plain CG stop at a 1e-10 relative
    # residual; exact Cholesky agrees to round-off.
    np.testing.assert_allclose(left, expected_left, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(right, expected_right, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("solver", ["exact", "cg", "sketch"])
def test_noiseless_recovery(solver, global_random_seed):
    problem = make_completion_problem(150, 120, rank=3, density=0.3, n_test=2000,
                                      random_state=global_random_seed)
    model = AltMinCompletion(rank=3, solver=solver, alpha=1e-10, max_iter=60,
                             tol=1e-12, sketch_size=12, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(problem.X_train)
    # Exact recovery: about 6x oversampling of the 800 degrees of freedom is
    # well inside AltMin's regime; only the 1e-10 ridge and round-off remain.
    assert _relative_error(model, problem) < 1e-6
    assert model.loss_history_[-1] < model.loss_history_[0]


def test_dense_nan_and_sparse_inputs_agree():
    problem = make_completion_problem(60, 50, rank=2, density=0.4, noise=0.1,
                                      random_state=0)
    dense = np.full(problem.X_train.shape, np.nan)
    coo = problem.X_train.tocoo()
    dense[coo.row, coo.col] = coo.data
    kwargs = dict(rank=2, solver="exact", alpha=0.01, max_iter=5, tol=0,
                  random_state=0)
    from_sparse = AltMinCompletion(**kwargs).fit(problem.X_train)
    from_dense = AltMinCompletion(**kwargs).fit(dense)
    np.testing.assert_allclose(from_dense.row_factors_ @ from_dense.col_factors_.T,
                               from_sparse.row_factors_ @ from_sparse.col_factors_.T,
                               rtol=1e-10, atol=1e-12)


def test_explicit_zeros_are_observations_and_duplicates_follow_the_policy():
    rows = np.array([0, 0, 1, 1, 1])
    cols = np.array([0, 1, 1, 2, 2])
    values = np.array([0.0, 2.0, 3.0, 1.0, 4.0])
    coo = sp.coo_matrix((values, (rows, cols)), shape=(2, 3))
    # (1, 2) appears twice: never summed (SciPy would make it 5).
    with pytest.raises(ValueError, match="duplicates='mean'"):
        csr_from_input(coo)
    with pytest.raises(ValueError, match="more than once"):
        AltMinCompletion().fit(coo)
    csr = csr_from_input(coo, duplicates="mean")
    # (0, 0) stored as an explicit zero stays.
    assert csr.nnz == 4
    assert csr.indices[csr.indptr[0]] == 0
    assert csr.data[csr.indptr[0]] == 0.0
    np.testing.assert_array_equal(csr.toarray(), [[0.0, 2.0, 0.0], [0.0, 3.0, 2.5]])
    last = csr_from_input(coo, duplicates="last")
    np.testing.assert_array_equal(last.toarray(), [[0.0, 2.0, 0.0], [0.0, 3.0, 4.0]])
    dense_equivalent = csr_from_input(np.array([[0.0, 2.0, np.nan],
                                                [np.nan, 3.0, 2.5]]))
    np.testing.assert_array_equal(csr.indices, dense_equivalent.indices)
    np.testing.assert_array_equal(csr.data, dense_equivalent.data)


def test_transform_folds_in_new_rows_and_keeps_observed_entries():
    rng = np.random.RandomState(0)
    truth = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 40))
    X = np.where(rng.random_sample(truth.shape) < 0.5, truth, np.nan)
    model = AltMinCompletion(rank=3, solver="exact", alpha=1e-10, max_iter=40,
                             tol=1e-14, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:150])
    completed = model.transform(X[150:])
    observed = ~np.isnan(X[150:])
    np.testing.assert_array_equal(completed[observed], X[150:][observed])
    # Unseen rows with ~20 observations of a rank-3 row are determined exactly.
    np.testing.assert_allclose(completed, truth[150:], atol=1e-6)
    # Sparse input of the same rows gives the same completion.
    sparse_rows = csr_from_input(X[150:])
    np.testing.assert_allclose(model.transform(sparse_rows), completed, atol=1e-10)


def test_predict_matches_factor_product_and_checks_indices():
    problem = make_completion_problem(30, 20, rank=2, density=0.5, random_state=1)
    model = AltMinCompletion(rank=2, max_iter=3, tol=0, random_state=0).fit(
        problem.X_train)
    product = model.row_factors_ @ model.col_factors_.T
    rows, cols = np.array([0, 5, 29]), np.array([19, 0, 3])
    np.testing.assert_allclose(model.predict_entries(rows, cols), product[rows, cols])
    with pytest.raises(ValueError, match="rows must lie in"):
        model.predict_entries([30], [0])
    with pytest.raises(ValueError, match="same shape"):
        model.predict_entries([0, 1], [0])
    with pytest.raises(TypeError, match="cols must hold integers"):
        model.predict_entries([0], [0.5])


def test_predict_is_transform_and_the_two_argument_form_is_deprecated():
    problem = make_completion_problem(30, 20, rank=2, density=0.5, random_state=1)
    model = AltMinCompletion(rank=2, max_iter=3, tol=0, random_state=0).fit(
        problem.X_train)
    np.testing.assert_array_equal(model.predict(problem.X_train),
                                  model.transform(problem.X_train))
    rows, cols = np.array([0, 5, 29]), np.array([19, 0, 3])
    # The old call form still answers, for one release, and names its successor.
    with pytest.warns(FutureWarning, match=r"call predict_entries\(rows, cols\)"):
        old = model.predict(rows, cols)
    np.testing.assert_array_equal(old, model.predict_entries(rows, cols))


def test_huber_resists_outliers():
    kwargs = dict(n_rows=300, n_cols=200, rank=3, density=0.2, noise=0.05,
                  n_test=3000, random_state=0)
    clean = make_completion_problem(**kwargs)
    dirty = make_completion_problem(outlier_fraction=0.05, **kwargs)
    fit = dict(rank=3, solver="exact", alpha=1e-3, max_iter=30, tol=1e-8,
               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        squared_clean = _relative_error(AltMinCompletion(**fit).fit(clean.X_train),
                                        clean)
        squared_dirty = _relative_error(AltMinCompletion(**fit).fit(dirty.X_train),
                                        dirty)
        huber_dirty = _relative_error(
            AltMinCompletion(loss="huber", **fit).fit(dirty.X_train), dirty)
    assert huber_dirty < 2 * squared_clean
    assert squared_dirty > 3 * huber_dirty


@pytest.mark.parametrize("solver", ["exact", "cg", "sketch"])
def test_float32_stays_float32(solver):
    problem = make_completion_problem(50, 40, rank=2, density=0.5, random_state=0)
    X = problem.X_train.astype(np.float32)
    model = AltMinCompletion(rank=2, solver=solver, max_iter=30, tol=1e-2,
                             sketch_size=4, random_state=0).fit(X)
    assert model.row_factors_.dtype == np.float32
    assert model.transform(X).dtype == np.float32
    assert model.predict_entries([0], [1]).dtype == np.float32
    # float32 round-off only: the fit still explains the data.
    assert _relative_error(model, problem) < 1e-2


def test_convergence_warning_and_input_not_modified():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20, 10))
    X[rng.random_sample(X.shape) < 0.3] = np.nan
    original = X.copy()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        AltMinCompletion(rank=2, max_iter=1, tol=1e-12, random_state=0).fit(X)
    np.testing.assert_array_equal(X, original)


def test_bad_input_is_rejected_clearly():
    with pytest.raises(ValueError, match="infinity"):
        AltMinCompletion().fit(np.array([[1.0, np.inf], [np.nan, 2.0]]))
    model = AltMinCompletion(rank=1, max_iter=2, tol=0).fit(np.array([[1.0, 2.0],
                                                               [2.0, np.nan]]))
    with pytest.raises(ValueError, match="features"):
        model.transform(np.ones((2, 3)))


def test_imputer_in_pipeline_and_grid_search():
    rng = np.random.RandomState(0)
    features = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 12))
    target = features @ rng.standard_normal(12)
    X = np.where(rng.random_sample(features.shape) < 0.7, features, np.nan)
    pipeline = make_pipeline(AltMinCompletion(rank=3, alpha=1e-6, max_iter=30,
                                              tol=1e-10, random_state=0),
                             Ridge(alpha=1e-6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(X, target)
        score = pipeline.score(X, target)
        baseline = make_pipeline(SimpleImputer(), Ridge(alpha=1e-6)).fit(X, target)
        search = GridSearchCV(pipeline, {"altmincompletion__rank": [1, 3]}, cv=3)
        search.fit(X, target)
    # Low-rank imputation recovers the features, so the linear target is
    # predicted far better than after mean imputation.
    assert score > 0.99
    assert score > baseline.score(X, target)
    assert search.best_params_ == {"altmincompletion__rank": 3}
