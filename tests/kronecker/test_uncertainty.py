"""Posterior standard deviations and log evidence of KroneckerSBL.

Both are checked against the dense formulas on small cases: the posterior
covariance ``Sigma = (A_S^H A_S / s2 + Gamma_S^-1)^-1`` on the support and the
Gaussian marginal ``y ~ N(0, s2 I + A_S Gamma_S A_S^H)``, built from the
explicit Kronecker product (``np.kron``) and inverted directly.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from sparsesolve.datasets import make_kronecker_sparse
from sparsesolve.kronecker import KroneckerOperator, KroneckerSBL


def _fitted(method, complex_data):
    Y, factors, _ = make_kronecker_sparse(
        [(5, 8), (6, 8)], n_nonzero_per_mode=2, n_samples=3, snr_db=20,
        complex=complex_data, random_state=4,
    )
    model = KroneckerSBL(factors, method=method).fit(Y)
    return model, Y, KroneckerOperator(factors).todense()


def _dense_reference(model, A):
    gamma = np.asarray(model.prior_variance())
    support = gamma > 0
    A_S = A[:, support]
    s2 = model.noise_variance_
    precision = A_S.conj().T @ A_S / s2 + np.diag(1.0 / gamma[support])
    Sigma = np.linalg.inv(precision)
    C = s2 * np.eye(A.shape[0]) + (A_S * gamma[support]) @ A_S.conj().T
    return support, Sigma, C


@pytest.mark.parametrize("method", ["svd", "am", "classic"])
@pytest.mark.parametrize("complex_data", [False, True])
def test_std_matches_the_dense_posterior(method, complex_data):
    model, Y, A = _fitted(method, complex_data)
    support, Sigma, _ = _dense_reference(model, A)
    codes, std = model.transform(Y, return_std=True)
    assert std.shape == codes.shape
    expected = np.zeros(A.shape[1])
    expected[support] = np.sqrt(np.real(np.diag(Sigma)))
    # rtol: the E-step's diag(Sigma) = gamma - (...) subtracts in double
    # precision; 1e-6 leaves room for that cancellation at 20 dB.
    assert_allclose(std, np.broadcast_to(expected, codes.shape), rtol=1e-6,
                    atol=1e-12)
    assert_allclose(model.posterior_variance_, expected**2, rtol=1e-6, atol=1e-14)
    # The mean is the dense posterior mean too.
    mean = (Y @ A[:, support].conj()) / model.noise_variance_ @ Sigma.T
    assert_allclose(codes[:, support], mean, rtol=1e-6, atol=1e-10)
    assert np.all(std[:, ~support] == 0)
    single, single_std = model.transform(Y[0], return_std=True)
    assert single.shape == single_std.shape == (A.shape[1],)


@pytest.mark.parametrize("method", ["svd", "classic"])
@pytest.mark.parametrize("complex_data", [False, True])
def test_score_is_the_mean_log_evidence(method, complex_data):
    model, Y, A = _fitted(method, complex_data)
    _, _, C = _dense_reference(model, A)
    if complex_data:
        _, log_det = np.linalg.slogdet(C)
        quadratic = np.real(np.einsum("ij,ij->i", Y.conj(), np.linalg.solve(C, Y.T).T))
        expected = np.mean(-(A.shape[0] * np.log(np.pi) + log_det + quadratic))
    else:
        expected = np.mean(multivariate_normal(np.zeros(A.shape[0]), C).logpdf(Y))
    assert_allclose(model.score(Y), expected, rtol=1e-8)


def test_score_prefers_the_model_that_generated_the_data():
    # Held-out measurements from the same prior are likelier under the
    # learned model than under one with a wrong, much larger noise variance.
    Y, factors, _ = make_kronecker_sparse(
        [(6, 10), (8, 10)], n_nonzero_per_mode=2, n_samples=8, snr_db=25,
        random_state=1,
    )
    learned = KroneckerSBL(factors).fit(Y[:4])
    noisy = KroneckerSBL(factors, noise_variance=10 * learned.noise_variance_)
    assert learned.score(Y[4:]) > noisy.fit(Y[:4]).score(Y[4:])
