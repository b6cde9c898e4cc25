"""Instances and expected failures for scikit-learn's estimator checks."""

import numpy as np

from ._estimator import LqDictionaryLearning, LqSparseCoder


def test_instances():
    """Configured instances for ``parametrize_with_checks``."""
    # A fixed dictionary fixes n_features: scikit-learn's own SparseCoder is
    # checked with a (5, 3) dictionary, most checks use 3 features.
    dictionary = np.random.RandomState(0).normal(size=(5, 3))
    return [
        LqSparseCoder(dictionary, penalty="cel0", alpha=0.1),
        LqDictionaryLearning(n_components=3, alpha=0.1, max_iter=5, random_state=0),
    ]


_OTHER_N_FEATURES = (
    "the dictionary fixes n_features=3 and this check feeds data with another "
    "number of features; scikit-learn passes per-check dictionaries to its own "
    "SparseCoder, and tests/coding/test_estimator_checks.py runs this check "
    "with a dictionary of the right width"
)

EXPECTED_FAILED_CHECKS = {
    "LqSparseCoder": {
        name: _OTHER_N_FEATURES
        for name in (
            "check_array_api_input",
            "check_dtype_object",
            "check_estimators_dtypes",
            "check_estimators_fit_returns_self",
            "check_estimators_overwrite_params",
            "check_fit2d_1feature",
            "check_fit2d_1sample",
            "check_fit_check_is_fitted",
            "check_fit_idempotent",
            "check_n_features_in",
            "check_n_features_in_after_fitting",
            "check_positive_only_tag_during_fit",
            "check_readonly_memmap_input",
            "check_transformers_unfitted_stateless",
        )
    }
    | {
        "check_transformer_n_iter": (
            "like scikit-learn's SparseCoder, fit only validates: the "
            "iterations (max_iter) happen in transform, so fit sets no n_iter_"
        ),
    },
}
