"""make_ura_doa and ula_steering."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve.datasets import make_ura_doa, ula_steering


def test_noiseless_snapshots_follow_the_kronecker_steering():
    Y, factors, info = make_ura_doa(3, snr_db=300, n_snapshots=4, random_state=1)
    u, v = info["directions"].T
    steering = np.stack([np.kron(ula_steering(8, [a])[:, 0], ula_steering(8, [b])[:, 0])
                         for a, b in zip(u, v, strict=True)], axis=1)
    assert_allclose(Y, info["signals"] @ steering.T, atol=1e-12)
    assert_allclose(factors[0], ula_steering(8, info["grids"][0]))
    assert_allclose(info["steering"][1](info["grids"][1]), factors[1])


def test_separable_layout_is_a_kronecker_product_and_sources_are_separated():
    _, _, info = make_ura_doa(4, layout="separable", random_state=3)
    d = info["directions"]
    assert len(np.unique(d[:, 0])) == 2
    assert len(np.unique(d[:, 1])) == 2
    _, _, info = make_ura_doa(3, random_state=3, min_separation=2.0)
    d = info["directions"] / info["cell"]
    for i in range(3):
        for j in range(i):
            assert np.max(np.abs(d[i] - d[j])) >= 2.0
    assert np.all(np.abs(info["directions"]) < 1 - info["cell"][0] + 1e-12)


def test_snr_sets_the_noise_variance():
    Y, _, info = make_ura_doa(1, snr_db=10, n_snapshots=2000, random_state=0)
    noise = Y - info["signals"] @ np.kron(
        ula_steering(8, info["directions"][:, 0]),
        ula_steering(8, info["directions"][:, 1]))[:, :1].T
    assert_allclose(np.mean(np.abs(noise) ** 2), 0.1, rtol=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="layout"):
        make_ura_doa(2, layout="grid")
    with pytest.raises(ValueError, match="n_sources"):
        make_ura_doa(0)
    with pytest.raises(ValueError, match="n_elements"):
        ula_steering(0, [0.1])
