"""Utilities for users and for the test suite: estimator discovery."""

from ._discovery import all_estimators, estimator_checks_for

__all__ = ["all_estimators", "estimator_checks_for"]
