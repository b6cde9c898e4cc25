"""Deep conjugate directions vs CG, IC(0)-PCG and PyAMG SA-PCG on 3D Poisson.

Cases: cubes of 16^3, 32^3 (and 64^3 in the full run) with no obstacle (the
domain class the shipped model was trained on: a Dirichlet box), a sphere and
random obstacles (never seen in training), white, smooth and divergence
right-hand sides (``make_poisson_problem``).
Every method stops at the same rule, ``||b - A x|| <= 1e-6 ||b||``.
Iterations are exact; times are wall seconds on a shared machine (ratios
only). DCDM is deterministic and slow on a CPU, so it is timed once; the
anchors take the best of three runs.
"""

from __future__ import annotations

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
# The spec's three right-hand sides: white noise, low-pass noise and the
# divergence of a random smooth velocity (a pressure projection's).
RHS_KINDS = ("white", "smooth", "divergence")


def _pyamg_sa_pcg(A, b):
    """PyAMG smoothed aggregation as a CG preconditioner (fluid cells only)."""
    import pyamg
    import scipy.sparse.linalg as spla

    # AMG smoothers divide by the diagonal: drop the empty (solid) rows.
    fluid = A.getnnz(axis=1) > 0
    A_fluid = A[fluid][:, fluid].tocsr()
    start = time.perf_counter()
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


def _relative_residual(A, b, x):
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def _run_case(report, n, obstacle, rhs, seed, solvers):
    A, b, _ = make_poisson_problem((n, n, n), obstacle, rhs=rhs, random_state=seed)
    case = dict(n=n, obstacle=obstacle, rhs=rhs, unknowns=int(A.shape[0]),
                trained_domain=obstacle == "none")

    def add(method, n_iter, setup, solve, x, **extra):
        report.add(**case, method=method, n_iter=int(n_iter), setup_s=setup,
                   solve_s=solve, total_s=setup + solve,
                   us_per_unknown=1e6 * (setup + solve) / A.shape[0],
                   relative_residual=_relative_residual(A, b, x), **extra)

    result, seconds = time_call(cg, A, b, tol=TOL, repeat=3)
    add("CG", result.n_iter, 0.0, seconds, result.x)
    factor, setup = time_call(IncompleteCholesky, A, repeat=3)
    result, seconds = time_call(ic0_pcg, A, b, tol=TOL, preconditioner=factor,
                                repeat=3)
    add("IC(0)-PCG", result.n_iter, setup, seconds, result.x)
    if "pyamg" in solvers:
        runs = [_pyamg_sa_pcg(A, b) for _ in range(3)]
        x, n_iter, _, _ = runs[0]
        add("PyAMG SA-PCG", n_iter, min(r[2] for r in runs),
            min(r[3] for r in runs), x)
    # "DCDM": the paper's method, one network call per iteration
    # (n_levels=1). "DCDM 2 levels": one more call on the residual averaged
    # over 2x2x2 blocks (an eighth of the cost); what the default
    # n_levels="auto" picks on every grid here (16^3 and up).
    for method, n_levels in (("DCDM", 1), ("DCDM 2 levels", 2)):
        start = time.perf_counter()
        solver = DeepConjugateDirection(tol=TOL, max_iter=300, n_levels=n_levels)
        solver.fit(A, grid_shape=(n,) * 3)
        setup = time.perf_counter() - start
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            x = solver.solve(b)
            seconds = time.perf_counter() - start
        add(method, solver.n_iter_, setup, seconds, x,
            converged=not any("did not reach" in str(w.message) for w in caught),
            fallbacks=solver.n_fallbacks_)


def _network_cost(report, sizes):
    """Seconds of one network call against one sparse matrix-vector product."""
    from sparsesolve.poisson import DirectionNetwork, poisson_matrix
    from sparsesolve.poisson._network import default_model_path

    network = DirectionNetwork.load(default_model_path())
    for n in sizes:
        A = poisson_matrix((n, n, n))
        r = np.random.default_rng(0).standard_normal((n, n, n)).astype(np.float32)
        _, network_s = time_call(network, r, repeat=1 if n >= 64 else 3)
        _, spmv_s = time_call(A.dot, r.ravel().astype(np.float64), repeat=5)
        report.add(n=n, method="cost", network_s=network_s, spmv_s=spmv_s,
                   network_over_spmv=network_s / spmv_s)


def _median(values):
    return float(np.median(values)) if values else None


def _summarise(report, sizes):
    rows = [r for r in report.rows if r.get("method") not in (None, "cost")]

    def iters(method, n, trained):
        return [r["n_iter"] for r in rows if r["method"] == method and r["n"] == n
                and r["trained_domain"] == trained]

    def times(method, n):
        return [r["total_s"] for r in rows if r["method"] == method and r["n"] == n]

    summary = {"tol": TOL, "sizes": sizes}
    for n in sizes:
        for method in ("DCDM", "DCDM 2 levels", "CG", "IC(0)-PCG", "PyAMG SA-PCG"):
            summary[f"{method} iterations {n}^3 trained domain (median)"] = _median(
                iters(method, n, True))
            summary[f"{method} iterations {n}^3 unseen obstacles (median)"] = _median(
                iters(method, n, False))
        cg_t = _median(iters("CG", n, True))
        for dcdm in ("DCDM", "DCDM 2 levels"):
            dcdm_t = _median(iters(dcdm, n, True))
            summary[f"{dcdm}/CG iterations {n}^3 trained domain"] = report.ratio(
                dcdm_t, cg_t)
            summary[f"{dcdm}/CG iterations {n}^3 unseen obstacles"] = report.ratio(
                _median(iters(dcdm, n, False)), _median(iters("CG", n, False)))
            summary[f"{dcdm}/IC(0) iterations {n}^3 trained domain"] = report.ratio(
                dcdm_t, _median(iters("IC(0)-PCG", n, True)))
            key = f"{dcdm}/PyAMG wall time {n}^3 (setup+solve, median)"
            summary[key] = report.ratio(_median(times(dcdm, n)),
                                        _median(times("PyAMG SA-PCG", n)))
    if len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        for method in ("DCDM", "DCDM 2 levels", "CG"):
            key = f"{method} iteration growth {small}^3 -> {large}^3"
            summary[key] = report.ratio(_median(iters(method, large, True)),
                                        _median(iters(method, small, True)))
            # The same growth per kind of right-hand side, so that a pooled
            # median cannot hide a kind that grows faster.
            for rhs in RHS_KINDS:
                per_kind = [[r["n_iter"] for r in rows if r["method"] == method
                             and r["n"] == n and r["trained_domain"]
                             and r["rhs"] == rhs] for n in (small, large)]
                if all(per_kind):
                    summary[f"{key}, {rhs} right-hand sides"] = report.ratio(
                        _median(per_kind[1]), _median(per_kind[0]))
    summary["all DCDM solves converged"] = all(
        r.get("converged", True) for r in rows if r["method"].startswith("DCDM"))
    report.summary = summary


def _figure(report, sizes):
    import matplotlib.pyplot as plt

    rows = [r for r in report.rows if r.get("method") not in (None, "cost")]
    from matplotlib.ticker import NullFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    methods = (("CG", "o"), ("IC(0)-PCG", "s"), ("PyAMG SA-PCG", "^"),
               ("DCDM", "D"), ("DCDM 2 levels", "v"))
    for colour, (method, marker) in enumerate(methods):
        for trained, style in ((True, "-"), (False, "--")):
            selected = [r for r in rows if r["method"] == method
                        and r["trained_domain"] == trained]
            for axis, key in ((left, "n_iter"), (right, "total_s")):
                points = [(n, _median([r[key] for r in selected if r["n"] == n]))
                          for n in sizes]
                points = [(n, v) for n, v in points if v is not None]
                if points:
                    label = f"{method} ({'box' if trained else 'obstacles'})"
                    axis.plot(*zip(*points, strict=True), style, marker=marker,
                              color=f"C{colour}", label=label)
    for axis in (left, right):
        axis.set(xscale="log", yscale="log", xlabel="n (grid n^3)")
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.xaxis.set_minor_formatter(NullFormatter())
    left.set(ylabel=f"iterations to {TOL:g}", title="Iterations")
    left.legend(fontsize=7)
    right.set(ylabel="setup + solve [s]", title="Wall time (shared 2-core CPU)")
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
            result, seconds = time_call(cg, A_gpu, b_gpu, tol=TOL, repeat=2,
                                        device="gpu")
            _add_gpu_row(report, case, A, b, "sparsesolve CG (GPU)", result.n_iter,
                         seconds, result.x)
            solver = DeepConjugateDirection(tol=TOL, max_iter=300)
            _, setup = time_call(solver.fit, A_gpu, grid_shape=(n,) * 3, repeat=1,
                                 device="gpu")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                x, seconds = time_call(solver.solve, b_gpu, repeat=2, device="gpu")
            _add_gpu_row(report, case, A, b, "DCDM (GPU)", solver.n_iter_, seconds, x,
                         setup=setup, converged=not any(
                             "did not reach" in str(w.message) for w in caught))
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
    solvers = set()
    try:
        import pyamg  # noqa: F401

        solvers.add("pyamg")
    except ImportError:
        report.notes.append("pyamg not installed: PyAMG SA-PCG rows skipped "
                            "(pip install sparsesolve[bench]).")
    if quick:
        sizes = [16]
        cases = [(16, "none", "white", 0), (16, "sphere", "white", 0)]
    else:
        sizes = [16, 32, 64]
        # Spec section 5: three seeds per case, medians reported. Seeds 1 and
        # 2 chose the shipped checkpoint (scripts/train_poisson_model.py), so
        # they stay out of the benchmark; 0, 3 and 4 were never used to
        # train or select anything.
        seeds = (0, 3, 4)
        cases = [(16, obstacle, rhs, seed) for obstacle in ("none", "sphere", "random")
                 for rhs in RHS_KINDS for seed in seeds]
        cases += [(32, obstacle, "white", seed)
                  for obstacle in ("sphere", "random") for seed in seeds]
        cases += [(32, "none", rhs, seed) for rhs in RHS_KINDS for seed in seeds]
        # DCDM costs seconds per network call at 64^3 on a 2-core CPU (a
        # minute or more per solve): the trained domain class only, with the
        # same right-hand-side kinds as at 32^3 so that the 32^3 -> 64^3
        # growth compares like with like.
        cases += [(64, "none", rhs, seed) for rhs in RHS_KINDS for seed in seeds]
    for n, obstacle, rhs, seed in cases:
        _run_case(report, n, obstacle, rhs, seed, solvers)
        print(f"  poisson {n}^3 {obstacle} {rhs} seed {seed}: " + ", ".join(
            f"{r['method']} {r['n_iter']}" for r in report.rows[-5:]), flush=True)
    _network_cost(report, sizes)
    report.notes.append(
        "Shipped model: trained on one 16^3 Dirichlet box, then fine-tuned on "
        "one 32^3 Dirichlet box (scripts/train_poisson_model.py); 'unseen "
        "obstacles' = sphere and random obstacles, never in training. Times are "
        "wall seconds on a 2-core machine shared with other jobs: use ratios.")
    _summarise(report, sizes)
    _figure(report, sizes)
    report.write()
    return report


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
