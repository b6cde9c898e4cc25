"""LqDictionaryLearning: recovery of a planted dictionary, API, devices."""

import warnings

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparsesolve import _backend
from sparsesolve.coding import LqDictionaryLearning, LqSparseCoder
from sparsesolve.coding._dictionary import codes_lipschitz


def _planted(seed, n_samples=600, n_atoms=8, n_features=16, n_active=2):
    rng = np.random.RandomState(seed)
    atoms = rng.standard_normal((n_atoms, n_features))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((n_samples, n_atoms))
    for row in codes:
        row[rng.choice(n_atoms, n_active, replace=False)] = (
            rng.choice([-1, 1], n_active) * rng.uniform(1, 2, n_active))
    X = codes @ atoms + 0.01 * rng.standard_normal((n_samples, n_features))
    return X, atoms


def _match(learned, planted):
    # Best absolute cosine of each planted atom with a learned one.
    return np.abs(planted @ learned.T).max(axis=1)


@pytest.mark.parametrize("penalty", ["l1", "cel0", "l1/2", "l0"])
def test_recovers_a_planted_dictionary(penalty):
    X, atoms = _planted(0)
    # Fixed length (both stopping rules off): 15 epochs.
    learner = LqDictionaryLearning(
        8, penalty=penalty, alpha=0.2, batch_size=64, max_iter=15, tol=0,
        max_no_improvement=None, learning_rate=1.0, random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        learner.fit(X)
    assert_allclose(np.linalg.norm(learner.components_, axis=1), 1.0)
    # Seven of eight atoms within ~8 degrees at least (l0 can leave one atom
    # stuck in a poor local minimum).
    assert np.sort(_match(learner.components_, atoms))[1] > 0.99
    assert learner.loss_curve_[-1] < learner.loss_curve_[0]
    assert learner.n_iter_ == 15
    assert learner.n_steps_ == 15 * int(np.ceil(600 / 64))


@pytest.mark.parametrize("penalty", ["l1", "l0"])
def test_stops_early_on_an_easy_problem(penalty):
    # A planted dictionary with many samples per atom is learned in a few
    # epochs; the default stopping rules then end the fit long before
    # max_iter, without a warning, and n_iter_ counts the epochs run.
    # (Measured: 6 epochs of 200; the smoothed objective stops improving.)
    X, atoms = _planted(0, n_samples=2000)
    learner = LqDictionaryLearning(8, penalty=penalty, alpha=0.2, batch_size=64,
                                   max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        learner.fit(X)
    assert 1 < learner.n_iter_ < 20
    steps_per_epoch = int(np.ceil(2000 / 64))
    assert (learner.n_iter_ - 1) * steps_per_epoch < learner.n_steps_
    assert learner.n_steps_ <= learner.n_iter_ * steps_per_epoch
    assert np.sort(_match(learner.components_, atoms))[1] > 0.99
    # Without the rules it runs every epoch.
    fixed = LqDictionaryLearning(8, penalty=penalty, alpha=0.2, batch_size=64,
                                 max_iter=learner.n_iter_ + 2, tol=0,
                                 max_no_improvement=None, random_state=0)
    with pytest.warns(ConvergenceWarning):
        fixed.fit(X)
    assert fixed.n_iter_ == learner.n_iter_ + 2


def test_early_stopping_rules_follow_scikit_learn():
    from sparsesolve.coding._estimator import _EarlyStopping

    # tol: the atoms' move, judged from the second step on.
    rule = _EarlyStopping(tol=1e-3, max_no_improvement=None, weight=0.5)
    assert not rule.update(1.0, 0.0)  # first step: not judged
    assert not rule.update(1.0, 2e-3)
    assert rule.update(1.0, 1e-3)
    # max_no_improvement: consecutive steps whose smoothed loss is no lower
    # than the best so far (weight 0.5: 1.0, 0.75, 0.875, 0.9375, ...).
    rule = _EarlyStopping(tol=0, max_no_improvement=2, weight=0.5)
    losses = [9.0, 1.0, 0.5, 1.0, 1.0]
    assert [rule.update(loss, 1.0) for loss in losses] == [
        False, False, False, False, True]
    assert rule.no_improvement == 2


def test_tiny_max_iter_warns_naming_max_iter():
    X, _ = _planted(0)
    learner = LqDictionaryLearning(8, alpha=0.2, batch_size=64, max_iter=1,
                                   random_state=0)
    with pytest.warns(ConvergenceWarning, match="within max_iter=1 epochs.*"
                      "increase max_iter"):
        learner.fit(X)
    assert learner.n_iter_ == 1


@pytest.mark.parametrize("penalty", ["l1", "l0", "l1/2", "cel0"])
def test_transform_is_the_sparse_coder_of_the_learned_atoms(penalty):
    # One coder for both estimators: same start (continuation), same
    # stopping rule, same defaults.
    X, _ = _planted(6, n_samples=300)
    learner = LqDictionaryLearning(8, penalty=penalty, alpha=0.2, max_iter=3,
                                   random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        learner.fit(X)
    coder = LqSparseCoder(learner.components_, penalty=penalty, alpha=0.2)
    assert_allclose(learner.transform(X), coder.transform(X), rtol=0, atol=0)
    options = dict(transform_max_iter=7, transform_tol=1e-2,
                   transform_algorithm="ista", transform_init=None)
    learner.set_params(**options)
    coder.set_params(max_iter=7, tol=1e-2, algorithm="ista", init=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert_allclose(learner.transform(X), coder.transform(X), rtol=0, atol=0)
    with pytest.warns(ConvergenceWarning, match="increase transform_max_iter"):
        learner.set_params(transform_max_iter=1, transform_tol=0).transform(X)


def test_partial_fit_matches_fit_one_batch_at_a_time():
    X, _ = _planted(1, n_samples=128)
    batches = [X[:64], X[64:]]
    online = LqDictionaryLearning(8, alpha=0.05, random_state=0)
    for batch in batches:
        online.partial_fit(batch)
    full = LqDictionaryLearning(8, alpha=0.05, batch_size=64, max_iter=1,
                                shuffle=False, random_state=0)
    with pytest.warns(ConvergenceWarning):
        full.fit(X)
    # Same start (drawn from the first batch vs from X: equal seeds, but
    # different pools), so compare the number of steps and the unit norms,
    # and check that a second partial_fit changed the atoms.
    assert online.n_steps_ == full.n_steps_ == 2
    assert_allclose(np.linalg.norm(online.components_, axis=1), 1.0)
    before = online.components_.copy()
    online.partial_fit(X[:64])
    assert not np.allclose(before, online.components_)
    with pytest.raises(ValueError, match="features"):
        online.partial_fit(np.ones((4, 3)))


def test_float32_and_transform():
    X, _ = _planted(2, n_samples=200)
    learner = LqDictionaryLearning(8, alpha=0.05, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        learner.fit(X.astype(np.float32))
    assert learner.components_.dtype == np.float32
    codes = learner.transform(X[:5].astype(np.float32))
    assert codes.dtype == np.float32
    assert codes.shape == (5, 8)
    assert learner.atom_usage_.shape == (8,)


def test_codes_lipschitz_matches_spectral_norm():
    rng = np.random.RandomState(3)
    codes = rng.standard_normal((50, 10))
    assert_allclose(codes_lipschitz(codes, xp_numpy), np.linalg.norm(codes, 2) ** 2,
                    rtol=1e-3)


def test_array_api_strict_runs_and_matches_numpy():
    array_api_strict = pytest.importorskip("array_api_strict")
    X, _ = _planted(4, n_samples=64)
    # The same coder on every namespace (array-api-strict runs the host
    # kernel), default coding settings, a non-convex penalty.
    kwargs = dict(penalty="cel0", alpha=0.2, max_iter=2, batch_size=32,
                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        host = LqDictionaryLearning(8, **kwargs).fit(X)
        strict = LqDictionaryLearning(8, **kwargs).fit(array_api_strict.asarray(X))
    assert _backend.get_namespace(strict.components_) is array_api_strict
    assert_allclose(_backend.to_numpy(strict.components_), host.components_,
                    atol=1e-5)


@pytest.mark.gpu
def test_cupy_fit_matches_cpu():
    cupy = _backend.require_cupy()
    X, _ = _planted(5, n_samples=256)
    # The same row kernel on both devices with default coding settings; the
    # GPU's matrix products round differently, hence 1e-5 after two epochs.
    kwargs = dict(penalty="cel0", alpha=0.05, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        host = LqDictionaryLearning(8, **kwargs).fit(X)
        device = LqDictionaryLearning(8, **kwargs).fit(cupy.asarray(X))
    assert_allclose(device.components_.get(), host.components_, atol=1e-5)
