"""make_image_patches: shapes, contrast filter, whitening, validation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve.datasets import make_image_patches
from sparsesolve.datasets._coding import _whiten


def test_patches_shape_mean_and_seed():
    X = make_image_patches(patch_size=(8, 6), n_patches=300, random_state=0)
    assert X.shape == (300, 48)
    assert_allclose(X.mean(axis=1), 0, atol=1e-12)
    assert_allclose(X, make_image_patches(patch_size=(8, 6), n_patches=300,
                                          random_state=0))


def test_contrast_filter_drops_flat_patches():
    rng = np.random.RandomState(0)
    image = np.zeros((64, 64))
    image[:, 32:] = rng.standard_normal((64, 32))  # right half textured
    X = make_image_patches([image], patch_size=(8, 8), n_patches=200,
                           whiten=False, min_std=0.3, random_state=0)
    assert np.all(X.std(axis=1) > 0.3)
    everything = make_image_patches([image], patch_size=(8, 8), n_patches=200,
                                    whiten=False, min_std=0.0, random_state=0)
    assert np.min(everything.std(axis=1)) < 0.3


def test_whitening_flattens_a_one_over_f_spectrum():
    # A 1/f amplitude spectrum (natural-image statistics) becomes roughly
    # flat in the mid band after the |f| exp(-(|f|/0.4)^4) filter.
    rng = np.random.RandomState(1)
    n = 128
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    phases = np.exp(2j * np.pi * rng.uniform(size=(n, n)))
    image = np.real(np.fft.ifft2(phases / radius))
    power = np.abs(np.fft.fft2(_whiten(image))) ** 2
    low = power[(radius > 0.05) & (radius < 0.1)].mean()
    mid = power[(radius > 0.15) & (radius < 0.25)].mean()
    assert 0.5 < mid / low < 2.0
    raw = np.abs(np.fft.fft2(image)) ** 2
    assert raw[(radius > 0.05) & (radius < 0.1)].mean() > 4 * raw[
        (radius > 0.15) & (radius < 0.25)].mean()


def test_validation():
    with pytest.raises(ValueError, match="patch_size"):
        make_image_patches(patch_size=(0, 4))
    with pytest.raises(ValueError, match="n_patches"):
        make_image_patches(n_patches=0)
    with pytest.raises(ValueError, match="min_std"):
        make_image_patches(min_std=-1)
    with pytest.raises(ValueError, match="smaller than patch_size"):
        make_image_patches([np.ones((4, 4))], patch_size=(8, 8))
    with pytest.raises(ValueError, match="constant"):
        make_image_patches([np.ones((16, 16))], patch_size=(8, 8), n_patches=10)
    ramp = np.add.outer(np.arange(16.0), np.arange(16.0))
    with pytest.raises(ValueError, match="pass min_std"):
        make_image_patches([ramp], patch_size=(8, 8), min_std=10.0, n_patches=10)
