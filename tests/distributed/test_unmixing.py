"""Data-parallel robust unmixing on a real 2-process cluster."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

da = pytest.importorskip("dask.array")

from sparsesolve.datasets import make_hyperspectral  # noqa: E402
from sparsesolve.unmixing import RobustUnmixing  # noqa: E402

# Per-pixel QPs are solved by the same kernel from the same inputs; the
# reductions (A^T X, A^T A, the objective's sums, the guidance threshold)
# add block sums instead of one sum over all pixels, a few ulps per
# iteration. A wrong pixel, a missed block or another guidance threshold
# moves the endmembers by far more than 1e-8.
RTOL = 1e-8


def _pixels():
    cube, _, _, _ = make_hyperspectral(20, 18, n_endmembers=3, n_bands=40,
                                       corrupted_bands=3, random_state=0)
    return cube.reshape(-1, cube.shape[-1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("loss", "guidance", "sharpness"), [
    ("log", "learned", 20.0),
    pytest.param("l2", "uniform", 1.0, marks=pytest.mark.slow),
    pytest.param("l21", None, 1.0, marks=pytest.mark.slow)])
def test_blocked_fit_equals_in_memory(client, loss, guidance, sharpness):
    X = _pixels()
    params = dict(n_endmembers=3, loss=loss, guidance=guidance, init="random",
                  guidance_sharpness=sharpness, max_iter=25, random_state=0)
    reference = RobustUnmixing(**params).fit(X)
    fitted = RobustUnmixing(**params).fit(da.from_array(X, chunks=(100, 40)))
    assert fitted.n_iter_ == reference.n_iter_
    assert_allclose(fitted.objective_, reference.objective_, rtol=RTOL)
    scale = np.abs(reference.endmembers_).max()
    assert np.abs(fitted.endmembers_ - reference.endmembers_).max() < RTOL * scale
    assert_allclose(fitted.band_weights_, reference.band_weights_, rtol=RTOL)
    abundances = fitted.abundances_.compute()
    assert abundances.shape == reference.abundances_.shape
    assert np.abs(abundances - reference.abundances_).max() < RTOL
    assert np.abs(fitted.guidance_map_.compute()
                  - reference.guidance_map_).max() < RTOL * max(
                      1.0, np.abs(reference.guidance_map_).max())
    if guidance == "learned":
        # The learned map is sparse: the threshold matters, not a formality.
        assert 0 < np.count_nonzero(reference.guidance_map_) < X.shape[0]
    # The in-memory methods work on the fitted model.
    assert_allclose(fitted.transform(X[:10]), reference.transform(X[:10]),
                    atol=1e-7)


def test_vca_start_is_refused_on_dask(client):
    with pytest.raises(ValueError, match="init='random'"):
        RobustUnmixing(n_endmembers=3).fit(da.from_array(_pixels(), chunks=100))
