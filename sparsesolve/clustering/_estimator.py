"""scikit-learn estimators: Laplacian K-means and transductive few-shot inference."""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, ClusterMixin
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from threadpoolctl import threadpool_limits

from .._backend import (
    get_namespace,
    is_array,
    numba_threads,
    to_namespace,
    to_numpy,
)
from .._docs import API_PAGE
from .._progress import Progress
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import (
    N_JOBS_CONSTRAINT,
    check_array_argument,
    check_finite_score,
    check_is_fitted,
    check_same_device,
    power_of_two_scale,
    validate_data,
)
from ..distributed._dispatch import fit_distributed, is_dask_collection
from ..utils._device import HostCopyMixin
from ._affinity import knn_affinity, psd_shift
from ._algorithm import (
    _PARALLEL_ABOVE,
    default_bandwidth,
    laplacian_kprototypes,
    unary_costs,
)
from ._energy import discrete_energy
from ._seeding import spectral_embedding_rows, spectral_seed_labels

__all__ = ["LaplacianKMeans", "TransductiveFewShotClassifier"]


def _graph_in_namespace(X, n_neighbors, method, random_state, n_jobs, xp,
                        n_components=None):
    """Build the kNN affinity on the host; return (CSR arrays in xp, matrix)."""
    W = knn_affinity(
        to_numpy(X),
        n_neighbors,
        method=method,
        n_components=n_components,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    dtype = to_numpy(X[:1, :1]).dtype
    host = (W.indptr.astype(np.int64), W.indices.astype(np.int64), W.data.astype(dtype))
    return tuple(to_namespace(np.ascontiguousarray(a), xp, like=X) for a in host), W


def _label_means(X, labels, n_clusters):
    """Mean of every cluster of ``labels`` (host arrays; no cluster empty)."""
    one_hot = np.zeros((X.shape[0], n_clusters), dtype=X.dtype)
    one_hot[np.arange(X.shape[0]), labels] = 1
    counts = np.maximum(one_hot.sum(axis=0), 1)
    return (one_hot.T @ X) / counts[:, None]


def _shift_value(psd, W, laplacian_weight):
    if laplacian_weight == 0 or psd is False or psd == "auto":
        return 0.0
    if psd is True:
        return psd_shift(W)
    return float(psd)


# Above this many features the neighbours of ``graph_components="auto"`` are
# searched among the first _GRAPH_COMPONENTS principal components.
_GRAPH_PCA_ABOVE = 100
_GRAPH_COMPONENTS = 50


def _graph_components(estimator, n_features):
    value = getattr(estimator, "graph_components", None)
    if value == "auto":
        return _GRAPH_COMPONENTS if n_features > _GRAPH_PCA_ABOVE else None
    return value


def _prepare(estimator, X, xp, scale_unary=False):
    """The graph (in ``xp``), its PSD shift and the bandwidth, built once.

    ``scale_unary`` measures squared distances in units of the mean squared
    edge length of the graph (``bandwidth**2``), so that the graph weight
    does not depend on the scale of ``X``.
    """
    random_state = getattr(estimator, "random_state", None)
    seed = random_state if isinstance(random_state, numbers.Integral) else None
    graph, W = _graph_in_namespace(
        X,
        estimator.n_neighbors,
        estimator.neighbors_method,
        seed,
        estimator.n_jobs,
        xp,
        _graph_components(estimator, X.shape[1]),
    )
    self_weight = _shift_value(estimator.psd_shift, W, estimator.laplacian_weight)
    need_bandwidth = scale_unary or estimator.prototype == "mode"
    bandwidth = default_bandwidth(X, W) if need_bandwidth else 1.0
    shift_on_rise = None
    if estimator.psd_shift == "auto" and estimator.laplacian_weight != 0:
        cache = []

        def shift_on_rise():
            if not cache:
                cache.append(psd_shift(W))
            return cache[0]

    return {
        "graph": graph,
        "matrix": W,
        "self_weight": self_weight,
        "bandwidth": bandwidth,
        "unary_scale": 1.0 / bandwidth**2 if scale_unary else 1.0,
        "shift_on_rise": shift_on_rise,
    }


def _solve(estimator, X, clamp, initial_centers, prepared, xp, desc,
           initial_labels=None, warm_start=False):
    """Run the block-coordinate solve for ``estimator`` on a prepared graph."""
    clamp = to_namespace(np.ascontiguousarray(clamp, dtype=np.int64), xp, like=X)
    if initial_labels is not None:
        initial_labels = to_namespace(
            np.ascontiguousarray(initial_labels, dtype=np.int64), xp, like=X
        )
    # The BLAS calls inside the loop are thin (n_samples x n_clusters x
    # n_features); multi-threaded OpenBLAS fought numba's threads for the
    # cores and made a 20,000-point fit 3x slower, so BLAS runs on one thread
    # while the parallel numba kernel uses the cores. (Small problems skip the
    # limit: threadpoolctl's library scan costs milliseconds per call.)
    n_entries = X.shape[0] * initial_centers.shape[0]
    blas_limit = (
        threadpool_limits(1, user_api="blas")
        if n_entries >= _PARALLEL_ABOVE
        else contextlib.nullcontext()
    )
    with (
        numba_threads(estimator.n_jobs),
        blas_limit,
        Progress(estimator.max_iter, estimator.verbose, desc) as progress,
    ):
        result = laplacian_kprototypes(
            X,
            prepared["graph"],
            initial_centers,
            clamp,
            laplacian_weight=float(estimator.laplacian_weight),
            self_weight=prepared["self_weight"],
            prototype=estimator.prototype,
            bandwidth=prepared["bandwidth"],
            max_iter=estimator.max_iter,
            max_inner_iter=estimator.max_inner_iter,
            tol=estimator.tol,
            inner_tol=estimator.inner_tol,
            progress=progress,
            unary_scale=prepared["unary_scale"],
            warm_start=warm_start,
            initial_labels=initial_labels,
            shift_on_rise=prepared["shift_on_rise"],
        )
    result["bandwidth"] = prepared["bandwidth"]
    return result


_COMMON_CONSTRAINTS = {
    "laplacian_weight": [Interval(numbers.Real, 0, None, closed="left")],
    "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
    "prototype": [StrOptions({"mean", "mode"})],
    "neighbors_method": [StrOptions({"auto", "exact", "approximate"})],
    "psd_shift": [
        "boolean",
        Interval(numbers.Real, 0, None, closed="left"),
        StrOptions({"auto"}),
    ],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "max_inner_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "inner_tol": [Interval(numbers.Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "n_jobs": N_JOBS_CONSTRAINT,
}


def _data_scale(*arrays):
    """Power of two near the largest magnitude of ``arrays`` (see fit)."""
    largest = 0.0
    for array in arrays:
        if array is not None and math.prod(array.shape):
            xp = get_namespace(array)
            largest = max(largest, float(xp.max(xp.abs(array))))
    return power_of_two_scale(largest)


def _warn_unconverged(estimator, result, stacklevel):
    """ConvergenceWarning naming the loop that ran out and its parameter."""
    name = type(estimator).__name__
    if not result["converged"] and not result["emptied"]:
        warnings.warn(
            f"{name} did not converge in max_iter={estimator.max_iter} outer "
            "iterations; increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )
    elif not result.get("inner_converged", True):
        warnings.warn(
            f"{name}: the bound sweeps of the last outer iteration did not "
            f"reach inner_tol={estimator.inner_tol} within max_inner_iter="
            f"{estimator.max_inner_iter} sweeps; increase max_inner_iter or "
            "inner_tol.",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )


def _check_distances_finite(episode, xp):
    """Refuse features whose squared distances overflow (unnormalised use)."""
    if not math.prod(episode.shape):
        return
    largest = np.float64(float(xp.max(xp.abs(episode))))
    with np.errstate(over="ignore"):
        bound = 4.0 * largest * largest * np.float64(episode.shape[1])
    if not np.isfinite(bound):
        raise ValueError(
            "X: squared distances between these features overflow float64 "
            f"(entries up to {float(largest):.3g}). With normalize=False the "
            "graph weight laplacian_weight is in units of squared distance, so "
            "the data cannot be rescaled internally; rescale X (and "
            "feature_mean) or use normalize=True."
        )


class LaplacianKMeans(HostCopyMixin, ClusterMixin, BaseEstimator):
    """K-means (or K-modes) with a Laplacian k-NN graph term, solved by bound sweeps.

    Minimises, over soft assignments ``Y`` (rows on the simplex) and
    prototypes ``m_k``, the relaxed energy

    ``sum_p y_p . (log y_p + a_p) - (lambda / 2) tr(Y^T (W + delta I) Y)``,

    where ``a_pk = ||x_p - m_k||^2 / sigma^2`` (``prototype="mean"``) or
    ``-exp(-||x_p - m_k||^2 / (2 sigma^2))`` (``prototype="mode"``), ``sigma``
    is the RMS length of the graph's edges (so ``lambda`` does not depend on
    the scale of ``X``) and ``W`` is the symmetrised k-NN graph. Each bound
    sweep updates every point independently
    (``y_p <- softmax(-a_p + lambda ((W + delta I) Y)_p)``), in parallel: a
    numba kernel on the CPU, a CUDA kernel for CuPy input.

    Like every scikit-learn clusterer, :meth:`fit` ignores ``y``, so
    ``cross_val_score(LaplacianKMeans(), X, y, scoring="adjusted_rand_score")``
    measures clustering, not the labels fed back. Partial supervision is
    explicit: points given a class in ``fit(X, known_labels=...)`` (``-1`` for
    unlabelled, as scikit-learn's ``LabelSpreading`` takes) are clamped to it.
    ``known_labels`` is sample-aligned metadata, routed by scikit-learn's
    metadata routing (``set_fit_request(known_labels=True)``), so it works
    inside a ``Pipeline`` or ``cross_validate``.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters. With ``known_labels`` it must be at least the
        number of classes; cluster ``k`` then starts at class ``k``'s mean.
    laplacian_weight : float, default=1.0
        ``lambda``: weight of the graph term. ``0`` gives K-means (with
        labelled points clamped). Distances are measured in units of the
        graph's RMS edge length, so one value suits data of any scale; on the
        image sets of the user guide 1 to 4 give the same partitions, below
        about 0.5 the K-means term takes over.
    n_neighbors : int, default=5
        Neighbours of each point in the graph (the point itself not counted).
    prototype : {"mean", "mode"}, default="mean"
        ``"mean"``: cluster means (Laplacian K-means). ``"mode"``: cluster
        modes by mean shift with a Gaussian kernel whose width is the RMS
        length of the graph's edges (Laplacian K-modes).
    neighbors_method : {"auto", "exact", "approximate"}, default="auto"
        How the k-NN graph is found (see :func:`knn_affinity`).
    graph_components : int, "auto" or None, default="auto"
        Find the neighbours among the first principal components of ``X``
        (``n_components`` of :func:`knn_affinity`): ``"auto"`` uses 50 when
        ``X`` has more than 100 features, ``None`` the raw features. The
        prototypes always live in the full feature space.
    psd_shift : bool, float or "auto", default="auto"
        Diagonal shift ``delta`` making ``W + delta I`` positive
        semi-definite, under which every sweep lowers the energy. ``True``
        computes it (:func:`psd_shift`), a float sets it, ``False`` uses
        ``0``. ``"auto"`` sweeps unshifted (faster: the shift damps the
        updates) until a sweep would raise the energy; that sweep is undone
        and the fit goes on with the computed shift, so the energy history
        never increases either way.
    init : {"spectral", "k-means++", "random"} or array of shape \
(n_clusters, n_features), default="spectral"
        Start. ``"spectral"``: the partition found by K-means on the leading
        eigenvectors of the normalised graph (as spectral clustering
        computes, to a loose tolerance); the sweeps then refine it. Used
        only without ``known_labels``; with them, and for the other values,
        the clusters that no label seeds start from k-means++ seeds, random
        points or the given prototypes.
    n_init : int, default=1
        Number of starts; the run with the lowest discrete energy
        ``sum_p a_{p, l_p} + (lambda / 2) sum_{pq} w_pq [l_p != l_q]`` is
        kept (as ``KMeans`` keeps the lowest inertia).
    max_iter : int, default=100
        Maximum number of prototype (outer) iterations.
    max_inner_iter : int, default=300
        Maximum number of bound sweeps per outer iteration.
    tol : float, default=1e-4
        Relative energy change that ends the outer loop (it also ends when
        no hard label changes).
    inner_tol : float, default=1e-6
        Relative energy change that ends the bound sweeps.
    random_state : int, RandomState instance or None, default=None
        Seeds the starts (drawn on the host, then moved to the device).
    verbose : int, default=0
        Progress bar over outer iterations when positive.
    n_jobs : int or None, default=None
        Threads of the numba sweep and the neighbour search.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point.
    transduction_ : ndarray of shape (n_samples,)
        Class of each training point: ``classes_[labels_]`` when
        ``known_labels`` were given (``-1`` for points in clusters no class seeds), else
        ``labels_``.
    label_distributions_ : ndarray of shape (n_samples, n_clusters)
        Soft assignments ``Y`` at the end.
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Prototypes.
    classes_ : ndarray
        Labels found in ``known_labels`` (empty without them).
    energy_ : ndarray
        Relaxed energy ``R`` of the assignments entering every bound sweep
        (the kernel computes it while sweeping), all outer iterations in a
        row; non-increasing within each outer iteration.
    n_sweeps_ : ndarray of shape (n_outer_iterations,)
        Bound sweeps of each outer iteration (splits ``energy_``); its length
        is ``n_iter_``.
    psd_shift_ : float
        The shift ``delta`` used at the end (``0`` if ``"auto"`` never
        needed it).
    discrete_energy_ : float
        Discrete energy of the kept run (see ``n_init``).
    bandwidth_ : float
        ``sigma``, the RMS length of the graph's edges.
    n_iter_ : int
        Outer iterations run.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    TransductiveFewShotClassifier : The same solver for few-shot episodes.
    sklearn.cluster.KMeans : The ``laplacian_weight=0`` special case.
    sklearn.semi_supervised.LabelSpreading : Graph-based label propagation.

    References
    ----------
    .. [1] I. M. Ziko, E. Granger, I. Ben Ayed, "Scalable Laplacian K-modes",
       NeurIPS 2018.
    .. [2] I. M. Ziko, M. Boudiaf, J. Dolz, E. Granger, I. Ben Ayed,
       "Transductive Few-Shot Learning: Clustering is All You Need?",
       arXiv:2106.09516, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.clustering import LaplacianKMeans
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1],
    ...               [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]])
    >>> model = LaplacianKMeans(n_clusters=2, n_neighbors=2, random_state=0).fit(X)
    >>> bool(model.labels_[0] != model.labels_[3])
    True
    >>> known = np.array([0, -1, -1, 1, -1, -1])       # two labelled points
    >>> model = LaplacianKMeans(n_clusters=2, n_neighbors=2)
    >>> model.fit(X, known_labels=known).transduction_
    array([0, 0, 0, 1, 1, 1])
    >>> round(model.score(X), 3)        # minus the K-means inertia, as KMeans
    -0.027
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # predict assigns each point to its nearest prototype (no graph term);
    # fit_predict clusters the batch jointly. Read by distributed.map_rows.
    _row_independent_methods = frozenset({"predict"})

    _parameter_constraints: dict = {
        **_COMMON_CONSTRAINTS,
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"spectral", "k-means++", "random"}), "array-like"],
        "graph_components": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        laplacian_weight=1.0,
        n_neighbors=5,
        prototype="mean",
        neighbors_method="auto",
        graph_components="auto",
        psd_shift="auto",
        init="spectral",
        n_init=1,
        max_iter=100,
        max_inner_iter=300,
        tol=1e-4,
        inner_tol=1e-6,
        random_state=None,
        verbose=0,
        n_jobs=None,
    ):
        self.n_clusters = n_clusters
        self.laplacian_weight = laplacian_weight
        self.n_neighbors = n_neighbors
        self.prototype = prototype
        self.neighbors_method = neighbors_method
        self.graph_components = graph_components
        self.psd_shift = psd_shift
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.max_inner_iter = max_inner_iter
        self.tol = tol
        self.inner_tol = inner_tol
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    def _labels_to_clamp(self, y, n_samples):
        """Map ``y`` (with -1 for unlabelled) to cluster indices to clamp."""
        if y is None:
            return np.full(n_samples, -1, dtype=np.int64), np.array([], dtype=int)
        y = np.asarray(to_numpy(y))
        if y.ndim != 1 or y.shape[0] != n_samples:
            raise ValueError(
                f"known_labels must be 1-D with one label per sample ({n_samples}), "
                "-1 for "
                f"unlabelled points; got shape {y.shape}."
            )
        if not np.issubdtype(y.dtype, np.integer):
            if (
                np.issubdtype(y.dtype, np.floating)
                and np.all(np.isfinite(y))
                and np.all(y == np.round(y))
            ):
                y = y.astype(np.int64)
            else:
                raise ValueError(
                    "known_labels must hold integer class labels, with -1 for "
                    "unlabelled points."
                )
        labelled = y != -1
        classes = np.unique(y[labelled])
        if classes.size > self.n_clusters:
            raise ValueError(
                f"known_labels holds {classes.size} classes but n_clusters="
                f"{self.n_clusters}; "
                "n_clusters must be at least the number of classes."
            )
        clamp = np.full(n_samples, -1, dtype=np.int64)
        clamp[labelled] = np.searchsorted(classes, y[labelled])
        return clamp, classes

    def _initial_centers(self, X_host, clamp, n_classes, random_state):
        """Class means for labelled clusters, then k-means++ / random / given."""
        n_clusters = self.n_clusters
        if not isinstance(self.init, str):
            given = self.init
            given = to_numpy(given) if is_array(given) else given
            centers = check_array_argument(given, "init", ndim=2,
                                           caller=type(self).__name__)
            if centers.shape != (n_clusters, X_host.shape[1]):
                raise ValueError(
                    f"init must have shape (n_clusters, n_features) = "
                    f"({n_clusters}, {X_host.shape[1]}); got {centers.shape}."
                )
            # In the units fit works in (X divided by its scale).
            centers = np.asarray(centers, dtype=X_host.dtype) / self._fit_scale
        else:
            centers = np.empty((n_clusters, X_host.shape[1]), dtype=X_host.dtype)
            n_free = n_clusters - n_classes
            if n_free:
                pool = X_host[clamp < 0] if np.any(clamp < 0) else X_host
                if self.init == "k-means++" and pool.shape[0] >= n_free:
                    seeds, _ = kmeans_plusplus(pool, n_free, random_state=random_state)
                else:
                    chosen = random_state.choice(
                        pool.shape[0], n_free, replace=pool.shape[0] < n_free
                    )
                    seeds = pool[chosen]
                centers[n_classes:] = seeds
        for k in range(n_classes):
            centers[k] = X_host[clamp == k].mean(axis=0)
        return centers

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, known_labels=None):
        """Cluster ``X``, clamping the points labelled in ``known_labels``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points (NumPy on the CPU, CuPy on the GPU).
        y : Ignored
            Not used, present for API consistency (scikit-learn's clusterers
            ignore ``y`` too). Deprecated behaviour: a ``y`` holding ``-1``
            entries is still read as ``known_labels``, with a
            ``FutureWarning``; from sparsesolve 0.2 any ``y`` is ignored.
        known_labels : array-like of shape (n_samples,), default=None
            Integer class labels of the points whose class is known, ``-1``
            for the others; ``None`` for plain clustering. Sample-aligned
            metadata: request it with ``set_fit_request(known_labels=True)``
            to pass it through a ``Pipeline`` or ``cross_validate``.

        Returns
        -------
        self : LaplacianKMeans
            The fitted estimator.
        """
        known_labels = self._deprecated_y(y, known_labels)
        if is_dask_collection(X):
            return fit_distributed(self, X, known_labels)
        X = validate_data(self, X)
        xp = get_namespace(X)
        n_samples = X.shape[0]
        if n_samples < self.n_clusters:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={self.n_clusters}."
            )
        clamp, classes = self._labels_to_clamp(known_labels, n_samples)
        random_state = check_random_state(self.random_state)
        # Labels are invariant to the scale of X (the unary term is measured
        # in units of the graph's edge length): fit on X divided by a power
        # of two -- exact -- so that squared distances of 1e300 data do not
        # overflow nor those of 1e-300 data underflow; centres and bandwidth
        # are unscaled at the end.
        self._fit_scale = _data_scale(X)
        if self._fit_scale != 1.0:
            X = X / self._fit_scale
        X_host = np.asarray(to_numpy(X))
        prepared = _prepare(self, X, xp, scale_unary=True)
        spectral = isinstance(self.init, str) and self.init == "spectral"
        # The spectral start needs every cluster free: with known labels the
        # labelled clusters start at their class means and the free ones
        # from k-means++ seeds.
        spectral = spectral and classes.size == 0 and self.n_clusters > 1
        embedding = None
        if spectral:
            embedding = spectral_embedding_rows(
                prepared["matrix"], self.n_clusters, random_state
            )
        best = None
        for _ in range(self.n_init):
            initial_labels = None
            if spectral:
                initial_labels = spectral_seed_labels(
                    prepared["matrix"], self.n_clusters, random_state, embedding
                )
                host_centers = _label_means(X_host, initial_labels, self.n_clusters)
            else:
                host_centers = self._initial_centers(
                    X_host, clamp, classes.size, random_state
                )
            centers = to_namespace(host_centers, xp, like=X)
            result = _solve(
                self,
                X,
                clamp,
                centers,
                prepared,
                xp,
                "LaplacianKMeans",
                initial_labels=initial_labels,
                warm_start=True,
            )
            final = self._discrete_energy(X, result, prepared, xp)
            if best is None or final < best[0]:
                best = (final, result)
        result = best[1]
        self.discrete_energy_ = best[0]
        _warn_unconverged(self, result, stacklevel=2)
        labels = result["labels"]
        self.labels_ = labels
        self.label_distributions_ = result["assignments"]
        self.cluster_centers_ = result["centers"]
        if self._fit_scale != 1.0:
            self.cluster_centers_ = self.cluster_centers_ * self._fit_scale
        self.classes_ = to_namespace(classes, xp, like=X)
        if classes.size:
            host_labels = np.asarray(to_numpy(labels))
            lookup = np.append(classes, -1)
            mapped = lookup[np.minimum(host_labels, classes.size)]
            self.transduction_ = to_namespace(mapped, xp, like=X)
        else:
            self.transduction_ = labels
        # Histories mirror the input namespace like every fitted array.
        self.energy_ = to_namespace(
            np.asarray(result["energy"], dtype=np.float64), xp, like=X
        )
        self.n_sweeps_ = to_namespace(
            np.asarray(result["sweeps"], dtype=np.int64), xp, like=X
        )
        self.psd_shift_ = result["self_weight"]
        self.bandwidth_ = result["bandwidth"] * self._fit_scale
        self.n_iter_ = result["n_iter"]
        return self

    def _discrete_energy(self, X, result, prepared, xp):
        """Energy of a run's hard partition, in the units the run used."""
        centers = xp.astype(result["centers"], X.dtype)
        unary = unary_costs(X, centers, self.prototype, prepared["bandwidth"], xp)
        if self.prototype == "mean":
            unary = unary * prepared["unary_scale"]
        return discrete_energy(
            np.asarray(to_numpy(unary)),
            np.asarray(to_numpy(result["labels"])),
            prepared["matrix"],
            float(self.laplacian_weight),
        )

    @staticmethod
    def _deprecated_y(y, known_labels):
        """``known_labels``, or ``y`` when it holds -1 entries (deprecated use).

        Up to sparsesolve 0.1 ``fit(X, y)`` clamped the labelled points of ``y``.
        A ``y`` of ground-truth labels (what ``cross_val_score`` passes) has no
        ``-1`` and is ignored, as scikit-learn's clusterers ignore it; a ``y``
        with ``-1`` entries can only be partial labels written for the old
        behaviour, so it keeps that meaning for one release, with a warning.
        """
        if y is None or known_labels is not None:
            return known_labels
        values = np.asarray(to_numpy(y) if is_array(y) else y)
        if values.ndim != 1 or values.dtype.kind not in "iuf":
            return None
        if not np.any(values == -1):
            return None
        warnings.warn(
            "LaplacianKMeans.fit got y with -1 entries and reads it as partial "
            "labels, as before; this is deprecated and from sparsesolve 0.2 fit "
            "will ignore y like scikit-learn's clusterers. Pass the labels as "
            "fit(X, known_labels=y) instead.",
            FutureWarning,
            stacklevel=3,
        )
        return y

    def score(self, X, y=None):
        """Opposite of the K-means objective of ``X`` on the learned prototypes.

        As :meth:`sklearn.cluster.KMeans.score`: minus the sum over points of
        the squared distance to the nearest prototype (the rule
        :meth:`predict` assigns by), so that larger is better and
        ``GridSearchCV`` can compare settings with its default scorer. The
        graph term is left out: it couples the points of a batch, and a
        held-out fold has no graph of the training points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points, on the device the estimator was fitted on.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            ``-sum_p min_k ||x_p - m_k||^2``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        check_same_device(X, self, attribute="cluster_centers_", method="score")
        xp = get_namespace(X)
        centers = xp.astype(self.cluster_centers_, X.dtype)
        # Distances in units of the largest magnitude of X and the centres
        # (a power of two: exact), so that they neither overflow nor underflow.
        scale = _data_scale(X, centers)
        costs = unary_costs(X / scale, centers / scale, "mean", 1.0, xp)
        total = np.float64(float(xp.sum(xp.min(costs, axis=1))))
        with np.errstate(over="ignore", under="ignore"):
            # Squared units of X: beyond |X| ~ 1e154 the sum of squares is
            # larger than any float, which check_finite_score reports.
            score = -float(total * np.float64(scale) ** 2)
        return check_finite_score(score, self, X)

    def predict(self, X):
        """Assign new points to the nearest prototype (no graph term).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New points, on the device the estimator was fitted on.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each point.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        check_same_device(X, self, attribute="cluster_centers_", method="predict")
        xp = get_namespace(X)
        centers = xp.astype(self.cluster_centers_, X.dtype)
        # The nearest centre does not depend on the units: measure distances
        # in units of the largest magnitude of X and the centres (a power of
        # two: exact), so that 1e300 points do not all tie at infinity.
        scale = _data_scale(X, centers)
        return xp.argmin(unary_costs(X / scale, centers / scale, "mean", 1.0, xp),
                         axis=1)


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags


class TransductiveFewShotClassifier(HostCopyMixin, ClassifierMixin, BaseEstimator):
    """Few-shot classification of a whole query batch by Laplacian K-means.

    ``fit`` stores the labelled support set; ``predict`` / ``predict_proba``
    then cluster support and query points together (one cluster per class,
    seeded by the class means, support points clamped to their class) with a
    Laplacian k-NN graph term, so the queries inform each other (transductive
    inference, the "SLK" method). Features are centred and L2-normalised first
    ("CL2N") and the query batch is shifted to the support mean.

    Parameters
    ----------
    laplacian_weight : float, default=0.7
        ``lambda``: weight of the graph term (``0`` gives constrained K-means).
        Tuned for L2-normalised features; re-tune for other scalings.
    n_neighbors : int, default=2
        Neighbours of each point in the graph (the point itself not counted).
    prototype : {"mean", "mode"}, default="mean"
        Class prototypes: means (SLK-means) or mean-shift modes (SLK-MS).
    feature_mean : array-like of shape (n_features,) or None, default=None
        Mean subtracted before normalising: the mean of the base (training)
        classes when available; ``None`` uses the mean of the episode itself
        (support and queries together).
    normalize : bool, default=True
        L2-normalise every feature vector after centring.
    shift_query : bool, default=True
        Add ``mean(support) - mean(query)`` to the queries (reduces the
        shift between the two sets).
    neighbors_method : {"auto", "exact", "approximate"}, default="auto"
        How the k-NN graph is found (see :func:`knn_affinity`).
    psd_shift : bool or float, default=True
        Diagonal shift that makes every bound sweep lower the energy.
    max_iter : int, default=50
        Prototype (outer) iterations.
    max_inner_iter : int, default=100
        Bound sweeps per outer iteration.
    tol : float, default=1e-4
        Relative energy change that ends the outer loop.
    inner_tol : float, default=1e-6
        Relative energy change that ends the bound sweeps.
    verbose : int, default=0
        Progress bar over outer iterations when positive.
    n_jobs : int or None, default=None
        Threads of the numba sweep and the neighbour search.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Support classes.
    support_ : ndarray of shape (n_support, n_features)
        The support points.
    support_labels_ : ndarray of shape (n_support,)
        Index into ``classes_`` of each support point.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    LaplacianKMeans : The clustering estimator behind it.

    Notes
    -----
    Predictions depend on the whole query batch (that is the point of
    transductive inference): predicting queries one at a time gives other
    answers than predicting them together.

    References
    ----------
    .. [1] I. M. Ziko, M. Boudiaf, J. Dolz, E. Granger, I. Ben Ayed,
       "Transductive Few-Shot Learning: Clustering is All You Need?",
       arXiv:2106.09516, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.clustering import TransductiveFewShotClassifier
    >>> support = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> queries = np.array([[0.9, 0.2], [0.8, 0.1], [0.1, 1.1], [0.2, 0.9]])
    >>> model = TransductiveFewShotClassifier().fit(support, ["cat", "dog"])
    >>> model.predict(queries)
    array(['cat', 'cat', 'dog', 'dog'], dtype='<U3')
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # predict and predict_proba cluster the whole query batch together
    # (transductive inference). Read by distributed.map_rows.
    _row_independent_methods = frozenset()
    _row_dependence_reason = (
        "transductive inference clusters the whole query batch together, so a "
        "row's label depends on the other rows")

    _parameter_constraints: dict = {
        **_COMMON_CONSTRAINTS,
        "feature_mean": ["array-like", None],
        "normalize": ["boolean"],
        "shift_query": ["boolean"],
    }

    def __init__(
        self,
        *,
        laplacian_weight=0.7,
        n_neighbors=2,
        prototype="mean",
        feature_mean=None,
        normalize=True,
        shift_query=True,
        neighbors_method="auto",
        psd_shift=True,
        max_iter=50,
        max_inner_iter=100,
        tol=1e-4,
        inner_tol=1e-6,
        verbose=0,
        n_jobs=None,
    ):
        self.laplacian_weight = laplacian_weight
        self.n_neighbors = n_neighbors
        self.prototype = prototype
        self.feature_mean = feature_mean
        self.normalize = normalize
        self.shift_query = shift_query
        self.neighbors_method = neighbors_method
        self.psd_shift = psd_shift
        self.max_iter = max_iter
        self.max_inner_iter = max_inner_iter
        self.tol = tol
        self.inner_tol = inner_tol
        self.verbose = verbose
        self.n_jobs = n_jobs

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Store the labelled support set.

        Parameters
        ----------
        X : array-like of shape (n_support, n_features)
            Support features.
        y : array-like of shape (n_support,)
            Support labels (any hashable labels).

        Returns
        -------
        self : TransductiveFewShotClassifier
            The fitted estimator.
        """
        if y is None:
            name = type(self).__name__
            raise ValueError(
                f"{name} requires y to be passed, but the target y is None."
            )
        X = validate_data(self, X)
        y_host = np.asarray(to_numpy(y) if is_array(y) else y)
        if y_host.ndim == 2 and y_host.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; "
                "please change its shape to (n_samples,).",
                DataConversionWarning,
                stacklevel=2,
            )
            y_host = y_host.ravel()
        if y_host.ndim != 1 or y_host.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must be 1-D with one label per support point ({X.shape[0]}); "
                f"got shape {y_host.shape}."
            )
        if y_host.dtype.kind == "c":
            raise ValueError(
                "Complex data not supported for y: support labels are class "
                f"labels; got dtype {y_host.dtype}."
            )
        check_classification_targets(y_host)
        classes, support_labels = np.unique(y_host, return_inverse=True)
        xp = get_namespace(X)
        # Numeric classes mirror the input namespace; other labels (strings)
        # can only live in NumPy.
        numeric = np.issubdtype(classes.dtype, np.number) or classes.dtype == bool
        self.classes_ = to_namespace(classes, xp, like=X) if numeric else classes
        self.support_labels_ = to_namespace(support_labels.astype(np.int64), xp, like=X)
        self.support_ = X
        if self.feature_mean is not None:
            self._feature_mean(X.shape[1])
        return self

    def _feature_mean(self, n_features):
        """``feature_mean`` checked: real, finite, ``n_features`` entries."""
        given = self.feature_mean
        given = to_numpy(given) if is_array(given) else given
        mean = check_array_argument(given, "feature_mean",
                                    caller=type(self).__name__)
        if mean.ndim > 2 or mean.size != n_features or (
                mean.ndim == 2 and 1 not in mean.shape):
            raise ValueError(
                f"feature_mean must have n_features={n_features} entries; got "
                f"shape {mean.shape}."
            )
        return mean.ravel()

    def _features(self, support, queries, xp, scale=1.0):
        """Centre, L2-normalise and shift the queries to the support mean.

        ``support`` and ``queries`` come divided by ``scale``.
        """
        episode = xp.concat([support, queries], axis=0)
        if self.feature_mean is None:
            mean = xp.mean(episode, axis=0)
        else:
            host = self._feature_mean(queries.shape[1]).astype(
                to_numpy(queries[:1]).dtype) / scale
            mean = to_namespace(host, xp, like=queries)
        episode = episode - mean[None, :]
        if self.normalize:
            norms = xp.sqrt(xp.sum(episode * episode, axis=1))
            episode = episode / xp.where(norms > 0, norms, xp.ones_like(norms))[:, None]
        n_support = support.shape[0]
        if self.shift_query:
            support_part, query_part = episode[:n_support, :], episode[n_support:, :]
            shift = xp.mean(support_part, axis=0) - xp.mean(query_part, axis=0)
            episode = xp.concat([support_part, query_part + shift[None, :]], axis=0)
        return episode

    def _transduce(self, X, method):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        check_same_device(X, self, attribute="support_", method=method)
        xp = get_namespace(X)
        support = xp.astype(self.support_, X.dtype)
        scale = 1.0
        if self.normalize:
            # L2-normalised features do not depend on the scale of the data:
            # divide by a power of two first (exact) so that the norms of
            # 1e300 vectors do not overflow nor those of 1e-300 underflow.
            mean = None if self.feature_mean is None else self._feature_mean(
                X.shape[1])
            scale = _data_scale(support, X, mean)
            support, X = support / scale, X / scale
        episode = self._features(support, X, xp, scale)
        if not self.normalize:
            _check_distances_finite(episode, xp)
        n_support = support.shape[0]
        n_classes = self.classes_.shape[0]
        support_labels = np.asarray(to_numpy(self.support_labels_))
        clamp = np.concatenate([support_labels, np.full(X.shape[0], -1, np.int64)])
        one_hot = np.eye(n_classes, dtype=to_numpy(X[:1, :1]).dtype)[support_labels]
        one_hot = to_namespace(one_hot, xp, like=X)
        counts = xp.sum(one_hot, axis=0)
        centers = (one_hot.T @ episode[:n_support, :]) / counts[:, None]
        prepared = _prepare(self, episode, xp)
        result = _solve(
            self, episode, clamp, centers, prepared, xp, "TransductiveFewShot"
        )
        _warn_unconverged(self, result, stacklevel=3)
        return result["assignments"][n_support:, :], result["labels"][n_support:]

    def predict_proba(self, X):
        """Class probabilities of every query, inferred jointly.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            The query batch.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Soft assignments (rows sum to one), columns in ``classes_`` order.
        """
        return self._transduce(X, "predict_proba")[0]

    def predict(self, X):
        """Class of every query, inferred jointly.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            The query batch.

        Returns
        -------
        labels : ndarray of shape (n_queries,)
            Predicted classes.
        """
        labels = self._transduce(X, "predict")[1]
        if isinstance(self.classes_, np.ndarray):
            return self.classes_[np.asarray(to_numpy(labels))]
        xp = get_namespace(labels)
        return xp.take(self.classes_, labels, axis=0)


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags
