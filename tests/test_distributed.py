import warnings

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


def test_map_rows_refuses_transductive_predict():
    # Regression: transductive inference block by block changed 199 of 990
    # labels against the in-memory result, silently.
    from sparsesolve.clustering import TransductiveFewShotClassifier

    rng = np.random.RandomState(0)
    X = np.vstack([rng.standard_normal((30, 3)) + 4 * k for k in range(3)])
    y = np.repeat([0, 1, 2], 30)
    model = TransductiveFewShotClassifier().fit(X[::10], y[::10])
    lazy = da.from_array(X, chunks=(7, 3))
    for method in ("predict", "predict_proba"):
        with pytest.raises(ValueError, match="not row-independent .*transductive"):
            map_rows(model, lazy, method=method)


def test_map_rows_refuses_fit_methods_and_undeclared_pipelines():
    from sklearn.pipeline import make_pipeline

    from sparsesolve.clustering import LaplacianKMeans, TransductiveFewShotClassifier

    X = np.random.RandomState(0).standard_normal((40, 2))
    lazy = da.from_array(X, chunks=(10, 2))
    kmeans = LaplacianKMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fit_predict is not row-independent"):
        map_rows(kmeans, lazy, method="fit_predict")
    with pytest.raises(ValueError, match="fit_transform is not row-independent"):
        map_rows(StandardScaler().fit(X), lazy, method="fit_transform")
    with pytest.raises(TypeError, match="method must be the name"):
        map_rows(kmeans, lazy, method=None)
    pipeline = make_pipeline(StandardScaler(), TransductiveFewShotClassifier())
    pipeline.fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(ValueError, match="Pipeline.predict is not row-independent"):
        map_rows(pipeline, lazy, method="predict")


def test_map_rows_accepts_declared_methods_and_they_are_row_independent():
    # What each family declares row-independent must be: the same rows give
    # the same results in blocks as in one call.
    from sklearn.pipeline import make_pipeline

    from sparsesolve.clustering import LaplacianKMeans
    from sparsesolve.datasets import make_kronecker_sparse
    from sparsesolve.kronecker import KroneckerSBL
    from sparsesolve.unmixing import RobustUnmixing

    rng = np.random.RandomState(0)
    X = np.vstack([rng.standard_normal((30, 3)) + 4 * k for k in range(3)])
    kmeans = LaplacianKMeans(3, random_state=0).fit(X)
    lazy = da.from_array(X, chunks=(7, 3))
    np.testing.assert_array_equal(map_rows(kmeans, lazy, "predict").compute(),
                                  kmeans.predict(X))
    pipeline = make_pipeline(StandardScaler(), LaplacianKMeans(3, random_state=0))
    pipeline.fit(X)
    np.testing.assert_array_equal(map_rows(pipeline, lazy, "predict").compute(),
                                  pipeline.predict(X))
    Y, factors, _ = make_kronecker_sparse([(4, 6), (5, 6)], 2, 30, n_samples=9,
                                          random_state=0)
    sbl = KroneckerSBL(factors).fit(Y)
    assert_allclose(map_rows(sbl, da.from_array(Y, chunks=(2, 20))).compute(),
                    sbl.transform(Y), rtol=1e-10, atol=1e-12)
    pixels = rng.dirichlet(np.ones(3), 50) @ rng.uniform(0.1, 1, (3, 8))
    unmixing = RobustUnmixing(3, max_iter=5, n_init=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unmixing.fit(pixels)
    assert_allclose(map_rows(unmixing, da.from_array(pixels, chunks=(9, 8))).compute(),
                    unmixing.transform(pixels), atol=1e-12)


def test_every_sparsesolve_estimator_declares_its_row_independent_methods():
    from sparsesolve.utils import all_estimators

    for name, estimator in all_estimators():
        declared = estimator.__dict__.get("_row_independent_methods")
        assert isinstance(declared, frozenset), name
        for method in declared:
            assert callable(getattr(estimator, method, None)), (name, method)
