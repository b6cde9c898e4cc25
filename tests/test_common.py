"""scikit-learn's estimator checks on every public sparsesolve estimator.

Estimators are found by :func:`sparsesolve.utils.all_estimators`. The list
it must find is written out below: a new estimator is added to it, and a
discovery or import regression fails here instead of silently checking
nothing. With ``SCIPY_ARRAY_API=1`` (set in conftest) and array-api-strict
installed, the array API checks run too.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsesolve.utils import all_estimators, estimator_checks_for

# Every public estimator of the package, by family.
EXPECTED_ESTIMATORS = {
    "AltMinCompletion": "completion",
    "DeepConjugateDirection": "poisson",
    "KroneckerSBL": "kronecker",
    "LaplacianKMeans": "clustering",
    "LqDictionaryLearning": "coding",
    "LqSparseCoder": "coding",
    "RobustUnmixing": "unmixing",
    "TransductiveFewShotClassifier": "clustering",
}

_INSTANCES = []
_EXPECTED = {}
for _name, _cls in all_estimators():
    _instances, _expected = estimator_checks_for(_cls)
    _INSTANCES.extend(_instances)
    _EXPECTED[_name] = _expected


def _expected_failed_checks(estimator):
    return _EXPECTED.get(type(estimator).__name__, {})


@parametrize_with_checks(_INSTANCES, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_discovery_finds_exactly_the_expected_estimators():
    found = {name: cls.__module__.split(".")[1] for name, cls in all_estimators()}
    assert found == EXPECTED_ESTIMATORS
    # Each one has instances to check, and every instance is of a found class.
    assert {type(estimator).__name__ for estimator in _INSTANCES} == set(
        EXPECTED_ESTIMATORS)


def test_every_exported_estimator_is_found():
    # Every estimator class a family package exports is discovered (an
    # import error in a family fails here, it is not skipped).
    import importlib

    from sklearn.base import BaseEstimator

    from sparsesolve._demo import FAMILIES

    assert set(FAMILIES) == set(EXPECTED_ESTIMATORS.values())
    found = {name for name, _ in all_estimators()}
    for family in FAMILIES:
        module = importlib.import_module(f"sparsesolve.{family}")
        exported = {
            name
            for name in module.__all__
            if isinstance(getattr(module, name), type)
            and issubclass(getattr(module, name), BaseEstimator)
        }
        assert exported
        assert exported <= found


def test_html_repr_links_to_the_api_page():
    # The HTML repr's "?" link goes to the estimator's generated API page,
    # which docs/api lists in an autosummary (so Sphinx builds it).
    import pathlib
    import re

    from sparsesolve.utils import estimator_checks_for

    api = pathlib.Path(__file__).parents[1] / "docs" / "api"
    documented = set(re.findall(r"^\s+(\w+)\s*$",
                                "".join(p.read_text() for p in api.glob("*.rst")),
                                flags=re.MULTILINE))
    missing = []
    for name, cls in all_estimators():
        estimator = estimator_checks_for(cls)[0][0]
        public_module = ".".join(
            part for part in cls.__module__.split(".") if not part.startswith("_"))
        expected = (
            "https://sparsesolve.readthedocs.io/en/latest/generated/"
            f"{public_module}.{name}.html"
        )
        assert name in documented
        if estimator._get_doc_link() != expected:
            missing.append(name)
            continue
        assert f'href="{expected}"' in estimator._repr_html_()
    assert not missing, f"no API link in the HTML repr of {missing}"
