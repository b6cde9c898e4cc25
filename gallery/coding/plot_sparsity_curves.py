"""
Reconstruction error against sparsity
=====================================

On one fixed dictionary we code test patches (from ``flower.jpg``) with
each penalty of :class:`~sparsesolve.coding.LqSparseCoder` over a range of
``alpha`` and plot the error against the mean number of active atoms, next
to scikit-learn's orthogonal matching pursuit with a fixed number of atoms.
At the same mean sparsity, CEL0 and l1/2 reconstruct far better than the
lasso (l1), whose shrinkage biases every kept coefficient towards zero.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_images
from sklearn.decomposition import SparseCoder

from sparsesolve.coding import LqDictionaryLearning, LqSparseCoder
from sparsesolve.datasets import make_image_patches

china, flower = load_sample_images().images
train = make_image_patches([china], patch_size=(8, 8), n_patches=2000,
                           random_state=0)
test = make_image_patches([flower], patch_size=(8, 8), n_patches=300,
                          random_state=1)

# %%
# A 2x overcomplete dictionary learned with the lasso penalty, shared by
# every coder below.
dictionary = LqDictionaryLearning(
    128, penalty="l1", alpha=0.2, max_iter=1, transform_max_iter=50, transform_tol=1e-2,
    random_state=0,
).fit(train).components_


def nmse(codes):
    return np.sum((test - codes @ dictionary) ** 2) / np.sum(test**2)


# %%
# Sweep ``alpha`` for each penalty.
grids = {
    "l1": np.geomspace(0.05, 1.0, 6),
    "l0": np.geomspace(0.005, 0.3, 6),
    "l1/2": np.geomspace(0.01, 0.5, 6),
    "cel0": np.geomspace(0.005, 0.3, 6),
}
fig, ax = plt.subplots(figsize=(6, 4.5))
for penalty, alphas in grids.items():
    points = []
    for alpha in alphas:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes = LqSparseCoder(dictionary, penalty=penalty,
                                  alpha=alpha).transform(test)
        points.append((np.mean(np.count_nonzero(codes, axis=1)), nmse(codes)))
    points.sort()
    ax.loglog(*zip(*points, strict=False), "o-", label=f"sparsesolve {penalty}")

omp = []
for k in (2, 4, 8, 16, 24):
    codes = SparseCoder(dictionary, transform_algorithm="omp",
                        transform_n_nonzero_coefs=k).transform(test)
    omp.append((k, nmse(codes)))
ax.loglog(*zip(*omp, strict=False), "ks--", label="sklearn OMP (fixed k)")
ax.set_xlabel("mean active atoms per patch")
ax.set_ylabel("NMSE")
ax.set_title("Same dictionary, 128 atoms of 8x8")
ax.legend()
plt.show()
