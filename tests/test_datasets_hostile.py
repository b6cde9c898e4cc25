"""Hostile arguments to the dataset generators: named errors, no huge allocations."""

import numpy as np
import pytest

from sparsesolve import datasets


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: datasets.make_hyperspectral(10**6, 10**6), "n_rows and n_cols asks"),
        (lambda: datasets.make_measured_hyperspectral(10**6, 10**6),
         "n_rows and n_cols asks"),
        (lambda: datasets.make_image_patches(n_patches=10**12), "n_patches asks"),
        (lambda: datasets.make_kronecker_sparse([(10**4, 10**5)] * 2, 2, 20),
         "mode_shapes and n_samples asks"),
        (lambda: datasets.make_ura_doa(n_snapshots=10**10),
         "array_shape and n_snapshots asks"),
        (lambda: datasets.ula_steering(10**10, [0.1]), "n_elements asks"),
        (lambda: datasets.make_irs_channel(10, n_irs_elements=10**6, grid_size=10**4),
         "n_irs_elements and grid_size asks"),
        (lambda: datasets.make_completion_problem(10**9, 10**9, 2, 0.5),
         "density asks"),
        (lambda: datasets.make_fewshot_episodes(
            np.ones((100, 2)), np.repeat(np.arange(5), 20), n_episodes=10**10),
         "n_episodes asks"),
        (lambda: datasets.make_poisson_problem((10**4,) * 3), "shape asks"),
    ],
)
def test_generators_refuse_absurd_sizes(call, match):
    # Used to be a MemoryError (or minutes of work) deep inside NumPy.
    with pytest.raises(ValueError, match=match + ".* more than this machine"):
        call()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: datasets.ula_steering(4, [0.1 + 1j]), TypeError,
         "direction_cosines is complex"),
        (lambda: datasets.ula_steering(4, [np.nan]), ValueError,
         "direction_cosines contains NaN"),
        (lambda: datasets.ula_steering(0, [0.1]), ValueError, "'n_elements'"),
        (lambda: datasets.make_ura_doa(array_shape=(0, 8)), ValueError,
         "array_shape must be a pair"),
        (lambda: datasets.make_ura_doa(snr_db=np.nan), ValueError, "'snr_db'"),
        (lambda: datasets.make_image_patches(np.ones((1, 20, 20)) + 1j,
                                             patch_size=(4, 4), n_patches=3),
         TypeError, r"images\[0\] is complex"),
        (lambda: datasets.make_image_patches(np.full((1, 20, 20), np.nan),
                                             patch_size=(4, 4), n_patches=3),
         ValueError, r"images\[0\] contains NaN"),
        (lambda: datasets.make_hyperspectral(5, 5, corrupted_bands=[np.nan]),
         TypeError, "corrupted_bands must hold integer"),
        (lambda: datasets.make_hyperspectral(5, 5, dirichlet_alpha=0.0), ValueError,
         "'dirichlet_alpha'"),
        (lambda: datasets.make_kronecker_sparse([(4, 6)], 1, 10, complex="yes"),
         ValueError, "'complex'"),
        (lambda: datasets.make_poisson_problem((4, 0)), ValueError,
         "positive ints"),
        (lambda: datasets.make_poisson_problem((4, 4), rhs="x"), ValueError, "'rhs'"),
        (lambda: datasets.load_mnist("x"), ValueError, "'subset'"),
        (lambda: datasets.load_movielens_100k(as_frame="no"), ValueError,
         "'as_frame'"),
        (lambda: datasets.load_earthlib_spectra(measured_only=2), ValueError,
         "'measured_only'"),
        (lambda: datasets.make_fewshot_episodes(np.ones((10, 2)), np.arange(10),
                                                n_way=0), ValueError, "'n_way'"),
    ],
)
def test_generators_name_the_bad_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_measured_hyperspectral_refuses_more_endmembers_than_classes():
    pytest.importorskip("earthlib")
    # Regression: an IndexError from a boolean mask of the wrong length.
    with pytest.raises(ValueError, match="n_endmembers=1000 exceeds"):
        datasets.make_measured_hyperspectral(5, 5, n_endmembers=1000)
