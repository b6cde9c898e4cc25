"""
Iterations against grid size
============================

Conjugate gradients need more iterations as the grid is refined (about
``6 n`` for an ``n^3`` cube). The deep conjugate-direction method with the
shipped network (trained on a 16^3 box, then a 32^3 box) needs far fewer;
this example measures how the counts grow from 8^3 to 24^3 on the empty box
with Dirichlet walls, the domain class it was trained on, for the paper's
method and for ``n_levels=2`` (one more network call per iteration on the
residual averaged over 2x2x2 blocks). The benchmark
(``python benchmarks/run.py poisson``) extends this to 32^3 and 64^3, where
the second level matters most.
"""

# %%
import matplotlib.pyplot as plt

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import DeepConjugateDirection, cg, ic0_pcg

sizes = [8, 12, 16, 24]
counts = {"CG": [], "IC(0)-PCG": [], "DCDM, 1 level (paper)": [],
          "DCDM, 2 levels (default)": []}
for n in sizes:
    A, b, _ = make_poisson_problem((n, n, n), random_state=0)
    counts["CG"].append(cg(A, b, tol=1e-6).n_iter)
    counts["IC(0)-PCG"].append(ic0_pcg(A, b, tol=1e-6).n_iter)
    for name, n_levels in (("DCDM, 1 level (paper)", 1),
                           ("DCDM, 2 levels (default)", 2)):
        solver = DeepConjugateDirection(tol=1e-6, n_levels=n_levels)
        solver.fit(A, grid_shape=(n, n, n))
        solver.solve(b)
        counts[name].append(solver.n_iter_)
    print(n, {k: v[-1] for k, v in counts.items()})

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for method, values in counts.items():
    ax.plot(sizes, values, marker="o", label=method)
ax.set(xlabel="n (grid n^3)", ylabel="iterations to 1e-6", xticks=sizes,
       title="Empty box, Dirichlet walls")
ax.legend()
plt.show()
