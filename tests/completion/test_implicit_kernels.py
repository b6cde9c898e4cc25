"""The implicit-feedback row kernels: plain Python, numba CPU and CUDA agree
with a dense Hu-Koren-Volinsky solve."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsesolve._backend import compile_body, kernel
from sparsesolve.completion import _implicit_kernels
from sparsesolve.completion._algorithm import _implicit_sides

_RANK = 5


def _problem(seed=0, n_rows=14, n_other=11, confidence=2.0, reg=0.3):
    rng = np.random.RandomState(seed)
    strength = rng.poisson(1.5, (n_rows, n_other)) * (
        rng.random_sample((n_rows, n_other)) < 0.4)
    strength[0] = 0  # an empty row: only the shared Gram term
    strength[1, :] = 1 + np.arange(n_other)  # a full row
    stored = strength > 0
    stored[2, 3] = True  # an explicit zero: stored, weight 0, preference 0
    csr = sp.csr_matrix((strength[stored].astype(float), np.nonzero(stored)),
                        shape=strength.shape)
    other = rng.standard_normal((n_other, _RANK))
    x0 = rng.standard_normal((n_rows, _RANK))
    gram = other.T @ other + reg * np.eye(_RANK)
    return strength.astype(float), csr, other, x0, gram, confidence, reg


def _dense_solution(strength, other, confidence, reg):
    weight = 1.0 + confidence * strength
    preference = (strength > 0).astype(float)
    solution = np.empty((strength.shape[0], other.shape[1]))
    for i in range(strength.shape[0]):
        system = other.T @ (weight[i][:, None] * other) + reg * np.eye(other.shape[1])
        solution[i] = np.linalg.solve(system, other.T @ (weight[i] * preference[i]))
    return solution


def _run(name, target, n_rows, *args):
    row_kernel = kernel(name)
    if target == "python":
        spec = row_kernel.workspaces(args)
        work = [np.zeros(shape, dtype=dtype) for shape, dtype in spec]
        for row in range(n_rows):
            row_kernel.body(row, *args, *work)
    elif target == "cpu":
        row_kernel.run_cpu(n_rows, *args)
    else:
        row_kernel.run_cuda(n_rows, *args)


def _solve_all(target, problem, n_steps):
    strength, csr, other, x0, gram, confidence, reg = problem
    side = _implicit_sides(csr, confidence, np.float64)
    exact = np.zeros_like(x0)
    _run("completion_implicit_exact", target, x0.shape[0], *side, other, gram, exact)
    cg = x0.copy()
    _run("completion_implicit_cg", target, x0.shape[0], *side, other, gram, cg,
         n_steps, 1e-14)
    loss = np.empty(x0.shape[0])
    _run("completion_implicit_loss", target, x0.shape[0], *side, x0, other, loss)
    return exact, cg, loss


@pytest.mark.parametrize("target", ["python", "cpu"])
def test_implicit_kernels_match_dense_solve(target):
    problem = _problem()
    strength, _, other, x0, _, confidence, reg = problem
    expected = _dense_solution(strength, other, confidence, reg)
    # CG from a random start reaches the solution of a 5 x 5 system in a few
    # more than 5 steps; one step only moves it part of the way.
    exact, cg, loss = _solve_all(target, problem, 4 * _RANK)
    np.testing.assert_allclose(exact, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cg, expected, rtol=1e-8, atol=1e-10)
    _, one_step, _ = _solve_all(target, problem, 1)
    assert np.abs(one_step - expected).max() > 1e-3
    # Loss: sum over the stored entries of c (p - x)^2 - x^2.
    predicted = x0 @ other.T
    weight = 1.0 + confidence * strength
    term = weight * ((strength > 0) - predicted) ** 2 - predicted**2
    stored = problem[1].toarray() != 0
    stored[2, 3] = True
    np.testing.assert_allclose(loss, np.where(stored, term, 0.0).sum(axis=1),
                               rtol=1e-12, atol=1e-12)


def test_implicit_cg_float32_close_to_float64():
    strength, csr, other, x0, gram, confidence, reg = _problem(seed=1)
    expected = _dense_solution(strength, other, confidence, reg)
    side = _implicit_sides(csr, confidence, np.float32)
    x = x0.astype(np.float32)
    kernel("completion_implicit_cg").run_cpu(
        x.shape[0], *side, other.astype(np.float32), gram.astype(np.float32), x,
        4 * _RANK, 1e-5)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, expected, rtol=0, atol=2e-4 * np.abs(expected).max())


def test_reassociable_dot_is_compiled_with_reassociation():
    # The dot products are the hot loop of the implicit sweeps: on the CPU
    # they are compiled so that LLVM may reorder the sum (and vectorise it);
    # the result agrees with the plain Python sum to round-off.
    compiled = compile_body(_implicit_kernels.dot_rows, "cpu")
    assert "reassoc" in compiled.targetoptions["fastmath"]
    assert "nnan" not in compiled.targetoptions["fastmath"]
    rng = np.random.RandomState(0)
    left, right = rng.standard_normal((3, 67)), rng.standard_normal((4, 67))
    assert compiled(left, 1, right, 2, 67) == pytest.approx(
        _implicit_kernels.dot_rows(left, 1, right, 2, 67), rel=1e-13)
    assert not hasattr(_implicit_kernels.gram_product, "reassociate")


@pytest.mark.cudasim
def test_implicit_cuda_kernels_match_cpu():
    problem = _problem(seed=2)
    cpu = _solve_all("cpu", problem, 3)
    gpu = _solve_all("cuda", problem, 3)
    for got, expected in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
