"""Reductions over blocks that stay on the workers.

A blocked fit keeps its per-entry arrays (residuals, per-point costs) on the
workers and brings only small summaries to the client. Sums are the easy
case; order statistics (the median absolute deviation of the Huber loss,
the threshold of a simplex projection) need an exact selection, done here
by narrowing a value range with histograms until the few values left in it
can travel. Each round moves ``bins`` counts per block, and a float64
range shrinks about ``bins``-fold per round, so a handful of rounds reach
the exact order statistic of any number of values.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["submit", "gather", "kth_smallest", "total"]

# Histogram bins per narrowing round, and the number of values in range
# below which they are brought to the client and sorted there.
_BINS = 1024
_GATHER_BELOW = 100_000


def submit(client, function, *args, **kwargs):
    """``client.submit`` with fresh keys, quiet about arrays in the graph.

    The factors are sent inside the task (rather than scattered) on purpose:
    a scattered array lives on one worker and is lost with it, while a task
    that carries its arguments can be rerun by the scheduler anywhere,
    which is what makes a fit survive the loss of a worker.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Large object.*")
        warnings.filterwarnings("ignore", message=".*large graph.*")
        return client.submit(function, *args, pure=False, **kwargs)


def gather(client, futures):
    """Results of ``futures`` (a list), in order."""
    return client.gather(list(futures))


def _values(block, transform):
    values, parameter = transform[0](block), transform[1]
    if parameter is not None:
        values = np.abs(values - parameter)
    # Compared in float64, where float32 values are exact, so that the bin
    # edges (float64) split every block alike.
    return values.astype(np.float64, copy=False)


def _range_task(block, transform):
    values = _values(block, transform)
    if values.shape[0] == 0:
        return (np.inf, -np.inf, 0)
    return (values.min(), values.max(), values.shape[0])


def _histogram_task(block, transform, low, high, bins):
    values = _values(block, transform)
    below = int(np.count_nonzero(values < low))
    inside = values[(values >= low) & (values < high)]
    edges = np.linspace(low, high, bins + 1)
    index = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, bins - 1)
    return below, np.bincount(index, minlength=bins)


def _inside_task(block, transform, low, high):
    values = _values(block, transform)
    return values[(values >= low) & (values < high)]


def kth_smallest(client, blocks, k, extract, around=None):
    """The exact ``k``-th smallest (0-based) value over all blocks.

    Parameters
    ----------
    client : distributed.Client
    blocks : list of futures
        Block data on the workers.
    k : int
        Rank wanted, ``0 <= k < total count``.
    extract : callable
        ``extract(block) -> 1D array`` of the values of a block (a module
        level function, so that it pickles by reference).
    around : scalar, optional
        Select among ``|values - around|`` instead (for a median absolute
        deviation). The subtraction is done in the values' dtype.

    Returns
    -------
    scalar
        The value, in the values' dtype, equal to what sorting all values
        and taking position ``k`` gives.
    """
    transform = (extract, around)
    ranges = gather(client, [submit(client, _range_task, b, transform)
                             for b in blocks])
    dtype = dtype_of(client, blocks[0], extract)
    low = float(min(r[0] for r in ranges))
    high = float(np.nextafter(max(r[1] for r in ranges), np.inf))
    while True:
        results = gather(client, [
            submit(client, _histogram_task, b, transform, low, high, _BINS)
            for b in blocks])
        below = sum(r[0] for r in results)
        counts = np.sum([r[1] for r in results], axis=0)
        if int(counts.sum()) <= _GATHER_BELOW:
            break
        if np.nextafter(low, np.inf) >= high:
            # One representable value left in range: it is the answer.
            return np.asarray(low).astype(dtype)
        edges = np.linspace(low, high, _BINS + 1)
        cumulative = np.cumsum(counts)
        chosen = int(np.searchsorted(cumulative, k - below, side="right"))
        low, high = float(edges[chosen]), float(edges[chosen + 1])
    inside = np.concatenate(gather(client, [
        submit(client, _inside_task, b, transform, float(low), float(high))
        for b in blocks]))
    if inside.shape[0] == 0:  # pragma: no cover - the range always holds k
        raise RuntimeError("selection lost its value; blocks changed under it")
    inside.sort()
    return inside[k - below].astype(dtype)


def _dtype_task(block, extract):
    return extract(block).dtype


def dtype_of(client, block, extract):
    """The dtype of the values ``extract`` takes from a block."""
    return client.gather(submit(client, _dtype_task, block, extract))


def total(client, futures):
    """Sum of the numbers (or arrays) the futures hold, in block order."""
    parts = gather(client, futures)
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result
