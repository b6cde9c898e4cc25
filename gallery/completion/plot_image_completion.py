"""
Completing an image from 30% of its pixels
==========================================

A photograph is close to a low-rank matrix: its rows are highly correlated.
We hide 70% of the pixels of a grey-scale image, fit
:class:`~sparsesolve.completion.AltMinCompletion` of rank 20 to the rest, and
look at the completed image and at the held-out error after each sweep for
the three row solvers. The exact and conjugate-gradient solvers follow the
same curve: three warm-started CG steps per row and sweep are enough.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.completion import AltMinCompletion

image = load_sample_image("china.jpg").mean(axis=2)[::2, ::2] / 255.0
rng = np.random.default_rng(0)
observed = rng.random(image.shape) < 0.3
X = np.where(observed, image, np.nan)
print(f"image {image.shape}, {observed.mean():.0%} of the pixels observed")

# %%
# Fit and complete. ``transform`` keeps the observed pixels and predicts the
# others; ``alpha`` is a small ridge relative to the pixel scale.
model = AltMinCompletion(rank=20, solver="cg", alpha=0.05, max_iter=15,
                         random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    completed = model.fit_transform(X)
error = np.linalg.norm((completed - image)[~observed]) / np.linalg.norm(
    image[~observed])
print(f"relative error on the hidden pixels: {error:.3f}")

fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
for ax, picture, title in zip(
    axes[:3], [image, np.where(observed, image, 1.0), np.clip(completed, 0, 1)],
    ["original", "30% observed (white: hidden)",
     f"completed, rank 20 (error {error:.3f})"], strict=True,
):
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
# Where the error sits (hidden pixels only; observed ones are kept): along
# edges and in textures, the detail that a rank-20 matrix cannot hold, and
# in faint vertical and horizontal streaks, where a column or row with few
# observed pixels got a factor fitted to little data.
error_map = np.where(observed, 0.0, np.abs(completed - image))
shown = axes[3].imshow(error_map, cmap="magma", vmin=0,
                       vmax=float(np.quantile(error_map[~observed], 0.99)))
axes[3].set_title("|error| on the hidden pixels")
axes[3].axis("off")
fig.colorbar(shown, ax=axes[3], fraction=0.046, pad=0.02)
fig.tight_layout()

# %%
# Held-out error after each sweep: refit with ``max_iter`` sweeps for each
# solver (the fits are deterministic, so this traces one trajectory).
hidden_rows, hidden_cols = np.nonzero(~observed)
pick = rng.choice(hidden_rows.size, 5000, replace=False)
hidden_rows, hidden_cols = hidden_rows[pick], hidden_cols[pick]
truth = image[hidden_rows, hidden_cols]
sweeps = [1, 2, 4, 6, 8, 10]
fig, ax = plt.subplots(figsize=(5, 3.5))
for solver in ["exact", "cg", "sketch"]:
    errors = []
    for n_sweeps in sweeps:
        fitted = AltMinCompletion(rank=20, solver=solver, alpha=0.05,
                                  max_iter=n_sweeps, tol=0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.fit(X)
        predicted = fitted.predict_entries(hidden_rows, hidden_cols)
        errors.append(np.linalg.norm(predicted - truth) / np.linalg.norm(truth))
    ax.plot(sweeps, errors, marker="o", label=solver)
ax.set(xlabel="sweeps", ylabel="relative error on hidden pixels",
       title="Error against sweeps")
ax.legend()
fig.tight_layout()
plt.show()
