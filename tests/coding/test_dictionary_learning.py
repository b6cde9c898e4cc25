"""LqDictionaryLearning: recovery of a planted dictionary, API, devices."""

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparsesolve import _backend
from sparsesolve.coding import LqDictionaryLearning
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
    learner = LqDictionaryLearning(
        8, penalty=penalty, alpha=0.2, batch_size=64, n_epochs=15,
        learning_rate=1.0, random_state=0,
    ).fit(X)
    assert_allclose(np.linalg.norm(learner.components_, axis=1), 1.0)
    # Seven of eight atoms within ~8 degrees at least (l0 from zero starts
    # can leave one atom stuck in a poor local minimum).
    assert np.sort(_match(learner.components_, atoms))[1] > 0.99
    assert learner.loss_curve_[-1] < learner.loss_curve_[0]
    assert learner.n_iter_ == 15
    assert learner.n_steps_ == 15 * int(np.ceil(600 / 64))


def test_partial_fit_matches_fit_one_batch_at_a_time():
    X, _ = _planted(1, n_samples=128)
    batches = [X[:64], X[64:]]
    online = LqDictionaryLearning(8, alpha=0.05, random_state=0)
    for batch in batches:
        online.partial_fit(batch)
    full = LqDictionaryLearning(8, alpha=0.05, batch_size=64, n_epochs=1,
                                shuffle=False, random_state=0).fit(X)
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
    learner = LqDictionaryLearning(8, alpha=0.05, n_epochs=2, random_state=0)
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
    # l1: the CPU's support refit (absent from the batched path) reaches the
    # same unique minimiser, while a non-convex penalty may stop at another
    # stationary point.
    kwargs = dict(penalty="l1", alpha=0.2, n_epochs=1, batch_size=32,
                  random_state=0, tol=1e-10, max_iter=2000)
    host = LqDictionaryLearning(8, **kwargs).fit(X)
    strict = LqDictionaryLearning(8, **kwargs).fit(array_api_strict.asarray(X))
    assert _backend.get_namespace(strict.components_) is array_api_strict
    assert_allclose(_backend.to_numpy(strict.components_), host.components_,
                    atol=1e-5)


@pytest.mark.gpu
def test_cupy_fit_matches_cpu():
    cupy = _backend.require_cupy()
    X, _ = _planted(5, n_samples=256)
    # l1, as in the array-api-strict test above: a non-convex penalty may stop
    # at another stationary point when reductions run in another order.
    kwargs = dict(penalty="l1", alpha=0.05, n_epochs=2, random_state=0, tol=1e-10,
                  max_iter=2000)
    host = LqDictionaryLearning(8, **kwargs).fit(X)
    device = LqDictionaryLearning(8, **kwargs).fit(cupy.asarray(X))
    assert_allclose(device.components_.get(), host.components_, atol=1e-5)
