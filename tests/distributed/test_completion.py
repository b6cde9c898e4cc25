"""Blocked AltMin on a real 2-process cluster against the in-memory fit."""

import os
import signal

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

da = pytest.importorskip("dask.array")

from sparsesolve.completion import AltMinCompletion  # noqa: E402
from sparsesolve.distributed import _completion  # noqa: E402

# Every row and column is solved from the same entries, in the same order,
# by the same kernel as in memory; only sums over blocks (the mean, the
# loss, the reductions of the spectral start) are added in another order,
# which moves the result by a few ulps per sweep. 1e-8 leaves room for
# that amplification over the sweeps while catching any real difference
# (a wrong ridge, a missed entry or bias move the factors by >1e-3).
RTOL = 1e-8


def _relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


def _ratings(seed=0, n_users=150, n_items=90, n=3000):
    rng = np.random.RandomState(seed)
    U = rng.standard_normal((n_users, 3))
    V = rng.standard_normal((n_items, 3))
    users = rng.randint(0, n_users, n)
    items = rng.randint(0, n_items, n)
    values = (U[users] * V[items]).sum(1) + 3 + 0.1 * rng.standard_normal(n)
    values[:25] += 20  # gross outliers for the Huber loss
    # Sparse, unsorted ids: the encoding must be the same as in memory.
    return np.column_stack([users * 7 + 1000, 5000 - items * 3, values])


def _assert_same_fit(reference, fitted):
    assert fitted.n_iter_ == reference.n_iter_
    assert fitted.alpha_ == reference.alpha_
    assert fitted.n_observed_ == reference.n_observed_
    assert_array_equal(fitted.users_, reference.users_)
    assert_array_equal(fitted.items_, reference.items_)
    for name in ("row_factors_", "col_factors_", "row_biases_", "col_biases_"):
        assert _relative(getattr(reference, name), getattr(fitted, name)) < RTOL, name
    assert_allclose(fitted.loss_history_, reference.loss_history_, rtol=RTOL)
    assert_allclose(fitted.global_mean_, reference.global_mean_, rtol=1e-12)
    assert fitted._row_bias_ridge == pytest.approx(reference._row_bias_ridge,
                                                   rel=1e-12)
    assert (fitted._seen != reference._seen).nnz == 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_ratings_fit_with_defaults_equals_in_memory(client):
    # Defaults: spectral start, alpha="auto" (the held-out path), biases.
    X = _ratings()
    params = dict(rank=3, input_type="ratings", duplicates="mean", random_state=0)
    reference = AltMinCompletion(**params).fit(X)
    fitted = AltMinCompletion(**params).fit(da.from_array(X, chunks=(700, 3)))
    assert len(fitted.alpha_path_) == len(reference.alpha_path_) > 3
    assert_allclose(np.array(fitted.alpha_path_), np.array(reference.alpha_path_),
                    rtol=RTOL)
    _assert_same_fit(reference, fitted)
    # The fitted model is an ordinary in-memory estimator.
    assert isinstance(fitted.row_factors_, np.ndarray)
    pairs = X[:50, :2]
    assert_allclose(fitted.predict_ratings(pairs), reference.predict_ratings(pairs),
                    rtol=1e-7)
    items, _ = fitted.recommend(X[:5, 0], n=4)
    assert_array_equal(items, reference.recommend(X[:5, 0], n=4)[0])


def test_huber_matrix_fit_equals_in_memory(client):
    rng = np.random.RandomState(1)
    M = rng.standard_normal((90, 2)) @ rng.standard_normal((2, 70))
    M[rng.rand(*M.shape) < 0.05] += 15.0
    M[rng.rand(*M.shape) < 0.5] = np.nan
    params = dict(rank=2, loss="huber", solver="exact", alpha=1e-3, biases=True,
                  max_iter=12, tol=0.0, random_state=0)
    reference = AltMinCompletion(**params).fit(M)
    fitted = AltMinCompletion(**params).fit(da.from_array(M, chunks=(25, 70)))
    _assert_same_fit(reference, fitted)
    assert fitted.huber_delta_ == pytest.approx(reference.huber_delta_, rel=RTOL)
    assert fitted.n_features_in_ == reference.n_features_in_ == 70


def test_worker_killed_mid_fit_gives_the_same_answer(client, monkeypatch):
    X = _ratings(seed=2)
    params = dict(rank=3, input_type="ratings", duplicates="last", alpha=0.05,
                  solver="cg", init="random", max_iter=6, tol=0.0, random_state=0)
    lazy = da.from_array(X, chunks=(500, 3))
    undisturbed = AltMinCompletion(**params).fit(lazy)
    pids = client.run(os.getpid)
    calls = {"n": 0}
    gather = _completion.gather

    def gather_and_kill(client_, futures):
        calls["n"] += 1
        if calls["n"] == 12:  # inside the sweeps, with their tasks in flight
            os.kill(next(iter(pids.values())), signal.SIGKILL)
        return gather(client_, futures)

    monkeypatch.setattr(_completion, "gather", gather_and_kill)
    disturbed = AltMinCompletion(**params).fit(lazy)
    client.wait_for_workers(2, timeout=60)
    assert calls["n"] > 12
    assert set(client.run(os.getpid).values()) != set(pids.values())
    # Nothing silently dropped: every distinct (user, item) pair is there.
    distinct = np.unique(X[:, 0] * 1e5 + X[:, 1]).shape[0]
    assert disturbed.n_observed_ == undisturbed.n_observed_ == distinct
    assert disturbed._seen.nnz == distinct
    _assert_same_fit(undisturbed, disturbed)
    reference = AltMinCompletion(**params).fit(X)
    _assert_same_fit(reference, disturbed)


def test_blocked_fit_refuses_what_it_does_not_run(client):
    X = da.from_array(_ratings(), chunks=(1000, 3))
    with pytest.raises(ValueError, match="solver='sketch'"):
        AltMinCompletion(solver="sketch", input_type="ratings").fit(X)
    with pytest.raises(ValueError, match="loss='implicit'"):
        AltMinCompletion(loss="implicit", input_type="ratings").fit(X)
    with pytest.raises(ValueError, match="3 columns"):
        AltMinCompletion(input_type="ratings").fit(X[:, :2])
    with pytest.raises(ValueError, match="more than once"):
        AltMinCompletion(input_type="ratings", alpha=0.1).fit(X)
