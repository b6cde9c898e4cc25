"""A small pool of persistent worker processes with a per-probe watchdog.

Probes are grouped by entry point (a worker caches the reference results of
an entry point) and the groups are shared among ``n_workers`` processes. A
worker that dies (segfault, abort) or does not answer within the timeout
(hang; it is killed) gives that probe the outcome ``crash``; a fresh worker
is started for the next probe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

SUITE_ROOT = Path(__file__).resolve().parents[2]


def target_root():
    """The checkout whose sparsesolve is probed: the working directory when
    it has one (so the suite can probe another worktree), else the suite's."""
    cwd = Path.cwd()
    if (cwd / "sparsesolve" / "__init__.py").exists():
        return cwd
    return SUITE_ROOT


class _Worker:
    def __init__(self, root, log_dir):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(root), str(SUITE_ROOT)] + ([env["PYTHONPATH"]]
                                            if env.get("PYTHONPATH") else []))
        env.setdefault("MPLBACKEND", "Agg")
        env.setdefault("SCIPY_ARRAY_API", "1")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            "w+", dir=log_dir, prefix="worker-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile.worker"], cwd=str(root), env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True, bufsize=1)
        self.ready = None

    def read(self, timeout):
        """One JSON line, or None on timeout, or "EOF"."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return "EOF"
        return json.loads(line)

    def death(self):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        self.log.flush()
        tail = Path(self.log.name).read_text(errors="replace").strip().splitlines()
        tail = [t for t in tail if t.strip()][-2:]
        if code is not None and code < 0:
            try:
                what = signal.Signals(-code).name
            except ValueError:
                what = f"signal {-code}"
        else:
            what = f"exit status {code}"
        return f"worker died ({what}): {' | '.join(tail)[:300]}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()
        os.unlink(self.log.name)


def run_probes(probes, n_workers=2, timeout=60.0, start_timeout=300.0,
               progress=None):
    """Run ``probes``; return ``{pid: (outcome, message)}`` and the module path.

    Parameters
    ----------
    probes : list of Probe
    n_workers : int
        Persistent worker processes.
    timeout : float
        Watchdog per probe, in seconds; the first probe of an entry point
        (which may compile numba kernels) gets four times as long.
    start_timeout : float
        How long a fresh worker may take to import the package.
    """
    root = target_root()
    groups = defaultdict(list)
    for p in probes:
        groups[p.entry].append(p)
    work = queue.Queue()
    for entry in sorted(groups, key=lambda e: -len(groups[e])):
        work.put(groups[entry])
    results = {}
    module = {}
    lock = threading.Lock()
    log_dir = tempfile.mkdtemp(prefix="hostile-logs-")

    def slot():
        worker = None
        while True:
            try:
                batch = work.get_nowait()
            except queue.Empty:
                break
            for i, probe in enumerate(batch):
                if worker is None:
                    worker = _Worker(root, log_dir)
                    hello = worker.read(start_timeout)
                    if not isinstance(hello, dict):
                        message = (worker.death() if hello == "EOF"
                                   else "worker did not start")
                        worker.kill()
                        raise RuntimeError(f"hostile suite: {message}")
                    module["path"] = hello["ready"]
                worker.proc.stdin.write(json.dumps(dataclasses.asdict(probe)) + "\n")
                worker.proc.stdin.flush()
                limit = timeout * (4 if i == 0 else 1)
                start = time.monotonic()
                answer = worker.read(limit)
                if answer is None:
                    worker.kill()
                    worker.close()
                    worker = None
                    result = ("crash", f"hang: no answer in {limit:.0f} s (killed)")
                elif answer == "EOF":
                    result = ("crash", worker.death())
                    worker.close()
                    worker = None
                else:
                    result = (answer["outcome"], answer["message"])
                with lock:
                    results[probe.pid] = result
                    if progress:
                        progress(probe, result, time.monotonic() - start)
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=slot) for _ in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with contextlib.suppress(OSError):
        os.rmdir(log_dir)
    return results, module.get("path")
