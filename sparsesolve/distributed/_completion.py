"""Blocked alternating minimisation of :class:`AltMinCompletion` on Dask.

The observations are laid out twice on the workers, as in Spark MLlib's
blocked ALS: in row blocks (a CSR slab of contiguous rows, all their
columns) and in column blocks (the CSR of the transpose for contiguous
columns). A sweep sends the column factors to every row block, where each
row is solved by the same compiled per-row kernel as in memory; the new row
factors come back to the client (factors are small: ``n_rows x rank``) and
go out to the column blocks for the column half-sweep. Biases, Huber
weights and the training loss are computed where the entries live; the
global quantities they need (the mean, the median absolute deviation of
the residuals, sums) are reduced exactly (see :mod:`._reduce`).

Each row and column is solved from the same entries in the same order as
by :func:`~sparsesolve.completion._algorithm.alternating_minimization`, so
the distributed fit equals the in-memory one up to the order in which sums
over blocks are added.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from sklearn.utils import check_random_state
from sklearn.utils.extmath import svd_flip

from .._backend import numba_threads
from .._progress import Progress
from ..completion._algorithm import (
    _MAD_TO_SIGMA,
    HUBER_K,
    AlphaPath,
    _row_pass,
    huber_terms,
    predict_entries,
    random_init,
    shrunk_offsets,
    sweeps_converged,
)
from ..completion._estimator import (
    AUTO_ALPHAS,
    AUTO_HOLDOUT,
    AUTO_MIN_OBSERVED,
    AUTO_SWEEPS,
    FALLBACK_ALPHA,
)
from ..completion._observed import csr_from_input
from ..completion._ratings import (
    _as_values,
    encode_ids,
    lookup_ids,
    resolve_duplicates,
)
from ._dispatch import get_client
from ._reduce import gather, kth_smallest, submit

__all__ = ["fit_completion"]


# --------------------------------------------------------------------------
# Building the two layouts
# --------------------------------------------------------------------------
def _frame_columns(part):
    if hasattr(part, "iloc"):
        return [part.iloc[:, j].to_numpy() for j in range(part.shape[1])]
    return [part[:, j] for j in range(part.shape[1])]


def _partition_ids(part):
    """Distinct users and items of one input partition, with their counts."""
    users, items, _ = _frame_columns(part)
    user_ids, user_counts = np.unique(users, return_counts=True)
    item_ids, item_counts = np.unique(items, return_counts=True)
    return user_ids, user_counts, item_ids, item_counts


def _merge_counts(pairs):
    ids = np.concatenate([p[0] for p in pairs])
    counts = np.concatenate([p[1] for p in pairs])
    distinct, inverse = np.unique(ids, return_inverse=True)
    return distinct, np.bincount(inverse.reshape(-1), weights=counts,
                                 minlength=distinct.shape[0])


def _split_points(counts, n_blocks):
    """Boundaries of ``n_blocks`` contiguous ranges of about equal total count."""
    n = counts.shape[0]
    n_blocks = max(1, min(int(n_blocks), n))
    cumulative = np.cumsum(counts, dtype=np.float64)
    targets = cumulative[-1] * np.arange(1, n_blocks) / n_blocks
    inner = np.searchsorted(cumulative, targets, side="right") + 1
    bounds = np.unique(np.concatenate([[0], np.clip(inner, 1, n - 1), [n]]))
    return bounds.astype(np.int64)


def _ratings_pieces(part, users, items, row_bounds):
    """Encode one ratings partition and cut it by row block (input order kept)."""
    user_ids, item_ids, ratings = _frame_columns(part)
    rows = lookup_ids(users, user_ids)
    cols = lookup_ids(items, item_ids)
    values = _as_values(ratings, "the ratings")
    block = np.searchsorted(row_bounds, rows, side="right") - 1
    return [(rows[block == b], cols[block == b], values[block == b])
            for b in range(row_bounds.shape[0] - 1)]


def _row_block(first, stop, n_cols, duplicates, *pieces):
    """CSR slab of rows ``first:stop`` from its pieces, duplicates resolved."""
    rows = np.concatenate([p[0] for p in pieces]) - first
    cols = np.concatenate([p[1] for p in pieces])
    values = np.concatenate([p[2] for p in pieces])
    rows, cols, values = resolve_duplicates(rows, cols, values, n_cols, duplicates)
    csr = sp.csr_matrix((values, (rows, cols)), shape=(stop - first, n_cols))
    csr.sort_indices()
    return _row_layout(csr, first)


def _matrix_row_block(chunk, first, duplicates):
    """Row block of a chunk of a partially observed matrix (NaN = missing)."""
    csr = csr_from_input(chunk, duplicates=duplicates)
    if csr.dtype not in (np.float32, np.float64):
        csr = csr.astype(np.float64)
    if csr.nnz and not np.all(np.isfinite(csr.data)):
        raise ValueError("Input X contains infinity; mark missing entries with NaN.")
    return _row_layout(csr, first)


def _row_layout(csr, first):
    index_dtype = np.int32 if csr.nnz < 2**31 - 1 else np.int64
    counts = np.diff(csr.indptr)
    return {
        "first": int(first),
        "shape": csr.shape,
        "indptr": csr.indptr.astype(index_dtype),
        "indices": csr.indices.astype(index_dtype),
        "values": np.ascontiguousarray(csr.data),
        "rows": np.repeat(np.arange(csr.shape[0], dtype=index_dtype), counts),
        "counts": counts,
    }


def _block_summary(block):
    values = block["values"].astype(np.float64)
    return (int(values.shape[0]), block["shape"][0], float(values.sum()),
            block["counts"], block["values"].dtype)


def _column_pieces(block, col_bounds, offset):
    """Entries of a row block cut by column block, with their CSR positions."""
    rows = block["rows"].astype(np.int64) + block["first"]
    cols = block["indices"].astype(np.int64)
    positions = offset + np.arange(cols.shape[0], dtype=np.int64)
    if offset + cols.shape[0] < 2**31:
        positions = positions.astype(np.int32)
    which = np.searchsorted(col_bounds, cols, side="right") - 1
    return [(rows[which == b], cols[which == b], block["values"][which == b],
             positions[which == b]) for b in range(col_bounds.shape[0] - 1)]


def _column_block(first, stop, n_rows, *pieces):
    """The CSR of the transpose for columns ``first:stop`` (CSC order)."""
    rows = np.concatenate([p[0] for p in pieces])
    cols = np.concatenate([p[1] for p in pieces]) - first
    values = np.concatenate([p[2] for p in pieces])
    positions = np.concatenate([p[3] for p in pieces])
    order = np.lexsort((rows, cols))
    rows, cols, values, positions = (rows[order], cols[order], values[order],
                                     positions[order])
    counts = np.bincount(cols, minlength=stop - first)
    index_dtype = np.int32 if values.shape[0] < 2**31 - 1 else np.int64
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index_dtype)
    return {
        "first": int(first),
        "shape": (stop - first, n_rows),
        "indptr": indptr,
        "indices": rows.astype(index_dtype),
        "values": np.ascontiguousarray(values),
        "rows": cols.astype(index_dtype),
        "counts": counts,
        "positions": positions,
    }


def _centred(block, mean):
    out = dict(block)
    out["values"] = (block["values"].astype(np.float64) - mean).astype(
        block["values"].dtype)
    return out


def _values_of(block):
    return block["values"]


def _winsorised(block, low, high):
    out = dict(block)
    out["values"] = np.clip(block["values"], low, high)
    return out


def _square_sum(block, mean):
    return float(np.sum((block["values"].astype(np.float64) - mean) ** 2))


def _keep(block, held, offset=None):
    """The block without its held-out entries (``held`` per CSR position)."""
    if offset is None:
        mask = ~held[block["positions"]]
    else:
        mask = ~held[offset:offset + block["values"].shape[0]]
    counts = np.bincount(block["rows"][mask].astype(np.int64),
                         minlength=block["shape"][0])
    out = {key: block[key] for key in ("first", "shape")}
    index_dtype = block["indptr"].dtype
    out["indptr"] = np.concatenate([[0], np.cumsum(counts)]).astype(index_dtype)
    for key in ("indices", "values", "rows"):
        out[key] = np.ascontiguousarray(block[key][mask])
    out["counts"] = counts
    if "positions" in block:
        out["positions"] = block["positions"][mask]
    return out


def _held_error(block, held, offset, left_block, right, row_bias_block, col_bias):
    """Squared error sum at the block's held-out entries (row blocks)."""
    mask = held[offset:offset + block["values"].shape[0]]
    rows = np.ascontiguousarray(block["rows"][mask].astype(np.int64))
    cols = np.ascontiguousarray(block["indices"][mask].astype(np.int64))
    predicted = predict_entries(np, rows, cols, left_block, right)
    if row_bias_block is not None:
        predicted = (predicted + np.take(row_bias_block, rows)
                     + np.take(col_bias, cols))
    truth = block["values"][mask].astype(np.float64)
    return float(np.sum((predicted.astype(np.float64) - truth) ** 2))


# --------------------------------------------------------------------------
# Products for the spectral start
# --------------------------------------------------------------------------
def _block_product(block, dense, density):
    """``(block / density) @ dense``: this block's rows of the product."""
    csr = sp.csr_matrix((block["values"].astype(np.float64) / density,
                         block["indices"], block["indptr"]), shape=block["shape"])
    return csr @ dense


class _BlockedOperator:
    """``A = P_Omega(M) / p`` through its row blocks and column blocks."""

    def __init__(self, client, row_blocks, col_blocks, density):
        self.client = client
        self.row_blocks, self.col_blocks = row_blocks, col_blocks
        self.density = density

    def _apply(self, blocks, dense):
        shared = submit(self.client, np.asarray, dense)
        return np.concatenate(gather(self.client, [
            submit(self.client, _block_product, b, shared, self.density)
            for b in blocks]))

    def times(self, dense):
        return self._apply(self.row_blocks, dense)

    def transpose_times(self, dense):
        return self._apply(self.col_blocks, dense)


def _spectral_start(operator_, shape, rank, dtype, random_state):
    """The spectral start of :func:`~sparsesolve.completion._algorithm.spectral_init`.

    The same randomised SVD as scikit-learn's ``randomized_svd`` with that
    function's settings (10 oversamples, 4 power iterations normalised by
    LU, QR at the end, the transpose of wide matrices, the sign
    convention), with the products by the matrix done block by block.
    """
    n_rows, n_cols = shape
    n_random = rank + 10
    transpose = n_rows < n_cols
    times, transpose_times = operator_.times, operator_.transpose_times
    if transpose:
        times, transpose_times = transpose_times, times
    inner = n_rows if transpose else n_cols
    Q = random_state.normal(size=(inner, n_random))
    for _ in range(4):
        Q, _ = linalg.lu(times(Q), permute_l=True, check_finite=False)
        Q, _ = linalg.lu(transpose_times(Q), permute_l=True, check_finite=False)
    Q, _ = linalg.qr(times(Q), mode="economic", check_finite=False)
    B = transpose_times(Q).T
    Uhat, s, Vt = linalg.svd(B, full_matrices=False, lapack_driver="gesdd")
    U = Q @ Uhat
    if not transpose:
        U, Vt = svd_flip(U, Vt)
        left, singular, right_t = U[:, :rank], s[:rank], Vt[:rank]
    else:
        U, Vt = svd_flip(U, Vt, u_based_decision=False)
        left, singular, right_t = Vt[:rank].T, s[:rank], U[:, :rank].T
    scale = np.sqrt(singular)
    return (left * scale).astype(dtype), (right_t.T * scale).astype(dtype)


# --------------------------------------------------------------------------
# Half-sweeps where the blocks live
# --------------------------------------------------------------------------
def _residual(block, left, right, row_bias, col_bias, first_rows):
    """Residual of every entry of a column block (the model without noise).

    ``left``/``row_bias`` are indexed by the block's ``indices`` (global
    rows), ``right``/``col_bias`` by its local columns.
    """
    rows = block["indices"]
    cols = block["rows"]
    residual = block["values"] - predict_entries(np, rows, cols, left, right)
    if row_bias is not None:
        residual = residual - np.take(row_bias, rows) - np.take(col_bias, cols)
    return residual


def _ridges(counts, alpha, rms, dtype):
    return (alpha * rms * np.maximum(counts, 1)).astype(dtype)


def _weights_for(block, residual, delta, dtype):
    if delta is None:
        return np.ones(block["values"].shape, dtype=dtype)
    return huber_terms(np, residual, delta, dtype)[0]


def _row_task(block, left_block, right, row_bias_block, col_bias, delta, settings):
    """One row block's half-sweep: its factors (and biases) against ``right``."""
    solver, alpha, rms, cg_steps, cg_tol, bias_ridge, n_jobs = settings
    dtype = left_block.dtype
    x = np.array(left_block, copy=True)
    values, rows, cols = block["values"], block["rows"], block["indices"]
    reg = _ridges(block["counts"], alpha, rms, dtype)
    weights = None
    if delta is not None:
        residual = values - predict_entries(np, rows, cols, left_block, right)
        if row_bias_block is not None:
            residual = (residual - np.take(row_bias_block, rows)
                        - np.take(col_bias, cols))
        weights = _weights_for(block, residual, delta, dtype)
    else:
        weights = np.ones(values.shape, dtype=dtype)
    with numba_threads(n_jobs):
        if row_bias_block is None:
            _row_pass(np, solver, block["indptr"], cols, values, weights, right,
                      reg, x, cg_steps, cg_tol, None, None, 0)
            return x, None
        offset = values - np.take(col_bias, cols)
        _row_pass(np, solver, block["indptr"], cols,
                  offset - np.take(row_bias_block, rows), weights, right, reg, x,
                  cg_steps, cg_tol, None, None, 0)
        totals = (block["counts"].astype(np.float64) if delta is None else None)
        bias = shrunk_offsets(np, offset - predict_entries(np, rows, cols, x, right),
                              weights, block["indptr"], bias_ridge, dtype, totals)
    return x, bias


def _column_task(block, left_old, right_block, row_bias_old, col_bias_block,
                 left, row_bias, delta, settings):
    """One column block's half-sweep, then its residuals for the loss.

    The Huber weights of the column pass are those of the state at the start
    of the sweep (as in memory, where they are computed once per sweep), so
    the old row factors come along with the new ones.
    """
    solver, alpha, rms, cg_steps, cg_tol, bias_ridge, n_jobs = settings
    dtype = right_block.dtype
    values, rows, cols = block["values"], block["indices"], block["rows"]
    reg = _ridges(block["counts"], alpha, rms, dtype)
    if delta is not None:
        weights = _weights_for(block, _residual(block, left_old, right_block,
                                                row_bias_old, col_bias_block, None),
                               delta, dtype)
    else:
        weights = np.ones(values.shape, dtype=dtype)
    x = np.array(right_block, copy=True)
    bias = None
    with numba_threads(n_jobs):
        if row_bias is None:
            _row_pass(np, solver, block["indptr"], rows, values, weights, left,
                      reg, x, cg_steps, cg_tol, None, None, 0)
        else:
            offset = values - np.take(row_bias, rows)
            _row_pass(np, solver, block["indptr"], rows,
                      offset - np.take(col_bias_block, cols), weights, left, reg, x,
                      cg_steps, cg_tol, None, None, 0)
            totals = (block["counts"].astype(np.float64) if delta is None else None)
            bias = shrunk_offsets(np, offset - predict_entries(np, rows, cols, left,
                                                               x),
                                  weights, block["indptr"], bias_ridge, dtype, totals)
    residual = _residual(block, left, x, row_bias, bias, None)
    return x, bias, residual, float(np.sum(0.5 * residual.astype(np.float64) ** 2))


def _start_residual(block, left, right_block, row_bias, col_bias_block):
    residual = _residual(block, left, right_block, row_bias, col_bias_block, None)
    return None, None, residual, float(np.sum(0.5 * residual.astype(np.float64) ** 2))


def _residual_of(result):
    return result[2]


def _huber_sum(result, delta):
    residual = result[2]
    return float(np.sum(huber_terms(np, residual, delta, residual.dtype)[1]))


# --------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------
class _Layout:
    """Row and column blocks on the workers, and what the client knows of them."""

    def __init__(self, client, row_blocks, row_bounds, col_blocks, col_bounds,
                 shape, nnz, row_offsets, counts, counts_t):
        self.client = client
        self.row_blocks, self.row_bounds = row_blocks, row_bounds
        self.col_blocks, self.col_bounds = col_blocks, col_bounds
        self.shape, self.nnz, self.row_offsets = shape, nnz, row_offsets
        self.counts, self.counts_t = counts, counts_t

    def with_blocks(self, row_blocks, col_blocks, counts, counts_t, nnz):
        return _Layout(self.client, row_blocks, self.row_bounds, col_blocks,
                       self.col_bounds, self.shape, nnz, self.row_offsets, counts,
                       counts_t)


def _n_blocks(client, n_partitions):
    threads = sum(client.nthreads().values()) or 1
    return max(2 * threads, int(n_partitions))


def _ratings_row_blocks(client, X, estimator):
    columns = X.shape[1] if not hasattr(X, "columns") else len(X.columns)
    if columns != 3:
        raise ValueError(
            "X in ratings form on Dask must have 3 columns, (user, item, rating); "
            f"got {columns} columns."
        )
    if hasattr(X, "to_delayed"):
        X = X.rechunk({1: -1}) if hasattr(X, "rechunk") else X
        parts = list(np.asarray(X.to_delayed(), dtype=object).ravel())
    parts = client.compute(parts)
    id_futures = [submit(client, _partition_ids, part) for part in parts]
    summaries = gather(client, id_futures)
    users, user_counts = _merge_counts([(s[0], s[1]) for s in summaries])
    items, item_counts = _merge_counts([(s[2], s[3]) for s in summaries])
    users, _ = encode_ids(users, "user")
    items, _ = encode_ids(items, "item")
    n_blocks = _n_blocks(client, len(parts))
    row_bounds = _split_points(user_counts, n_blocks)
    pieces = [submit(client, _ratings_pieces, part, users, items, row_bounds)
              for part in parts]
    row_blocks = []
    for b in range(row_bounds.shape[0] - 1):
        own = [submit(client, operator.getitem, piece, b) for piece in pieces]
        row_blocks.append(submit(client, _row_block, int(row_bounds[b]),
                                 int(row_bounds[b + 1]), items.shape[0],
                                 estimator.duplicates, *own))
    return row_blocks, row_bounds, (users.shape[0], items.shape[0]), users, items, \
        item_counts, len(parts)


def _matrix_row_blocks(client, X, estimator):
    if X.ndim != 2:
        raise ValueError(f"X must be a 2D Dask array; got ndim={X.ndim}.")
    if any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    X = X.rechunk({1: -1})
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    parts = client.compute(list(X.to_delayed()[:, 0]))
    row_blocks = [submit(client, _matrix_row_block, part, int(starts[b]),
                         estimator.duplicates) for b, part in enumerate(parts)]
    return row_blocks, starts, tuple(int(s) for s in X.shape), len(parts)


def _column_layout(client, row_blocks, shape, row_offsets, col_weights, n_blocks):
    col_bounds = _split_points(col_weights, n_blocks)
    pieces = [submit(client, _column_pieces, block, col_bounds, int(offset))
              for block, offset in zip(row_blocks, row_offsets, strict=True)]
    col_blocks = []
    for b in range(col_bounds.shape[0] - 1):
        own = [submit(client, operator.getitem, piece, b) for piece in pieces]
        col_blocks.append(submit(client, _column_block, int(col_bounds[b]),
                                 int(col_bounds[b + 1]), shape[0], *own))
    return col_blocks, col_bounds


def _layout_counts(client, blocks, n):
    summaries = gather(client, [submit(client, _block_summary, b) for b in blocks])
    counts = np.concatenate([s[3] for s in summaries]) if summaries else np.zeros(0)
    if counts.shape[0] != n:  # pragma: no cover - would be a layout bug
        raise RuntimeError(f"blocks cover {counts.shape[0]} of {n} rows")
    return summaries, counts.astype(np.int64)


def fit_completion(estimator, X, y=None):
    """Fit ``estimator`` (an AltMinCompletion) on a Dask collection; return it."""
    name = type(estimator).__name__
    if y is not None:
        raise ValueError(
            f"{name}.fit on a Dask collection reads the ratings from X: pass a "
            "(user, item, rating) Dask DataFrame and y=None."
        )
    if estimator.loss == "implicit":
        raise ValueError(
            f"loss='implicit' is fitted in memory only; {name}.fit on a Dask "
            "collection supports loss='squared' and 'huber'."
        )
    if estimator.solver == "sketch":
        raise ValueError(
            f"solver='sketch' is fitted in memory only; {name}.fit on a Dask "
            "collection supports solver='cg' and 'exact'."
        )
    client = get_client(name)
    ratings = estimator.input_type == "ratings"
    if ratings:
        row_blocks, row_bounds, shape, users, items, item_counts, n_parts = \
            _ratings_row_blocks(client, X, estimator)
        estimator.n_features_in_ = 3
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    else:
        row_blocks, row_bounds, shape, n_parts = _matrix_row_blocks(client, X,
                                                                    estimator)
        users, items, item_counts = np.arange(shape[0]), np.arange(shape[1]), None
        estimator.n_features_in_ = shape[1]
    n_rows, n_cols = shape
    summaries, counts = _layout_counts(client, row_blocks, n_rows)
    nnz = int(sum(s[0] for s in summaries))
    dtype = np.result_type(*[s[4] for s in summaries])
    row_offsets = np.concatenate([[0], np.cumsum([s[0] for s in summaries])])[:-1]
    col_weights = item_counts if item_counts is not None else np.ones(n_cols)
    n_blocks = _n_blocks(client, n_parts)
    col_blocks, col_bounds = _column_layout(client, row_blocks, shape, row_offsets,
                                            col_weights, n_blocks)
    col_summaries, counts_t = _layout_counts(client, col_blocks, n_cols)
    nnz_t = int(sum(s[0] for s in col_summaries))
    if nnz_t != nnz or int(counts.sum()) != nnz:
        raise RuntimeError(
            f"the column layout holds {nnz_t} entries and the row layout {nnz}; "
            "entries were lost between them.")
    if nnz == 0:
        raise ValueError("X holds no observed entries; at least one is needed.")
    use_biases = ratings if estimator.biases == "auto" else bool(estimator.biases)
    center = use_biases or ratings
    mean = (math.fsum(s[2] for s in summaries) / nnz) if center else 0.0
    mean = float(mean)
    squares = gather(client, [submit(client, _square_sum, b, mean)
                              for b in row_blocks])
    row_blocks = [submit(client, _centred, b, mean) for b in row_blocks]
    col_blocks = [submit(client, _centred, b, mean) for b in col_blocks]
    scale = float(np.sqrt(math.fsum(squares) / nnz))
    estimator._value_scale = scale if scale > 0 else 1.0
    estimator.global_mean_ = mean
    estimator.users_, estimator.items_ = users, items
    layout = _Layout(client, row_blocks, row_bounds, col_blocks, col_bounds, shape,
                     nnz, row_offsets, counts, counts_t)

    random_state = check_random_state(estimator.random_state)
    rank = int(min(estimator.rank, n_rows, n_cols))
    state = _initial_state(estimator, layout, rank, dtype, random_state, use_biases)
    estimator.alpha_path_ = []
    if estimator.alpha == "auto":
        alpha, state = _select_alpha(estimator, layout, state, random_state)
    else:
        alpha = float(estimator.alpha)
    estimator.alpha_ = alpha
    with Progress(estimator.max_iter, estimator.verbose, desc=name) as progress:
        left, right, history, converged, delta, biases = _sweeps(
            estimator, layout, state, alpha, estimator.max_iter, progress)
    estimator._store_fit(
        np, left, right, biases if use_biases else None, history=history,
        converged=converged, delta=delta, n_observed=nnz, stacklevel=3,
        bias_ridge=alpha * float(np.mean(np.maximum(counts, 1))))
    estimator._seen = _seen_entries(client, row_blocks, shape, counts)
    return estimator


def _indices_of(block):
    return block["indices"]


def _seen_entries(client, row_blocks, shape, counts):
    """Training entries (for ``recommend(exclude_seen=True)``), gathered once."""
    indices = np.concatenate(gather(client, [submit(client, _indices_of, b)
                                             for b in row_blocks]))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((np.ones(indices.shape[0], dtype=np.int8), indices, indptr),
                         shape=shape)


def _initial_state(estimator, layout, rank, dtype, random_state, use_biases):
    n_rows, n_cols = layout.shape
    client = layout.client
    if estimator.init == "svd" and layout.nnz:
        row_blocks, col_blocks = layout.row_blocks, layout.col_blocks
        if estimator.loss == "huber":
            # Winsorised at 3 robust standard deviations from the median, as
            # the in-memory spectral start.
            n = layout.nnz
            median = _exact_median(client, row_blocks, n)
            spread = _MAD_TO_SIGMA * _exact_median(client, row_blocks, n,
                                                   around=median)
            if spread > 0:
                low, high = median - 3 * spread, median + 3 * spread
                row_blocks = [submit(client, _winsorised, b, low, high)
                              for b in row_blocks]
                col_blocks = [submit(client, _winsorised, b, low, high)
                              for b in col_blocks]
        density = max(layout.nnz, 1) / (n_rows * n_cols)
        operator_ = _BlockedOperator(client, row_blocks, col_blocks, density)
        left, right = _spectral_start(operator_, layout.shape, rank, dtype,
                                      random_state)
    else:
        left, right = random_init(n_rows, n_cols, rank, dtype,
                                  estimator._value_scale, random_state)
    biases = None
    if use_biases:
        biases = (np.zeros(n_rows, dtype=dtype), np.zeros(n_cols, dtype=dtype))
    return np.ascontiguousarray(left), np.ascontiguousarray(right), biases


def _exact_median(client, blocks, n, around=None):
    """``numpy.median`` of all the values (mean of the middle two when even)."""
    upper = kth_smallest(client, blocks, n // 2, _values_of, around=around)
    if n % 2:
        return float(upper)
    lower = kth_smallest(client, blocks, n // 2 - 1, _values_of, around=around)
    return float(np.mean(np.array([lower, upper], dtype=np.float64)))


def _robust_delta(client, results, n):
    """Huber threshold ``1.345 * 1.4826 * MAD`` of the residuals in ``results``.

    The same order statistics as the in-memory sort: position ``n // 2`` of
    the residuals, then of their absolute deviations from it.
    """
    median = kth_smallest(client, results, n // 2, _residual_of)
    deviation = kth_smallest(client, results, n // 2, _residual_of, around=median)
    scale = float(deviation) * _MAD_TO_SIGMA
    return HUBER_K * scale if scale > 0 else float("inf")


def _sweeps(estimator, layout, state, alpha, n_sweeps, progress, tol=None):
    """The sweeps of ``alternating_minimization``, block by block."""
    client = layout.client
    left, right, biases = state
    left, right = np.array(left, copy=True), np.array(right, copy=True)
    row_bias = col_bias = None
    if biases is not None:
        row_bias, col_bias = (np.array(b, copy=True) for b in biases)
    dtype = left.dtype
    tol = float(estimator.tol if tol is None else tol)
    loss = estimator.loss
    rms = estimator._value_scale
    n_observed = layout.nnz
    # Offsets have the units of the data: their ridge is a pure number (as
    # in sparsesolve.completion._algorithm.alternating_minimization).
    bias_ridges = (alpha * float(np.mean(np.maximum(layout.counts, 1))),
                   alpha * float(np.mean(np.maximum(layout.counts_t, 1))))
    cg_tol = 1e-10 if dtype == np.float64 else 1e-5
    common = (estimator.solver, float(alpha), rms, int(estimator.cg_steps), cg_tol)
    row_settings = common + (bias_ridges[0], estimator.n_jobs)
    col_settings = common + (bias_ridges[1], estimator.n_jobs)
    round_off_loss = (10 * float(np.finfo(dtype).eps) * rms) ** 2
    fitted_loss = max(round_off_loss, 0.5 * (tol * rms) ** 2)
    rb, cb = layout.row_bounds, layout.col_bounds
    history = []
    converged = False
    delta = None
    if loss == "huber" and n_observed:
        shared_left = submit(client, np.asarray, left)
        shared_rb = submit(client, _maybe, row_bias)
        results = [submit(client, _start_residual, block, shared_left,
                          right[cb[b]:cb[b + 1]], shared_rb,
                          _slice(col_bias, cb, b))
                   for b, block in enumerate(layout.col_blocks)]
        delta = _robust_delta(client, results, n_observed)
        del results
    for _ in range(n_sweeps):
        shared_right = submit(client, np.asarray, right)
        shared_cb = submit(client, _maybe, col_bias)
        row_results = gather(client, [
            submit(client, _row_task, block, left[rb[b]:rb[b + 1]], shared_right,
                   _slice(row_bias, rb, b), shared_cb, delta, row_settings)
            for b, block in enumerate(layout.row_blocks)])
        new_left = np.concatenate([r[0] for r in row_results])
        new_row_bias = (None if row_bias is None
                        else np.concatenate([r[1] for r in row_results]))
        del row_results
        shared_old_left = submit(client, np.asarray, left)
        shared_old_rb = submit(client, _maybe, row_bias)
        shared_left = submit(client, np.asarray, new_left)
        shared_rb = submit(client, _maybe, new_row_bias)
        results = [submit(client, _column_task, block, shared_old_left,
                          right[cb[b]:cb[b + 1]], shared_old_rb,
                          _slice(col_bias, cb, b), shared_left, shared_rb, delta,
                          col_settings)
                   for b, block in enumerate(layout.col_blocks)]
        small = gather(client, [submit(client, _small_part, r) for r in results])
        left, row_bias = new_left, new_row_bias
        right = np.concatenate([s[0] for s in small])
        col_bias = None if row_bias is None else np.concatenate([s[1] for s in small])
        if loss == "huber" and n_observed:
            delta = _robust_delta(client, results, n_observed)
            data_sum = math.fsum(gather(client, [
                submit(client, _huber_sum, r, delta) for r in results]))
        else:
            data_sum = math.fsum(s[2] for s in small)
        del results
        current = data_sum / n_observed if n_observed else 0.0
        progress.update(loss=current)
        if sweeps_converged(history, current, tol, fitted_loss):
            converged = True
            break
    fitted_biases = None if row_bias is None else (row_bias, col_bias)
    return left, right, history, converged, delta, fitted_biases


def _maybe(array):
    return None if array is None else np.asarray(array)


def _slice(array, bounds, b):
    return None if array is None else array[bounds[b]:bounds[b + 1]]


def _small_part(result):
    return result[0], result[1], result[3]


def _select_alpha(estimator, layout, state, random_state):
    """The regularisation path of ``AltMinCompletion._select_alpha``, blocked.

    The held-out entries are the same as in memory: a permutation of the
    positions in row-major (CSR) order, drawn on the client.
    """
    client = layout.client
    n_observed = layout.nnz
    if n_observed < AUTO_MIN_OBSERVED:
        return FALLBACK_ALPHA, state
    held = np.zeros(n_observed, dtype=bool)
    n_held = int(AUTO_HOLDOUT * n_observed)
    held[random_state.permutation(n_observed)[:n_held]] = True
    shared_held = submit(client, np.asarray, held)
    fit_rows = [submit(client, _keep, b, shared_held, int(offset))
                for b, offset in zip(layout.row_blocks, layout.row_offsets,
                                     strict=True)]
    fit_cols = [submit(client, _keep, b, shared_held) for b in layout.col_blocks]
    _, counts = _layout_counts(client, fit_rows, layout.shape[0])
    _, counts_t = _layout_counts(client, fit_cols, layout.shape[1])
    part = layout.with_blocks(fit_rows, fit_cols, counts, counts_t,
                              n_observed - n_held)
    rb = layout.row_bounds
    search = AlphaPath(estimator.alpha_path_, (FALLBACK_ALPHA, state))
    with Progress(len(AUTO_ALPHAS) * AUTO_SWEEPS, estimator.verbose,
                  desc=type(estimator).__name__) as progress:
        for alpha in AUTO_ALPHAS:
            left, right, _, _, _, biases = _sweeps(estimator, part, state, alpha,
                                                   AUTO_SWEEPS, progress, tol=0.0)
            state = (left, right, biases)
            shared_right = submit(client, np.asarray, right)
            shared_cb = submit(client, _maybe, None if biases is None else biases[1])
            errors = gather(client, [
                submit(client, _held_error, block, shared_held, int(offset),
                       left[rb[b]:rb[b + 1]], shared_right,
                       None if biases is None else biases[0][rb[b]:rb[b + 1]],
                       shared_cb)
                for b, (block, offset) in enumerate(zip(layout.row_blocks,
                                                        layout.row_offsets,
                                                        strict=True))])
            error = float(np.sqrt(math.fsum(errors) / n_held))
            if search.record(alpha, error, state):
                break
    return search.best[1], search.best[2]
