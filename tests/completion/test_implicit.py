"""Confidence-weighted ALS for implicit feedback (loss="implicit")."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsesolve._backend import get_namespace
from sparsesolve._progress import Progress
from sparsesolve.completion import AltMinCompletion
from sparsesolve.completion._algorithm import implicit_alternating_minimization


def _interactions(n_rows=30, n_cols=25, seed=0):
    rng = np.random.RandomState(seed)
    counts = rng.poisson(1.0, (n_rows, n_cols)) * (rng.random_sample((n_rows, n_cols))
                                                   < 0.3)
    stored = counts > 0
    stored[0, 0] = True  # an explicit zero: stored, preference 0
    counts[0, 0] = 0
    csr = sp.csr_matrix((counts[stored].astype(float), np.nonzero(stored)),
                        shape=counts.shape)
    return counts.astype(float), csr


def _reference_implicit_als(strength, left, right, confidence, reg, n_sweeps):
    """Dense Hu-Koren-Volinsky ALS: every entry, per-row np.linalg.solve."""
    left, right = left.copy(), right.copy()
    weight = 1.0 + confidence * strength
    preference = (strength > 0).astype(float)
    rank = left.shape[1]
    for _ in range(n_sweeps):
        for i in range(strength.shape[0]):
            gram = right.T @ (weight[i][:, None] * right) + reg * np.eye(rank)
            left[i] = np.linalg.solve(gram, right.T @ (weight[i] * preference[i]))
        for j in range(strength.shape[1]):
            gram = left.T @ (weight[:, j][:, None] * left) + reg * np.eye(rank)
            right[j] = np.linalg.solve(gram, left.T @ (weight[:, j] * preference[:, j]))
    return left, right


@pytest.mark.parametrize(("solver", "cg_steps"), [("exact", 1), ("cg", 20)])
def test_implicit_sweeps_match_dense_reference(solver, cg_steps):
    strength, csr = _interactions()
    rng = np.random.RandomState(1)
    left0 = rng.standard_normal((30, 3))
    right0 = rng.standard_normal((25, 3))
    expected = _reference_implicit_als(strength, left0, right0, 2.0, 0.1, 3)
    with Progress(3) as progress:
        left, right, history, _ = implicit_alternating_minimization(
            get_namespace(left0), csr, left0.copy(), right0.copy(), solver=solver,
            reg=0.1, confidence=2.0, max_iter=3, tol=0.0, cg_steps=cg_steps,
            progress=progress)
    # CG with 20 > k steps reaches its 1e-10 relative tolerance on 3 x 3
    # systems; Cholesky agrees with np.linalg.solve to round-off.
    np.testing.assert_allclose(left, expected[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(right, expected[1], rtol=1e-7, atol=1e-9)
    # The reported loss is the weighted error over every entry, computed here
    # densely.
    weight = 1.0 + 2.0 * strength
    dense_loss = np.mean(weight * ((strength > 0) - left @ right.T) ** 2)
    assert history[-1] == pytest.approx(dense_loss, rel=1e-10)
    assert np.all(np.diff(history) <= 1e-12)


def test_implicit_estimator_recommends_unseen_items():
    # Two groups of users, each interacting with its own half of the items:
    # a rank-2 implicit model must recommend the unseen items of the group.
    rng = np.random.RandomState(0)
    n_users, n_items = 40, 30
    group = np.arange(n_users) % 2
    liked = (np.arange(n_items)[None, :] % 2) == group[:, None]
    seen = liked & (rng.random_sample((n_users, n_items)) < 0.6)
    X = sp.csr_matrix(seen.astype(float))
    model = AltMinCompletion(rank=2, loss="implicit", random_state=0).fit(X)
    assert model.alpha_ == 0.01
    items, _ = model.recommend(np.arange(n_users), n=3)
    for user in range(n_users):
        assert not seen[user, items[user]].any()
        unseen_liked = liked[user] & ~seen[user]
        assert liked[user, items[user][: min(3, unseen_liked.sum())]].all()
    predicted = model.predict_entries(np.array([0, 1]), np.array([0, 0]))
    assert predicted[0] > 0.5 > predicted[1]


def test_implicit_rejects_what_it_cannot_do():
    _, csr = _interactions()
    with pytest.raises(ValueError, match="biases=True"):
        AltMinCompletion(loss="implicit", biases=True).fit(csr)
    with pytest.raises(ValueError, match="sketch"):
        AltMinCompletion(loss="implicit", solver="sketch").fit(csr)
    with pytest.raises(ValueError, match=">= 0"):
        AltMinCompletion(loss="implicit").fit(-csr)
    model = AltMinCompletion(rank=2, loss="implicit", random_state=0).fit(csr)
    with pytest.raises(ValueError, match="recommend"):
        model.transform(csr)
    with pytest.raises(ValueError, match="ranking metric"):
        model.score(csr)
