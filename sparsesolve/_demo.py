"""The main job: a quick end-to-end tour of every available solver family.

Each family contributes ``sparsesolve/<family>/_demo.py`` with a function
``demo(device)`` that solves a small built-in problem with sparsesolve and with
the library a user would otherwise pick (the anchor) and returns a
:class:`DemoRow`. Families that have not landed yet are listed as such.

Timing follows the usual benchmarking rules (as ``timeit`` and
``pyperf``): each side is called once to warm up (numba compiles or loads its
cached kernels, BLAS and caches wake up), then timed several times, the two
sides alternating so that both see the same machine load, and the median is
reported. The warm-up call's extra time is shown in its own column, because
a user's first call in a fresh process pays it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import statistics
import sys
import time

from ._backend import cupy_or_none, numba_threads, require_cupy

__all__ = ["DemoRow", "FAMILIES", "Timing", "compare", "main", "run_demo", "timed"]

FAMILIES = {
    "kronecker": "Kronecker sparse Bayesian recovery",
    "coding": "l_q sparse coding",
    "unmixing": "Robust hyperspectral unmixing",
    "completion": "Low-rank matrix completion",
    "poisson": "Deep conjugate-direction Poisson",
    "clustering": "Transductive Laplacian clustering",
}


@dataclasses.dataclass
class Timing:
    """Wall times of one side of a comparison.

    Parameters
    ----------
    first : float
        The warm-up call (compilation and first-touch costs included).
    repeats : list of float
        The timed calls after it.
    """

    first: float
    repeats: list

    @property
    def median(self):
        """Median of the timed calls (the figure reported)."""
        return statistics.median(self.repeats)

    @property
    def warmup(self):
        """Extra time of the first call over the median (compilation etc.)."""
        return max(self.first - self.median, 0.0)


@dataclasses.dataclass
class DemoRow:
    """One line of the demo table.

    Parameters
    ----------
    problem : str
        The small problem solved, in a few words.
    result : str
        sparsesolve's figure of merit on it (``"NMSE -31.2 dB"``).
    anchor : str
        The anchor's name and the same figure (``"ARDRegression -12.0 dB"``),
        or why it did not run.
    seconds : float
        sparsesolve's wall time (median of the timed runs).
    anchor_seconds : float or None
        The anchor's wall time (median), when it ran.
    warmup_seconds : float or None
        Extra time of sparsesolve's first call in the process.
    n_runs : int
        Timed runs per side behind the medians.
    skipped : str or None
        When the anchor is an optional package that is not installed: how to
        install it.
    """

    problem: str
    result: str
    anchor: str
    seconds: float
    anchor_seconds: float | None = None
    warmup_seconds: float | None = None
    n_runs: int = 1
    skipped: str | None = None

    @classmethod
    def from_timings(cls, problem, result, anchor, ours, theirs=None, skipped=None):
        """Build a row from the :class:`Timing` of each side."""
        return cls(
            problem,
            result,
            anchor,
            ours.median,
            None if theirs is None else theirs.median,
            warmup_seconds=ours.warmup,
            n_runs=len(ours.repeats),
            skipped=skipped,
        )

    @property
    def speedup(self):
        """Anchor time divided by sparsesolve time (>1 means faster)."""
        if self.anchor_seconds is None or self.seconds <= 0:
            return None
        return self.anchor_seconds / self.seconds


def timed(function, *args, **kwargs):
    """Call ``function`` and return ``(result, seconds)``.

    Examples
    --------
    >>> from sparsesolve._demo import timed
    >>> value, seconds = timed(sum, [1, 2, 3])
    >>> value
    6
    """
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _timed_to_completion(function):
    """:func:`timed`, waiting for queued GPU work before the clock stops.

    CuPy launches kernels asynchronously; without a synchronisation a GPU
    run would be timed by how fast it queues work, not how fast it does it.
    """
    start = time.perf_counter()
    result = function()
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        cupy.cuda.Device().synchronize()
    return result, time.perf_counter() - start


#: Timed runs per side: at least MIN_RUNS, more (up to MAX_RUNS) while the
#: comparison has used less than BUDGET_SECONDS, so quick rows get a stabler
#: median and slow ones keep the demo short.
MIN_RUNS = 3
MAX_RUNS = 15
BUDGET_SECONDS = 1.5


def compare(ours, anchor=None, *, min_runs=None, max_runs=None, budget_seconds=None):
    """Time ``ours()`` against ``anchor()``: a warm-up each, then alternating runs.

    Parameters
    ----------
    ours, anchor : callable
        Zero-argument callables; ``anchor`` may be ``None`` (not installed).
    min_runs, max_runs : int, optional
        Bounds on the timed runs per side (defaults :data:`MIN_RUNS`,
        :data:`MAX_RUNS`).
    budget_seconds : float, optional
        Timed runs beyond ``min_runs`` stop once this much time has gone
        into them (default :data:`BUDGET_SECONDS`).

    Returns
    -------
    our_result, our_timing, anchor_result, anchor_timing
        The results of the last calls and a :class:`Timing` per side
        (``None`` for a missing anchor).

    Examples
    --------
    >>> from sparsesolve._demo import compare
    >>> value, timing, _, _ = compare(lambda: sum(range(10)))
    >>> value, len(timing.repeats) >= 3
    (45, True)
    """
    min_runs = MIN_RUNS if min_runs is None else min_runs
    max_runs = MAX_RUNS if max_runs is None else max_runs
    max_runs = max(max_runs, min_runs)
    budget = BUDGET_SECONDS if budget_seconds is None else budget_seconds
    sides = [ours] if anchor is None else [ours, anchor]
    results, timings = [], []
    for side in sides:
        result, first = _timed_to_completion(side)
        results.append(result)
        timings.append(Timing(first, []))
    spent = 0.0
    while True:
        n_done = len(timings[0].repeats)
        if n_done >= max_runs or (n_done >= min_runs and spent >= budget):
            break
        for index, side in enumerate(sides):
            results[index], seconds = _timed_to_completion(side)
            timings[index].repeats.append(seconds)
            spent += seconds
    if anchor is None:
        return results[0], timings[0], None, None
    return results[0], timings[0], results[1], timings[1]


def _family_demo(family):
    try:
        module = importlib.import_module(f"sparsesolve.{family}._demo")
    except ModuleNotFoundError as exc:
        if exc.name in {f"sparsesolve.{family}", f"sparsesolve.{family}._demo"}:
            return None
        raise
    return module.demo


@contextlib.contextmanager
def _thread_limit(threads):
    """BLAS/OpenMP (threadpoolctl) and numba on ``threads`` threads inside."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads), numba_threads(threads):
        yield


def run_demo(device="cpu", families=None, progress=None, threads=None):
    """Run the demo of each available family; return ``{family: row or None}``.

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs; anchors always run where they run.
    families : list of str, optional
        Subset of :data:`FAMILIES`.
    progress : callable, optional
        Called as ``progress(family, seconds)`` after each family, so that a
        long first GPU run (numba-cuda compiles every kernel on first use)
        shows where it is.
    threads : int, optional
        Run both sides of every comparison with this many BLAS and numba
        threads; ``None`` leaves the libraries' defaults (all cores).

    Returns
    -------
    dict
        ``None`` for families that are not available yet.
    """
    rows = {}
    for family in families or FAMILIES:
        start = time.perf_counter()
        demo = _family_demo(family)
        with _thread_limit(threads):
            rows[family] = None if demo is None else demo(device)
        if progress is not None:
            progress(family, time.perf_counter() - start)
    return rows


def _ratio_text(row):
    ratio = row.speedup
    if ratio is None:
        return "-"
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def _format_table(rows):
    header = ("family", "problem", "sparsesolve", "anchor", "time ratio", "warm-up")
    lines = []
    for family, row in rows.items():
        if row is None:
            lines.append((FAMILIES[family], "-", "not available yet", "-", "-", "-"))
            continue
        anchor = row.anchor
        if row.anchor_seconds is not None:
            anchor = f"{anchor} ({row.anchor_seconds:.3f} s)"
        warmup = "-" if row.warmup_seconds is None else f"+{row.warmup_seconds:.2f} s"
        lines.append(
            (FAMILIES[family], row.problem, f"{row.result} ({row.seconds:.3f} s)",
             anchor, _ratio_text(row), warmup)
        )
    widths = [max(len(str(line[i])) for line in [header, *lines])
              for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    out += [fmt.format(*line).rstrip() for line in lines]
    return "\n".join(out)


def _skipped_lines(rows):
    return [
        f"{FAMILIES[family]}: anchor skipped, {row.skipped}"
        for family, row in rows.items()
        if row is not None and row.skipped
    ]


def main(argv=None):
    """Entry point of ``python -m sparsesolve``."""
    global MIN_RUNS  # --runs sets the default of every family's compare()
    parser = argparse.ArgumentParser(
        prog="python -m sparsesolve",
        description="sparsesolve command line.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run every solver family on a small problem against its anchor",
        description=(
            "Solve a small built-in problem per solver family with sparsesolve "
            "and with the library a user would otherwise pick (the anchor). "
            "Times are medians of several runs after a warm-up call; the "
            "warm-up column is the first call's extra time (numba compilation "
            "or cache loading). Anchors that are optional packages are skipped "
            "when not installed, with the command that installs them."
        ),
    )
    demo.add_argument(
        "--device", choices=("cpu", "gpu"), default="cpu",
        help="where sparsesolve runs: 'cpu' (NumPy and numba, the default) or "
             "'gpu' (CuPy and numba-cuda; needs sparsesolve[gpu] and a CUDA "
             "device); the anchors always run on the CPU",
    )
    demo.add_argument(
        "--family", action="append", choices=sorted(FAMILIES), metavar="FAMILY",
        help="run only this family (repeatable); one of "
             + ", ".join(sorted(FAMILIES)) + "; default: all",
    )
    demo.add_argument(
        "--runs", type=int, default=MIN_RUNS, metavar="N",
        help=f"least number of timed runs per side after the warm-up (default "
             f"{MIN_RUNS}); quick problems get more, up to {MAX_RUNS}",
    )
    demo.add_argument(
        "--threads", type=int, default=1, metavar="N",
        help="BLAS and numba threads for both sides of every comparison "
             "(default 1: same threads for sparsesolve and its anchor, and "
             "ratios that a busy machine does not swing); 0 keeps the "
             "libraries' defaults (all cores)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be 0 (all cores) or more; got {args.threads}.")
    if args.runs < 1:
        parser.error(f"--runs must be at least 1; got {args.runs}.")
    if args.device == "gpu" and cupy_or_none() is None:
        try:
            require_cupy()
        except RuntimeError as exc:
            print(f"No GPU run possible: {exc}")
            return 1

    def progress(family, seconds):
        print(f"  {FAMILIES[family]}: done in {seconds:.1f} s", file=sys.stderr,
              flush=True)

    default_runs, MIN_RUNS = MIN_RUNS, args.runs
    start = time.perf_counter()
    try:
        rows = run_demo(args.device, args.family, progress,
                        threads=args.threads or None)
    finally:
        MIN_RUNS = default_runs
    total = time.perf_counter() - start
    threads = f"{args.threads} thread(s)" if args.threads else "all cores"
    print(f"sparsesolve demo on {args.device.upper()}, BLAS and numba on "
          f"{threads} for both sides; times are medians of timed runs after a "
          "warm-up call; time ratio = anchor time / sparsesolve time; warm-up "
          "= first call's extra time (compilation, caches)")
    print(_format_table(rows))
    for line in _skipped_lines(rows):
        print(line)
    print(f"total {total:.1f} s")
    return 0
