"""Recognising Dask input and finding the cluster to fit on.

Estimators call :func:`is_dask_collection` at the top of ``fit``; it never
imports Dask (a user without the ``dask`` extra pays nothing), since a
Dask collection can only exist once Dask has been imported.
"""

from __future__ import annotations

import sys

__all__ = ["is_dask_collection", "fit_distributed", "get_client"]

# The blocked fit of each estimator that has one: module and function,
# imported only when a Dask collection arrives.
_BLOCKED_FITS = {
    "AltMinCompletion": ("._completion", "fit_completion"),
    "LqDictionaryLearning": ("._coding", "fit_dictionary"),
    "RobustUnmixing": ("._unmixing", "fit_unmixing"),
    "LaplacianKMeans": ("._clustering", "fit_laplacian_kmeans"),
}


def is_dask_collection(X):
    """Whether ``X`` is a Dask collection (array, DataFrame, Series...).

    Parameters
    ----------
    X : object

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.distributed import is_dask_collection
    >>> is_dask_collection(np.ones(3))
    False
    >>> import dask.array as da
    >>> is_dask_collection(da.ones(3))
    True
    """
    if "dask" not in sys.modules:
        return False
    from dask import is_dask_collection as _is_collection

    return bool(_is_collection(X))


def get_client(estimator_name):
    """The ``dask.distributed`` client a distributed ``fit`` submits to.

    Raises
    ------
    ImportError
        Without ``distributed`` installed.
    ValueError
        When no client is running: a blocked fit keeps its blocks on the
        workers between sweeps, which the local schedulers cannot do.
    """
    try:
        from distributed import default_client
    except ImportError as exc:  # pragma: no cover - the dask extra has it
        raise ImportError(
            f"{estimator_name}.fit on a Dask collection needs dask.distributed; "
            "install sparsesolve[dask]."
        ) from exc
    try:
        return default_client()
    except ValueError as exc:
        raise ValueError(
            f"{estimator_name}.fit on a Dask collection runs on a dask.distributed "
            "cluster; start one first, e.g. `from distributed import Client; "
            "client = Client()` (a LocalCluster) or connect to a scheduler."
        ) from exc


def fit_distributed(estimator, X, y=None):
    """Run the blocked ``fit`` of ``estimator`` on the Dask collection ``X``.

    Called from the top of an estimator's ``fit`` (after its parameters are
    validated) when :func:`is_dask_collection` holds; returns the fitted
    estimator, whose attributes are ordinary in-memory arrays.
    """
    import importlib

    for klass in type(estimator).__mro__:
        if klass.__name__ in _BLOCKED_FITS:
            module_name, function_name = _BLOCKED_FITS[klass.__name__]
            module = importlib.import_module(module_name, __package__)
            return getattr(module, function_name)(estimator, X, y)
    raise TypeError(
        f"{type(estimator).__name__}.fit does not run on Dask collections; "
        "compute X into memory first, or fit on a sample and apply the fitted "
        "model with sparsesolve.distributed.map_rows."
    )
