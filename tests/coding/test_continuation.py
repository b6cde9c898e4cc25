"""``LqSparseCoder(init="continuation")`` (the default): lambda-continuation."""

import warnings

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_sample_images
from sklearn.exceptions import ConvergenceWarning

from sparsesolve import _backend
from sparsesolve.coding import LqDictionaryLearning, LqSparseCoder
from sparsesolve.coding._algorithm import (
    continuation_alphas,
    encode,
    encode_continuation,
    objective,
)
from sparsesolve.datasets import make_image_patches

NONCONVEX = ["l0", "l1/2", "cel0"]


def test_weights_halve_down_to_alpha():
    assert_allclose(continuation_alphas(0.3), [2.4, 1.2, 0.6, 0.3])
    assert_allclose(continuation_alphas(0.3, stages=1), [0.3])
    assert_allclose(continuation_alphas(1.0, stages=3, ratio=3.0), [9.0, 3.0, 1.0])


@pytest.mark.parametrize("penalty", NONCONVEX)
def test_default_is_the_warm_started_chain_of_stages(sparse_problem, penalty):
    # Independent of encode_continuation: chain the stages by hand.
    X, dictionary = sparse_problem(0, n_samples=30)
    alpha = 0.1
    codes = None
    for position, weight in enumerate([8 * alpha, 4 * alpha, 2 * alpha, alpha]):
        codes, _, _ = encode(X, dictionary, penalty, weight, xp=xp_numpy, init=codes,
                             max_iter=500, tol=1e-4 if position == 3 else 1e-2)
    default = LqSparseCoder(dictionary, penalty=penalty, alpha=alpha).transform(X)
    assert_allclose(default, codes)
    cold = LqSparseCoder(dictionary, penalty=penalty, alpha=alpha,
                         init=None).transform(X)
    zero, _, _ = encode(X, dictionary, penalty, alpha, xp=xp_numpy, max_iter=500,
                        tol=1e-4)
    assert_allclose(cold, zero)
    assert not np.allclose(default, cold)


def test_l1_penalty_is_not_continued(sparse_problem):
    X, dictionary = sparse_problem(1, n_samples=30)
    expected, _, _ = encode(X, dictionary, "l1", 0.1, xp=xp_numpy, max_iter=500,
                            tol=1e-4)
    assert_allclose(LqSparseCoder(dictionary, penalty="l1", alpha=0.1).transform(X),
                    expected)


def test_continuation_lowers_the_cel0_objective_on_image_patches():
    # The claim of the default, on data it is meant for (whitened patches,
    # learned dictionary) but not the benchmark's: 8x8 patches, 128 atoms.
    # Measured: 4-10% lower mean objective at each alpha and seed.
    china, flower = load_sample_images().images
    train = make_image_patches([china], patch_size=(8, 8), n_patches=2000,
                               random_state=0)
    scale = float(np.mean(np.sum(train**2, axis=1))) / 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dictionary = LqDictionaryLearning(
            128, penalty="l1", alpha=0.3 * scale, batch_size=250, max_iter=1,
            transform_max_iter=60, transform_tol=1e-3,
            random_state=0).fit(train).components_
    norms = np.linalg.norm(dictionary, axis=1)
    X = make_image_patches([flower], patch_size=(8, 8), n_patches=300,
                           random_state=1)
    for alpha in (0.03 * scale, 0.2 * scale):
        values = {}
        for init in (None, "continuation"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                codes = LqSparseCoder(dictionary, penalty="cel0", alpha=alpha,
                                      init=init).transform(X)
            values[init] = objective(X, dictionary, codes, "cel0", alpha, xp_numpy,
                                     norms)
        assert np.mean(values["continuation"]) < 0.98 * np.mean(values[None])


@pytest.mark.parametrize("penalty", NONCONVEX)
def test_continuation_follows_the_plain_iteration(sparse_problem, reference_codes,
                                                  penalty):
    # Without the refit, the continuation is the plain proximal-gradient
    # iteration run stage after stage, each stage started where the last
    # one stopped.
    X, dictionary = sparse_problem(2, n_samples=8)
    options = dict(max_iter=3000, tol=1e-11, stage_tol=1e-11)
    ours, _, _ = encode_continuation(X, dictionary, penalty, 0.1, xp=xp_numpy,
                                     refit=False, **options)
    expected = None
    for weight in continuation_alphas(0.1):
        expected = reference_codes(X, dictionary, penalty, weight, init=expected,
                                   max_iter=3000, tol=1e-11)
    assert_allclose(ours, expected, atol=1e-7)


def test_array_api_strict_runs_the_same_continuation(sparse_problem):
    array_api_strict = pytest.importorskip("array_api_strict")
    X, dictionary = sparse_problem(4, n_samples=10)
    coder = LqSparseCoder(array_api_strict.asarray(dictionary), penalty="cel0",
                          alpha=0.1)
    codes = coder.fit_transform(array_api_strict.asarray(X))
    expected = LqSparseCoder(dictionary, penalty="cel0", alpha=0.1).transform(X)
    assert _backend.get_namespace(codes) is array_api_strict
    assert_allclose(_backend.to_numpy(codes), expected, rtol=0, atol=1e-6)


def test_warm_start_codes_take_precedence_over_the_continuation(sparse_problem):
    X, dictionary = sparse_problem(3, n_samples=30)
    coder = LqSparseCoder(dictionary, penalty="cel0", alpha=0.3, warm_start=True)
    first = coder.transform(X)
    coder.set_params(alpha=0.1, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        second = coder.transform(X)
    expected, _, _ = encode(X, dictionary, "cel0", 0.1, xp=xp_numpy, init=first,
                            max_iter=3, tol=1e-4)
    assert_allclose(second, expected)


def test_unconverged_final_stage_warns_and_inputs_are_kept(sparse_problem):
    X, dictionary = sparse_problem(5, n_samples=30)
    saved = X.copy(), dictionary.copy()
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        LqSparseCoder(dictionary, penalty="cel0", alpha=0.01, max_iter=2,
                      tol=1e-12).transform(X)
    np.testing.assert_array_equal(X, saved[0])
    np.testing.assert_array_equal(dictionary, saved[1])
