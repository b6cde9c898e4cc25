"""Conjugate gradients and IC(0)-preconditioned CG, the in-house baselines.

Both take the calling convention of :func:`scipy.sparse.linalg.cg` (``x0``,
``rtol``, ``atol``, ``maxiter``, ``M``, ``callback``) and stop when
``||b - A x|| <= max(rtol * ||b||, atol)``, ``b`` after projection onto the
range of ``A``. Both confirm the *true* residual before they report
convergence, so a drifted recursive residual never ends a solve, and both
return a :class:`KrylovResult` that carries the residual history besides
SciPy's ``info`` code.

They are written once against the array namespace of ``b``: SciPy sparse and
NumPy on the CPU, ``cupyx.scipy.sparse`` and CuPy on the GPU. Complex
Hermitian systems use the conjugated inner product ``u^H v`` (Saad,
*Iterative Methods for Sparse Linear Systems*, 2nd ed., sec. 6.7 and 9.2).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.exceptions import ConvergenceWarning

from .._backend import (
    get_namespace,
    is_array,
    is_device_linear_operator,
    is_sparse,
    kernel_target,
    same_device,
    sparse_linalg_namespace,
    sparse_namespace,
    to_numpy,
)
from .._sklearn_compat import Interval, validate_params
from ._ic0_kernels import ic0_factor, ic0_solve
from ._operator import floating_components, project_to_range

__all__ = ["KrylovResult", "cg", "ic0_pcg", "IncompleteCholesky"]

# A pivot below this share of the original diagonal is treated as breakdown
# (singular closed regions cancel to ~1e-16 relative).
_PIVOT_FLOOR = 1e-10


class _DefaultTolerance(float):
    """The default ``rtol``, told apart from the same value passed explicitly.

    A float subclass, so the signature still reads ``rtol=1e-06``; only
    identity with the one instance below says "not given", which is how a
    deprecated alias passed together with ``rtol`` is detected.
    """

    __slots__ = ()


_DEFAULT_RTOL = _DefaultTolerance(1e-6)


@dataclasses.dataclass
class KrylovResult:
    """Outcome of a Krylov solve.

    Parameters
    ----------
    x : array of shape (n,)
        The solution, in the namespace of ``b``, with ``b``'s precision
        (complex when ``A``, ``b`` or ``x0`` is complex).
    n_iter : int
        Iterations run (one matrix-vector product and one preconditioner
        application each).
    residuals : ndarray of shape (n_iter + 1,)
        Relative residual norms ``||r_k|| / ||b||``, from ``k = 0``.
    converged : bool
        True when the true residual at exit satisfies
        ``||b - A x|| <= max(rtol * ||b||, atol)``.
    true_residual : float
        ``||b - A x|| / ||b||`` recomputed at exit.
    info : int, default=None
        SciPy's convergence code: ``0`` converged, ``> 0`` not converged
        after ``info`` iterations, ``-1`` stopped at a breakdown (``A`` or
        ``M`` not positive definite on the current direction, the code
        :func:`scipy.sparse.linalg.bicgstab` uses). None sets it from
        ``converged`` and ``n_iter``.
    """

    x: object
    n_iter: int
    residuals: np.ndarray
    converged: bool
    true_residual: float
    info: int | None = None

    def __post_init__(self):
        if self.info is None:
            self.info = 0 if self.converged else max(int(self.n_iter), 1)


# --------------------------------------------------------------------------
# What kind of operator is A (or M)?
# --------------------------------------------------------------------------
def _is_linear_operator(A):
    # Anything with a shape and a matvec is what aslinearoperator accepts
    # besides arrays and sparse matrices.
    return (isinstance(A, spla.LinearOperator) or is_device_linear_operator(A)
            or (not is_array(A) and not is_sparse(A) and hasattr(A, "shape")
                and hasattr(A, "matvec")))


def _host_matrix(A):
    """SciPy sparse copy (or the matrix itself) of a sparse or dense ``A``."""
    if is_sparse(A):
        return to_numpy(A)
    return sp.csr_matrix(to_numpy(A))


def _check_shape_square(A, name):
    shape = getattr(A, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be square (n, n); got shape {shape}.")


def _dtype_kind(dtype):
    """NumPy's kind letter for a dtype of any array library (``"?"`` if unknown)."""
    if dtype is None:
        return "?"
    try:
        return np.dtype(dtype).kind
    except TypeError:
        # array_api_strict (and torch) dtypes print as "<library>.<numpy name>".
        try:
            return np.dtype(str(dtype).rsplit(".", 1)[-1]).kind
        except TypeError:
            return "?"


def _check_numeric_dtype(dtype, name):
    if _dtype_kind(dtype) not in "biufc":
        raise TypeError(f"{name} must have a numeric dtype; got {dtype}.")


def _cast(matrix, dtype, xp):
    """A sparse or dense matrix in ``dtype`` (itself when it already is)."""
    if matrix.dtype == dtype:
        return matrix
    return matrix.astype(dtype) if is_sparse(matrix) else xp.astype(matrix, dtype)


def _check_entries_finite(A, name):
    data = A.data if is_sparse(A) else A
    xp = get_namespace(data)
    if not bool(xp.all(xp.isfinite(data))):
        raise ValueError(f"{name} contains NaN or infinity.")


def _as_matrix(A):
    """Sparse (CSR/CSC kept, other formats to CSR) or dense 2D array ``A``."""
    if is_sparse(A):
        return A if A.format in ("csr", "csc") else A.tocsr()
    if isinstance(A, np.ndarray):
        return np.asarray(A)  # np.matrix would turn A @ v into a row matrix
    return A


def _as_linear_operator(A, xp):
    # A and xp have been checked to live on the same device.
    return sparse_linalg_namespace(xp).aslinearoperator(A)


def _classify(A, name, xp, *, needs_entries=None):
    """Validate ``A`` (or ``M``); return ``(operator, kind)``.

    ``kind`` is ``"matrix"`` (sparse or dense, entries available) or
    ``"operator"`` (a LinearOperator). ``needs_entries`` names the caller
    that cannot work from matrix-vector products alone.
    """
    if _is_linear_operator(A):
        if needs_entries is not None:
            raise TypeError(
                f"{name} must be a sparse matrix or a dense array for "
                f"{needs_entries}: it needs the entries of {name}, which a "
                f"{type(A).__name__} does not expose. Use "
                f"sparsesolve.poisson.cg({name}, b, M=...) for operators."
            )
        if not same_device(A, xp):
            raise TypeError(_device_message(A, name, xp))
        operator = _as_linear_operator(A, xp)
        _check_shape_square(operator, name)
        return operator, "operator"
    if not (is_sparse(A) or is_array(A)):
        raise TypeError(
            f"{name} must be a sparse matrix, a dense array or a LinearOperator "
            "(anything scipy.sparse.linalg.aslinearoperator accepts); got "
            f"{type(A).__name__}."
        )
    _check_shape_square(A, name)
    if not same_device(A, xp):
        raise TypeError(_device_message(A, name, xp))
    _check_numeric_dtype(A.dtype, name)
    A = _as_matrix(A)
    _check_entries_finite(A, name)
    return A, "matrix"


def _device_message(A, name, xp):
    return (
        f"{name} ({type(A).__module__}) and b ({xp.__name__}) live on "
        "different devices: use SciPy sparse, NumPy arrays or SciPy "
        "LinearOperators with NumPy b; cupyx.scipy.sparse, CuPy arrays or "
        "cupyx LinearOperators with CuPy b."
    )


# --------------------------------------------------------------------------
# Vectors, tolerances and the deprecated aliases
# --------------------------------------------------------------------------
def _check_vector(v, n, xp, name):
    """``v`` as a 1D array of length ``n`` ((n, 1) is accepted, as in SciPy)."""
    if not is_array(v):
        raise TypeError(f"{name} must be an array; got {type(v).__name__}.")
    if tuple(v.shape) not in ((n,), (n, 1)):
        raise ValueError(
            f"{name} must be a 1D array of length {n} (rows of A); got shape "
            f"{tuple(v.shape)}."
        )
    if not (xp.isdtype(v.dtype, "real floating")
            or xp.isdtype(v.dtype, "complex floating")):
        raise TypeError(
            f"{name} must be a real or complex floating array; got {v.dtype}."
        )
    if not bool(xp.all(xp.isfinite(v))):
        raise ValueError(f"{name} contains NaN or infinity.")
    return xp.reshape(v, (n,)) if v.ndim == 2 else v


def _is_complex_dtype(dtype):
    return _dtype_kind(dtype) == "c"


def _working_dtype(xp, b, dtypes):
    """``b``'s precision, complex when any of ``dtypes`` (A, b, x0) is."""
    single = b.dtype in (xp.float32, xp.complex64)
    if any(_is_complex_dtype(dtype) for dtype in dtypes):
        return xp.complex64 if single else xp.complex128
    return xp.float32 if single else xp.float64


def _check_real(value, name, low, high=None):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value) or value < low
            or (high is not None and value >= high)):
        interval = f"[{low:g}, {high:g})" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be a real number {interval}; got {value!r}.")
    return float(value)


def _check_tolerances(rtol, atol, maxiter, n):
    rtol = _check_real(rtol, "rtol", 0.0, 1.0)
    atol = _check_real(atol, "atol", 0.0)
    if maxiter is None:
        maxiter = max(10 * n, 1)
    elif (not isinstance(maxiter, numbers.Integral) or isinstance(maxiter, bool)
          or maxiter < 1):
        raise ValueError(f"maxiter must be a positive int or None; got {maxiter!r}.")
    return rtol, atol, int(maxiter)


def _resolve_aliases(caller, rtol, tol, maxiter, max_iter):
    """Map the deprecated ``tol``/``max_iter`` onto ``rtol``/``maxiter``."""
    if tol is not None:
        if rtol is not _DEFAULT_RTOL:
            raise TypeError(
                f"{caller}() got both rtol and its deprecated alias tol; pass "
                "rtol only."
            )
        warnings.warn(
            f"{caller}(tol=...) is deprecated; use rtol=... (same meaning, "
            "SciPy's name). tol will be removed in a future release.",
            FutureWarning,
            stacklevel=3,
        )
        rtol = tol
    if max_iter is not None:
        if maxiter is not None:
            raise TypeError(
                f"{caller}() got both maxiter and its deprecated alias max_iter; "
                "pass maxiter only."
            )
        warnings.warn(
            f"{caller}(max_iter=...) is deprecated; use maxiter=... (same "
            "meaning, SciPy's name). max_iter will be removed in a future "
            "release.",
            FutureWarning,
            stacklevel=3,
        )
        maxiter = max_iter
    return float(rtol) if isinstance(rtol, _DefaultTolerance) else rtol, maxiter


# --------------------------------------------------------------------------
# Right-hand side and null space
# --------------------------------------------------------------------------
def check_system(A, b, name_b="b"):
    """Validate a square sparse ``A`` and a matching real 1D ``b``; return xp.

    The check the deep conjugate-direction solver uses (real systems given
    by their matrix); :func:`cg` accepts more (operators, complex values).
    """
    if not is_sparse(A):
        raise TypeError(
            "A must be a SciPy sparse matrix (or cupyx.scipy.sparse on the GPU); "
            f"got {type(A).__name__}."
        )
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square; got shape {A.shape}.")
    xp = get_namespace(b)
    if not hasattr(b, "shape") or b.ndim != 1 or b.shape[0] != A.shape[0]:
        shape = getattr(b, "shape", None)
        raise ValueError(
            f"{name_b} must be a 1D array of length {A.shape[0]} (rows of A); "
            f"got shape {shape}."
        )
    if not same_device(A, xp):
        raise TypeError(
            f"A ({type(A).__module__}) and {name_b} ({xp.__name__}) live on "
            "different devices: use SciPy sparse with NumPy, cupyx.scipy.sparse "
            "with CuPy."
        )
    if not xp.isdtype(b.dtype, "real floating"):
        raise TypeError(f"{name_b} must be a real floating array; got {b.dtype}.")
    if b.dtype == xp.float16:
        raise TypeError(f"{name_b} is float16; the solvers compute in float32 or "
                        f"float64: cast {name_b} to one of them first.")
    if not bool(xp.all(xp.isfinite(b))):
        raise ValueError(f"{name_b} contains NaN or infinity.")
    return xp


def _project(b, labels, n_floating, xp):
    if not xp.isdtype(b.dtype, "complex floating"):
        return project_to_range(b, labels, n_floating, xp=xp)
    # The projection is real-linear (it removes component means), so the
    # real and imaginary parts are projected separately.
    real = project_to_range(xp.real(b), labels, n_floating, xp=xp)
    imag = project_to_range(xp.imag(b), labels, n_floating, xp=xp)
    return xp.astype(real, b.dtype) + xp.astype(imag, b.dtype) * 1j


def prepare_rhs(A, b, xp, tol, components=None):
    """Project ``b`` onto range(A); warn when that changes it by more than ``tol``.

    ``components`` is ``floating_components(A)`` when the caller already has
    it (a fitted solver computes it once: it needs the matrix on the host).
    ``b`` may be complex. Returns the projected right-hand side and its norm.
    """
    if components is None:
        components = floating_components(_host_matrix(A))
    labels, n_floating = components
    b_range = _project(b, labels, n_floating, xp)
    # Norms of b / max|b|: those of b itself under- or overflow at 1e-300 or
    # 1e300; the relative sizes compared here do not change.
    scale = float(xp.max(xp.abs(b))) if b.shape[0] else 0.0
    if scale == 0.0:
        return b_range, 0.0
    norm_b = float(xp.linalg.vector_norm(b / scale))
    norm_range = float(xp.linalg.vector_norm(b_range / scale))
    if norm_b - norm_range > tol * norm_b:
        removed = float(xp.linalg.vector_norm((b - b_range) / scale)) / norm_b
        warnings.warn(
            f"b has a part in the null space of A (relative size {removed:.3g}): "
            "fluid regions with no Dirichlet face or nonzero entries at solid "
            "cells. No x solves A x = b; the solver returns x with A x = P b, "
            "P the projection onto the range of A.",
            UserWarning,
            stacklevel=4,
        )
    return b_range, norm_range * scale


# --------------------------------------------------------------------------
# The solve
# --------------------------------------------------------------------------
@dataclasses.dataclass
class _System:
    """A validated system: everything the CG loop needs."""

    xp: object
    matvec: object
    b: object  # projected onto range(A) when A is a matrix
    norm_b: float
    x0: object
    dtype: object
    rtol: float
    atol: float
    maxiter: int
    callback: object
    operator: object
    kind: str


def _prepare_system(A, b, x0, rtol, atol, maxiter, callback, needs_entries=None):
    """Check every argument (before any compiled kernel runs)."""
    if not is_array(b):
        raise TypeError(f"b must be an array; got {type(b).__name__}.")
    xp = get_namespace(b) if x0 is None else get_namespace(b, x0)
    operator, kind = _classify(A, "A", xp, needs_entries=needs_entries)
    n = operator.shape[0]
    b = _check_vector(b, n, xp, "b")
    if x0 is not None:
        x0 = _check_vector(x0, n, xp, "x0")
    rtol, atol, maxiter = _check_tolerances(rtol, atol, maxiter, n)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got "
                        f"{type(callback).__name__}.")
    dtype = _working_dtype(
        xp, b, [operator.dtype, b.dtype, None if x0 is None else x0.dtype])
    if kind == "matrix":
        # Null space from A as given (before a cast could round its row sums).
        components = floating_components(_host_matrix(operator))
        # The matrix is cast once, so that float32 input computes in float32
        # throughout (and a real A meets complex vectors as complex).
        operator = _cast(operator, dtype, xp)
        b = xp.astype(b, dtype)
        peak = float(xp.max(xp.abs(b))) if b.shape[0] else 0.0
        # ||b||, through b / max|b| so that it neither under- nor overflows.
        norm_input = (float(xp.linalg.vector_norm(b / peak)) * peak if peak
                      else 0.0)
        # The null-space warning fires when projection moves b by more than
        # the solve tolerance (never for rounding alone).
        warn_above = max(rtol, atol / norm_input if norm_input else 0.0,
                         100 * float(xp.finfo(dtype).eps))
        b, norm_b = prepare_rhs(operator, b, xp, warn_above, components=components)

        def matvec(v, matrix=operator):
            return matrix @ v
    else:
        # A LinearOperator gives no sparsity pattern, so there is no
        # null-space projection: b must already lie in the range of A.
        b = xp.astype(b, dtype, copy=True)
        norm_b = float(xp.linalg.vector_norm(b))

        def matvec(v, linear_operator=operator):
            out = linear_operator.matvec(v)
            return out if out.dtype == dtype else xp.astype(out, dtype)
    if x0 is not None:
        x0 = xp.astype(x0, dtype, copy=True)
    return _System(xp, matvec, b, norm_b, x0, dtype, rtol, atol, maxiter,
                   callback, operator, kind)


def _preconditioner(M, system):
    """Validate ``M`` (matrix, LinearOperator or callable); return ``r -> z``."""
    if M is None:
        return None
    xp, n, dtype = system.xp, system.b.shape[0], system.dtype
    if is_sparse(M) or is_array(M) or _is_linear_operator(M):
        M, kind = _classify(M, "M", xp)
        if M.shape[0] != n:
            raise ValueError(f"M must have shape ({n}, {n}) like A; got {M.shape}.")
        if kind == "matrix":
            M = _cast(M, dtype, xp)
            apply = M.__matmul__
        else:
            apply = M.matvec
    elif callable(M):
        apply = M
    else:
        raise TypeError(
            "M must be None, a sparse matrix, a dense array, a LinearOperator or "
            f"a callable r -> z; got {type(M).__name__}."
        )
    real_system = not _is_complex_dtype(dtype)

    def precondition(r):
        z = apply(r)
        if not is_array(z) or tuple(z.shape) != (n,):
            raise ValueError(
                f"M must return an array of shape ({n},) for a residual of that "
                f"shape; got {type(z).__name__} of shape {getattr(z, 'shape', None)}."
            )
        if real_system and _is_complex_dtype(z.dtype):
            raise TypeError("M returned complex values for a real system.")
        return z if z.dtype == dtype else xp.astype(z, dtype)

    return precondition


def _dot(u, v, xp, conjugate):
    # ``@`` of two vectors is one BLAS (cuBLAS) dot; the array-api-compat
    # vecdot wrapper costs several kernels and broadcasts per call on CuPy.
    # For Hermitian A and M, r^H z and p^H A p are real: the imaginary part
    # is rounding and is dropped.
    if conjugate:
        return float(xp.real(xp.conj(u) @ v))
    return float(u @ v)


def _run_cg(system, precondition, desc):
    """CG on ``b / max|b|``, scaled back: the norms of a right-hand side
    scaled by 1e-300 (1e300) would underflow (overflow) otherwise."""
    xp = system.xp
    scale = float(xp.max(xp.abs(system.b))) if system.b.shape[0] else 0.0
    norm_b = float(xp.linalg.vector_norm(system.b / scale)) if scale else 0.0
    if norm_b == 0.0:
        return KrylovResult(xp.zeros_like(system.b), 0, np.zeros(1), True, 0.0,
                            info=0)
    callback = system.callback
    scaled = dataclasses.replace(
        system, b=system.b / scale, norm_b=norm_b,
        x0=None if system.x0 is None else system.x0 / scale,
        atol=system.atol / scale,
        callback=None if callback is None else (lambda x: callback(x * scale)))
    result = _run_scaled_cg(scaled, precondition, desc, scale)
    result.x = result.x * scale
    return result


def _run_scaled_cg(system, precondition, desc, scale):
    xp, matvec = system.xp, system.matvec
    b, norm_b, callback = system.b, system.norm_b, system.callback
    threshold = max(system.rtol * norm_b, system.atol)
    conjugate = _is_complex_dtype(system.dtype)
    if system.x0 is None:
        x = xp.zeros_like(b)
        r = xp.asarray(b, copy=True)
    else:
        x = system.x0
        r = b - matvec(x)
    norm_r = float(xp.linalg.vector_norm(r))
    residuals = [norm_r / norm_b]
    converged = norm_r <= threshold
    n_iter = 0
    p = None
    rz = 0.0
    breakdown = False
    while not converged and n_iter < system.maxiter:
        z = r if precondition is None else precondition(r)
        rz_new = _dot(r, z, xp, conjugate)
        if rz_new == 0.0 or not math.isfinite(rz_new):
            breakdown = True  # M is singular (or not finite) on this residual
            break
        p = z if p is None else z + (rz_new / rz) * p
        rz = rz_new
        Ap = matvec(p)
        curvature = _dot(p, Ap, xp, conjugate)
        if not (curvature > 0.0 and math.isfinite(curvature)):
            breakdown = True  # A is not positive definite on this direction
            break
        alpha = rz / curvature
        x = x + alpha * p
        r = r - alpha * Ap
        n_iter += 1
        norm_r = float(xp.linalg.vector_norm(r))
        if norm_r <= threshold:
            # The recursive residual can drift from the true one; only the
            # true residual may end the solve. If it disagrees, restart the
            # recurrence from it.
            r = b - matvec(x)
            norm_r = float(xp.linalg.vector_norm(r))
            converged = norm_r <= threshold
            if not converged:
                p = None
        residuals.append(norm_r / norm_b)
        if callback is not None:
            callback(x)
    if not converged:
        norm_r = float(xp.linalg.vector_norm(b - matvec(x)))
        converged = norm_r <= threshold
    true_residual = norm_r / norm_b
    if converged:
        info = 0
    else:
        info = -1 if breakdown else n_iter
        reason = (
            f"stopped at a breakdown after {n_iter} iterations (A or M is not "
            "Hermitian positive definite on the current direction)" if breakdown
            else f"did not reach the tolerance in {n_iter} iterations; increase "
            "maxiter or precondition"
        )
        warnings.warn(
            f"{desc} {reason}. True residual {norm_r * scale:.3g} is above "
            f"max(rtol * ||b||, atol) = {threshold * scale:.3g} (relative "
            f"{true_residual:.3g}, rtol={system.rtol:g}, "
            f"atol={system.atol * scale:g}).",
            ConvergenceWarning,
            stacklevel=3,
        )
    return KrylovResult(x, n_iter, np.asarray(residuals), converged, true_residual,
                        info=info)


# Scalar arguments of the two solvers (arrays and operators are checked
# where they are classified, since they may be LinearOperators or CuPy).
_SOLVER_CONSTRAINTS = {
    "A": "no_validation",
    "b": "no_validation",
    "x0": "no_validation",
    "rtol": [Interval(numbers.Real, 0, 1, closed="left")],
    "atol": [Interval(numbers.Real, 0, None, closed="left")],
    "maxiter": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "callback": [callable, None],
    "tol": [Interval(numbers.Real, 0, 1, closed="left"), None],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
}


@validate_params({**_SOLVER_CONSTRAINTS, "M": "no_validation"},
                 prefer_skip_nested_validation=True)
def cg(A, b, x0=None, *, rtol=_DEFAULT_RTOL, atol=0.0, maxiter=None, M=None,
       callback=None, tol=None, max_iter=None):
    """Solve ``A x = b`` by (preconditioned) conjugate gradients.

    Takes the arguments of :func:`scipy.sparse.linalg.cg` and keeps the
    residual history. Real symmetric and complex Hermitian positive
    (semi-)definite ``A`` are both supported.

    Parameters
    ----------
    A : sparse matrix, dense array or LinearOperator of shape (n, n)
        Hermitian positive (semi-)definite. Anything
        :func:`scipy.sparse.linalg.aslinearoperator` accepts works with
        NumPy ``b``; ``cupyx.scipy.sparse`` matrices, CuPy arrays and cupyx
        LinearOperators with CuPy ``b``. For sparse and dense ``A`` the part
        of ``b`` in the null space of ``A`` (see
        :func:`~sparsesolve.poisson.floating_components`) is removed first,
        with a warning when that part is not negligible; a LinearOperator
        has no sparsity pattern to find it from, so with one ``b`` must lie
        in the range of ``A``.
    b : array of shape (n,) or (n, 1)
        Right-hand side, real or complex floating. Its precision decides the
        computation's (float32 and complex64 compute in single precision).
    x0 : array of shape (n,) or (n, 1), default=None
        Starting guess (zeros by default). Never modified.
    rtol : float, default=1e-6
        Relative tolerance, in [0, 1). Note that SciPy's default is 1e-5;
        1e-6 is the tolerance of the deep conjugate-direction solver, so the
        baselines stop where it stops.
    atol : float, default=0.0
        Absolute tolerance: the solve stops when
        ``||b - A x|| <= max(rtol * ||b||, atol)``.
    maxiter : int, default=None
        At most this many iterations (``10 * n`` by default, as in SciPy).
    M : sparse matrix, dense array, LinearOperator or callable, default=None
        Preconditioner approximating ``A^{-1}``, Hermitian positive definite:
        ``z = M @ r`` for a matrix, ``M.matvec(r)`` for an operator,
        ``M(r)`` for a callable (which must return an array of shape (n,)).
    callback : callable, default=None
        Called as ``callback(xk)`` after every iteration with the current
        iterate (do not modify it; copy it to keep it), as in SciPy.
    tol : float, default=None
        Deprecated alias of ``rtol`` (FutureWarning); passing both is an
        error.
    max_iter : int, default=None
        Deprecated alias of ``maxiter`` (FutureWarning); passing both is an
        error.

    Returns
    -------
    result : KrylovResult
        ``x``, ``n_iter``, ``residuals`` (relative, from iteration 0),
        ``converged``, ``true_residual`` and SciPy's ``info`` code (``0``
        converged, ``> 0`` iterations run without converging, ``-1``
        breakdown): ``x, info = result.x, result.info`` reads like
        ``x, info = scipy.sparse.linalg.cg(...)``.

    Warns
    -----
    ConvergenceWarning
        When the true residual at exit is above ``max(rtol * ||b||, atol)``.
    FutureWarning
        When ``tol`` or ``max_iter`` is used.

    See Also
    --------
    ic0_pcg : CG preconditioned by incomplete Cholesky.
    scipy.sparse.linalg.cg : The same iteration, without the history.

    Notes
    -----
    The iterates are SciPy's (same recurrence, same preconditioner
    application); the stopping rules differ in three details. SciPy stops
    when the *recursive* residual satisfies ``||r|| < atol'`` (strictly),
    this function when the *true* residual satisfies ``||r|| <= atol'``
    (``atol' = max(rtol * ||b||, atol)``), restarting the recurrence from
    the true residual if the two disagree; SciPy reports ``info = maxiter``
    when the tolerance is reached on the last allowed iteration, this
    function reports ``0``; and ``||b||`` here is the norm of ``b`` after the
    null-space projection. Iteration counts agree within one.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.sparse.linalg import LinearOperator
    >>> from sparsesolve.poisson import cg, poisson_matrix
    >>> A = poisson_matrix((8, 8, 8))
    >>> result = cg(A, np.ones(512), rtol=1e-8)
    >>> result.converged, result.info, bool(np.linalg.norm(A @ result.x - 1) < 1e-6)
    (True, 0, True)

    A matrix-free operator, a Jacobi preconditioner given as a callable and
    a callback counting iterations:

    >>> operator = LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=float)
    >>> iterates = []
    >>> result = cg(operator, np.ones(512), M=lambda r: r / A.diagonal(),
    ...             callback=iterates.append)
    >>> result.converged, len(iterates) == result.n_iter
    (True, True)
    """
    rtol, maxiter = _resolve_aliases("cg", rtol, tol, maxiter, max_iter)
    system = _prepare_system(A, b, x0, rtol, atol, maxiter, callback)
    return _run_cg(system, _preconditioner(M, system), "cg")


class IncompleteCholesky:
    """IC(0) factor ``L`` of a Hermitian sparse matrix, applied as ``(L L^H)^{-1}``.

    Real symmetric ``A`` gives a real factor (``L L^T``), complex Hermitian
    ``A`` a complex one with a real diagonal. Only the lower triangle of
    ``A`` is read: a non-Hermitian ``A`` is not detected.

    Parameters
    ----------
    A : sparse matrix or dense array of shape (n, n)
        Hermitian, with non-negative diagonal, finite entries. Zero rows and
        pivots that vanish (singular closed regions) get a safe pivot, see
        :mod:`sparsesolve.poisson._ic0_kernels`. A LinearOperator is rejected:
        IC(0) needs the entries of ``A``.

    Attributes
    ----------
    factor : scipy.sparse.csr_matrix
        The lower-triangular factor ``L`` (same pattern as ``tril(A)`` plus
        the diagonal), float64 or complex128.
    shape : tuple of int
        ``(n, n)``.
    dtype : numpy.dtype
        The factor's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import IncompleteCholesky, poisson_matrix
    >>> A = poisson_matrix((1, 6))
    >>> L = IncompleteCholesky(A).factor.toarray()
    >>> bool(np.allclose(L @ L.T, A.toarray()))  # exact for a tridiagonal A
    True

    As the preconditioner of SciPy's CG:

    >>> from scipy.sparse.linalg import cg as scipy_cg
    >>> A = poisson_matrix((10, 10, 10))
    >>> M = IncompleteCholesky(A).aslinearoperator()
    >>> x, info = scipy_cg(A, np.ones(1000), M=M, rtol=1e-8)
    >>> info, bool(np.linalg.norm(A @ x - 1) <= 1e-8 * np.sqrt(1000))
    (0, True)
    """

    def __init__(self, A):
        A = _check_factor_matrix(A)
        n = A.shape[0]
        strict = sp.tril(A, k=-1).tocoo()
        # The diagonal is stored explicitly, zeros included, so that every
        # row of the pattern ends with its pivot.
        rows = np.concatenate([strict.row, np.arange(n)])
        cols = np.concatenate([strict.col, np.arange(n)])
        vals = np.concatenate([strict.data, A.diagonal()])
        lower = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
        lower.sort_indices()
        self._indptr = lower.indptr.astype(np.int64)
        self._indices = lower.indices.astype(np.int64)
        self._values = ic0_factor(self._indptr, self._indices, lower.data,
                                  _PIVOT_FLOOR)
        self.factor = sp.csr_matrix(
            (self._values, self._indices, self._indptr), shape=(n, n))
        self.shape = (n, n)
        self.dtype = self._values.dtype
        self._device = {}

    def solve(self, r):
        """Apply the preconditioner: two triangular solves.

        Parameters
        ----------
        r : array of shape (n,)
            Real or complex, finite (integers compute as float64). NumPy
            (numba kernel) or CuPy (cupyx triangular solves).

        Returns
        -------
        z : array of shape (n,)
            ``(L L^H)^{-1} r`` in the namespace of ``r``, with its precision
            (complex when ``r`` or the factor is).

        Examples
        --------
        >>> import numpy as np
        >>> from sparsesolve.poisson import IncompleteCholesky, poisson_matrix
        >>> A = poisson_matrix((1, 4))
        >>> z = IncompleteCholesky(A).solve(np.ones(4))
        >>> bool(np.allclose(A @ z, 1))  # exact: A is tridiagonal
        True
        """
        n = self.shape[0]
        if not is_array(r):
            raise TypeError(f"r must be an array; got {type(r).__name__}.")
        xp = get_namespace(r)
        if r.ndim != 1 or r.shape[0] != n:
            raise ValueError(
                f"r must be a 1D array of length {n} (rows of the factor); got "
                f"shape {tuple(r.shape)}."
            )
        # Integers are accepted (as float64): scipy's LinearOperator probes a
        # matvec given without a dtype with an int8 vector.
        if not xp.isdtype(r.dtype, ("integral", "real floating",
                                    "complex floating")):
            raise TypeError(f"r must be a numeric array; got {r.dtype}.")
        if kernel_target(xp) == "host":
            raise TypeError(f"r must be a NumPy or CuPy array; got {xp.__name__}.")
        if not bool(xp.all(xp.isfinite(r))):
            raise ValueError("r contains NaN or infinity.")
        return self._apply(r)

    def aslinearoperator(self):
        """The preconditioner as a :class:`scipy.sparse.linalg.LinearOperator`.

        Its ``matvec`` (and ``rmatvec``: ``L L^H`` is Hermitian) is
        :meth:`solve`, so it can be passed as ``M`` to any
        :mod:`scipy.sparse.linalg` solver, or to :func:`cg`.

        Returns
        -------
        M : scipy.sparse.linalg.LinearOperator of shape (n, n)
            ``r -> (L L^H)^{-1} r`` on NumPy vectors.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import minres
        >>> from sparsesolve.poisson import IncompleteCholesky, poisson_matrix
        >>> A = poisson_matrix((12, 12))
        >>> M = IncompleteCholesky(A).aslinearoperator()
        >>> x, info = minres(A, np.ones(144), M=M, rtol=1e-10)
        >>> info
        0
        """

        def matvec(r):
            # LinearOperator.matvec has checked the shape ((n,) or (n, 1)).
            return self._apply(np.ravel(np.asarray(r)))

        return spla.LinearOperator(self.shape, matvec=matvec, rmatvec=matvec,
                                   dtype=self.dtype)

    def _output_dtype(self, dtype):
        single = np.dtype(dtype) in (np.float32, np.complex64)
        if _is_complex_dtype(dtype) or _is_complex_dtype(self.dtype):
            return np.dtype(np.complex64 if single else np.complex128)
        return np.dtype(np.float32 if single else np.float64)

    def _apply(self, r):
        """:meth:`solve` for a residual already known to fit (no checks)."""
        xp = get_namespace(r)
        out_dtype = self._output_dtype(r.dtype)
        if kernel_target(xp) == "cpu":
            # The sequential numba kernel (NumPy); elsewhere the sparse
            # triangular solves of the array's own library. The kernel
            # computes in double precision (complex when either the factor
            # or r is); it checks the length again itself.
            work = np.complex128 if out_dtype.kind == "c" else np.float64
            z = ic0_solve(self._indptr, self._indices, self._values,
                          np.asarray(r, dtype=work))
            return z.astype(out_dtype, copy=False)
        return self._solve_gpu(xp, r, out_dtype)

    def _solve_gpu(self, xp, r, out_dtype):
        # Sparse triangular solves on the device; the factor is computed
        # once on the host and moved.
        spsolve_triangular = sparse_linalg_namespace(xp).spsolve_triangular
        key = str(out_dtype)
        if key not in self._device:
            lower = sparse_namespace(xp).csr_matrix(self.factor.astype(out_dtype))
            self._device[key] = (lower, lower.T.conj().tocsr())
        lower, upper = self._device[key]
        if r.dtype != out_dtype:
            r = xp.astype(r, out_dtype)
        y = spsolve_triangular(lower, r, lower=True)
        return spsolve_triangular(upper, y, lower=False)


def _check_factor_matrix(A):
    """``A`` as host CSR, float64 or complex128, checked for IC(0)."""
    if _is_linear_operator(A):
        raise TypeError(
            "A must be a sparse matrix or a dense array for IncompleteCholesky: "
            f"IC(0) needs the entries of A, which a {type(A).__name__} does not "
            "expose."
        )
    if not (is_sparse(A) or is_array(A)):
        raise TypeError(
            f"A must be a sparse matrix or a dense array; got {type(A).__name__}."
        )
    _check_shape_square(A, "A")
    if A.shape[0] == 0:
        raise ValueError("A is empty (shape (0, 0)): IC(0) factors a matrix with "
                         "at least one row.")
    _check_numeric_dtype(A.dtype, "A")
    dtype = np.complex128 if _is_complex_dtype(A.dtype) else np.float64
    A = sp.csr_matrix(_host_matrix(A), dtype=dtype)
    _check_entries_finite(A, "A")
    negative = np.flatnonzero(A.diagonal().real < 0)
    if negative.size:
        # IC(0) factors positive (semi)definite matrices; a negative pivot
        # would otherwise be replaced silently and precondition nothing.
        raise ValueError(
            f"A must have a nonnegative diagonal (IC(0) factors a positive "
            f"semi-definite matrix); A[{negative[0]}, {negative[0]}] = "
            f"{A.diagonal()[negative[0]]} < 0 ({negative.size} negative entries).")
    row_sums = np.asarray(abs(A).sum(axis=1)).ravel()
    empty_pivot = np.flatnonzero((A.diagonal() == 0) & (row_sums > 0))
    if empty_pivot.size:
        # A zero row (a solid cell) is allowed and left out; a zero diagonal
        # with coupled neighbours makes A indefinite (x^T A x < 0 for some x).
        raise ValueError(
            f"A has a zero diagonal entry in a nonzero row (A[{empty_pivot[0]}, "
            f"{empty_pivot[0]}] = 0): IC(0) needs a positive definite matrix "
            "apart from empty rows.")
    if dtype is np.complex128 and A.nnz:
        # A Hermitian matrix has a real diagonal; the factor's pivots need it.
        tolerance = np.sqrt(np.finfo(np.float64).eps) * abs(A).max()
        if np.abs(A.diagonal().imag).max() > tolerance:
            raise ValueError(
                "A must be Hermitian: its diagonal has nonzero imaginary parts."
            )
    return A


@validate_params({**_SOLVER_CONSTRAINTS, "preconditioner": "no_validation"},
                 prefer_skip_nested_validation=True)
def ic0_pcg(A, b, x0=None, *, rtol=_DEFAULT_RTOL, atol=0.0, maxiter=None,
            callback=None, preconditioner=None, tol=None, max_iter=None):
    """Solve ``A x = b`` by CG preconditioned with incomplete Cholesky IC(0).

    The factorisation runs on the host in numba; with CuPy input the
    triangular solves run on the device (``cupyx`` sparse triangular solve).
    Real symmetric and complex Hermitian ``A`` are supported.

    Parameters
    ----------
    A : sparse matrix or dense array of shape (n, n)
        Hermitian positive (semi-)definite. A LinearOperator is rejected
        (IC(0) needs the entries); use :func:`cg` with ``M`` for one.
    b : array of shape (n,) or (n, 1)
        Right-hand side, real or complex (its null-space part is removed
        first, as in :func:`cg`).
    x0 : array of shape (n,) or (n, 1), default=None
        Starting guess (zeros by default).
    rtol : float, default=1e-6
        Relative tolerance (SciPy's default is 1e-5, see :func:`cg`).
    atol : float, default=0.0
        Stop when ``||b - A x|| <= max(rtol * ||b||, atol)``.
    maxiter : int, default=None
        At most this many iterations (``10 * n`` by default).
    callback : callable, default=None
        Called as ``callback(xk)`` after every iteration.
    preconditioner : IncompleteCholesky, default=None
        A factor computed earlier for the same ``A`` (reuse it across
        right-hand sides); computed here when None. This takes the place of
        SciPy's ``M``: the preconditioner of this function is IC(0) by
        definition, so there is no ``M`` argument.
    tol, max_iter : default=None
        Deprecated aliases of ``rtol`` and ``maxiter``, as in :func:`cg`.

    Returns
    -------
    result : KrylovResult
        As for :func:`cg`.

    Warns
    -----
    ConvergenceWarning
        When the true residual at exit is above ``max(rtol * ||b||, atol)``.
    FutureWarning
        When ``tol`` or ``max_iter`` is used.

    See Also
    --------
    IncompleteCholesky.aslinearoperator : The same preconditioner for SciPy.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import cg, ic0_pcg, poisson_matrix
    >>> A = poisson_matrix((16, 16, 16))
    >>> b = np.random.default_rng(0).standard_normal(A.shape[0])
    >>> ic0_pcg(A, b).n_iter < cg(A, b).n_iter
    True
    """
    rtol, maxiter = _resolve_aliases("ic0_pcg", rtol, tol, maxiter, max_iter)
    if preconditioner is not None and not isinstance(preconditioner,
                                                     IncompleteCholesky):
        raise TypeError(
            "preconditioner must be an IncompleteCholesky instance or None; "
            f"got {type(preconditioner).__name__}."
        )
    system = _prepare_system(A, b, x0, rtol, atol, maxiter, callback,
                             needs_entries="ic0_pcg")
    if preconditioner is None:
        # From A as given: a float32 or real A keeps the float64 real factor
        # it would have on its own.
        preconditioner = IncompleteCholesky(A)
    elif preconditioner.shape != tuple(system.operator.shape):
        raise ValueError(
            f"preconditioner was built for shape {preconditioner.shape}, "
            f"A has shape {tuple(system.operator.shape)}."
        )
    elif (_is_complex_dtype(preconditioner.dtype)
          and not _is_complex_dtype(system.dtype)):
        raise ValueError(
            "preconditioner was built for a complex matrix; A, b and x0 are "
            "real."
        )
    return _run_cg(system, preconditioner._apply, "ic0_pcg")
