"""Ratings input: (user, item, rating) triplets with arbitrary ids.

Recommender data arrive as a table of ratings keyed by user and item ids
(strings, large integers, tuples...), not as a matrix indexed from 0. This
module turns such a table into the row/column indices AltMin works with and
back, as scikit-learn's encoders do: the distinct ids are kept sorted in a
fitted attribute and an id is encoded as its position there. It also
resolves duplicate (user, item) pairs by an explicit policy, because
SciPy's COO-to-CSR conversion would silently sum them (two 5-star ratings
becoming a 10).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "encode_ids",
    "lookup_ids",
    "ratings_triplets",
    "pairs_from_input",
    "resolve_duplicates",
]


def _is_frame(X):
    """A pandas (or pandas-like) DataFrame, recognised without importing pandas."""
    return hasattr(X, "columns") and hasattr(X, "iloc") and hasattr(X, "shape")


def _columns_of(X, name):
    """The columns of a frame or 2D array as a list of 1D host arrays."""
    if _is_frame(X):
        return [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
    if sp.issparse(X):
        raise TypeError(f"{name} in ratings form must be a DataFrame or a 2D array "
                        "of (user, item[, rating]) rows, not a sparse matrix.")
    array = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if array.ndim != 2:
        raise ValueError(
            f"{name} in ratings form must be 2D with one (user, item[, rating]) row "
            f"per rating; got an array of shape {array.shape}."
        )
    return [array[:, j] for j in range(array.shape[1])]


def _as_values(values, name):
    values = np.asarray(values)
    if values.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported for {name}: ratings are real numbers "
            f"(got dtype {values.dtype}); the imaginary part is not dropped "
            "silently."
        )
    if values.dtype.kind not in "biuf":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be numeric; got dtype {values.dtype}.") \
                from error
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinity; every rating must be "
                         "a finite number.")
    return values


def ratings_triplets(X, y=None):
    """Split ratings input into (users, items, ratings) host arrays.

    ``X`` holds one rating per row: ``(user, item, rating)`` columns when
    ``y`` is None, ``(user, item)`` columns with the ratings in ``y``
    otherwise. Columns are read by position (a DataFrame's names do not
    matter).
    """
    columns = _columns_of(X, "X")
    expected = 2 if y is not None else 3
    if len(columns) != expected:
        form = ("(user, item) with the ratings in y" if y is not None
                else "(user, item, rating)")
        raise ValueError(
            f"X in ratings form must have {expected} columns, {form}; got "
            f"{len(columns)} columns."
        )
    users, items = columns[0], columns[1]
    ratings = columns[2] if y is None else (
        y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y))
    ratings = _as_values(ratings, "the ratings" if y is None else "y")
    if ratings.ndim != 1 or ratings.shape[0] != users.shape[0]:
        raise ValueError(
            f"y must be 1D with one rating per row of X; got shape {ratings.shape} "
            f"for {users.shape[0]} rows."
        )
    if users.shape[0] == 0:
        raise ValueError("X holds no ratings; at least one is needed to fit.")
    return users, items, ratings


def pairs_from_input(X):
    """(users, items) of ratings input with 2 or 3 columns (a rating is ignored)."""
    columns = _columns_of(X, "X")
    if len(columns) not in (2, 3):
        raise ValueError(
            "X in ratings form must have (user, item) or (user, item, rating) "
            f"columns; got {len(columns)} columns."
        )
    return columns[0], columns[1]


def _missing_id(ids, name):
    if ids.dtype.kind == "f" and np.isnan(ids).any():
        raise ValueError(f"X: {name} ids contain NaN; every rating needs a user and "
                         "an item.")
    if ids.dtype == object:
        for value in ids:
            if value is None or (isinstance(value, float) and value != value):
                raise ValueError(f"X: {name} ids contain None or NaN; every "
                                 "rating needs a user and an item.")


def encode_ids(ids, name):
    """Sorted distinct ids and the index of every id among them.

    Ids may be of any hashable type that sorts (as for scikit-learn's
    ``OrdinalEncoder``: numbers, strings, tuples of those); mixed types that
    cannot be compared are rejected with a clear error.
    """
    ids = np.asarray(ids)
    _missing_id(ids, name)
    try:
        categories, codes = np.unique(ids, return_inverse=True)
    except TypeError as error:
        raise TypeError(
            f"{name} ids must be mutually comparable so that they can be sorted "
            f"(all numbers or all strings, say); got {error}."
        ) from error
    return categories, codes.reshape(-1).astype(np.int64)


def lookup_ids(categories, ids):
    """Index of every id in the sorted ``categories``; -1 where unknown."""
    ids = np.asarray(ids)
    if ids.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    if (categories.dtype.kind in "biuf" and ids.dtype.kind not in "biuf"
            and ids.dtype != object):
        # Strings against numeric ids: nothing can match.
        return np.full(ids.shape[0], -1, dtype=np.int64)
    try:
        position = np.searchsorted(categories, ids)
    except TypeError:
        # Ids of a type that does not compare with the fitted ones: match
        # one by one (slow, but only reached with mixed-type ids).
        index = {value: code for code, value in enumerate(categories.tolist())}
        return np.array([index.get(value, -1) for value in ids.tolist()],
                        dtype=np.int64)
    position = np.minimum(position, categories.shape[0] - 1)
    found = categories[position] == ids
    return np.where(found, position, -1).astype(np.int64)


def resolve_duplicates(rows, cols, values, n_cols, policy):
    """Apply the duplicates policy to (row, col, value) triplets.

    ``"mean"`` averages the ratings of a repeated pair, ``"last"`` keeps the
    one given last, ``"error"`` refuses them. Returns new arrays with one
    entry per distinct pair (in the input's order of first appearance for
    ``"mean"``, of last appearance for ``"last"``).
    """
    linear = rows.astype(np.int64) * n_cols + cols.astype(np.int64)
    distinct, first, inverse, counts = np.unique(
        linear, return_index=True, return_inverse=True, return_counts=True)
    if distinct.shape[0] == linear.shape[0]:
        return rows, cols, values
    if policy == "error":
        repeated = int(np.sum(counts > 1))
        example = int(np.flatnonzero(counts > 1)[0])
        raise ValueError(
            f"{repeated} (row, column) pairs are given more than once (the first "
            f"at position {int(first[example])}); pass duplicates='mean' to "
            "average them or duplicates='last' to keep the last one."
        )
    inverse = inverse.reshape(-1)
    if policy == "mean":
        sums = np.bincount(inverse, weights=values.astype(np.float64),
                           minlength=distinct.shape[0])
        merged = (sums / counts).astype(values.dtype)
        keep = first
    else:
        # Last occurrence: the first occurrence in the reversed order.
        reversed_first = np.unique(linear[::-1], return_index=True)[1]
        keep = linear.shape[0] - 1 - reversed_first
        merged = values[keep]
    order = np.argsort(keep, kind="stable")
    keep = keep[order]
    return rows[keep], cols[keep], merged[order]
