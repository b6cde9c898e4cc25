"""The scikit-learn helpers outside its public API, behind one guard.

sparsesolve's estimators declare ``_parameter_constraints`` and decorate
``fit`` exactly as scikit-learn's own do, with ``Interval``, ``StrOptions``
and ``_fit_context``. Those live in private modules
(``sklearn.utils._param_validation``, ``sklearn.base``) that a release may
move or rename. Every estimator imports them from here instead: the
scikit-learn objects when they import, else the small equivalents below,
which check the same constraint vocabulary (the one sparsesolve uses) and
raise the same kind of error. ``tests/test_sklearn_compat.py`` checks the
fallbacks against scikit-learn's own on every constraint the package
declares, so scikit-learn can be used without an upper version cap.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import operator

import numpy as np

__all__ = [
    "SKLEARN_PRIVATE_API",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "check_same_namespace",
    "fit_context",
    "validate_estimator_params",
    "validate_params",
]

try:
    from sklearn.base import _fit_context as fit_context
    from sklearn.utils._param_validation import (
        Interval,
        InvalidParameterError,
        StrOptions,
        validate_params,
    )
except ImportError:  # a scikit-learn release without these private helpers
    SKLEARN_PRIVATE_API = False
else:
    SKLEARN_PRIVATE_API = True

try:
    from sklearn.utils._array_api import check_same_namespace
except ImportError:

    def check_same_namespace(X, estimator, *, attribute, method):
        """No-op stand-in: sparsesolve checks the namespaces itself.

        :func:`sparsesolve._validation.check_same_device` compares the
        namespace of ``X`` with the fitted attribute's after calling this.
        """


class _FallbackInvalidParameterError(ValueError, TypeError):
    """A parameter has the wrong type or value (as scikit-learn's)."""


class _FallbackInterval:
    """A real interval constraint: ``Interval(Real, 0, None, closed="left")``."""

    def __init__(self, type, left, right, *, closed):  # noqa: A002 - sklearn's name
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be left, right, both or neither; got "
                             f"{closed!r}.")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def is_satisfied_by(self, value):
        # As scikit-learn: a missing bound is an infinite one (open unless
        # the interval is closed on that side), NaN is never inside.
        if not isinstance(value, self.type):
            return False
        if isinstance(value, numbers.Real) and np.isnan(value):
            return False
        left = -np.inf if self.left is None else self.left
        right = np.inf if self.right is None else self.right
        left_ok = operator.ge if self.closed in ("left", "both") else operator.gt
        right_ok = operator.le if self.closed in ("right", "both") else operator.lt
        return bool(left_ok(value, left) and right_ok(value, right))

    def __str__(self):
        kind = "an int" if self.type is numbers.Integral else "a float"
        low = "-inf" if self.left is None else self.left
        high = "inf" if self.right is None else self.right
        left = "[" if self.closed in ("left", "both") and self.left is not None else "("
        right = "]" if self.closed in ("right", "both") and self.right is not None \
            else ")"
        return f"{kind} in the range {left}{low}, {high}{right}"


class _FallbackStrOptions:
    """One of a set of strings: ``StrOptions({"svd", "am"})``."""

    def __init__(self, options, *, deprecated=None):
        self.options, self.deprecated = set(options), set(deprecated or ())

    def is_satisfied_by(self, value):
        return isinstance(value, str) and value in self.options

    def __str__(self):
        return "a str among " + str(sorted(self.options))


def _is_array_like(value):
    return (hasattr(value, "__len__") or hasattr(value, "shape")
            or hasattr(value, "__array__")) and not np.isscalar(value)


_NAMED = {
    "boolean": (lambda v: isinstance(v, (bool, np.bool_)), "an instance of 'bool'"),
    "array-like": (_is_array_like, "an array-like"),
    "random_state": (
        lambda v: v is None or isinstance(v, np.random.RandomState)
        or _FallbackInterval(numbers.Integral, 0, 2**32 - 1,
                             closed="both").is_satisfied_by(v),
        "an int in the range [0, 4294967295], a RandomState instance or None",
    ),
    "verbose": (
        lambda v: isinstance(v, (bool, np.bool_))
        or _FallbackInterval(numbers.Integral, 0, None,
                             closed="left").is_satisfied_by(v),
        "an int in the range [0, inf) or a bool",
    ),
    "sparse matrix": (lambda v: __import__("scipy.sparse").sparse.issparse(v),
                      "a sparse matrix"),
}


def _satisfied(constraint, value):
    if constraint is None:
        return value is None
    if isinstance(constraint, str):
        return _NAMED[constraint][0](value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return constraint.is_satisfied_by(value)


def _describe(constraint):
    if constraint is None:
        return "None"
    if isinstance(constraint, str):
        return _NAMED[constraint][1]
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__!r}"
    return str(constraint)


def _check_constraints(constraints, values, caller):
    for name, value in values.items():
        if name not in constraints or constraints[name] == "no_validation":
            continue
        options = constraints[name]
        if any(_satisfied(option, value) for option in options):
            continue
        expected = " or ".join(_describe(option) for option in options)
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {expected}. Got "
            f"{value!r} instead."
        )


def _fallback_fit_context(*, prefer_skip_nested_validation):
    """Validate the estimator's parameters, then run ``fit`` (no config)."""
    del prefer_skip_nested_validation  # only meaningful inside scikit-learn

    def decorator(fit_method):
        @functools.wraps(fit_method)
        def wrapper(estimator, *args, **kwargs):
            already_fitted = fit_method.__name__ == "partial_fit" and any(
                name.endswith("_") and not name.startswith("__")
                for name in vars(estimator))
            if not already_fitted:
                validate_estimator_params(estimator)
            return fit_method(estimator, *args, **kwargs)

        return wrapper

    return decorator


def _fallback_validate_params(parameter_constraints, *, prefer_skip_nested_validation):
    """Check a function's arguments against ``parameter_constraints``."""

    def decorator(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            _check_constraints(parameter_constraints, dict(bound.arguments),
                               function.__qualname__)
            return function(*args, **kwargs)

        return wrapper

    return decorator


if not SKLEARN_PRIVATE_API:
    Interval = _FallbackInterval
    InvalidParameterError = _FallbackInvalidParameterError
    StrOptions = _FallbackStrOptions
    fit_context = _fallback_fit_context
    validate_params = _fallback_validate_params


def validate_estimator_params(estimator):
    """Check ``estimator.get_params()`` against its ``_parameter_constraints``.

    scikit-learn's ``BaseEstimator._validate_params`` when it exists, else
    the fallback checker, with the same error type.

    Parameters
    ----------
    estimator : estimator instance
        An estimator with a ``_parameter_constraints`` dict.

    Examples
    --------
    >>> from sparsesolve.clustering import LaplacianKMeans
    >>> from sparsesolve._sklearn_compat import validate_estimator_params
    >>> validate_estimator_params(LaplacianKMeans(n_clusters=0))
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'n_clusters' \
parameter of LaplacianKMeans must be an int in the range [1, inf). Got 0 instead.
    """
    if SKLEARN_PRIVATE_API and hasattr(estimator, "_validate_params"):
        estimator._validate_params()
        return
    _check_constraints(getattr(estimator, "_parameter_constraints", {}),
                       estimator.get_params(deep=False), type(estimator).__name__)
