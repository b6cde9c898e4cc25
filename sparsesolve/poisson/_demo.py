"""Demo row: a 16^3 pressure solve around a sphere, DCDM vs PyAMG SA-PCG."""

from __future__ import annotations

import numpy as np

from .._backend import to_device, to_numpy
from .._demo import DemoRow, compare


def demo(device="cpu"):
    """Solve a 16^3 Poisson system with a solid sphere (never seen in training).

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where DeepConjugateDirection runs (the anchor runs on the CPU).

    Returns
    -------
    DemoRow
        Iterations to a relative residual of 1e-6 for both solvers.
    """
    from ..datasets import make_poisson_problem
    from . import DeepConjugateDirection

    shape = (16, 16, 16)
    A, b, _ = make_poisson_problem(shape, "sphere", random_state=0)
    A_run, b_run = A, b
    if device == "gpu":
        A_run, b_run = to_device(A, "gpu"), to_device(b, "gpu")

    def solve():
        solver = DeepConjugateDirection(tol=1e-6, grid_shape=shape).fit(A_run)
        return solver.solve(b_run, return_result=True)

    try:
        import pyamg
        import scipy.sparse.linalg as spla
    except ImportError:
        anchor = None
    else:
        fluid = np.diff(A.indptr) > 0
        A_fluid = A[fluid][:, fluid].tocsr()

        def anchor():
            iterations = []
            hierarchy = pyamg.smoothed_aggregation_solver(A_fluid)
            spla.cg(A_fluid, b[fluid], rtol=1e-6, atol=0.0,
                    M=hierarchy.aspreconditioner(),
                    callback=lambda xk: iterations.append(1))
            return len(iterations)

    outcome, ours, n_anchor, theirs = compare(solve, anchor)
    residual = np.linalg.norm(b - A @ to_numpy(outcome.x)) / np.linalg.norm(b)
    result = f"DCDM {outcome.n_iter} its, rel. residual {residual:.1e}"
    if anchor is None:
        return DemoRow.from_timings(
            "Poisson 16^3 + sphere", result, "PyAMG SA-PCG: not installed", ours,
            skipped="PyAMG is not installed; get it with `pip install pyamg` (or "
                    "`pip install \"sparsesolve[bench]\"`)")
    return DemoRow.from_timings("Poisson 16^3 + sphere", result,
                                f"PyAMG SA-PCG {n_anchor} its", ours, theirs)
