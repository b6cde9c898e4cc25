"""Ratings front end, biases, alpha="auto", scoring, splitting and top-N."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sparsesolve._backend import get_namespace
from sparsesolve._progress import Progress
from sparsesolve.completion import AltMinCompletion, RatingsKFold, _estimator
from sparsesolve.completion._algorithm import alternating_minimization
from sparsesolve.completion._observed import csr_from_input, observed_from_host
from sparsesolve.datasets import make_completion_problem


def _biased_ratings(n_users=60, n_items=45, rank=2, density=0.5, noise=0.1, seed=0):
    """Ratings-like data: mean 3.5, user and item offsets, a rank-2 part, noise."""
    rng = np.random.RandomState(seed)
    user_bias = rng.normal(0, 0.5, n_users)
    item_bias = rng.normal(0, 0.5, n_items)
    low_rank = rng.normal(0, 0.4, (n_users, rank)) @ rng.normal(0, 1, (rank, n_items))
    full = 3.5 + user_bias[:, None] + item_bias[None, :] + low_rank
    mask = rng.random_sample(full.shape) < density
    rows, cols = np.nonzero(mask)
    values = full[rows, cols] + noise * rng.standard_normal(rows.size)
    return rows, cols, values, full


def _frame(rows, cols, values):
    # String ids that do not sort like the integers they came from.
    return pd.DataFrame({"user": [f"u{r}" for r in rows],
                         "item": [f"item-{c}" for c in cols],
                         "stars": values})


def _reference_biased_als(dense, mask, left, right, row_bias, col_bias, alpha,
                          scale, n_sweeps):
    """Plain NumPy ALS with biases: per row, the factor by np.linalg.solve on
    the values less both biases, then the bias as a shrunk mean residual."""
    left, right = left.copy(), right.copy()
    row_bias, col_bias = row_bias.copy(), col_bias.copy()
    rank = left.shape[1]
    # Offsets carry the units of the data: their ridge has no scale.
    bias_ridge_rows = alpha * mask.sum(axis=1).mean()
    bias_ridge_cols = alpha * mask.sum(axis=0).mean()
    for _ in range(n_sweeps):
        for i in range(dense.shape[0]):
            cols = np.flatnonzero(mask[i])
            design = right[cols]
            target = dense[i, cols] - col_bias[cols]
            ridge = alpha * scale * max(cols.size, 1)
            left[i] = np.linalg.solve(design.T @ design + ridge * np.eye(rank),
                                      design.T @ (target - row_bias[i]))
            row_bias[i] = (np.sum(target - design @ left[i])
                           / (cols.size + bias_ridge_rows))
        for j in range(dense.shape[1]):
            rows = np.flatnonzero(mask[:, j])
            design = left[rows]
            target = dense[rows, j] - row_bias[rows]
            ridge = alpha * scale * max(rows.size, 1)
            right[j] = np.linalg.solve(design.T @ design + ridge * np.eye(rank),
                                       design.T @ (target - col_bias[j]))
            col_bias[j] = (np.sum(target - design @ right[j])
                           / (rows.size + bias_ridge_cols))
    return left, right, row_bias, col_bias


@pytest.mark.parametrize(("solver", "cg_steps"), [("exact", 1), ("cg", 15)])
def test_biased_sweeps_match_dense_reference(solver, cg_steps):
    rng = np.random.RandomState(0)
    n_rows, n_cols, rank = 30, 40, 3
    dense = 2.0 + rng.standard_normal((n_rows, n_cols))
    mask = rng.random_sample(dense.shape) < 0.5
    mask[:, 0] = mask[0] = True
    left0 = rng.standard_normal((n_rows, rank))
    right0 = rng.standard_normal((n_cols, rank))
    row_bias0 = rng.standard_normal(n_rows)
    col_bias0 = rng.standard_normal(n_cols)
    alpha, scale = 0.05, 1.3
    expected = _reference_biased_als(dense, mask, left0, right0, row_bias0, col_bias0,
                                     alpha, scale, n_sweeps=3)
    xp = get_namespace(dense)
    observed = observed_from_host(csr_from_input(np.where(mask, dense, np.nan)), xp)
    with Progress(3) as progress:
        left, right, _, _, _, biases = alternating_minimization(
            xp, observed, left0.copy(), right0.copy(), solver=solver, alpha=alpha,
            value_scale=scale, loss="squared", max_iter=3, tol=0.0,
            cg_steps=cg_steps, sketch_size=8, random_state=rng, progress=progress,
            biases=(row_bias0.copy(), col_bias0.copy()),
        )
    # CG with 15 > k steps solves the k x k systems to its 1e-10 relative
    # tolerance; Cholesky agrees with np.linalg.solve to round-off.
    for got, want in zip((left, right, *biases), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_biased_fit_is_stationary_for_the_full_objective():
    """An independent check: the gradient of the objective vanishes at the fit."""
    rows, cols, values, _ = _biased_ratings(n_users=25, n_items=20, density=0.6)
    X = sp.csr_matrix((values, (rows, cols)), shape=(25, 20))
    model = AltMinCompletion(rank=2, solver="exact", alpha=0.05, biases=True,
                             max_iter=500, tol=1e-13, random_state=0).fit(X)
    U, V = model.row_factors_, model.col_factors_
    b, c, mu = model.row_biases_, model.col_biases_, model.global_mean_
    # Balancing rotates U, V; with the ALS-WR ridge the penalty is not
    # rotation invariant, so check stationarity in (prediction, biases)
    # space: the bias gradients do not depend on the rotation.
    residual = values - (mu + b[rows] + c[cols] + np.sum(U[rows] * V[cols], axis=1))
    # The bias ridge is alpha * (mean observations per row), see the
    # alpha parameter.
    ridge_b = model.alpha_ * np.bincount(rows, minlength=25).mean()
    ridge_c = model.alpha_ * np.bincount(cols, minlength=20).mean()
    grad_b = -np.bincount(rows, residual, 25) + ridge_b * b
    grad_c = -np.bincount(cols, residual, 20) + ridge_c * c
    # Gradients relative to the size of the data term (sum of |r| per row).
    np.testing.assert_allclose(grad_b, 0, atol=1e-6)
    np.testing.assert_allclose(grad_c, 0, atol=1e-6)
    # mu is the plain mean, and the biases are not absorbed into it.
    assert mu == pytest.approx(values.mean())


def test_ratings_input_forms_agree_and_keep_ids():
    rows, cols, values, _ = _biased_ratings()
    frame = _frame(rows, cols, values)
    kwargs = dict(rank=2, alpha=0.05, input_type="ratings", solver="exact",
                  max_iter=10, tol=0, random_state=0)
    from_frame = AltMinCompletion(**kwargs).fit(frame)
    from_pairs = AltMinCompletion(**kwargs).fit(frame[["user", "item"]],
                                                frame["stars"])
    triplets = np.array(frame, dtype=object)
    from_array = AltMinCompletion(**kwargs).fit(triplets)
    assert from_frame.users_.tolist() == sorted({f"u{r}" for r in rows})
    assert from_frame.items_.tolist() == sorted({f"item-{c}" for c in cols})
    assert from_frame.n_features_in_ == 3
    assert from_pairs.n_features_in_ == 2
    pairs = frame[["user", "item"]].iloc[:50]
    expected = from_frame.predict_ratings(pairs)
    np.testing.assert_allclose(from_pairs.predict_ratings(pairs), expected)
    np.testing.assert_allclose(from_array.predict_ratings(np.array(pairs)), expected)
    # predict with one argument is predict_ratings for ratings input.
    np.testing.assert_allclose(from_frame.predict(pairs), expected)
    # Integer ids with gaps, and a sparse matrix of the same ratings.
    int_model = AltMinCompletion(**kwargs).fit(
        np.column_stack([rows * 10 + 7, cols * 3]), values)
    np.testing.assert_array_equal(int_model.users_, np.unique(rows) * 10 + 7)
    sparse_model = AltMinCompletion(**kwargs).fit(
        sp.coo_matrix((values, (rows, cols))))
    np.testing.assert_allclose(
        sparse_model.predict_ratings(np.column_stack([rows[:50], cols[:50]])),
        int_model.predict_ratings(np.column_stack([rows[:50] * 10 + 7,
                                                   cols[:50] * 3])))
    np.testing.assert_allclose(
        int_model.predict_ratings(np.column_stack([rows[:50] * 10 + 7,
                                                   cols[:50] * 3])), expected)


def test_duplicate_ratings_policy():
    pairs = np.array([["a", "x"], ["a", "y"], ["b", "x"], ["a", "x"], ["b", "y"]],
                     dtype=object)
    ratings = np.array([1.0, 4.0, 2.0, 5.0, 3.0])
    kwargs = dict(rank=1, input_type="ratings", alpha=0.1, solver="exact",
                  max_iter=5, tol=0, random_state=0)
    with pytest.raises(ValueError, match="given more than once"):
        AltMinCompletion(**kwargs).fit(pairs, ratings)
    distinct = pairs[[1, 2, 4, 0]]
    mean = AltMinCompletion(duplicates="mean", **kwargs).fit(pairs, ratings)
    mean_ref = AltMinCompletion(**kwargs).fit(distinct, [4.0, 2.0, 3.0, 3.0])
    np.testing.assert_allclose(mean.predict_ratings(distinct),
                               mean_ref.predict_ratings(distinct))
    assert mean.n_observed_ == 4
    assert mean.global_mean_ == pytest.approx(3.0)
    last = AltMinCompletion(duplicates="last", **kwargs).fit(pairs, ratings)
    last_ref = AltMinCompletion(**kwargs).fit(distinct, [4.0, 2.0, 3.0, 5.0])
    np.testing.assert_allclose(last.predict_ratings(distinct),
                               last_ref.predict_ratings(distinct))


def test_unknown_ids_fall_back_to_biases_and_global_mean():
    rows, cols, values, _ = _biased_ratings()
    frame = _frame(rows, cols, values)
    model = AltMinCompletion(rank=2, alpha=0.05, input_type="ratings",
                             random_state=0).fit(frame)
    mu = model.global_mean_
    item = model.items_[3]
    user = model.users_[5]
    predicted = model.predict_ratings(pd.DataFrame(
        {"user": ["nobody", user, "nobody"], "item": [item, "no-such-item", "none"]}))
    np.testing.assert_allclose(predicted, [mu + model.col_biases_[3],
                                           mu + model.row_biases_[5], mu])
    assert np.all(np.abs(predicted - 3.5) < 1.5)
    # Numeric ids against string ones, and the score of unseen pairs.
    assert model.predict_ratings([[1, 2]])[0] == pytest.approx(mu)


def test_biases_on_by_default_for_ratings_only():
    rows, cols, values, full = _biased_ratings(noise=0.0, density=0.6)
    X = sp.csr_matrix((values, (rows, cols)), shape=full.shape)
    matrix = AltMinCompletion(rank=2, random_state=0).fit(X)
    assert matrix.global_mean_ == 0.0
    assert not np.any(matrix.row_biases_)
    ratings = AltMinCompletion(rank=2, input_type="ratings", random_state=0).fit(X)
    assert ratings.global_mean_ == pytest.approx(values.mean())
    assert np.any(ratings.row_biases_)
    assert np.any(ratings.col_biases_)
    # Rank 2 plus biases is rank 4 without them: a rank-2 model needs the
    # biases to fit it, and then completes the matrix.
    test = ~np.isin(np.arange(full.size), rows * full.shape[1] + cols)
    test_rows, test_cols = np.unravel_index(np.flatnonzero(test), full.shape)
    truth = full[test_rows, test_cols]

    def relative(model):
        error = model.predict_entries(test_rows, test_cols) - truth
        return np.linalg.norm(error) / np.linalg.norm(truth - truth.mean())

    with_biases = AltMinCompletion(rank=2, biases=True, alpha=1e-8, max_iter=200,
                                   tol=1e-12, random_state=0).fit(X)
    assert relative(with_biases) < 1e-3
    assert relative(matrix) > 10 * relative(with_biases)
    # transform folds rows in with their biases, too.
    completed = with_biases.transform(X[:5])
    np.testing.assert_allclose(completed, full[:5], atol=1e-2)
    given = X[:5].tocoo()
    np.testing.assert_array_equal(completed[given.row, given.col], given.data)


def test_score_is_negative_rmse_and_grid_search_works():
    rows, cols, values, _ = _biased_ratings(density=0.6)
    frame = _frame(rows, cols, values)
    train, test = frame.iloc[:1200], frame.iloc[1200:]
    model = AltMinCompletion(rank=2, alpha=0.1, input_type="ratings",
                             random_state=0).fit(train)
    predicted = model.predict_ratings(test)
    rmse = np.sqrt(np.mean((predicted - test["stars"].to_numpy()) ** 2))
    assert model.score(test) == pytest.approx(-rmse)
    assert model.score(test[["user", "item"]], test["stars"]) == pytest.approx(-rmse)
    noisy = _frame(*_biased_ratings(density=0.6, noise=1.0, seed=1)[:3])
    search = GridSearchCV(
        AltMinCompletion(rank=2, input_type="ratings", random_state=0),
        {"alpha": [1e-4, 0.1]}, cv=RatingsKFold(3, random_state=0)).fit(
            noisy[["user", "item"]], noisy["stars"])
    # Noise 1.0, twice the signal, on ~27 ratings per user: a near-zero
    # ridge over-fits.
    assert search.best_params_ == {"alpha": 0.1}
    scores = cross_val_score(AltMinCompletion(rank=2, input_type="ratings",
                                              random_state=0),
                             frame, cv=KFold(3, shuffle=True, random_state=0))
    assert np.all(scores < 0)
    assert np.all(scores > -0.5)
    # Matrix input: held-out entries of the same matrix.
    problem = make_completion_problem(50, 40, 2, 0.5, random_state=0)
    fitted = AltMinCompletion(rank=2, random_state=0).fit(problem.X_train)
    held = sp.csr_matrix((problem.test_values, (problem.test_rows, problem.test_cols)),
                         shape=(50, 40))
    error = (fitted.predict_entries(problem.test_rows, problem.test_cols)
             - problem.test_values)
    assert fitted.score(held) == pytest.approx(-np.sqrt(np.mean(error**2)))
    with pytest.raises(ValueError, match="fitted shape"):
        fitted.score(problem.X_train[:10])


def test_ratings_kfold_stratifies_by_user():
    rows, cols, values, _ = _biased_ratings()
    frame = _frame(rows, cols, values)
    splitter = RatingsKFold(n_splits=4, random_state=0)
    tests = [test for _, test in splitter.split(frame)]
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)),
                                  np.arange(len(frame)))
    counts = frame["user"].value_counts()
    for train, test in splitter.split(frame):
        in_train = frame["user"].iloc[train].value_counts()
        in_test = frame["user"].iloc[test].value_counts()
        for user, count in counts.items():
            # Round-robin dealing: each fold holds floor or ceil of count / 4.
            assert in_test.get(user, 0) in (count // 4, -(-count // 4))
            assert in_train.get(user, 0) > 0
    again = [test for _, test in RatingsKFold(4, random_state=0).split(frame)]
    for first, second in zip(tests, again, strict=True):
        np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match="n_splits"):
        next(RatingsKFold(1).split(frame))


@pytest.mark.parametrize("sampling", ["uniform", "power-law"])
def test_auto_alpha_reaches_noiseless_accuracy(sampling):
    problem = make_completion_problem(300, 250, 4, 0.15, sampling=sampling,
                                      random_state=1)
    model = AltMinCompletion(rank=4, random_state=0).fit(problem.X_train)
    error = (model.predict_entries(problem.test_rows, problem.test_cols)
             - problem.test_values)
    assert np.linalg.norm(error) / np.linalg.norm(problem.test_values) < 1e-4
    assert model.alpha_ <= 1e-6
    # On noisy data the held-out error turns up and the path stops early.
    noisy = make_completion_problem(300, 250, 4, 0.15, noise=0.5, sampling=sampling,
                                    random_state=1)
    noisy_model = AltMinCompletion(rank=4, random_state=0).fit(noisy.X_train)
    assert noisy_model.alpha_ > 100 * model.alpha_
    assert len(noisy_model.alpha_path_) < len(_estimator.AUTO_ALPHAS)


def test_recommend_matches_dense_ranking():
    rows, cols, values, _ = _biased_ratings()
    frame = _frame(rows, cols, values)
    model = AltMinCompletion(rank=2, alpha=0.05, input_type="ratings",
                             random_state=0).fit(frame)
    users = [model.users_[0], "stranger", model.users_[7]]
    items, scores = model.recommend(users, n=5)
    assert items.shape == scores.shape == (3, 5)
    dense = (model.global_mean_ + model.row_biases_[:, None]
             + model.col_biases_[None, :] + model.row_factors_ @ model.col_factors_.T)
    seen = np.zeros(dense.shape, dtype=bool)
    seen[np.searchsorted(model.users_, frame["user"]),
         np.searchsorted(model.items_, frame["item"])] = True
    for position, row in ((0, 0), (2, 7)):
        ranked = np.where(seen[row], -np.inf, dense[row])
        top = np.argsort(-ranked, kind="stable")[:5]
        np.testing.assert_array_equal(items[position], model.items_[top])
        np.testing.assert_allclose(scores[position], ranked[top])
        assert not np.any(seen[row, np.searchsorted(model.items_, items[position])])
    # A stranger gets the items of largest bias.
    top_bias = np.argsort(-model.col_biases_, kind="stable")[:5]
    np.testing.assert_array_equal(items[1], model.items_[top_bias])
    kept, _ = model.recommend(users[:1], n=5, exclude_seen=False)
    np.testing.assert_array_equal(kept[0], model.items_[np.argsort(-dense[0])[:5]])


def test_transform_refuses_outputs_too_large(monkeypatch):
    problem = make_completion_problem(40, 30, 2, 0.5, random_state=0)
    model = AltMinCompletion(rank=2, random_state=0).fit(problem.X_train)
    monkeypatch.setattr(_estimator, "MAX_DENSE_BYTES", 40 * 30 * 8 - 1)
    with pytest.raises(ValueError, match="recommend"):
        model.transform(problem.X_train)
    ratings = AltMinCompletion(rank=2, input_type="ratings",
                               random_state=0).fit(problem.X_train)
    with pytest.raises(ValueError, match="predict_ratings"):
        ratings.transform(problem.X_train)


def test_feature_names_and_set_output():
    rng = np.random.RandomState(0)
    full = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 6))
    frame = pd.DataFrame(np.where(rng.random_sample(full.shape) < 0.7, full, np.nan),
                         columns=[f"sensor_{j}" for j in range(6)])
    model = AltMinCompletion(rank=2, random_state=0).set_output(transform="pandas")
    completed = model.fit_transform(frame)
    assert list(completed.columns) == list(frame.columns)
    assert not completed.isna().any().any()
    assert model.get_feature_names_out().tolist() == list(frame.columns)


def test_bad_ratings_input_is_rejected_clearly():
    model = AltMinCompletion(input_type="ratings")
    with pytest.raises(ValueError, match="3 columns"):
        model.fit(np.ones((4, 2)))
    with pytest.raises(ValueError, match="one rating per row"):
        model.fit(np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.array([[0, 0, np.nan], [1, 1, 2.0]]))
    with pytest.raises(TypeError, match="numeric"):
        model.fit(np.array([["a", "b"], ["c", "d"]], dtype=object), ["x", "y"])
    with pytest.raises(ValueError, match="None or NaN"):
        model.fit(np.array([[None, "b"], ["c", "d"]], dtype=object), [1.0, 2.0])


def test_array_api_strict_input_is_rejected_clearly():
    strict = pytest.importorskip("array_api_strict")
    X = strict.asarray(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(TypeError, match="numpy.asarray"):
        AltMinCompletion().fit(X)
