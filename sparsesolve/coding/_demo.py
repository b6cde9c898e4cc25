"""Demo row: CEL0 sparse coding of image patches vs scikit-learn's OMP."""

from __future__ import annotations

import warnings

import numpy as np

from .._backend import require_cupy, to_numpy
from .._demo import DemoRow, timed


def demo(device="cpu"):
    """Code 1000 whitened 8x8 patches over 128 atoms, CEL0 vs OMP at equal nnz.

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs (the anchor always runs on the CPU).

    Returns
    -------
    DemoRow
    """
    from sklearn.datasets import load_sample_images
    from sklearn.decomposition import SparseCoder

    from ..datasets import make_image_patches
    from ._estimator import LqSparseCoder

    china, flower = load_sample_images().images
    atoms = make_image_patches([china], patch_size=(8, 8), n_patches=128,
                               random_state=0)
    dictionary = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
    X = make_image_patches([flower], patch_size=(8, 8), n_patches=1000,
                           random_state=1)
    data, atoms_on_device = X, dictionary
    if device == "gpu":
        cupy = require_cupy()
        data, atoms_on_device = cupy.asarray(X), cupy.asarray(dictionary)
    coder = LqSparseCoder(atoms_on_device, penalty="cel0", alpha=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coder.transform(data[:8])  # compile the kernels outside the timing
        codes, seconds = timed(coder.transform, data)
    codes = to_numpy(codes)
    nnz = float(np.mean(np.count_nonzero(codes, axis=1)))
    nmse = float(np.sum((X - codes @ dictionary) ** 2) / np.sum(X**2))

    k = max(int(round(nnz)), 1)
    omp = SparseCoder(dictionary, transform_algorithm="omp",
                      transform_n_nonzero_coefs=k)
    omp_codes, omp_seconds = timed(omp.transform, X)
    omp_nmse = float(np.sum((X - omp_codes @ dictionary) ** 2) / np.sum(X**2))
    return DemoRow(
        problem="1000 image patches 8x8, 128 atoms",
        result=f"CEL0 NMSE {nmse:.3f} at {nnz:.1f} atoms/patch",
        anchor=f"sklearn OMP (k={k}) NMSE {omp_nmse:.3f}",
        seconds=seconds,
        anchor_seconds=omp_seconds,
    )
