"""The two-device backend: namespaces, host/device moves, kernels, threads."""

import ast
import types

import array_api_strict
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsesolve import _backend
from sparsesolve._backend import (
    ElementwiseKernel,
    device_of,
    get_namespace,
    kernel,
    numba_threads,
    to_namespace,
    to_numpy,
)
from sparsesolve._validation import check_same_device, validate_data


class ToyShrinker(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Soft-thresholds each feature by ``shrink`` times its mean magnitude.

    Written only through the backend so that it runs on any namespace: the
    array API checks of scikit-learn exercise it on array-api-strict.
    """

    def __init__(self, shrink=0.5):
        self.shrink = shrink

    def fit(self, X, y=None):
        X = validate_data(self, X)
        xp = get_namespace(X)
        self.scale_ = self.shrink * xp.mean(xp.abs(X), axis=0)
        return self

    def transform(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        check_same_device(X, self, attribute="scale_", method="transform")
        X = validate_data(self, X, reset=False)
        return kernel("soft_threshold")(X, self.scale_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


@parametrize_with_checks([ToyShrinker()])
def test_toy_transformer_passes_sklearn_checks(estimator, check):
    check(estimator)


def test_get_namespace_mirrors_input():
    assert get_namespace(np.ones(2)).__name__ == "array_api_compat.numpy"
    strict = array_api_strict.asarray([1.0])
    assert get_namespace(strict) is array_api_strict
    # None, scalars and lists are ignored.
    assert get_namespace(None, 3.0, [1, 2], strict) is array_api_strict


def test_get_namespace_rejects_mixed_libraries():
    with pytest.raises(TypeError, match="same array library"):
        get_namespace(np.ones(2), array_api_strict.asarray([1.0]))


def test_host_round_trip():
    strict = array_api_strict.asarray([1.0, 2.0])
    host = to_numpy(strict)
    assert isinstance(host, np.ndarray)
    back = to_namespace(host, array_api_strict, like=strict)
    assert get_namespace(back) is array_api_strict
    assert device_of(np.zeros(1)) == "cpu"


def test_kernel_runs_on_array_api_strict_and_mirrors_namespace():
    x = np.linspace(-2, 2, 9)
    expected = kernel("soft_threshold")(x, 0.5)
    strict = kernel("soft_threshold")(array_api_strict.asarray(x), 0.5)
    assert get_namespace(strict) is array_api_strict
    assert_allclose(to_numpy(strict), expected)


def test_kernel_parameter_broadcasting_and_errors():
    x = np.arange(6.0).reshape(2, 3) - 2.5
    per_column = np.array([0.0, 1.0, 10.0])
    out = kernel("soft_threshold")(x, per_column)
    assert_allclose(out, np.sign(x) * np.maximum(np.abs(x) - per_column, 0))
    assert_allclose(kernel("soft_threshold")(x, np.full_like(x, 1.0)),
                    kernel("soft_threshold")(x, 1.0))
    with pytest.raises(ValueError, match="Parameter 0"):
        kernel("soft_threshold")(x, np.ones(4))
    with pytest.raises(TypeError, match="takes 1 parameter"):
        kernel("soft_threshold")(x)
    with pytest.raises(KeyError, match="No kernel named"):
        kernel("no_such_kernel")


def test_kernel_does_not_modify_input_and_keeps_float32():
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    before = x.copy()
    out = kernel("soft_threshold")(x, 0.25)
    assert out.dtype == np.float32
    assert_allclose(x, before)


def test_elementwise_kernel_rejects_bad_arity():
    with pytest.raises(ValueError, match="n_params"):
        ElementwiseKernel(lambda x: x, n_params=0)


def test_numba_threads_restores_setting():
    import numba

    before = numba.get_num_threads()
    with numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with numba_threads(-1):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_require_cupy_explains_missing_gpu(monkeypatch):
    monkeypatch.setattr(_backend, "_cupy_status", lambda: (None, "no device here"))
    with pytest.raises(RuntimeError, match="no device here"):
        _backend.require_cupy()
    with pytest.raises(RuntimeError, match="no device here"):
        kernel("soft_threshold", types.SimpleNamespace(__name__="cupy"))


@pytest.mark.cudasim
def test_cuda_kernel_matches_cpu_driver():
    # Under NUMBA_ENABLE_CUDASIM=1 the grid kernel runs on NumPy arrays; on a
    # GPU machine the same launcher runs on the device.
    rng = np.random.RandomState(0)
    x = rng.standard_normal(1000)
    thresholds = np.abs(rng.standard_normal(1000))
    for name in ("soft_threshold", "hard_threshold"):
        elementwise = kernel(name)
        expected = elementwise(x, thresholds)
        if _backend.cuda_simulator_enabled():
            out = np.empty_like(x)
            elementwise.cuda_driver(out, x, thresholds)
        else:
            cupy = _backend.require_cupy()
            out = elementwise(cupy.asarray(x), cupy.asarray(thresholds)).get()
        assert_allclose(out, expected, rtol=0, atol=0)


@pytest.mark.gpu
def test_cupy_input_mirrors_output():
    cupy = _backend.require_cupy()
    x = cupy.linspace(-2, 2, 9)
    out = kernel("soft_threshold")(x, 0.5)
    assert isinstance(out, cupy.ndarray)
    assert_allclose(out.get(), kernel("soft_threshold")(x.get(), 0.5))


# --------------------------------------------------------------------------
# Row kernels
# --------------------------------------------------------------------------
def _scaled_row_norm(row, x, scale, out, squares, counts):
    # Uses a float and an integer workspace and a helper body (compiled
    # along with it) to check that all three reach the compiled code.
    n_columns = x.shape[1]
    for j in range(n_columns):
        squares[j] = x[row, j] * x[row, j]
        counts[j] = 1 if x[row, j] != 0.0 else 0
    out[row, 0] = scale * _sum_of(squares, n_columns)
    total = 0
    for j in range(n_columns):
        total += counts[j]
    out[row, 1] = total


def _sum_of(values, n):
    total = 0.0
    for j in range(n):
        total += values[j]
    return total


def _norm_workspaces(x, scale, out):
    return [((x.shape[1],), x.dtype), ((x.shape[1],), np.int64)]


_ROW_NORM = _backend.RowKernel(
    _scaled_row_norm, "test_row_norm", workspace=_norm_workspaces, writes=("out",)
)


def _row_norm_problem(n_rows=300, n_columns=7, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n_rows, n_columns))
    x[rng.rand(n_rows, n_columns) < 0.3] = 0.0
    expected = np.column_stack(
        [2.5 * np.sum(x * x, axis=1), np.count_nonzero(x, axis=1)]
    )
    return x, expected


def test_row_kernel_matches_plain_python_and_numpy():
    x, expected = _row_norm_problem()
    # The plain body, run row by row in Python with its own workspaces.
    plain = np.empty((x.shape[0], 2))
    squares, counts = np.empty(x.shape[1]), np.empty(x.shape[1], dtype=np.int64)
    for row in range(x.shape[0]):
        _scaled_row_norm(row, x, 2.5, plain, squares, counts)
    assert_allclose(plain, expected, rtol=1e-12)
    for parallel in (True, False):
        out = np.full((x.shape[0], 2), np.nan)
        _ROW_NORM(x.shape[0], x, 2.5, out, parallel=parallel)
        assert_allclose(out, expected, rtol=1e-12)


def test_row_kernel_runs_other_namespaces_on_the_host():
    x, expected = _row_norm_problem(n_rows=20)
    strict_x = array_api_strict.asarray(x)
    out = array_api_strict.zeros((20, 2), dtype=array_api_strict.float64)
    before = to_numpy(strict_x).copy()
    _ROW_NORM(20, strict_x, 2.5, out)
    assert get_namespace(out) is array_api_strict
    assert_allclose(to_numpy(out), expected, rtol=1e-12)
    assert_allclose(to_numpy(strict_x), before, rtol=0)  # inputs untouched


def test_row_kernel_with_no_rows_does_nothing():
    out = np.full((0, 2), np.nan)
    _ROW_NORM(0, np.empty((0, 3)), 1.0, out)
    assert out.shape == (0, 2)


def test_row_kernel_rejects_bad_declarations():
    with pytest.raises(ValueError, match="not parameters"):
        _backend.RowKernel(_scaled_row_norm, writes=("result",))
    too_many = _backend.RowKernel(
        _scaled_row_norm, workspace=lambda *args: [((1,), np.float64)] * 5
    )
    with pytest.raises(ValueError, match="at most 4"):
        too_many.workspaces(())


def test_registered_row_kernel_is_found_by_name():
    @_backend.register_row_kernel("test_copy_rows", writes=("out",))
    def copy_rows(row, x, out):
        for j in range(x.shape[1]):
            out[row, j] = x[row, j]

    # The decorator hands back the plain body, still callable from Python.
    assert isinstance(copy_rows, types.FunctionType)
    found = kernel("test_copy_rows", np)
    assert isinstance(found, _backend.RowKernel)
    x = np.arange(12.0).reshape(4, 3)
    out = np.zeros_like(x)
    found(4, x, out)
    assert_allclose(out, x)
    with pytest.raises(KeyError, match="No kernel named"):
        kernel("no_such_kernel")


def test_compiled_copies_are_named_after_their_source():
    # The on-disk cache is keyed by these names: a body whose helper changes
    # gets a new name (and is compiled again) even if its own file did not.
    first = _backend._digest(_backend._elementwise_1, (("scalar_body", _sum_of),))
    second = _backend._digest(_backend._elementwise_1,
                              (("scalar_body", _scaled_row_norm),))
    assert first != second
    assert _backend._digest(_scaled_row_norm) == _backend._digest(_scaled_row_norm)


def test_launch_rule_is_shared():
    assert _backend.cuda_launch_shape(0) == (1, _backend.CUDA_THREADS_PER_BLOCK)
    assert _backend.cuda_launch_shape(_backend.CUDA_THREADS_PER_BLOCK + 1) == (
        2, _backend.CUDA_THREADS_PER_BLOCK)
    assert _backend.kernel_target(get_namespace(np.ones(1))) == "cpu"
    assert _backend.kernel_target(types.SimpleNamespace(__name__="cupy")) == "cuda"
    assert _backend.kernel_target(array_api_strict) == "host"


@pytest.mark.cudasim
def test_cuda_row_kernel_matches_cpu_driver(monkeypatch):
    x, expected = _row_norm_problem(n_rows=150)
    # A small workspace budget makes the launcher split the rows into
    # several chunks, each a launch of its own.
    monkeypatch.setattr(_backend, "CUDA_WORKSPACE_ELEMENTS", 7 * 40)
    if _backend.cuda_simulator_enabled():
        out = np.full((x.shape[0], 2), np.nan)
        _ROW_NORM.run_cuda(x.shape[0], x, 2.5, out)
    else:
        cupy = _backend.require_cupy()
        device_out = cupy.full((x.shape[0], 2), np.nan)
        _ROW_NORM(x.shape[0], cupy.asarray(x), 2.5, device_out)
        out = device_out.get()
    assert_allclose(out, expected, rtol=1e-12)


# --------------------------------------------------------------------------
# Host and device moves, sparse matrices
# --------------------------------------------------------------------------
def test_public_moves_are_exported():
    import sparsesolve
    from sparsesolve import utils

    assert sparsesolve.to_numpy is _backend.to_numpy is utils.to_numpy
    assert sparsesolve.to_device is _backend.to_device is utils.to_device


def test_to_device_mirrors_a_namespace_and_the_host():
    import scipy.sparse as sp

    like = array_api_strict.asarray([1.0])
    moved = _backend.to_device(np.array([0.5, 1.5]), like)
    assert get_namespace(moved) is array_api_strict
    assert_allclose(to_numpy(moved), [0.5, 1.5])
    host = _backend.to_device(moved, "cpu")
    assert isinstance(host, np.ndarray)
    assert_allclose(host, [0.5, 1.5])
    matrix = sp.random(5, 4, density=0.5, format="csc", random_state=0)
    assert _backend.to_device(matrix, "cpu") is matrix
    assert to_numpy(matrix) is matrix
    with pytest.raises(ValueError, match="device must be"):
        _backend.to_device(host, "tpu")
    with pytest.raises(TypeError, match="device must be"):
        _backend.to_device(host, 3)


def test_to_device_gpu_explains_missing_gpu(monkeypatch):
    monkeypatch.setattr(_backend, "_cupy_status", lambda: (None, "no device here"))
    with pytest.raises(RuntimeError, match="no device here"):
        _backend.to_device(np.ones(2), "gpu")


def test_sparse_helpers_on_the_host():
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    matrix = sp.eye(3, format="coo")
    assert _backend.is_sparse(matrix)
    assert not _backend.is_device_sparse(matrix)
    assert _backend.on_host(matrix)
    assert _backend.on_host(np.ones(2))
    assert _backend.on_host(spla.aslinearoperator(sp.eye(2)))
    assert not _backend.on_host(array_api_strict.asarray([1.0]))
    assert _backend.sparse_namespace(matrix) is sp
    assert _backend.sparse_namespace(get_namespace(np.ones(1))) is sp
    assert _backend.sparse_linalg_namespace(np.ones(1)) is spla
    assert _backend.matrix_namespace(matrix) is get_namespace(np.ones(1))
    assert _backend.sparse_to_host(matrix).format == "csr"
    assert _backend.sparse_like(matrix, np.ones(1)).format == "csr"


@pytest.mark.gpu
def test_sparse_helpers_on_the_gpu():
    import scipy.sparse as sp

    cupy = _backend.require_cupy()
    matrix = sp.random(6, 5, density=0.4, format="csr", random_state=0)
    device = _backend.to_device(matrix, "gpu")
    assert _backend.is_device_sparse(device)
    assert not _backend.on_host(device)
    assert _backend.sparse_namespace(device).__name__ == "cupyx.scipy.sparse"
    assert _backend.matrix_namespace(device).__name__ == "array_api_compat.cupy"
    back = to_numpy(device)
    assert sp.issparse(back)
    assert (back != matrix).nnz == 0
    array = _backend.to_device(np.arange(3.0), "gpu")
    assert isinstance(array, cupy.ndarray)
    assert_allclose(to_numpy(array), np.arange(3.0))


def _package_modules():
    import pathlib

    root = pathlib.Path(_backend.__file__).parent
    for path in sorted(root.rglob("*.py")):
        yield str(path.relative_to(root)), ast.parse(path.read_text())


def test_only_the_backend_imports_numba_or_device_libraries():
    # Every compile decision (numba.njit, numba.cuda.jit, intrinsics) and
    # every import of a device library lives in _backend.py; kernel modules
    # register bodies or use cpu_kernel / cpu_intrinsic.
    libraries = ("numba", "llvmlite", "cupy", "cupyx")
    offenders = []
    for name, tree in _package_modules():
        if name == "_backend.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            offenders += [f"{name}:{node.lineno} {m}" for m in modules
                          if m.split(".")[0] in libraries]
    assert offenders == []


def test_no_module_outside_the_backend_tests_namespace_names():
    # Algorithms ask the backend where kernels run (kernel_target,
    # same_device, ...) instead of testing which library an array is from.
    checks = {"is_numpy_namespace", "is_cupy_namespace"}
    offenders = [
        f"{name}:{node.lineno}"
        for name, tree in _package_modules() if name != "_backend.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id in checks
    ]
    assert offenders == []
