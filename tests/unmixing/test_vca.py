"""VCA finds the pure pixels, in both of its subspace modes."""

import array_api_strict
import numpy as np
import pytest

from sparsesolve import _backend
from sparsesolve.unmixing import vca


@pytest.mark.parametrize("snr_threshold", [None, np.inf, -np.inf])
@pytest.mark.parametrize("n_endmembers", [2, 3, 6])
def test_vca_finds_pure_pixels_without_noise(n_endmembers, snr_threshold,
                                             global_random_seed):
    # Noise-free mixtures with one pure pixel per endmember: the vertices of
    # the data simplex are exactly those pixels, whichever projection is used
    # (inf forces mean-removed PCA, -inf the projective projection).
    rng = np.random.RandomState(global_random_seed)
    endmembers = rng.rand(n_endmembers, 30)
    abundances = rng.dirichlet(np.ones(n_endmembers), size=300)
    pure = rng.choice(300, size=n_endmembers, replace=False)
    abundances[pure] = np.eye(n_endmembers)
    X = abundances @ endmembers
    found, indices = vca(X, n_endmembers, snr_threshold=snr_threshold,
                         random_state=global_random_seed)
    assert sorted(indices.tolist()) == sorted(pure.tolist())
    np.testing.assert_array_equal(found, X[indices])


def test_vca_array_api_strict_mirrors_namespace():
    rng = np.random.RandomState(0)
    endmembers = rng.rand(3, 10)
    abundances = rng.dirichlet(np.ones(3), size=50)
    abundances[:3] = np.eye(3)
    X = abundances @ endmembers
    found, indices = vca(array_api_strict.asarray(X), 3, random_state=0)
    assert _backend.get_namespace(found) is array_api_strict
    assert sorted(indices.tolist()) == [0, 1, 2]


def test_vca_rejects_bad_input():
    with pytest.raises(ValueError, match="n_endmembers=5 exceeds"):
        vca(np.ones((4, 10)), 5)
    with pytest.raises(ValueError, match="n_endmembers"):
        vca(np.ones((4, 10)), 0)
    with pytest.raises(ValueError, match="2-D"):
        vca(np.ones(10), 1)
