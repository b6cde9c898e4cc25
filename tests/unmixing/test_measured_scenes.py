"""Scenes built from earthlib's measured spectra (skipped without earthlib)."""

import numpy as np
import pytest

from sparsesolve.datasets import load_earthlib_spectra, make_measured_hyperspectral
from sparsesolve.unmixing import spectral_angles

try:
    load_earthlib_spectra()
except ImportError:
    pytest.skip("earthlib (the spectral library) is not installed",
                allow_module_level=True)


def test_library_matches_its_envi_header():
    spectra, wavelengths, classes, names = load_earthlib_spectra(measured_only=False)
    assert spectra.shape == (7261, 180)
    assert wavelengths.shape == (180,)
    assert wavelengths[0] == pytest.approx(0.4)
    assert wavelengths[-1] == pytest.approx(2.45)
    # The library leaves the water windows out: a jump of 0.12 um near 1.4.
    assert np.diff(wavelengths).max() > 0.1
    assert (classes == "canopy").sum() == 2000
    assert names.shape == (7261,)
    measured, _, measured_classes, _ = load_earthlib_spectra()
    assert measured.shape[0] == 7261 - 2000
    assert "canopy" not in set(measured_classes)
    assert measured.min() >= 0
    assert measured.max() < 1.5


@pytest.mark.parametrize("correlated", [True, False])
def test_scene_is_a_linear_mixture_with_listed_corruption(correlated):
    cube, E, A, bad, wavelengths = make_measured_hyperspectral(
        12, 10, 4, snr_db=None, correlated=correlated, random_state=3)
    assert cube.shape == (12, 10, 206)
    assert E.shape == (4, 206)
    np.testing.assert_allclose(A.sum(axis=-1), 1.0)
    clean = np.setdiff1d(np.arange(206), bad)
    # Noise-free: the undamaged bands are exactly the mixture.
    np.testing.assert_allclose(cube[..., clean], (A @ E)[..., clean], atol=1e-12)
    assert bad.size == 26 + 8 + 5
    # One dead band (all zeros), and it is listed.
    dead = np.flatnonzero(np.all(cube == 0, axis=(0, 1)))
    assert dead.size == 1
    assert dead[0] in bad
    angles = spectral_angles(E, E)[~np.eye(4, dtype=bool)]
    assert angles.min() > 1.0
    if correlated:
        assert angles.max() < 8.0


def test_clean_scene_and_bad_arguments():
    _, _, _, bad, _ = make_measured_hyperspectral(5, 5, 3, corruption=None,
                                                  random_state=0)
    assert bad.size == 0
    with pytest.raises(ValueError, match="corruption"):
        make_measured_hyperspectral(5, 5, 3, corruption="stripes")
    with pytest.raises(ValueError, match="dirichlet_alpha"):
        make_measured_hyperspectral(5, 5, 3, dirichlet_alpha=0)
