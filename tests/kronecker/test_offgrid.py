"""Off-grid direction refinement with steering-vector dictionaries."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve.datasets import make_ura_doa, ula_steering
from sparsesolve.kronecker import KroneckerSBL
from sparsesolve.kronecker._offgrid import find_peaks, refine_directions


def _fit(k, layout, seed, snr_db=30, n_snapshots=20, **kwargs):
    Y, factors, info = make_ura_doa(k, layout=layout, snr_db=snr_db,
                                    n_snapshots=n_snapshots, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = KroneckerSBL(factors, steering=info["steering"], grids=info["grids"],
                             **kwargs).fit(Y)
    return Y, factors, info, model


def _matched(estimate, truth):
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(estimate[:, None] - truth[None], axis=2)
    rows, cols = linear_sum_assignment(cost)
    return estimate[rows], truth[cols], rows


@pytest.mark.parametrize(("k", "layout"), [(3, "independent"), (4, "separable")])
def test_directions_are_estimated_off_the_grid(k, layout):
    Y, factors, info, model = _fit(k, layout, seed=7)
    assert model.directions_.shape == (k, 2)
    estimate, truth, rows = _matched(model.directions_, info["directions"])
    # Far below the half-cell error of any grid estimate (cell = 0.125).
    assert np.max(np.abs(estimate - truth)) < 0.05 * info["cell"][0]
    std = model.direction_std_[rows]
    assert np.all(std > 0)
    assert np.all(np.abs(estimate - truth) < 6 * std)
    assert model.source_amplitudes_.shape == (Y.shape[0], k)


def test_one_source_matches_a_brute_force_maximum_likelihood_search():
    Y, factors, info = make_ura_doa(1, snr_db=10, n_snapshots=5, random_state=2)
    peaks = np.array([[int(np.argmin(np.abs(info["grids"][i]
                                            - info["directions"][0, i])))
                       for i in range(2)]])
    theta, std, _ = refine_directions(info["steering"], info["grids"], peaks, Y,
                                      info["noise_variance"])
    # Deterministic ML for one source: maximise sum_l |a^H y_l|^2 / ||a||^2.
    u0, v0 = theta[0]
    us = u0 + np.linspace(-2e-3, 2e-3, 81)
    vs = v0 + np.linspace(-2e-3, 2e-3, 81)
    a, b = ula_steering(8, us), ula_steering(8, vs)
    tensor = Y.reshape(-1, 8, 8)
    power = np.sum(np.abs(np.einsum("iu,lij,jv->luv", a.conj(), tensor, b.conj()))
                   ** 2, axis=0)
    i, j = np.unravel_index(np.argmax(power), power.shape)
    assert_allclose([us[i], vs[j]], theta[0], atol=1e-4)


def test_find_peaks_orders_local_maxima():
    power = np.zeros((5, 6))
    power[1, 1], power[1, 2], power[4, 4] = 2.0, 1.0, 3.0
    assert find_peaks(power.ravel(), [5, 6]).tolist() == [[4, 4], [1, 1]]
    assert find_peaks(np.zeros(30), [5, 6]).shape == (0, 2)


def test_steering_errors_name_the_argument():
    Y, factors, info = make_ura_doa(2, random_state=0)
    with pytest.raises(ValueError, match="grids is required"):
        KroneckerSBL(factors, steering=info["steering"]).fit(Y)
    with pytest.raises(ValueError, match=r"steering\[1\]\(grids\[1\]\)"):
        KroneckerSBL(factors, steering=info["steering"],
                     grids=[info["grids"][0], info["grids"][1] + 0.01]).fit(Y)
    with pytest.raises(TypeError, match=r"steering\[0\] must be callable"):
        KroneckerSBL(factors, steering=[None, info["steering"][1]],
                     grids=info["grids"]).fit(Y)
    with pytest.raises(ValueError, match="one entry per mode"):
        KroneckerSBL(factors, steering=info["steering"][:1],
                     grids=info["grids"]).fit(Y)


def test_no_steering_no_direction_attributes():
    Y, factors, info = make_ura_doa(2, random_state=0)
    model = KroneckerSBL(factors).fit(Y)
    assert not hasattr(model, "directions_")


def test_ula_grids_wrap_around():
    from sparsesolve.kronecker._offgrid import periods

    _, factors, info = make_ura_doa(1, random_state=0)
    assert periods(info["steering"], info["grids"]) == [2.0, 2.0]
    uneven = [np.sort(np.r_[info["grids"][0][:-1], 0.9]), info["grids"][1]]
    assert periods(info["steering"], uneven)[0] is None
    # A source between the last grid point and the first (v = 0.93, i.e.
    # between 0.875 and -1 = 1): its power straddles the ends of the grid.
    rng = np.random.RandomState(0)
    a = np.kron(ula_steering(8, [0.1])[:, 0], ula_steering(8, [0.93])[:, 0])
    s = rng.standard_normal((10, 1)) + 1j * rng.standard_normal((10, 1))
    Y = s @ a[None, :] + 0.01 * (rng.standard_normal((10, 64))
                                 + 1j * rng.standard_normal((10, 64)))
    model = KroneckerSBL(factors, steering=info["steering"],
                         grids=info["grids"]).fit(Y)
    assert model.directions_.shape == (1, 2)
    assert_allclose(model.directions_[0], [0.1, 0.93], atol=2e-3)
