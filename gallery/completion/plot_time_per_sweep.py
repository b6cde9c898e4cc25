"""
Time per sweep against the number of observations
=================================================

One sweep of alternating minimisation solves one small least-squares
problem per row and per column. With exact (Cholesky) solves a sweep costs
``O(|Omega| k^2)``; with warm-started conjugate gradients or sketch
preconditioning it costs ``O(|Omega| k)`` per step. Here we time single sweeps
of :class:`~sparsesolve.completion.AltMinCompletion` on synthetic problems
from :func:`~sparsesolve.datasets.make_completion_problem` while the number
of observed entries grows: the log-log slope is about 1 for every solver.
See ``benchmarks/bench_completion.py`` for the full-size study (and the
dependence on k).
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

from sparsesolve.completion import AltMinCompletion
from sparsesolve.datasets import make_completion_problem


def seconds_per_sweep(X, solver, rank):
    """Difference of a 4-sweep fit and a 1-sweep fit, per sweep."""
    timings = {}
    for n_sweeps in (1, 4):
        best = np.inf
        for _ in range(1):
            # A fixed alpha: "auto" would add its regularisation path to
            # every fit (it cancels in the difference, but costs time).
            model = AltMinCompletion(rank=rank, solver=solver, alpha=1e-3,
                                     max_iter=n_sweeps, tol=0, init="random",
                                     random_state=0)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X)
            best = min(best, time.perf_counter() - start)
        timings[n_sweeps] = best
    return max(timings[4] - timings[1], 1e-6) / 3


rank = 16
sizes = [20_000, 40_000, 80_000]
problems = [make_completion_problem(1200, 1200, rank, n / 1200**2, n_test=10,
                                    random_state=0).X_train for n in sizes]
# Compile the kernels before timing anything.
for solver in ["exact", "cg", "sketch"]:
    AltMinCompletion(rank=rank, solver=solver, alpha=1e-3, max_iter=1,
                     tol=0).fit(problems[0])

fig, ax = plt.subplots(figsize=(5, 3.5))
for solver in ["exact", "cg", "sketch"]:
    seconds = [seconds_per_sweep(X, solver, rank) for X in problems]
    slope = np.polyfit(np.log(sizes), np.log(seconds), 1)[0]
    ax.loglog(sizes, seconds, marker="o", label=f"{solver} (slope {slope:.2f})")
ax.set(xlabel="observed entries |Omega|", ylabel="seconds per sweep",
       title=f"Time per sweep, 1200 x 1200, rank {rank}")
ax.legend()
fig.tight_layout()  # keeps the log-scale tick labels inside the figure
plt.show()
