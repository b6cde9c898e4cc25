"""The synthetic scene generator."""

import numpy as np
import pytest

from sparsesolve.datasets import make_hyperspectral


def test_shapes_simplex_and_determinism():
    cube, endmembers, abundances, corrupted = make_hyperspectral(
        12, 9, n_endmembers=5, n_bands=40, random_state=0)
    assert cube.shape == (12, 9, 40)
    assert endmembers.shape == (5, 40)
    assert abundances.shape == (12, 9, 5)
    assert corrupted.size == 0
    assert abundances.min() >= 0
    np.testing.assert_allclose(abundances.sum(axis=-1), 1.0, atol=1e-12)
    assert endmembers.min() > 0
    again = make_hyperspectral(12, 9, n_endmembers=5, n_bands=40, random_state=0)
    np.testing.assert_array_equal(cube, again[0])


def test_spectra_are_smooth():
    _, endmembers, _, _ = make_hyperspectral(4, 4, n_endmembers=9, n_bands=180,
                                             random_state=1)
    # Second differences of smooth curves are small compared with the values
    # (white noise would give about twice the values); the sharpest feature
    # is the vegetation red edge, about 7 % of its plateau per band.
    roughness = np.abs(np.diff(endmembers, 2, axis=1)).max(axis=1)
    assert np.all(roughness < 0.1 * endmembers.max(axis=1))
    assert np.median(roughness / endmembers.max(axis=1)) < 0.02


def test_noise_level_matches_snr():
    cube, endmembers, abundances, _ = make_hyperspectral(
        40, 40, n_endmembers=3, n_bands=50, snr_db=20, random_state=2)
    clean = abundances @ endmembers
    snr = 10 * np.log10(np.mean(clean**2) / np.mean((cube - clean) ** 2))
    assert abs(snr - 20) < 0.2


def test_water_corruption_hits_water_windows():
    cube, endmembers, abundances, corrupted = make_hyperspectral(
        20, 20, n_endmembers=3, n_bands=180, corrupted_bands="water",
        corruption_scale=1.0, random_state=3)
    wavelengths = np.linspace(0.4, 2.45, 180)
    water = (wavelengths >= 1.34) & (wavelengths <= 1.46)
    assert set(np.flatnonzero(water)) <= set(corrupted.tolist())
    clean = abundances @ endmembers
    error = np.abs(cube - clean).mean(axis=(0, 1))
    assert error[corrupted].min() > 10 * np.median(np.delete(error, corrupted))


def test_dirichlet_and_explicit_bands():
    _, _, abundances, corrupted = make_hyperspectral(
        5, 5, n_endmembers=3, n_bands=20, abundance_model="dirichlet",
        corrupted_bands=[3, 1], random_state=4)
    np.testing.assert_allclose(abundances.sum(axis=-1), 1.0)
    assert corrupted.tolist() == [1, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_rows"):
        make_hyperspectral(0, 3)
    with pytest.raises(ValueError, match="corrupted_bands"):
        make_hyperspectral(3, 3, n_bands=10, corrupted_bands=[10])
    with pytest.raises(ValueError, match="corrupted_bands"):
        make_hyperspectral(3, 3, corrupted_bands="hot")
    with pytest.raises(ValueError, match="abundance_model"):
        make_hyperspectral(3, 3, abundance_model="uniform")
