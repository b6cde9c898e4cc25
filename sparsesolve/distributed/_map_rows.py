"""Apply a fitted estimator to a Dask array, block of rows by block of rows.

Per-sample methods (sparse codes of patches, abundances of pixels, completed
rows, predicted labels) are independent from row to row, so a fitted
estimator can be applied to a Dask array block by block: each worker gets a
copy of the estimator and a slab of rows. Blocks may be NumPy or CuPy arrays,
so the same call scales CPU and GPU clusters (``dask_cuda``).
"""

from __future__ import annotations

__all__ = ["map_rows"]


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
    function = getattr(estimator, method, None)
    if not callable(function):
        raise AttributeError(
            f"{type(estimator).__name__} has no method {method!r} to map over rows."
        )
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
