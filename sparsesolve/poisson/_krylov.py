"""Conjugate gradients and IC(0)-preconditioned CG, the in-house baselines.

Both use the stopping rule of the deep conjugate-direction solver: the
relative residual ``||b - A x|| / ||b||`` (``b`` after projection onto the
range of ``A``), and both confirm the *true* residual before they report
convergence, so a drifted recursive residual never ends a solve. They are
written once against the array namespace of ``b``: SciPy sparse and NumPy on
the CPU, ``cupyx.scipy.sparse`` and CuPy on the GPU.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from .._backend import get_namespace, is_numpy_namespace, to_numpy
from ._kernels import ic0_factor, ic0_solve
from ._operator import floating_components, project_to_range

__all__ = ["KrylovResult", "cg", "ic0_pcg", "IncompleteCholesky"]

# A pivot below this share of the original diagonal is treated as breakdown
# (singular closed regions cancel to ~1e-16 relative).
_PIVOT_FLOOR = 1e-10


@dataclasses.dataclass
class KrylovResult:
    """Outcome of a Krylov solve.

    Parameters
    ----------
    x : array of shape (n,)
        The solution, in the namespace and dtype of ``b``.
    n_iter : int
        Iterations run (one matrix-vector product each).
    residuals : ndarray of shape (n_iter + 1,)
        Relative residual norms ``||r_k|| / ||b||``, from ``k = 0``.
    converged : bool
        True when the true relative residual at exit is at most ``tol``.
    true_residual : float
        ``||b - A x|| / ||b||`` recomputed at exit.
    """

    x: object
    n_iter: int
    residuals: np.ndarray
    converged: bool
    true_residual: float


def _is_sparse(A):
    if sp.issparse(A):
        return True
    module = type(A).__module__
    return module.startswith("cupyx.scipy.sparse")


def _host_matrix(A):
    return A if sp.issparse(A) else A.get()


def check_system(A, b, name_b="b"):
    """Validate a square sparse ``A`` and a matching 1D ``b``; return the namespace."""
    if not _is_sparse(A):
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
    if sp.issparse(A) != is_numpy_namespace(xp):
        raise TypeError(
            f"A ({type(A).__module__}) and {name_b} ({xp.__name__}) live on "
            "different devices: use SciPy sparse with NumPy, cupyx.scipy.sparse "
            "with CuPy."
        )
    if not xp.isdtype(b.dtype, "real floating"):
        raise TypeError(f"{name_b} must be a real floating array; got {b.dtype}.")
    if not bool(xp.all(xp.isfinite(b))):
        raise ValueError(f"{name_b} contains NaN or infinity.")
    return xp


def _check_tolerances(tol, max_iter, n):
    if not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"tol must be a float in (0, 1); got {tol!r}.")
    if max_iter is None:
        return 10 * n
    if not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int or None; got {max_iter!r}.")
    return int(max_iter)


def prepare_rhs(A, b, xp, tol, components=None):
    """Project ``b`` onto range(A); warn when that changes it by more than ``tol``.

    ``components`` is ``floating_components(A)`` when the caller already has
    it (a fitted solver computes it once: it needs the matrix on the host).
    Returns the projected right-hand side and its norm.
    """
    if components is None:
        components = floating_components(_host_matrix(A))
    labels, n_floating = components
    b_range = project_to_range(b, labels, n_floating, xp=xp)
    norm_b = float(xp.linalg.vector_norm(b))
    norm_range = float(xp.linalg.vector_norm(b_range))
    if norm_b > 0 and norm_b - norm_range > tol * norm_b:
        removed = float(xp.linalg.vector_norm(b - b_range)) / norm_b
        warnings.warn(
            f"b has a part in the null space of A (relative size {removed:.3g}): "
            "fluid regions with no Dirichlet face or nonzero entries at solid "
            "cells. No x solves A x = b; the solver returns x with A x = P b, "
            "P the projection onto the range of A.",
            UserWarning,
            stacklevel=3,
        )
    return b_range, norm_range


def _dot(xp, u, v):
    # ``@`` of two vectors is one BLAS (cuBLAS) dot; the array-api-compat
    # vecdot wrapper costs several kernels and broadcasts per call on CuPy.
    return float(u @ v)


def _pcg(A, b, x0, tol, max_iter, precondition, desc):
    xp = check_system(A, b)
    max_iter = _check_tolerances(tol, max_iter, A.shape[0])
    b_range, norm_b = prepare_rhs(A, b, xp, tol)
    dtype = b.dtype
    if A.dtype != dtype:
        A = A.astype(dtype)  # float32 input computes in float32 throughout
    if x0 is None:
        x = xp.zeros_like(b_range)
    else:
        check_system(A, x0, name_b="x0")
        x = xp.astype(x0, dtype, copy=True)
    if norm_b == 0.0:
        return KrylovResult(xp.zeros_like(b_range), 0, np.zeros(1), True, 0.0)
    r = b_range - A @ x
    residuals = [float(xp.linalg.vector_norm(r)) / norm_b]
    converged = residuals[0] <= tol
    n_iter = 0
    p = None
    rz = 0.0
    while not converged and n_iter < max_iter:
        z = precondition(r)
        rz_new = _dot(xp, r, z)
        p = z if p is None else z + (rz_new / rz) * p
        rz = rz_new
        Ap = A @ p
        curvature = _dot(xp, p, Ap)
        if curvature <= 0.0 or rz == 0.0:
            break  # breakdown: A or M is not positive definite on this vector
        alpha = rz / curvature
        x = x + alpha * p
        r = r - alpha * Ap
        n_iter += 1
        relative = float(xp.linalg.vector_norm(r)) / norm_b
        if relative <= tol:
            # The recursive residual can drift from the true one; only the
            # true residual may end the solve. If it disagrees, restart the
            # recurrence from it.
            r = b_range - A @ x
            relative = float(xp.linalg.vector_norm(r)) / norm_b
            converged = relative <= tol
            if not converged:
                p = None
        residuals.append(relative)
    true_residual = float(xp.linalg.vector_norm(b_range - A @ x)) / norm_b
    converged = true_residual <= tol
    if not converged:
        warnings.warn(
            f"{desc} did not reach tol={tol:g} in {n_iter} iterations "
            f"(true relative residual {true_residual:.3g}); increase max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return KrylovResult(x, n_iter, np.asarray(residuals), converged, true_residual)


def cg(A, b, x0=None, *, tol=1e-6, max_iter=None):
    """Solve ``A x = b`` by conjugate gradients, keeping the residual history.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive (semi-)definite; SciPy sparse for NumPy ``b``,
        ``cupyx.scipy.sparse`` for CuPy ``b``.
    b : array of shape (n,)
        Right-hand side, float32 or float64 (the computation uses its dtype).
        Its part in the null space of ``A`` (see
        :func:`~sparsesolve.poisson.floating_components`) is removed first,
        with a warning when that part is not negligible.
    x0 : array of shape (n,), default=None
        Starting guess (zeros by default).
    tol : float, default=1e-6
        Stop when ``||b - A x|| <= tol * ||b||``.
    max_iter : int, default=None
        At most this many iterations (``10 * n`` by default).

    Returns
    -------
    result : KrylovResult
        ``x``, ``n_iter``, ``residuals`` (relative, from iteration 0),
        ``converged`` and ``true_residual``.

    Warns
    -----
    ConvergenceWarning
        When the true relative residual at exit is above ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import cg, poisson_matrix
    >>> A = poisson_matrix((8, 8, 8))
    >>> result = cg(A, np.ones(512), tol=1e-8)
    >>> result.converged, bool(np.linalg.norm(A @ result.x - 1) < 1e-6)
    (True, True)
    """
    return _pcg(A, b, x0, tol, max_iter, lambda r: r, "cg")


class IncompleteCholesky:
    """IC(0) factor ``L`` of a symmetric sparse matrix, applied as ``(L L^T)^{-1}``.

    Parameters
    ----------
    A : scipy sparse matrix of shape (n, n)
        Symmetric, with non-negative diagonal. Zero rows and pivots that
        vanish (singular closed regions) get a safe pivot, see
        :mod:`sparsesolve.poisson._kernels`.

    Attributes
    ----------
    factor : scipy.sparse.csr_matrix
        The lower-triangular factor ``L`` (same pattern as ``tril(A)`` plus
        the diagonal).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import IncompleteCholesky, poisson_matrix
    >>> A = poisson_matrix((1, 6))
    >>> L = IncompleteCholesky(A).factor.toarray()
    >>> bool(np.allclose(L @ L.T, A.toarray()))  # exact for a tridiagonal A
    True
    """

    def __init__(self, A):
        A = sp.csr_matrix(_host_matrix(A), dtype=np.float64)
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
        self._device = {}

    def solve(self, r):
        """Apply the preconditioner: two triangular solves.

        Parameters
        ----------
        r : array of shape (n,)
            NumPy (numba kernel) or CuPy (cupyx triangular solves).

        Returns
        -------
        z : array of shape (n,)
            ``(L L^T)^{-1} r`` in the namespace and dtype of ``r``.
        """
        xp = get_namespace(r)
        if is_numpy_namespace(xp):
            z = ic0_solve(self._indptr, self._indices, self._values,
                          np.asarray(r, dtype=np.float64))
            return z.astype(r.dtype, copy=False)
        return self._solve_gpu(xp, r)

    def _solve_gpu(self, xp, r):
        # Sparse triangular solves on the device; the factor is computed
        # once on the host and moved.
        import cupyx.scipy.sparse as cusparse
        from cupyx.scipy.sparse.linalg import spsolve_triangular

        key = str(r.dtype)
        if key not in self._device:
            lower = cusparse.csr_matrix(self.factor.astype(to_numpy(r[:0]).dtype))
            self._device[key] = (lower, lower.T.tocsr())
        lower, upper = self._device[key]
        y = spsolve_triangular(lower, r, lower=True)
        return spsolve_triangular(upper, y, lower=False)


def ic0_pcg(A, b, x0=None, *, tol=1e-6, max_iter=None, preconditioner=None):
    """Solve ``A x = b`` by CG preconditioned with incomplete Cholesky IC(0).

    The factorisation runs on the host in numba; with CuPy input the
    triangular solves run on the device (``cupyx`` sparse triangular solve).

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive (semi-)definite.
    b : array of shape (n,)
        Right-hand side (its null-space part is removed first, as in
        :func:`cg`).
    x0 : array of shape (n,), default=None
        Starting guess (zeros by default).
    tol : float, default=1e-6
        Stop when ``||b - A x|| <= tol * ||b||``.
    max_iter : int, default=None
        At most this many iterations (``10 * n`` by default).
    preconditioner : IncompleteCholesky, default=None
        A factor computed earlier for the same ``A`` (reuse it across
        right-hand sides); computed here when None.

    Returns
    -------
    result : KrylovResult
        As for :func:`cg`.

    Warns
    -----
    ConvergenceWarning
        When the true relative residual at exit is above ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import cg, ic0_pcg, poisson_matrix
    >>> A = poisson_matrix((16, 16, 16))
    >>> b = np.random.default_rng(0).standard_normal(A.shape[0])
    >>> ic0_pcg(A, b).n_iter < cg(A, b).n_iter
    True
    """
    check_system(A, b)
    if preconditioner is None:
        preconditioner = IncompleteCholesky(A)
    elif not isinstance(preconditioner, IncompleteCholesky):
        raise TypeError(
            "preconditioner must be an IncompleteCholesky instance or None; "
            f"got {type(preconditioner).__name__}."
        )
    elif preconditioner.factor.shape != A.shape:
        raise ValueError(
            f"preconditioner was built for shape {preconditioner.factor.shape}, "
            f"A has shape {A.shape}."
        )
    return _pcg(A, b, x0, tol, max_iter, preconditioner.solve, "ic0_pcg")
