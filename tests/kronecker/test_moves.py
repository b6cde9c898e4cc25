"""Support refinement by marginal-likelihood slab moves (``refine=True``)."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from threadpoolctl import threadpool_limits

from sparsesolve._backend import get_namespace
from sparsesolve.datasets import make_kronecker_sparse
from sparsesolve.kronecker import KroneckerOperator, KroneckerSBL, _moves

xp = get_namespace(np.ones(1))


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _random_problem(seed, shapes, n_samples, complex_values):
    rng = np.random.RandomState(seed)

    def draw(shape):
        out = rng.standard_normal(shape)
        return out + 1j * rng.standard_normal(shape) if complex_values else out

    factors = [draw(shape) for shape in shapes]
    gammas = [rng.uniform(0.1, 2.0, n) * (rng.uniform(size=n) < 0.6)
              for _, n in shapes]
    for gamma in gammas:
        gamma[0] = 1.0  # at least one active slab per mode
    M = int(np.prod([m for m, _ in shapes]))
    return factors, gammas, draw((n_samples, M))


def _dense_cost(factors, gammas, noise_variance, Y):
    A = KroneckerOperator(factors).todense()
    gamma = gammas[0]
    for g in gammas[1:]:
        gamma = np.kron(gamma, g)
    C = noise_variance * np.eye(A.shape[0]) + (A * gamma) @ A.conj().T
    _, logdet = np.linalg.slogdet(C)
    quadratic = np.real(np.trace(Y.conj() @ np.linalg.solve(C, Y.T)))
    return Y.shape[0] * logdet + quadratic


@pytest.mark.parametrize("complex_values", [False, True])
@pytest.mark.parametrize("shapes", [[(5, 7)], [(3, 5), (4, 6)],
                                    [(3, 5), (4, 6), (2, 4)]])
def test_type2_cost_matches_dense_formula(shapes, complex_values):
    factors, gammas, Y = _random_problem(0, shapes, 2, complex_values)
    cost = _moves.type2_cost(factors, gammas, 0.3, Y, xp)
    assert_allclose(cost, _dense_cost(factors, gammas, 0.3, Y), rtol=1e-10)


@pytest.mark.parametrize("complex_values", [False, True])
@pytest.mark.parametrize("n_samples", [1, 3])
def test_slab_cost_change_is_exact(complex_values, n_samples):
    # The diagonal form of one slab's update must give exactly the change of
    # the type-II cost for adding, re-estimating and deleting that slab.
    shapes = [(3, 5), (4, 6), (2, 4)]
    factors, gammas, Y = _random_problem(1, shapes, n_samples, complex_values)
    state = _moves._State(factors, gammas, 0.3, Y, xp)
    before = state.cost()
    rotated, precision = state.spectrum()
    for mode in range(3):
        q, e = state.statistics(mode, rotated, precision)
        for j in range(len(gammas[mode])):
            for new in (0.0, 0.4, 3.0):
                changed = [g.copy() for g in gammas]
                changed[mode][j] = new
                after = _moves.type2_cost(factors, changed, 0.3, Y, xp)
                delta = np.array([[new - gammas[mode][j]]])
                predicted = _moves._cost_change(q[j:j + 1], e[j:j + 1], n_samples,
                                                delta)[0, 0]
                assert_allclose(after - before, predicted, rtol=1e-8,
                                atol=1e-9 * abs(before))


def test_penalty_is_extended_bic():
    assert_allclose(_moves.slab_penalty(100, 2, 30, False),
                    np.log(200) + np.log(30))
    # Complex data: -log evidence and two real observations per entry.
    assert_allclose(_moves.slab_penalty(100, 2, 30, True),
                    0.5 * (np.log(400) + np.log(30)))


@pytest.mark.parametrize("seed", range(6))
def test_refinement_never_raises_the_penalised_cost(seed):
    Y, factors, _ = make_kronecker_sparse([(4, 8), (5, 8), (6, 8)], 2, snr_db=20,
                                          random_state=seed)
    # The slab moves act on the Kronecker prior; the per-entry alternative
    # (which re-learns the noise) is tested in test_entries.py.
    plain = KroneckerSBL(factors, refine=False, prior="kronecker").fit(Y)
    refined = KroneckerSBL(factors, prior="kronecker").fit(Y)
    assert refined.noise_variance_ == plain.noise_variance_
    penalty = _moves.slab_penalty(120, 1, 24, False)

    def penalised(model):
        cost = _moves.type2_cost(factors, model.gammas_, model.noise_variance_,
                                 Y, xp)
        return cost + penalty * sum(int(np.count_nonzero(g)) for g in model.gammas_)

    assert penalised(refined) <= penalised(plain) + 1e-9 * abs(penalised(plain))
    if refined.n_moves_ == 0:
        assert np.array_equal(refined.support_, plain.support_)


def _known_noise_problem(shapes, n_nonzero, seed):
    Y, factors, X = make_kronecker_sparse(shapes, n_nonzero, snr_db=25,
                                          random_state=seed)
    clean = KroneckerOperator(factors).matvec(X[0])
    return Y, factors, X[0], float(np.mean(clean**2) * 10**-2.5)


def test_add_move_recovers_a_slab_that_pruning_dropped():
    # On this draw EM prunes one true slab (its variance falls below the
    # relative threshold early); its evidence gain is far above the penalty.
    Y, factors, x, noise = _known_noise_problem([(6, 10), (7, 10), (8, 10)], 3, 20)
    plain = KroneckerSBL(factors, noise_variance=noise, refine=False).fit(Y)
    refined = KroneckerSBL(factors, noise_variance=noise).fit(Y)
    truth = x != 0
    assert np.all(plain.support_ <= truth)
    assert plain.support_.sum() < truth.sum()
    assert np.array_equal(refined.support_, truth)
    assert refined.n_moves_ >= 1
    error = [np.sum((m.coef_[0] - x) ** 2) / np.sum(x**2) for m in (plain, refined)]
    assert error[1] < 0.5 * error[0]


def test_mode_rebuild_escapes_a_wrong_support():
    # Plain EM ends with four slabs in mode 2 (m_2 = 5), where the truth has
    # two: too many for that mode's support to be identifiable. Single-slab
    # moves alone stay in that basin; the rebuild of mode 2 finds the true
    # support, whose type-II cost is lower.
    Y, factors, x, noise = _known_noise_problem([(4, 8), (5, 8), (6, 8)], 2, 0)
    plain = KroneckerSBL(factors, noise_variance=noise, refine=False).fit(Y)
    assert int(np.count_nonzero(plain.gammas_[1])) == 4
    state = _moves._State(factors, [np.asarray(g) for g in plain.gammas_], noise,
                          Y, xp)
    penalty = _moves.slab_penalty(120, 1, 24, False)
    _moves._greedy_moves(state, penalty, [0, 1, 2], max_moves=500)
    moves_only = np.kron(np.kron(state.gammas[0] > 0, state.gammas[1] > 0),
                         state.gammas[2] > 0)
    assert not np.array_equal(moves_only, x != 0)

    refined = KroneckerSBL(factors, noise_variance=noise).fit(Y)
    assert np.array_equal(refined.support_, x != 0)
    costs = [_moves.type2_cost(factors, m.gammas_, noise, Y, xp)
             for m in (plain, refined)]
    assert costs[1] < costs[0]
    error = [np.sum((m.coef_[0] - x) ** 2) / np.sum(x**2) for m in (plain, refined)]
    assert error[1] < 0.1 * error[0]


def test_refine_has_no_effect_on_classic():
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=25,
                                          random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on = KroneckerSBL(factors, method="classic", noise_variance=0.01).fit(Y)
        off = KroneckerSBL(factors, method="classic", noise_variance=0.01,
                           refine=False).fit(Y)
    assert on.n_moves_ == 0
    assert_allclose(on.coef_, off.coef_)


def test_coupled_modes_keep_their_variances():
    Y, factors, _ = make_kronecker_sparse([(5, 8), (6, 8)], 2, snr_db=25,
                                          random_state=9)
    kwargs = dict(method="am", noise_variance=0.01, coupling=[0.5, None])
    on = KroneckerSBL(factors, **kwargs).fit(Y)
    off = KroneckerSBL(factors, refine=False, **kwargs).fit(Y)
    # Only the scale may move between modes; the coupled pattern is kept.
    first_on, first_off = np.asarray(on.gammas_[0]), np.asarray(off.gammas_[0])
    assert_allclose(first_on / np.linalg.norm(first_on),
                    first_off / np.linalg.norm(first_off), rtol=1e-12)


def test_refine_must_be_boolean():
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, snr_db=25,
                                          random_state=2)
    with pytest.raises(ValueError, match="refine"):
        KroneckerSBL(factors, refine="yes").fit(Y)


def test_refinement_runs_in_a_foreign_namespace():
    xps = pytest.importorskip("array_api_strict")
    Y, factors, x, noise = _known_noise_problem([(4, 8), (5, 8), (6, 8)], 2, 0)
    reference = KroneckerSBL(factors, noise_variance=noise).fit(Y)
    assert reference.n_moves_ >= 1
    device = xps.Device("device1")
    model = KroneckerSBL([xps.asarray(f, device=device) for f in factors],
                         noise_variance=noise).fit(xps.asarray(Y, device=device))
    assert model.n_moves_ == reference.n_moves_
    host = np.asarray(model.coef_.to_device(xps.Device("CPU_DEVICE")))
    assert_allclose(host, reference.coef_, rtol=1e-9, atol=1e-12)


def test_delete_moves_sparsify_an_unpruned_single_mode_fit():
    # One mode is classical SBL; without pruning EM keeps every column with a
    # small variance. Slabs that do not pay the penalty are deleted.
    rng = np.random.RandomState(0)
    A = rng.standard_normal((10, 16))
    x = np.zeros(16)
    x[[2, 9]] = [1.5, -2.0]
    Y = (A @ x + 0.05 * rng.standard_normal(10))[None, :]
    kwargs = dict(noise_variance=0.0025, prune_threshold=0.0)
    plain = KroneckerSBL([A], refine=False, **kwargs).fit(Y)
    refined = KroneckerSBL([A], **kwargs).fit(Y)
    assert plain.support_.sum() == 16
    assert np.array_equal(np.flatnonzero(refined.support_), [2, 9])
    assert refined.n_moves_ >= 14


@pytest.mark.parametrize("complex_values", [False, True])
def test_slab_gains_match_a_dense_scan(complex_values):
    # Independent reference: the dense type-II cost scanned over a fine grid
    # of variances (zero included) for each slab, everything else held.
    shapes = [(3, 5), (4, 6)]
    factors, gammas, Y = _random_problem(1, shapes, 2, complex_values)
    before = [g.copy() for g in gammas]
    gains = _moves.slab_gains(factors, gammas, 0.3, Y, xp, mode=1)
    assert all(np.array_equal(g, b) for g, b in zip(gammas, before, strict=True))
    base = _dense_cost(factors, gammas, 0.3, Y)
    scan = np.concatenate([[0.0], np.logspace(-5, 3, 801)])
    for j in range(6):
        costs = []
        for value in scan:
            trial = [g.copy() for g in gammas]
            trial[1][j] = value
            costs.append(_dense_cost(factors, trial, 0.3, Y))
        best = max(base - min(costs), 0.0)
        # The search reaches the optimum: at least the scan's best point, and
        # above it by no more than the scan's resolution (0.01 decade) allows.
        assert gains[j] >= best - 1e-8
        assert gains[j] <= best + 1e-4 * max(1.0, best)
