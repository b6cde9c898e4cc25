"""Cube input and output, ENVI reading, the plotting helper."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.datasets import make_hyperspectral
from sparsesolve.unmixing import (
    RobustUnmixing,
    cube_to_pixels,
    plot_unmixing,
    read_envi,
)


def test_cube_in_maps_out_match_the_pixel_matrix_fit():
    cube, _, _, _ = make_hyperspectral(9, 7, n_endmembers=3, n_bands=30,
                                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_cube = RobustUnmixing(3, max_iter=20, random_state=0).fit(cube)
        on_pixels = RobustUnmixing(3, max_iter=20, random_state=0).fit(
            cube_to_pixels(cube))
    maps = on_cube.transform(cube)
    assert maps.shape == (9, 7, 3)
    assert on_cube.abundances_.shape == (9, 7, 3)
    assert on_cube.guidance_map_.shape == (9, 7)
    assert_allclose(on_cube.endmembers_, on_pixels.endmembers_)
    assert_allclose(maps.reshape(-1, 3), on_pixels.transform(cube_to_pixels(cube)))
    # A cube fit also transforms pixel matrices (and the reverse).
    assert on_cube.transform(cube_to_pixels(cube)).shape == (63, 3)
    assert on_pixels.transform(cube).shape == (9, 7, 3)


def test_read_envi_round_trip_with_wavelengths_and_bad_bands(tmp_path):
    envi = pytest.importorskip("spectral.io.envi")
    rng = np.random.RandomState(0)
    cube = (rng.rand(4, 5, 6) * 10000).astype(np.int16)
    header = tmp_path / "scene.hdr"
    envi.save_image(str(header), cube, dtype=np.int16, metadata={
        "wavelength": [0.4, 0.5, 0.6, 1.4, 1.9, 2.2],
        "wavelength units": "micrometers",
        "bbl": [1, 1, 1, 0, 0, 1],
        "reflectance scale factor": 10000,
    })
    read, wavelengths, bad = read_envi(header)
    assert read.shape == (4, 5, 6)
    assert read.dtype == np.float64
    assert_allclose(read, cube / 10000.0)
    assert_allclose(wavelengths, [0.4, 0.5, 0.6, 1.4, 1.9, 2.2])
    assert bad.tolist() == [3, 4]
    unscaled, _, _ = read_envi(header, scale=1.0)
    assert_allclose(unscaled, cube)
    with pytest.raises(ValueError, match="scale"):
        read_envi(header, scale=-1.0)


def test_plot_unmixing_draws_spectra_and_maps():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    rng = np.random.RandomState(0)
    endmembers = rng.rand(3, 20)
    figure = plot_unmixing(endmembers, rng.rand(12, 3), shape=(3, 4),
                           wavelengths=np.linspace(0.4, 2.4, 20), bad_bands=[5, 6],
                           reference=endmembers, names=["a", "b", "c"])
    # Three spectra, three maps and the colour bar.
    assert len(figure.axes) == 7
    line = figure.axes[0].lines[-1]
    assert np.isnan(line.get_ydata()[5])
    assert figure.axes[3].images[0].get_array().shape == (3, 4)
    with pytest.raises(ValueError, match="shape"):
        plot_unmixing(endmembers, rng.rand(12, 3))
    with pytest.raises(ValueError, match="3 maps"):
        plot_unmixing(endmembers, rng.rand(3, 4, 2))
