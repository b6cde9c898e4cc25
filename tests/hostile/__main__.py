"""``python -m tests.hostile [--report FILE]``: run the suite, print the counts.

Run it from the root of the worktree to probe; its ``sparsesolve`` is the one
imported. From a checkout without this folder, add the suite's checkout to
the path: ``PYTHONPATH=/path/to/suite-checkout python -m tests.hostile``.
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.hostile")
    parser.add_argument("--report", help="write the findings table (Markdown) here")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="watchdog per probe, seconds")
    parser.add_argument("--json", help="write every probe's outcome here (JSON)")
    parser.add_argument("-k", dest="select", help="only probes whose id contains this")
    parser.add_argument("-v", action="store_true", help="print every non-ok probe")
    args = parser.parse_args(argv)

    from .report import SuiteRun, markdown

    run = SuiteRun(n_workers=args.workers, timeout=args.timeout, select=args.select)
    command = "python -m tests.hostile --report FILE"
    text = markdown(run, command)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump([{"pid": p.pid, "entry": p.entry, "category": p.category,
                        "name": p.name, "arg": p.arg,
                        "outcome": run.outcome(p)[0], "message": run.outcome(p)[1]}
                       for p in run.probes], f, indent=0)
    counts = run.counts()
    print(f"{len(run.probes)} probes, {run.seconds:.1f} s, package {run.module}")
    print("  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if args.v:
        for outcome in ("crash", "silent", "unnamed"):
            for probe, message in run.failures(outcome):
                print(f"{outcome:8s} {probe.pid}: {message[:160]}")
    bad = counts.get("crash", 0) + counts.get("silent", 0) + counts.get("unnamed", 0)
    return 1 if bad or run.missing else 0


if __name__ == "__main__":
    sys.exit(main())
