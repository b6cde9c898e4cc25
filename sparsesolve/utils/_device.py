"""Bring a fitted estimator from the GPU (or any array library) to NumPy."""

from __future__ import annotations

import copy

import numpy as np

from .._backend import is_array, is_sparse, to_numpy

__all__ = ["to_cpu"]


def _host(value, seen):
    """``value`` with every array in it copied to NumPy (containers rebuilt)."""
    if isinstance(value, np.ndarray):
        return value
    if is_array(value):
        return to_numpy(value)
    if is_sparse(value):
        return to_numpy(value)  # a cupyx matrix becomes a SciPy one
    module = type(value).__module__ or ""
    if isinstance(value, list):
        return [_host(item, seen) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_host(item, seen) for item in value)
    if isinstance(value, dict):
        return {key: _host(item, seen) for key, item in value.items()}
    if module.startswith("sparsesolve.") and hasattr(value, "__dict__"):
        # Helper objects of the package (caches, fitted sub-models).
        if id(value) in seen:
            return seen[id(value)]
        moved = copy.copy(value)
        seen[id(value)] = moved
        for name, item in vars(value).items():
            setattr(moved, name, _host(item, seen))
        return moved
    return value


def to_cpu(estimator):
    """Return a copy of a (fitted) estimator whose arrays are all NumPy arrays.

    A model fitted on CuPy arrays keeps its fitted attributes on the GPU
    (input mirroring, as scikit-learn's array API dispatch does); this copy
    predicts on NumPy input, pickles and loads on a machine with no GPU,
    and can be inspected with NumPy tools. It plays the part of cuML's
    ``as_sklearn()``. Constructor parameters that are arrays (a fixed
    dictionary, Kronecker factors) are moved too, so ``get_params`` of the
    copy holds NumPy arrays. The estimator itself is left unchanged.

    Parameters
    ----------
    estimator : estimator instance
        Any sparsesolve estimator, fitted or not.

    Returns
    -------
    estimator instance
        A copy with every array attribute (fitted or parameter, public or
        private) on the host.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.clustering import LaplacianKMeans
    >>> from sparsesolve.utils import to_cpu
    >>> X = np.random.RandomState(0).standard_normal((30, 2))
    >>> model = to_cpu(LaplacianKMeans(2, random_state=0).fit(X))
    >>> type(model.cluster_centers_).__name__
    'ndarray'
    """
    if not hasattr(estimator, "__dict__"):
        raise TypeError("to_cpu: estimator must be an estimator (an object with "
                        f"attributes); got {type(estimator).__name__}.")
    moved = copy.copy(estimator)
    seen = {id(estimator): moved}
    for name, item in vars(estimator).items():
        setattr(moved, name, _host(item, seen))
    return moved


class HostCopyMixin:
    """Adds :meth:`to_cpu` to an estimator (see :func:`to_cpu`)."""

    def to_cpu(self):
        """Return a copy whose fitted attributes and array parameters are NumPy.

        See :func:`sparsesolve.utils.to_cpu`: the way to bring a model
        fitted on CuPy arrays to a machine without a GPU.

        Returns
        -------
        estimator : estimator instance
            A copy on the host; this estimator is unchanged.
        """
        return to_cpu(self)
