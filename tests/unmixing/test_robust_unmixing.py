"""RobustUnmixing: descent, references, robustness to corrupted bands."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.datasets import make_hyperspectral
from sparsesolve.unmixing import RobustUnmixing, cube_to_pixels, match_endmembers
from sparsesolve.unmixing._algorithm import (
    band_noise_levels,
    project_simplex,
    robust_unmixing,
)


def _scene(seed, size=15, n_bands=40, scale=1.0, corrupted=(3, 17, 30)):
    cube, endmembers, abundances, bad = make_hyperspectral(
        size, size, n_endmembers=3, n_bands=n_bands, snr_db=25,
        corrupted_bands=list(corrupted), corruption_scale=scale, random_state=seed)
    return cube_to_pixels(cube), endmembers, abundances.reshape(-1, 3), bad


CONFIGURATIONS = [
    dict(loss="l21", guidance="learned"),
    dict(loss="l21", guidance="learned", guidance_sharpness=20.0, p=0.7),
    dict(loss="l21", guidance="uniform"),
    dict(loss="l2", guidance="uniform", p=0.3),
    dict(loss="l2", guidance=None, delta=0.0),
    dict(loss="l21", guidance=None, alpha=0.0, delta=3.0),
]


@pytest.mark.parametrize("configuration", CONFIGURATIONS,
                         ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("seed", range(8))
def test_objective_never_increases(configuration, seed):
    X, _, _, _ = _scene(seed)
    model = RobustUnmixing(3, max_iter=120, tol=0.0, random_state=seed,
                           init="random" if seed % 2 else "vca", **configuration)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    objective = model.objective_
    assert objective.shape == (121,)
    # Monotone up to float64 rounding of the objective sums.
    increases = np.diff(objective) / np.abs(objective[:-1])
    assert increases.max() <= 1e-10
    assert objective[-1] < objective[0]


def test_plain_updates_match_sklearn_nmf_mu():
    # With l2 loss, no sparsity and no sum-to-one penalty, the updates are
    # Lee and Seung's; scikit-learn's NMF(solver="mu") from the same start
    # (it also updates W = abundances first) must give the same factors.
    rng = np.random.RandomState(0)
    X = rng.rand(60, 25)
    A0 = rng.rand(60, 4) + 0.1
    E0 = rng.rand(4, 25) + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = robust_unmixing(X, A0.copy(), E0.copy(), loss="l2", guidance=None,
                               alpha=0.0, delta=0.0, max_iter=40, tol=0.0)
        nmf = NMF(4, init="custom", solver="mu", max_iter=40, tol=0.0)
        W = nmf.fit_transform(X, W=A0.copy(), H=E0.copy())
    assert_allclose(ours["abundances"] @ ours["endmembers"], W @ nmf.components_,
                    rtol=1e-7)
    assert_allclose(ours["endmembers"], nmf.components_, rtol=1e-6)


def test_corrupted_bands_robust_loss_beats_least_squares():
    cube, endmembers, abundances, bad = make_hyperspectral(
        30, 30, n_endmembers=4, n_bands=120, snr_db=30, corrupted_bands="water",
        corruption_scale=1.0, random_state=1)
    X = cube_to_pixels(cube)
    truth = abundances.reshape(-1, 4)
    clean = np.setdiff1d(np.arange(120), bad)
    results = {}
    for loss in ("l21", "l2"):
        model = RobustUnmixing(4, loss=loss, guidance="uniform", random_state=0,
                               max_iter=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimate = model.fit_transform(X)
        order, angles = match_endmembers(endmembers, model.endmembers_, bands=clean)
        rmse = np.sqrt(np.mean((estimate[:, order] - truth) ** 2))
        results[loss] = (angles.mean(), rmse, model)
    angle, rmse, robust = results["l21"]
    assert angle < 2.0
    assert rmse < 0.03
    # Least squares lets the outlier bands drag the fit away (the full-size
    # benchmark shows > 10 degrees; this small, short run is milder).
    assert results["l2"][0] > 3.0
    assert results["l2"][1] > 0.1
    # The learned band weights single out the corrupted bands.
    weights = robust.band_weights_
    assert weights[bad].max() < 0.5 * np.median(weights[clean])


def test_transform_gives_exact_simplex_abundances(global_dtype):
    X, _, _, _ = _scene(3)
    X = X.astype(global_dtype)
    model = RobustUnmixing(3, max_iter=50, tol=1e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        abundances = model.fit(X).transform(X)
    assert abundances.dtype == global_dtype
    assert model.endmembers_.dtype == global_dtype
    assert abundances.min() >= 0
    assert_allclose(abundances.sum(axis=1), 1.0, atol=1e-6)
    reconstruction = model.inverse_transform(abundances)
    assert reconstruction.shape == X.shape


def test_learned_guidance_marks_pure_pixels():
    cube, _, abundances, _ = make_hyperspectral(30, 30, n_endmembers=3, n_bands=60,
                                                snr_db=35, random_state=5)
    model = RobustUnmixing(3, guidance="learned", random_state=0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(cube_to_pixels(cube))
    purity = abundances.reshape(-1, 3).max(axis=1)
    guidance = model.guidance_map_
    assert guidance.min() >= 0
    assert_allclose(guidance.sum(), guidance.shape[0])
    assert np.corrcoef(guidance, purity)[0, 1] > 0.5


def test_project_simplex_satisfies_kkt():
    rng = np.random.RandomState(0)
    values = rng.standard_normal(200) * 3
    projected = project_simplex(values, 50.0, np)
    assert_allclose(projected.sum(), 50.0)
    assert projected.min() >= 0
    # KKT: values - projected equals one threshold on the support and the
    # values off the support lie below it.
    support = projected > 0
    threshold = (values - projected)[support]
    assert_allclose(threshold, threshold[0])
    assert np.all(values[~support] <= threshold[0] + 1e-12)


def test_band_noise_matches_explicit_regressions():
    rng = np.random.RandomState(1)
    X = rng.rand(300, 3) @ rng.rand(3, 8) + 0.01 * rng.randn(300, 8)
    noise = band_noise_levels(X, np)
    for band in range(8):
        others = np.delete(X, band, axis=1)
        coefficients = np.linalg.lstsq(others, X[:, band], rcond=None)[0]
        residual = X[:, band] - others @ coefficients
        assert_allclose(noise[band], np.sqrt(np.mean(residual**2)), rtol=1e-5)


def test_convergence_warning_and_verbose(capsys):
    X, _, _, _ = _scene(0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        RobustUnmixing(3, max_iter=3, tol=0.0, random_state=0, verbose=2).fit(X)


def test_bad_parameters():
    X, _, _, _ = _scene(0, size=4, n_bands=10, corrupted=())
    with pytest.raises(ValueError, match="n_endmembers=11"):
        RobustUnmixing(11).fit(X)
    with pytest.raises(ValueError, match="loss"):
        RobustUnmixing(2, loss="huber").fit(X)
    with pytest.raises(ValueError, match="'p' parameter"):
        RobustUnmixing(2, p=0.0).fit(X)


def test_negative_noise_keeps_factors_nonnegative_and_descent():
    # Dark pixels, strong noise and a detector with a negative offset give
    # negative data values; the updates must keep A, E >= 0 and still never
    # increase the objective (delta=0 so the sum-to-one term cannot mask it).
    rng = np.random.RandomState(7)
    X = rng.dirichlet(np.ones(3), size=200) @ (0.05 * rng.rand(3, 20))
    X += 0.05 * rng.standard_normal(X.shape)
    X[:, 5] -= 0.3
    assert (X < 0).mean() > 0.2
    for loss in ("l21", "l2"):
        model = RobustUnmixing(3, loss=loss, delta=0.0, max_iter=100, tol=0.0,
                               random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        assert model.endmembers_.min() >= 0
        assert model.abundances_.min() >= 0
        assert np.diff(model.objective_).max() <= 1e-10 * model.objective_[0]
