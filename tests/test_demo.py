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
