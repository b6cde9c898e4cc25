"""Find every public estimator of the package, as scikit-learn's discovery does.

New estimators are picked up automatically by ``tests/test_common.py``; a
family that needs constructor arguments for its estimators (a dictionary, a
set of Kronecker factors...) or expects some scikit-learn checks to fail says
so in its own ``_estimator_checks.py`` module (see
:func:`estimator_checks_for`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

__all__ = ["all_estimators", "estimator_checks_for"]


def _walk_modules():
    package = importlib.import_module("sparsesolve")
    for info in pkgutil.walk_packages(package.__path__, prefix="sparsesolve."):
        parts = info.name.split(".")
        if any(part in {"tests", "__main__"} for part in parts):
            continue
        yield importlib.import_module(info.name)


def all_estimators():
    """Return every public estimator class defined in sparsesolve.

    Returns
    -------
    estimators : list of (str, type)
        ``(class name, class)`` pairs sorted by name.

    Examples
    --------
    >>> from sparsesolve.utils import all_estimators
    >>> isinstance(all_estimators(), list)
    True
    """
    found = {}
    for module in _walk_modules():
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("sparsesolve.")
                and not name.startswith("_")
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())


def estimator_checks_for(estimator_class):
    """Return test instances and expected check failures for a class.

    A solver family may define ``sparsesolve/<family>/_estimator_checks.py``
    with a function ``test_instances()`` returning a list of configured
    estimator instances and a dict ``EXPECTED_FAILED_CHECKS`` mapping a class
    name to ``{check name: reason}``. Classes not listed there are built with
    their defaults.

    Parameters
    ----------
    estimator_class : type
        An estimator class from :func:`all_estimators`.

    Returns
    -------
    instances : list of estimator
        Instances to run the scikit-learn checks on.
    expected_failed : dict
        ``{check name: reason}`` for this class.
    """
    from sklearn.base import BaseEstimator

    if not (isinstance(estimator_class, type)
            and issubclass(estimator_class, BaseEstimator)):
        raise TypeError(
            "estimator_class must be an estimator class (from all_estimators()), "
            f"not {type(estimator_class).__name__!r}"
            + (" (pass type(estimator) for an instance)"
               if isinstance(estimator_class, BaseEstimator) else "") + ".")
    family = ".".join(estimator_class.__module__.split(".")[:2])
    try:
        checks = importlib.import_module(f"{family}._estimator_checks")
    except ModuleNotFoundError as exc:
        if exc.name != f"{family}._estimator_checks":
            raise
        return [estimator_class()], {}
    instances = [
        est
        for est in checks.test_instances()
        if type(est) is estimator_class
    ] or [estimator_class()]
    expected = getattr(checks, "EXPECTED_FAILED_CHECKS", {}).get(
        estimator_class.__name__, {}
    )
    return instances, dict(expected)
