"""
Clustering a 2-D toy with its k-NN graph
========================================

Two interleaved half moons cannot be separated by prototypes alone: every
prototype method cuts them with a straight line. The Laplacian term of
:class:`~sparsesolve.clustering.LaplacianKMeans` rewards neighbours in the
k-nearest-neighbour graph (grey edges, built by
:func:`~sparsesolve.clustering.knn_affinity`) for sharing a cluster; with
mode prototypes and a handful of labelled points (stars) the clusters follow
the moons much better.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from sklearn.datasets import make_moons
from sklearn.metrics import adjusted_rand_score

from sparsesolve.clustering import LaplacianKMeans, knn_affinity

X, truth = make_moons(400, noise=0.05, random_state=0)
labels = np.full(truth.shape, -1)
for moon in (0, 1):
    labels[np.flatnonzero(truth == moon)[:5]] = moon

graph = knn_affinity(X, n_neighbors=5)
rows, cols = graph.nonzero()
edges = np.stack([X[rows], X[cols]], axis=1)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, lam in zip(axes, (0.0, 1.0), strict=False):
    model = LaplacianKMeans(
        2, laplacian_weight=lam, n_neighbors=5, prototype="mode"
    ).fit(X, labels)
    ax.add_collection(LineCollection(edges, colors="0.8", linewidths=0.5))
    ax.scatter(X[:, 0], X[:, 1], c=model.transduction_, cmap="coolwarm", s=12)
    ax.scatter(*X[labels >= 0].T, marker="*", s=180, c="k")
    ax.scatter(*model.cluster_centers_.T, marker="X", s=120, c="gold", edgecolors="k")
    score = adjusted_rand_score(truth, model.transduction_)
    ax.set_title(f"laplacian_weight={lam}: ARI {score:.2f}")
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
