"""The scikit-learn checks that need a dictionary as wide as their data.

``tests/test_common.py`` checks ``LqSparseCoder`` with one (5, 3) dictionary;
checks that feed another number of features are listed as expected failures
there and run here with a dictionary of the width they use, as scikit-learn
does for its own ``SparseCoder``.
"""

from functools import partial

import numpy as np
import pytest

from sparsesolve.coding import LqSparseCoder
from sparsesolve.coding._estimator_checks import EXPECTED_FAILED_CHECKS

# A private generator of scikit-learn: without it (a release that renames
# it) these per-check width tests are skipped; test_common still runs every
# check through the public parametrize_with_checks.
_yield_all_checks = pytest.importorskip(
    "sklearn.utils.estimator_checks").__dict__.get("_yield_all_checks")
if _yield_all_checks is None:
    pytest.skip("this scikit-learn has no _yield_all_checks", allow_module_level=True)

# Number of features each check's data has (read from scikit-learn 1.9's
# estimator_checks; the same widths its PER_ESTIMATOR_CHECK_PARAMS give
# SparseCoder where it lists them).
_CHECK_N_FEATURES = {
    "check_array_api_input": 10,
    "check_dtype_object": 10,
    "check_estimators_dtypes": 5,
    "check_estimators_fit_returns_self": 2,
    "check_estimators_overwrite_params": 2,
    "check_fit2d_1feature": 1,
    "check_fit2d_1sample": 10,
    "check_fit_check_is_fitted": 2,
    "check_fit_idempotent": 2,
    "check_n_features_in": 2,
    "check_n_features_in_after_fitting": 4,
    "check_positive_only_tag_during_fit": 4,
    "check_readonly_memmap_input": 2,
    "check_transformers_unfitted_stateless": 5,
}


def _checks():
    base = LqSparseCoder(np.ones((5, 3)))
    for check in _yield_all_checks(base, legacy=True):
        name = check.func.__name__ if isinstance(check, partial) else check.__name__
        keywords = getattr(check, "keywords", {})
        # Only the NumPy variant of the array API check: the estimator is
        # tagged array_api_support=False (see _estimator.py), so the others
        # skip themselves.
        if name in _CHECK_N_FEATURES and "numpy" in str(keywords.get(
                "array_namespace", "numpy")):
            yield pytest.param(check, id=f"{name}{sorted(keywords.items())}")


def test_every_expected_failure_is_rerun_here():
    listed = set(EXPECTED_FAILED_CHECKS["LqSparseCoder"]) - {"check_transformer_n_iter"}
    assert listed == set(_CHECK_N_FEATURES)


@pytest.mark.parametrize("check", list(_checks()))
def test_sparse_coder_check_with_matching_dictionary(check):
    name = check.func.__name__ if isinstance(check, partial) else check.__name__
    dictionary = np.random.RandomState(0).normal(size=(5, _CHECK_N_FEATURES[name]))
    check("LqSparseCoder", LqSparseCoder(dictionary, penalty="cel0", alpha=0.1))
