"""Data-parallel dictionary learning on a real 2-process cluster."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

da = pytest.importorskip("dask.array")

from sparsesolve.coding import LqDictionaryLearning  # noqa: E402
from sparsesolve.datasets import make_image_patches  # noqa: E402

# Codes are per-sample problems solved by the same coder; the atom step
# adds the blocks' C^T C and C^T R instead of one product over all samples,
# a difference of a few ulps per epoch. A wrong statistic (a block missed,
# a stale dictionary) moves the atoms by >1e-3.
RTOL = 1e-8


@pytest.mark.parametrize("penalty", ["l1", "cel0"])
def test_full_batch_epochs_equal_in_memory(client, penalty):
    X = make_image_patches(patch_size=(6, 6), n_patches=400, random_state=0)
    # On Dask each epoch is one step on all the data: the in-memory fit
    # with one batch of all samples is the same algorithm.
    params = dict(n_components=20, penalty=penalty, alpha=0.05,
                  batch_size=X.shape[0], max_iter=4, tol=0.0,
                  random_state=0)
    reference = LqDictionaryLearning(**params).fit(X)
    fitted = LqDictionaryLearning(**params).fit(da.from_array(X, chunks=(90, 36)))
    scale = np.abs(reference.components_).max()
    assert np.abs(fitted.components_ - reference.components_).max() < RTOL * scale
    assert_allclose(fitted.loss_curve_, reference.loss_curve_, rtol=RTOL)
    assert_array_equal(fitted.atom_usage_, reference.atom_usage_)
    assert fitted.n_steps_ == reference.n_steps_ == 4
    # A changed dictionary is visible: the start alone is far from the fit.
    start = LqDictionaryLearning(**{**params, "max_iter": 1}).fit(X)
    assert np.abs(start.components_ - reference.components_).max() > 1e-3
    assert_allclose(fitted.transform(X[:20]), reference.transform(X[:20]),
                    rtol=1e-6, atol=1e-9)
