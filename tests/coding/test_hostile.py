"""Bad input, extreme scales and non-convergence of the coders (issue 16)."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sparsesolve._sklearn_compat import InvalidParameterError
from sparsesolve._validation import AllocationError
from sparsesolve.coding import LqDictionaryLearning, LqSparseCoder, threshold

PENALTY_DEGREE = {"l1": 1.0, "l0": 2.0, "l1/2": 1.5, "cel0": 2.0}


@pytest.fixture
def problem():
    rng = np.random.RandomState(0)
    dictionary = rng.standard_normal((12, 8))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((20, 12))
    for row in codes:
        row[rng.choice(12, 2, replace=False)] = rng.uniform(1, 3, 2)
    X = codes @ dictionary + 0.01 * rng.standard_normal((20, 8))
    return X, dictionary


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_n_jobs_zero_and_non_integers_refused(problem, n_jobs):
    X, dictionary = problem
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        LqSparseCoder(dictionary, n_jobs=n_jobs).fit_transform(X)
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        LqDictionaryLearning(4, n_jobs=n_jobs).fit(X)


@pytest.mark.parametrize("n_jobs", [None, 1, -1, -2])
def test_joblib_n_jobs_accepted(problem, n_jobs):
    X, dictionary = problem
    reference = LqSparseCoder(dictionary, alpha=0.1).fit_transform(X)
    codes = LqSparseCoder(dictionary, alpha=0.1, n_jobs=n_jobs).fit_transform(X)
    np.testing.assert_array_equal(codes, reference)


def test_complex_dictionary_refused_not_cast(problem):
    # The coders' proximal maps are defined on real codes; the imaginary
    # part of the atoms used to be dropped without a word.
    X, dictionary = problem
    coder = LqSparseCoder(dictionary + 1j * dictionary)
    with pytest.raises(ValueError, match="Complex data not supported for dictionary"):
        coder.fit_transform(X)
    with pytest.raises(ValueError, match="for dictionary"):
        LqSparseCoder(dictionary + 1j * dictionary).inverse_transform(np.ones((1, 12)))


@pytest.mark.parametrize("estimator", [
    lambda d: LqSparseCoder(d), lambda d: LqDictionaryLearning(4, max_iter=2)])
def test_complex_X_refused_with_its_name(problem, estimator):
    X, dictionary = problem
    with pytest.raises(ValueError, match="Complex data not supported for X"):
        estimator(dictionary).fit_transform(X + 1j)


@pytest.mark.parametrize(("bad", "message"), [
    (np.zeros((0, 8)), "dictionary is empty"),
    (np.ones(8), "dictionary must be a 2-D array"),
    (np.full((3, 8), np.nan), "dictionary contains NaN"),
    ([["a"] * 8], "dictionary"),
    (np.ones((3, 5)), "different numbers of features"),
])
def test_bad_dictionaries_named(problem, bad, message):
    X, _ = problem
    with pytest.raises((ValueError, TypeError), match=message):
        LqSparseCoder(bad).fit_transform(X)


def test_overflowing_dictionary_refused(problem):
    X, dictionary = problem
    with pytest.raises(ValueError, match="dictionary: the Gram matrix"):
        LqSparseCoder(1e200 * dictionary).fit_transform(X)


def test_inverse_transform_checks_codes(problem):
    X, dictionary = problem
    coder = LqSparseCoder(dictionary)
    with pytest.raises(ValueError, match="12 atoms"):
        coder.inverse_transform(np.ones((2, 5)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        coder.inverse_transform(np.full((2, 12), np.nan))


def test_huge_n_components_refused_before_allocating(problem):
    X, _ = problem
    with pytest.raises(AllocationError, match="n_components=1000000") as info:
        LqDictionaryLearning(n_components=10**6).fit(X)
    # A MemoryError (as NumPy's) and a ValueError (a bad parameter value).
    assert isinstance(info.value, MemoryError)
    assert isinstance(info.value, ValueError)
    assert "TiB" in str(info.value)


@pytest.mark.parametrize("penalty", ["l1", "l0", "l1/2", "cel0"])
@pytest.mark.parametrize("scale", [2.0**-996, 1e-300, 1e-150, 1e-7, 3.0, 1e150,
                                   1e300, 2.0**996])
def test_codes_scale_with_the_data(problem, penalty, scale):
    # Coding s x with weight s**degree alpha gives s times the codes of x
    # (the data term scales as s**2, the penalty as s**degree at codes s c).
    X, dictionary = problem
    alpha = 0.2
    degree = PENALTY_DEGREE[penalty]
    with np.errstate(over="ignore", under="ignore"):
        scaled_alpha = float(alpha * np.float64(scale) ** degree)
    if scaled_alpha == 0 or not np.isfinite(scaled_alpha):
        pytest.skip("the scaled weight is not a float64 number")
    reference = LqSparseCoder(dictionary, penalty=penalty, alpha=alpha,
                              tol=1e-10, max_iter=5000).fit_transform(X)
    codes = LqSparseCoder(dictionary, penalty=penalty, alpha=scaled_alpha,
                          tol=1e-10, max_iter=5000).fit_transform(scale * X)
    assert np.all(np.isfinite(codes))
    np.testing.assert_array_equal(codes != 0, reference != 0)
    # Powers of two scale exactly; other factors round each entry once
    # (relative 1e-16), which the iterations carry to about 1e-9.
    np.testing.assert_allclose(codes / scale, reference, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_extreme_data_with_a_fixed_weight_give_defined_codes(problem, scale):
    # alpha=1 is then enormous (tiny data: all codes zero) or negligible
    # (huge data: nearly least squares); either way finite numbers.
    X, dictionary = problem
    codes = LqSparseCoder(dictionary, penalty="l0", alpha=1.0).fit_transform(scale * X)
    assert np.all(np.isfinite(codes))
    if scale < 1:
        assert not codes.any()
    else:
        assert np.count_nonzero(codes) > 0


@pytest.mark.parametrize("penalty", ["l1", "cel0"])
@pytest.mark.parametrize("scale", [1e-300, 1e-20, 1e20, 1e300])
def test_learned_atoms_do_not_depend_on_the_data_scale(problem, penalty, scale):
    X, _ = problem
    X = np.vstack([X] * 3)
    alpha = 0.05
    with np.errstate(over="ignore", under="ignore"):
        scaled_alpha = float(alpha * np.float64(scale) ** PENALTY_DEGREE[penalty])
    if not (np.isfinite(scaled_alpha) and scaled_alpha > 0):
        pytest.skip("the scaled weight is not a float64 number")
    kwargs = dict(penalty=penalty, max_iter=3, batch_size=20, random_state=0,
                  max_no_improvement=None, tol=0)
    reference = LqDictionaryLearning(6, alpha=alpha, **kwargs).fit(X)
    learner = LqDictionaryLearning(6, alpha=scaled_alpha, **kwargs).fit(scale * X)
    assert np.all(np.isfinite(learner.components_))
    np.testing.assert_allclose(learner.components_, reference.components_,
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(learner.atom_usage_, reference.atom_usage_)
    codes = learner.transform(scale * X[:5])
    np.testing.assert_allclose(codes / scale, reference.transform(X[:5]),
                               rtol=1e-6, atol=1e-9)


def test_dictionary_learning_on_1e300_data_is_finite(problem):
    X, _ = problem
    learner = LqDictionaryLearning(6, max_iter=3, random_state=0).fit(1e300 * X)
    assert np.all(np.isfinite(learner.components_))
    assert np.all(np.isfinite(learner.transform(1e300 * X)))


def test_coder_warns_which_parameter_to_raise(problem):
    X, dictionary = problem
    coder = LqSparseCoder(dictionary, penalty="l1", alpha=1e-3, max_iter=1,
                          tol=1e-12, init=None)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        coder.fit_transform(X)


def test_dictionary_learning_warns_which_parameter_to_raise(problem):
    X, _ = problem
    learner = LqDictionaryLearning(6, max_iter=1, tol=0, max_no_improvement=None,
                                   random_state=0, batch_size=5)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        learner.fit(X)
    learner = LqDictionaryLearning(6, max_iter=2, transform_max_iter=1,
                                   transform_tol=1e-12, penalty="l1", alpha=1e-3,
                                   random_state=0)
    with pytest.warns(ConvergenceWarning, match="increase transform_max_iter"):
        learner.fit(X).transform(X)


@pytest.mark.parametrize(("bad", "message"), [
    (np.array([1 + 1j, 2.0]), "Complex data not supported for x"),
    (np.array([np.nan, 1.0]), "Input x contains NaN"),
    (np.array([np.inf, 1.0]), "Input x contains NaN or infinity"),
])
def test_threshold_refuses_complex_and_non_finite_x(bad, message):
    with pytest.raises(ValueError, match=message):
        threshold(bad, "l1", 1.0)


def test_threshold_checks_weight_shapes_before_the_kernel():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="lam must be a scalar, of shape"):
        threshold(x, "l1", np.ones(7))
    with pytest.raises(ValueError, match="atom_norms must be a scalar"):
        threshold(x, "cel0", 1.0, atom_norms=np.ones(2))
    with pytest.raises(ValueError, match="Complex data not supported for lam"):
        threshold(x, "l1", np.ones(4) + 1j)
    with pytest.raises(InvalidParameterError, match="step"):
        threshold(x, "l1", 1.0, step=np.inf)
    with pytest.raises(InvalidParameterError, match="lam"):
        threshold(x, "l1", np.nan)
    np.testing.assert_array_equal(threshold(x, "l1", [0.5, 1.0, 0.0, 2.0]),
                                  np.tile([0.5, 0.0, 1.0, 0.0], (3, 1)))


def test_threshold_keeps_scalars_and_zero_dimensional_arrays():
    assert threshold(3.0, "l1", 1.0) == 2.0
    out = threshold(np.array(3.0), "l1", 1.0)
    assert out.shape == ()
    assert float(out) == 2.0


def test_score_that_overflows_is_an_error_naming_X(problem):
    X, dictionary = problem
    coder = LqSparseCoder(dictionary, penalty="l1", alpha=1e299).fit(1e300 * X)
    assert np.all(np.isfinite(coder.transform(1e300 * X)))
    with pytest.raises(ValueError, match="score of X .* overflows float64"):
        coder.score(1e300 * X)


def test_non_numeric_X_named(problem):
    _, dictionary = problem
    X = np.array([["a"] * 8] * 3, dtype=object)
    with pytest.raises(ValueError, match="X must hold numbers for LqSparseCoder"):
        LqSparseCoder(dictionary).fit(X)


def test_default_n_components_named_in_the_allocation_error():
    X = np.ones((2, 10**6))  # 10**6 atoms of 10**6 features: 7 TiB
    with pytest.raises(AllocationError, match="n_components=None means n_features"):
        LqDictionaryLearning().fit(X)


def test_gram_matrix_of_too_many_atoms_refused():
    # 10**6 one-feature atoms: their Gram matrix would take 7.3 TiB.
    dictionary = np.ones((10**6, 1))
    with pytest.raises(AllocationError, match="Gram matrix of 1000000 atoms"):
        LqSparseCoder(dictionary).fit(np.ones((2, 1)))


@pytest.mark.parametrize("penalty", ["l1", "l0", "l1/2", "cel0"])
def test_all_zero_signals_give_zero_codes(problem, penalty):
    _, dictionary = problem
    zeros = np.zeros((4, 8))
    codes = LqSparseCoder(dictionary, penalty=penalty).fit_transform(zeros)
    np.testing.assert_array_equal(codes, 0.0)
    learner = LqDictionaryLearning(5, penalty=penalty, max_iter=2,
                                   random_state=0).fit(zeros)
    # No signal to learn from: the (random) atoms stay finite, unit-norm.
    np.testing.assert_allclose(np.linalg.norm(learner.components_, axis=1), 1.0)
    np.testing.assert_array_equal(learner.transform(zeros), 0.0)
