"""
Energy curves of the bound optimizer
====================================

Each bound sweep replaces every assignment by
``softmax(-a_p + lambda ((W + delta I) Y)_p)``, the exact minimiser of a
bound on the relaxed energy. With the energy scaled as the update implies
(``lambda / 2`` on the graph term) and the graph shifted to be positive
semi-definite (``delta = -lambda_min(W)``), the energy goes down at every
sweep. Without the shift, a large ``lambda`` can make the parallel (Jacobi)
sweep oscillate and the energy rise.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.clustering import LaplacianKMeans

X, y = load_digits(return_X_y=True)
X = X - X.mean(axis=0)
X /= np.linalg.norm(X, axis=1, keepdims=True)
# Semi-supervised: three labelled images per digit, the rest unlabelled.
rng = np.random.default_rng(0)
labels = np.full(y.shape, -1)
for digit in range(10):
    chosen = rng.choice(np.flatnonzero(y == digit), 3, replace=False)
    labels[chosen] = digit

# One outer iteration (prototypes fixed) shows the inner bound loop alone;
# stopping after it is intended, so its ConvergenceWarning is silenced.
warnings.simplefilter("ignore", ConvergenceWarning)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=False)
for ax, shift in zip(axes, (True, False), strict=False):
    for lam in (1.0, 4.0, 16.0):
        model = LaplacianKMeans(
            10,
            laplacian_weight=lam,
            n_neighbors=5,
            psd_shift=shift,
            max_iter=1,
            max_inner_iter=40,
        ).fit(X, known_labels=labels)
        energy = model.energy_[: model.n_sweeps_[0]]
        rises = int(np.sum(np.diff(energy) > 1e-9 * np.abs(energy[:-1])))
        print(f"shift={shift!s:5} lambda={lam}: {rises} rises in {energy.size} sweeps")
        ax.plot(energy - energy.min() + 1e-3, label=f"lambda={lam} ({rises} rises)")
    ax.set_yscale("log")
    ax.set_xlabel("bound sweep")
    ax.set_title("W + delta I (PSD)" if shift else "W, no shift")
    ax.legend(fontsize=8)
axes[0].set_ylabel("energy - final energy")
fig.tight_layout()
plt.show()

# %%
# The whole fit alternates prototype updates with such inner loops; the
# energy is recorded for every sweep in ``energy_`` and ``n_sweeps_`` says
# where each outer iteration starts.
model = LaplacianKMeans(10, laplacian_weight=1.0).fit(X, known_labels=labels)
print("outer iterations:", model.n_iter_, "sweeps each:", model.n_sweeps_)
print(
    "accuracy on unlabelled digits:",
    np.mean(model.transduction_[labels < 0] == y[labels < 0]).round(3),
)
