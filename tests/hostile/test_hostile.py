"""The hostile-input suite under pytest: no crash, no silent wrong answer.

The whole suite runs once per session (about two thousand probes in two
worker processes, see ``tests/hostile/__init__.py``); each test below checks
one class of outcome and prints the offending probes as a table. The same
run, as a Markdown report: ``python -m tests.hostile --report FILE``.
"""

import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # plain ``pytest`` with --import-mode=importlib
    sys.path.insert(0, str(_ROOT))

from tests.hostile import engine  # noqa: E402
from tests.hostile.allowlist import UNNAMED_ALLOWED  # noqa: E402
from tests.hostile.engine import Probe, classify_exception  # noqa: E402
from tests.hostile.pool import run_probes  # noqa: E402
from tests.hostile.report import SuiteRun, table  # noqa: E402

pytestmark = pytest.mark.hostile


@pytest.fixture(scope="module")
def suite():
    return SuiteRun()


def _fail_with(rows, run, what):
    if rows:
        pytest.fail(f"{len(rows)} {what}:\n{table(rows, run)}", pytrace=False)


def test_discovery_finds_every_public_entry_point(suite):
    # A public name without a recipe fails here: add one to recipes.py.
    assert len(suite.entries) >= 40, suite.entries
    assert not suite.missing, f"public entry points without a recipe: {suite.missing}"


def test_every_recipe_is_a_public_entry_point():
    # A recipe whose entry point was removed or renamed is stale.
    from tests.hostile.recipes import RECIPES

    public = {getattr(obj, "__name__", name)
              for name, obj in engine._entry_objects().items()}
    stale = sorted(k for k in RECIPES if k.split(".")[0] not in public)
    assert not stale


def test_probe_count(suite):
    assert len(suite.probes) >= 1000


def test_every_probe_ran(suite):
    rows = suite.failures("harness")
    _fail_with(rows, suite, "probes failed inside the harness (a recipe bug)")
    unavailable = sorted({p.entry for p, _ in suite.failures("unavailable")})
    if unavailable:
        # An optional dependency is missing: say so, the probes did not run.
        import warnings

        warnings.warn(f"not probed, optional dependency missing: {unavailable}",
                      stacklevel=1)


def test_no_crashes(suite):
    # Segfault/abort (worker died), hang (watchdog), or an exception from
    # inside NumPy/SciPy/numba/scikit-learn internals.
    _fail_with(suite.failures("crash"), suite, "crashes")


def test_no_silent_wrong_results(suite):
    # NaN/inf output without an error, invalid input accepted, imaginary
    # part dropped, mutated input, results that differ from the reference.
    _fail_with(suite.failures("silent"), suite, "silent wrong results")


def test_errors_name_the_offending_argument(suite):
    _fail_with(suite.failures("unnamed"), suite,
               "errors that do not name the offending argument (not allowlisted)")


def test_allowlist_is_short_and_current(suite):
    assert len(UNNAMED_ALLOWED) <= 5
    for pid, reason in UNNAMED_ALLOWED.items():
        assert reason.strip(), pid
        assert pid in suite.results, f"allowlisted probe {pid!r} does not exist"
        assert suite.results[pid][0] == "unnamed", (
            f"allowlisted probe {pid!r} is {suite.results[pid][0]} now: remove it")


# ------------------------------------------------ the harness itself


def test_pool_survives_segfault_abort_and_hang():
    # One entry point, so the probes run in this order in one worker slot.
    probes = [Probe(f"selftest|{what}", "selftest", "selftest", what, "")
              for what in ["ok", "segfault", "abort", "hang", "allocate"]]
    probes.append(Probe("selftest|ok|after", "selftest", "selftest", "after", ""))
    results, _ = run_probes(probes, n_workers=1, timeout=3.0, start_timeout=120)
    outcome = {p.name: results[p.pid] for p in probes}
    assert outcome["segfault"][0] == "crash"
    assert "SIGSEGV" in outcome["segfault"][1]
    assert outcome["abort"][0] == "crash"
    assert "SIGABRT" in outcome["abort"][1]
    assert outcome["hang"][0] == "crash"
    assert "hang" in outcome["hang"][1]
    # The memory cap turns an 8 TiB request into a MemoryError.
    assert outcome["allocate"][0] == "ok", outcome["allocate"]
    assert outcome["ok"][0] == "ok"
    assert outcome["after"][0] == "ok"  # a fresh worker took over


def _raise_from_numpy():
    import numpy as np

    np.zeros(3) @ np.zeros(4)


def test_classification_of_exceptions():
    import numpy as np

    from sparsesolve.poisson import poisson_matrix

    internal = [
        (ValueError, _raise_from_numpy),
        (np.linalg.LinAlgError, lambda: np.linalg.cholesky(-np.eye(2))),
        (ZeroDivisionError, lambda: 1 / 0),
    ]
    for kind, call in internal:
        with pytest.raises(kind) as info:
            call()
        assert classify_exception(info.value, ("X",))[0] == "crash"
    # A clean error raised by sparsesolve itself: named, or not.
    with pytest.raises(ValueError) as info:
        poisson_matrix((3, 3), boundary="bogus")
    assert classify_exception(info.value, ("boundary",))[0] == "ok"
    assert classify_exception(info.value, ("nothing_named_so",))[0] == "unnamed"


def test_outputs_are_compared():
    import numpy as np

    assert engine.differ([np.ones(3)], [np.ones(3)], 1e-6) is None
    assert engine.differ([np.ones(3) * 1e300], [np.ones(3)], 1e-6, 1, 1e300) is None
    assert engine.differ([np.ones(3) * 2], [np.ones(3)], 1e-6) is not None
    assert engine.differ([np.array([1, 1, 0])], [np.array([0, 0, 1])], 0,
                         "labels") is None
    assert engine.nonfinite([np.array([1.0, np.nan])])


def test_missing_optional_dependency_is_reported_not_run(monkeypatch):
    from tests.hostile.recipes import RECIPES

    monkeypatch.setattr(RECIPES["threshold"], "requires", ("no_such_module_here",))
    probe = next(p for p in engine.build_probes() if p.entry == "threshold")
    assert engine.run_probe(probe)[0] == "unavailable"
