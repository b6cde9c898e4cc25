"""Poisson solves in wall time: multilevel DCDM vs SciPy CG, IC(0)-PCG and PyAMG.

Every method stops at the same rule, ``||b - A x|| <= 1e-6 ||b||``, on the
same systems, in one process with the same threads (numba and BLAS both
limited to 1, then 2). Each method is warmed up once on the case (numba
compilation is not charged), then timed ``repeat`` times; the median wall
time is reported, setup (DCDM's fit, IC(0) factorisation, PyAMG's hierarchy)
included in ``total_s`` and apart in ``setup_s``/``solve_s``.

Cases: Dirichlet boxes of 32^3, 64^3 and 128^3 (the domain class the
shipped model was trained on, at 16^3 and 32^3) with white, smooth and
divergence right-hand sides; obstacle shapes never seen in training
(sphere, box, random balls and boxes, torus, cylinders; Neumann and
open-top boundaries) at 32^3 and 64^3. Seeds 3, 4 and 6: the multilevel
defaults were chosen on seeds 0, 5 and 7 (box, white noise), and seeds 1-2
chose the shipped checkpoint.

DCDM rows: the default (multilevel cycle, network on the coarsest grid);
the same cycle with a Chebyshev sweep instead of the network ("smoother at
coarsest") and with nothing there ("no coarsest correction") -- the
ablation that measures the network; a deeper hierarchy with no network at
all ("multigrid to 4^3, no network"); and the paper's method (the network
on the full grid) where it finishes in reasonable time.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings

import numpy as np
from _harness import Report, time_call

from sparsesolve._backend import to_numpy
from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import (
    DeepConjugateDirection,
    IncompleteCholesky,
    cg,
    ic0_pcg,
)

TOL = 1e-6
# Three right-hand sides: white noise, low-pass noise and the
# divergence of a random smooth velocity (a pressure projection's).
RHS_KINDS = ("white", "smooth", "divergence")
SEEDS = (3, 4, 6)
UNSEEN = (("sphere", "dirichlet"), ("box", "dirichlet"), ("random", "dirichlet"),
          ("torus", "dirichlet"), ("cylinders", "dirichlet"),
          ("sphere", "neumann"), ("random", "open_top"))
DCDM_VARIANTS = {
    "DCDM": {},
    "DCDM, smoother at coarsest": {"coarse_solver": "smoother"},
    "DCDM, no coarsest correction": {"coarse_solver": "none"},
    "multigrid to 4^3, no network": {"coarse_solver": "smoother",
                                     "coarsest_size": 4},
    "DCDM paper (1 level)": {"method": "dcdm", "n_levels": 1},
}
ANCHORS = ("SciPy CG", "IC(0)-PCG", "PyAMG SA-PCG")


@contextlib.contextmanager
def _threads(n_threads):
    """numba and BLAS both limited to ``n_threads`` (the 'same threads' rule)."""
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(n_threads):
            yield
    finally:
        numba.set_num_threads(previous)


def _pyamg_sa_pcg(A, b):
    """PyAMG smoothed aggregation as a CG preconditioner (fluid cells only)."""
    import pyamg
    import scipy.sparse.linalg as spla

    # AMG smoothers divide by the diagonal: drop the empty (solid) rows.
    fluid = A.getnnz(axis=1) > 0
    start = time.perf_counter()
    A_fluid = A[fluid][:, fluid].tocsr()
    hierarchy = pyamg.smoothed_aggregation_solver(A_fluid)
    setup = time.perf_counter() - start
    iterations = []
    start = time.perf_counter()
    x_fluid, info = spla.cg(A_fluid, b[fluid], rtol=TOL, atol=0.0,
                            M=hierarchy.aspreconditioner(cycle="V"), maxiter=500,
                            callback=lambda xk: iterations.append(1))
    solve = time.perf_counter() - start
    x = np.zeros_like(b)
    x[fluid] = x_fluid
    return x, len(iterations), setup, solve


def _scipy_cg(A, b):
    import scipy.sparse.linalg as spla

    iterations = []
    start = time.perf_counter()
    x, _ = spla.cg(A, b, rtol=TOL, atol=0.0, maxiter=10 * A.shape[0],
                   callback=lambda xk: iterations.append(1))
    return x, len(iterations), 0.0, time.perf_counter() - start


def _ic0_pcg(A, b):
    start = time.perf_counter()
    factor = IncompleteCholesky(A)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    result = ic0_pcg(A, b, rtol=TOL, preconditioner=factor)
    return result.x, result.n_iter, setup, time.perf_counter() - start


def _dcdm(params):
    def run(A, b):
        start = time.perf_counter()
        solver = DeepConjugateDirection(tol=TOL, max_iter=400, **params).fit(A)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = solver.solve(b, return_result=True)
        return result.x, result.n_iter, setup, time.perf_counter() - start
    return run


def _relative_residual(A, b, x):
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def _methods(n, have_pyamg):
    methods = {"SciPy CG": _scipy_cg, "IC(0)-PCG": _ic0_pcg}
    if have_pyamg:
        methods["PyAMG SA-PCG"] = _pyamg_sa_pcg
    for name, params in DCDM_VARIANTS.items():
        # The paper's method runs the network on the full grid (about a
        # second per call at 64^3 on one core): small grids only.
        if params.get("method") == "dcdm" and n > 32:
            continue
        methods[name] = _dcdm(params)
    return methods


def _run_case(report, case, methods, threads, repeat):
    n = case["n"]
    A, b, _ = make_poisson_problem((n, n, n), case["obstacle"],
                                   boundary=case["boundary"], rhs=case["rhs"],
                                   random_state=case["seed"])
    A = A.tocsr()
    for method, run in methods.items():
        with _threads(threads):
            run(A, b)  # warm-up: compilation and first-touch are not charged
            runs = [run(A, b) for _ in range(repeat)]
        x, n_iter = runs[0][0], runs[0][1]
        setup = float(np.median([r[2] for r in runs]))
        solve = float(np.median([r[3] for r in runs]))
        total = float(np.median([r[2] + r[3] for r in runs]))
        report.add(**case, threads=threads, method=method, n_iter=int(n_iter),
                   setup_s=setup, solve_s=solve, total_s=total, repeat=repeat,
                   unknowns=int(A.shape[0]),
                   relative_residual=_relative_residual(A, b, x),
                   converged=_relative_residual(A, b, x) <= 1.01 * TOL)


def _forward_pass(report, quick):
    """The forward-pass figures of ``bench_poisson_forward.py``'s last full run.

    That benchmark (its own family in ``run.py``) measures the network's
    GFLOP/s against sgemm with both OpenBLAS kernels; the Poisson summary
    quotes its fractions so that every figure of the solver is in one place.
    """
    import json

    from _harness import RESULTS_DIR

    path = RESULTS_DIR / "poisson_forward.json"
    if quick or not path.exists():
        report.notes.append("forward-pass figures: see results/poisson_forward.json "
                            "(python benchmarks/run.py poisson_forward).")
        return None
    with open(path) as handle:
        forward = json.load(handle)
    figures = {key: value for key, value in forward.get("summary", {}).items()
               if "fraction" in key or "sgemm" in key or "speed-up" in key}
    figures["measured"] = forward.get("machine", {}).get("date")
    return figures


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _summarise(report, sizes, threads_list, forward):
    rows = [r for r in report.rows if "method" in r]

    def select(method, n, trained, threads, key):
        return [r[key] for r in rows if r["method"] == method and r["n"] == n
                and (r["obstacle"] == "none") == trained and r["threads"] == threads]

    summary = {"tol": TOL, "sizes": sizes, "threads": threads_list,
               "seeds": list(SEEDS)}
    for threads in threads_list:
        t = f"{threads} thread" + ("s" if threads > 1 else "")
        for n in sizes:
            for trained, domain in ((True, "trained box"), (False, "unseen obstacles")):
                default = _median(select("DCDM", n, trained, threads, "total_s"))
                if default is None:
                    continue
                for method in ANCHORS + tuple(DCDM_VARIANTS):
                    its = _median(select(method, n, trained, threads, "n_iter"))
                    if its is not None:
                        summary[f"{n}^3 {domain}: {method} iterations ({t})"] = its
                anchors = {m: _median(select(m, n, trained, threads, "total_s"))
                           for m in ANCHORS}
                anchors = {m: v for m, v in anchors.items() if v is not None}
                if "PyAMG SA-PCG" in anchors:
                    summary[f"{n}^3 {domain}: DCDM / PyAMG wall time, setup + solve "
                            f"({t})"] = report.ratio(default, anchors["PyAMG SA-PCG"])
                    solve = _median(select("DCDM", n, trained, threads, "solve_s"))
                    amg_solve = _median(select("PyAMG SA-PCG", n, trained, threads,
                                               "solve_s"))
                    summary[f"{n}^3 {domain}: DCDM / PyAMG wall time, solve alone "
                            f"({t})"] = report.ratio(solve, amg_solve)
                fastest = min(anchors, key=anchors.get)
                summary[f"{n}^3 {domain}: DCDM / fastest anchor wall time ({t})"] = (
                    report.ratio(default, anchors[fastest]))
                summary[f"{n}^3 {domain}: fastest anchor ({t})"] = fastest
                if not trained:
                    # The worst unseen shape, so a median cannot hide one.
                    per_shape = []
                    for obstacle, boundary in UNSEEN:
                        shape_rows = [r for r in rows if r["n"] == n
                                      and r["threads"] == threads
                                      and r["obstacle"] == obstacle
                                      and r["boundary"] == boundary]
                        mine = _median([r["total_s"] for r in shape_rows
                                        if r["method"] == "DCDM"])
                        best = min((_median([r["total_s"] for r in shape_rows
                                             if r["method"] == m]) or np.inf)
                                   for m in ANCHORS)
                        if mine is not None and np.isfinite(best):
                            per_shape.append(mine / best)
                    if per_shape:
                        summary[f"{n}^3 unseen obstacles: DCDM / fastest anchor, "
                                f"worst shape ({t})"] = float(max(per_shape))
                for variant in tuple(DCDM_VARIANTS)[1:]:
                    other = _median(select(variant, n, trained, threads, "total_s"))
                    if other is not None:
                        summary[f"{n}^3 {domain}: {variant} / DCDM wall time "
                                f"({t})"] = report.ratio(other, default)
        if len(sizes) >= 2:
            small, large = sizes[-2], sizes[-1]
            growth = report.ratio(
                _median(select("DCDM", large, True, threads, "n_iter")),
                _median(select("DCDM", small, True, threads, "n_iter")))
            summary[f"DCDM iteration growth {small}^3 -> {large}^3 ({t})"] = growth
    summary["all solves converged"] = all(r["converged"] for r in rows)
    if forward:
        summary.update({f"forward pass: {k}": v for k, v in forward.items()})
    report.summary = summary


def _figure(report, sizes):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    rows = [r for r in report.rows if "method" in r and r["obstacle"] == "none"]
    threads = min(r["threads"] for r in rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    methods = ANCHORS + ("DCDM", "DCDM, smoother at coarsest",
                         "multigrid to 4^3, no network")
    for colour, method in enumerate(methods):
        for axis, key in ((left, "n_iter"), (right, "total_s")):
            points = [(n, _median([r[key] for r in rows if r["method"] == method
                                   and r["n"] == n and r["threads"] == threads]))
                      for n in sizes]
            points = [(n, v) for n, v in points if v is not None]
            if points:
                axis.plot(*zip(*points, strict=True), "-o", color=f"C{colour}",
                          label=method)
    for axis in (left, right):
        axis.set(xscale="log", yscale="log", xlabel="n (grid n^3)")
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.xaxis.set_minor_formatter(NullFormatter())
    left.set(ylabel=f"iterations to {TOL:g}", title="Iterations (Dirichlet box)")
    left.legend(fontsize=7)
    right.set(ylabel="setup + solve [s]",
              title=f"Wall time, {threads} thread(s), same process")
    fig.tight_layout()
    report.save_figure(fig)


def _cupy_cg(A, b):
    """CuPy's own CG (cupyx.scipy.sparse.linalg.cg), the GPU anchor."""
    import cupyx.scipy.sparse.linalg as cuspla

    count = []
    # CuPy 14 renamed ``tol`` to ``rtol``, as SciPy did.
    name = "rtol" if "rtol" in inspect.signature(cuspla.cg).parameters else "tol"
    x, _ = cuspla.cg(A, b, maxiter=5000, callback=lambda xk: count.append(1),
                     **{name: TOL})
    return x, len(count)


def _add_gpu_row(report, case, A, b, method, n_iter, seconds, x, setup=0.0, **extra):
    x = to_numpy(x)
    report.add(**case, method=method, n_iter=int(n_iter), setup_s=setup,
               solve_s=seconds, total_s=setup + seconds,
               relative_residual=_relative_residual(A, b, x), **extra)


def _gpu_comparison(quick):
    """DCDM on CuPy against CuPy CG (and PyAMG on the CPU) at 64^3 and 128^3.

    Same problems (Dirichlet box, white and smooth right-hand sides), same
    stopping rule. The GPU methods take the best of two timed solves after a
    warm-up solve; PyAMG (CPU, every core) the best of two. 128^3 is twice
    the largest training grid in each direction: the iteration counts there
    also test growth with size on the GPU.
    """
    from sparsesolve._backend import require_cupy

    cupy = require_cupy()
    import cupyx.scipy.sparse as cusparse

    report = Report("poisson", quick, "gpu")
    sizes = [32] if quick else [64, 128]
    have_pyamg = True
    try:
        import pyamg  # noqa: F401
    except ImportError:
        have_pyamg = False
        report.notes.append("pyamg not installed: PyAMG rows skipped.")
    for n in sizes:
        for rhs in ("white", "smooth"):
            A, b, _ = make_poisson_problem((n, n, n), "none", rhs=rhs, random_state=0)
            A_gpu, b_gpu = cusparse.csr_matrix(A), cupy.asarray(b)
            case = dict(n=n, obstacle="none", rhs=rhs, unknowns=int(A.shape[0]))
            (x, n_iter), seconds = time_call(_cupy_cg, A_gpu, b_gpu, repeat=2,
                                             device="gpu")
            _add_gpu_row(report, case, A, b, "CuPy CG (GPU)", n_iter, seconds, x)
            result, seconds = time_call(cg, A_gpu, b_gpu, rtol=TOL, repeat=2,
                                        device="gpu")
            _add_gpu_row(report, case, A, b, "sparsesolve CG (GPU)", result.n_iter,
                         seconds, result.x)
            solver = DeepConjugateDirection(tol=TOL, max_iter=300)
            _, setup = time_call(solver.fit, A_gpu, repeat=1, device="gpu")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result, seconds = time_call(solver.solve, b_gpu, return_result=True,
                                            repeat=2, device="gpu")
            _add_gpu_row(report, case, A, b, "DCDM (GPU)", result.n_iter, seconds,
                         result.x, setup=setup, converged=result.converged)
            print(f"  poisson gpu {n}^3 {rhs}: " + ", ".join(
                f"{r['method']} {r['n_iter']} its {r['total_s']:.3f} s"
                for r in report.rows[-3:]), flush=True)
            if have_pyamg and n <= 64:
                runs = [_pyamg_sa_pcg(A, b) for _ in range(2)]
                x, n_iter, _, _ = runs[0]
                _add_gpu_row(report, case, A, b, "PyAMG SA-PCG (CPU)", n_iter,
                             min(r[3] for r in runs), x, setup=min(r[2] for r in runs))
    summary = {}
    for n in sizes:
        for rhs in ("white", "smooth"):
            rows = {r["method"]: r for r in report.rows
                    if r["n"] == n and r["rhs"] == rhs}
            key = f"{n}_{rhs}"
            dcdm, cupy_cg = rows["DCDM (GPU)"], rows["CuPy CG (GPU)"]
            summary[f"{key}_iterations"] = {m: r["n_iter"] for m, r in rows.items()}
            summary[f"{key}_dcdm_solve_speedup_vs_cupy_cg"] = report.ratio(
                cupy_cg["solve_s"], dcdm["solve_s"])
            if "PyAMG SA-PCG (CPU)" in rows:
                summary[f"{key}_dcdm_gpu_speedup_vs_pyamg_cpu_total"] = report.ratio(
                    rows["PyAMG SA-PCG (CPU)"]["total_s"], dcdm["total_s"])
    report.summary = summary
    report.notes.append(
        "Dirichlet box, seed 0, ||b - A x|| <= 1e-6 ||b|| for every method; "
        "solve_s excludes DCDM's fit (weights to the device) and PyAMG's setup, "
        "total_s includes them.")
    report.write()
    return report


def run(quick=False, device="cpu"):
    """Run the benchmark and write ``results/poisson.json`` and ``.png``.

    ``device="gpu"`` runs only :func:`_gpu_comparison` and writes
    ``results/poisson_gpu.json``.
    """
    if device == "gpu":
        return _gpu_comparison(quick)
    report = Report("poisson", quick, device)
    have_pyamg = True
    try:
        import pyamg  # noqa: F401
    except ImportError:
        have_pyamg = False
        report.notes.append("pyamg not installed: PyAMG SA-PCG rows skipped "
                            "(pip install sparsesolve[bench]).")
    if quick:
        sizes, threads_list, repeat = [16, 32], [1], 1
        cases = [dict(n=n, obstacle="none", boundary="dirichlet", rhs="white",
                      seed=3) for n in sizes]
        cases.append(dict(n=32, obstacle="torus", boundary="dirichlet", rhs="white",
                          seed=3))
    else:
        sizes, threads_list = [32, 64, 128], [1, 2]
        cases = [dict(n=n, obstacle="none", boundary="dirichlet", rhs=rhs, seed=seed)
                 for n in (32, 64) for rhs in RHS_KINDS for seed in SEEDS]
        cases += [dict(n=n, obstacle=obstacle, boundary=boundary, rhs="divergence",
                       seed=SEEDS[0]) for n in (32, 64)
                  for obstacle, boundary in UNSEEN]
        # 128^3: about a minute per right-hand side for all methods at one
        # thread, so one seed per kind, timed once after the warm-up.
        cases += [dict(n=128, obstacle="none", boundary="dirichlet", rhs=rhs,
                       seed=SEEDS[0]) for rhs in RHS_KINDS]
    for case in cases:
        repeat = 1 if quick or case["n"] >= 128 else 3
        methods = _methods(case["n"], have_pyamg)
        for threads in threads_list:
            _run_case(report, case, methods, threads, repeat)
            done = report.rows[-len(methods):]
            print(f"  poisson {case['n']}^3 {case['obstacle']}/{case['boundary']} "
                  f"{case['rhs']} seed {case['seed']}, {threads} thread(s): "
                  + ", ".join(f"{r['method']} {r['n_iter']} its {r['total_s']:.3f} s"
                              for r in done), flush=True)
    forward = _forward_pass(report, quick)
    report.notes.append(
        "Shipped model: trained on one 16^3 Dirichlet box, then fine-tuned on "
        "one 32^3 Dirichlet box (scripts/train_poisson_model.py); the default "
        "solver runs it on the coarsest grid of the multilevel cycle (16^3 for "
        "64^3 and 128^3 grids). Wall times: median of 3 runs after a warm-up "
        "(1 run at 128^3), numba and BLAS threads both set to the 'threads' "
        "column. OPENBLAS_CORETYPE as set on the machine (see machine.blas).")
    _summarise(report, sizes, threads_list, forward)
    _figure(report, sizes)
    report.write()
    return report


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
