"""Fill the README's results table from ``benchmarks/results/<family>.json``.

Usage: ``python benchmarks/results_table.py`` rewrites the part of README.md
between the ``results:start`` and ``results:end`` markers with the headline
figures (the ``summary`` of each full benchmark run) and the machine they
were measured on. ``--check`` only reports whether the README is up to date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _format(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items())
    return str(value)


def build_table():
    """Markdown table of every full-run summary, one row per figure."""
    lines = ["| family | figure | measured | machine |", "| --- | --- | --- | --- |"]
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        machine = record.get("machine", {})
        where = machine.get("gpu") or f"{machine.get('cpu_count', '?')} CPU cores"
        where += f", {machine.get('date', '')[:10]}"
        for key, value in record.get("summary", {}).items():
            lines.append(f"| {record['family']} | {key} | {_format(value)} | {where} |")
    if len(lines) == 2:
        lines.append("| - | no full benchmark run recorded yet | - | - |")
    return "\n".join(lines)


def main(argv=None):
    """Rewrite (or check) the README results section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print("README.md has no results markers", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{build_table()}\n{END}{tail}"
    if args.check:
        return 0 if updated == text else 1
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
