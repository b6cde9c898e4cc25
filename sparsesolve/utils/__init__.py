"""Utilities for users and for the test suite: estimator discovery, device moves."""

from .._backend import to_device, to_numpy
from ._device import to_cpu
from ._discovery import all_estimators, estimator_checks_for

__all__ = ["all_estimators", "estimator_checks_for", "to_cpu", "to_device", "to_numpy"]
