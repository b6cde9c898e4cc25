"""Few-shot episodes sampled from a labelled feature set."""

from __future__ import annotations

import numbers
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, validate_params
from .._validation import check_allocation

__all__ = ["make_fewshot_episodes"]


def _positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "n_way": [Interval(Integral, 1, None, closed="left")],
        "n_shot": [Interval(Integral, 1, None, closed="left")],
        "n_query": [Interval(Integral, 1, None, closed="left")],
        "n_episodes": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_fewshot_episodes(
    X, y, n_way=5, n_shot=1, n_query=15, n_episodes=100, random_state=None
):
    """Sample N-way K-shot classification episodes from ``(X, y)``.

    Each episode draws ``n_way`` distinct classes, then ``n_shot`` support
    and ``n_query`` query points per class without replacement (balanced
    tasks, the standard few-shot protocol). The same ``random_state`` gives
    the same episodes, so every method can be scored on identical tasks.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features (for example embeddings of a frozen network).
    y : array-like of shape (n_samples,)
        Class labels.
    n_way : int, default=5
        Classes per episode.
    n_shot : int, default=1
        Labelled support points per class.
    n_query : int, default=15
        Query points per class.
    n_episodes : int, default=100
        Number of episodes.
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling.

    Returns
    -------
    episodes : list of tuple
        ``n_episodes`` tuples ``(X_support, y_support, X_query, y_query)`` of
        NumPy arrays, of shapes ``(n_way * n_shot, n_features)``,
        ``(n_way * n_shot,)``, ``(n_way * n_query, n_features)`` and
        ``(n_way * n_query,)``, grouped by class; labels are the original ones.

    Raises
    ------
    ValueError
        If fewer than ``n_way`` classes have ``n_shot + n_query`` points.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sparsesolve.datasets import make_fewshot_episodes
    >>> X, y = load_digits(return_X_y=True)
    >>> episodes = make_fewshot_episodes(X, y, n_way=5, n_shot=1, n_query=15,
    ...                                  n_episodes=3, random_state=0)
    >>> X_support, y_support, X_query, y_query = episodes[0]
    >>> X_support.shape, X_query.shape
    ((5, 64), (75, 64))
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per row of X ({X.shape[0]}); got shape "
            f"{y.shape}."
        )
    n_way = _positive_int(n_way, "n_way")
    n_shot = _positive_int(n_shot, "n_shot")
    n_query = _positive_int(n_query, "n_query")
    n_episodes = _positive_int(n_episodes, "n_episodes")
    check_allocation(
        float(n_episodes) * n_way * (n_shot + n_query) * (X.shape[1] * X.itemsize + 8),
        "n_episodes", what=f"{n_episodes} episodes")
    rng = check_random_state(random_state)
    classes, inverse = np.unique(y, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(classes.size)]
    per_class = n_shot + n_query
    eligible = np.array(
        [c for c in range(classes.size) if members[c].size >= per_class]
    )
    if eligible.size < n_way:
        raise ValueError(
            f"Only {eligible.size} classes have n_shot + n_query = {per_class} points; "
            f"n_way={n_way} needs at least that many."
        )
    episodes = []
    for _ in range(n_episodes):
        chosen = rng.choice(eligible, n_way, replace=False)
        support, query = [], []
        for c in chosen:
            picked = rng.choice(members[c], per_class, replace=False)
            support.append(picked[:n_shot])
            query.append(picked[n_shot:])
        support = np.concatenate(support)
        query = np.concatenate(query)
        episodes.append((X[support], y[support], X[query], y[query]))
    return episodes
