"""The observed entries of a partially known matrix, in the two layouts AltMin needs.

A row pass reads the observations row by row (CSR of ``M``); a column pass
reads them column by column (CSR of ``M^T``, i.e. CSC). Both are built once,
on the host with SciPy, and moved to the compute device. ``transpose_order``
maps the CSC positions to CSR positions so that per-entry quantities (Huber
weights, sketch hashes) computed in one layout can be read in the other.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from .._backend import to_namespace
from ._ratings import resolve_duplicates

__all__ = ["ObservedEntries", "observed_from_host"]


@dataclasses.dataclass
class ObservedEntries:
    """CSR and CSC index arrays of the observed set, on one device."""

    shape: tuple
    indptr: object
    indices: object
    values: object
    rows: object
    indptr_t: object
    indices_t: object
    values_t: object
    transpose_order: object
    counts: object
    counts_t: object

    @property
    def n_observed(self):
        return int(self.values.shape[0])


def csr_from_input(X, duplicates="error"):
    """Return a host CSR matrix of the observed entries of ``X``.

    ``X`` is a SciPy sparse matrix/array (stored entries are observations,
    explicit zeros included) or a dense NumPy array with NaN marking the
    missing entries. Coordinates stored more than once (possible in COO and
    non-canonical CSR input) follow ``duplicates``: ``"error"``, ``"mean"``
    or ``"last"``; SciPy's own conversion would sum them.
    """
    if sp.issparse(X):
        coo = sp.coo_matrix(X, copy=True)
        rows, cols, values = resolve_duplicates(coo.row, coo.col, coo.data,
                                                coo.shape[1], duplicates)
        # Built from distinct coordinates, so nothing is summed; explicit
        # zeros stay: they are observations.
        csr = sp.csr_matrix((values, (rows, cols)), shape=coo.shape,
                            dtype=coo.dtype)
        csr.sort_indices()
        return csr
    dense = np.asarray(X)
    rows, cols = np.nonzero(~np.isnan(dense))
    return sp.csr_matrix(
        (dense[rows, cols], (rows, cols)), shape=dense.shape, dtype=dense.dtype
    )


def observed_from_host(csr, xp, like=None):
    """Build :class:`ObservedEntries` from a host CSR matrix, on ``xp``'s device."""
    csr = csr.copy()
    n_rows, n_cols = csr.shape
    index_dtype = np.int32 if csr.nnz < 2**31 - 1 else np.int64
    positions = sp.csr_matrix(
        (np.arange(csr.nnz, dtype=np.float64), csr.indices, csr.indptr), shape=csr.shape
    )
    csc_positions = positions.tocsc()
    csc_positions.sort_indices()
    transpose_order = csc_positions.data.astype(np.int64)
    rows = np.repeat(np.arange(n_rows, dtype=index_dtype), np.diff(csr.indptr))

    def move(array, dtype=None):
        array = np.ascontiguousarray(array if dtype is None else array.astype(dtype))
        return to_namespace(array, xp, like=like)

    return ObservedEntries(
        shape=(n_rows, n_cols),
        indptr=move(csr.indptr, index_dtype),
        indices=move(csr.indices, index_dtype),
        values=move(csr.data),
        rows=move(rows),
        indptr_t=move(csc_positions.indptr, index_dtype),
        indices_t=move(csc_positions.indices, index_dtype),
        values_t=move(csr.data[transpose_order]),
        transpose_order=move(transpose_order),
        counts=np.diff(csr.indptr),
        counts_t=np.diff(csc_positions.indptr),
    )
