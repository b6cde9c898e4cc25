"""Demo row: CEL0 sparse coding of image patches vs scikit-learn's OMP."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._backend import require_cupy, to_numpy
from .._demo import DemoRow, compare, timed


def _omp(dictionary, X, tol):
    """scikit-learn's OMP stopped at squared residual norm ``tol`` per patch."""
    from sklearn.linear_model import orthogonal_mp_gram

    gram = dictionary @ dictionary.T
    codes = orthogonal_mp_gram(gram, dictionary @ X.T, tol=tol,
                               norms_squared=np.einsum("ij,ij->i", X, X))
    return np.asarray(codes.T)


def _omp_tolerance_for(dictionary, X, mean_atoms):
    """Residual tolerance at which OMP uses ``mean_atoms`` atoms per patch.

    OMP with a fixed number of atoms per patch would be compared at another
    sparsity pattern than CEL0, which picks a different count per patch; a
    residual tolerance lets OMP do the same. The mean count falls steadily
    as the log-tolerance grows, so a bracketing secant search (Illinois
    variant of regula falsi) finds it in a few OMP runs.
    """
    def excess(log_tol):
        codes = _omp(dictionary, X, math.exp(log_tol))
        return float(np.mean(np.count_nonzero(codes, axis=1))) - mean_atoms

    scale = float(np.mean(np.sum(X**2, axis=1)))
    low, high = math.log(1e-3 * scale), math.log(scale)
    f_low, f_high = excess(low), excess(high)
    if f_low <= 0 or f_high >= 0:  # the target is outside the bracket
        return math.exp(low if f_low <= 0 else high)
    side = 0
    for _ in range(20):
        middle = (low * f_high - high * f_low) / (f_high - f_low)
        f_middle = excess(middle)
        if abs(f_middle) < 0.05:
            break
        if f_middle > 0:
            low, f_low = middle, f_middle
            if side == 1:
                f_high /= 2
            side = 1
        else:
            high, f_high = middle, f_middle
            if side == -1:
                f_low /= 2
            side = -1
    return math.exp(middle)


def demo(device="cpu"):
    """Code 1000 whitened 8x8 patches over 128 atoms, CEL0 vs OMP at equal mean nnz.

    The anchor is scikit-learn's orthogonal matching pursuit stopped at a
    residual tolerance set so that its mean number of atoms per patch equals
    CEL0's, so both reach a comparable error and the row compares time.

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs (the anchor always runs on the CPU).

    Returns
    -------
    DemoRow
    """
    from sklearn.datasets import load_sample_images

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
        # The first call in the process (compilation included), then the
        # OMP tolerance for CEL0's sparsity, then alternating timed runs.
        codes, first_call = timed(coder.transform, data)
        codes = to_numpy(codes)
        nnz = float(np.mean(np.count_nonzero(codes, axis=1)))
        nmse = float(np.sum((X - codes @ dictionary) ** 2) / np.sum(X**2))
        tol = _omp_tolerance_for(dictionary, X, nnz)
        _, ours, omp_codes, theirs = compare(
            lambda: coder.transform(data), lambda: _omp(dictionary, X, tol))
    ours.first = first_call
    omp_nnz = float(np.mean(np.count_nonzero(omp_codes, axis=1)))
    omp_nmse = float(np.sum((X - omp_codes @ dictionary) ** 2) / np.sum(X**2))
    return DemoRow.from_timings(
        "1000 image patches 8x8, 128 atoms",
        f"CEL0 NMSE {nmse:.3f} at {nnz:.1f} atoms/patch",
        f"sklearn OMP (tol, {omp_nnz:.1f} atoms) NMSE {omp_nmse:.3f}",
        ours,
        theirs,
    )
