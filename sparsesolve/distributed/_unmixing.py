"""Data-parallel :class:`RobustUnmixing` on a Dask array of pixels.

The iteration of :func:`~sparsesolve.unmixing._algorithm.robust_unmixing`
splits into per-pixel work and small reductions: every worker solves the
simplex-constrained quadratic programs of its pixels (the same FCLS kernel
as in memory) and returns ``A_b^T X_b`` and ``A_b^T A_b`` (endmembers x
bands, endmembers x endmembers); the client adds them, takes the endmember
step and the band weights, and sends the endmembers back. The learned
guidance map is a projection of all pixels' sparsity costs onto a scaled
simplex; its threshold is found exactly from per-block sorted costs by
narrowing a bracket (see :func:`_simplex_threshold`), so each pixel's
guidance is the in-memory one. Abundances and guidance stay on the workers
and come back as Dask arrays with the row chunks of ``X``.

Only ``init="random"`` runs on Dask: the VCA start picks extreme pixels one
after another over the whole image, several times, which is not a blocked
computation.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from .._progress import Progress
from ..unmixing._algorithm import (
    TailStop,
    _band_residual_norms,
    _endmember_step,
    _Objective,
    _sparsity_terms,
    warn_not_converged,
)
from ..unmixing._fcls import simplex_qp
from ._coding import row_blocks
from ._dispatch import get_client
from ._reduce import gather, submit

__all__ = ["fit_unmixing"]

# Values of the costs in the bracket below which they travel to the client.
_GATHER_BELOW = 100_000
_BINS = 1024


def _start_block(block, abundances):
    if not np.all(np.isfinite(block)):
        raise ValueError("Input X contains NaN or infinity.")
    data = block.astype(np.float64)
    return {"A": abundances, "squares": np.sum(data**2, axis=0),
            "cross": abundances.T @ block, "gram": abundances.T @ abundances}


def _statistics(state):
    return state["squares"], state["cross"], state["gram"]


def _guidance(costs, sharpness, threshold, dtype):
    """This block's share of ``project_simplex(-sharpness * costs, n_pixels)``."""
    return np.clip(-sharpness * costs - threshold, 0.0, None).astype(dtype)


def _costs(state, p):
    return _sparsity_terms(state["A"], p, np)


def _sparsity_start(state, p):
    out = dict(state)
    out["costs"], out["slopes"] = _costs(state, p)
    return out


def _sorted_values(state, sharpness):
    return np.sort(-sharpness * state["costs"])


def _bracket_task(state, sharpness, edges):
    """Per edge: ``sum(max(v - edge, 0))`` and the count of values above it."""
    values = _sorted_values(state, sharpness)
    suffix = np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])
    index = np.searchsorted(values, edges, side="right")
    above = values.shape[0] - index
    return suffix[index] - above * edges, above


def _candidates_task(state, sharpness, low, high):
    values = _sorted_values(state, sharpness)
    above = values > high
    return (values[(values > low) & (values <= high)],
            int(np.count_nonzero(above)), float(np.sum(values[above])))


def _simplex_threshold(client, states, sharpness, total, n):
    """The ``threshold`` of :func:`~sparsesolve.unmixing._algorithm.project_simplex`.

    With ``v = -sharpness * costs`` over all pixels, the projection is
    ``max(v - tau, 0)`` with ``tau`` the root of ``f(t) = sum(max(v - t, 0))
    - total``, decreasing in ``t``. A bracket ``(low, high]`` around the
    root is narrowed with ``f`` at histogram edges until few values lie in
    it; those travel, and the support size and ``tau`` are then computed as
    the sort-based rule does, from the values above the bracket (all in the
    support) and the sorted candidates.
    """
    extremes = gather(client, [submit(client, _extremes, s, sharpness)
                               for s in states])
    top = max(e[1] for e in extremes)
    bottom = min(e[0] for e in extremes)
    low, high = max(top - total, bottom - total / n) - 1.0, top
    while True:
        edges = np.linspace(low, high, _BINS + 1)
        parts = gather(client, [submit(client, _bracket_task, s, sharpness, edges)
                                for s in states])
        excess = sum(p[0] for p in parts) - total
        above = sum(p[1] for p in parts)
        inside = int(above[0] - above[-1])
        if inside <= _GATHER_BELOW or np.nextafter(low, np.inf) >= high:
            break
        # The last edge whose excess is still positive starts the bracket.
        chosen = int(np.flatnonzero(excess > 0)[-1]) if np.any(excess > 0) else 0
        chosen = min(chosen, _BINS - 1)
        low, high = float(edges[chosen]), float(edges[chosen + 1])
    parts = gather(client, [submit(client, _candidates_task, s, sharpness, low,
                                   high) for s in states])
    candidates = np.sort(np.concatenate([p[0] for p in parts]))[::-1]
    n_above = sum(p[1] for p in parts)
    sum_above = math.fsum(p[2] for p in parts)
    cumulative = sum_above + np.cumsum(candidates) - total
    ranks = n_above + np.arange(1, candidates.shape[0] + 1, dtype=np.float64)
    condition = candidates - cumulative / ranks > 0
    n_positive = n_above + int(np.count_nonzero(condition))
    if n_positive == n_above:
        return (sum_above - total) / n_above
    return float(cumulative[n_positive - n_above - 1]) / n_positive


def _extremes(state, sharpness):
    values = -sharpness * state["costs"]
    return float(values.min()), float(values.max())


def _guidance_sums(state, sharpness, threshold, dtype):
    h = _guidance(state["costs"], sharpness, threshold, dtype).astype(np.float64)
    return float(np.sum(h * state["costs"])), float(np.sum(h * h))


def _ones_sums(state):
    return float(np.sum(state["costs"])), float(state["costs"].shape[0])


def _abundance_step(block, state, weighted_gram, weighted_E, settings, guidance):
    """Solve this block's pixels, then its new costs, slopes and statistics."""
    use_sparsity, learned, alpha, p, sharpness = settings
    dtype = block.dtype
    with threadpool_limits(limits=1, user_api="blas"):
        linear = block @ weighted_E.T
        if use_sparsity:
            if learned:
                h = _guidance(state["costs"], sharpness, guidance, dtype)
            else:
                h = np.ones(block.shape[0], dtype=dtype)
            linear = linear - (alpha * p) * (h[:, None] * state["slopes"])
        A = simplex_qp(weighted_gram, linear)
        out = {"A": A, "cross": A.T @ block, "gram": A.T @ A}
        if use_sparsity:
            out["costs"], out["slopes"] = _sparsity_terms(A, p, np)
    return out


def _abundances(state):
    return state["A"]


def _guidance_map(state, sharpness, threshold, dtype, learned, use_sparsity):
    if use_sparsity and learned:
        return _guidance(state["costs"], sharpness, threshold, dtype)
    return np.ones(state["A"].shape[0], dtype=dtype)


def _sum(parts):
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result


def _objective_value(objective, squared_norms, sums):
    """``J`` from the reduced ``sum(h * costs)`` and ``sum(h^2)``.

    :class:`_Objective` takes the per-pixel ``h`` and ``costs``; one
    stand-in pixel with ``h = sqrt(sum h^2)`` and ``cost = sum(h c) / h``
    gives it the same two sums.
    """
    if sums is None:
        return objective(squared_norms, None, None)
    weighted, squares = sums
    root = math.sqrt(squares)
    h = np.array([root])
    costs = np.array([weighted / root if root > 0 else 0.0])
    return objective(squared_norms, h, costs)


def fit_unmixing(estimator, X, y=None):
    """Fit ``estimator`` (a RobustUnmixing) on a Dask array; return it."""
    import dask
    import dask.array as da

    name = type(estimator).__name__
    if estimator.init != "random":
        raise ValueError(
            f"{name}.fit on a Dask array needs init='random'; the VCA start "
            "(init='vca') picks extreme pixels one after another over the whole "
            "image and runs in memory only."
        )
    client = get_client(name)
    X, blocks = row_blocks(client, X, name)
    n_pixels, n_bands = (int(s) for s in X.shape)
    k = estimator.n_endmembers
    if k > min(n_pixels, n_bands):
        raise ValueError(
            f"n_endmembers={k} must be at most min(n_samples={n_pixels}, "
            f"n_features={n_bands}) (pixels, bands) for X of shape "
            f"{(n_pixels, n_bands)}.")
    dtype = X.dtype
    rng = check_random_state(estimator.random_state)
    indices = rng.choice(n_pixels, size=k, replace=False)
    endmembers = np.clip(X[indices].compute(), 0.0, None).astype(dtype)
    # The in-memory start draws all abundances in one call; block by block
    # the stream of draws is the same.
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    states = [submit(client, _start_block, b,
                     rng.dirichlet(np.ones(k), size=int(stop - start)).astype(dtype))
              for b, start, stop in zip(blocks, starts[:-1], starts[1:],
                                        strict=True)]
    stats = gather(client, [submit(client, _statistics, s) for s in states])
    X_squared = _sum([s[0] for s in stats])
    cross = _sum([s[1] for s in stats])
    gram = _sum([s[2] for s in stats])
    E = endmembers
    loss, guidance = estimator.loss, estimator.guidance
    p, alpha = float(estimator.p), float(estimator.alpha)
    sharpness = float(estimator.guidance_sharpness)
    squared_norms = _band_residual_norms(X_squared, cross, gram, E, np)
    objective = _Objective(X_squared, squared_norms, n_pixels, loss=loss,
                           guidance=guidance, p=p, alpha=alpha,
                           guidance_sharpness=sharpness, xp=np)
    use_sparsity = objective.use_sparsity
    learned = guidance == "learned"
    threshold = None
    sums = None
    if use_sparsity:
        states = [submit(client, _sparsity_start, s, p) for s in states]
        threshold, sums = _guidance_round(client, states, sharpness, n_pixels,
                                          dtype, learned)
    settings = (use_sparsity, learned, alpha, p, sharpness)
    converged = False
    n_iter = 0
    max_iter, tol = estimator.max_iter, float(estimator.tol)
    stop = TailStop(tol, _objective_value(objective, squared_norms, sums))
    with Progress(max_iter, estimator.verbose, desc=name) as progress, \
            threadpool_limits(limits=1, user_api="blas"):
        for n_iter in range(1, max_iter + 1):
            weights = objective.band_weights(squared_norms)
            weighted_E = E * weights.astype(dtype)
            E64 = E.astype(np.float64)
            weighted_gram = (E64 * weights) @ E64.T
            shared = (submit(client, np.asarray, weighted_gram),
                      submit(client, np.asarray, weighted_E))
            states = [submit(client, _abundance_step, b, s, shared[0], shared[1],
                             settings, threshold)
                      for b, s in zip(blocks, states, strict=True)]
            stats = gather(client, [submit(client, _statistics_of_step, s)
                                    for s in states])
            cross = _sum([s[0] for s in stats])
            gram = _sum([s[1] for s in stats])
            E = _endmember_step(E, gram, cross, np)
            if use_sparsity:
                threshold, sums = _guidance_round(client, states, sharpness,
                                                  n_pixels, dtype, learned)
            squared_norms = _band_residual_norms(X_squared, cross, gram, E, np)
            value = _objective_value(objective, squared_norms, sums)
            progress.update(objective=value)
            if stop.converged(value, n_iter):
                converged = True
                break
    warn_not_converged(converged, max_iter, tol)
    estimator.n_features_in_ = n_bands
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.endmembers_ = E
    sizes = [int(stop - start) for start, stop in zip(starts[:-1], starts[1:],
                                                      strict=True)]
    estimator.abundances_ = da.concatenate([
        da.from_delayed(dask.delayed(_abundances)(s), shape=(size, k), dtype=dtype)
        for s, size in zip(states, sizes, strict=True)])
    estimator.guidance_map_ = da.concatenate([
        da.from_delayed(dask.delayed(_guidance_map)(s, sharpness, threshold, dtype,
                                                    learned, use_sparsity),
                        shape=(size,), dtype=dtype)
        for s, size in zip(states, sizes, strict=True)])
    estimator.band_weights_ = (objective.band_weights(squared_norms)
                               * objective.noise_variance).astype(dtype)
    estimator.objective_ = np.asarray(stop.history)
    estimator.n_iter_ = int(n_iter)
    return estimator


def _statistics_of_step(state):
    return state["cross"], state["gram"]


def _guidance_round(client, states, sharpness, n_pixels, dtype, learned):
    """The guidance threshold (learned map) and ``sum(h c)``, ``sum(h^2)``."""
    if not learned:
        parts = gather(client, [submit(client, _ones_sums, s) for s in states])
        return None, (math.fsum(p[0] for p in parts), math.fsum(p[1] for p in parts))
    threshold = _simplex_threshold(client, states, sharpness, float(n_pixels),
                                   n_pixels)
    parts = gather(client, [submit(client, _guidance_sums, s, sharpness, threshold,
                                   dtype) for s in states])
    return threshold, (math.fsum(p[0] for p in parts), math.fsum(p[1] for p in parts))
