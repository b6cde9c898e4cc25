"""Regressions found by the hostile-input suite after the validation merges."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning


def test_psd_shift_of_explicit_zeros_is_zero():
    from sparsesolve.clustering import psd_shift

    W = sp.csr_array((np.zeros(2), ([0, 1], [1, 0])), shape=(2, 2))
    assert psd_shift(W) == 0.0


def test_array_and_irs_problem_info_pickles():
    from sparsesolve.datasets import make_irs_channel, make_ura_doa

    Y, factors, x, info = make_irs_channel(snr_db=10, random_state=0)
    again = pickle.loads(pickle.dumps(info))
    np.testing.assert_allclose(again.channels_of(x), info.channels_of(x))
    _, _, doa = make_ura_doa(2, random_state=0)
    steering = pickle.loads(pickle.dumps(doa["steering"]))
    np.testing.assert_allclose(steering[0](np.array([0.1])),
                               doa["steering"][0](np.array([0.1])))


def test_fitted_multilevel_solver_pickles_and_refuses_zero_matrix():
    from sparsesolve.poisson import DeepConjugateDirection, poisson_matrix

    A = poisson_matrix((8, 8, 8))
    model = DeepConjugateDirection().fit(A)
    b = np.ones(A.shape[0])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).solve(b),
                                  model.solve(b))
    Z = sp.csr_matrix(A, copy=True)
    Z.data[:] = 0
    with pytest.raises(ValueError, match="A is all zero"):
        DeepConjugateDirection().fit(Z)


def test_incomplete_cholesky_refuses_empty_and_zero_pivot_rows():
    from sparsesolve.poisson import IncompleteCholesky

    with pytest.raises(ValueError, match="A is empty"):
        IncompleteCholesky(sp.csr_matrix((0, 0)))
    with pytest.raises(ValueError, match="zero diagonal entry in a nonzero row"):
        IncompleteCholesky(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]])))
    # A zero row (a solid cell) stays allowed.
    IncompleteCholesky(sp.csr_matrix(np.diag([2.0, 0.0, 2.0])))


def test_kronecker_sbl_with_a_zero_atom_stays_finite():
    from sparsesolve.kronecker import KroneckerSBL

    rng = np.random.default_rng(0)
    A1, A2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 4))
    A2[:, 3] = 0.0
    Y = rng.standard_normal((2, 9))
    model = KroneckerSBL([A1, A2], max_iter=30)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model.fit(Y)
    assert np.isfinite(model.score(Y))
    assert np.isfinite(model.noise_variance_)


def test_argument_errors_name_the_argument(tmp_path):
    from sparsesolve.unmixing import read_envi, vca
    from sparsesolve.utils import estimator_checks_for, to_cpu

    with pytest.raises(FileNotFoundError, match="header file"):
        read_envi(tmp_path / "missing.hdr")
    with pytest.raises(TypeError, match="estimator_class must be an estimator class"):
        estimator_checks_for(1.0)
    with pytest.raises(TypeError, match="to_cpu: estimator"):
        to_cpu(1.0)
    with pytest.raises(ValueError, match="X is empty"):
        vca(np.zeros((0, 5)), 3)


def test_ula_steering_is_periodic_past_the_ends():
    # KroneckerSBL's off-grid refinement evaluates the steering just past
    # u = +-1 (finite differences at the grid's ends) and wraps back.
    from sparsesolve.datasets import ula_steering

    np.testing.assert_allclose(ula_steering(6, [1.0 + 1e-7, 2.5]),
                               ula_steering(6, [-1.0 + 1e-7, 0.5]), atol=1e-12)
