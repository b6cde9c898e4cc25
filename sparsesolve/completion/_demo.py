"""Demo row: completing a rank-5 matrix from 10% of its entries."""

from __future__ import annotations

import warnings

import numpy as np

from .._backend import require_cupy, to_numpy
from .._demo import DemoRow, compare

_SURPRISE_MISSING = (
    "scikit-surprise is not installed; get it with `pip install scikit-surprise` "
    "(or `pip install \"sparsesolve[bench]\"`)"
)


def _surprise_fit(problem, rank):
    """A fitted scikit-surprise SVD on the training entries and its trainset."""
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
    return algo.fit(trainset), trainset


def _surprise_predict(fitted, problem):
    algo, trainset = fitted
    users = np.array([trainset.to_inner_uid(u) for u in problem.test_rows])
    items = np.array([trainset.to_inner_iid(i) for i in problem.test_cols])
    return np.einsum("ij,ij->i", algo.pu[users], algo.qi[items])


def demo(device="cpu"):
    """Complete a 600 x 500 rank-5 matrix from 10% of its entries.

    sparsesolve runs AltMinCompletion (conjugate-gradient row solves); the
    anchor is scikit-surprise's SVD, an optional package: without it the
    anchor is skipped (a dense fallback such as scikit-learn's
    ``IterativeImputer`` takes minutes on this matrix and is no fair anchor
    for low-rank completion). The figure is the held-out relative error.

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
    try:
        import surprise  # noqa: F401
    except ImportError:
        anchor = None
    else:
        def anchor():
            return _surprise_fit(problem, rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, ours, fitted, theirs = compare(lambda: model.fit(X), anchor)
    truth = problem.test_values
    predicted = to_numpy(model.predict_entries(problem.test_rows, problem.test_cols))
    error = np.linalg.norm(predicted - truth) / np.linalg.norm(truth)
    row = dict(problem="600x500 rank-5 matrix, 10% observed",
               result=f"held-out rel. error {error:.1e}")
    if anchor is None:
        return DemoRow.from_timings(anchor="surprise SVD: not installed", ours=ours,
                                    skipped=_SURPRISE_MISSING, **row)
    anchor_predicted = _surprise_predict(fitted, problem)
    anchor_error = np.linalg.norm(anchor_predicted - truth) / np.linalg.norm(truth)
    return DemoRow.from_timings(anchor=f"surprise SVD (tuned) {anchor_error:.1e}",
                                ours=ours, theirs=theirs, **row)
