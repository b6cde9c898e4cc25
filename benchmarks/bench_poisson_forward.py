"""Forward pass of the Poisson direction network: numba, matmul and torch engines.

Seconds and GFLOP/s of one network pass (the shipped 16-channel model) on
16^3, 32^3 and 64^3 grids, and of one 16 -> 16 3x3x3 convolution, for

* the numba engine (register-blocked direct convolution), 1 and 2 threads;
* the matmul engine (27 stacked taps as one BLAS product per chunk);
* the torch engine (oneDNN through a frozen TorchScript module), when PyTorch
  is installed;

next to the machine's single-precision matrix-product peak measured in the
same process: NumPy float32 ``matmul`` of 2048 x 2048 matrices through
OpenBLAS, 1 (and 2) threads, with the OpenBLAS kernel threadpoolctl reports.
OpenBLAS picks its kernel at load time from ``OPENBLAS_CORETYPE``: when that
variable is set, the measurements are repeated in a child process without it
(and without ``OPENBLAS_L2_SIZE``), so the JSON holds both the forced kernel
(Haswell, AVX2 on these machines) and the one OpenBLAS detects (SkylakeX,
AVX-512); the figure of merit divides by the faster sgemm.

A convolution counts ``2 * 27 * C_in * C_out`` FLOP per output voxel, the
1x1x1 output layer ``2 * C``. Times are the best of several runs, wall clock
(``perf_counter``) and CPU time of the process (``process_time``, all
threads), which a shared machine disturbs less: at 1 thread it gives the
undisturbed speed, at 2 threads its ratio to the 1-thread CPU time is the
parallel overhead (1.0: none). The input is a
unit-norm white residual: the work of a dense network does not depend on the
values, so no real data set is needed here (the solver benchmark,
``bench_poisson.py``, covers the data).

Usage: ``python benchmarks/bench_poisson_forward.py [--quick]`` (``--quick``:
16^3 and 32^3 only, the matmul engine at 16^3 only, no child process: under
20 s once numba's cache is warm on an idle 2-core machine).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _harness import Report  # noqa: E402

FAMILY = "poisson_forward"
_CHILD_FLAG = "--child-json"
_FORCED_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def pass_flop(shape, channels):
    """FLOP of one network pass on a grid (extended to even sizes)."""
    voxels = np.prod([n + n % 2 for n in shape], dtype=float)
    conv = 2 * 27 * channels * channels
    return float(voxels * (2 * 27 * channels + 8 * conv + 6 * conv / 8 + 2 * channels))


def best_time(function, min_seconds, max_repeat=50, cpu=False):
    """Best seconds per call (wall, or CPU time of the process).

    One untimed call first (compilation, torch tracing), then at least
    three timed ones, more until ``min_seconds`` are spent.
    """
    clock = time.process_time if cpu else time.perf_counter
    start = time.perf_counter()
    function()
    # Linux adds the CPU time of the other threads at scheduler ticks (a few
    # ms), so CPU samples span at least 20 ms of calls.
    batch = max(1, int(0.02 / (time.perf_counter() - start))) if cpu else 1
    best, spent, repeat = float("inf"), 0.0, 0
    while repeat < 3 or (spent < min_seconds and repeat < max_repeat):
        start = clock()
        for _ in range(batch):
            function()
        elapsed = (clock() - start) / batch
        best = min(best, elapsed)
        spent += elapsed * batch
        repeat += 1
    return best


def sgemm(threads, min_seconds):
    """GFLOP/s of a 2048^2 float32 matmul with ``threads`` OpenBLAS threads."""
    from threadpoolctl import threadpool_info, threadpool_limits

    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty_like(a)
    with threadpool_limits(threads):
        wall = best_time(lambda: np.matmul(a, b, out=c), min_seconds, 5)
        cpu = (best_time(lambda: np.matmul(a, b, out=c), min_seconds, 5, cpu=True)
               if threads == 1 else None)
        info = [{k: pool.get(k) for k in ("internal_api", "version", "architecture",
                                          "num_threads", "threading_layer")}
                for pool in threadpool_info() if pool.get("user_api") == "blas"]
    flop = 2.0 * n**3
    return {"threads": threads, "gflops_wall": flop / wall / 1e9,
            "gflops_cpu": None if cpu is None else flop / cpu / 1e9,
            "architecture": info[0]["architecture"] if info else None,
            "threadpoolctl": info}


@contextlib.contextmanager
def _stage_clock(module, names, seconds):
    """Add the CPU seconds spent in ``module.<name>`` calls to ``seconds``."""
    originals = {name: getattr(module, name) for name in names}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.process_time() - start
        return wrapper

    for name, function in originals.items():
        setattr(module, name, timed(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def profile_pass(network, n, repeat):
    """Share of a 1-thread numba pass spent in each kernel (CPU time)."""
    import sparsesolve.poisson._network as network_module

    residual = np.random.default_rng(1).standard_normal((n, n, n)).astype(np.float32)
    network(residual, engine="numba")
    best = None
    for _ in range(3):
        seconds = {}
        names = ("conv3x3x3_into", "avgpool2_into", "upsample2_add_into",
                 "project_channels")
        with _stage_clock(network_module, names, seconds):
            start = time.process_time()
            for _ in range(repeat):
                network(residual, engine="numba")
            total = time.process_time() - start
        if best is None or total < best[0]:
            best = (total, seconds)
    total, seconds = best
    shares = {name: value / total for name, value in seconds.items()}
    shares["rest (buffer allocation, input copy, Python)"] = 1.0 - sum(shares.values())
    return {"grid": n, "seconds_cpu": total / repeat, "shares": shares}


def measure(quick):
    """Every row of this process: sgemm, single convolutions, network passes."""
    import llvmlite.binding
    import numba
    from threadpoolctl import threadpool_limits

    from sparsesolve.poisson import DirectionNetwork
    from sparsesolve.poisson._conv_kernels import (
        _HAS_AVX512,
        _WIDTHS,
        conv3x3x3_into,
        pack_conv_weights,
    )
    from sparsesolve.poisson._network import default_model_path

    try:
        import torch
    except ImportError:
        torch = None
    min_seconds = 0.05 if quick else 0.6
    sizes = (16, 32) if quick else (16, 32, 64)
    thread_counts = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    peaks = {t: sgemm(t, min_seconds) for t in thread_counts}
    architecture = peaks[1]["architecture"]
    rows = []
    network = DirectionNetwork.load(default_model_path())
    channels = network.channels
    rng = np.random.default_rng(0)
    previous_threads = numba.get_num_threads()
    try:
        for n in sizes:
            shape = (n, n, n)
            residual = rng.standard_normal(shape).astype(np.float32)
            residual /= np.linalg.norm(residual)
            # One 16 -> 16 convolution (the kernel itself).
            padded = np.zeros((n + 2, n + 2, n + 2, channels), np.float32)
            padded[1:-1, 1:-1, 1:-1] = rng.standard_normal((n, n, n, channels))
            weight, bias = pack_conv_weights(network.weights["convs.0.weight"],
                                             network.weights["convs.0.bias"])
            out = np.zeros_like(padded)
            conv_flop = 2.0 * 27 * channels * channels * n**3
            engines = [("numba", t) for t in thread_counts]
            if not (quick and n > 16):  # about 1 s a pass at 32^3
                engines.append(("matmul", 1))
            if torch is not None:
                engines += [("torch", t) for t in thread_counts]
            for engine, threads in engines:
                numba.set_num_threads(threads)
                with threadpool_limits(threads):
                    timings = {}
                    if engine == "numba":
                        conv = functools.partial(conv3x3x3_into, padded, weight,
                                                 bias, out, apply_relu=True)
                        timings["conv"] = (best_time(conv, min_seconds),
                                           best_time(conv, min_seconds, cpu=True))

                    forward = functools.partial(network, residual, engine=engine)
                    budget = min_seconds if engine != "matmul" else min_seconds / 3
                    timings["pass"] = (best_time(forward, budget, 20),
                                       best_time(forward, budget, 20, cpu=True))
                for what, (wall, cpu) in timings.items():
                    flop = conv_flop if what == "conv" else pass_flop(shape, channels)
                    peak = peaks[threads]
                    rows.append({
                        "what": ("one 16->16 3x3x3 convolution" if what == "conv"
                                 else "network pass"),
                        "grid": n, "engine": engine, "threads": threads,
                        "seconds_wall": wall,
                        # CPU seconds of all threads: at 2 threads, equal to
                        # the 1-thread figure means no parallel overhead.
                        "seconds_cpu_all_threads": cpu,
                        "gflops_wall": flop / wall / 1e9,
                        "gflops_cpu": flop / cpu / 1e9 if threads == 1 else None,
                        "sgemm_gflops_wall": peak["gflops_wall"],
                        "sgemm_gflops_cpu": peak["gflops_cpu"],
                        "blas_architecture": architecture,
                    })
        numba.set_num_threads(1)
        voxels = 2e5 if quick else 2e6  # per profiled sample
        profiles = [profile_pass(network, n, max(2, int(voxels / n**3)))
                    for n in sizes if n <= 32]
    finally:
        numba.set_num_threads(previous_threads)
    process = {
        "numba_pass_profile_1_thread": profiles,
        "blas_architecture": architecture,
        "env": {k: os.environ.get(k) for k in _FORCED_VARIABLES},
        "sgemm": list(peaks.values()),
        "numba_register_block_widths": list(_WIDTHS),
        # With the "omp" layer, idle workers spin: on an oversubscribed
        # machine 2 threads can be slower than 1 (see the notes).
        "numba_threading_layer": numba.threading_layer(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "host_has_avx512": _HAS_AVX512,
        "numba_cpu": llvmlite.binding.get_host_cpu_name(),
        "load_average": os.getloadavg(),
    }
    return rows, process


def _other_blas_kernel(quick):
    """Rows measured in a child process with OpenBLAS's own kernel choice."""
    if quick or not any(os.environ.get(k) for k in _FORCED_VARIABLES):
        return [], None
    env = {k: v for k, v in os.environ.items() if k not in _FORCED_VARIABLES}
    target = HERE / "results" / "quick" / "poisson_forward_child.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, __file__, _CHILD_FLAG, str(target)], env=env,
                   check=True)
    child = json.loads(target.read_text())
    target.unlink()
    return child["rows"], child["process"]


def _figure(report):
    import matplotlib.pyplot as plt

    rows = [r for r in report.rows if r["what"] == "network pass"]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    labels = sorted({(r["engine"], r["threads"]) for r in rows})
    grids = sorted({r["grid"] for r in rows})
    width = 0.8 / len(labels)
    for k, (engine, threads) in enumerate(labels):
        values = []
        for n in grids:
            match = [r["gflops_wall"] for r in rows
                     if (r["engine"], r["threads"], r["grid"]) == (engine, threads, n)]
            values.append(max(match) if match else 0.0)
        ax.bar(np.arange(len(grids)) + k * width, values, width,
               label=f"{engine}, {threads} thread{'s' if threads > 1 else ''}")
    for threads, style in ((1, "--"), (2, ":")):
        peaks = [r["sgemm_gflops_wall"] for r in report.rows if r["threads"] == threads]
        if peaks:
            ax.axhline(max(peaks), color="k", ls=style, lw=1,
                       label=f"fastest sgemm 2048², {threads} thread"
                       + ("s" if threads > 1 else ""))
    ax.set_xticks(np.arange(len(grids)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{n}³" for n in grids])
    ax.set_ylabel("GFLOP/s (wall, best of N)")
    ax.set_title("Direction network forward pass, float32, shared 2-core machine")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    report.save_figure(fig)


def run(quick=False, device="cpu"):
    """Measure and write ``results/poisson_forward.json`` (and ``.png``)."""
    report = Report(FAMILY, quick=quick, device=device)
    if device != "cpu":
        report.notes.append("CPU engines only; the GPU path (CuPy through the "
                            "matmul or torch engine) is timed by bench_poisson.")
    rows, process = measure(quick)
    processes = [process]
    child_rows, child_process = _other_blas_kernel(quick)
    if child_process is not None:
        processes.append(child_process)
    report.rows = rows + child_rows
    report.summary["processes"] = processes
    peak_1 = max(p["sgemm"][0]["gflops_wall"] for p in processes)
    peak_1_cpu = max(p["sgemm"][0]["gflops_cpu"] for p in processes)
    report.summary["fastest sgemm 1 thread GFLOP/s (wall, cpu)"] = [peak_1, peak_1_cpu]
    for row in report.rows:
        row["fraction_of_fastest_sgemm_wall"] = row["gflops_wall"] / peak_1 * (
            1 if row["threads"] == 1 else 1 / row["threads"])
        row["fraction_of_fastest_sgemm_cpu"] = (
            None if row["gflops_cpu"] is None else row["gflops_cpu"] / peak_1_cpu)
    for row in rows:  # this process's rows, one per configuration
        key = (f"{row['what']} {row['grid']}^3 {row['engine']} "
               f"{row['threads']}t GFLOP/s / fastest sgemm (wall)")
        report.summary[key] = row["fraction_of_fastest_sgemm_wall"]
    for n in sorted({r["grid"] for r in rows}):
        one = [r for r in rows if (r["grid"], r["engine"], r["threads"],
                                   r["what"]) == (n, "numba", 1, "network pass")]
        two = [r for r in rows if (r["grid"], r["engine"], r["threads"],
                                   r["what"]) == (n, "numba", 2, "network pass")]
        if one and two:
            report.summary[f"numba pass {n}^3 speed-up 2 threads / 1 thread"] = (
                one[0]["seconds_wall"] / two[0]["seconds_wall"])
            report.summary[f"numba pass {n}^3 CPU seconds 2 threads / 1 thread"] = (
                two[0]["seconds_cpu_all_threads"] / one[0]["seconds_cpu_all_threads"])
    report.notes.append(
        "2-thread fractions divide by threads x the 1-thread sgemm; the machine "
        "is shared with other work, so wall times are best-of-N and CPU times "
        "(1 thread) are the steadier figure.")
    report.write()
    _figure(report)
    return report


def main(argv=None):
    # Standalone runs time the checkout this script lives in.
    sys.path.insert(0, str(HERE.parent))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="16^3 and 32^3 only, no child process (< 20 s)")
    parser.add_argument(_CHILD_FLAG, dest="child_json", default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_json:
        rows, process = measure(quick=False)
        Path(args.child_json).write_text(json.dumps(
            {"rows": rows, "process": process}, default=str))
        return 0
    import matplotlib

    matplotlib.use("Agg")
    report = run(quick=args.quick)
    print(f"wrote {report.path('.json')}")
    for row in report.rows:
        cpu = row["gflops_cpu"]
        print(f"{row['what']:32s} {row['grid']:3d}^3 {row['engine']:6s} "
              f"{row['threads']}t  {row['seconds_wall'] * 1e3:9.2f} ms  "
              f"{row['gflops_wall']:6.1f} GFLOP/s wall"
              + (f"  {cpu:6.1f} cpu" if cpu else "")
              + f"  [{row['blas_architecture']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
