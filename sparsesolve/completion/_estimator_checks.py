"""Configuration of scikit-learn's estimator checks for the completion family."""

from ._estimator import AltMinCompletion

_PREDICT_IS_ENTRYWISE = (
    "with matrix input predict(X) is transform(X), the completed matrix of "
    "shape (n_rows, n_cols); this check expects one value per sample, shape "
    "(n_rows,). Single entries come from predict_entries(rows, cols)."
)

EXPECTED_FAILED_CHECKS = {
    "AltMinCompletion": {
        "check_estimator_sparse_array": _PREDICT_IS_ENTRYWISE,
        "check_estimator_sparse_matrix": _PREDICT_IS_ENTRYWISE,
    }
}


def test_instances():
    """The default solver plus the sketch solver with the Huber loss."""
    return [
        AltMinCompletion(),
        AltMinCompletion(solver="sketch", loss="huber", sketch_size=4, max_iter=5),
    ]
