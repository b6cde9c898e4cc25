"""Worker process: runs probes sent as JSON lines on stdin, one at a time.

The protocol goes over a duplicate of the original stdout; the library's
own prints (``verbose``) go to /dev/null so they cannot corrupt it. The
address space is capped (``RLIMIT_AS``) so that a probe asking for terabytes
fails fast with a ``MemoryError`` instead of swapping the machine.
"""

import json
import os
import resource
import signal
import sys
import time


def main():
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    limit = int(float(os.environ.get("HOSTILE_MEMORY_GIB", "6")) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    import sparsesolve
    from tests.hostile.engine import Probe, run_probe

    protocol.write(json.dumps({"ready": sparsesolve.__file__}) + "\n")
    for line in sys.stdin:
        probe = Probe(**json.loads(line))
        pid = probe.pid
        if pid.startswith("selftest|"):
            # Tests of the pool itself (tests/hostile/test_hostile.py).
            outcome, message = _selftest(pid.split("|")[1])
        else:
            try:
                outcome, message = run_probe(probe)
            except BaseException as exc:  # noqa: BLE001 - report, keep serving
                outcome = "harness"
                message = f"probe harness: {type(exc).__name__}: {exc}"
        protocol.write(json.dumps({"pid": pid, "outcome": outcome,
                                   "message": str(message)[:400]}) + "\n")


def _selftest(what):
    if what == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "abort":
        os.abort()
    elif what == "hang":
        time.sleep(3600)
    elif what == "allocate":
        import numpy as np

        try:
            np.ones(2**40)  # 8 TiB, beyond RLIMIT_AS
        except MemoryError as exc:
            return "ok", f"MemoryError: {exc}"
        return "silent", "allocated 8 TiB"
    return "ok", "selftest"


if __name__ == "__main__":
    main()
