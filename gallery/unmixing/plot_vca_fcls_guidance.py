"""
Endmembers by VCA, abundances by FCLS, and the guidance map
===========================================================

:func:`~sparsesolve.unmixing.vca` picks the purest pixels as endmembers and
:func:`~sparsesolve.unmixing.fcls` computes the exact abundances
(nonnegative, summing to one) of every pixel for given endmembers; both run
on their own. :class:`~sparsesolve.unmixing.RobustUnmixing` starts from them
and learns a per-pixel guidance map: high where a pixel is nearly pure,
zero where it is strongly mixed.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from sparsesolve.datasets import make_hyperspectral
from sparsesolve.unmixing import (
    RobustUnmixing,
    cube_to_pixels,
    fcls,
    match_endmembers,
    vca,
)

cube, endmembers, abundances, _ = make_hyperspectral(
    50, 50, n_endmembers=3, n_bands=120, snr_db=30, random_state=3)
X = cube_to_pixels(cube)
truth = abundances.reshape(-1, 3)

# %%
# VCA + FCLS.
found, indices = vca(X, 3, random_state=0)
estimated = fcls(X, found)
order, angles = match_endmembers(endmembers, found)
print("VCA angles to the true endmembers (deg):", angles.round(2))
print("largest |sum - 1| of the FCLS abundances:",
      float(np.abs(estimated.sum(axis=1) - 1).max()))

# %%
# The learned guidance map against the true purity of each pixel.
model = RobustUnmixing(3, guidance="learned", random_state=0).fit(X)
print(f"converged in {model.n_iter_} iterations")
purity = truth.max(axis=1)
print("correlation(guidance, purity):",
      round(float(np.corrcoef(model.guidance_map_, purity)[0, 1]), 3))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
axes[0].imshow(purity.reshape(50, 50), cmap="magma")
axes[0].set_title("true purity max_k A_k")
axes[1].imshow(model.guidance_map_.reshape(50, 50), cmap="magma")
axes[1].set_title("learned guidance map")
rows, cols = np.unravel_index(indices, (50, 50))
axes[2].imshow(estimated[:, order].reshape(50, 50, 3))
axes[2].plot(cols, rows, "w+", ms=12)
axes[2].set_title("FCLS abundances (RGB), + VCA pixels")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
