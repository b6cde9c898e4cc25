"""Matrix-free Kronecker products ``A_1 ⊗ ⋯ ⊗ A_I`` applied by mode products."""

from __future__ import annotations

import math

from .._backend import get_namespace

__all__ = ["KroneckerOperator", "kron_matrix", "mode_product_apply"]


def mode_product_apply(factors, X, xp):
    """Apply ``⊗ factors`` to every row of ``X`` without forming the product.

    Row ``b`` of ``X`` (length ``prod(n_i)``) is read as a C-ordered tensor of
    shape ``(n_1, ..., n_I)``, so mode 1 is the slowest index, matching
    ``np.kron(A_1, np.kron(A_2, ...))``. Mode ``i`` is multiplied by ``A_i``.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
        The Kronecker factors.
    X : array of shape (n_samples, prod(n_i))
        Rows to transform.
    xp : module
        Array namespace of the inputs.

    Returns
    -------
    array of shape (n_samples, prod(m_i))
    """
    n_samples = int(X.shape[0])
    shape = [int(factor.shape[1]) for factor in factors]
    tensor = X
    for mode, factor in enumerate(factors):
        # View the rows as (before, n_i, after) in C order and multiply the
        # middle axis: one (batched) matmul per mode, no transposes. The
        # last mode (after == 1) is a plain matrix product.
        before = n_samples * math.prod(shape[:mode])
        after = math.prod(shape[mode + 1:])
        if after == 1:
            tensor = xp.reshape(tensor, (before, shape[mode])) @ xp.permute_dims(
                factor, (1, 0))
        else:
            tensor = xp.matmul(factor, xp.reshape(tensor, (before, shape[mode], after)))
        shape[mode] = int(factor.shape[0])
    return xp.reshape(tensor, (n_samples, math.prod(shape)))


def kron_matrix(factors, xp):
    """Form the dense Kronecker product of ``factors`` (for small problems).

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
    xp : module

    Returns
    -------
    array of shape (prod(m_i), prod(n_i))
    """
    result = factors[0]
    for factor in factors[1:]:
        rows, cols = result.shape
        m, n = factor.shape
        outer = result[:, None, :, None] * factor[None, :, None, :]
        result = xp.reshape(outer, (rows * m, cols * n))
    return result


def _hermitian(matrix, xp):
    transposed = xp.permute_dims(matrix, (1, 0))
    if xp.isdtype(matrix.dtype, "complex floating"):
        return xp.conj(transposed)
    return transposed


class KroneckerOperator:
    """The linear map ``A_1 ⊗ A_2 ⊗ ⋯ ⊗ A_I`` applied by mode products.

    The product is never formed: a vector of length ``N = prod(n_i)`` is
    viewed as a tensor of shape ``(n_1, ..., n_I)`` (C order, mode 1 slowest,
    as ``np.kron(A_1, np.kron(A_2, A_3))``) and each mode is multiplied by its
    factor. Work is ``O(N * sum(m_i))`` instead of ``O(M N)`` and memory is
    ``O(M + N)`` instead of ``O(M N)``. NumPy factors run on the CPU, CuPy
    factors on the GPU; results stay in the namespace of the inputs.

    Parameters
    ----------
    factors : sequence of 2-D arrays, shapes (m_i, n_i)
        The Kronecker factors, real or complex, all from one array library.

    Attributes
    ----------
    factors : list of arrays
        The factors, converted to a common floating dtype.
    shape : tuple of int
        ``(prod(m_i), prod(n_i))``.
    dtype : dtype
        The common dtype of the factors.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.kronecker import KroneckerOperator
    >>> A1, A2 = np.arange(6.0).reshape(2, 3), np.eye(2)
    >>> op = KroneckerOperator([A1, A2])
    >>> op.shape
    (4, 6)
    >>> x = np.ones(6)
    >>> np.allclose(op.matvec(x), np.kron(A1, A2) @ x)
    True
    """

    def __init__(self, factors):
        self.factors = _check_factors(factors, "factors")
        self._xp = get_namespace(*self.factors)
        self.shape = (
            math.prod(f.shape[0] for f in self.factors),
            math.prod(f.shape[1] for f in self.factors),
        )
        self.dtype = self.factors[0].dtype

    @property
    def mode_shapes(self):
        """List of ``(m_i, n_i)`` per mode."""
        return [tuple(f.shape) for f in self.factors]

    def _apply(self, factors, x, expected, name="x"):
        xp = self._xp
        x = xp.asarray(x)
        if x.ndim not in (1, 2) or x.shape[0] != expected:
            raise ValueError(
                f"{name} must have shape ({expected},) or ({expected}, k); got "
                f"{tuple(x.shape)}."
            )
        if not xp.isdtype(x.dtype, ("real floating", "complex floating",
                                    "integral", "bool")):
            raise TypeError(f"{name} must hold real or complex numbers; got dtype "
                            f"{x.dtype}.")
        # A linear map of a NaN is NaN everywhere: refuse it here rather than
        # return a silently useless product.
        from .._validation import check_finite

        check_finite(x, name, xp)
        vector = x.ndim == 1
        # Columns of x are independent right-hand sides; mode products work
        # on rows, so transpose in and out.
        rows = xp.reshape(x, (1, expected)) if vector else xp.permute_dims(x, (1, 0))
        dtype = xp.result_type(rows.dtype, factors[0].dtype)
        out = mode_product_apply(factors, xp.astype(rows, dtype), xp)
        return out[0, :] if vector else xp.permute_dims(out, (1, 0))

    def matvec(self, x):
        """Return ``(A_1 ⊗ ⋯ ⊗ A_I) @ x`` for ``x`` of shape (N,) or (N, k)."""
        return self._apply(self.factors, x, self.shape[1])

    def rmatvec(self, y):
        """Return the adjoint product ``(A_1 ⊗ ⋯ ⊗ A_I)^H @ y``."""
        return self._apply(self.adjoint().factors, y, self.shape[0], name="y")

    matmat = matvec

    def adjoint(self):
        """Return the adjoint operator ``A_1^H ⊗ ⋯ ⊗ A_I^H``."""
        return KroneckerOperator([_hermitian(f, self._xp) for f in self.factors])

    @property
    def H(self):  # noqa: N802 - the usual name for the Hermitian adjoint
        """The adjoint operator (see :meth:`adjoint`)."""
        return self.adjoint()

    def todense(self):
        """Form the dense ``M x N`` matrix (memory ``O(M N)``: small cases only)."""
        return kron_matrix(self.factors, self._xp)

    def __matmul__(self, x):
        return self.matvec(x)

    def __repr__(self):
        shapes = " ⊗ ".join(f"{m}x{n}" for m, n in self.mode_shapes)
        return f"KroneckerOperator({shapes})"


def _check_factors(factors, name):
    """Validate a sequence of Kronecker factors and give them a common dtype."""
    if hasattr(factors, "shape") or not hasattr(factors, "__len__"):
        raise TypeError(
            f"{name} must be a list or tuple of 2-D arrays (one per mode); got "
            f"{type(factors).__name__}."
        )
    if len(factors) == 0:
        raise ValueError(f"{name} must hold at least one 2-D array.")
    xp = get_namespace(*factors)
    arrays = []
    for mode, factor in enumerate(factors):
        array = xp.asarray(factor)
        if array.ndim != 2:
            raise ValueError(
                f"{name}[{mode}] must be a 2-D array of shape (m_i, n_i); got "
                f"shape {tuple(array.shape)}."
            )
        if array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(f"{name}[{mode}] is empty (shape {tuple(array.shape)}).")
        if xp.isdtype(array.dtype, ("integral", "bool")):
            array = xp.astype(array, xp.float64)
        elif not xp.isdtype(array.dtype, ("real floating", "complex floating")):
            raise TypeError(
                f"{name}[{mode}] must hold real or complex numbers; got dtype "
                f"{array.dtype}."
            )
        if not bool(xp.all(xp.isfinite(array))):
            raise ValueError(f"{name}[{mode}] contains NaN or infinity.")
        arrays.append(array)
    dtype = xp.result_type(*(a.dtype for a in arrays))
    return [xp.astype(a, dtype) for a in arrays]
