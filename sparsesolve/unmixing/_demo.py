"""Demo row: unmix a scene with corrupted water bands, against scikit-learn NMF."""

from __future__ import annotations

import warnings

import numpy as np

from .._backend import require_cupy, to_numpy
from .._demo import DemoRow, compare


def demo(device="cpu"):
    """Unmix a 40x40-pixel, 180-band scene whose water bands are corrupted.

    sparsesolve's :class:`~sparsesolve.unmixing.RobustUnmixing` (l2,1 loss)
    against scikit-learn's ``NMF`` (Frobenius loss, abundances renormalised
    to sum to one) from the same VCA start; the figure is the mean spectral
    angle to the true endmembers on the clean bands.

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs; the data are moved with CuPy for ``"gpu"``.

    Returns
    -------
    DemoRow
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    from ..datasets import make_hyperspectral
    from . import RobustUnmixing, cube_to_pixels, match_endmembers

    cube, endmembers, _, bad = make_hyperspectral(
        40, 40, n_endmembers=4, n_bands=180, snr_db=30, corrupted_bands="water",
        corruption_scale=1.0, random_state=1)
    X = cube_to_pixels(cube)
    clean = np.setdiff1d(np.arange(180), bad)
    data = require_cupy().asarray(X) if device == "gpu" else X
    # Defaults: the fit converges on this scene (about 20 iterations).
    model = RobustUnmixing(4, random_state=0)
    nmf = NMF(4, init="nndsvda", solver="mu", max_iter=300, tol=1e-5)
    nonnegative = np.clip(X, 0, None)
    with warnings.catch_warnings():
        # scikit-learn's NMF does not converge in 300 iterations here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model, ours, nmf, theirs = compare(lambda: model.fit(data),
                                           lambda: nmf.fit(nonnegative))
    _, angles = match_endmembers(endmembers, to_numpy(model.endmembers_),
                                 bands=clean)
    _, anchor_angles = match_endmembers(endmembers, nmf.components_, bands=clean)
    return DemoRow.from_timings(
        f"unmix 40x40 px, 180 bands, {bad.size} corrupted",
        f"SAD {angles.mean():.2f} deg",
        f"sklearn NMF SAD {anchor_angles.mean():.2f} deg",
        ours,
        theirs,
    )
