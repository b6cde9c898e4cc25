"""make_irs_channel: the angular Kronecker model matches the physical channels."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve.datasets import make_irs_channel
from sparsesolve.kronecker import KroneckerOperator


def _steering(n_antennas, grid_size):
    angles = -1.0 + 2.0 * np.arange(grid_size) / grid_size
    n = np.arange(n_antennas)[:, None]
    return np.exp(1j * np.pi * n * angles[None, :]) / np.sqrt(n_antennas)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kronecker_code_reproduces_the_received_pilots(seed):
    Y, factors, X, info = make_irs_channel(200.0, random_state=seed)
    # Received pilots from the physical cascaded channels: pattern t, pilot
    # p, BS antenna b holds (C_t P)[b, p].
    received = np.stack([info.channels[t] @ info.pilots
                         for t in range(info.channels.shape[0])])
    clean = np.transpose(received, (0, 2, 1)).reshape(-1)
    assert_allclose(KroneckerOperator(factors).matvec(X[0]), clean,
                    rtol=1e-10, atol=1e-10 * np.abs(clean).max())
    assert_allclose(Y[0], clean, rtol=1e-8, atol=1e-8 * np.abs(clean).max())
    assert_allclose(info.channels_of(X[0]), info.channels,
                    atol=1e-12 * np.abs(info.channels).max())


def test_dictionaries_are_the_pilots_patterns_and_steering_matrices():
    _, (F_irs, F_ms, F_bs), _, info = make_irs_channel(10.0, random_state=3)
    n_irs = info.irs_patterns.shape[0]
    r = np.arange(n_irs)[:, None]
    k = np.arange(18)[None, :]
    # A cascaded IRS angle k is the steering vector of angle difference -2k/G.
    cascade = np.exp(-2j * np.pi * r * k / 18) / n_irs
    assert_allclose(F_irs, info.irs_patterns.T @ cascade, atol=1e-12)
    assert_allclose(F_ms, info.pilots.T @ np.conj(_steering(6, 18)), atol=1e-12)
    assert_allclose(F_bs, _steering(16, 18), atol=1e-12)
    # QPSK pilots scaled by 1/sqrt(n_ms) and +-1/sqrt(n_irs) patterns.
    assert_allclose(np.abs(info.pilots), 1 / np.sqrt(6))
    assert_allclose(np.abs(info.irs_patterns), 1 / np.sqrt(n_irs))


def test_support_is_a_clustered_kronecker_product_with_rank1_values():
    _, _, X, _ = make_irs_channel(10.0, angle_spread=4, random_state=5)
    tensor = X[0].reshape(18, 18, 18)
    support = tensor != 0
    per_mode = [support.any(axis=(1, 2)), support.any(axis=(0, 2)),
                support.any(axis=(0, 1))]
    assert [int(s.sum()) for s in per_mode] == [4, 1, 4]
    assert np.array_equal(support, np.einsum("i,j,k->ijk", *per_mode))
    # Arrivals are contiguous runs of grid points (the IRS one modulo G).
    irs = np.flatnonzero(per_mode[0])
    assert sorted(np.diff(np.sort((irs - irs[0]) % 18))) == [1, 1, 1]
    bs = np.flatnonzero(per_mode[2])
    assert np.array_equal(np.diff(bs), [1, 1, 1])
    block = tensor[np.ix_(per_mode[0], per_mode[1], per_mode[2])].reshape(4, 4)
    assert np.linalg.matrix_rank(block, tol=1e-10 * np.abs(block).max()) == 1


def test_snr_is_respected():
    measured = []
    for seed in range(20):
        Y, factors, X, info = make_irs_channel(8.0, random_state=seed)
        clean = KroneckerOperator(factors).matvec(X[0])
        measured.append(np.mean(np.abs(Y[0] - clean) ** 2) / info.noise_variance)
        assert_allclose(info.noise_variance,
                        np.mean(np.abs(clean) ** 2) * 10 ** -0.8, rtol=1e-12)
    # 20 x 288 complex noise samples: the mean power is within a few percent.
    assert abs(np.mean(measured) - 1.0) < 0.05


def test_same_seed_same_problem():
    first = make_irs_channel(12.0, random_state=7)
    second = make_irs_channel(12.0, random_state=7)
    assert_allclose(first[0], second[0])
    assert_allclose(first[2], second[2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"snr_db": np.nan}, "snr_db"),
        ({"snr_db": 10, "grid_size": 0}, "grid_size"),
        ({"snr_db": 10, "n_pilots": 7}, "n_pilots"),
        ({"snr_db": 10, "angle_spread": 19}, "angle_spread"),
        ({"snr_db": 10, "n_patterns": 2.5}, "n_patterns"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_irs_channel(**kwargs)
