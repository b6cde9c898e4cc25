"""Thresholding operators against brute-force proximal minimisation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import minimize_scalar

from sparsesolve import _backend
from sparsesolve.coding import threshold
from sparsesolve.coding._kernels import sparse_rows_times_dense

# Brute force: minimise 0.5 (u - x)^2 + step * lam * penalty(u) on a grid of
# spacing 1e-3 around x, then polish every local grid minimum with a bounded
# scalar minimiser (xatol 1e-10) inside its two neighbouring cells, and keep
# the best of those and u = 0 (where the non-smooth penalties have a kink).
# The polished minimiser is accurate to far below the 1e-6 asked of the
# operators.
_GRID_SPACING = 1e-3


def _penalty(u, penalty, lam, atom_norm):
    u = np.abs(u)
    if penalty == "l1":
        return lam * u
    if penalty == "l0":
        return lam * (u != 0)
    if penalty == "l1/2":
        return lam * np.sqrt(u)
    # CEL0 as written by Soubies et al. (2015), with weight lam.
    root = np.sqrt(2 * lam)
    inside = u * atom_norm <= root
    return np.where(
        inside, lam - 0.5 * atom_norm**2 * (u - root / max(atom_norm, 1e-300)) ** 2,
        lam,
    ) if atom_norm > 0 else np.zeros_like(u)


def _brute_force_prox(x, penalty, lam, step, atom_norm=1.0):
    def objective(u):
        return 0.5 * (u - x) ** 2 + step * _penalty(u, penalty, lam, atom_norm)

    grid = np.arange(-abs(x) - 1, abs(x) + 1, _GRID_SPACING)
    values = objective(grid)
    local = np.flatnonzero(
        (values[1:-1] <= values[:-2]) & (values[1:-1] <= values[2:])
    ) + 1
    candidates = [0.0]
    for index in local:
        result = minimize_scalar(
            objective,
            bounds=(grid[index - 1], grid[index + 1]),
            method="bounded",
            options={"xatol": 1e-10},
        )
        candidates.append(result.x)
    candidates = np.array(candidates)
    values = np.array([float(objective(c)) for c in candidates])
    best = np.argmin(values)
    # Report how close the runner-up is: near a threshold two minimisers tie
    # and either answer is a correct proximal point.
    others = np.delete(values, best)
    others = others[np.abs(np.delete(candidates, best) - candidates[best]) > 1e-4]
    gap = np.min(others) - values[best] if others.size else np.inf
    return candidates[best], gap


@settings(max_examples=80, deadline=None)
@given(
    x=st.floats(-5, 5),
    lam=st.floats(0.01, 2),
    step=st.floats(0.1, 2),
    penalty=st.sampled_from(["l1", "l0", "l1/2", "cel0"]),
    atom_norm=st.floats(0.2, 2.0),
)
def test_threshold_is_the_proximal_minimiser(x, lam, step, penalty, atom_norm):
    expected, gap = _brute_force_prox(x, penalty, lam, step, atom_norm)
    norms = atom_norm if penalty == "cel0" else None
    got = threshold(np.array([x]), penalty, lam, step, atom_norms=norms)[0]
    if gap < 1e-9:
        return  # two minimisers tie at the threshold; either is correct
    assert abs(got - expected) <= 1e-6


@pytest.mark.parametrize("penalty", ["l1", "l0", "l1/2", "cel0"])
def test_threshold_on_a_grid_of_inputs(penalty):
    # A deterministic sweep across each threshold, complementing hypothesis.
    lam, step, atom_norm = 0.3, 0.7, 0.9
    xs = np.linspace(-3, 3, 61)
    norms = atom_norm if penalty == "cel0" else None
    got = threshold(xs, penalty, lam, step, atom_norms=norms)
    for x, value in zip(xs, got, strict=False):
        expected, gap = _brute_force_prox(x, penalty, lam, step, atom_norm)
        if gap >= 1e-9:
            assert abs(value - expected) <= 1e-6, (x, value, expected)


def test_half_threshold_value_and_jump():
    # Xu et al.: zero up to (54^(1/3)/4) t^(2/3) with t = 2 step lam, then a
    # jump to two thirds of that threshold.
    lam, step = 0.4, 0.5
    t = 2 * step * lam
    cut = 54 ** (1 / 3) / 4 * t ** (2 / 3)
    below, above = threshold(np.array([cut * (1 - 1e-9), cut * (1 + 1e-9)]),
                             "l1/2", lam, step)
    assert below == 0
    assert_allclose(above, 2 / 3 * cut, rtol=1e-4)


def test_cel0_closed_form_pieces():
    lam, step, a = 0.5, 0.5, 1.2  # a^2 step = 0.72 < 1
    dead = np.sqrt(2 * lam) * a * step
    identity = np.sqrt(2 * lam) / a
    x = np.array(
        [0.99 * dead, (dead + identity) / 2, 1.01 * identity, -1.01 * identity]
    )
    got = threshold(x, "cel0", lam, step, atom_norms=a)
    assert got[0] == 0
    assert_allclose(got[1], (x[1] - dead) / (1 - a**2 * step))
    assert_allclose(got[2:], x[2:])


def test_cel0_falls_back_to_hard_threshold():
    # step a^2 >= 1: the prox of step * CEL0 is hard thresholding at
    # sqrt(2 step lam) (Soubies et al. 2015; the brute force agrees).
    rng = np.random.RandomState(0)
    x = 3 * rng.standard_normal(200)
    lam, step = 0.3, 1.5
    a = np.full(200, 1.0)
    assert_allclose(threshold(x, "cel0", lam, step, atom_norms=a),
                    threshold(x, "l0", lam, step))
    for value in x[:20]:
        expected, gap = _brute_force_prox(value, "cel0", lam, step, 1.0)
        if gap >= 1e-9:
            assert abs(threshold(np.array([value]), "cel0", lam, step)[0]
                       - expected) <= 1e-6


def test_cel0_per_column_atom_norms_and_dead_atoms():
    rng = np.random.RandomState(2)
    x = rng.standard_normal((5, 4))
    norms = np.array([1.0, 0.5, 0.0, 2.0])
    got = threshold(x, "cel0", 0.2, 0.3, atom_norms=norms)
    for j in range(4):
        assert_allclose(got[:, j], threshold(x[:, j], "cel0", 0.2, 0.3,
                                             atom_norms=norms[j]))
    # A zero-norm atom carries no penalty: the prox is the identity.
    assert_allclose(got[:, 2], x[:, 2])


def test_threshold_keeps_float32_and_does_not_modify_input(global_dtype):
    rng = np.random.RandomState(3)
    x = rng.standard_normal(100).astype(global_dtype)
    original = x.copy()
    for penalty in ("l1", "l0", "l1/2", "cel0"):
        out = threshold(x, penalty, 0.3, 0.8)
        assert out.dtype == global_dtype
        assert not np.any(np.isnan(out))
        expected = threshold(x.astype(np.float64), penalty, 0.3, 0.8)
        assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert_allclose(x, original)


def test_soft_threshold_is_nonexpansive():
    rng = np.random.RandomState(0)
    a, b = rng.standard_normal((2, 500))
    pa, pb = threshold(a, "l1", 0.3), threshold(b, "l1", 0.3)
    assert np.all(np.abs(pa - pb) <= np.abs(a - b) + 1e-15)


def test_threshold_validates_arguments():
    with pytest.raises(ValueError, match="penalty"):
        threshold(np.ones(2), "l2", 1.0)
    with pytest.raises(ValueError, match="step"):
        threshold(np.ones(2), "l1", 1.0, step=0.0)
    with pytest.raises(ValueError, match="lam"):
        threshold(np.ones(2), "l1", -1.0)
    with pytest.raises(ValueError, match="atom_norms"):
        threshold(np.ones(2), "l1", 1.0, atom_norms=1.0)
    with pytest.raises(ValueError, match="atom_norms"):
        threshold(np.ones(2), "cel0", 1.0, atom_norms=np.array([-1.0, 1.0]))
    with pytest.raises(TypeError, match="lam"):
        threshold(np.ones(2), "l1", "big")


def test_per_column_lambda_matches_loop():
    rng = np.random.RandomState(1)
    x = rng.standard_normal((4, 3))
    lam = np.array([0.1, 0.5, 1.0])
    for penalty in ("l1", "l1/2"):
        expected = np.column_stack(
            [threshold(x[:, j], penalty, lam[j]) for j in range(3)]
        )
        assert_allclose(threshold(x, penalty, lam), expected)


def test_threshold_on_array_api_strict():
    array_api_strict = pytest.importorskip("array_api_strict")
    x = np.linspace(-2, 2, 9)
    for penalty in ("l1/2", "cel0"):
        out = threshold(array_api_strict.asarray(x), penalty, 0.3, 0.5)
        assert _backend.get_namespace(out) is array_api_strict
        assert_allclose(_backend.to_numpy(out), threshold(x, penalty, 0.3, 0.5))


def test_sparse_rows_times_dense_matches_matmul():
    rng = np.random.RandomState(4)
    codes = rng.standard_normal((30, 40)) * (rng.uniform(size=(30, 40)) < 0.1)
    gram = rng.standard_normal((40, 40))
    assert_allclose(sparse_rows_times_dense(codes, gram), codes @ gram, atol=1e-12)


@pytest.mark.cudasim
def test_cuda_kernels_match_cpu_drivers():
    # The same scalar bodies compiled for the GPU (or its simulator) give the
    # CPU drivers' answers.
    rng = np.random.RandomState(5)
    x = 3 * rng.standard_normal(300)
    cases = {
        "half_threshold": (np.full(1, 0.6),),
        "cel0_threshold": (np.full(1, 0.4), np.full(1, 0.3),
                           np.abs(rng.standard_normal(300)) + 0.1),
        "cel0_threshold_fallback": (np.full(1, 1.5), np.full(1, 0.3),
                                    np.ones(300)),
    }
    for case, params in cases.items():
        elementwise = _backend.kernel(case.replace("_fallback", ""))
        # The CPU call takes scalars; the raw drivers take length-1 arrays.
        expected = elementwise(x, *[p if p.size > 1 else p[0] for p in params])
        if _backend.cuda_simulator_enabled():
            out = np.empty_like(x)
            elementwise.cuda_driver(out, x, *params)
        else:
            cupy = _backend.require_cupy()
            device_params = [cupy.asarray(p) if p.size > 1 else p[0] for p in params]
            out = elementwise(cupy.asarray(x), *device_params).get()
        assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
