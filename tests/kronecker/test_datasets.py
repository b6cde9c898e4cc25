"""make_kronecker_sparse: shapes, Kronecker support, SNR, noiseless model."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve.datasets import make_kronecker_sparse


@pytest.mark.parametrize("complex_values", [False, True])
@pytest.mark.parametrize("values", ["rank1", "kronsupp"])
def test_noiseless_measurements_follow_the_kronecker_model(complex_values, values):
    shapes = [(3, 5), (4, 6), (2, 3)]
    Y, factors, X = make_kronecker_sparse(shapes, [2, 3, 1], snr_db=None,
                                          n_samples=3, complex=complex_values,
                                          values=values, random_state=0)
    assert Y.shape == (3, 24)
    assert X.shape == (3, 90)
    assert [A.shape for A in factors] == shapes
    assert np.iscomplexobj(Y) == complex_values
    dense = np.kron(np.kron(factors[0], factors[1]), factors[2])
    assert_allclose(Y, X @ dense.T, rtol=1e-12, atol=1e-12)
    # The support is the Kronecker product of per-mode supports, shared by rows.
    support = (X[0] != 0).reshape(5, 6, 3)
    per_mode = [support.any(axis=(1, 2)), support.any(axis=(0, 2)),
                support.any(axis=(0, 1))]
    assert [int(s.sum()) for s in per_mode] == [2, 3, 1]
    assert np.array_equal(support, np.einsum("i,j,k->ijk", *per_mode))
    assert all(np.array_equal(X[0] != 0, row != 0) for row in X)
    if values == "rank1":
        tensor = X[0].reshape(5, 6, 3)[per_mode[0]][:, per_mode[1]][:, :, per_mode[2]]
        assert np.linalg.matrix_rank(tensor.reshape(2, -1), tol=1e-10) == 1


def test_snr_is_respected():
    Y, factors, X = make_kronecker_sparse([(20, 30), (20, 30)], 4, snr_db=10,
                                          n_samples=20, random_state=1)
    clean = X @ np.kron(*factors).T
    measured = 10 * np.log10(np.mean(clean**2) / np.mean((Y - clean) ** 2))
    assert abs(measured - 10) < 0.2  # 8000 noise samples: std about 0.07 dB


def test_seed_gives_reproducible_data():
    first = make_kronecker_sparse([(3, 4)], 2, 20, random_state=3)
    second = make_kronecker_sparse([(3, 4)], 2, 20, random_state=3)
    for a, b in zip(first, second, strict=True):
        assert_allclose(np.asarray(a), np.asarray(b))


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode_shapes"):
        make_kronecker_sparse([(3, 0)], 1, 10)
    with pytest.raises(ValueError, match="n_nonzero_per_mode"):
        make_kronecker_sparse([(3, 4)], 5, 10)
    with pytest.raises(ValueError, match="values"):
        make_kronecker_sparse([(3, 4)], 1, 10, values="dense")
    with pytest.raises(ValueError, match="snr_db"):
        make_kronecker_sparse([(3, 4)], 1, float("nan"))
