"""LqSparseCoder and the proximal-gradient solver against independent references."""

import warnings

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import SparseCoder
from sklearn.exceptions import ConvergenceWarning

from sparsesolve import _backend
from sparsesolve.coding import LqSparseCoder, threshold
from sparsesolve.coding._algorithm import encode, objective
from sparsesolve.coding._kernels import code_rows

PENALTIES = ["l1", "l0", "l1/2", "cel0"]


def _dictionary(rng, n_atoms=40, n_features=20):
    dictionary = rng.standard_normal((n_atoms, n_features))
    return dictionary / np.linalg.norm(dictionary, axis=1, keepdims=True)


def _signals(rng, dictionary, n_samples=30, n_active=3, noise=0.05):
    codes = np.zeros((n_samples, dictionary.shape[0]))
    for row in codes:
        row[rng.choice(dictionary.shape[0], n_active, replace=False)] = (
            rng.choice([-1, 1], n_active) * rng.uniform(1, 3, n_active))
    return codes @ dictionary + noise * rng.standard_normal(
        (n_samples, dictionary.shape[1]))


@pytest.mark.parametrize("algorithm", ["fista", "ista"])
def test_l1_matches_sklearn_lasso_objective(rng, algorithm):
    # Independent reference: scikit-learn's LARS lasso on the same problem,
    # whose transform_alpha is our alpha (same objective scaling). The
    # benchmark asks 1e-3 relative; a converged convex solve gets far closer.
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    alpha = 0.2
    reference = SparseCoder(dictionary, transform_algorithm="lasso_lars",
                            transform_alpha=alpha).transform(X)
    codes = LqSparseCoder(dictionary, penalty="l1", alpha=alpha, tol=1e-10,
                          max_iter=20000, algorithm=algorithm).transform(X)
    ours = objective(X, dictionary, codes, "l1", alpha, xp_numpy)
    theirs = objective(X, dictionary, reference, "l1", alpha, xp_numpy)
    assert abs(ours.sum() - theirs.sum()) <= 1e-6 * theirs.sum()
    assert np.all(ours <= theirs * (1 + 1e-6))


@pytest.mark.parametrize("penalty", PENALTIES)
def test_orthonormal_dictionary_gives_the_closed_form(rng, penalty):
    # With orthonormal atoms the problem splits per coefficient: the code is
    # the proximal map of the correlations at step 1 (CEL0 then reduces to
    # hard thresholding since a^2 step = 1).
    basis, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    X = 2 * rng.standard_normal((15, 12))
    alpha = 0.4
    codes = LqSparseCoder(basis, penalty=penalty, alpha=alpha,
                          algorithm="ista").transform(X)
    assert_allclose(codes, threshold(X @ basis.T, penalty, alpha), atol=1e-10)


@pytest.mark.parametrize("penalty", PENALTIES)
def test_codes_are_proximal_gradient_fixed_points(rng, penalty):
    # Stationarity: c = prox(c - step * grad f(c)) at the returned codes.
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    coder = LqSparseCoder(dictionary, penalty=penalty, alpha=0.1, tol=1e-12,
                          max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        codes = coder.fit_transform(X)
    step = 1 / np.linalg.norm(dictionary, 2) ** 2
    gradient = codes @ dictionary @ dictionary.T - X @ dictionary.T
    norms = np.linalg.norm(dictionary, axis=1) if penalty == "cel0" else None
    again = threshold(codes - step * gradient, penalty, 0.1, step, atom_norms=norms)
    assert_allclose(again, codes, atol=1e-6)


def test_tiny_problem_reaches_the_brute_force_l0_minimum(rng):
    # Exhaustive search over all supports of size <= 3 of an 8-atom
    # dictionary in 6 dimensions gives the global l0 minimiser; CEL0 has the
    # same global minimisers (Soubies et al. 2015) and, on this well
    # separated noiseless-ish problem, our coder started from zero finds
    # them. (Which start finds the global minimiser is problem-dependent: on
    # 200 such problems the zero start missed it 39 times, the default
    # continuation 51 times, the l1 start 30 times.)
    from itertools import combinations

    dictionary = _dictionary(rng, n_atoms=8, n_features=6)
    X = _signals(rng, dictionary, n_samples=5, n_active=2, noise=0.01)
    alpha = 0.3
    codes = LqSparseCoder(dictionary, penalty="cel0", alpha=alpha, init=None,
                          tol=1e-10, max_iter=5000).transform(X)
    for x, code in zip(X, codes, strict=False):
        best = 0.5 * x @ x
        for size in (1, 2, 3):
            for support in combinations(range(8), size):
                atoms = dictionary[list(support)]
                coef = np.linalg.lstsq(atoms.T, x, rcond=None)[0]
                value = 0.5 * np.sum((x - coef @ atoms) ** 2) + alpha * size
                best = min(best, value)
        residual = x - code @ dictionary
        ours = 0.5 * np.sum(residual**2) + alpha * np.count_nonzero(code)
        assert ours <= best + 1e-6


def _run_rows(X, dictionary, penalty, alpha, max_iter, tol, refit, init=None):
    # The row kernel on its own, for its per-sample iteration counts.
    gram = dictionary @ dictionary.T
    step = 1 / np.linalg.norm(dictionary, 2) ** 2
    norms = np.linalg.norm(dictionary, axis=1)
    correlations = X @ dictionary.T
    init = np.zeros_like(correlations) if init is None else init
    return code_rows(correlations, gram, norms, np.sum(X * X, axis=1), init,
                     penalty, alpha, step, max_iter, tol, True, refit,
                     min(dictionary.shape))


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("algorithm", ["ista", "fista"])
def test_row_kernel_matches_the_plain_iteration(rng, reference_codes, penalty,
                                               algorithm):
    # Without its support refit the kernel computes the iterates of the
    # plain vectorised proximal-gradient loop of the reference_codes fixture
    # (for the non-convex penalties, the same path to the same stopping
    # point). l1 stops on its duality gap instead, so it is run to rounding
    # (tol=1e-15) and compared with the reference's unique limit.
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary, n_samples=8)
    tol = 1e-15 if penalty == "l1" else 1e-11
    ours, _, _ = encode(X, dictionary, penalty, 0.1, xp=xp_numpy, refit=False,
                        max_iter=3000, tol=tol, algorithm=algorithm)
    reference = reference_codes(X, dictionary, penalty, 0.1, max_iter=3000,
                                tol=1e-11, algorithm=algorithm)
    assert_allclose(ours, reference, atol=1e-7)


@pytest.mark.parametrize("penalty", PENALTIES)
def test_support_refit_returns_fixed_points_and_the_l1_minimiser(rng, penalty):
    # The refit ends a sample at the stationary point of its settled signs:
    # for l1 (convex) that is the unique minimiser the plain iteration
    # reaches; for every penalty it is a fixed point of the prox-gradient
    # map, found in fewer iterations.
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary, n_samples=16)
    gram = dictionary @ dictionary.T
    step = 1 / np.linalg.norm(dictionary, 2) ** 2
    norms = np.linalg.norm(dictionary, axis=1)
    runs = {refit: _run_rows(X, dictionary, penalty, 0.1, 5000, 1e-10, refit)
            for refit in (False, True)}
    codes, iterations, converged = runs[True]
    assert converged.all()
    assert iterations.sum() < runs[False][1].sum()
    gradient = codes @ gram - X @ dictionary.T
    again = threshold(codes - step * gradient, penalty, 0.1, step,
                      atom_norms=norms if penalty == "cel0" else None)
    assert_allclose(again, codes, atol=1e-8)
    if penalty == "l1":
        # The refit lands on the minimiser; the plain iteration stopped at
        # a duality gap of 1e-10 ||x||^2, within 1e-4 of it (sqrt of the
        # gap over the smallest curvature on the support).
        assert_allclose(codes, runs[False][0], atol=1e-4)


@pytest.mark.parametrize("penalty", PENALTIES)
def test_array_api_strict_input_gives_the_numpy_codes_with_defaults(rng, penalty):
    # One algorithm on every namespace: array-api-strict input runs the same
    # row kernel on the host (the backend's host fallback), so its codes are
    # the NumPy codes, default settings (continuation start, refit, tol).
    # Every parameter but the penalty at its default (alpha=1 too: the
    # signals are scaled so that the codes keep their atoms).
    array_api_strict = pytest.importorskip("array_api_strict")
    dictionary = _dictionary(rng)
    X = 3.0 * _signals(rng, dictionary)
    coder = LqSparseCoder(array_api_strict.asarray(dictionary), penalty=penalty)
    codes = coder.fit_transform(array_api_strict.asarray(X))
    assert _backend.get_namespace(codes) is array_api_strict
    expected = LqSparseCoder(dictionary, penalty=penalty).transform(X)
    assert np.count_nonzero(expected) >= 2 * X.shape[0]  # not a trivial code
    assert_allclose(_backend.to_numpy(codes), expected, rtol=0, atol=1e-6)


def test_per_sample_early_stopping(rng):
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary, n_samples=4)
    X[1] = 0.0  # nothing to code: stops after one iteration
    _, iterations, converged = _run_rows(X, dictionary, "l1", 0.1, 1000, 1e-6,
                                         True)
    assert converged.all()
    assert iterations[1] == 1
    assert iterations.max() > 1


def test_l1_stops_on_the_duality_gap_and_matches_sklearn_lasso(rng):
    # Independent reference: scikit-learn's coordinate-descent lasso
    # (sparse_encode) on the same data, whose alpha is ours; our l1 rule is
    # its rule (duality gap <= tol ||x||^2), so at equal tol both certify the
    # same accuracy of the objective.
    from sklearn.decomposition import sparse_encode

    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    alpha = 0.2
    reference = sparse_encode(X, dictionary, algorithm="lasso_cd", alpha=alpha,
                              max_iter=100000)
    for tol in (1e-4, 1e-8):
        codes, _, n_unconverged = encode(X, dictionary, "l1", alpha, xp=xp_numpy,
                                         refit=False, tol=tol, max_iter=20000)
        assert n_unconverged == 0
        ours = objective(X, dictionary, codes, "l1", alpha, xp_numpy)
        best = objective(X, dictionary, reference, "l1", alpha, xp_numpy)
        # The gap bounds the distance to the optimum, so no sample is more
        # than tol ||x||^2 above the reference (itself within rounding of
        # the optimum here).
        assert np.all(ours - best <= tol * np.sum(X * X, axis=1) + 1e-10)
    # Near the optimum, the codes themselves agree.
    assert_allclose(codes, reference, atol=1e-4)
    # With the default refit the minimiser itself is reached.
    codes, _, _ = encode(X, dictionary, "l1", alpha, xp=xp_numpy, tol=1e-8)
    assert_allclose(codes, reference, atol=1e-6)


def test_warm_start_continues_from_previous_codes(rng):
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    coder = LqSparseCoder(dictionary, penalty="cel0", alpha=0.5, warm_start=True)
    first = coder.transform(X)
    # A few steps only, so that where the iteration starts still shows.
    coder.set_params(alpha=0.2, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        second = coder.transform(X)
        cold = LqSparseCoder(dictionary, penalty="cel0", alpha=0.2,
                             max_iter=3).transform(X)
    expected, _, _ = encode(X, dictionary, "cel0", 0.2, xp=xp_numpy, init=first,
                            max_iter=3, tol=1e-4)
    assert_allclose(second, expected)
    assert not np.allclose(second, cold)


def test_step_is_recomputed_when_the_dictionary_changes(rng):
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    coder = LqSparseCoder(dictionary, penalty="l1", alpha=0.1).fit(X)
    step = coder._dictionary_cache.step
    assert_allclose(step, 1 / np.linalg.norm(dictionary, 2) ** 2)
    dictionary *= 2.0  # edited in place by the user
    coder.transform(X)
    assert_allclose(coder._dictionary_cache.step, step / 4)


def test_float32_stays_float32_and_inputs_are_not_modified(rng):
    dictionary = _dictionary(rng).astype(np.float32)
    X = _signals(rng, dictionary.astype(np.float64)).astype(np.float32)
    saved = X.copy(), dictionary.copy()
    for penalty in PENALTIES:
        codes = LqSparseCoder(dictionary, penalty=penalty, alpha=0.1).transform(X)
        assert codes.dtype == np.float32
        codes64 = LqSparseCoder(dictionary.astype(np.float64), penalty=penalty,
                                alpha=0.1).transform(X.astype(np.float64))
        # float32 rounding moves an l0-type code across a threshold only
        # rarely: compare reconstructions, not supports.
        error32 = np.linalg.norm(X - codes @ dictionary)
        error64 = np.linalg.norm(X - codes64 @ dictionary)
        assert error32 <= 1.05 * error64 + 1e-3
    assert_allclose(X, saved[0])
    assert_allclose(dictionary, saved[1])


def test_nonconvergence_warns(rng):
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        LqSparseCoder(dictionary, penalty="l1", alpha=0.01, max_iter=2).transform(X)


def test_bad_input_is_rejected(rng):
    dictionary = _dictionary(rng)
    with pytest.raises(ValueError, match="different numbers of features"):
        LqSparseCoder(dictionary).fit(np.ones((3, 7)))
    with pytest.raises(ValueError, match="penalty"):
        LqSparseCoder(dictionary, penalty="l2").fit(np.ones((3, 20)))
    with pytest.raises(ValueError, match="dictionary must be a 2-D"):
        LqSparseCoder(np.ones(20)).fit(np.ones((3, 20)))
    with pytest.raises(ValueError, match="NaN"):
        LqSparseCoder(np.full((4, 20), np.nan)).fit(np.ones((3, 20)))


def test_inverse_transform_rebuilds_signals(rng):
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary, noise=0.0)
    coder = LqSparseCoder(dictionary, penalty="cel0", alpha=0.01, tol=1e-8,
                          max_iter=3000)
    rebuilt = coder.inverse_transform(coder.transform(X))
    assert np.linalg.norm(X - rebuilt) <= 0.05 * np.linalg.norm(X)


@pytest.mark.gpu
def test_cupy_codes_match_cpu_with_defaults(rng):
    # One algorithm on both devices: the same row kernel compiled for the
    # GPU, from the same (continuation) start, refit included. Matrix
    # products on the GPU round differently, so equality is to 1e-6 (an
    # l0-type threshold crossed differently would show as a jump of order 1).
    cupy = _backend.require_cupy()
    dictionary = _dictionary(rng)
    X = _signals(rng, dictionary)
    for penalty in PENALTIES:
        cpu = LqSparseCoder(dictionary, penalty=penalty, alpha=0.1).transform(X)
        gpu = LqSparseCoder(cupy.asarray(dictionary), penalty=penalty, alpha=0.1,
                            ).transform(cupy.asarray(X))
        assert_allclose(gpu.get(), cpu, atol=1e-6)


@pytest.mark.cudasim
@pytest.mark.parametrize("penalty", PENALTIES)
def test_cuda_row_kernel_matches_the_cpu_driver(rng, penalty):
    # The same row bodies compiled for the GPU (or run by numba's CUDA
    # simulator) give the CPU driver's codes, refit included.
    from sparsesolve.coding import _kernels

    dictionary = _dictionary(rng, n_atoms=16, n_features=8)
    X = _signals(rng, dictionary, n_samples=5, n_active=2)
    expected = _run_rows(X, dictionary, penalty, 0.1, 200, 1e-8, True)
    gram = dictionary @ dictionary.T
    arrays = [X @ dictionary.T, gram, np.linalg.norm(dictionary, axis=1),
              np.sum(X * X, axis=1)]
    codes = np.zeros_like(arrays[0])
    n_iter = np.zeros(5, dtype=np.int64)
    converged = np.zeros(5, dtype=np.int8)
    step = 1 / np.linalg.norm(dictionary, 2) ** 2
    scalars = (_kernels.PENALTY_CODES[penalty], 0.1, step, 200, 1e-8, 1, 1, 8)
    rows = _backend.kernel("code_sample")
    if _backend.cuda_simulator_enabled():
        rows.run_cuda(5, *arrays, codes, n_iter, converged, *scalars)
    else:
        cupy = _backend.require_cupy()
        device = [cupy.asarray(a) for a in (*arrays, codes, n_iter, converged)]
        rows.run_cuda(5, *device, *scalars)
        codes, n_iter, converged = (a.get() for a in device[4:])
    assert_allclose(codes, expected[0], atol=1e-10)
    np.testing.assert_array_equal(n_iter, expected[1])
    np.testing.assert_array_equal(converged, expected[2])


def test_penalty_values_follow_their_definitions(rng):
    from sparsesolve.coding._algorithm import penalty_value

    codes = rng.standard_normal((6, 5)) * (rng.uniform(size=(6, 5)) < 0.6)
    norms = rng.uniform(0.5, 1.5, 5)
    alpha = 0.3
    magnitude = np.abs(codes)
    root = np.sqrt(2 * alpha)
    # CEL0 (Soubies et al. 2015): alpha - (a^2 / 2)(|c| - sqrt(2 alpha)/a)^2 inside
    # |c| <= sqrt(2 alpha)/a, alpha beyond.
    cel0 = np.where(magnitude <= root / norms,
                    alpha - norms**2 / 2 * (magnitude - root / norms) ** 2, alpha)
    expected = {
        "l1": alpha * magnitude.sum(1),
        "l0": alpha * (codes != 0).sum(1),
        "l1/2": alpha * np.sqrt(magnitude).sum(1),
        "cel0": cel0.sum(1),
    }
    for penalty, values in expected.items():
        got = penalty_value(codes, penalty, alpha, xp_numpy,
                            atom_norms=norms if penalty == "cel0" else None)
        assert_allclose(got, values, atol=1e-12)
