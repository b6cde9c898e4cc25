"""Per-entry prior on the Kronecker candidate set (prior="free" / "auto")."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve.datasets import make_ura_doa
from sparsesolve.kronecker import KroneckerSBL
from sparsesolve.kronecker._entries import addition_gains, refine_entries


def _cost(A, gamma, s2, Y):
    """Reference type-II cost n log|C| + sum y^H C^-1 y with an explicit C."""
    C = s2 * np.eye(A.shape[0]) + (A * gamma) @ A.conj().T
    _, logdet = np.linalg.slogdet(C)
    quad = np.real(np.einsum("li,ij,lj->", Y.conj(), np.linalg.inv(C), Y))
    return Y.shape[0] * logdet + quad


def _problem(seed=0):
    rng = np.random.RandomState(seed)
    factors = [rng.standard_normal((5, 7)) + 1j * rng.standard_normal((5, 7)),
               rng.standard_normal((6, 8)) + 1j * rng.standard_normal((6, 8))]
    return rng, factors


def test_addition_gains_match_the_explicit_cost_change():
    rng, factors = _problem()
    A_full = np.kron(factors[0], factors[1])
    active = np.array([3, 17, 40])
    gamma = np.array([1.5, 0.7, 2.0])
    Y = (rng.standard_normal((4, 30)) + 1j * rng.standard_normal((4, 30)))
    s2 = 0.3
    gain, best = addition_gains(factors, A_full[:, active], gamma, s2, Y, np)
    before = _cost(A_full[:, active], gamma, s2, Y)
    checked = 0
    for n in range(A_full.shape[1]):
        if n in active or best[n] == 0:
            continue
        columns = A_full[:, np.append(active, n)]
        after = _cost(columns, np.append(gamma, best[n]), s2, Y)
        assert_allclose(gain[n], before - after, rtol=1e-8, atol=1e-8)
        # ``best`` is the minimiser along that entry's variance.
        for factor in (0.8, 1.25):
            other = _cost(columns, np.append(gamma, factor * best[n]), s2, Y)
            assert other >= after - 1e-9
        checked += 1
    assert checked > 5


def test_refine_entries_is_a_fixed_point_of_mackay_sbl():
    rng, factors = _problem(1)
    A = np.kron(factors[0], factors[1])[:, :20]
    x = np.zeros((3, 20), dtype=complex)
    x[:, [2, 11]] = rng.standard_normal((3, 2)) * 3
    Y = x @ A.T + 0.05 * rng.standard_normal((3, 30))
    keep, gamma, log_evidence, s2 = refine_entries(A, np.ones(20), 0.0025, Y, np,
                                                   tol=1e-10, max_iter=2000)
    assert set(keep.tolist()) >= {2, 11}
    # Independent fixed-point check with an explicit posterior covariance.
    B = A[:, keep]
    Sigma = np.linalg.inv(B.conj().T @ B / s2 + np.diag(1 / gamma))
    mu = Y.conj() @ B @ Sigma.T.conj() / s2  # rows: (Sigma B^H y)^H ... conj
    mu = (Sigma @ B.conj().T @ Y.T / s2).T
    power = np.mean(np.abs(mu) ** 2, axis=0)
    assert_allclose(gamma, power / (1 - np.real(np.diag(Sigma)) / gamma), rtol=1e-5)
    assert_allclose(-log_evidence, _cost(B, gamma, s2, Y) + 3 * 30 * np.log(np.pi),
                    rtol=1e-9)


def _fit(layout, k, seed, **kwargs):
    Y, factors, info = make_ura_doa(k, layout=layout, snr_db=25, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = KroneckerSBL(factors, **kwargs).fit(Y)
    return Y, factors, info, model


@pytest.mark.parametrize("seed", [3, 4])
def test_auto_prior_follows_the_support(seed):
    *_, independent = _fit("independent", 3, seed)
    assert independent.prior_ == "free"
    *_, separable = _fit("separable", 4, seed)
    assert separable.prior_ == "kronecker"


def test_free_prior_drops_the_cross_terms():
    Y, factors, info, model = _fit("independent", 3, 5)
    kron = KroneckerSBL(factors, prior="kronecker").fit(Y)
    support = model.support_.reshape(16, 16)
    # Not a Kronecker product: the product of its row and column sets is larger.
    rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
    assert support.sum() < rows.size * cols.size
    # Every source keeps an active entry within one cell (off-grid leakage
    # may add neighbours); the Kronecker fit of the same data does not.
    cells = np.rint((info["directions"] + 1) / info["cell"]).astype(int) % 16

    def covered(mask):
        return all(mask[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].any()
                   for i, j in cells)

    assert covered(support)
    assert not covered(kron.support_.reshape(16, 16))
    # The fitted state answers transform / score / variances consistently.
    assert_allclose(model.transform(Y), model.coef_)
    gamma = model.prior_variance()
    on = gamma > 0
    A = np.kron(factors[0], factors[1])[:, on]
    reference = -(_cost(A, gamma[on], model.noise_variance_, Y)
                  + Y.size * np.log(np.pi)) / Y.shape[0]
    assert_allclose(model.score(Y), reference, rtol=1e-9)
    Sigma = np.linalg.inv(A.conj().T @ A / model.noise_variance_
                          + np.diag(1 / gamma[on]))
    assert_allclose(model.posterior_variance_[on], np.real(np.diag(Sigma)),
                    rtol=1e-7)
    _, std = model.transform(Y, return_std=True)
    assert_allclose(std[0, on] ** 2, model.posterior_variance_[on])


def test_free_prior_is_never_chosen_by_hand_against_the_evidence():
    # prior="free" always keeps the per-entry model; "auto" picks the lower
    # penalised cost, which it records.
    Y, factors, info, model = _fit("separable", 4, 6)
    assert set(model.prior_cost_) == {"kronecker", "free"}
    assert model.prior_ == min(model.prior_cost_, key=model.prior_cost_.get)
    free = KroneckerSBL(factors, prior="free").fit(Y)
    assert free.prior_ == "free"


def test_one_mode_keeps_the_kronecker_path():
    rng = np.random.RandomState(0)
    A = rng.standard_normal((10, 16))
    x = np.zeros(16)
    x[[2, 9]] = [1.5, -2.0]
    Y = A @ x + 0.05 * rng.standard_normal(10)
    model = KroneckerSBL([A], noise_variance=0.0025).fit(Y)
    assert model.prior_ == "kronecker"
