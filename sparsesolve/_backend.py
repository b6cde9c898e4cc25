"""The one place that knows about NumPy, CuPy and numba.

Algorithms are written once against an array namespace ``xp`` returned by
:func:`get_namespace`. NumPy input runs on the CPU, CuPy input runs on the
GPU, and results come back in the namespace they came in ("input mirroring").

Loops that NumPy cannot vectorise are written as a plain scalar Python
function, registered with :func:`register_elementwise`, and compiled twice on
demand: ``numba.njit`` inside a ``prange`` driver for the CPU and
``numba.cuda.jit(device=True)`` inside a grid kernel for CuPy arrays.
:func:`kernel` hands an algorithm the driver that matches its namespace.

CuPy and numba-cuda are imported lazily, the first time a CuPy array arrives,
so ``import sparsesolve`` works on machines with neither.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os

import array_api_compat
import array_api_compat.numpy  # noqa: F401 - get_namespace returns it
import numpy as np

__all__ = [
    "ElementwiseKernel",
    "cuda_simulator_enabled",
    "cupy_or_none",
    "device_of",
    "get_namespace",
    "is_array",
    "is_cupy_namespace",
    "is_numpy_namespace",
    "is_sparse",
    "kernel",
    "numba_threads",
    "register_elementwise",
    "require_cupy",
    "sparse_to_host",
    "sparse_like",
    "to_namespace",
    "to_numpy",
]

# Threads per block for the CUDA grid kernels: a multiple of the warp size
# that keeps occupancy high for memory-bound elementwise work.
_CUDA_THREADS_PER_BLOCK = 256

# numba.cuda, imported by _cuda_kernel on first GPU use.
cuda = None


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
    module = type(obj).__module__
    return module.startswith("scipy.sparse")


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
    """Copy ``array`` to a NumPy array on the host (no copy for NumPy input).

    Parameters
    ----------
    array : array object
        NumPy, CuPy or array API array.

    Returns
    -------
    ndarray
        The same values as a NumPy array.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve._backend import to_numpy
    >>> to_numpy(np.arange(3))
    array([0, 1, 2])
    """
    if isinstance(array, np.ndarray):
        return array
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
    module = type(obj).__module__
    return module.startswith("scipy.sparse") or module.startswith(
        "cupyx.scipy.sparse")


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
    if type(matrix).__module__.startswith("cupyx"):
        matrix = matrix.get()
    import scipy.sparse as sp

    return matrix if sp.isspmatrix_csr(matrix) else sp.csr_matrix(matrix)


def sparse_like(matrix, like):
    """Move the SciPy sparse ``matrix`` to where the sparse ``like`` lives (CSR).

    Host data prepared once (a multigrid hierarchy, a factor) goes to the GPU
    through this function when the caller's matrix is a cupyx one.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsesolve._backend import sparse_like
    >>> sparse_like(sp.eye(2), sp.eye(3)).shape
    (2, 2)
    """
    import scipy.sparse as sp

    if type(like).__module__.startswith("cupyx"):
        import cupyx.scipy.sparse as device_sparse

        return device_sparse.csr_matrix(sp.csr_matrix(matrix))
    return sp.csr_matrix(matrix)


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


# --------------------------------------------------------------------------
# One scalar body, two compiled drivers
# --------------------------------------------------------------------------
def _cpu_driver(body, n_params):
    """Compile ``body`` with numba and wrap it in a ``prange`` driver.

    Each parameter array ``p`` is indexed as ``p[i % p.shape[0]]``, which
    serves scalars (length 1), per-column vectors of a C-ordered matrix
    (length ``n_columns``) and full arrays alike, without broadcasting copies.
    """
    from numba import njit, prange

    # numba caches compiled code next to the source file; bodies typed in a
    # notebook or doctest have none, so they are compiled every session.
    cache = os.path.isfile(body.__code__.co_filename)
    scalar = njit(inline="always", nogil=True, cache=cache)(body)

    if n_params == 1:

        @njit(parallel=True, nogil=True, cache=cache)
        def driver(out, x, p0):
            for i in prange(x.shape[0]):
                out[i] = scalar(x[i], p0[i % p0.shape[0]])

    elif n_params == 2:

        @njit(parallel=True, nogil=True, cache=cache)
        def driver(out, x, p0, p1):
            for i in prange(x.shape[0]):
                out[i] = scalar(x[i], p0[i % p0.shape[0]], p1[i % p1.shape[0]])

    else:

        @njit(parallel=True, nogil=True, cache=cache)
        def driver(out, x, p0, p1, p2):
            for i in prange(x.shape[0]):
                out[i] = scalar(
                    x[i], p0[i % p0.shape[0]], p1[i % p1.shape[0]], p2[i % p2.shape[0]]
                )

    return driver


def _cuda_kernel(body, n_params):
    """Compile ``body`` as a CUDA device function inside a 1-D grid kernel."""
    # The name ``cuda`` must be a module global: numba's CUDA simulator swaps
    # the module it finds in a kernel's globals for its fake one, and a
    # closure variable would escape that swap.
    global cuda
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba always ships cuda
        raise RuntimeError(
            "The GPU path needs numba-cuda; install sparsesolve[gpu]."
        ) from exc

    scalar = cuda.jit(device=True)(body)

    if n_params == 1:

        @cuda.jit
        def grid_kernel(out, x, p0):
            i = cuda.grid(1)
            if i < x.shape[0]:
                out[i] = scalar(x[i], p0[i % p0.shape[0]])

    elif n_params == 2:

        @cuda.jit
        def grid_kernel(out, x, p0, p1):
            i = cuda.grid(1)
            if i < x.shape[0]:
                out[i] = scalar(x[i], p0[i % p0.shape[0]], p1[i % p1.shape[0]])

    else:

        @cuda.jit
        def grid_kernel(out, x, p0, p1, p2):
            i = cuda.grid(1)
            if i < x.shape[0]:
                out[i] = scalar(
                    x[i], p0[i % p0.shape[0]], p1[i % p1.shape[0]], p2[i % p2.shape[0]]
                )

    def launch(out, x, *params):
        blocks = (x.shape[0] + _CUDA_THREADS_PER_BLOCK - 1) // _CUDA_THREADS_PER_BLOCK
        grid_kernel[max(blocks, 1), _CUDA_THREADS_PER_BLOCK](out, x, *params)

    return launch


class ElementwiseKernel:
    """A scalar function ``body(x, *params)`` compiled for the CPU and the GPU.

    The body is plain Python with scalar arguments and one scalar result. It
    is compiled lazily: with ``numba.njit`` for NumPy input (a ``prange``
    loop over elements) and with ``numba.cuda.jit(device=True)`` for CuPy
    input (one GPU thread per element).

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
        if n_params not in (1, 2, 3):
            raise ValueError(f"n_params must be 1, 2 or 3; got {n_params!r}.")
        self.body = body
        self.n_params = n_params
        self.name = name or body.__name__

    @functools.cached_property
    def cpu_driver(self):
        """The compiled CPU driver ``driver(out, x, *params)`` on 1-D arrays."""
        return _cpu_driver(self.body, self.n_params)

    @functools.cached_property
    def cuda_driver(self):
        """The CUDA launcher ``launch(out, x, *params)`` on 1-D device arrays.

        Under ``NUMBA_ENABLE_CUDASIM=1`` it accepts NumPy arrays, which is how
        the kernel logic is tested on machines without a GPU.
        """
        return _cuda_kernel(self.body, self.n_params)

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
        if is_numpy_namespace(xp):
            flat_x = np.ascontiguousarray(x).reshape(-1)
            flat_params = [
                np.ascontiguousarray(p) for p in self._flat_params(xp, x, params)
            ]
            out = np.empty_like(flat_x)
            self.cpu_driver(out, flat_x, *flat_params)
            return out.reshape(x.shape)
        if is_cupy_namespace(xp):
            cupy = require_cupy()
            flat_x = cupy.ascontiguousarray(x).reshape(-1)
            flat_params = [
                cupy.ascontiguousarray(p) for p in self._flat_params(xp, x, params)
            ]
            out = cupy.empty_like(flat_x)
            if flat_x.size:
                self.cuda_driver(out, flat_x, *flat_params)
            return out.reshape(x.shape)
        # Any other array API library (array-api-strict in the tests): run on
        # the host and hand the result back in the caller's namespace.
        host_params = [
            to_numpy(p) if is_array(p) else np.asarray(p, dtype=float) for p in params
        ]
        result = self(to_numpy(x), *host_params)
        return xp.asarray(result, device=array_api_compat.device(x))


_REGISTRY: dict[str, ElementwiseKernel] = {}


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
    """Return the registered elementwise kernel ``name``.

    The returned object dispatches on its input: NumPy arrays go to the numba
    CPU driver, CuPy arrays to the CUDA grid kernel. ``xp`` is accepted so that
    algorithms can say which namespace they are about to use; a CuPy
    namespace triggers the lazy device check early, with a clear error.

    Parameters
    ----------
    name : str
        Name given to :func:`register_elementwise`.
    xp : module, optional
        Namespace the caller works in.

    Returns
    -------
    ElementwiseKernel
        Callable as ``kernel(x, *params)``.
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


def cuda_simulator_enabled():
    """Return True when numba runs CUDA kernels in its CPU simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"
