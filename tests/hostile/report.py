"""Run the whole suite and turn its results into tables."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from .allowlist import UNNAMED_ALLOWED
from .engine import OUTCOMES, build_probes, discover
from .pool import run_probes


class SuiteRun:
    """Results of one run: probes, outcomes, timing, discovery."""

    def __init__(self, n_workers=2, timeout=60.0, select=None):
        start = time.monotonic()
        self.entries, self.missing = discover()
        probes = build_probes()
        if select:
            probes = [p for p in probes if select in p.pid]
        self.probes = probes
        self.seconds_by_entry = Counter()

        self.seconds_by_probe = Counter()

        def progress(probe, result, seconds):
            self.seconds_by_entry[probe.entry] += seconds
            self.seconds_by_probe[probe.pid] = seconds

        results, self.module = run_probes(probes, n_workers=n_workers,
                                          timeout=timeout, progress=progress)
        self.results = {
            p.pid: results.get(p.pid, ("harness", "no result (a worker slot failed)"))
            for p in probes
        }
        self.seconds = time.monotonic() - start

    def outcome(self, probe):
        outcome, message = self.results[probe.pid]
        if outcome == "unnamed" and probe.pid in UNNAMED_ALLOWED:
            return "unnamed-allowed", message
        return outcome, message

    def counts(self):
        return Counter(self.outcome(p)[0] for p in self.probes)

    def failures(self, outcome):
        return [(p, self.outcome(p)[1]) for p in self.probes
                if self.outcome(p)[0] == outcome]

    def module_of(self, entry):
        return _MODULE_OF.get(entry.split(".")[0], "?")


def _modules():
    """``{short name: exporting subpackage}`` (a family before the root)."""
    import importlib

    from .engine import PUBLIC_MODULES

    out = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if len(module_name) > len(out.get(name, "")):
                out[name] = module_name
    return out


class _Lazy(dict):
    def get(self, key, default=None):
        if not self:
            self.update(_modules())
        return super().get(key, default)


_MODULE_OF = _Lazy()


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows, run):
    """Markdown table of ``(probe, message)`` rows, grouped by module."""
    by_module = defaultdict(list)
    for probe, message in rows:
        by_module[run.module_of(probe.entry)].append((probe, message))
    lines = []
    for module in sorted(by_module):
        lines.append(f"\n### {module}\n")
        lines.append("| entry point | probe | outcome | message |")
        lines.append("|---|---|---|---|")
        for probe, message in sorted(by_module[module], key=lambda r: r[0].pid):
            outcome = run.outcome(probe)[0]
            lines.append(f"| {_cell(probe.entry)} | {_cell(probe.name)} | {outcome} "
                         f"| {_cell(message)[:220]} |")
    return "\n".join(lines)


def markdown(run, command):
    counts = run.counts()
    lines = [
        "# Hostile-input suite: findings",
        "",
        f"Regenerate (from the worktree to probe): `{command}`",
        "",
        f"Probed package: `{run.module}`; {len(run.probes)} probes over "
        f"{len(run.entries)} entry points in {run.seconds:.0f} s.",
        "",
        "| outcome | count |",
        "|---|---|",
    ]
    for outcome in (*OUTCOMES, "unnamed-allowed", "harness", "unavailable"):
        lines.append(f"| {outcome} | {counts.get(outcome, 0)} |")
    if run.missing:
        lines.append(f"\n**Public entry points without a recipe:** {run.missing}")
    per_module = defaultdict(Counter)
    for p in run.probes:
        per_module[run.module_of(p.entry)][run.outcome(p)[0]] += 1
    lines += ["", "| module | " + " | ".join(OUTCOMES) + " |",
              "|---|" + "---|" * len(OUTCOMES)]
    for module in sorted(per_module):
        lines.append(f"| {module} | "
                     + " | ".join(str(per_module[module].get(o, 0)) for o in OUTCOMES)
                     + " |")
    slow = ", ".join(f"{e} {t:.1f} s" for e, t in run.seconds_by_entry.most_common(8))
    lines.append(f"\nSlowest entry points (probe time, both workers): {slow}.")
    slow = ", ".join(f"{p} {t:.1f} s" for p, t in run.seconds_by_probe.most_common(8))
    lines.append(f"Slowest probes: {slow}.")
    for outcome in ("harness", "crash", "silent", "unnamed", "unnamed-allowed",
                    "unavailable"):
        rows = run.failures(outcome)
        if rows:
            lines.append(f"\n## {outcome} ({len(rows)})")
            lines.append(table(rows, run))
    return "\n".join(lines) + "\n"
