"""scikit-learn's estimator checks on every public sparsesolve estimator.

Estimators are found by :func:`sparsesolve.utils.all_estimators`, so a new one
is checked without touching this file. With ``SCIPY_ARRAY_API=1`` (set in
conftest) and array-api-strict installed, the array API checks run too.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsesolve.utils import all_estimators, estimator_checks_for

_INSTANCES = []
_EXPECTED = {}
for _name, _cls in all_estimators():
    _instances, _expected = estimator_checks_for(_cls)
    _INSTANCES.extend(_instances)
    _EXPECTED[_name] = _expected


def _expected_failed_checks(estimator):
    return _EXPECTED.get(type(estimator).__name__, {})


if _INSTANCES:

    @parametrize_with_checks(
        _INSTANCES, expected_failed_checks=_expected_failed_checks
    )
    def test_sklearn_compatible_estimator(estimator, check):
        check(estimator)


def test_every_estimator_is_found():
    # Every estimator class exported by a family package is discovered.
    import importlib

    from sparsesolve._demo import FAMILIES

    found = {name for name, _ in all_estimators()}
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"sparsesolve.{family}")
        except ModuleNotFoundError:
            continue
        from sklearn.base import BaseEstimator

        exported = {
            name
            for name in getattr(module, "__all__", [])
            if isinstance(getattr(module, name), type)
            and issubclass(getattr(module, name), BaseEstimator)
        }
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
