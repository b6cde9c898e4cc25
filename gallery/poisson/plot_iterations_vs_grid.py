"""
Iterations and wall time against grid size
==========================================

Conjugate gradients need more iterations as the grid is refined (about
``3 n`` for an ``n^3`` box). The default ``DeepConjugateDirection`` uses the
shipped network as the coarse-grid solver of a multigrid V-cycle (Chebyshev
smoothing on the finer grids), so its iteration count stays nearly flat; the
paper's method (``method="dcdm"``) runs the network on the full grid at every
iteration. The ablation row puts a Chebyshev sweep where the network was:
what is left is the network's contribution. Wall time here includes the
solver's set-up (``fit``), as a user would time it; the benchmark
(``python benchmarks/run.py poisson``) extends this to 128^3 with PyAMG.
"""

# %%
import time

import matplotlib.pyplot as plt

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import DeepConjugateDirection, cg, ic0_pcg

sizes = [8, 16, 24, 32]
variants = {
    "DCDM, multilevel (default)": {},
    "same cycle, smoother instead of network": {"coarse_solver": "smoother"},
    "DCDM, network on the full grid (paper)": {"method": "dcdm", "n_levels": 1},
}
iterations = {name: [] for name in ("CG", "IC(0)-PCG", *variants)}
seconds = {name: [] for name in iterations}


def solve(name, A, b):
    """Set up and solve with one method; return its iteration count."""
    if name == "CG":
        return cg(A, b, rtol=1e-6).n_iter
    if name == "IC(0)-PCG":
        return ic0_pcg(A, b, rtol=1e-6).n_iter
    solver = DeepConjugateDirection(tol=1e-6, **variants[name]).fit(A)
    return solver.solve(b, return_result=True).n_iter


for n in sizes:
    A, b, _ = make_poisson_problem((n, n, n), random_state=0)
    for name in iterations:
        solve(name, A, b)  # warm-up: the first call compiles the numba kernels
        start = time.perf_counter()
        iterations[name].append(solve(name, A, b))
        seconds[name].append(time.perf_counter() - start)
    print(n, {name: values[-1] for name, values in iterations.items()})

# %%
# Left: iterations to a relative residual of 1e-6. Right: wall time of set-up
# plus solve on this machine. The paper's method needs as few iterations as
# the default, but each costs a full-grid network pass; the multilevel cycle
# keeps the count and pays for the network only on a 16^3 grid.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
for name in iterations:
    left.plot(sizes, iterations[name], marker="o", label=name)
    right.plot(sizes, seconds[name], marker="o", label=name)
left.set(xlabel="n (grid n^3)", ylabel="iterations to 1e-6", xticks=sizes,
         title="Iterations, empty box with Dirichlet walls")
right.set(xlabel="n (grid n^3)", ylabel="fit + solve [s]", yscale="log",
          xticks=sizes, title="Wall time, set-up included")
left.legend(fontsize=8)
fig.tight_layout()
plt.show()
