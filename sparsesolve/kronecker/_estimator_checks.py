"""Configured instances and expected failures for scikit-learn's estimator checks.

KroneckerSBL cannot be built without its dictionaries, and the dictionaries
fix the length ``M`` of a measurement vector (``n_features_in_``). The test
instance uses ``M = 1 * 3 = 3``, the width most checks use; checks that feed
data of another width are rejected with the shape error a user would get
(scikit-learn itself gives ``SparseCoder`` per-check dictionaries for this
reason; sparsesolve's discovery has no per-check parameters). The same
properties are tested with matching shapes in ``tests/kronecker``.
"""

import numpy as np

from ._estimator import KroneckerSBL

_WIDTH = (
    "the dictionaries fix n_features_in_ = M = 3 for this instance and the check "
    "feeds data of another width, which KroneckerSBL rejects with a shape error; "
    "tested with matching shapes in tests/kronecker"
)


def test_instances():
    """KroneckerSBL with a 2-mode dictionary, ``M = 1 * 3 = 3``, ``N = 2 * 4``."""
    rng = np.random.RandomState(0)
    factors = [rng.standard_normal((1, 2)), rng.standard_normal((3, 4))]
    return [KroneckerSBL(factors, max_iter=20)]


EXPECTED_FAILED_CHECKS = {
    "KroneckerSBL": {
        **{
            name: _WIDTH
            for name in (
                "check_estimators_overwrite_params",
                "check_estimators_fit_returns_self",
                "check_readonly_memmap_input",
                "check_n_features_in_after_fitting",
                "check_positive_only_tag_during_fit",
                "check_estimators_dtypes",
                "check_dtype_object",
                "check_array_api_input",
                "check_array_api_mixed_inputs",
                "check_array_api_same_namespace",
                "check_fit2d_1sample",
                "check_fit2d_1feature",
                "check_fit_idempotent",
                "check_fit_check_is_fitted",
                "check_n_features_in",
            )
        },
        "check_complex_data": (
            "complex measurements are supported on purpose (channel estimation); "
            "the check expects them to be refused"
        ),
        "check_fit2d_predict1d": (
            "a single measurement vector of shape (M,) is accepted on purpose "
            "(the documented API); the check expects 1-D input to be refused"
        ),
    }
}
