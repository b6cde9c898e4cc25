"""``LqSparseCoder(init="l1")``: non-convex coders started from lasso codes."""

import math
import warnings

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparsesolve import _backend
from sparsesolve.coding import LqSparseCoder, threshold
from sparsesolve.coding._algorithm import (
    encode,
    l1_start_alpha,
    objective,
)

NONCONVEX = ["l0", "l1/2", "cel0"]


@pytest.mark.parametrize("penalty", NONCONVEX)
def test_l1_weight_has_half_the_penalty_zeroing_threshold(penalty):
    # Independent of the rule's formula: find, with the proximal operator,
    # the correlation |x . d| below which the first step from zero keeps
    # nothing, and compare with twice the l1 weight (l1 zeroes |x . d| <= w).
    alpha, step = 0.3, 0.2
    weight = l1_start_alpha(penalty, alpha, step)
    if penalty == "l0":
        # l0's one-atom threshold (the exact minimiser of one coefficient,
        # step 1), where its minimiser jumps from zero.
        b = np.array([2 * weight * (1 - 1e-6), 2 * weight * (1 + 1e-6)])
        values = 0.5 * (b[:, None] - np.linspace(0, 3, 300001)) ** 2
        values[:, 1:] += alpha
        assert values[0].argmin() == 0
        assert values[1].argmin() > 0
        assert_allclose(2 * weight, math.sqrt(2 * alpha))
        return
    below = threshold(np.array([step * 2 * weight * (1 - 1e-6)]), penalty, alpha, step)
    above = threshold(np.array([step * 2 * weight * (1 + 1e-6)]), penalty, alpha, step)
    assert below[0] == 0
    assert above[0] != 0


def test_l1_start_lowers_the_cel0_objective_on_average(sparse_problem):
    differences = []
    for seed in range(6):
        X, dictionary = sparse_problem(seed)
        norms = np.linalg.norm(dictionary, axis=1)
        for alpha in (0.05, 0.2):
            values = {}
            for init in (None, "l1"):
                codes = LqSparseCoder(dictionary, penalty="cel0", alpha=alpha,
                                      init=init).transform(X)
                values[init] = objective(X, dictionary, codes, "cel0", alpha,
                                         xp_numpy, norms)
            differences.append(np.mean(values["l1"] - values[None]))
    assert np.mean(differences) < 0
    # Not a fluke of one problem: most of them improve.
    assert np.mean(np.asarray(differences) < 0) >= 0.5


@pytest.mark.parametrize("penalty", NONCONVEX)
def test_l1_start_equals_coding_from_the_lasso_codes(sparse_problem, penalty):
    X, dictionary = sparse_problem(0)
    alpha = 0.1
    step = 1 / np.linalg.norm(dictionary, 2) ** 2
    lasso = LqSparseCoder(dictionary, penalty="l1",
                          alpha=l1_start_alpha(penalty, alpha, step)).transform(X)
    expected, _, _ = encode(X, dictionary, penalty, alpha, xp=xp_numpy, init=lasso,
                            max_iter=500, tol=1e-4)
    codes = LqSparseCoder(dictionary, penalty=penalty, alpha=alpha,
                          init="l1").transform(X)
    assert_allclose(codes, expected)
    cold = LqSparseCoder(dictionary, penalty=penalty, alpha=alpha).transform(X)
    assert not np.allclose(codes, cold)


def test_l1_penalty_ignores_init(sparse_problem):
    X, dictionary = sparse_problem(1)
    codes = LqSparseCoder(dictionary, penalty="l1", alpha=0.1, init="l1").transform(X)
    expected = LqSparseCoder(dictionary, penalty="l1", alpha=0.1).transform(X)
    assert_allclose(codes, expected)


def test_float32_kept_and_inputs_not_modified(sparse_problem):
    X, dictionary = sparse_problem(2)
    X, dictionary = X.astype(np.float32), dictionary.astype(np.float32)
    saved = X.copy(), dictionary.copy()
    for penalty in NONCONVEX:
        coder = LqSparseCoder(dictionary, penalty=penalty, alpha=0.1, init="l1")
        codes = coder.transform(X)
        assert codes.dtype == np.float32
        codes64 = LqSparseCoder(dictionary.astype(np.float64), penalty=penalty,
                                alpha=0.1, init="l1").transform(X.astype(np.float64))
        error32 = np.linalg.norm(X - codes @ dictionary)
        error64 = np.linalg.norm(X - codes64 @ dictionary)
        assert error32 <= 1.05 * error64 + 1e-3
    np.testing.assert_array_equal(X, saved[0])
    np.testing.assert_array_equal(dictionary, saved[1])


def test_warm_start_codes_take_precedence_over_the_l1_start(sparse_problem):
    X, dictionary = sparse_problem(3)
    coder = LqSparseCoder(dictionary, penalty="cel0", alpha=0.3, warm_start=True,
                          init="l1")
    first = coder.transform(X)
    assert_allclose(first, LqSparseCoder(dictionary, penalty="cel0", alpha=0.3,
                                         init="l1").transform(X))
    coder.set_params(alpha=0.1, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        second = coder.transform(X)
    expected, _, _ = encode(X, dictionary, "cel0", 0.1, xp=xp_numpy, init=first,
                            max_iter=3, tol=1e-4)
    assert_allclose(second, expected)


def test_array_api_strict_runs_the_same_l1_start(sparse_problem):
    array_api_strict = pytest.importorskip("array_api_strict")
    X, dictionary = sparse_problem(4, n_samples=10)
    alpha = 0.1
    coder = LqSparseCoder(array_api_strict.asarray(dictionary), penalty="cel0",
                          alpha=alpha, init="l1")
    codes = coder.fit_transform(array_api_strict.asarray(X))
    assert _backend.get_namespace(codes) is array_api_strict
    # Reference: the two solves by hand on NumPy, lasso first.
    step = 1 / np.linalg.norm(dictionary, 2) ** 2
    lasso, _, _ = encode(X, dictionary, "l1",
                         l1_start_alpha("cel0", alpha, step, 1.0), xp=xp_numpy)
    expected, _, _ = encode(X, dictionary, "cel0", alpha, xp=xp_numpy, init=lasso)
    assert_allclose(_backend.to_numpy(codes), expected, rtol=0, atol=1e-6)


def test_bad_init_is_rejected(sparse_problem):
    X, dictionary = sparse_problem(5)
    with pytest.raises(ValueError, match="init"):
        LqSparseCoder(dictionary, init="lasso").fit(X)
