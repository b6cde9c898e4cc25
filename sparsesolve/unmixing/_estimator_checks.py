"""Instances for scikit-learn's estimator checks (tests/test_common.py)."""

from ._estimator import RobustUnmixing


def test_instances():
    """Small, quick configurations: the checks fit on tiny random data."""
    return [
        RobustUnmixing(n_endmembers=2, max_iter=30, tol=1e-3, random_state=0),
        RobustUnmixing(
            n_endmembers=2, loss="l2", guidance="uniform", max_iter=30, tol=1e-3,
            random_state=0,
        ),
    ]


EXPECTED_FAILED_CHECKS: dict = {}
