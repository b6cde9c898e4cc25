"""The main job: ``python -m sparsesolve demo``."""

import pytest

from sparsesolve import _backend, _demo
from sparsesolve._demo import DemoRow, main, run_demo


def test_missing_family_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(_demo.FAMILIES, "not_a_family", "Imaginary solver")
    rows = run_demo(families=["not_a_family"])
    assert rows == {"not_a_family": None}
    assert "not available yet" in _demo._format_table(rows)


def test_progress_is_reported_after_each_family(monkeypatch):
    monkeypatch.setitem(_demo.FAMILIES, "not_a_family", "Imaginary solver")
    calls = []
    run_demo(families=["not_a_family", "not_a_family"],
             progress=lambda family, seconds: calls.append((family, seconds >= 0)))
    assert calls == [("not_a_family", True)] * 2


def test_table_shows_ratio_both_ways():
    faster = DemoRow("p", "r", "anchor", seconds=1.0, anchor_seconds=4.0)
    slower = DemoRow("p", "r", "anchor", seconds=2.0, anchor_seconds=1.0)
    table = _demo._format_table({"coding": faster, "kronecker": slower})
    assert "4.0x faster" in table
    assert "2.0x slower" in table
    assert DemoRow("p", "r", "a", seconds=1.0).speedup is None


def test_gpu_request_without_gpu_says_so(monkeypatch, capsys):
    monkeypatch.setattr(_backend, "_cupy_status", lambda: (None, "CuPy is not here"))
    monkeypatch.setattr(_demo, "cupy_or_none", lambda: None)
    assert main(["demo", "--device", "gpu"]) == 1
    assert "CuPy is not here" in capsys.readouterr().out


def test_unknown_family_is_a_usage_error():
    with pytest.raises(SystemExit):
        main(["demo", "--family", "nope"])


def test_compare_warms_up_then_alternates_the_sides():
    calls = []
    ours, our_timing, theirs, their_timing = _demo.compare(
        lambda: calls.append("ours") or 1, lambda: calls.append("anchor") or 2,
        min_runs=3, max_runs=3,
    )
    assert (ours, theirs) == (1, 2)
    # One warm-up call per side, then timed runs taking turns.
    assert calls == ["ours", "anchor"] * 4
    assert len(our_timing.repeats) == len(their_timing.repeats) == 3
    assert our_timing.median == sorted(our_timing.repeats)[1]


def test_compare_without_anchor_and_more_runs_when_quick():
    calls = []
    _, timing, anchor, anchor_timing = _demo.compare(
        lambda: calls.append(1), None, min_runs=2, max_runs=6, budget_seconds=10.0)
    assert anchor is None
    assert anchor_timing is None
    assert len(timing.repeats) == 6
    assert len(calls) == 7


def test_warmup_is_the_first_calls_extra_time():
    timing = _demo.Timing(first=5.0, repeats=[1.0, 3.0, 2.0])
    assert timing.median == 2.0
    assert timing.warmup == 3.0
    row = DemoRow.from_timings("p", "r", "a", timing, _demo.Timing(1.0, [4.0]))
    assert row.seconds == 2.0
    assert row.anchor_seconds == 4.0
    assert row.warmup_seconds == 3.0
    assert row.n_runs == 3
    assert "+3.00 s" in _demo._format_table({"coding": row})


def test_missing_optional_anchor_says_how_to_get_it(monkeypatch, capsys):
    row = DemoRow.from_timings("p", "r", "surprise SVD: not installed",
                               _demo.Timing(1.0, [1.0]),
                               skipped="get it with `pip install scikit-surprise`")
    monkeypatch.setattr(_demo, "run_demo", lambda *args, **kwargs: {"completion": row})
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "anchor skipped, get it with `pip install scikit-surprise`" in out
    assert row.speedup is None


def test_every_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    options = capsys.readouterr().out.split("options:", 1)[1]
    entries = ["-" + entry for entry in options.split("\n  -")[1:]]
    described = {entry.split()[0].rstrip(","): entry for entry in entries}
    assert set(described) >= {"--device", "--family", "--runs", "--threads"}
    for option, entry in described.items():
        # The option, its metavar, then at least a few words of help.
        assert len(entry.split()) > 5, option


def test_completion_demo_skips_without_surprise(monkeypatch):
    # Without scikit-surprise the row says so; it never falls back to a
    # dense imputer that would take minutes.
    import builtins

    real_import = builtins.__import__

    def no_surprise(name, *args, **kwargs):
        if name == "surprise" or name.startswith("surprise."):
            raise ImportError("No module named 'surprise'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_surprise)
    monkeypatch.setattr(_demo, "MIN_RUNS", 1)
    monkeypatch.setattr(_demo, "MAX_RUNS", 1)
    from sparsesolve.completion._demo import demo

    row = demo()
    assert row.anchor_seconds is None
    assert "pip install scikit-surprise" in row.skipped


def test_compare_waits_for_queued_gpu_work(monkeypatch):
    # CuPy queues kernels; the clock must stop after they finish. A stand-in
    # CuPy module records the synchronisations.
    import sys
    import types

    synchronised = []
    device = types.SimpleNamespace(synchronize=lambda: synchronised.append(1))
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=lambda: device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    _demo.compare(lambda: None, lambda: None, min_runs=2, max_runs=2)
    assert len(synchronised) == 6  # warm-up and two runs, each side
