"""make_fewshot_episodes: shapes, disjointness, balance, reproducibility."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sparsesolve.datasets import make_fewshot_episodes


def test_episodes_are_balanced_disjoint_and_reproducible():
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(12), 30)
    X = np.column_stack([np.arange(y.size), rng.standard_normal(y.size)])
    episodes = make_fewshot_episodes(X, y, 4, 3, 7, 25, random_state=5)
    again = make_fewshot_episodes(X, y, 4, 3, 7, 25, random_state=5)
    assert len(episodes) == 25
    for (X_s, y_s, X_q, y_q), (X_s2, _, X_q2, _) in zip(episodes, again, strict=False):
        assert X_s.shape == (12, 2)
        assert X_q.shape == (28, 2)
        assert np.unique(y_s).size == 4
        assert_array_equal(np.unique(y_s, return_counts=True)[1], [3] * 4)
        assert_array_equal(np.unique(y_q, return_counts=True)[1], [7] * 4)
        assert set(y_q) == set(y_s)
        # Rows carry their index in column 0: support and queries are disjoint
        # and every label matches the row it came from.
        assert not set(X_s[:, 0]) & set(X_q[:, 0])
        assert_array_equal(y[X_s[:, 0].astype(int)], y_s)
        assert_array_equal(X_s, X_s2)
        assert_array_equal(X_q, X_q2)


def test_episode_sampling_rejects_impossible_requests():
    X, y = np.zeros((20, 2)), np.repeat(np.arange(4), 5)
    with pytest.raises(ValueError, match="n_way=5"):
        make_fewshot_episodes(X, y, 5, 1, 2, 1)
    with pytest.raises(ValueError, match="n_shot"):
        make_fewshot_episodes(X, y, 2, 0, 2, 1)
    with pytest.raises(ValueError, match="one label per row"):
        make_fewshot_episodes(X, y[:3], 2, 1, 2, 1)
