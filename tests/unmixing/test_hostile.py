"""Hostile inputs to the unmixing family: bad shapes, complex data, extreme scales."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.unmixing import (
    RobustUnmixing,
    cube_to_pixels,
    fcls,
    match_endmembers,
    plot_unmixing,
    read_envi,
    spectral_angles,
    vca,
)

SCALES = [1e-300, 1e-150, 1e-20, 1.0, 1e20, 1e150, 1e300]


def _mixed(n_pixels=80, n_bands=12, n_endmembers=3, seed=0, pure=True):
    rng = np.random.RandomState(seed)
    endmembers = rng.uniform(0.1, 1.0, (n_endmembers, n_bands))
    abundances = rng.dirichlet(np.ones(n_endmembers), n_pixels)
    if pure:
        abundances[:n_endmembers] = np.eye(n_endmembers)
    X = abundances @ endmembers + 1e-3 * rng.standard_normal((n_pixels, n_bands))
    return X, endmembers, abundances


def test_match_endmembers_rejects_fewer_estimates():
    # Regression: the assignment left an entry of ``order`` uninitialised.
    _, E, _ = _mixed()
    with pytest.raises(ValueError, match="estimate has 2 spectra"):
        match_endmembers(E, E[:2])


def test_match_endmembers_more_estimates_and_bands():
    _, E, _ = _mixed()
    extra = np.vstack([E[::-1], np.ones((1, E.shape[1]))])
    order, angles = match_endmembers(E, extra)
    assert_array_equal(order, [2, 1, 0])
    assert_allclose(angles, 0, atol=1e-5)
    with pytest.raises(ValueError, match="bands"):
        match_endmembers(E, E, bands=[0, 99])
    with pytest.raises(ValueError, match="mask"):
        match_endmembers(E, E, bands=np.ones(3, dtype=bool))


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_spectral_angles_at_extreme_scales(scale):
    reference = np.array([[1.0, 0.0]]) * scale
    estimate = np.array([[1.0, 1.0]]) * scale
    assert_allclose(spectral_angles(reference, estimate), [[45.0]])


def test_metrics_reject_complex_and_nan():
    E = np.eye(3)
    with pytest.raises(TypeError, match="reference is complex"):
        spectral_angles(E + 0j, E)
    with pytest.raises(TypeError, match="estimate is complex"):
        match_endmembers(E, E + 1j)
    with pytest.raises(ValueError, match="estimate contains NaN"):
        spectral_angles(E, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="'cube' parameter"):
        cube_to_pixels(3)


def test_fcls_rejects_complex_naming_the_argument():
    # Regression: complex input reached the numba kernel (TypingError).
    X, E, _ = _mixed()
    with pytest.raises(TypeError, match="X is complex"):
        fcls(X + 0j, E)
    with pytest.raises(TypeError, match="endmembers is complex"):
        fcls(X, E + 0j)
    with pytest.raises(TypeError, match="band_weights is complex"):
        fcls(X, E, band_weights=np.ones(X.shape[1]) + 0j)
    with pytest.raises(ValueError, match="band_weights contains NaN"):
        fcls(X, E, band_weights=np.full(X.shape[1], np.nan))
    with pytest.raises(ValueError, match="band_weights are all zero"):
        fcls(X, E, band_weights=np.zeros(X.shape[1]))
    with pytest.raises(ValueError, match="'tol' parameter"):
        fcls(X, E, tol=-1.0)


@pytest.mark.parametrize("scale", SCALES)
def test_fcls_is_scale_invariant(scale):
    # Abundances do not change when pixels and endmembers scale together.
    X, E, _ = _mixed()
    reference = fcls(X, E)
    weights = np.linspace(0.5, 2.0, X.shape[1])
    assert_allclose(fcls(scale * X, scale * E), reference, atol=1e-10)
    assert_allclose(fcls(scale * X, scale * E, band_weights=scale * weights),
                    fcls(X, E, band_weights=weights), atol=1e-10)


def test_fcls_all_zero_pixels_are_defined():
    _, E, _ = _mixed()
    A = fcls(np.zeros((4, E.shape[1])), E)
    assert np.all(np.isfinite(A))
    assert np.all(A >= 0)
    assert_allclose(A.sum(axis=1), 1.0)


@pytest.mark.parametrize("scale", SCALES)
def test_vca_is_scale_invariant(scale):
    X, _, _ = _mixed()
    _, reference = vca(X, 3, random_state=0)
    found, indices = vca(scale * X, 3, random_state=0)
    assert_array_equal(indices, reference)
    assert_array_equal(found, (scale * X)[indices])


def test_vca_all_zero_and_complex_are_clear_errors():
    with pytest.raises(ValueError, match="X is all zeros"):
        vca(np.zeros((20, 5)), 2)
    with pytest.raises(TypeError, match="X is complex"):
        vca(np.ones((20, 5)) + 1j, 2)
    with pytest.raises(ValueError, match="'n_endmembers' parameter"):
        vca(np.ones((20, 5)), 0)


@pytest.mark.parametrize("loss", ["log", "l2"])
@pytest.mark.parametrize("scale", [1e-300, 1e-100, 1e100, 1e300])
def test_robust_unmixing_is_scale_equivariant(scale, loss):
    # Regression: NaN endmembers at 1e-300, LinAlgError at 1e300.
    X, _, _ = _mixed(n_pixels=60, n_bands=10)
    params = dict(n_endmembers=3, loss=loss, n_init=2, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = RobustUnmixing(**params).fit(X)
        scaled = RobustUnmixing(**params).fit(scale * X)
    # s is not a power of two, so s * X rounds: the VCA draws may then tie
    # differently and list the same endmembers in another order. Compare
    # after matching; 1e-6 allows the rounding carried through 30 steps.
    order, _ = match_endmembers(reference.endmembers_, scaled.endmembers_)
    assert_allclose(scaled.endmembers_[order] / scale, reference.endmembers_,
                    rtol=1e-6, atol=1e-9)
    assert_allclose(scaled.abundances_[:, order], reference.abundances_, atol=1e-6)
    assert_allclose(scaled.transform(scale * X)[:, order], reference.transform(X),
                    atol=1e-6)
    assert_allclose(scaled.objective_, reference.objective_, rtol=1e-6)
    # The l2 score is a mean square: beyond float64 for s^2 past 1e+-308.
    factor = scale if loss == "log" else scale * scale
    if loss == "log" or 1e-150 < scale < 1e150:
        assert_allclose(scaled.score(scale * X) / factor, reference.score(X),
                        rtol=1e-6)


def test_robust_unmixing_all_zero_is_a_clear_error():
    with pytest.raises(ValueError, match="X is all zeros"):
        RobustUnmixing(2).fit(np.zeros((30, 6)))
    with pytest.raises(ValueError, match="X is all zeros"):
        RobustUnmixing(2, init="random").fit(np.zeros((30, 6)))


def test_robust_unmixing_rejects_complex():
    X, _, _ = _mixed()
    with pytest.raises(ValueError, match="Complex data not supported"):
        RobustUnmixing(3).fit(X + 0j)


def test_robust_unmixing_warns_at_small_max_iter():
    X, _, _ = _mixed(pure=False, seed=3)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        RobustUnmixing(3, max_iter=2, n_init=1, random_state=0).fit(X)


def test_plot_unmixing_rejects_bad_arguments():
    E = np.random.RandomState(0).rand(2, 6)
    A = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="shape must be"):
        plot_unmixing(E, A, shape=(3, 3))
    with pytest.raises(ValueError, match="wavelengths"):
        plot_unmixing(E, A, shape=(2, 2), wavelengths=np.arange(5))
    with pytest.raises(ValueError, match="bad_bands"):
        plot_unmixing(E, A, shape=(2, 2), bad_bands=[99])
    with pytest.raises(ValueError, match="names"):
        plot_unmixing(E, A, shape=(2, 2), names=["one"])
    with pytest.raises(TypeError, match="endmembers is complex"):
        plot_unmixing(E + 1j, A, shape=(2, 2))


def test_read_envi_validates_scale():
    with pytest.raises(ValueError, match="'scale' parameter"):
        read_envi("scene.hdr", scale=0.0)
    with pytest.raises(ValueError, match="'header' parameter"):
        read_envi(3)


def test_empty_and_invalid_inputs_are_refused():
    X, E, _ = _mixed()
    with pytest.raises(ValueError, match="at least one pixel"):
        fcls(X[:0], E)
    with pytest.raises(ValueError, match="reference must hold at least one"):
        spectral_angles(E[:0], E)
    model = RobustUnmixing(3, max_iter=3, n_init=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    with pytest.raises(ValueError, match="X contains NaN"):
        model.inverse_transform(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="0 rows"):
        model.inverse_transform(np.ones((0, 3)))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        model.inverse_transform(np.array([["a", "b", "c"]]))
    # Integer abundances compute in float (were truncated products).
    assert_allclose(model.inverse_transform(np.array([[1, 0, 0]])),
                    model.endmembers_[:1])


def test_vca_draw_order_is_stable_under_rounding():
    # Ties between VCA draws (the same pixels in another order) keep the
    # first draw, so s * X with s not a power of two gives the same order.
    X, _, _ = _mixed(n_pixels=60, n_bands=10)
    params = dict(n_endmembers=3, n_init=4, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = RobustUnmixing(**params).fit(X)
        scaled = RobustUnmixing(**params).fit(1e-150 * X)
    assert_allclose(scaled.endmembers_ / 1e-150, reference.endmembers_, rtol=1e-6)
