"""Demo row: recover a Kronecker-sparse code, against scikit-learn's ARDRegression."""

from __future__ import annotations

import warnings

import numpy as np

from .._backend import require_cupy, to_numpy
from .._demo import DemoRow, compare


def _nmse_db(estimate, truth):
    return 10 * np.log10(np.sum(np.abs(estimate - truth) ** 2) / np.sum(truth**2))


def demo(device="cpu"):
    """Recover a 3-mode sparse code (N = 1000, M = 180) from noisy measurements.

    sparsesolve's :class:`~sparsesolve.kronecker.KroneckerSBL` (SVD-KroSBL,
    noise variance learned) works on the three small factors; scikit-learn's
    ``ARDRegression`` needs the dense 180 x 1000 Kronecker product. The
    figure is the NMSE of the recovered code at 25 dB SNR. Both run with one
    BLAS thread (two threads on a busy 2-core machine slow dense work down).

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs; the data are moved with CuPy for ``"gpu"``.

    Returns
    -------
    DemoRow
    """
    from sklearn.linear_model import ARDRegression
    from threadpoolctl import threadpool_limits

    from ..datasets import make_kronecker_sparse
    from . import KroneckerOperator, KroneckerSBL

    Y, factors, X = make_kronecker_sparse(
        [(5, 10), (6, 10), (6, 10)], 2, snr_db=25, random_state=0)
    if device == "gpu":
        cupy = require_cupy()
        data, dictionaries = cupy.asarray(Y), [cupy.asarray(f) for f in factors]
    else:
        data, dictionaries = Y, factors
    model = KroneckerSBL(dictionaries)
    dense = KroneckerOperator(factors).todense()
    ard = ARDRegression(fit_intercept=False)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, ours, ard, theirs = compare(lambda: model.fit(data),
                                           lambda: ard.fit(dense, Y[0]))
    return DemoRow.from_timings(
        "3-mode Kronecker-sparse code, N=1000, M=180, 25 dB",
        f"NMSE {_nmse_db(to_numpy(model.coef_)[0], X[0]):.1f} dB",
        f"sklearn ARDRegression NMSE {_nmse_db(ard.coef_, X[0]):.1f} dB",
        ours,
        theirs,
    )
