"""RobustUnmixing: descent, references, robustness to corrupted bands."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.datasets import make_hyperspectral
from sparsesolve.unmixing import (
    RobustUnmixing,
    cube_to_pixels,
    fcls,
    match_endmembers,
    vca,
)
from sparsesolve.unmixing._algorithm import (
    band_noise_levels,
    project_simplex,
    robust_unmixing,
    unmixing_objective,
)


def _scene(seed, size=15, n_bands=40, scale=1.0, corrupted=(3, 17, 30)):
    cube, endmembers, abundances, bad = make_hyperspectral(
        size, size, n_endmembers=3, n_bands=n_bands, snr_db=25,
        corrupted_bands=list(corrupted), corruption_scale=scale, random_state=seed)
    return cube_to_pixels(cube), endmembers, abundances.reshape(-1, 3), bad


CONFIGURATIONS = [
    dict(loss="log", guidance="learned"),
    dict(loss="log", guidance=None, alpha=0.0),
    dict(loss="l21", guidance="learned"),
    dict(loss="l21", guidance="learned", guidance_sharpness=20.0, p=0.7),
    dict(loss="l21", guidance="uniform"),
    dict(loss="l2", guidance="uniform", p=0.3),
    dict(loss="l2", guidance=None),
    dict(loss="l21", guidance=None, alpha=0.0),
    dict(loss="l21", guidance="uniform", alpha=100.0),
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
    # tol=0 runs until the decrease vanishes to rounding or max_iter.
    assert 2 <= objective.shape[0] <= 121
    assert objective.shape[0] == model.n_iter_ + 1
    # Monotone up to float64 rounding of the objective sums.
    increases = np.diff(objective) / np.abs(objective[:-1])
    assert increases.max() <= 1e-10
    assert objective[-1] < objective[0]


@pytest.mark.parametrize("seed", range(4))
def test_fit_never_ends_above_its_vca_fcls_start(seed):
    # objective_[0] is the objective at the VCA + FCLS start, recomputed here
    # independently of the fit; the end point must not be worse.
    X, _, _, _ = _scene(seed, scale=0.3)
    # n_init=1: a single VCA draw, which this test repeats.
    model = RobustUnmixing(3, n_init=1, random_state=seed).fit(X)
    clean = model._clean_band_mask(X)
    _, indices = vca(X[:, clean], 3, random_state=np.random.RandomState(seed))
    start_endmembers = np.clip(X[indices], 0, None)
    start_abundances = fcls(X[:, clean], start_endmembers[:, clean])
    kwargs = dict(loss="log", guidance="learned", p=0.5, alpha=model.alpha)
    start = unmixing_objective(X, start_abundances, start_endmembers,
                               start_abundances, start_endmembers, **kwargs)
    end = unmixing_objective(X, model.abundances_, model.endmembers_,
                             start_abundances, start_endmembers,
                             guidance_map=model.guidance_map_, **kwargs)
    # The start's guidance map is the exact h-step at the start, which the
    # recomputation with h = 1 can only exceed.
    assert model.objective_[0] <= start * (1 + 1e-12)
    assert_allclose(end, model.objective_[-1], rtol=1e-9)
    assert model.objective_[-1] < model.objective_[0]


def test_defaults_converge_without_warning_on_the_demo_scene():
    cube, _, _, _ = make_hyperspectral(
        40, 40, n_endmembers=4, n_bands=180, snr_db=30, corrupted_bands="water",
        corruption_scale=1.0, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = RobustUnmixing(4, random_state=0).fit(cube_to_pixels(cube))
    assert model.n_iter_ <= 300


def test_plain_fit_is_a_block_stationary_point_checked_with_scipy_nnls():
    # With l2 loss and no sparsity the converged factors must be optimal in
    # each block: A is the FCLS solution for E (checked with scipy's nnls on
    # the delta-augmented system, an independent solver) and every band of E
    # is the nonnegative least squares fit for A (scipy nnls per band).
    rng = np.random.RandomState(0)
    E_true = rng.rand(3, 25) + 0.1
    X = rng.dirichlet(np.ones(3), size=80) @ E_true + 0.01 * rng.randn(80, 25)
    A0 = rng.dirichlet(np.ones(3), size=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = robust_unmixing(X, A0, np.clip(X[:3], 0, None), loss="l2",
                               guidance=None, alpha=0.0, max_iter=3000, tol=0.0)
    A, E = ours["abundances"], ours["endmembers"]
    delta = 1e3
    augmented = np.vstack([E.T, delta * np.ones(3)])
    expected_A = np.array([nnls(augmented, np.append(x, delta))[0] for x in X])
    assert_allclose(A, expected_A, atol=1e-4)
    expected_E = np.array([nnls(A, X[:, band])[0] for band in range(25)]).T
    assert_allclose(E, expected_E, atol=1e-4)


def test_corrupted_bands_robust_loss_beats_least_squares():
    cube, endmembers, abundances, bad = make_hyperspectral(
        30, 30, n_endmembers=4, n_bands=120, snr_db=30, corrupted_bands="water",
        corruption_scale=1.0, random_state=1)
    X = cube_to_pixels(cube)
    truth = abundances.reshape(-1, 4)
    clean = np.setdiff1d(np.arange(120), bad)
    results = {}
    for loss in ("log", "l21", "l2"):
        model = RobustUnmixing(4, loss=loss, guidance="uniform", random_state=0,
                               max_iter=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimate = model.fit_transform(X)
        order, angles = match_endmembers(endmembers, model.endmembers_, bands=clean)
        rmse = np.sqrt(np.mean((estimate[:, order] - truth) ** 2))
        results[loss] = (angles.mean(), rmse, model)
    for robust_loss in ("log", "l21"):
        angle, rmse, _ = results[robust_loss]
        assert angle < 2.0
        assert rmse < 0.03
    angle, rmse, robust = results["log"]
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
    # increase the objective.
    rng = np.random.RandomState(7)
    X = rng.dirichlet(np.ones(3), size=200) @ (0.05 * rng.rand(3, 20))
    X += 0.05 * rng.standard_normal(X.shape)
    X[:, 5] -= 0.3
    assert (X < 0).mean() > 0.2
    for loss in ("log", "l21", "l2"):
        model = RobustUnmixing(3, loss=loss, max_iter=100, tol=0.0,
                               random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        assert model.endmembers_.min() >= 0
        assert model.abundances_.min() >= 0
        assert np.diff(model.objective_).max() <= 1e-10 * model.objective_[0]


def test_n_init_keeps_the_vca_draw_that_reconstructs_best():
    # The start is the draw (of the same random stream) whose FCLS fit has
    # the smallest squared error on the screened bands.
    X, _, _, _ = _scene(2, size=20, scale=0.3)
    model = RobustUnmixing(3, n_init=6)
    clean = model._clean_band_mask(X)
    _, chosen = model._initialise(X, np, np.random.RandomState(4))
    rng = np.random.RandomState(4)
    errors = []
    for _ in range(6):
        _, indices = vca(X[:, clean], 3, random_state=rng)
        start = X[indices][:, clean]
        errors.append(np.sum((X[:, clean] - fcls(X[:, clean], start) @ start) ** 2))
    chosen_error = np.sum(
        (X[:, clean] - fcls(X[:, clean], chosen[:, clean]) @ chosen[:, clean]) ** 2)
    # Clipping the chosen spectra at 0 (they are pixels) changes nothing on
    # these positive scenes; the errors match to rounding.
    assert_allclose(chosen_error, min(errors), rtol=1e-10)
    assert min(errors) < max(errors)
