"""The row-pass kernels: plain Python, numba CPU and numba CUDA agree."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsesolve._backend import kernel
from sparsesolve.completion import _kernels

_NAMES = {"exact": "completion_exact", "cg": "completion_cg",
          "sketch": "completion_sketch", "predict": "completion_predict"}


def _drivers(target):
    """The registered row kernels, run on ``target`` ("cpu" or "cuda").

    Under NUMBA_ENABLE_CUDASIM=1 the CUDA launches take NumPy arrays.
    """
    def launcher(name):
        row_kernel = kernel(_NAMES[name])
        run = row_kernel.run_cpu if target == "cpu" else row_kernel.run_cuda
        # One row per row of the factor being solved (argument 6), or one
        # per predicted entry (argument 0).
        counted = 0 if name == "predict" else 6
        return lambda *args: run(args[counted].shape[0], *args)

    return {name: launcher(name) for name in _NAMES}


def _row_problem(seed, n_rows=30, n_other=25, rank=3, density=0.5):
    rng = np.random.RandomState(seed)
    csr = sp.random(n_rows, n_other, density=density, random_state=rng, format="csr")
    csr.sort_indices()
    # One full row, longer than twice the sketch, exercises the sketch itself.
    dense = csr.toarray()
    dense[0] = rng.standard_normal(n_other)
    csr = sp.csr_matrix(dense)
    other = rng.standard_normal((n_other, rank))
    reg = np.full(n_rows, 0.1)
    weights = rng.uniform(0.5, 1.5, csr.nnz)
    bucket = rng.randint(0, 4, csr.nnz).astype(np.int32)
    sign = rng.choice(np.array([-1.0, 1.0]), csr.nnz)
    return csr, other, reg, weights, bucket, sign


def _dense_reference(csr, other, reg, weights):
    """Weighted ridge by np.linalg.solve, one row at a time."""
    rank = other.shape[1]
    solution = np.zeros((csr.shape[0], rank))
    for row in range(csr.shape[0]):
        span = slice(csr.indptr[row], csr.indptr[row + 1])
        design = other[csr.indices[span]]
        w = weights[span]
        gram = design.T @ (w[:, None] * design) + reg[row] * np.eye(rank)
        solution[row] = np.linalg.solve(gram, design.T @ (w * csr.data[span]))
    return solution


def _run_all(drivers, csr, other, reg, weights, bucket, sign):
    rank = other.shape[1]
    results = {}
    for name in ("exact", "cg", "sketch"):
        x = np.zeros((csr.shape[0], rank))
        args = (csr.indptr, csr.indices, csr.data, weights, other, reg, x)
        if name == "exact":
            drivers[name](*args)
        elif name == "cg":
            drivers[name](*args, 3 * rank, 1e-12)
        else:
            drivers[name](*args, 3 * rank, 1e-12, bucket, sign, 4)
        results[name] = x
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)).astype(np.int32)
    out = np.empty(csr.nnz)
    drivers["predict"](rows, csr.indices, results["exact"], other, out)
    results["predict"] = out
    return results


def test_cpu_kernels_match_dense_weighted_ridge():
    problem = _row_problem(0)
    csr, other, reg, weights = problem[:4]
    expected = _dense_reference(csr, other, reg, weights)
    results = _run_all(_drivers("cpu"), *problem)
    for name in ("exact", "cg", "sketch"):
        np.testing.assert_allclose(results[name], expected, rtol=1e-8, atol=1e-10)
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    np.testing.assert_allclose(
        results["predict"],
        np.einsum("ij,ij->i", expected[rows], other[csr.indices]),
        rtol=1e-8, atol=1e-10,
    )


def test_plain_python_bodies_match_compiled():
    # The plain functions are the single source compiled for both targets.
    csr, other, reg, weights, bucket, sign = _row_problem(1, n_rows=4)
    compiled = _run_all(_drivers("cpu"), csr, other, reg, weights, bucket, sign)
    x = np.zeros((csr.shape[0], other.shape[1]))
    rank = other.shape[1]
    for row in range(csr.shape[0]):
        _kernels.exact_row(row, csr.indptr, csr.indices, csr.data, weights, other, reg,
                           x, np.empty((rank, rank)), np.empty(rank))
    np.testing.assert_allclose(x, compiled["exact"], rtol=1e-12, atol=1e-14)


def test_cholesky_floor_keeps_singular_rows_finite():
    # A row observed once with rank 3 and no ridge is singular: the pivot
    # floor must give a finite (minimum-norm-like) answer, not NaN.
    csr = sp.csr_matrix(np.array([[2.0, 0.0, 0.0]]))
    other = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    x = np.zeros((1, 3))
    _drivers("cpu")["exact"](csr.indptr, csr.indices, csr.data, np.ones(1),
                                    other, np.zeros(1), x)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x @ other[0], 2.0, rtol=1e-8)


@pytest.mark.cudasim
def test_cuda_kernels_match_cpu_kernels():
    # Under NUMBA_ENABLE_CUDASIM=1 the grid kernels run on NumPy arrays.
    problem = _row_problem(2, n_rows=12, n_other=10)
    cpu = _run_all(_drivers("cpu"), *problem)
    gpu = _run_all(_drivers("cuda"), *problem)
    for name in ("exact", "cg", "sketch", "predict"):
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-10, atol=1e-12)


def test_sketch_path_taken_on_long_rows_and_fallback_on_short_rows():
    # With zero CG steps a sketched row keeps its warm start (only the
    # preconditioner is built), while a row at or below twice the sketch
    # size is solved exactly: which rows moved tells which path ran.
    rng = np.random.RandomState(3)
    n_other, rank, sketch_size = 60, 4, 8
    lengths = np.array([60, 17, 16, 5, 40, 0])
    dense = np.zeros((lengths.size, n_other))
    for row, length in enumerate(lengths):
        columns = rng.choice(n_other, length, replace=False)
        dense[row, columns] = rng.standard_normal(length)
    csr = sp.csr_matrix(dense)
    other = rng.standard_normal((n_other, rank))
    reg = np.full(lengths.size, 0.1)
    weights = np.ones(csr.nnz)
    bucket = rng.randint(0, sketch_size, csr.nnz).astype(np.int32)
    sign = rng.choice(np.array([-1.0, 1.0]), csr.nnz)
    start = rng.standard_normal((lengths.size, rank))
    x = start.copy()
    _drivers("cpu")["sketch"](csr.indptr, csr.indices, csr.data, weights,
                                     other, reg, x, 0, 1e-12, bucket, sign,
                                     sketch_size)
    sketched = _kernels.uses_sketch(np.diff(csr.indptr), sketch_size)
    np.testing.assert_array_equal(sketched, [True, True, False, False, True, False])
    np.testing.assert_array_equal(x[sketched], start[sketched])
    expected = _dense_reference(csr, other, reg, weights)
    np.testing.assert_allclose(x[~sketched], expected[~sketched], rtol=1e-10,
                               atol=1e-12)
    # Enough preconditioned CG steps take the sketched rows to the solution.
    _drivers("cpu")["sketch"](csr.indptr, csr.indices, csr.data, weights,
                                     other, reg, x, 3 * rank, 1e-14, bucket, sign,
                                     sketch_size)
    np.testing.assert_allclose(x, expected, rtol=1e-8, atol=1e-10)
