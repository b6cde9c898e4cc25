"""
Residual histories: CG, IC(0)-PCG and learned directions
========================================================

A 16^3 pressure system around a solid sphere (an obstacle the shipped network
never saw in training) is solved to a relative residual of 1e-6 by conjugate
gradients, by CG preconditioned with incomplete Cholesky, and by the deep
conjugate-direction method (DCDM), whose search direction at each step is the
output of a convolutional network applied to the current residual.
"""

# %%
# The problem: a cell grid, the sphere's cells are solid (Neumann faces),
# Dirichlet walls, a white-noise right-hand side.
import matplotlib.pyplot as plt
import numpy as np

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import DeepConjugateDirection, cg, ic0_pcg

shape = (16, 16, 16)
A, b, solid = make_poisson_problem(shape, "sphere", random_state=0)
print(f"{A.shape[0]} cells, {int(solid.sum())} solid")

# %%
# Solve with the three methods; each keeps its history of relative residuals.
cg_result = cg(A, b, tol=1e-6)
ic0_result = ic0_pcg(A, b, tol=1e-6)
dcdm = DeepConjugateDirection(tol=1e-6).fit(A, grid_shape=shape)
x = dcdm.solve(b)
print(f"CG {cg_result.n_iter}, IC(0)-PCG {ic0_result.n_iter}, DCDM {dcdm.n_iter_} "
      "iterations")
print("DCDM true relative residual:", np.linalg.norm(b - A @ x) / np.linalg.norm(b))

# %%
# One DCDM iteration costs one network call, far more than one sparse
# matrix-vector product: the iteration count is the point of the method, the
# CPU wall time is not (see the benchmark).
fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(cg_result.residuals, label="CG")
ax.semilogy(ic0_result.residuals, label="IC(0)-PCG")
ax.semilogy(dcdm.residuals_, label="DCDM (learned directions)")
ax.axhline(1e-6, color="gray", linestyle=":")
ax.set(xlabel="iteration", ylabel="||b - Ax|| / ||b||",
       title="16^3 grid with a solid sphere")
ax.legend()
plt.show()
