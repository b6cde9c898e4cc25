"""Worker process: runs probes sent as JSON lines on stdin, one at a time.

The protocol goes over a duplicate of the original stdout; the library's
own prints (``verbose``) go to /dev/null so they cannot corrupt it. The
address space is capped (``RLIMIT_AS``) so that a probe asking for terabytes
fails fast with a ``MemoryError`` instead of swapping the machine.
"""

import json
import os
import resource
import sys


def main():
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    limit = int(float(os.environ.get("HOSTILE_MEMORY_GIB", "6")) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    import sparsesolve
    from tests.hostile.engine import build_probes, run_probe

    probes = {p.pid: p for p in build_probes()}
    protocol.write(json.dumps({"ready": sparsesolve.__file__}) + "\n")
    for line in sys.stdin:
        pid = json.loads(line)
        try:
            outcome, message = run_probe(probes[pid])
        except BaseException as exc:  # noqa: BLE001 - report, keep serving
            outcome, message = "harness", f"probe harness: {type(exc).__name__}: {exc}"
        protocol.write(json.dumps({"pid": pid, "outcome": outcome,
                                   "message": str(message)[:400]}) + "\n")


if __name__ == "__main__":
    main()
