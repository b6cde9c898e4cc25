"""The one place that knows about NumPy, CuPy and numba.

Algorithms are written once against an array namespace ``xp`` returned by
:func:`get_namespace`. NumPy input runs on the CPU, CuPy input runs on the
GPU, and results come back in the namespace they came in ("input mirroring").

Loops that NumPy cannot vectorise are written as plain Python bodies in a
family's ``_kernels.py``: scalar bodies (one element in, one out) registered
with :func:`register_elementwise`, and row bodies (one row, sample or pixel
at a time, with scratch workspaces) registered with
:func:`register_row_kernel`. This module compiles each twice on demand,
``numba.njit`` inside a ``prange`` driver for the CPU and
``numba.cuda.jit(device=True)`` inside a grid kernel for CuPy arrays, with one
launch rule (:data:`CUDA_THREADS_PER_BLOCK`, :data:`CPU_ROW_BLOCKS`) and one
host fallback for other array libraries (:func:`kernel_target`).
:func:`kernel` hands an algorithm the kernel by name. Host-only loops (the
Poisson cycle and network kernels, which CuPy input replaces with library
calls) are compiled with :func:`cpu_kernel`, loop in parallel over this
module's ``prange`` (numba's, imported on first use) and may call LLVM IR
micro-kernels made with :func:`cpu_intrinsic`; no other module imports numba.

Sparse matrices (SciPy on the host, ``cupyx.scipy.sparse`` on the GPU) go
through :func:`is_sparse`, :func:`on_host`, :func:`sparse_namespace` and
:func:`to_numpy`; users move data with the public :func:`to_numpy` and
:func:`to_device` (also ``sparsesolve.to_numpy`` / ``sparsesolve.to_device``).

CuPy and numba-cuda are imported lazily, the first time a CuPy array arrives,
so ``import sparsesolve`` works on machines with neither.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import inspect
import math
import os
import types

import array_api_compat
import array_api_compat.numpy  # noqa: F401 - get_namespace returns it
import numpy as np

__all__ = [
    "CPU_ROW_BLOCKS",
    "CPU_SERIAL_ELEMENTS",
    "CUDA_THREADS_PER_BLOCK",
    "ElementwiseKernel",
    "RowKernel",
    "SizedCpuKernel",
    "as_contiguous",
    "available_memory",
    "compile_body",
    "cpu_has_feature",
    "cpu_intrinsic",
    "cpu_kernel",
    "cuda_launch_shape",
    "cuda_simulator_enabled",
    "cupy_or_none",
    "device_of",
    "get_namespace",
    "is_array",
    "is_cupy_namespace",
    "is_device_linear_operator",
    "is_device_sparse",
    "is_numpy_namespace",
    "is_sparse",
    "kernel",
    "kernel_target",
    "kernel_threads",
    "matrix_namespace",
    "numba_thread_count",
    "numba_threads",
    "on_host",
    "reassociable",
    "register_elementwise",
    "register_row_kernel",
    "require_cupy",
    "same_device",
    "sparse_like",
    "sparse_linalg_namespace",
    "sparse_namespace",
    "sparse_to_host",
    "to_device",
    "to_namespace",
    "to_numpy",
]


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------
def is_array(obj):
    """Whether ``obj`` is an array of a known array library (not a list).

    Use this rather than ``hasattr(obj, "__array_namespace__")``: CuPy and
    PyTorch arrays do not carry that attribute, and array-api-compat knows
    them anyway.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import is_array
    >>> is_array(np.ones(2)), is_array([1.0, 2.0])
    (True, False)
    """
    return array_api_compat.is_array_api_obj(obj)


def get_namespace(*arrays):
    """Return the array namespace shared by ``arrays``.

    ``None``, Python scalars, lists, tuples and SciPy sparse matrices are
    ignored; when nothing array-like is left the NumPy namespace is returned.

    Parameters
    ----------
    *arrays : array objects
        NumPy, CuPy or any array API compatible arrays.

    Returns
    -------
    xp : module
        An array API compatible namespace (``array_api_compat`` wrapped for
        NumPy and CuPy).

    Raises
    ------
    TypeError
        If the arrays come from different libraries (for example one NumPy
        and one CuPy array).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import get_namespace
    >>> xp = get_namespace(np.ones(3))
    >>> xp.__name__
    'array_api_compat.numpy'
    """
    candidates = [a for a in arrays if is_array(a) and not _is_scipy_sparse(a)]
    if not candidates:
        return array_api_compat.numpy
    try:
        return array_api_compat.array_namespace(*candidates)
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] for a in candidates})
        raise TypeError(
            "All arrays must come from the same array library; got arrays from "
            f"{kinds}. Move them to one device first (sparsesolve._backend."
            "to_numpy or cupy.asarray)."
        ) from exc


def _is_scipy_sparse(obj):
    return type(obj).__module__.startswith("scipy.sparse")


def is_numpy_namespace(xp):
    """Return True when ``xp`` is NumPy or its array-api-compat wrapper."""
    return xp.__name__ in {"numpy", "array_api_compat.numpy"}


def is_cupy_namespace(xp):
    """Return True when ``xp`` is CuPy or its array-api-compat wrapper."""
    return xp.__name__ in {"cupy", "array_api_compat.cupy"}


def device_of(array):
    """Return ``"cpu"`` for host arrays and ``"gpu"`` for CuPy arrays.

    Parameters
    ----------
    array : array object
        Any array.

    Returns
    -------
    device : {"cpu", "gpu"}
        Where the data lives, in the words the rest of the package uses.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import device_of
    >>> device_of(np.zeros(2))
    'cpu'
    """
    return "gpu" if is_cupy_namespace(get_namespace(array)) else "cpu"


def to_numpy(array):
    """Copy ``array`` to the host: a NumPy array (no copy for NumPy input).

    Sparse matrices come back as SciPy sparse matrices in the same format
    (``cupyx.scipy.sparse`` is copied from the GPU; SciPy input is returned
    as it is).

    Parameters
    ----------
    array : array or sparse matrix
        NumPy, CuPy or any array API array; SciPy or cupyx sparse matrix.

    Returns
    -------
    ndarray or scipy.sparse matrix
        The same values on the host.

    See Also
    --------
    to_device : The opposite move.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve import to_numpy
    >>> to_numpy(np.arange(3))
    array([0, 1, 2])
    """
    if isinstance(array, np.ndarray):
        return array
    if is_sparse(array):
        return array.get() if is_device_sparse(array) else array
    xp = get_namespace(array)
    if is_numpy_namespace(xp):
        return np.asarray(array)
    if is_cupy_namespace(xp):
        return array.get()
    try:
        return np.from_dlpack(array)
    except (TypeError, RuntimeError, BufferError, ValueError):
        pass
    try:
        # Arrays on an accelerator (PyTorch CUDA tensors) cannot be viewed by
        # NumPy: the library copies them to the host first.
        return np.from_dlpack(array_api_compat.to_device(array, "cpu"))
    except (TypeError, RuntimeError, BufferError, ValueError, AttributeError):
        # Some namespaces (array-api-strict's fake devices) refuse DLPack
        # export; going through the buffer protocol still works for them.
        return np.asarray(memoryview(array))


def to_device(array, device="gpu"):
    """Move ``array`` (or a sparse matrix) to ``device``, as estimators expect it.

    Estimators mirror their input: CuPy arrays and ``cupyx.scipy.sparse``
    matrices run on the GPU and give CuPy results, NumPy arrays and SciPy
    sparse matrices run on the CPU. This moves data between the two.

    Parameters
    ----------
    array : array or sparse matrix
        NumPy, CuPy or any array API array; SciPy or cupyx sparse matrix.
    device : {"gpu", "cpu"} or array, default="gpu"
        ``"gpu"`` gives a CuPy array (a cupyx sparse matrix for sparse
        input), ``"cpu"`` a NumPy array (SciPy sparse), and an array gives
        ``array`` in that array's namespace, on its device.

    Returns
    -------
    array or sparse matrix
        The same values on ``device`` (no copy when already there).

    Raises
    ------
    RuntimeError
        For ``device="gpu"`` when CuPy is missing or sees no GPU.

    See Also
    --------
    to_numpy : Move to the host.
    sparsesolve.utils.to_cpu : Move a fitted estimator to the host.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve import to_device
    >>> to_device(np.arange(3), "cpu")
    array([0, 1, 2])
    >>> import array_api_strict as xp
    >>> to_device([0.5, 1.0], xp.asarray([1.0]))
    Array([0.5, 1. ], dtype=array_api_strict.float64)
    """
    if isinstance(device, str):
        if device == "cpu":
            return to_numpy(array) if is_array(array) or is_sparse(array) else (
                np.asarray(array))
        if device != "gpu":
            raise ValueError(
                f"device must be 'cpu', 'gpu' or an array; got {device!r}."
            )
        cupy = require_cupy()
        if is_sparse(array):
            if is_device_sparse(array):
                return array
            import cupyx.scipy.sparse as device_sparse

            formats = {"csr": device_sparse.csr_matrix,
                       "csc": device_sparse.csc_matrix,
                       "coo": device_sparse.coo_matrix}
            convert = formats.get(array.format)
            return convert(array) if convert else device_sparse.csr_matrix(
                array.tocsr())
        if is_array(array) and is_cupy_namespace(get_namespace(array)):
            return array
        host = to_numpy(array) if is_array(array) else np.asarray(array)
        return cupy.asarray(host)
    if not is_array(device):
        raise TypeError(
            "device must be 'cpu', 'gpu' or an array whose device to use; got "
            f"{type(device).__name__}."
        )
    xp = get_namespace(device)
    target = kernel_target(xp)
    if target == "cpu":
        return to_device(array, "cpu")
    if target == "cuda":
        return to_device(array, "gpu")
    host = to_numpy(array) if is_array(array) else np.asarray(array)
    return to_namespace(host, xp, like=device)


def to_namespace(array, xp, like=None):
    """Move a host array into namespace ``xp`` (on the device of ``like``).

    Random starts and host-side precomputations are made with NumPy and moved
    with this function, so CPU and GPU runs start from the same point.

    Parameters
    ----------
    array : ndarray
        Host data.
    xp : module
        Target namespace from :func:`get_namespace`.
    like : array, optional
        An array already in ``xp`` whose device should be used.

    Returns
    -------
    array
        ``array`` as an ``xp`` array.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import get_namespace, to_namespace
    >>> xp = get_namespace(np.ones(2))
    >>> to_namespace(np.arange(2.0), xp)
    array([0., 1.])
    """
    if is_numpy_namespace(xp):
        return np.asarray(array)
    if like is not None:
        return xp.asarray(array, device=array_api_compat.device(like))
    return xp.asarray(array)


def as_contiguous(array, dtype=None, *, copy=False):
    """``array`` as a C-contiguous array of its own namespace (a kernel input).

    Compiled kernels are specialised for C-ordered arrays; NumPy and CuPy
    input is made contiguous (copied only when needed, or when ``copy``),
    other array API arrays are converted with ``asarray`` (they reach the
    kernels through the host, see :func:`kernel_target`).

    Parameters
    ----------
    array : array
        Input array.
    dtype : dtype, optional
        Dtype of the result; that of ``array`` by default.
    copy : bool, default=False
        Always return a new array (a kernel's output initialised from
        ``array``).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import as_contiguous
    >>> as_contiguous(np.ones((3, 2)).T).flags.c_contiguous
    True
    """
    xp = get_namespace(array)
    target = kernel_target(xp)
    if target == "host":
        return xp.asarray(array, dtype=dtype, copy=True if copy else None)
    library = np if target == "cpu" else require_cupy()
    if copy:
        return library.array(array, dtype=dtype, order="C", copy=True)
    return library.ascontiguousarray(array, dtype=dtype)


# --------------------------------------------------------------------------
# Sparse matrices (SciPy on the host, cupyx.scipy.sparse on the GPU)
# --------------------------------------------------------------------------
def is_sparse(obj):
    """True for a SciPy sparse matrix/array or a ``cupyx.scipy.sparse`` matrix.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsesolve._backend import is_sparse
    >>> is_sparse(sp.eye(2)), is_sparse(np.eye(2))
    (True, False)
    """
    return _is_scipy_sparse(obj) or is_device_sparse(obj)


def is_device_sparse(obj):
    """True for a ``cupyx.scipy.sparse`` matrix (sparse data on the GPU).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsesolve._backend import is_device_sparse
    >>> is_device_sparse(sp.eye(2))
    False
    """
    return type(obj).__module__.startswith("cupyx.scipy.sparse")


def is_device_linear_operator(obj):
    """True for a ``cupyx.scipy.sparse.linalg.LinearOperator`` (GPU operator)."""
    return any(cls.__module__.startswith("cupyx.scipy.sparse.linalg")
               for cls in type(obj).__mro__)


def on_host(obj):
    """Whether the array, sparse matrix or operator ``obj`` lives on the host.

    NumPy arrays, SciPy sparse matrices and SciPy (or duck-typed)
    LinearOperators do; CuPy arrays, ``cupyx.scipy.sparse`` matrices and
    cupyx LinearOperators do not. Arrays of other array API libraries count
    as not on the host: the solvers that care take NumPy or CuPy only.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsesolve._backend import on_host
    >>> on_host(np.ones(2)), on_host(sp.eye(2))
    (True, True)
    """
    if is_sparse(obj):
        return not is_device_sparse(obj)
    if is_array(obj):
        return isinstance(obj, np.ndarray)
    return not is_device_linear_operator(obj)


def same_device(obj, xp):
    """Whether ``obj`` lives where namespace ``xp`` computes.

    Host objects (see :func:`on_host`) go with NumPy, GPU objects
    (``cupyx.scipy.sparse``, CuPy, cupyx LinearOperators) with CuPy. Solvers
    check a matrix against its right-hand side with this before mixing them.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsesolve._backend import get_namespace, same_device
    >>> same_device(sp.eye(2), get_namespace(np.ones(2)))
    True
    """
    return on_host(obj) == is_numpy_namespace(xp)


def matrix_namespace(matrix):
    """The dense namespace that goes with a sparse (or dense) ``matrix``.

    NumPy's for SciPy sparse matrices, CuPy's for ``cupyx.scipy.sparse``
    ones, and :func:`get_namespace` of anything else.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsesolve._backend import matrix_namespace
    >>> matrix_namespace(sp.eye(2)).__name__
    'array_api_compat.numpy'
    """
    if is_device_sparse(matrix) or is_device_linear_operator(matrix):
        require_cupy()
        return importlib.import_module("array_api_compat.cupy")
    if _is_scipy_sparse(matrix):
        return array_api_compat.numpy
    return get_namespace(matrix)


def sparse_namespace(like):
    """``scipy.sparse`` or ``cupyx.scipy.sparse``, matching ``like``.

    Parameters
    ----------
    like : sparse matrix, array or namespace
        Something that lives on the host (SciPy, NumPy) or on the GPU (cupyx,
        CuPy).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import sparse_namespace
    >>> sparse_namespace(np.ones(2)).__name__
    'scipy.sparse'
    """
    if _on_gpu(like):
        return importlib.import_module("cupyx.scipy.sparse")
    return importlib.import_module("scipy.sparse")


def sparse_linalg_namespace(like):
    """``scipy.sparse.linalg`` or ``cupyx.scipy.sparse.linalg``, matching ``like``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import sparse_linalg_namespace
    >>> sparse_linalg_namespace(np.ones(2)).__name__
    'scipy.sparse.linalg'
    """
    return importlib.import_module(f"{sparse_namespace(like).__name__}.linalg")


def _on_gpu(like):
    if isinstance(like, types.ModuleType):
        return is_cupy_namespace(like)
    if is_sparse(like) or is_device_linear_operator(like):
        return not on_host(like)
    return is_array(like) and is_cupy_namespace(get_namespace(like))


def sparse_to_host(matrix):
    """The SciPy CSR copy of a SciPy or cupyx sparse ``matrix`` (no copy if CSR).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsesolve._backend import sparse_to_host
    >>> sparse_to_host(sp.eye(2, format="coo")).format
    'csr'
    """
    if not is_sparse(matrix):
        raise TypeError(f"expected a sparse matrix; got {type(matrix).__name__}.")
    matrix = to_numpy(matrix)
    import scipy.sparse as sp

    return matrix if sp.isspmatrix_csr(matrix) else sp.csr_matrix(matrix)


def sparse_like(matrix, like):
    """Move the SciPy sparse ``matrix`` to where ``like`` lives (CSR).

    Host data prepared once (a multigrid hierarchy, a factor) goes to the GPU
    through this function when the caller's matrix (or array) is a cupyx
    (or CuPy) one.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsesolve._backend import sparse_like
    >>> sparse_like(sp.eye(2), sp.eye(3)).shape
    (2, 2)
    """
    import scipy.sparse as sp

    host = sp.csr_matrix(matrix)
    if _on_gpu(like):
        return sparse_namespace(like).csr_matrix(host)
    return host


# --------------------------------------------------------------------------
# CuPy, imported lazily
# --------------------------------------------------------------------------
@functools.cache
def _cupy_status():
    """Import CuPy and probe a device once; return (module or None, reason)."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        return None, f"CuPy is not installed ({exc}); install sparsesolve[gpu]"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy is installed but sees no CUDA device"
        cupy.zeros(1).sum().item()
    except Exception as exc:  # noqa: BLE001 - CuPy raises driver-specific types
        return None, f"CuPy is installed but cannot reach a CUDA device ({exc})"
    return cupy, ""


def cupy_or_none():
    """Return the ``cupy`` module when it can reach a GPU, else ``None``.

    Examples
    --------
    >>> from sparsesolve._backend import cupy_or_none
    >>> cupy_or_none() is None or hasattr(cupy_or_none(), "asarray")
    True
    """
    return _cupy_status()[0]


def require_cupy():
    """Return the ``cupy`` module, or raise a clear error naming the cause.

    Raises
    ------
    RuntimeError
        When CuPy is missing or cannot reach a CUDA device.
    """
    cupy, reason = _cupy_status()
    if cupy is None:
        raise RuntimeError(f"A GPU run was requested but {reason}.")
    return cupy


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------
@contextlib.contextmanager
def numba_threads(n_jobs):
    """Run numba parallel regions with ``n_jobs`` threads inside the block.

    Numba's thread pool ignores threadpoolctl and ``OMP_NUM_THREADS``, so
    scikit-learn style ``n_jobs`` is mapped onto ``numba.set_num_threads``.
    ``None`` keeps the current setting; negative values count back from the
    number of cores as in joblib (``-1`` means all of them).

    Parameters
    ----------
    n_jobs : int or None
        Number of threads.
    """
    import numba

    if n_jobs is None:
        yield
        return
    available = numba.config.NUMBA_NUM_THREADS
    wanted = n_jobs if n_jobs > 0 else available + 1 + n_jobs
    wanted = int(min(max(wanted, 1), available))
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def numba_thread_count():
    """The number of threads numba's parallel loops use now.

    Other CPU engines (PyTorch's) follow it, so that one ``n_jobs`` (see
    :func:`numba_threads`) governs every engine of an estimator.
    """
    import numba

    return numba.get_num_threads()


@contextlib.contextmanager
def kernel_threads(n_jobs, xp):
    """:func:`numba_threads` around kernels that alternate with matrix products.

    On the CPU (``xp`` is NumPy) BLAS is also limited to one thread inside
    the block: numba's workers keep spinning for a while after each parallel
    loop, and BLAS threads started in between fight them for the cores (on
    2 cores a small matrix product then took 15x longer). scikit-learn's
    KMeans limits BLAS around its OpenMP loops for the same reason.

    Parameters
    ----------
    n_jobs : int or None
        Number of numba threads (see :func:`numba_threads`).
    xp : module
        Namespace of the data.
    """
    with numba_threads(n_jobs):
        if kernel_target(xp) == "cpu":
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                yield
        else:
            yield


# --------------------------------------------------------------------------
# Where kernels run and how they are launched: one rule each
# --------------------------------------------------------------------------
# Threads per block of every CUDA grid kernel: a multiple of the warp size,
# small enough that register-heavy row bodies (a k x k Cholesky per thread)
# still fit several blocks on a multiprocessor, and plenty for elementwise
# bodies, which are memory bound.
CUDA_THREADS_PER_BLOCK = 128

# The CPU driver of a row kernel splits its rows into at most this many
# contiguous blocks (the prange iterations) and gives each block its own
# workspaces. numba splits prange iterations evenly across threads either
# way; 256 blocks keep that split fine for any realistic thread count while
# workspaces are allocated 256 times per launch rather than once per row.
CPU_ROW_BLOCKS = 256

# Elementwise kernels over fewer elements than this run serially on the CPU:
# a scalar body costs nanoseconds, a wake-up of numba's thread pool
# microseconds on an idle machine and milliseconds on a loaded one.
CPU_SERIAL_ELEMENTS = 1 << 15

# GPU workspaces are per thread (one thread per row). Rows are launched in
# chunks so that the scratch space of one launch stays below this many
# elements (512 MiB of float64).
CUDA_WORKSPACE_ELEMENTS = 1 << 26

# numba.cuda, imported by _numba_cuda on first GPU use (or under the CUDA
# simulator). Compiled GPU kernels see it in their globals, where numba's
# simulator expects to find it.
cuda = None


def kernel_target(xp):
    """Where compiled kernels run for arrays of namespace ``xp``.

    This is the one host-fallback rule of the package: NumPy arrays run the
    numba CPU drivers, CuPy arrays the numba-cuda kernels, and arrays of any
    other array API library (array-api-strict in the tests) are copied to
    NumPy, run on the CPU and copied back into their namespace.

    Parameters
    ----------
    xp : module
        Namespace from :func:`get_namespace`.

    Returns
    -------
    target : {"cpu", "cuda", "host"}

    Examples
    --------
    >>> import numpy as np, array_api_strict
    >>> from sparsesolve._backend import get_namespace, kernel_target
    >>> kernel_target(get_namespace(np.ones(1))), kernel_target(array_api_strict)
    ('cpu', 'host')
    """
    if is_numpy_namespace(xp):
        return "cpu"
    if is_cupy_namespace(xp):
        return "cuda"
    return "host"


def cuda_launch_shape(n_threads):
    """``(blocks, threads_per_block)`` of a 1-D grid covering ``n_threads``.

    Examples
    --------
    >>> from sparsesolve._backend import cuda_launch_shape
    >>> cuda_launch_shape(1000)
    (8, 128)
    """
    blocks = (n_threads + CUDA_THREADS_PER_BLOCK - 1) // CUDA_THREADS_PER_BLOCK
    return max(blocks, 1), CUDA_THREADS_PER_BLOCK


def cuda_simulator_enabled():
    """Return True when numba runs CUDA kernels in its CPU simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def _numba_cuda():
    global cuda
    if cuda is None:
        try:
            from numba import cuda as numba_cuda
        except ImportError as exc:  # pragma: no cover - numba ships cuda
            raise RuntimeError(
                "The GPU path needs numba-cuda; install sparsesolve[gpu]."
            ) from exc
        cuda = numba_cuda
    return cuda


# --------------------------------------------------------------------------
# One plain Python body, compiled for each target
# --------------------------------------------------------------------------
def _is_body(value, caller):
    """Whether the global ``value`` seen by ``caller`` is a body to compile.

    Plain Python functions of the caller's module or of this package are
    compiled along with the body that calls them; everything else (modules,
    numba dispatchers, constants) is left as it is.
    """
    if not isinstance(value, types.FunctionType) or value is caller:
        return False
    module = value.__module__ or ""
    return module == caller.__module__ or module.startswith("sparsesolve.")


def _called_bodies(function, bindings):
    """``{name: plain function}`` of the bodies ``function`` refers to.

    ``bindings`` (name -> plain function) always count, whatever module
    they come from: they are the user's body behind a generic adaptor.
    """
    found = dict(bindings)
    for name in function.__code__.co_names:
        value = function.__globals__.get(name)
        if name not in found and _is_body(value, function):
            found[name] = value
    return found


_DIGESTS: dict = {}


def _digest(function, bindings=(), _active=None):
    """A short hash of ``function``'s source and of every body it calls.

    It goes into the qualified name of each compiled copy, which is what
    numba names its on-disk cache after: numba checks only the time stamp of
    the file a function is defined in, so a copy whose helper lives in
    another file would otherwise keep stale machine code when that helper
    changes.
    """
    key = (function, tuple(bindings))
    if key in _DIGESTS:
        return _DIGESTS[key]
    active = set() if _active is None else _active
    if function in active:
        raise RecursionError(
            f"Kernel body {function.__qualname__!r} calls itself through other "
            "bodies; numba cannot compile recursive device functions."
        )
    active.add(function)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = function.__code__.co_code.hex()
    parts = [function.__module__ or "", function.__qualname__, source]
    for name, dependency in sorted(_called_bodies(function, dict(bindings)).items()):
        parts += [name, _digest(dependency, (), active)]
    active.discard(function)
    digest = hashlib.sha1("\0".join(parts).encode()).hexdigest()[:10]
    _DIGESTS[key] = digest
    return digest


def _cacheable(function):
    # numba caches compiled code next to the source file; bodies typed in a
    # notebook or a doctest have none and are compiled every session.
    return os.path.isfile(function.__code__.co_filename)


def _copy_function(function, namespace, qualname):
    """A copy of ``function`` that looks its globals up in ``namespace``.

    Copies carry no closure, which keeps numba's on-disk cache valid across
    processes (a closure over a dispatcher hashes differently every run).
    """
    copy = types.FunctionType(
        function.__code__, namespace, function.__name__, function.__defaults__
    )
    copy.__qualname__ = qualname
    copy.__module__ = function.__module__
    copy.__doc__ = function.__doc__
    return copy


_COMPILED: dict = {}


def reassociable(function):
    """Mark a plain body whose floating-point sums may be evaluated in any order.

    numba compiles without ``fastmath``, so a running sum such as a dot
    product is one chain of dependent additions that the CPU executes one at
    a time; allowing reassociation (and fused multiply-adds) lets LLVM keep
    several partial sums in SIMD registers, as BLAS does. Only the CPU copy
    changes (a GPU thread runs one scalar chain either way), and only in the
    last bits of the result. Use it on small helpers (dot products), not on
    whole kernels whose order of operations matters.

    Examples
    --------
    >>> from sparsesolve._backend import reassociable
    >>> @reassociable
    ... def dot(x, y, n):
    ...     total = x[0] * y[0]
    ...     for i in range(1, n):
    ...         total += x[i] * y[i]
    ...     return total
    >>> dot([1.0, 2.0], [3.0, 4.0], 2)
    11.0
    """
    function.reassociate = True
    return function


def compile_body(function, target, *, inline=False, bindings=None):
    """Compile the plain Python ``function`` for ``target`` ("cpu" or "cuda").

    Every plain function of the package that ``function`` calls is compiled
    the same way first, and the compiled copy calls those compiled helpers:
    one source serves numba's CPU target, its CUDA target (as a device
    function) and plain Python (in the tests). Kernel modules therefore hold
    only plain bodies; this is the one place that calls ``numba.njit`` or
    ``numba.cuda.jit`` on them.

    Parameters
    ----------
    function : function
        A module-level function using only scalar arithmetic, :mod:`math`,
        indexing of the arrays it is given and calls to other such functions.
    target : {"cpu", "cuda"}
        ``"cpu"`` gives a ``numba.njit(nogil=True, cache=True)`` dispatcher,
        ``"cuda"`` a ``numba.cuda.jit(device=True)`` device function.
    inline : bool, default=False
        Ask numba to inline the CPU function into its callers (small bodies
        called once per element; not for functions called with ``*args``).
    bindings : dict, optional
        Globals to replace in ``function`` (name -> plain function), for
        generic adaptors that call a body chosen at run time; bound bodies
        are inlined.

    Returns
    -------
    compiled : numba dispatcher or CUDA device function
    """
    bindings = dict(bindings or {})
    key = (function, target, inline, tuple(sorted(bindings.items())))
    if key in _COMPILED:
        return _COMPILED[key]
    namespace = dict(function.__globals__)
    for name, dependency in _called_bodies(function, bindings).items():
        namespace[name] = compile_body(dependency, target, inline=name in bindings)
    digest = _digest(function, tuple(sorted(bindings.items())))
    qualname = f"{function.__qualname__}_{digest}"
    if target == "cpu":
        from numba import njit

        # error_model="numpy": a division by zero gives inf/NaN as on the
        # GPU (CUDA never raises) instead of a ZeroDivisionError.
        options = {"nogil": True, "cache": _cacheable(function),
                   "error_model": "numpy"}
        if inline:
            options["inline"] = "always"
        if getattr(function, "reassociate", False):
            # See reassociable: LLVM may reorder this body's sums (and so
            # vectorise them); NaN and infinity keep their IEEE meaning.
            options["fastmath"] = {"reassoc", "contract"}
        compiled = njit(**options)(_copy_function(function, namespace, qualname))
    elif target == "cuda":
        namespace["cuda"] = _numba_cuda()
        compiled = namespace["cuda"].jit(device=True)(
            _copy_function(function, namespace, qualname)
        )
    else:
        raise ValueError(f"target must be 'cpu' or 'cuda'; got {target!r}.")
    _COMPILED[key] = compiled
    return compiled


# --------------------------------------------------------------------------
# CPU-only kernels: host loops with no GPU twin
# --------------------------------------------------------------------------
# Some hot loops run only on the host: the fused CSR/stencil steps of the
# multilevel cycle, the sequential IC(0) recurrences, the register-blocked
# convolution of the Poisson network (each has an array-API or cuSPARSE
# counterpart that CuPy input takes instead). Their modules hold the plain
# Python bodies and compile them through these helpers, so the numba options
# are chosen here.
def __getattr__(name):
    # numba's ``prange``, imported only when a kernel module asks for it
    # (``import sparsesolve`` does not import numba). A CPU kernel compiled
    # with ``parallel=True`` must see numba's own object; in plain Python it
    # behaves as ``range``.
    if name == "prange":
        from numba import prange

        return prange
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SizedCpuKernel:
    """A serial and a parallel compilation of one body, chosen by work size.

    Waking numba's thread pool costs more than the work on small inputs (a
    few microseconds on an idle machine, milliseconds on a loaded one), so
    calls whose ``work(*args)`` is below ``serial_below`` run on the calling
    thread. Made by :func:`cpu_kernel` with ``serial_below``; ``serial``
    and ``parallel`` are the two numba dispatchers.
    """

    def __init__(self, body, work, serial_below):
        from numba import njit

        cache = _cacheable(body)
        self.serial = njit(cache=cache, nogil=True)(body)
        self.parallel = njit(cache=cache, nogil=True, parallel=True)(body)
        self.work = work
        self.serial_below = serial_below
        self.py_func = body
        functools.update_wrapper(self, body)

    def __call__(self, *args):
        if self.work(*args) < self.serial_below:
            return self.serial(*args)
        return self.parallel(*args)

    def __reduce__(self):
        # Pickled by reference, as a plain function is: estimators that hold
        # a kernel (a fitted multigrid level) pickle and load in another
        # process, which compiles or loads it from its own cache.
        return (_module_attribute, (self.__module__, self.__qualname__))


def _module_attribute(module, name):
    """``module.name`` (unpickles a :class:`SizedCpuKernel`)."""
    return getattr(importlib.import_module(module), name)


def cpu_kernel(function=None, *, parallel=False, inline=False, serial_below=None,
               work=None):
    """Compile a host-only loop with numba, with the package's CPU options.

    Use as a decorator (``@cpu_kernel`` or ``@cpu_kernel(parallel=True)``)
    on a module-level function of a ``_kernels.py``. Loops over
    ``prange`` (imported from this module) run in parallel when
    ``parallel=True``. Kernels are cached on disk next to their source file
    and release the GIL.

    Parameters
    ----------
    function : function, optional
        The body; omitted when the decorator is called with options.
    parallel : bool, default=False
        Compile ``prange`` loops as parallel loops.
    inline : bool, default=False
        A small helper inlined into the kernels that call it (not cached on
        its own, it never runs on its own).
    serial_below : int, optional
        With ``parallel=True``: calls whose ``work(*args)`` is below this
        run a serial compilation of the same body (see
        :class:`SizedCpuKernel`).
    work : callable, optional
        ``work(*args) -> int``, the size of a call (required with
        ``serial_below``).

    Returns
    -------
    numba dispatcher (:class:`SizedCpuKernel` with ``serial_below``), or a
    decorator when ``function`` is None

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import cpu_kernel
    >>> @cpu_kernel
    ... def total(x):
    ...     s = 0.0
    ...     for v in x:
    ...         s += v
    ...     return s
    >>> total(np.arange(4.0))
    6.0
    """

    def decorate(body):
        from numba import njit

        if inline:
            return njit(inline="always", nogil=True)(body)
        if serial_below is not None:
            if not parallel or work is None:
                raise ValueError("serial_below needs parallel=True and work.")
            return SizedCpuKernel(body, work, serial_below)
        return njit(cache=_cacheable(body), nogil=True, parallel=parallel)(body)

    return decorate if function is None else decorate(function)


def cpu_has_feature(feature):
    """Whether numba compiles for a CPU with ``feature`` (e.g. ``"avx512f"``).

    The host CPU, unless ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` say
    otherwise: a portable cache (``NUMBA_CPU_NAME=generic``) has none.

    Examples
    --------
    >>> from sparsesolve._backend import cpu_has_feature
    >>> cpu_has_feature("no-such-feature")
    False
    """
    import numba

    features = numba.config.CPU_FEATURES
    if features is None:
        if numba.config.CPU_NAME not in (None, "host"):
            return False
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    return f"+{feature}" in features.split(",")


def cpu_intrinsic(codegen, parameters):
    """A function of CPU kernels, returning nothing, whose body is LLVM IR.

    For micro-kernels that numba's loop compiler cannot schedule (explicit
    vector registers and fused multiply-adds). ``codegen(llvm, context,
    builder, signature, args)`` emits the body; ``llvm`` carries the IR
    builders, ``llvm.ir`` (:mod:`llvmlite.ir`) and ``llvm.cgutils``
    (numba's code-generation helpers), and ``args`` the LLVM values of the
    arguments, typed as at the call site. Callable only from compiled
    kernels.

    Parameters
    ----------
    codegen : callable
        The IR generator.
    parameters : sequence of str
        Names of the function's parameters (numba types a call by them).

    Returns
    -------
    numba intrinsic
    """
    from llvmlite import ir
    from numba import types as numba_types
    from numba.core import cgutils
    from numba.extending import intrinsic

    llvm = types.SimpleNamespace(ir=ir, cgutils=cgutils)

    def typer(typingctx, *arguments):
        def generate(context, builder, signature, args):
            codegen(llvm, context, builder, signature, args)
            return context.get_dummy_value()

        return numba_types.void(*arguments), generate

    typer.__name__ = codegen.__name__
    typer.__qualname__ = codegen.__qualname__
    # A fixed arity: numba would otherwise lower the call as one taking
    # ``*args``.
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    typer.__signature__ = inspect.Signature(
        [inspect.Parameter(name, positional)
         for name in ("typingctx", *parameters)])
    return intrinsic(typer)


# Drivers: one per number of workspaces, for each target. ``row_body`` is
# bound to the compiled body of each kernel in a copy of the driver (see
# _driver), and so is numba's ``prange``; ``args`` is a tuple, passed on to
# the body with its row index.
# CPU: rows in contiguous blocks, workspace ``w[block]`` for each block.
def _cpu_rows_0(n_rows, n_blocks, args):
    for block in prange(n_blocks):  # noqa: F821 - numba's, bound by _driver
        for row in range(block * n_rows // n_blocks, (block + 1) * n_rows // n_blocks):
            row_body(row, *args)  # noqa: F821 - bound by _driver


def _cpu_rows_1(n_rows, n_blocks, args, w0):
    for block in prange(n_blocks):  # noqa: F821 - numba's, bound by _driver
        a = w0[block]
        for row in range(block * n_rows // n_blocks, (block + 1) * n_rows // n_blocks):
            row_body(row, *args, a)  # noqa: F821


def _cpu_rows_2(n_rows, n_blocks, args, w0, w1):
    for block in prange(n_blocks):  # noqa: F821 - numba's, bound by _driver
        a, b = w0[block], w1[block]
        for row in range(block * n_rows // n_blocks, (block + 1) * n_rows // n_blocks):
            row_body(row, *args, a, b)  # noqa: F821


def _cpu_rows_3(n_rows, n_blocks, args, w0, w1, w2):
    for block in prange(n_blocks):  # noqa: F821 - numba's, bound by _driver
        a, b, c = w0[block], w1[block], w2[block]
        for row in range(block * n_rows // n_blocks, (block + 1) * n_rows // n_blocks):
            row_body(row, *args, a, b, c)  # noqa: F821


def _cpu_rows_4(n_rows, n_blocks, args, w0, w1, w2, w3):
    for block in prange(n_blocks):  # noqa: F821 - numba's, bound by _driver
        a, b, c, d = w0[block], w1[block], w2[block], w3[block]
        for row in range(block * n_rows // n_blocks, (block + 1) * n_rows // n_blocks):
            row_body(row, *args, a, b, c, d)  # noqa: F821


# CUDA: one thread per row of a chunk starting at ``first``, workspace
# ``w[thread]`` for each thread.
def _cuda_rows_0(first, size, args):
    thread = cuda.grid(1)
    if thread < size:
        row_body(first + thread, *args)  # noqa: F821


def _cuda_rows_1(first, size, args, w0):
    thread = cuda.grid(1)
    if thread < size:
        row_body(first + thread, *args, w0[thread])  # noqa: F821


def _cuda_rows_2(first, size, args, w0, w1):
    thread = cuda.grid(1)
    if thread < size:
        row_body(first + thread, *args, w0[thread], w1[thread])  # noqa: F821


def _cuda_rows_3(first, size, args, w0, w1, w2):
    thread = cuda.grid(1)
    if thread < size:
        row_body(  # noqa: F821
            first + thread, *args, w0[thread], w1[thread], w2[thread]
        )


def _cuda_rows_4(first, size, args, w0, w1, w2, w3):
    thread = cuda.grid(1)
    if thread < size:
        row_body(  # noqa: F821
            first + thread, *args, w0[thread], w1[thread], w2[thread], w3[thread]
        )


_CPU_DRIVERS = (_cpu_rows_0, _cpu_rows_1, _cpu_rows_2, _cpu_rows_3, _cpu_rows_4)
_CUDA_DRIVERS = (_cuda_rows_0, _cuda_rows_1, _cuda_rows_2, _cuda_rows_3, _cuda_rows_4)
MAX_WORKSPACES = len(_CPU_DRIVERS) - 1


def _driver(template, compiled_body, digest, target, parallel=True):
    """Compile a copy of the driver ``template`` that calls ``compiled_body``."""
    namespace = dict(template.__globals__)
    namespace["row_body"] = compiled_body
    mode = "parallel" if parallel else "serial"
    # A distinct name per body and mode: numba's cache is keyed by it.
    qualname = f"{template.__qualname__}_{mode}_{digest}"
    if target == "cpu":
        from numba import njit, prange

        namespace["prange"] = prange
        return njit(parallel=parallel, nogil=True, cache=True, error_model="numpy")(
            _copy_function(template, namespace, qualname)
        )
    namespace["cuda"] = _numba_cuda()
    return namespace["cuda"].jit(_copy_function(template, namespace, qualname))


def _launch_library(arrays):
    """NumPy under the CUDA simulator (host arrays), CuPy on a real GPU."""
    if cuda_simulator_enabled() and all(
        isinstance(a, np.ndarray | np.generic) for a in arrays if is_array(a)
    ):
        return np
    return require_cupy()


class RowKernel:
    """A per-row (per-sample, per-pixel) body compiled for the CPU and the GPU.

    The body is a plain Python function ``body(row, *args, *workspaces)``
    that handles one row: it reads the arrays in ``args``, writes its results
    into output arrays among them, and may use scratch arrays
    (``workspaces``) that the kernel allocates, one set per CPU block of
    rows or per GPU thread, with the shapes that ``workspace(*args)``
    returns. Rows must be independent: any order, any thread.

    Calling the kernel runs every row ``0 <= row < n_rows``: in a numba
    ``prange`` loop for NumPy arrays, one GPU thread per row for CuPy arrays
    (numba-cuda, which reads ``__cuda_array_interface__``), and on the host
    for any other array API library (the arrays named in ``writes`` are
    copied back). Register bodies with :func:`register_row_kernel` and fetch
    them with :func:`kernel`.

    Parameters
    ----------
    body : callable
        ``body(row, *args, *workspaces)``, returning nothing. It may call
        other plain functions of its module, which are compiled with it.
    name : str, optional
        Registry name; defaults to ``body.__name__``.
    workspace : callable, optional
        ``workspace(*args) -> [(shape, dtype), ...]``: the scratch arrays the
        body takes after ``args`` (at most four). ``None`` means none.
    writes : sequence of str, default=()
        Names of the body's parameters that it writes to (outputs, or
        arrays updated in place).
    bindings : dict, optional
        Globals of ``body`` to replace (see :func:`compile_body`).
    serial_below : int, default=0
        Launches of fewer rows run serially on the CPU (cheap rows, where
        waking numba's thread pool costs more than the work).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import RowKernel
    >>> def row_sum_of_squares(row, x, out, scratch):
    ...     for j in range(x.shape[1]):
    ...         scratch[j] = x[row, j] * x[row, j]
    ...     total = 0.0
    ...     for j in range(x.shape[1]):
    ...         total += scratch[j]
    ...     out[row] = total
    >>> squares = RowKernel(
    ...     row_sum_of_squares, writes=("out",),
    ...     workspace=lambda x, out: [((x.shape[1],), x.dtype)])
    >>> x = np.arange(6.0).reshape(3, 2)
    >>> out = np.empty(3)
    >>> squares(3, x, out)
    >>> out
    array([ 1., 13., 41.])
    """

    def __init__(self, body, name=None, *, workspace=None, writes=(), bindings=None,
                 serial_below=0):
        parameters = list(inspect.signature(body).parameters)[1:]
        unknown = sorted(set(writes) - set(parameters))
        if unknown:
            raise ValueError(
                f"writes names {unknown} that are not parameters of "
                f"{body.__name__}{tuple(parameters)}."
            )
        self.body = body
        self.name = name or body.__name__
        self.workspace = workspace
        self.writes = tuple(writes)
        self.bindings = dict(bindings or {})
        self.serial_below = int(serial_below)
        self._write_positions = [parameters.index(w) for w in self.writes]

    def workspaces(self, args):
        """The ``[(shape, dtype), ...]`` of the scratch arrays for ``args``."""
        if self.workspace is None:
            return []
        spec = [(tuple(int(n) for n in shape), dtype)
                for shape, dtype in self.workspace(*args)]
        if len(spec) > MAX_WORKSPACES:
            raise ValueError(
                f"Kernel {self.name!r} asks for {len(spec)} workspaces; at most "
                f"{MAX_WORKSPACES} are supported (stack them in one array)."
            )
        return spec

    @functools.cached_property
    def _digest(self):
        return _digest(self.body, tuple(sorted(self.bindings.items())))

    def _compiled_body(self, target):
        return compile_body(self.body, target, bindings=self.bindings)

    @functools.cache  # noqa: B019 - kernels live as long as the registry
    def cpu_driver(self, n_workspaces, parallel=True):
        """The numba CPU driver ``driver(n_rows, n_blocks, args, *workspaces)``."""
        return _driver(_CPU_DRIVERS[n_workspaces], self._compiled_body("cpu"),
                       self._digest, "cpu", parallel)

    @functools.cache  # noqa: B019
    def cuda_driver(self, n_workspaces):
        """The CUDA grid kernel ``kernel[grid](first, size, args, *workspaces)``."""
        return _driver(_CUDA_DRIVERS[n_workspaces], self._compiled_body("cuda"),
                       self._digest, "cuda")

    def run_cpu(self, n_rows, *args, parallel=None):
        """Run every row with the numba CPU driver (NumPy arrays).

        ``parallel=False`` runs the rows in one thread: for a few hundred
        cheap rows, waking numba's thread pool costs more than the work.
        ``None`` (the default) runs in parallel from ``serial_below`` rows on.
        """
        n_rows = int(n_rows)
        if n_rows <= 0:
            return
        if parallel is None:
            parallel = n_rows >= self.serial_below
        spec = self.workspaces(args)
        n_blocks = min(n_rows, CPU_ROW_BLOCKS) if parallel else 1
        work = [np.empty((n_blocks, *shape), dtype=dtype) for shape, dtype in spec]
        self.cpu_driver(len(spec), bool(parallel))(n_rows, n_blocks, tuple(args),
                                                   *work)

    def run_cuda(self, n_rows, *args):
        """Run every row with the CUDA kernel, one thread per row.

        Takes CuPy arrays on a GPU, or NumPy arrays under
        ``NUMBA_ENABLE_CUDASIM=1`` (how the kernels are tested without one).
        """
        n_rows = int(n_rows)
        if n_rows <= 0:
            return
        library = _launch_library(args)
        numba_cuda = _numba_cuda()
        if library is not np:
            # Tuples of CuPy arrays are not typed by numba-cuda; its own
            # device-array views of the same memory are.
            args = tuple(
                numba_cuda.as_cuda_array(a) if hasattr(a, "__cuda_array_interface__")
                else a for a in args
            )
        spec = self.workspaces(args)
        driver = self.cuda_driver(len(spec))
        per_row = sum(math.prod(shape) for shape, _ in spec)
        chunk = n_rows if per_row == 0 else max(
            1, min(n_rows, CUDA_WORKSPACE_ELEMENTS // per_row))
        for first in range(0, n_rows, chunk):
            size = min(chunk, n_rows - first)
            work = [library.empty((size, *shape), dtype=dtype) for shape, dtype in spec]
            blocks, threads = cuda_launch_shape(size)
            driver[blocks, threads](first, size, tuple(args), *work)

    def __call__(self, n_rows, *args, parallel=None):
        """Run the body for every row ``0 <= row < n_rows`` where ``args`` live.

        ``parallel`` only matters on the CPU (see :meth:`run_cpu`).
        """
        first = next((a for a in args if is_array(a)), None)
        if isinstance(first, np.ndarray) or first is None:
            return self.run_cpu(n_rows, *args, parallel=parallel)
        xp = get_namespace(first)
        target = kernel_target(xp)
        if target == "cpu":
            return self.run_cpu(n_rows, *[np.asarray(a) if is_array(a) else a
                                          for a in args], parallel=parallel)
        if target == "cuda":
            require_cupy()
            return self.run_cuda(n_rows, *args)
        # Any other array API library: run on the host, copy outputs back.
        host = [
            (np.array(to_numpy(a)) if position in self._write_positions
             else to_numpy(a)) if is_array(a) else a
            for position, a in enumerate(args)
        ]
        self.run_cpu(n_rows, *host, parallel=parallel)
        for position in self._write_positions:
            args[position][...] = to_namespace(host[position], xp, like=args[position])
        return None


# Elementwise kernels are row kernels whose "row" is one element: these
# adaptors apply ``scalar_body`` (bound per kernel) to element ``i``, each
# parameter indexed as ``p[i % p.shape[0]]``, which serves scalars (length
# 1), per-column vectors of a C-ordered matrix (length ``n_columns``) and
# full arrays alike, without broadcasting copies.
def _elementwise_1(i, out, x, p0):
    out[i] = scalar_body(x[i], p0[i % p0.shape[0]])  # noqa: F821 - bound


def _elementwise_2(i, out, x, p0, p1):
    out[i] = scalar_body(x[i], p0[i % p0.shape[0]], p1[i % p1.shape[0]])  # noqa: F821


def _elementwise_3(i, out, x, p0, p1, p2):
    out[i] = scalar_body(  # noqa: F821
        x[i], p0[i % p0.shape[0]], p1[i % p1.shape[0]], p2[i % p2.shape[0]]
    )


_ELEMENTWISE_ADAPTORS = {1: _elementwise_1, 2: _elementwise_2, 3: _elementwise_3}


class ElementwiseKernel:
    """A scalar function ``body(x, *params)`` compiled for the CPU and the GPU.

    The body is plain Python with scalar arguments and one scalar result. It
    runs as a :class:`RowKernel` with one "row" per element: in a numba
    ``prange`` loop for NumPy input, one GPU thread per element for CuPy
    input, and on the host for other array API libraries.

    Parameters
    ----------
    body : callable
        Scalar function of ``1 + n_params`` floats.
    n_params : {1, 2, 3}
        Number of parameters after ``x``.
    name : str, optional
        Registry name; defaults to ``body.__name__``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import ElementwiseKernel
    >>> def clip_above(x, ceiling):
    ...     return x if x < ceiling else ceiling
    >>> clip = ElementwiseKernel(clip_above, n_params=1)
    >>> clip(np.array([0.5, 2.0]), 1.0)
    array([0.5, 1. ])
    """

    def __init__(self, body, n_params, name=None):
        if n_params not in _ELEMENTWISE_ADAPTORS:
            raise ValueError(f"n_params must be 1, 2 or 3; got {n_params!r}.")
        self.body = body
        self.n_params = n_params
        self.name = name or body.__name__
        self.rows = RowKernel(
            _ELEMENTWISE_ADAPTORS[n_params], self.name, writes=("out",),
            bindings={"scalar_body": body},
        )

    def cpu_driver(self, out, x, *params):
        """Run the compiled CPU loop on 1-D NumPy arrays, writing ``out``.

        Arrays shorter than :data:`CPU_SERIAL_ELEMENTS` run on the calling
        thread: waking numba's thread pool costs more than the work.
        """
        self.rows.run_cpu(x.shape[0], out, x, *params,
                          parallel=x.shape[0] >= CPU_SERIAL_ELEMENTS)

    def cuda_driver(self, out, x, *params):
        """Run the CUDA kernel on 1-D device arrays, writing ``out``.

        Under ``NUMBA_ENABLE_CUDASIM=1`` it accepts NumPy arrays, which is how
        the kernel logic is tested on machines without a GPU.
        """
        self.rows.run_cuda(x.shape[0], out, x, *params)

    def _flat_params(self, xp, x, params):
        flat = []
        for position, value in enumerate(params):
            array = xp.asarray(value, dtype=x.dtype, device=array_api_compat.device(x))
            is_scalar = array.ndim == 0 or (array.ndim == 1 and array.shape[0] == 1)
            # A per-column vector of a C-ordered array is used as it is: the
            # drivers index it with i % n_columns.
            is_per_column = (
                array.ndim == 1 and x.ndim >= 1 and array.shape[0] == x.shape[-1]
            )
            if is_scalar or tuple(array.shape) == tuple(x.shape):
                array = xp.reshape(array, (-1,))
            elif not is_per_column:
                raise ValueError(
                    f"Parameter {position} of kernel {self.name!r} has shape "
                    f"{tuple(array.shape)}; expected a scalar, shape "
                    f"({x.shape[-1] if x.ndim else 1},) or the shape of x "
                    f"{tuple(x.shape)}."
                )
            flat.append(array)
        return flat

    def __call__(self, x, *params):
        """Apply the kernel elementwise and return a new array like ``x``."""
        if len(params) != self.n_params:
            raise TypeError(
                f"Kernel {self.name!r} takes {self.n_params} parameter(s) after x; "
                f"got {len(params)}."
            )
        xp = get_namespace(x)
        x = xp.asarray(x)
        if not xp.isdtype(x.dtype, "real floating"):
            x = xp.astype(x, xp.float64)
        target = kernel_target(xp)
        if target == "host":
            host_params = [
                to_numpy(p) if is_array(p) else np.asarray(p, dtype=float)
                for p in params
            ]
            result = self(to_numpy(x), *host_params)
            return xp.asarray(result, device=array_api_compat.device(x))
        library = np if target == "cpu" else require_cupy()
        flat_x = library.ascontiguousarray(x).reshape(-1)
        flat_params = [
            library.ascontiguousarray(p) for p in self._flat_params(xp, x, params)
        ]
        out = library.empty_like(flat_x)
        if target == "cpu":
            self.cpu_driver(out, flat_x, *flat_params)
        else:
            self.cuda_driver(out, flat_x, *flat_params)
        return out.reshape(x.shape)


_REGISTRY: dict = {}


def register_elementwise(name=None, *, n_params=1):
    """Register a scalar body as an :class:`ElementwiseKernel` under ``name``.

    Use as a decorator in a solver family's ``_kernels.py``; the undecorated
    function is returned unchanged so it stays testable in plain Python.

    Parameters
    ----------
    name : str, optional
        Registry name; defaults to the function name.
    n_params : {1, 2, 3}, default=1
        Number of parameters after ``x``.

    Examples
    --------
    >>> from sparsesolve._backend import register_elementwise, kernel
    >>> @register_elementwise("doc_double", n_params=1)
    ... def double_plus(x, offset):
    ...     return 2.0 * x + offset
    >>> import numpy as np
    >>> kernel("doc_double", np)(np.array([1.0]), 0.5)
    array([2.5])
    """

    def decorate(body):
        key = name or body.__name__
        _REGISTRY[key] = ElementwiseKernel(body, n_params=n_params, name=key)
        return body

    return decorate


def register_row_kernel(name=None, *, workspace=None, writes=(), serial_below=0):
    """Register a per-row body as a :class:`RowKernel` under ``name``.

    Use as a decorator in a solver family's ``_kernels.py``; the undecorated
    function is returned unchanged so it stays testable in plain Python.
    The algorithm then runs it with ``kernel(name, xp)(n_rows, *args)``.

    Parameters
    ----------
    name : str, optional
        Registry name; defaults to the function name.
    workspace : callable, optional
        ``workspace(*args) -> [(shape, dtype), ...]``, the scratch arrays
        passed to the body after ``args`` (see :class:`RowKernel`).
    writes : sequence of str, default=()
        Parameters the body writes to.
    serial_below : int, default=0
        Launches of fewer rows run serially on the CPU (see
        :class:`RowKernel`).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import kernel, register_row_kernel
    >>> @register_row_kernel("doc_row_max", writes=("out",))
    ... def row_max(row, x, out):
    ...     best = x[row, 0]
    ...     for j in range(1, x.shape[1]):
    ...         best = max(best, x[row, j])
    ...     out[row] = best
    >>> x = np.array([[1.0, 3.0], [5.0, 2.0]])
    >>> out = np.empty(2)
    >>> kernel("doc_row_max", np)(2, x, out)
    >>> out
    array([3., 5.])
    """

    def decorate(body):
        key = name or body.__name__
        _REGISTRY[key] = RowKernel(body, key, workspace=workspace, writes=writes,
                                   serial_below=serial_below)
        return body

    return decorate


def _import_kernel_modules():
    """Import every family's ``_kernels`` module so its kernels register.

    Kernels register themselves when their module is imported; a caller that
    asks for one by name before importing its family still finds it.
    """
    import pkgutil

    package = importlib.import_module("sparsesolve")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg:
            continue
        try:
            importlib.import_module(f"sparsesolve.{info.name}._kernels")
        except ModuleNotFoundError as exc:
            if exc.name != f"sparsesolve.{info.name}._kernels":
                raise


def kernel(name, xp=None):
    """Return the registered elementwise or row kernel ``name``.

    The returned object dispatches on its input: NumPy arrays go to the numba
    CPU driver, CuPy arrays to the CUDA grid kernel, other array API arrays
    through the host (see :func:`kernel_target`). ``xp`` is accepted so that
    algorithms can say which namespace they are about to use; a CuPy
    namespace triggers the lazy device check early, with a clear error.

    Parameters
    ----------
    name : str
        Name given to :func:`register_elementwise` or
        :func:`register_row_kernel`.
    xp : module, optional
        Namespace the caller works in.

    Returns
    -------
    ElementwiseKernel or RowKernel
        Callable as ``kernel(x, *params)`` (elementwise, returns a new array)
        or ``kernel(n_rows, *args)`` (row kernel, writes into ``args``).
    """
    if name not in _REGISTRY:
        _import_kernel_modules()
    if name not in _REGISTRY:
        raise KeyError(
            f"No kernel named {name!r}; registered kernels: {sorted(_REGISTRY)}."
        )
    if xp is not None and is_cupy_namespace(xp):
        require_cupy()
    return _REGISTRY[name]


def available_memory(xp=None):
    """Bytes of memory free for new arrays of namespace ``xp`` (host or GPU).

    Parameters
    ----------
    xp : module or None
        Array namespace; ``None`` or a host namespace asks about host memory.

    Returns
    -------
    nbytes : int or None
        ``None`` when the platform does not say.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import available_memory, get_namespace
    >>> free = available_memory(get_namespace(np.ones(1)))
    >>> free is None or free > 0
    True
    """
    if xp is not None and kernel_target(xp) == "cuda":
        import cupy

        free, _ = cupy.cuda.Device().mem_info
        return int(free)
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None
