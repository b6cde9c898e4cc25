"""Configured instances and known scikit-learn check failures of the family."""

from ._estimator import LaplacianKMeans, TransductiveFewShotClassifier

_TRANSDUCTIVE = (
    "transductive inference: a query's label depends on the other queries of "
    "the batch (they share the k-NN graph and the prototypes), so predicting a "
    "subset gives other answers by design"
)


def test_instances():
    """Estimators with the parameters the checks should use."""
    return [
        LaplacianKMeans(n_clusters=3, random_state=0),
        TransductiveFewShotClassifier(),
    ]


EXPECTED_FAILED_CHECKS = {
    "TransductiveFewShotClassifier": {
        "check_methods_subset_invariance": _TRANSDUCTIVE,
        "check_methods_sample_order_invariance": (
            "the check predicts the training points, so every query duplicates a "
            "support point and the k-NN graph has exact distance ties (s_j and "
            "its copy q_j); which one becomes a neighbour depends on the sample "
            "order and on BLAS round-off, and can flip borderline labels"
        ),
        "check_non_transformer_estimators_n_iter": (
            "fit only stores the support set; the iterations run in predict, "
            "on each query batch (transductive inference)"
        ),
    },
}
