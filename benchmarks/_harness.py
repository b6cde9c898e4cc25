"""Shared benchmark harness: timing with warm-up, ratios, JSON + PNG, machine info.

Every ``bench_<family>.py`` exposes ``run(quick=False, device="cpu")`` that
builds a :class:`Report`, fills it with :meth:`Report.add` rows and returns it
after :meth:`Report.write`. ``quick`` runs finish in about a minute on 2 cores
(CI smoke test) and write under ``results/quick/`` (ignored by git); full runs
write ``results/<family>.json`` and ``results/<family>.png``, which the README
quotes.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import time
import tracemalloc
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"

_VERSIONED = (
    "sparsesolve", "numpy", "scipy", "scikit-learn", "numba", "cupy-cuda12x",
    "cupy-cuda13x", "numba-cuda", "pyamg", "scikit-image", "pysptools",
    "scikit-surprise", "fancyimpute", "torch",
)


def machine_info(device="cpu"):
    """Describe the machine and library versions for the JSON record."""
    info = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "versions": {},
    }
    for name in _VERSIONED:
        try:
            info["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: pool.get(k) for k in ("internal_api", "num_threads", "version")}
            for pool in threadpool_info()
        ]
    except Exception:  # noqa: BLE001 - informational only
        info["blas"] = []
    if device == "gpu":
        from sparsesolve._backend import require_cupy

        cupy = require_cupy()
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else (
            props["name"])
    return info


def _synchronize():
    """Wait for queued GPU work so that timings include it."""
    from sparsesolve._backend import cupy_or_none

    cupy = cupy_or_none()
    if cupy is not None:
        cupy.cuda.Device().synchronize()


def time_call(function, *args, repeat=3, warmup=1, device="cpu", **kwargs):
    """Return ``(result, best_seconds)`` of ``function(*args, **kwargs)``.

    ``warmup`` untimed calls come first so that numba compilation and CuPy
    kernel caches are not charged to the measured runs; the best of
    ``repeat`` runs is reported because it is the least disturbed by other
    work on the machine.
    """
    for _ in range(warmup):
        function(*args, **kwargs)
    if device == "gpu":
        _synchronize()
    best = float("inf")
    result = None
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        if device == "gpu":
            _synchronize()
        best = min(best, time.perf_counter() - start)
    return result, best


@contextlib.contextmanager
def cpu_threads(n_threads):
    """Run the CPU path with ``n_threads`` numba threads and BLAS threads.

    ``None`` leaves both at their defaults (every core). The CPU figures
    are stated for the reference machine (2 cores, 1 BLAS thread); a GPU
    comparison reports the CPU path both ways, ``cpu_threads(2)`` with one
    BLAS thread standing in for the reference machine.
    """
    if n_threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(1):
            yield
    finally:
        numba.set_num_threads(previous)


def peak_memory(function, *args, **kwargs):
    """Return ``(result, peak_bytes)`` of Python/NumPy allocations during the call.

    tracemalloc sees NumPy buffers (NumPy reports them to it) but not memory
    that BLAS or numba allocate on their own; it is a lower bound, stated as
    such in the JSON.
    """
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


class Report:
    """Rows of one family's benchmark, written as JSON (and a PNG by the family).

    Parameters
    ----------
    family : str
        Solver family, used for the file names.
    quick : bool
        Quick (CI smoke) run or full run.
    device : {"cpu", "gpu"}
        Where sparsesolve ran.
    """

    def __init__(self, family, quick=False, device="cpu"):
        self.family = family
        self.quick = quick
        self.device = device
        self.rows = []
        self.summary = {}
        self.notes = []

    def add(self, **row):
        """Append one measurement row (case, method, metrics...)."""
        self.rows.append(row)
        return row

    def ratio(self, numerator, denominator):
        """``numerator / denominator`` with ``None`` when either is missing."""
        if numerator is None or denominator in (None, 0):
            return None
        return numerator / denominator

    @property
    def directory(self):
        """Where this run's files go."""
        path = RESULTS_DIR / "quick" if self.quick else RESULTS_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path(self, suffix):
        """File path for this family with ``suffix`` (``".json"``, ``".png"``)."""
        device = "" if self.device == "cpu" else f"_{self.device}"
        return self.directory / f"{self.family}{device}{suffix}"

    def write(self):
        """Write the JSON record and return its path."""
        record = {
            "family": self.family,
            "quick": self.quick,
            "machine": machine_info(self.device),
            "summary": self.summary,
            "notes": self.notes,
            "rows": self.rows,
        }
        path = self.path(".json")
        path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
        return path

    def save_figure(self, figure):
        """Save a matplotlib figure next to the JSON and close it."""
        import matplotlib.pyplot as plt

        path = self.path(".png")
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        return path


def _json_default(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)
