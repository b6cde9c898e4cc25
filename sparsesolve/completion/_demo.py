"""Demo row: completing a rank-5 matrix from 10% of its entries."""

from __future__ import annotations

import warnings

import numpy as np

from .._backend import require_cupy, to_numpy
from .._demo import DemoRow, timed


def _surprise_error(problem, rank):
    """Held-out relative error of surprise's SVD (tuned for zero-mean data)."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    coo = problem.X_train.tocoo()
    frame = pd.DataFrame({"user": coo.row, "item": coo.col, "rating": coo.data})
    reader = Reader(rating_scale=(float(coo.data.min()), float(coo.data.max())))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
    # Defaults (biased, 100 factors, 20 epochs) barely move on zero-mean
    # synthetic data; these settings are the minimal tuning that works.
    algo = SVD(n_factors=rank, biased=False, n_epochs=100, reg_all=0.0,
               lr_all=0.01, random_state=0)
    _, seconds = timed(algo.fit, trainset)
    users = np.array([trainset.to_inner_uid(u) for u in problem.test_rows])
    items = np.array([trainset.to_inner_iid(i) for i in problem.test_cols])
    predicted = np.einsum("ij,ij->i", algo.pu[users], algo.qi[items])
    return predicted, seconds


def _iterative_imputer_error(problem):
    """Held-out values from scikit-learn's IterativeImputer (dense, NaN)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    dense = np.full(problem.X_train.shape, np.nan)
    coo = problem.X_train.tocoo()
    dense[coo.row, coo.col] = coo.data
    imputer = IterativeImputer(max_iter=5, random_state=0)
    completed, seconds = timed(imputer.fit_transform, dense)
    return completed[problem.test_rows, problem.test_cols], seconds


def demo(device="cpu"):
    """Complete a 600 x 500 rank-5 matrix from 10% of its entries.

    sparsesolve runs AltMinCompletion (conjugate-gradient row solves); the
    anchor is scikit-surprise's SVD when installed, else scikit-learn's
    IterativeImputer. The figure is the held-out relative error.

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs (the anchor always runs on the CPU).

    Returns
    -------
    DemoRow
    """
    from ..datasets import make_completion_problem
    from ._estimator import AltMinCompletion

    rank = 5
    problem = make_completion_problem(600, 500, rank, 0.1, n_test=5000,
                                      random_state=0)
    X = problem.X_train
    if device == "gpu":
        require_cupy()
        import cupyx.scipy.sparse as cusparse

        X = cusparse.csr_matrix(X)
    model = AltMinCompletion(rank=rank, solver="cg", alpha=1e-10, max_iter=30,
                             tol=1e-8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.set_params(max_iter=2).fit(X)  # compile kernels outside the timing
        model.set_params(max_iter=30)
        _, seconds = timed(model.fit, X)
    predicted = to_numpy(model.predict(problem.test_rows, problem.test_cols))
    truth = problem.test_values
    error = np.linalg.norm(predicted - truth) / np.linalg.norm(truth)
    try:
        anchor_predicted, anchor_seconds = _surprise_error(problem, rank)
        anchor_name = "surprise SVD (tuned)"
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            anchor_predicted, anchor_seconds = _iterative_imputer_error(problem)
        anchor_name = "sklearn IterativeImputer"
    anchor_error = np.linalg.norm(anchor_predicted - truth) / np.linalg.norm(truth)
    return DemoRow(
        problem="600x500 rank-5 matrix, 10% observed",
        result=f"held-out rel. error {error:.1e}",
        anchor=f"{anchor_name} {anchor_error:.1e}",
        seconds=seconds,
        anchor_seconds=anchor_seconds,
    )
