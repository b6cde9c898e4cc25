"""Hostile inputs to KroneckerSBL and KroneckerOperator: scales, zeros, sizes."""

import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.datasets import make_kronecker_sparse
from sparsesolve.kronecker import KroneckerOperator, KroneckerSBL


def _problem(complex_values=False):
    return make_kronecker_sparse([(6, 10), (8, 10)], n_nonzero_per_mode=2,
                                 snr_db=30, complex=complex_values, random_state=0)


@pytest.mark.parametrize("complex_values", [False, True])
@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e-30, 1e30, 1e150, 1e300])
def test_sbl_is_scale_equivariant(scale, complex_values):
    # Regression: data scaled by 1e300 gave NaN codes (and 1e+-150 wrong ones).
    Y, factors, _ = _problem(complex_values)
    reference = KroneckerSBL(factors).fit(Y)
    scaled = KroneckerSBL(factors).fit(scale * Y)
    # Far from magnitude one EM runs on power-of-two normalised data, from
    # unit variances in those units: the two fits then agree to the EM
    # tolerance (1e-4 on the variances), not to rounding.
    atol = 1e-6 * np.abs(reference.coef_).max()
    assert_allclose(scaled.coef_ / scale, reference.coef_, atol=atol)
    codes, std = scaled.transform(scale * Y, return_std=True)
    ref_codes, ref_std = reference.transform(Y, return_std=True)
    assert_allclose(codes / scale, ref_codes, atol=atol)
    assert_allclose(std / scale, ref_std, rtol=1e-4, atol=atol)
    np.testing.assert_array_equal(scaled.support_, reference.support_)
    n_real = Y.shape[1] * (2 if complex_values else 1)
    assert_allclose(scaled.score(scale * Y) + n_real * math.log(scale),
                    reference.score(Y), rtol=1e-6)
    if 1e-150 <= scale <= 1e150:  # variances are squares: in float64 range
        assert_allclose(scaled.noise_variance_ / scale**2,
                        reference.noise_variance_, rtol=1e-4)
        assert_allclose(scaled.prior_variance() / scale**2,
                        reference.prior_variance(),
                        atol=1e-4 * reference.prior_variance().max())


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_sbl_dictionary_scale_moves_into_codes(scale):
    Y, factors, _ = _problem()
    reference = KroneckerSBL(factors).fit(Y)
    scaled = KroneckerSBL([factors[0] * scale, factors[1]]).fit(Y)
    assert_allclose(scaled.coef_ * scale, reference.coef_,
                    atol=1e-6 * np.abs(reference.coef_).max())


def test_sbl_all_zero_measurements_give_zero_codes():
    # Regression: "zero-size array to reduction operation maximum".
    Y, factors, _ = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KroneckerSBL(factors).fit(np.zeros_like(Y))
    assert np.all(model.coef_ == 0)
    assert np.all(model.transform(Y) == 0)


def test_sbl_complex_posterior_matches_dense_formula():
    # Complex data are supported: the posterior mean is
    # Gamma A^H (s2 I + A Gamma A^H)^-1 y for the learned Gamma and s2.
    Y, factors, X = _problem(complex_values=True)
    model = KroneckerSBL(factors).fit(Y)
    assert np.iscomplexobj(model.coef_)
    A = np.kron(factors[0], factors[1])
    gamma = model.prior_variance()
    covariance = model.noise_variance_ * np.eye(A.shape[0]) + (A * gamma) @ A.conj().T
    expected = (gamma[:, None] * A.conj().T @ np.linalg.solve(covariance, Y.T)).T
    assert_allclose(model.transform(Y), expected, atol=1e-8 * np.abs(expected).max())
    assert np.linalg.norm(model.coef_ - X) < 0.1 * np.linalg.norm(X)


def test_sbl_noise_variance_out_of_range_for_the_data():
    Y, factors, _ = _problem()
    with pytest.raises(ValueError, match="noise_variance=.* out of float64 range"):
        KroneckerSBL(factors, noise_variance=1e-300).fit(Y * 1e300)


def test_sbl_refuses_absurd_grid():
    factors = [np.ones((2, 10**5)), np.ones((2, 10**5)), np.ones((2, 10**4))]
    with pytest.raises(ValueError, match="dictionaries asks for .* fewer columns"):
        KroneckerSBL(factors, method="classic").fit(np.ones(8))


@pytest.mark.parametrize("method", ["svd", "am", "classic"])
def test_sbl_warns_naming_max_iter(method):
    Y, factors, _ = _problem()
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        KroneckerSBL(factors, method=method, max_iter=2).fit(Y)


def test_operator_refuses_nan_and_non_numbers():
    _, factors, _ = _problem()
    op = KroneckerOperator(factors)
    with pytest.raises(ValueError, match="x contains NaN"):
        op @ np.full(100, np.nan)
    with pytest.raises(TypeError, match="x must hold real or complex numbers"):
        op @ np.array(["a"] * 100)
    with pytest.raises(ValueError, match="factors\\[0\\] contains NaN"):
        KroneckerOperator([np.full((2, 2), np.nan)])
    # Complex vectors through real factors keep their imaginary part.
    x = np.arange(100.0) + 1j * np.ones(100)
    assert_allclose(op @ x, np.kron(factors[0], factors[1]) @ x)


def test_sbl_refuses_an_all_zero_dictionary():
    # Used to fit and score NaN.
    Y, factors, _ = _problem()
    with pytest.raises(ValueError, match=r"dictionaries\[0\] is all zeros"):
        KroneckerSBL([np.zeros_like(factors[0]), factors[1]]).fit(Y)
