"""Blocked :class:`LaplacianKMeans` on a chunked Dask array.

The in-memory fit (``LaplacianKMeans.fit`` on a NumPy array) runs, in this
order: the kNN graph (optionally searched among principal components), its
bandwidth (RMS edge length, the unit of the unary term), the spectral start,
then :func:`~sparsesolve.clustering._algorithm.kprototypes_loop` (warm-started
bound sweeps with the PSD shift computed when a sweep first raises the
energy), restarts ranked by the discrete energy. Here every step runs over
the row blocks of a Dask array on a ``dask.distributed`` cluster, and the
loop itself is the same function, driven by :class:`_BlockedProblem`:

* the kNN graph: for every row block, the exact ``k`` nearest points of
  every other block (brute force, block against block), merged into the
  block's ``k`` nearest; the union with the reversed edges (``w_pq = 1`` if
  either point is among the other's neighbours, as ``knn_affinity``) comes
  from a shuffle of the reversed edges between blocks. With
  ``graph_components`` the search runs on the principal components, from the
  covariance ``X^T X`` summed over blocks (the ``covariance_eigh`` solver of
  scikit-learn's ``PCA``, which the in-memory search uses);
* the bandwidth: the same evenly spaced sample of edges, lengths computed
  where the rows live, the sums on the client;
* the spectral start and the PSD shift: Lanczos (``eigsh``) on the client
  with the products by ``D^-1/2 W D^-1/2`` and ``W`` done block by block; the
  products add the same terms in the same order as SciPy's CSR product, so
  the spectral start is the in-memory one; K-means on the embedding
  (``n_samples x n_clusters``) runs on the client;
* the bound sweeps: each row block updates its rows with the same compiled
  row kernel as in memory, reading the assignments of its neighbours (its
  "halo", fetched from the blocks that own them) from the previous sweep;
* prototypes (cluster means, and the mean-shift modes of
  ``prototype="mode"``, one reduction per mean-shift step), the relaxed and
  discrete energies: sums over blocks.

The decisions of the loop (undo a rising sweep, stop the sweeps, stop the
outer iterations, keep the restart of lowest discrete energy) are taken on
energies that differ from the in-memory ones only by the order of
floating-point sums, so the labels, sweep counts and iteration counts are the
in-memory ones (tests/distributed/test_clustering.py). Points labelled in
``known_labels`` are clamped block by block, as in memory. What runs only in
memory raises: ``init="k-means++"``, approximate neighbours and a randomized
PCA (more than 2048 features).
Labels come back as a NumPy array, the soft assignments as a Dask array.
"""

from __future__ import annotations

import importlib.util
import math
import operator
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.extmath import svd_flip
from threadpoolctl import threadpool_limits

from .._backend import numba_threads
from .._progress import Progress
from ..clustering._affinity import (
    _APPROXIMATE_ABOVE,
    _COVARIANCE_PCA_BELOW,
    _DENSE_EIGEN_BELOW,
    psd_shift,
)
from ..clustering._algorithm import (
    _BANDWIDTH_EDGES,
    _means_from_sums,
    _mode_statistics,
    _one_hot,
    _squared_distances,
    bound_sweep,
    kprototypes_loop,
    mean_shift,
    scaled_unary,
    start_assignments,
)
from ..clustering._estimator import _graph_components
from ..clustering._seeding import (
    _DENSE_BELOW,
    embedding_from_vectors,
    leading_vectors,
    spectral_embedding_rows,
    spectral_seed_labels,
)
from ._coding import row_blocks
from ._dispatch import get_client
from ._reduce import gather, submit

__all__ = ["fit_laplacian_kmeans"]


# --------------------------------------------------------------------------
# The graph, block by block
# --------------------------------------------------------------------------
def _block_candidates(block, first, other, other_first, n_neighbors):
    """The ``n_neighbors`` nearest points of ``other`` for each row of ``block``."""
    with threadpool_limits(limits=1, user_api="blas"):
        squared = (np.einsum("ij,ij->i", block, block)[:, None]
                   - 2.0 * (block @ other.T)
                   + np.einsum("ij,ij->i", other, other)[None, :])
    if first == other_first:
        # A point is never its own neighbour.
        np.fill_diagonal(squared, np.inf)
    keep = min(n_neighbors, other.shape[0])
    nearest = _smallest_stable(squared, keep)
    return (np.take_along_axis(squared, nearest, axis=1),
            (nearest + other_first).astype(np.int64))


def _smallest_stable(values, keep):
    """``np.argsort(values, axis=1, kind="stable")[:, :keep]``, without the full sort.

    The entries up to each row's ``keep``-th smallest value are found by a
    partition; a row where exactly ``keep`` entries qualify keeps them in the
    stable order (by value, then column). Rows with ties at the boundary are
    sorted in full, so the result is the full stable sort's.
    """
    if keep == 0:
        return np.zeros((values.shape[0], 0), dtype=np.intp)
    if keep >= values.shape[1]:
        return np.argsort(values, axis=1, kind="stable")[:, :keep]
    kth = np.partition(values, keep - 1, axis=1)[:, keep - 1:keep]
    inside = values <= kth
    counts = np.count_nonzero(inside, axis=1)
    nearest = np.empty((values.shape[0], keep), dtype=np.intp)
    plain = counts == keep
    if np.any(plain):
        # Row-major nonzero: the columns of every row in increasing order.
        columns = np.nonzero(inside[plain])[1].reshape(-1, keep)
        order = np.argsort(np.take_along_axis(values[plain], columns, axis=1),
                           axis=1, kind="stable")
        nearest[plain] = np.take_along_axis(columns, order, axis=1)
    if not np.all(plain):
        nearest[~plain] = np.argsort(values[~plain], axis=1,
                                     kind="stable")[:, :keep]
    return nearest


def _merge_candidates(n_neighbors, *candidates):
    """Each row's overall nearest: ties broken by the smaller index."""
    distances = np.concatenate([c[0] for c in candidates], axis=1)
    indices = np.concatenate([c[1] for c in candidates], axis=1)
    # Sort by distance, then index, row by row (stable sort on index first).
    by_index = np.argsort(indices, axis=1, kind="stable")
    distances = np.take_along_axis(distances, by_index, axis=1)
    indices = np.take_along_axis(indices, by_index, axis=1)
    by_distance = np.argsort(distances, axis=1, kind="stable")[:, :n_neighbors]
    return np.take_along_axis(indices, by_distance, axis=1)


def _reversed_edges(neighbours, first, bounds):
    """Edges ``q -> p`` for ``q`` in this block's lists, cut by ``q``'s block."""
    rows = np.repeat(first + np.arange(neighbours.shape[0]), neighbours.shape[1])
    targets = neighbours.ravel()
    which = np.searchsorted(bounds, targets, side="right") - 1
    return [(targets[which == b], rows[which == b]) for b in range(len(bounds) - 1)]


def _graph_block(neighbours, first, dtype, *reversed_pieces):
    """CSR rows of ``W = max(D, D^T)`` for this block (global columns)."""
    n_rows = neighbours.shape[0]
    rows = np.concatenate([np.repeat(np.arange(n_rows), neighbours.shape[1])]
                          + [p[0] - first for p in reversed_pieces])
    cols = np.concatenate([neighbours.ravel()] + [p[1] for p in reversed_pieces])
    linear = np.unique(rows.astype(np.int64) * (2**40) + cols)
    rows, cols = linear // (2**40), linear % (2**40)
    keep = rows != cols - first
    rows, cols = rows[keep], cols[keep]
    counts = np.bincount(rows, minlength=n_rows)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    halo = np.unique(cols[(cols < first) | (cols >= first + n_rows)])
    # Columns in "extended" numbering: own rows first, then the halo.
    own = (cols >= first) & (cols < first + n_rows)
    extended = np.where(own, cols - first,
                        n_rows + np.searchsorted(halo, cols)).astype(np.int64)
    return {"first": first, "n_rows": n_rows, "indptr": indptr, "cols": cols,
            "indices": extended, "weights": np.ones(cols.shape[0], dtype=dtype),
            "halo": halo}


def _graph_product(graph, vector, data=None):
    """``(W v)`` for this block's rows, ``v`` over all points.

    The terms of every row are added one by one in column order, as SciPy's
    CSR product adds them, so the result is bitwise the in-memory product.
    """
    weights = graph["weights"] if data is None else data
    out = np.zeros(graph["n_rows"])
    rows = np.repeat(np.arange(graph["n_rows"]), np.diff(graph["indptr"]))
    np.add.at(out, rows, weights * vector[graph["cols"]])
    return out


def _graph_degree(graph):
    """Row sums of ``W`` (float64, as ``W.sum(axis=1)`` in memory)."""
    rows = np.repeat(np.arange(graph["n_rows"]), np.diff(graph["indptr"]))
    out = np.zeros(graph["n_rows"])
    np.add.at(out, rows, graph["weights"].astype(np.float64))
    return out


def _graph_abs_row_max(graph):
    """Largest ``sum_q |w_pq|`` of this block's rows (Gershgorin's bound)."""
    rows = np.repeat(np.arange(graph["n_rows"]), np.diff(graph["indptr"]))
    out = np.zeros(graph["n_rows"])
    np.add.at(out, rows, np.abs(graph["weights"].astype(np.float64)))
    return float(out.max()) if out.size else 0.0


def _normalised_data(graph, scale):
    """Entries of ``D^-1/2 W D^-1/2`` for this block's rows.

    ``(s_p w_pq) s_q``: the two roundings of ``diags(s) @ W @ diags(s)``.
    """
    rows = graph["first"] + np.repeat(np.arange(graph["n_rows"]),
                                      np.diff(graph["indptr"]))
    return (scale[rows] * graph["weights"].astype(np.float64)) * scale[graph["cols"]]


def _normalised_product(graph, data, vector):
    return _graph_product(graph, vector, data)


def _graph_csr(graph):
    """This block's rows of ``W`` (global columns), for assembling small graphs."""
    return graph["indptr"], graph["cols"], graph["weights"]


def _graph_nnz(graph):
    return int(graph["cols"].shape[0])


def _halo_counts(graph, bounds):
    """How many halo rows this block reads from every block."""
    which = np.searchsorted(bounds, graph["halo"], side="right") - 1
    return np.bincount(which, minlength=len(bounds) - 1)


class _BlockedGraph:
    """The kNN graph as per-block CSR rows on the workers."""

    def __init__(self, client, search_blocks, bounds, n_neighbors, dtype):
        self.client = client
        self.bounds = bounds
        self.n_samples = int(bounds[-1])
        n_blocks = len(search_blocks)
        neighbours = []
        for b in range(n_blocks):
            candidates = [submit(client, _block_candidates, search_blocks[b],
                                 int(bounds[b]), search_blocks[c], int(bounds[c]),
                                 n_neighbors)
                          for c in range(n_blocks)]
            neighbours.append(submit(client, _merge_candidates, n_neighbors,
                                     *candidates))
        reversed_edges = [submit(client, _reversed_edges, n, int(bounds[b]), bounds)
                          for b, n in enumerate(neighbours)]
        self.blocks = []
        for b in range(n_blocks):
            own = [submit(client, operator.getitem, r, b) for r in reversed_edges]
            self.blocks.append(submit(client, _graph_block, neighbours[b],
                                      int(bounds[b]), dtype, *own))
        self.nnz = np.asarray(gather(client, [
            submit(client, _graph_nnz, g) for g in self.blocks]), dtype=np.int64)
        # reads[b, c]: halo rows block b reads from block c (skip empty pairs).
        self.reads = np.asarray(gather(client, [
            submit(client, _halo_counts, g, bounds) for g in self.blocks]))

    def assemble(self):
        """``W`` as one SciPy CSR array on the client (small graphs only)."""
        parts = gather(self.client, [submit(self.client, _graph_csr, g)
                                     for g in self.blocks])
        offsets = np.concatenate([[0], np.cumsum([p[1].shape[0] for p in parts])])
        indptr = np.concatenate([parts[0][0][:1]] + [
            p[0][1:] + offsets[b] for b, p in enumerate(parts)])
        W = sp.csr_array((np.concatenate([p[2] for p in parts]),
                          np.concatenate([p[1] for p in parts]), indptr),
                         shape=(self.n_samples, self.n_samples))
        W.has_sorted_indices = True
        return W

    def operator(self, data=None):
        """``W`` (or the matrix with the entries ``data``) as a LinearOperator."""
        client = self.client

        def product(vector):
            shared = submit(client, np.asarray,
                            np.asarray(vector, dtype=np.float64).ravel())
            if data is None:
                futures = [submit(client, _graph_product, g, shared)
                           for g in self.blocks]
            else:
                futures = [submit(client, _normalised_product, g, d, shared)
                           for g, d in zip(self.blocks, data, strict=True)]
            return np.concatenate(gather(client, futures))

        return LinearOperator((self.n_samples, self.n_samples), matvec=product,
                              dtype=np.float64)

    def halo_pieces(self, handles, function):
        """For each block, ``function(handle_c, first_c, n_c, graph_b)`` of the
        blocks ``c`` it reads from, in block order."""
        bounds = self.bounds
        pieces = []
        for b, graph in enumerate(self.blocks):
            pieces.append([
                submit(self.client, function, handles[c], int(bounds[c]),
                       int(bounds[c + 1] - bounds[c]), graph)
                for c in range(len(handles)) if c != b and self.reads[b, c]])
        return pieces


def _psd_shift(graph):
    """:func:`~sparsesolve.clustering.psd_shift` of the blocked graph."""
    if graph.n_samples == 0 or int(graph.nnz.sum()) == 0:
        return 0.0
    if graph.n_samples <= _DENSE_EIGEN_BELOW:
        return psd_shift(graph.assemble())
    try:
        # As psd_shift: Lanczos for the smallest eigenvalue, here with the
        # products by W done block by block.
        smallest = float(eigsh(graph.operator(), k=1, which="SA", tol=1e-8)[0][0])
    except ArpackNoConvergence:
        return float(max(gather(graph.client, [
            submit(graph.client, _graph_abs_row_max, g) for g in graph.blocks])))
    if smallest >= 0:
        return 0.0
    return -smallest * (1.0 + 1e-6)


def _spectral_embedding(graph, n_components, random_state):
    """:func:`~sparsesolve.clustering._seeding.spectral_embedding_rows`, blocked."""
    client = graph.client
    n_samples = graph.n_samples
    n_components = min(n_components, n_samples)
    if n_samples <= _DENSE_BELOW or n_components >= n_samples - 1:
        # A dense eigensolve of a graph this small: assemble it.
        return spectral_embedding_rows(graph.assemble(), n_components, random_state)
    degree = np.concatenate(gather(client, [submit(client, _graph_degree, g)
                                            for g in graph.blocks]))
    scale = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    shared = submit(client, np.asarray, scale)
    data = [submit(client, _normalised_data, g, shared) for g in graph.blocks]
    vectors = leading_vectors(graph.operator(data), n_samples, n_components,
                              random_state)
    return embedding_from_vectors(vectors, scale)


# --------------------------------------------------------------------------
# Principal components and the bandwidth
# --------------------------------------------------------------------------
def _column_sums(block):
    return np.sum(block, axis=0), block.shape[0]


def _gram(block):
    with threadpool_limits(limits=1, user_api="blas"):
        return block.T @ block


def _project(block, components, offset):
    with threadpool_limits(limits=1, user_api="blas"):
        projected = block @ components.T
    projected -= offset
    return np.ascontiguousarray(projected, dtype=block.dtype)


def _principal_blocks(client, blocks, n_samples, n_components, dtype):
    """Blocks projected on their first principal axes (PCA ``covariance_eigh``).

    As scikit-learn's solver: ``C = (X^T X - n m m^T) / (n - 1)``, its
    eigenvectors in decreasing order with the sign of ``svd_flip``, and
    ``X V - m V`` as the projection; ``X^T X`` and the mean are sums over
    blocks.
    """
    sums = gather(client, [submit(client, _column_sums, b) for b in blocks])
    mean = sums[0][0]
    for part in sums[1:]:
        mean = mean + part[0]
    mean = (mean / n_samples).astype(dtype)
    grams = gather(client, [submit(client, _gram, b) for b in blocks])
    C = grams[0]
    for part in grams[1:]:
        C = C + part
    C = C - n_samples * mean[:, None] * mean[None, :]
    C /= n_samples - 1
    _, eigenvectors = np.linalg.eigh(C)
    eigenvectors = np.flip(eigenvectors, axis=1)
    _, Vt = svd_flip(None, eigenvectors.T, u_based_decision=False)
    components = np.ascontiguousarray(Vt[:n_components])
    offset = mean[None, :] @ components.T
    return [submit(client, _project, b, components, offset) for b in blocks]


def _sampled_edges(graph, offset, step):
    """This block's edges at the global CSR positions ``0, step, 2 step...``."""
    start = (-offset) % step
    positions = np.arange(start, graph["cols"].shape[0], step)
    rows = np.repeat(np.arange(graph["n_rows"]), np.diff(graph["indptr"]))
    return rows[positions], graph["cols"][positions], graph["weights"][positions]


def _take_rows(block, first, wanted):
    return block[wanted - first]


def _edge_lengths(block, first, rows, cols, halo, *pieces):
    """Squared lengths of the sampled edges (as ``default_bandwidth``)."""
    other = np.concatenate(pieces, axis=0) if pieces else block[:0]
    own = (cols >= first) & (cols < first + block.shape[0])
    ends = np.empty((cols.shape[0], block.shape[1]), dtype=block.dtype)
    ends[own] = block[cols[own] - first]
    ends[~own] = other[np.searchsorted(halo, cols[~own])]
    difference = block[rows].astype(np.float64) - ends
    return np.einsum("ij,ij->i", difference, difference)


def _bandwidth(client, blocks, graph):
    """:func:`~sparsesolve.clustering._algorithm.default_bandwidth`, blocked."""
    total = int(graph.nnz.sum())
    if total == 0:
        return 1.0
    step = max(total // _BANDWIDTH_EDGES, 1)
    offsets = np.concatenate([[0], np.cumsum(graph.nnz)])
    samples = gather(client, [submit(client, _sampled_edges, g, int(offsets[b]), step)
                              for b, g in enumerate(graph.blocks)])
    bounds = graph.bounds
    lengths = []
    for b, (rows, cols, _) in enumerate(samples):
        first, last = int(bounds[b]), int(bounds[b + 1])
        halo = np.unique(cols[(cols < first) | (cols >= last)])
        which = np.searchsorted(bounds, halo, side="right") - 1
        pieces = [submit(client, _take_rows, blocks[c], int(bounds[c]),
                         halo[which == c])
                  for c in range(len(blocks)) if np.any(which == c)]
        lengths.append(submit(client, _edge_lengths, blocks[b], first, rows, cols,
                              halo, *pieces))
    lengths = np.concatenate(gather(client, lengths))
    data = np.concatenate([s[2] for s in samples])
    value = math.sqrt(float(np.sum(data * lengths) / np.sum(data)))
    return value if value > 0 else 1.0


# --------------------------------------------------------------------------
# The steps of the loop, block by block
# --------------------------------------------------------------------------
def _nearest_labels(block, centers, clamp):
    with threadpool_limits(limits=1, user_api="blas"):
        labels = np.argmin(_squared_distances(block, centers, np), axis=1)
    return np.where(clamp >= 0, clamp, labels)


def _class_sums(block, clamp, n_classes):
    """Sums and counts of the labelled points of every class."""
    member = _one_hot(clamp, n_classes, block.dtype, np)
    with threadpool_limits(limits=1, user_api="blas"):
        return member.T @ block, np.bincount(clamp[clamp >= 0], minlength=n_classes)


def _one_hot_block(labels, n_clusters, dtype):
    return _one_hot(labels, n_clusters, dtype, np)


def _member_sums(block, labels, n_clusters):
    with threadpool_limits(limits=1, user_api="blas"):
        member = _one_hot(labels, n_clusters, block.dtype, np)
        return member.T @ block, np.bincount(labels, minlength=n_clusters)


def _mode_sums(block, labels, modes, bandwidth, n_clusters):
    with threadpool_limits(limits=1, user_api="blas"):
        member = _one_hot(labels, n_clusters, block.dtype, np)
        return _mode_statistics(block, member, modes, bandwidth, np)


def _block_unary(block, centers, prototype, bandwidth, unary_scale):
    with threadpool_limits(limits=1, user_api="blas"):
        return scaled_unary(block, centers, prototype, bandwidth, unary_scale,
                            block.dtype, np)


def _block_start(unary, assignments, clamp, warm_start):
    clamp_one_hot = _one_hot(clamp, unary.shape[1], unary.dtype, np)
    y, entropy = start_assignments(unary, assignments, clamp >= 0, clamp_one_hot,
                                   warm_start, np)
    return {"y": y, "entropy": entropy}


def _halo_rows(iterate, first, n_rows, graph):
    """Rows of block ``first``'s assignments that ``graph``'s block reads."""
    halo = graph["halo"]
    inside = halo[(halo >= first) & (halo < first + n_rows)]
    return iterate["y"][inside - first]


def _halo_labels(labels, first, n_rows, graph):
    halo = graph["halo"]
    inside = halo[(halo >= first) & (halo < first + n_rows)]
    return labels[inside - first]


def _sweep_block(unary, iterate, graph, clamp, settings, *halo_pieces):
    laplacian_weight, self_weight, n_jobs = settings
    y = iterate["y"]
    n_rows = y.shape[0]
    extended = np.concatenate([y] + list(halo_pieces), axis=0)
    entropy = np.concatenate([iterate["entropy"],
                              np.zeros(extended.shape[0] - n_rows, dtype=y.dtype)])
    with numba_threads(n_jobs):
        y_new, entropy_new, energy_rows = bound_sweep(
            unary, graph["indptr"], graph["indices"], graph["weights"],
            extended, entropy, laplacian_weight, self_weight, clamp)
    # The kernel writes the rows of this block only (the halo rows of the
    # outputs are left unset).
    return {"y": y_new[:n_rows], "entropy": entropy_new[:n_rows],
            "energy": float(np.sum(energy_rows[:n_rows].astype(np.float64)))}


def _energy_of(iterate):
    return iterate["energy"]


def _labels_of(iterate):
    return np.argmax(iterate["y"], axis=1)


def _assignments_of(iterate):
    return iterate["y"]


def _counts_of(labels, n_clusters):
    return np.bincount(labels, minlength=n_clusters)


def _equal(labels, other):
    return bool(np.all(labels == other))


def _discrete_block(block, labels, graph, centers, settings, *halo_pieces):
    """This block's share of the discrete energy (data term, graph cut)."""
    prototype, bandwidth, unary_scale = settings
    with threadpool_limits(limits=1, user_api="blas"):
        unary = np.asarray(scaled_unary(block, centers, prototype, bandwidth,
                                        unary_scale, block.dtype, np),
                           dtype=np.float64)
    data_term = float(np.sum(unary[np.arange(labels.size), labels]))
    extended = np.concatenate([labels] + list(halo_pieces))
    rows = np.repeat(np.arange(graph["n_rows"]), np.diff(graph["indptr"]))
    cut = float(np.sum(graph["weights"][extended[rows]
                                        != extended[graph["indices"]]]))
    return data_term, cut


class _BlockedProblem:
    """The steps of :func:`kprototypes_loop` over the row blocks.

    Handles are lists of futures, one per row block (labels, one-hot or soft
    assignments, unary costs, iterates ``{"y", "entropy"}``); prototypes,
    counts and energies are reduced on the client.
    """

    def __init__(self, client, blocks, graph, prototype, bandwidth, unary_scale,
                 n_clusters, dtype, n_jobs, clamp):
        self.client = client
        self.prototype = prototype
        bounds = graph.bounds
        # Each block's slice of the clamp travels inside a task (not
        # scattered), so the scheduler can rerun it on another worker.
        self.clamp = [submit(client, np.asarray, np.ascontiguousarray(
            clamp[bounds[b]:bounds[b + 1]], dtype=np.int64))
            for b in range(len(blocks))]
        self.blocks = blocks
        self.graph = graph
        self.bandwidth = bandwidth
        self.unary_scale = unary_scale
        self.n_clusters = n_clusters
        self.dtype = dtype
        self.n_jobs = n_jobs

    def _map(self, function, *handles, **constants):
        args = list(constants.values())
        return [submit(self.client, function, *parts, *args)
                for parts in zip(*handles, strict=True)]

    def start(self, initial_centers, initial_labels):
        client, bounds = self.client, self.graph.bounds
        if isinstance(initial_labels, list):
            labels = initial_labels
        elif initial_labels is None:
            shared = submit(client, np.asarray, initial_centers)
            labels = [submit(client, _nearest_labels, b, shared, c)
                      for b, c in zip(self.blocks, self.clamp, strict=True)]
        else:
            # Each block's slice travels inside its task (not scattered), so
            # the scheduler can rerun it on another worker.
            labels = [submit(client, np.asarray,
                             np.asarray(initial_labels[bounds[b]:bounds[b + 1]]))
                      for b in range(len(self.blocks))]
        return labels, [submit(client, _one_hot_block, lab, self.n_clusters,
                               self.dtype) for lab in labels]

    def _member_sums(self, labels):
        parts = gather(self.client, [
            submit(self.client, _member_sums, b, lab, self.n_clusters)
            for b, lab in zip(self.blocks, labels, strict=True)])
        sums, counts = parts[0]
        for part in parts[1:]:
            sums = sums + part[0]
            counts = counts + part[1]
        return sums, counts.astype(self.dtype)

    def prototypes(self, labels, centers):
        sums, counts = self._member_sums(labels)
        new_centers = _means_from_sums(sums, counts, centers, np)
        if self.prototype == "mode":
            new_centers = mean_shift(new_centers, lambda modes: self._mode_sums(
                labels, modes), np)
        return new_centers, counts

    def _mode_sums(self, labels, modes):
        """Kernel-weighted sums and masses around ``modes``, over all blocks."""
        shared = submit(self.client, np.asarray, modes)
        parts = gather(self.client, [
            submit(self.client, _mode_sums, b, lab, shared, self.bandwidth,
                   self.n_clusters)
            for b, lab in zip(self.blocks, labels, strict=True)])
        sums, mass = parts[0]
        for part in parts[1:]:
            sums = sums + part[0]
            mass = mass + part[1]
        return sums, mass

    def outer_start(self, centers, assignments, warm_start):
        client = self.client
        shared = submit(client, np.asarray, centers)
        unary = [submit(client, _block_unary, b, shared, self.prototype,
                        self.bandwidth, self.unary_scale) for b in self.blocks]
        iterate = [submit(client, _block_start, u, a, c, warm_start)
                   for u, a, c in zip(unary, assignments, self.clamp, strict=True)]
        return unary, iterate

    def sweep(self, unary, iterate, laplacian_weight, self_weight):
        settings = (float(laplacian_weight), float(self_weight), self.n_jobs)
        pieces = self.graph.halo_pieces(iterate, _halo_rows)
        swept = [submit(self.client, _sweep_block, unary[b], iterate[b],
                        self.graph.blocks[b], self.clamp[b], settings, *pieces[b])
                 for b in range(len(self.blocks))]
        energies = gather(self.client, [submit(self.client, _energy_of, s)
                                        for s in swept])
        current = energies[0]
        for part in energies[1:]:
            current = current + part
        return swept, float(current)

    def hard_labels(self, iterate):
        return [submit(self.client, _labels_of, it) for it in iterate]

    def assignments(self, iterate):
        return [submit(self.client, _assignments_of, it) for it in iterate]

    def label_counts(self, labels):
        parts = gather(self.client, [submit(self.client, _counts_of, lab,
                                            self.n_clusters) for lab in labels])
        return np.sum(parts, axis=0)

    def any_empty(self, counts):
        return bool(np.any(counts == 0))

    def same_labels(self, labels, other):
        return all(gather(self.client, [submit(self.client, _equal, a, b)
                                        for a, b in zip(labels, other, strict=True)]))

    def label_means(self, labels):
        """``_label_means`` of the estimator (the spectral start's centres)."""
        sums, counts = self._member_sums(labels)
        return sums / np.maximum(counts, 1)[:, None]

    def class_means(self, n_classes):
        """Mean of the labelled points of every class."""
        parts = gather(self.client, [
            submit(self.client, _class_sums, b, c, n_classes)
            for b, c in zip(self.blocks, self.clamp, strict=True)])
        sums, counts = parts[0]
        for part in parts[1:]:
            sums = sums + part[0]
            counts = counts + part[1]
        return sums / counts.astype(self.dtype)[:, None]

    def discrete_energy(self, labels, centers, laplacian_weight):
        """:func:`~sparsesolve.clustering._energy.discrete_energy`, blocked."""
        shared = submit(self.client, np.asarray, np.asarray(centers, self.dtype))
        pieces = self.graph.halo_pieces(labels, _halo_labels)
        parts = gather(self.client, [
            submit(self.client, _discrete_block, self.blocks[b], labels[b],
                   self.graph.blocks[b], shared,
                   (self.prototype, self.bandwidth, self.unary_scale),
                   *pieces[b])
            for b in range(len(self.blocks))])
        data_term = sum(p[0] for p in parts)
        cut = sum(p[1] for p in parts)
        return data_term + 0.5 * laplacian_weight * cut


# --------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------
def _check_supported(estimator, n_samples, n_features):
    """Refuse, naming the parameter, what the blocked fit does not run."""
    name = type(estimator).__name__
    if isinstance(estimator.init, str) and estimator.init == "k-means++":
        raise ValueError(
            f"{name}.fit on a Dask array supports init='spectral' (the default), "
            "'random' or an array of centres; init='k-means++' seeds one point "
            "after another over the whole data set and runs in memory only.")
    method = estimator.neighbors_method
    if method == "approximate":
        raise ValueError(f"{name}.fit on a Dask array builds the exact kNN graph "
                         "block by block; use neighbors_method='exact' or 'auto'.")
    if (method == "auto" and n_samples > _APPROXIMATE_ABOVE
            and importlib.util.find_spec("pynndescent") is not None):
        # In memory, "auto" would switch to approximate neighbours here; the
        # blocked graph is exact, so say so rather than fit another graph.
        raise ValueError(
            f"{name}.fit on a Dask array builds the exact kNN graph; with "
            f"neighbors_method='auto' and more than {_APPROXIMATE_ABOVE} points "
            "the in-memory fit uses approximate neighbours instead. Pass "
            "neighbors_method='exact'.")
    components = _graph_components(estimator, n_features)
    if (components is not None and components < min(n_samples, n_features)
            and n_features > _COVARIANCE_PCA_BELOW):
        raise ValueError(
            f"{name}.fit on a Dask array projects on principal components from "
            f"the covariance, up to {_COVARIANCE_PCA_BELOW} features; with "
            f"{n_features} the in-memory fit uses a randomized SVD. Pass "
            "graph_components=None, or reduce the features first.")
    return components


def _finite(block):
    return bool(np.all(np.isfinite(block)))


def _initial_centers(estimator, X, clamp, n_classes, random_state, problem):
    """``LaplacianKMeans._initial_centers`` with the points drawn from ``X``.

    Random points of the unlabelled pool (the same draw as in memory) or the
    given centres, then the class means of the labelled clusters.
    """
    n_clusters, n_features = estimator.n_clusters, X.shape[1]
    dtype = X.dtype
    if not isinstance(estimator.init, str):
        centers = np.asarray(estimator.init, dtype=dtype)
        if centers.shape != (n_clusters, n_features):
            raise ValueError(
                f"init must have shape (n_clusters, n_features) = ({n_clusters}, "
                f"{n_features}); got {centers.shape}.")
        centers = centers.copy()
    else:
        centers = np.empty((n_clusters, n_features), dtype=dtype)
        n_free = n_clusters - n_classes
        if n_free:
            free = clamp < 0
            pool = np.flatnonzero(free) if np.any(free) else np.arange(clamp.size)
            chosen = random_state.choice(pool.shape[0], n_free,
                                         replace=pool.shape[0] < n_free)
            centers[n_classes:] = np.asarray(X[pool[chosen]].compute(), dtype=dtype)
    if n_classes:
        centers[:n_classes] = problem.class_means(n_classes)
    return centers


def fit_laplacian_kmeans(estimator, X, y=None):
    """Fit ``estimator`` (a LaplacianKMeans) on a Dask array; return it.

    ``y`` is the ``known_labels`` of the in-memory fit (a NumPy or Dask
    array, ``-1`` for unlabelled points, or ``None``); the labelled points
    are clamped to their class in every block, as in memory.
    """
    import dask
    import dask.array as da

    name = type(estimator).__name__
    client = get_client(name)
    X, blocks = row_blocks(client, X, name)
    n_samples, n_features = (int(s) for s in X.shape)
    components = _check_supported(estimator, n_samples, n_features)
    n_clusters = estimator.n_clusters
    if n_samples < n_clusters:
        raise ValueError(
            f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")
    if y is not None and hasattr(y, "compute"):
        y = y.compute()
    # The labels are one integer per point, held on the client like labels_.
    clamp, classes = estimator._labels_to_clamp(y, n_samples)
    if not all(gather(client, [submit(client, _finite, b) for b in blocks])):
        # As validate_data in memory.
        raise ValueError("Input X contains NaN or infinity.")
    dtype = X.dtype
    bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    random_state = check_random_state(estimator.random_state)

    # As _prepare in memory: the graph, its PSD shift, the bandwidth.
    n_neighbors = min(int(estimator.n_neighbors), n_samples - 1)
    search = blocks
    if components is not None and components < min(n_samples, n_features):
        search = _principal_blocks(client, blocks, n_samples, components, dtype)
    graph = _BlockedGraph(client, search, bounds, n_neighbors, dtype)
    del search
    laplacian_weight = float(estimator.laplacian_weight)
    setting = estimator.psd_shift
    if laplacian_weight == 0 or setting is False or setting == "auto":
        self_weight = 0.0
    elif setting is True:
        self_weight = _psd_shift(graph)
    else:
        self_weight = float(setting)
    shift_on_rise = None
    if setting == "auto" and laplacian_weight != 0:
        cache = []

        def shift_on_rise():
            if not cache:
                cache.append(_psd_shift(graph))
            return cache[0]

    bandwidth = _bandwidth(client, blocks, graph)
    unary_scale = 1.0 / bandwidth**2
    problem = _BlockedProblem(client, blocks, graph, estimator.prototype, bandwidth,
                              unary_scale, n_clusters, dtype, estimator.n_jobs, clamp)

    # As in memory: the spectral start needs every cluster free.
    spectral = (isinstance(estimator.init, str) and estimator.init == "spectral"
                and classes.size == 0 and n_clusters > 1)
    embedding = None
    if spectral:
        embedding = _spectral_embedding(graph, n_clusters, random_state)
    best = None
    for _ in range(estimator.n_init):
        initial_labels = None
        if spectral:
            host_labels = spectral_seed_labels(None, n_clusters, random_state,
                                               embedding)
            initial_labels = problem.start(None, host_labels)[0]
            centers = problem.label_means(initial_labels)
        else:
            centers = _initial_centers(estimator, X, clamp, classes.size,
                                       random_state, problem)
        with Progress(estimator.max_iter, estimator.verbose, desc=name) as progress:
            result = kprototypes_loop(
                problem, centers, initial_labels,
                laplacian_weight=laplacian_weight, self_weight=self_weight,
                max_iter=estimator.max_iter, max_inner_iter=estimator.max_inner_iter,
                tol=estimator.tol, inner_tol=estimator.inner_tol, progress=progress,
                warm_start=True, shift_on_rise=shift_on_rise)
        final = problem.discrete_energy(result["labels"], result["centers"],
                                        laplacian_weight)
        if best is None or final < best[0]:
            best = (final, result)
    result = best[1]
    if not result["converged"] and not result["emptied"]:
        warnings.warn(
            f"LaplacianKMeans did not converge in max_iter={estimator.max_iter} "
            "outer iterations; increase max_iter or tol.", ConvergenceWarning,
            stacklevel=3)
    labels = np.concatenate(gather(client, result["labels"])).astype(np.int64)
    estimator.n_features_in_ = n_features
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.discrete_energy_ = best[0]
    estimator.labels_ = labels
    sizes = np.diff(bounds)
    estimator.label_distributions_ = da.concatenate([
        da.from_delayed(dask.delayed(np.asarray)(part),
                        shape=(int(size), n_clusters), dtype=dtype)
        for part, size in zip(result["assignments"], sizes, strict=True)])
    estimator.cluster_centers_ = result["centers"]
    estimator.classes_ = classes
    if classes.size:
        lookup = np.append(classes, -1)
        estimator.transduction_ = lookup[np.minimum(labels, classes.size)]
    else:
        estimator.transduction_ = labels
    estimator.energy_ = np.asarray(result["energy"], dtype=np.float64)
    estimator.n_sweeps_ = np.asarray(result["sweeps"], dtype=np.int64)
    estimator.psd_shift_ = result["self_weight"]
    estimator.bandwidth_ = bandwidth
    estimator.n_iter_ = result["n_iter"]
    return estimator
