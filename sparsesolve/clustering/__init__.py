"""Transductive Laplacian clustering and few-shot inference (bound optimizer).

Laplacian K-means / K-modes with a sparse k-NN affinity, solved by parallel
per-point bound updates (numba on the CPU, numba-cuda for CuPy input), as a
clusterer (:class:`LaplacianKMeans`) and as a transductive few-shot
classifier (:class:`TransductiveFewShotClassifier`).
"""

from ._affinity import knn_affinity, psd_shift
from ._estimator import LaplacianKMeans, TransductiveFewShotClassifier

__all__ = [
    "LaplacianKMeans",
    "TransductiveFewShotClassifier",
    "knn_affinity",
    "psd_shift",
]
