"""The fallbacks of sparsesolve._sklearn_compat agree with scikit-learn's.

The module is loaded a second time with scikit-learn's private helpers made
unimportable, as a future release might leave them; its fallback checker is
then compared with scikit-learn's own on every constraint that a sparsesolve
estimator declares, over a spread of probe values.
"""

import builtins
import importlib.util
import numbers

import numpy as np
import pytest

import sparsesolve._sklearn_compat as compat
from sparsesolve.utils import all_estimators, estimator_checks_for

_PRIVATE = {"sklearn.utils._param_validation", "sklearn.utils._array_api"}


@pytest.fixture
def fallback(monkeypatch):
    real_import = builtins.__import__

    def without_private_helpers(name, globals=None, locals=None, fromlist=(),
                                level=0):
        if name in _PRIVATE or (name == "sklearn.base"
                                and "_fit_context" in (fromlist or ())):
            raise ImportError(f"{name} is not importable in this test")
        return real_import(name, globals, locals, fromlist, level)

    spec = importlib.util.spec_from_file_location("_compat_fallback",
                                                  compat.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(builtins, "__import__", without_private_helpers)
    spec.loader.exec_module(module)
    monkeypatch.setattr(builtins, "__import__", real_import)
    return module


def test_the_installed_scikit_learn_provides_the_helpers():
    from sklearn.base import _fit_context
    from sklearn.utils._param_validation import Interval

    assert compat.SKLEARN_PRIVATE_API
    assert compat.Interval is Interval
    assert compat.fit_context is _fit_context


def test_fallback_is_used_without_the_private_modules(fallback):
    assert not fallback.SKLEARN_PRIVATE_API
    assert fallback.Interval is fallback._FallbackInterval
    assert issubclass(fallback.InvalidParameterError, ValueError)
    assert issubclass(fallback.InvalidParameterError, TypeError)


_PROBES = [
    None, True, False, np.bool_(True), 0, 1, 2, -1, 5, 10**10, 0.0, 0.5, 1.0,
    1.5, -0.5, np.float32(0.3), np.int64(3), float("nan"), float("inf"), "auto",
    "nope", "", [1, 2], (1, 2), np.ones(2), np.random.RandomState(0), {"a": 1},
]


def _fallback_constraint(module, constraint):
    from sklearn.utils._param_validation import Interval, StrOptions

    if isinstance(constraint, Interval):
        return module._FallbackInterval(constraint.type, constraint.left,
                                        constraint.right, closed=constraint.closed)
    if isinstance(constraint, StrOptions):
        return module._FallbackStrOptions(constraint.options)
    return constraint


def _declared_constraints():
    return list(_iter_declared_constraints())


def _iter_declared_constraints():
    for name, cls in all_estimators():
        for parameter, options in cls._parameter_constraints.items():
            for constraint in options:
                yield pytest.param(constraint, id=f"{name}.{parameter}:{constraint}")


@pytest.mark.parametrize("constraint", _declared_constraints())
def test_fallback_constraints_agree_with_scikit_learn(fallback, constraint):
    from sklearn.utils._param_validation import StrOptions, make_constraint

    reference = make_constraint(constraint)
    ours = _fallback_constraint(fallback, constraint)
    probes = list(_PROBES)
    if isinstance(constraint, StrOptions):
        probes += sorted(constraint.options)
    for value in probes:
        assert fallback._satisfied(ours, value) == reference.is_satisfied_by(
            value), value


def test_fallback_validation_names_the_parameter(fallback):
    for name, cls in all_estimators():
        estimator = estimator_checks_for(cls)[0][0]
        fallback.validate_estimator_params(estimator)  # valid defaults pass
        parameter = next(
            p for p, options in cls._parameter_constraints.items()
            if not any(o is None or o in ("array-like", "no_validation")
                       or isinstance(o, type) for o in options))
        estimator.set_params(**{parameter: object()})
        with pytest.raises(ValueError, match=f"'{parameter}' parameter of {name}"):
            fallback.validate_estimator_params(estimator)


def test_fallback_fit_context_and_validate_params(fallback):
    class Model:
        _parameter_constraints = {"k": [fallback.Interval(numbers.Integral, 1, None,
                                                          closed="left")]}

        def __init__(self, k):
            self.k = k

        def get_params(self, deep=False):
            return {"k": self.k}

        @fallback.fit_context(prefer_skip_nested_validation=True)
        def fit(self):
            self.fitted_ = True
            return self

    assert Model(3).fit().fitted_
    with pytest.raises(fallback.InvalidParameterError, match="'k' parameter"):
        Model(0).fit()

    @fallback.validate_params({"n": [fallback.StrOptions({"a", "b"})]},
                              prefer_skip_nested_validation=True)
    def pick(n="a"):
        return n

    assert pick("b") == "b"
    with pytest.raises(fallback.InvalidParameterError, match="'n' parameter"):
        pick("c")


def test_private_scikit_learn_helpers_are_imported_only_here():
    # Everything else goes through sparsesolve._sklearn_compat, so that a
    # scikit-learn release that moves them cannot break an import.
    import pathlib
    import re

    package = pathlib.Path(compat.__file__).parent
    private = re.compile(r"from sklearn[\w.]*\._\w+ import|import _fit_context"
                         r"|^\s+_fit_context,$", flags=re.MULTILINE)
    offenders = sorted(
        str(path.relative_to(package)) for path in package.rglob("*.py")
        if path.name != "_sklearn_compat.py" and private.search(path.read_text()))
    assert not offenders, offenders
