import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

da = pytest.importorskip("dask.array")  # the "dask" extra is part of "dev"

from sparsesolve.distributed import map_rows  # noqa: E402


def test_map_rows_matches_in_memory_transform_and_predict():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 3))
    lazy = da.from_array(X, chunks=(7, 2))
    scaler = StandardScaler().fit(X)
    assert_allclose(map_rows(scaler, lazy).compute(), scaler.transform(X))
    kmeans = KMeans(3, n_init=2, random_state=0).fit(X)
    labels = map_rows(kmeans, lazy, method="predict")
    assert labels.ndim == 1
    np.testing.assert_array_equal(labels.compute(), kmeans.predict(X))


def test_map_rows_rejects_bad_input():
    scaler = StandardScaler().fit(np.ones((3, 2)))
    with pytest.raises(TypeError, match="dask.array"):
        map_rows(scaler, np.ones((3, 2)))
    with pytest.raises(AttributeError, match="no method"):
        map_rows(scaler, da.ones((3, 2)), method="predict")
