"""The main job: a quick end-to-end tour of every available solver family.

Each family contributes ``sparsesolve/<family>/_demo.py`` with a function
``demo(device)`` that solves a small built-in problem with sparsesolve and with
the library a user would otherwise pick (the anchor) and returns a
:class:`DemoRow`. Families that have not landed yet are listed as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time

from ._backend import cupy_or_none, require_cupy

__all__ = ["DemoRow", "FAMILIES", "main", "run_demo", "timed"]

FAMILIES = {
    "kronecker": "Kronecker sparse Bayesian recovery",
    "coding": "l_q sparse coding",
    "unmixing": "Robust hyperspectral unmixing",
    "completion": "Low-rank matrix completion",
    "poisson": "Deep conjugate-direction Poisson",
    "clustering": "Transductive Laplacian clustering",
}


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
        The anchor's name and the same figure (``"ARDRegression -12.0 dB"``).
    seconds : float
        sparsesolve's wall time.
    anchor_seconds : float or None
        The anchor's wall time, when it ran.
    """

    problem: str
    result: str
    anchor: str
    seconds: float
    anchor_seconds: float | None = None

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


def _family_demo(family):
    try:
        module = importlib.import_module(f"sparsesolve.{family}._demo")
    except ModuleNotFoundError as exc:
        if exc.name in {f"sparsesolve.{family}", f"sparsesolve.{family}._demo"}:
            return None
        raise
    return module.demo


def run_demo(device="cpu", families=None, progress=None):
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

    Returns
    -------
    dict
        ``None`` for families that are not available yet.
    """
    rows = {}
    for family in families or FAMILIES:
        start = time.perf_counter()
        demo = _family_demo(family)
        rows[family] = None if demo is None else demo(device)
        if progress is not None:
            progress(family, time.perf_counter() - start)
    return rows


def _format_table(rows):
    header = ("family", "problem", "sparsesolve", "anchor", "time ratio")
    lines = []
    for family, row in rows.items():
        if row is None:
            lines.append((FAMILIES[family], "-", "not available yet", "-", "-"))
            continue
        ratio = row.speedup
        shown = "-" if ratio is None else f"{ratio:.1f}x faster" if ratio >= 1 else (
            f"{1 / ratio:.1f}x slower"
        )
        lines.append(
            (FAMILIES[family], row.problem, f"{row.result} ({row.seconds:.2f} s)",
             row.anchor, shown)
        )
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def main(argv=None):
    """Entry point of ``python -m sparsesolve``."""
    parser = argparse.ArgumentParser(prog="python -m sparsesolve")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run every solver family on a small problem")
    demo.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    demo.add_argument("--family", action="append", choices=sorted(FAMILIES),
                      help="run only this family (repeatable)")
    args = parser.parse_args(argv)
    if args.device == "gpu" and cupy_or_none() is None:
        try:
            require_cupy()
        except RuntimeError as exc:
            print(f"No GPU run possible: {exc}")
            return 1
    def progress(family, seconds):
        print(f"  {FAMILIES[family]}: done in {seconds:.1f} s", file=sys.stderr,
              flush=True)

    rows = run_demo(args.device, args.family, progress)
    print(f"sparsesolve demo on {args.device.upper()}; time ratio = anchor time / "
          "sparsesolve time")
    print(_format_table(rows))
    return 0
