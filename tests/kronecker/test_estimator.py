"""KroneckerSBL: reduction to classical SBL, recovery, dtypes, devices, errors."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from sparsesolve.datasets import make_kronecker_sparse
from sparsesolve.kronecker import KroneckerOperator, KroneckerSBL
from sparsesolve.kronecker._mstep import coupling_matrix


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Two BLAS threads on a shared 2-core runner make the dense eigh of the
    # classical baseline tens of times slower; one thread keeps tests quick.
    with threadpool_limits(1):
        yield


def _classical_sbl_reference(A, Y, noise_variance, n_iter):
    """Textbook EM-SBL (Tipping / Wipf-Rao) with coefficient-space inverses."""
    gamma = np.ones(A.shape[1])

    def posterior(gamma):
        Sigma = np.linalg.inv(A.conj().T @ A / noise_variance + np.diag(1 / gamma))
        mean = (Sigma @ A.conj().T @ Y.T / noise_variance).T
        return mean, np.real(np.diag(Sigma))

    for _ in range(n_iter):
        mean, variance = posterior(gamma)
        gamma = variance + np.mean(np.abs(mean) ** 2, axis=0)
    return posterior(gamma)[0], gamma


@pytest.mark.parametrize("method", ["svd", "am", "classic"])
@pytest.mark.parametrize("complex_values", [False, True])
def test_one_mode_reduces_to_classical_sbl(method, complex_values):
    rng = np.random.RandomState(0)
    A = rng.standard_normal((10, 16))
    if complex_values:
        A = A + 1j * rng.standard_normal(A.shape)
    x = np.zeros(16)
    x[[2, 9]] = [1.5, -2.0]
    Y = (A @ x + 0.05 * rng.standard_normal(10))[None, :]
    n_iter = 25
    # The reduction is a property of the EM iteration, so the refinement
    # (which moves away from the EM point when that lowers the penalised
    # cost) is switched off.
    model = KroneckerSBL([A], method=method, noise_variance=0.01, max_iter=n_iter,
                         tol=0.0, prune_threshold=0.0, refine=False,
                         prior="kronecker")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: fixed count
        model.fit(Y)
    ref_coef, ref_gamma = _classical_sbl_reference(A, Y, 0.01, n_iter)
    # Same iterations in a different algebra (eigendecompositions vs inverses):
    # agreement to round-off amplified by the conditioning of small gammas.
    assert_allclose(model.coef_, ref_coef, rtol=1e-7, atol=1e-9)
    assert_allclose(model.prior_variance(), ref_gamma, rtol=1e-6, atol=1e-10)
    assert model.n_iter_ == n_iter


def _dense_kronecker_svd_reference(factors, Y, noise_variance, n_iter):
    """SVD-KroSBL with dense algebra: N x N inverse and numpy's SVD."""
    A = np.kron(factors[0], factors[1])
    sizes = [f.shape[1] for f in factors]
    gamma = np.ones(A.shape[1])
    for _ in range(n_iter):
        Sigma = np.linalg.inv(A.conj().T @ A / noise_variance + np.diag(1 / gamma))
        mean = (Sigma @ A.conj().T @ Y.T / noise_variance).T
        Lambda = np.real(np.diag(Sigma)) + np.mean(np.abs(mean) ** 2, axis=0)
        u, s, vt = np.linalg.svd(Lambda.reshape(sizes))
        gamma = np.kron(np.abs(u[:, 0]), s[0] * np.abs(vt[0]))
    Sigma = np.linalg.inv(A.conj().T @ A / noise_variance + np.diag(1 / gamma))
    return (Sigma @ A.conj().T @ Y.T / noise_variance).T, gamma


@pytest.mark.parametrize("complex_values", [False, True])
def test_svd_kronsbl_matches_dense_reference(complex_values):
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 7)], 2, snr_db=20,
                                          n_samples=2, complex=complex_values,
                                          random_state=1)
    # A check of the EM iterations themselves: no refinement afterwards.
    model = KroneckerSBL(factors, method="svd", noise_variance=0.05, max_iter=15,
                         tol=0.0, prune_threshold=0.0, refine=False,
                         prior="kronecker")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Y)
    ref_coef, ref_gamma = _dense_kronecker_svd_reference(factors, Y, 0.05, 15)
    assert_allclose(model.coef_, ref_coef, rtol=1e-6, atol=1e-8)
    assert_allclose(model.prior_variance(), ref_gamma, rtol=1e-6, atol=1e-10)


def _oracle_nmse(Y, factors, X):
    support = np.flatnonzero(X[0])
    A = KroneckerOperator(factors).todense()[:, support]
    solution = np.linalg.lstsq(A, Y[0], rcond=None)[0]
    estimate = np.zeros_like(X[0])
    estimate[support] = solution
    return _nmse(estimate, X[0])


def _nmse(estimate, truth):
    return np.sum(np.abs(estimate - truth) ** 2) / np.sum(np.abs(truth) ** 2)


@pytest.mark.parametrize("method", ["svd", "am"])
@pytest.mark.parametrize("complex_values", [False, True])
def test_recovery_is_close_to_oracle_least_squares(method, complex_values):
    shapes = [(6, 10), (7, 10), (8, 10)]
    Y, factors, X = make_kronecker_sparse(shapes, 2, snr_db=25,
                                          complex=complex_values, random_state=3)
    clean = KroneckerOperator(factors).matvec(X[0])
    # SVD-KroSBL learns the noise; AM-KroSBL gets it (AM with learned noise
    # converges slowly and keeps spurious slabs: see the benchmark notes).
    noise_variance = None if method == "svd" else np.mean(np.abs(clean) ** 2) / 10**2.5
    model = KroneckerSBL(factors, method=method, noise_variance=noise_variance).fit(Y)
    oracle = _oracle_nmse(Y, factors, X)
    # Within 3 dB of the oracle that knows the support.
    assert _nmse(model.coef_[0], X[0]) < 2.0 * oracle
    assert np.array_equal(model.support_, X[0] != 0)
    assert_allclose(model.transform(Y), model.coef_, rtol=1e-10, atol=1e-12)


def test_kronecker_structure_beats_classical_sbl():
    # Mean over three seeds, so that one draw cannot decide the comparison.
    errors = {"svd": [], "classic": []}
    for seed in range(3):
        Y, factors, X = make_kronecker_sparse([(6, 10), (7, 10), (8, 10)], 2,
                                              snr_db=20, random_state=seed)
        for method, found in errors.items():
            model = KroneckerSBL(factors, method=method).fit(Y)
            found.append(_nmse(model.coef_[0], X[0]))
    assert np.mean(errors["svd"]) < 0.5 * np.mean(errors["classic"])


def test_learned_noise_variance_is_close_to_truth():
    Y, factors, X = make_kronecker_sparse([(8, 10), (9, 10), (10, 10)], 2,
                                          snr_db=15, random_state=5)
    clean = KroneckerOperator(factors).matvec(X[0])
    true_variance = np.mean(clean**2) * 10 ** (-1.5)
    model = KroneckerSBL(factors).fit(Y)
    assert 0.5 * true_variance < model.noise_variance_ < 2.0 * true_variance


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64),
     (np.complex64, np.complex64), (np.complex128, np.complex128)],
)
def test_precision_is_preserved(dtype, expected):
    complex_values = np.issubdtype(dtype, np.complexfloating)
    Y, factors, X = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=30,
                                          complex=complex_values, random_state=6)
    model = KroneckerSBL(factors).fit(Y.astype(dtype))
    assert model.coef_.dtype == expected
    assert model.transform(Y.astype(dtype)).dtype == expected
    assert model.gammas_[0].dtype == np.real(np.zeros(1, dtype)).dtype
    reference = KroneckerSBL(factors).fit(Y).coef_
    # Single precision only rounds input and output; the work is in double.
    assert_allclose(model.coef_, reference, rtol=1e-3, atol=1e-4)


def test_one_dimensional_measurement_and_attributes():
    Y, factors, X = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=30,
                                          random_state=7)
    Y_copy = Y.copy()
    model = KroneckerSBL(factors).fit(Y[0])
    assert np.array_equal(Y, Y_copy)  # the caller's array is not modified
    assert model.coef_.shape == (36,)
    assert model.transform(Y[0]).shape == (36,)
    assert model.transform(Y).shape == (1, 36)
    assert [g.shape for g in model.gammas_] == [(6,), (6,)]
    assert model.support_.dtype == bool
    assert np.array_equal(model.support_, model.prior_variance() > 0)
    assert model.n_iter_ == len(model.history_)
    assert model.get_feature_names_out().shape == (36,)


def test_multiple_measurement_vectors_share_the_support():
    Y, factors, X = make_kronecker_sparse([(4, 8), (5, 8)], 2, snr_db=30,
                                          n_samples=5, values="kronsupp",
                                          random_state=8)
    model = KroneckerSBL(factors, method="am").fit(Y)
    assert model.coef_.shape == (5, 64)
    assert np.array_equal(model.support_, X[0] != 0)
    assert _nmse(model.coef_, X) < 1e-2


def test_pattern_coupling_with_zero_beta_matches_plain_am():
    Y, factors, X = make_kronecker_sparse([(5, 8), (6, 8)], 2, snr_db=25,
                                          random_state=9)
    # The refinement leaves coupled modes alone, so it would treat the two
    # fits differently; the claim is about the coupled EM update.
    plain = KroneckerSBL(factors, method="am", noise_variance=0.01,
                         refine=False, prior="kronecker").fit(Y)
    coupled = KroneckerSBL(factors, method="am", noise_variance=0.01,
                           coupling=[0.0, None], refine=False).fit(Y)
    # beta = 0 makes C = I; only the relative 1e-5 offset differs.
    assert_allclose(coupled.coef_, plain.coef_, rtol=1e-2, atol=1e-3)


def _steering(n_antennas, n_grid):
    """ULA steering dictionary on a uniform grid of spatial frequencies."""
    grid = np.pi * (2 * np.arange(n_grid) / n_grid - 1)
    return np.exp(1j * np.outer(np.arange(n_antennas), grid)) / np.sqrt(n_antennas)


def test_pattern_coupled_prior_stays_in_the_coupled_cone():
    # PC-KroSBL constrains a coupled mode to eps + C_beta g with g >= 0.
    # Without pruning the learned factor must be reproduced by nonnegative
    # least squares on C_beta up to the small offset eps.
    rng = np.random.RandomState(13)
    factors = [_steering(6, 12), _steering(5, 10)]
    parts = [np.zeros(12, complex), np.zeros(10, complex)]
    parts[0][4:7] = rng.standard_normal(3) + 1j
    parts[1][2:5] = rng.standard_normal(3) - 1j
    y = np.kron(*factors) @ np.kron(*parts)
    y = y + 0.05 * (rng.standard_normal(30) + 1j * rng.standard_normal(30))
    model = KroneckerSBL(factors, method="am", coupling=[0.8, None],
                         noise_variance=5e-3, prune_threshold=0.0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(y)
    gamma = model.gammas_[0]
    _, residual = nnls(coupling_matrix(12, 0.8), gamma)
    assert residual <= 1e-4 * np.linalg.norm(gamma)
    # An uncoupled fit is generally not in that cone (the check can fail).
    free = KroneckerSBL(factors, method="am", noise_variance=5e-3,
                        prune_threshold=0.0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        free.fit(y)
    _, free_residual = nnls(coupling_matrix(12, 0.8), free.gammas_[0])
    assert free_residual > 1e-3 * np.linalg.norm(free.gammas_[0])


@pytest.mark.parametrize("method", ["svd", "am", "classic"])
def test_fit_in_another_namespace_matches_numpy(foreign_namespace, method):
    ns = foreign_namespace
    Y, factors, _ = make_kronecker_sparse([(3, 5), (4, 5), (4, 6)], 2, snr_db=25,
                                          complex=True, random_state=10)
    reference = KroneckerSBL(factors, method=method).fit(Y)
    model = KroneckerSBL([ns.asarray(f) for f in factors],
                         method=method).fit(ns.asarray(Y))
    assert ns.is_own(model.coef_)
    # Same iterations. array-api-strict runs NumPy underneath (rounding
    # only); the GPU runs reductions in another order.
    rtol, atol = (1e-10, 1e-12) if ns.name == "array_api_strict" else (1e-6, 1e-9)
    assert_allclose(ns.to_numpy(model.coef_), reference.coef_, rtol=rtol, atol=atol)


def test_convergence_warning_when_max_iter_is_too_small():
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=20,
                                          random_state=11)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        KroneckerSBL(factors, max_iter=2).fit(Y)


def test_bad_input_gets_clear_errors():
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=20,
                                          random_state=12)
    with pytest.raises(ValueError, match=r"Y has 19 measurements.*prod\(m_i\) = 20"):
        KroneckerSBL(factors).fit(Y[:, :19])
    bad = Y.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KroneckerSBL(factors).fit(bad)
    with pytest.raises(ValueError, match=r"dictionaries\[1\] must be a 2-D array"):
        KroneckerSBL([factors[0], np.ones(6)]).fit(Y)
    with pytest.raises(ValueError, match=r"dictionaries\[0\] contains NaN"):
        KroneckerSBL([np.full((4, 6), np.nan), factors[1]]).fit(Y)
    with pytest.raises(ValueError, match="one beta"):
        KroneckerSBL(factors, coupling=[0.5]).fit(Y)
    with pytest.raises(ValueError, match="coupling"):
        KroneckerSBL(factors, method="classic", coupling=0.5).fit(Y)
    with pytest.raises(ValueError, match="method"):
        KroneckerSBL(factors, method="omp").fit(Y)
    model = KroneckerSBL(factors).fit(Y)
    with pytest.raises(ValueError, match="features"):
        model.transform(Y[:, :10])


def test_works_inside_a_pipeline():
    from sklearn.pipeline import make_pipeline

    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=25,
                                          n_samples=2, random_state=14)
    codes = make_pipeline(KroneckerSBL(factors)).fit_transform(Y)
    assert_allclose(codes, KroneckerSBL(factors).fit(Y).coef_)
