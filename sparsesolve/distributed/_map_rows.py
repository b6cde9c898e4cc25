"""Apply a fitted estimator to a Dask array, block of rows by block of rows.

Per-sample methods (sparse codes of patches, abundances of pixels, completed
rows, predicted labels) are independent from row to row, so a fitted
estimator can be applied to a Dask array block by block: each worker gets a
copy of the estimator and a slab of rows. Blocks may be NumPy or CuPy arrays,
so the same call scales CPU and GPU clusters (``dask_cuda``).

Only methods whose output for a row depends on that row alone can be mapped
this way: a transductive method (one that looks at the whole batch, as
:class:`~sparsesolve.clustering.TransductiveFewShotClassifier` does) would
silently answer differently block by block. Every sparsesolve estimator
declares its row-independent methods in the class attribute
``_row_independent_methods`` (a frozenset of method names; empty when none
is) and :func:`map_rows` refuses the others. Estimators of other libraries
that do not declare it are held to scikit-learn's estimator contract, whose
common check ``check_methods_subset_invariance`` requires ``predict``,
``transform``, ``decision_function``, ``score_samples`` and
``predict_proba`` to give on a subset of rows what they give on the whole.
"""

from __future__ import annotations

__all__ = ["map_rows"]

# The methods scikit-learn's common check_methods_subset_invariance holds to
# row independence (sklearn/utils/estimator_checks.py).
_SUBSET_INVARIANT_METHODS = frozenset(
    {"predict", "transform", "decision_function", "score_samples", "predict_proba"})


def row_independent_methods(estimator):
    """The methods of ``estimator`` whose output for a row depends on it alone.

    Parameters
    ----------
    estimator : estimator instance
        A sparsesolve estimator (read from its ``_row_independent_methods``
        declaration), a :class:`~sklearn.pipeline.Pipeline` (a method of the
        pipeline is row-independent when every step's part of it is), a
        fitted search (``best_estimator_``) or any other estimator (held to
        scikit-learn's subset-invariance contract).

    Returns
    -------
    frozenset of str

    Examples
    --------
    >>> from sparsesolve.clustering import TransductiveFewShotClassifier
    >>> from sparsesolve.distributed._map_rows import row_independent_methods
    >>> sorted(row_independent_methods(TransductiveFewShotClassifier()))
    []
    """
    from sklearn.pipeline import Pipeline

    declared = getattr(type(estimator), "_row_independent_methods", None)
    if declared is not None:
        return frozenset(declared)
    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps
                 if step is not None and step != "passthrough"]
        if not steps:
            return frozenset()
        if not all("transform" in row_independent_methods(step)
                   for step in steps[:-1]):
            return frozenset()
        return row_independent_methods(steps[-1])
    if hasattr(estimator, "best_estimator_"):
        return row_independent_methods(estimator.best_estimator_)
    if type(estimator).__module__.split(".")[0] == "sparsesolve":
        # A sparsesolve estimator that declares nothing promises nothing.
        return frozenset()
    return _SUBSET_INVARIANT_METHODS


def _require_dask_array():
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "sparsesolve.distributed needs Dask; install sparsesolve[dask]."
        ) from exc
    return da


def map_rows(estimator, X, method="transform"):
    """Apply ``estimator.<method>`` to a Dask array, one block of rows at a time.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted sparsesolve (or scikit-learn) estimator whose ``method``
        treats rows independently.
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked along rows (columns are merged into one chunk).
    method : str, default="transform"
        Name of the per-row method: ``"transform"``, ``"predict"``,
        ``"predict_proba"``...

    Returns
    -------
    dask.array.Array
        Lazy result with the same row chunks as ``X``; 1-D for methods that
        return one value per row.

    Raises
    ------
    TypeError
        If ``X`` is not a 2-D Dask array.
    AttributeError
        If the estimator has no method ``method``.
    ValueError
        If ``method`` does not treat rows independently (see
        :func:`row_independent_methods`): block by block it would give other
        results than on the whole array.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sparsesolve.distributed import map_rows
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> scaler = StandardScaler().fit(X)
    >>> lazy = map_rows(scaler, da.from_array(X, chunks=(4, 2)))
    >>> np.allclose(lazy.compute(), scaler.transform(X))
    True
    """
    da = _require_dask_array()
    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError(
            f"X must be a 2-D dask.array.Array; got {type(X).__name__}"
            f"{' with ndim=' + str(X.ndim) if hasattr(X, 'ndim') else ''}."
        )
    if not isinstance(method, str):
        raise TypeError(f"method must be the name of a method (a str); got "
                        f"{type(method).__name__}.")
    function = getattr(estimator, method, None)
    if not callable(function):
        raise AttributeError(
            f"estimator ({type(estimator).__name__}) has no method {method!r} to "
            "map over rows."
        )
    allowed = row_independent_methods(estimator)
    if method not in allowed:
        reason = getattr(estimator, "_row_dependence_reason", None)
        raise ValueError(
            f"{type(estimator).__name__}.{method} is not row-independent"
            f"{' (' + reason + ')' if reason else ''}: applied block by block it "
            "would give other results than on the whole array, so map_rows "
            f"refuses it. Row-independent methods of this estimator: "
            f"{sorted(allowed) or 'none'}. Compute X into memory and call "
            f"{method} on it directly."
        )
    if X.shape[0] == 0:
        raise ValueError(f"X is empty (shape {X.shape}): map_rows needs at least "
                         "one row.")
    X = X.rechunk({1: -1})
    # One real row tells the output width and dtype without computing X.
    sample = function(X[:1].compute())
    if sample.ndim == 1:
        return X.map_blocks(
            function, drop_axis=1, dtype=sample.dtype, meta=sample[:0]
        )
    return X.map_blocks(
        function,
        chunks=(X.chunks[0], (sample.shape[1],)),
        dtype=sample.dtype,
        meta=sample[:0],
    )
