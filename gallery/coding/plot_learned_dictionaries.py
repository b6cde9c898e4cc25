"""
Dictionaries learned with four sparsity penalties
=================================================

We learn 64 atoms of 8x8 pixels from whitened patches of ``china.jpg`` (an
image that ships with scikit-learn) with
:class:`~sparsesolve.coding.LqDictionaryLearning`, once per penalty, and
show them as mosaics. With every penalty many atoms become oriented edge
and grating detectors, the first step towards the localised Gabor-like
receptive fields of the primary visual cortex (two short epochs keep this
example fast; longer training sharpens and localises them). The penalties
differ most in how many atoms each patch needs for a given error.
"""

# %%
# Whitened patches
# ----------------
# :func:`~sparsesolve.datasets.make_image_patches` turns the image grey,
# flattens its spectrum (whitening), removes each patch's mean and keeps the
# patches with more contrast than the median one.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_images

from sparsesolve.coding import LqDictionaryLearning
from sparsesolve.datasets import make_image_patches

china = load_sample_images().images[0]
X = make_image_patches([china], patch_size=(8, 8), n_patches=2000, random_state=0)
print(X.shape)

# %%
# One dictionary per penalty
# --------------------------
# ``alpha`` is chosen per penalty so that each code uses about ten atoms
# per patch; the learning rate is the automatic ``1 / ||C||^2`` step. Two
# epochs keep this example fast; more epochs sharpen the atoms.
alphas = {"l1": 0.4, "l0": 0.07, "l1/2": 0.15, "cel0": 0.1}
learned = {}
for penalty, alpha in alphas.items():
    learner = LqDictionaryLearning(
        64, penalty=penalty, alpha=alpha, batch_size=250, max_iter=2,
        transform_max_iter=50, transform_tol=1e-2, random_state=0,
    ).fit(X)
    codes = learner.transform(X[:500])
    nnz = np.mean(np.count_nonzero(codes, axis=1))
    residual = X[:500] - codes @ learner.components_
    nmse = np.sum(residual**2) / np.sum(X[:500] ** 2)
    learned[penalty] = (learner.components_, nnz, nmse)
    print(f"{penalty:5s} alpha={alpha:<5} atoms/patch {nnz:5.1f}  NMSE {nmse:.3f}")

# %%
# Atom mosaics
# ------------
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
for ax, (penalty, (atoms, nnz, nmse)) in zip(axes, learned.items(), strict=False):
    mosaic = np.ones((8 * 9 + 1, 8 * 9 + 1)) * np.nan
    for index, atom in enumerate(atoms):
        row, col = divmod(index, 8)
        scale = np.abs(atom).max()
        mosaic[1 + row * 9:row * 9 + 9, 1 + col * 9:col * 9 + 9] = (
            atom.reshape(8, 8) / scale)
    ax.imshow(mosaic, cmap="gray", vmin=-1, vmax=1)
    ax.set_title(f"{penalty}: {nnz:.1f} atoms/patch, NMSE {nmse:.2f}", fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()
