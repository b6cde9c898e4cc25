"""Cross-validation over observed ratings, stratified by user."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from ._ratings import encode_ids, pairs_from_input

__all__ = ["RatingsKFold"]


class RatingsKFold(BaseCrossValidator):
    """K-fold cross-validation over observed entries, stratified by user.

    Each sample is one observed (user, item, rating) entry. Every user's
    entries are shuffled and dealt round-robin into the folds, from a random
    starting fold, so that a user with at least ``n_splits`` ratings has
    ratings in every training set and in every test set. A plain
    :class:`~sklearn.model_selection.KFold` over ratings can instead leave
    a light user's ratings all in one test fold, and the model then scores
    a user it never saw (it falls back to biases, which says little about
    the factor model being tuned).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling within each user and the starting folds.

    See Also
    --------
    AltMinCompletion : Its ``score`` is the negative RMSE on given ratings.
    sklearn.model_selection.GroupKFold : The opposite: whole users held out.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.completion import RatingsKFold
    >>> pairs = np.array([[u, i] for u in range(3) for i in range(4)])
    >>> splitter = RatingsKFold(n_splits=2, random_state=0)
    >>> [len(test) for _, test in splitter.split(pairs)]
    [6, 6]
    """

    def __init__(self, n_splits=5, *, random_state=None):
        self.n_splits = n_splits
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits

    def _iter_test_masks(self, X=None, y=None, groups=None):
        fold = self._fold_of_each_entry(X)
        for k in range(self.n_splits):
            yield fold == k

    def _fold_of_each_entry(self, X):
        if X is None:
            raise ValueError("RatingsKFold needs X, the (user, item[, rating]) "
                             "rows, to stratify by user.")
        if (not isinstance(self.n_splits, numbers.Integral)
                or isinstance(self.n_splits, bool) or self.n_splits < 2):
            raise ValueError(f"n_splits must be an integer of at least 2; got "
                             f"{self.n_splits!r}.")
        users, _ = pairs_from_input(X)
        _, codes = encode_ids(users, "user")
        random_state = check_random_state(self.random_state)
        n_entries = codes.shape[0]
        if n_entries == 0:
            raise ValueError("RatingsKFold: X holds no ratings to split.")
        if self.n_splits > n_entries:
            # As scikit-learn's KFold: a fold with no test entry is an error.
            raise ValueError(
                f"Cannot have number of splits n_splits={self.n_splits} greater "
                f"than the number of ratings: {n_entries}."
            )
        # Shuffle, then group by user (stable sort keeps the shuffled order
        # within a user), then deal each user's entries round-robin.
        shuffled = random_state.permutation(n_entries)
        order = shuffled[np.argsort(codes[shuffled], kind="stable")]
        grouped = codes[order]
        starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
        rank_in_user = np.arange(n_entries) - np.repeat(
            starts, np.diff(np.r_[starts, n_entries]))
        offset = random_state.randint(0, self.n_splits, size=starts.shape[0])
        offset_per_entry = np.repeat(offset, np.diff(np.r_[starts, n_entries]))
        fold = np.empty(n_entries, dtype=np.int64)
        fold[order] = (rank_in_user + offset_per_entry) % self.n_splits
        return fold
