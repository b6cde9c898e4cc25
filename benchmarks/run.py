"""Run the benchmarks of every solver family, or of the ones named.

Usage: ``python benchmarks/run.py [family ...] [--quick] [--device cpu|gpu]``.

Each ``bench_<family>.py`` next to this file is run in this process, one
after the other, and writes ``results/<family>.json`` and ``.png`` (under
``results/quick/`` with ``--quick``). Exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available_families():
    """Families that have a ``bench_<family>.py`` file."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv=None):
    """Parse arguments, run the requested benchmarks, print where results went."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("families", nargs="*", help="families to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, about a minute on 2 cores (CI smoke test)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import matplotlib

    matplotlib.use("Agg")
    known = available_families()
    unknown = sorted(set(args.families) - set(known))
    if unknown:
        parser.error(f"unknown families {unknown}; available: {known}")
    if not known:
        print("No benchmark modules found.")
        return 0
    failures = []
    for family in args.families or known:
        start = time.perf_counter()
        print(f"== {family} ({'quick' if args.quick else 'full'}, {args.device})",
              flush=True)
        try:
            module = importlib.import_module(f"bench_{family}")
            report = module.run(quick=args.quick, device=args.device)
        except Exception:  # noqa: BLE001 - report every failure, then exit non-zero
            traceback.print_exc()
            failures.append(family)
            continue
        print(f"   wrote {report.path('.json').relative_to(HERE.parent)} in "
              f"{time.perf_counter() - start:.1f} s")
        for key, value in report.summary.items():
            print(f"   {key}: {value}")
    if failures:
        print(f"FAILED: {failures}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
