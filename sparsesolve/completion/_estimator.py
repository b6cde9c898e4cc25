"""The scikit-learn estimator for low-rank matrix completion."""

from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, metadata_routing
from sklearn.utils.validation import _check_feature_names_in

from .._backend import (
    get_namespace,
    is_array,
    is_device_sparse,
    kernel_target,
    matrix_namespace,
    to_namespace,
    to_numpy,
)
from .._docs import API_PAGE
from .._progress import Progress
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import (
    N_JOBS_CONSTRAINT,
    check_allocation,
    check_is_fitted,
    power_of_two_scale,
    validate_data,
)
from ..distributed._dispatch import fit_distributed, is_dask_collection
from ._algorithm import (
    AlphaPath,
    alternating_minimization,
    balance_factors,
    fold_in_rows,
    implicit_alternating_minimization,
    random_init,
    spectral_init,
)
from ._algorithm import predict_entries as factor_entries
from ._kernels import SOLVERS
from ._observed import csr_from_input, observed_from_host
from ._ratings import (
    encode_ids,
    lookup_ids,
    pairs_from_input,
    ratings_triplets,
    resolve_duplicates,
)

__all__ = ["AltMinCompletion"]


# ``transform`` returns a dense n_rows x n_cols array; past this size it
# refuses (a 1e6 x 1e5 float64 completion would need 800 GB) and points to
# the entry-wise and top-N methods instead.
MAX_DENSE_BYTES = 2**32

# alpha="auto": the ridge strengths tried, largest first, each warm-started
# from the previous one (a regularisation path), and the share of the
# observed entries held out to score them.
AUTO_ALPHAS = tuple(10.0 ** (-0.25 * step) for step in range(33))
AUTO_HOLDOUT = 0.1
AUTO_SWEEPS = 3
# Fewer observations than this and no entry can be spared for validation.
AUTO_MIN_OBSERVED = 200
# A fixed ridge for data too small to hold entries out.
FALLBACK_ALPHA = 1e-3
# loss="implicit" with alpha="auto": the default regularisation of the
# ``implicit`` library (Hu et al. leave it to the user). Held-out squared
# error says little about a ranking model, so no path is run.
IMPLICIT_ALPHA = 0.01


class AltMinCompletion(TransformerMixin, BaseEstimator):
    """Low-rank matrix completion by alternating minimisation (ALS).

    Fits ``M ~ mu + b 1^T + 1 c^T + U V^T`` of rank ``rank`` to the observed
    entries of a partially known matrix (Jain, Netrapalli and Sanghavi 2013)
    by alternating ridge least squares over rows and columns; the global
    mean ``mu`` and the row and column biases ``b``, ``c`` are optional
    (on for ratings, off for exactly low-rank matrices). Every row solve
    can be exact (Cholesky, cost ``O(|Omega| k^2)`` per sweep) or approximate and
    warm-started, by conjugate gradients or by sketch-and-precondition (Gu,
    Song, Yin and Zhang 2024), at ``O(|Omega| k)`` per step. The Huber loss,
    solved by iteratively reweighted ALS, resists gross outliers.

    Read more in the :ref:`User Guide <completion>`.

    Parameters
    ----------
    rank : int, default=10
        Rank ``k`` of the model. It is capped at ``min(n_rows, n_cols)``.
    solver : {"cg", "sketch", "exact"}, default="cg"
        How each row's least-squares problem is solved: ``"exact"`` forms the
        k x k normal equations and factors them; ``"cg"`` takes ``cg_steps``
        warm-started Jacobi-preconditioned conjugate-gradient steps;
        ``"sketch"`` preconditions those steps with a CountSketch of the
        row's design matrix (rows shorter than ``2 * sketch_size`` are solved
        exactly, which is then cheaper).
    alpha : float or "auto", default="auto"
        Ridge strength relative to the data: the penalty of row ``i`` is
        ``alpha * s * n_i * ||u_i||^2``, with ``n_i`` its number of
        observations and ``s`` the root mean square of the observed values
        after the global mean is removed (and likewise for columns); a bias
        ``b_i`` is penalised by ``alpha * mean(n) * b_i^2``, the same
        for every row, so that rarely observed rows keep small biases (no
        ``s`` there: a bias has the units of the data, a factor only their
        square root, so both penalties scale like the data term and the
        fit of ``c * X`` is ``c`` times the fit of ``X``).
        ``"auto"`` holds out 10% of the observed entries, fits the other 90%
        along a path of decreasing strengths (``1`` down to ``1e-8`` in
        steps of ``10**0.25``, 3 sweeps each, warm-started from the previous
        one, stopped once the held-out error has risen twice in a row),
        keeps the strength with the smallest held-out error and refits on
        all entries from that point of the path; the choice is in
        ``alpha_``. Noiseless low-rank data end up near
        ``1e-8``, noisy ratings near ``1e-1``. With fewer than 200 observed
        entries, ``"auto"`` means ``1e-3``.
    loss : {"squared", "huber", "implicit"}, default="squared"
        Data-fit term. ``"huber"`` downweights residuals beyond
        ``1.345 * 1.4826 * MAD(residuals)`` (re-estimated every sweep).
        ``"implicit"``: implicit feedback (clicks, plays, purchases; Hu,
        Koren and Volinsky 2008, as the ``implicit`` library and Spark's
        ``implicitPrefs``). The stored values are interaction strengths
        ``r >= 0``; every entry of the matrix, stored or not, is fitted to
        the preference ``p = [r > 0]`` with confidence ``c = 1 + confidence
        * r``, and ``alpha`` is the plain ridge ``alpha (||U||^2 + ||V||^2)``
        (``"auto"`` means ``0.01``, the ``implicit`` default). Biases are
        off; ``predict`` gives preferences and ``recommend`` ranks by them.
        Solvers ``"exact"`` and ``"cg"`` only.
    max_iter : int, default=20
        Most sweeps; one sweep updates all rows, then all columns.
    tol : float, default=1e-6
        Stop when the training loss changes by less than ``tol`` relative
        to its previous value, or when the root mean square of the training
        residuals falls below ``tol`` times that of the observed values.
    init : {"svd", "random"}, default="svd"
        ``"svd"``: top-``rank`` SVD of the zero-filled observations divided
        by the sampling density (spectral initialisation); ``"random"``:
        Gaussian factors.
    cg_steps : int, default=3
        Conjugate-gradient steps per row and half-sweep (``"cg"``,
        ``"sketch"``). Each warm-starts from the previous sweep.
    sketch_size : int, default=None
        Rows of the CountSketch for ``solver="sketch"``; ``None`` means
        ``4 * rank``.
    confidence : float, default=1.0
        ``loss="implicit"``: confidence gained per unit of interaction
        strength (the ``alpha`` of Hu et al. and of ``implicit``); ignored
        otherwise.
    input_type : {"matrix", "ratings"}, default="matrix"
        What ``fit`` receives. ``"matrix"``: the partially observed matrix
        itself, dense with NaN for the missing entries or sparse with the
        observations stored. ``"ratings"``: one observation per row, as a
        DataFrame or 2D array of ``(user, item, rating)`` columns, or of
        ``(user, item)`` columns with the ratings in ``y`` (the form
        :class:`~sklearn.model_selection.GridSearchCV` splits); user and
        item ids may be any sortable hashable values and are kept in
        ``users_`` and ``items_``. A SciPy sparse matrix is accepted too,
        its row and column indices then being the ids.
    biases : bool or "auto", default="auto"
        Fit a global mean and regularised row (user) and column (item)
        biases inside the sweeps, as surprise's SVD and most recommenders
        do. ``"auto"`` turns them on for ``input_type="ratings"`` and off
        for ``"matrix"``, where the truth is often exactly low rank. With
        ratings input the global mean is removed even when ``biases=False``.
    duplicates : {"error", "mean", "last"}, default="error"
        What to do with a (row, column) pair given more than once (repeated
        ratings, or repeated coordinates in COO input): refuse, average
        them, or keep the last one. They are never summed.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the sketches and the held-out entries of
        ``alpha="auto"`` (drawn on the host, so CPU and GPU runs agree).
    verbose : int, default=0
        0 silent, 1 progress bar over sweeps, 2 also one line per sweep.
    n_jobs : int, default=None
        Threads for the numba row passes (``None``: numba's default, ``-1``:
        all cores).

    Attributes
    ----------
    row_factors_ : ndarray of shape (n_rows, rank)
        ``U`` (balanced: ``U^T U = V^T V`` is diagonal).
    col_factors_ : ndarray of shape (n_cols, rank)
        ``V``.
    global_mean_ : float
        ``mu``: mean of the observed values when it is removed (biases on,
        or ratings input), else 0.
    row_biases_ : ndarray of shape (n_rows,)
        ``b``, the user biases (zeros when ``biases`` is off).
    col_biases_ : ndarray of shape (n_cols,)
        ``c``, the item biases (zeros when ``biases`` is off).
    users_ : ndarray of shape (n_rows,)
        Sorted user ids (ratings input); row ``i`` of the model is user
        ``users_[i]``. For matrix input, ``arange(n_rows)``.
    items_ : ndarray of shape (n_cols,)
        Sorted item ids (ratings input); for matrix input, ``arange(n_cols)``.
    alpha_ : float
        Ridge strength used (chosen on held-out entries for ``"auto"``).
    alpha_path_ : list of (float, float)
        ``alpha="auto"``: each strength tried and its held-out root mean
        square error; empty otherwise.
    n_iter_ : int
        Sweeps run in the final fit.
    loss_history_ : list of float
        Mean training loss (0.5 r^2, or Huber) after every sweep.
    huber_delta_ : float or None
        Final Huber threshold; None for the squared loss.
    n_observed_ : int
        Number of observed entries used in ``fit`` (after merging
        duplicates).
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit`` (matrix columns, or 2 or 3
        for ratings input).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame ``X`` in matrix form, when all are
        strings.

    See Also
    --------
    RatingsKFold : Cross-validation over observed ratings, stratified by user.
    sklearn.impute.IterativeImputer : Column-wise model-based imputation.
    sklearn.decomposition.TruncatedSVD : Low-rank factorisation of a fully
        known (sparse) matrix.

    Notes
    -----
    Matrix input: a SciPy sparse matrix, whose stored entries are the
    observations (explicit zeros count), or a dense array with NaN marking
    the missing entries. CuPy arrays and ``cupyx.scipy.sparse`` matrices run
    the same sweeps on the GPU (numba-cuda kernels, one thread per row) and
    fitted arrays stay CuPy. Ratings input is read on the host and fitted
    with NumPy.

    ``transform`` folds new rows in: each is one ridge solve against
    ``col_factors_``. ``predict_entries(rows, cols)`` returns single entries
    of the fitted matrix; ``predict(X)`` is ``transform(X)`` (with ratings
    input, :meth:`predict_ratings`), so that ``predict`` takes one ``X`` as
    everywhere in scikit-learn.

    Unknown ids at prediction time get the part of the model that is known:
    ``mu + c_j`` for an unseen user, ``mu + b_i`` for an unseen item, ``mu``
    for both. A known user or item with few ratings has a small, strongly
    shrunk factor, so it falls back to its biases smoothly.

    References
    ----------
    P. Jain, P. Netrapalli, S. Sanghavi, "Low-rank matrix completion using
    alternating minimization", STOC 2013.

    Y. Gu, Z. Song, J. Yin, L. Zhang, "Low rank matrix completion via robust
    alternating minimization in nearly linear time", ICLR 2024.

    Y. Zhou, D. Wilkinson, R. Schreiber, R. Pan, "Large-scale parallel
    collaborative filtering for the Netflix prize", AAIM 2008.

    Y. Koren, R. Bell, C. Volinsky, "Matrix factorization techniques for
    recommender systems", IEEE Computer 42(8), 2009.

    Y. Hu, Y. Koren, C. Volinsky, "Collaborative filtering for implicit
    feedback datasets", ICDM 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.completion import AltMinCompletion
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 50))
    >>> X = M.copy()
    >>> X[rng.random(M.shape) < 0.5] = np.nan
    >>> model = AltMinCompletion(rank=2, solver="exact", alpha=1e-12, tol=1e-10,
    ...                          max_iter=50, random_state=0).fit(X)
    >>> completed = model.transform(X)
    >>> bool(np.abs(completed - M).max() < 1e-6)
    True
    >>> model.predict_entries([0, 1], [3, 4]).shape
    (2,)

    Ratings keyed by arbitrary ids:

    >>> users = ["ann", "ann", "bob", "bob", "cy", "cy"]
    >>> items = ["x", "y", "x", "z", "y", "z"]
    >>> ratings = np.array([[u, i] for u, i in zip(users, items)], dtype=object)
    >>> model = AltMinCompletion(rank=1, input_type="ratings", alpha=0.1,
    ...                          random_state=0).fit(ratings, [5, 3, 4, 2, 1, 4])
    >>> model.items_.tolist()
    ['x', 'y', 'z']
    >>> model.predict_ratings([["dee", "x"]]).round(2)  # unseen user: mu + c_x
    array([...])
    """

    # ``predict``'s deprecated ``cols`` is an argument, not metadata to route:
    # without this scikit-learn would generate ``set_predict_request``.
    __metadata_request__predict = {"cols": metadata_routing.UNUSED}

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # Rows are folded in one by one against the fitted column factors
    # (ratings: one prediction per pair). Read by distributed.map_rows.
    _row_independent_methods = frozenset({"transform", "predict"})

    _parameter_constraints: dict = {
        "rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"),
                  StrOptions({"auto"})],
        "loss": [StrOptions({"squared", "huber", "implicit"})],
        "confidence": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "init": [StrOptions({"svd", "random"})],
        "cg_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "sketch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "input_type": [StrOptions({"matrix", "ratings"})],
        "biases": ["boolean", StrOptions({"auto"})],
        "duplicates": [StrOptions({"error", "mean", "last"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_jobs": N_JOBS_CONSTRAINT,
    }

    def __init__(
        self,
        rank=10,
        *,
        solver="cg",
        alpha="auto",
        loss="squared",
        max_iter=20,
        tol=1e-6,
        init="svd",
        cg_steps=3,
        sketch_size=None,
        confidence=1.0,
        input_type="matrix",
        biases="auto",
        duplicates="error",
        random_state=None,
        verbose=0,
        n_jobs=None,
    ):
        self.rank = rank
        self.solver = solver
        self.alpha = alpha
        self.loss = loss
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.cg_steps = cg_steps
        self.sketch_size = sketch_size
        self.confidence = confidence
        self.input_type = input_type
        self.biases = biases
        self.duplicates = duplicates
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------
    # input
    # ------------------------------------------------------------------
    def _observed_input(self, X, reset):
        """Validate ``X``; return (host CSR of observations, xp, device array)."""
        duplicates = self.duplicates
        if is_device_sparse(X):
            if X.ndim != 2:
                raise ValueError("X must be a 2D sparse matrix.")
            host = to_numpy(X)
            _refuse_complex(host, "X")
            if host.dtype not in (np.float32, np.float64):
                host = host.astype(np.float64)
            self._check_columns(host.shape[1], reset)
            xp = matrix_namespace(X)
            like = X.data
        elif sp.issparse(X):
            host = validate_data(
                self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                ensure_all_finite=True,
            )
            xp, like = get_namespace(np.empty(0)), None
        else:
            xp = get_namespace(X) if is_array(X) else None
            if xp is not None and kernel_target(xp) == "host":
                # The row solves are numba kernels, compiled for NumPy (CPU)
                # and CuPy (GPU) memory only.
                raise TypeError(
                    f"AltMinCompletion runs on NumPy and CuPy arrays; got an array "
                    f"of {type(X).__module__}.{type(X).__name__}. Convert it with "
                    "numpy.asarray (or cupy.asarray for the GPU) first."
                )
            foreign = xp is not None and not isinstance(X, np.ndarray)
            # Missing entries are NaN here, so only infinity is rejected.
            # (The shared check of foreign arrays treats "allow-nan" as True.)
            X = validate_data(
                self, X, reset=reset,
                ensure_all_finite=False if foreign else "allow-nan",
            )
            xp = get_namespace(X)
            like = X if foreign else None
            host = to_numpy(X)
            if np.isinf(host).any():
                raise ValueError(
                    "Input X contains infinity; mark missing entries with NaN."
                )
        return csr_from_input(host, duplicates=duplicates), xp, like

    def _check_columns(self, n_columns, reset):
        if reset:
            self.n_features_in_ = n_columns
        elif n_columns != self.n_features_in_:
            raise ValueError(
                f"X has {n_columns} features, but AltMinCompletion is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _ratings_input(self, X, y):
        """Encode ratings input; return the host CSR of (user, item) ratings."""
        if sp.issparse(X) or is_device_sparse(X):
            host = to_numpy(X)
            _refuse_complex(host, "X")
            csr = csr_from_input(host, duplicates=self.duplicates)
            if csr.dtype not in (np.float32, np.float64):
                csr = csr.astype(np.float64)
            if csr.nnz and not np.all(np.isfinite(csr.data)):
                raise ValueError("X contains NaN or infinity; every stored rating "
                                 "must be a finite number.")
            self.n_features_in_ = csr.shape[1]
            self.users_ = np.arange(csr.shape[0])
            self.items_ = np.arange(csr.shape[1])
            return csr
        users, items, ratings = ratings_triplets(X, y)
        self.n_features_in_ = 2 if y is not None else 3
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.users_, rows = encode_ids(users, "user")
        self.items_, cols = encode_ids(items, "item")
        rows, cols, ratings = resolve_duplicates(rows, cols, ratings,
                                                 self.items_.shape[0], self.duplicates)
        return sp.csr_matrix((ratings, (rows, cols)),
                             shape=(self.users_.shape[0], self.items_.shape[0]))

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the factors (and biases) to the observed entries.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame}
            ``input_type="matrix"``: of shape (n_rows, n_cols), dense with NaN
            for missing entries, or sparse with the observed entries stored
            (explicit zeros are observations). ``input_type="ratings"``: of
            shape (n_ratings, 3), ``(user, item, rating)`` rows, or (n_ratings,
            2), ``(user, item)`` rows with the ratings in ``y``.
        y : array-like of shape (n_ratings,), default=None
            Ratings of the ``(user, item)`` rows of ``X`` (ratings input);
            ignored for matrix input.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if is_dask_collection(X):
            return fit_distributed(self, X, y)
        ratings = self.input_type == "ratings"
        if ratings:
            csr = self._ratings_input(X, y)
            xp, like = get_namespace(np.empty(0)), None
        else:
            csr, xp, like = self._observed_input(X, reset=True)
        if csr.nnz == 0:
            raise ValueError(
                f"X holds no observed entries (every entry of its {csr.shape[0]} x "
                f"{csr.shape[1]} matrix is missing); AltMinCompletion needs at "
                "least one observed entry to fit."
            )
        if self.loss == "implicit":
            return self._fit_implicit(csr, xp, like)
        # The model is equivariant in the units of the ratings (factors
        # scale with sqrt(s), biases and predictions with s; alpha is
        # relative), so fit on data divided by a power of four -- exact --
        # and unscale after: no overflow at 1e300, no underflow at 1e-300.
        unit = power_of_two_scale(float(np.max(np.abs(csr.data))), even=True)
        if unit != 1.0:
            csr = csr.copy()
            csr.data = csr.data / csr.dtype.type(unit)
        self._fit_scale = unit
        use_biases = ratings if self.biases == "auto" else bool(self.biases)
        center = use_biases or ratings
        random_state = check_random_state(self.random_state)
        n_rows, n_cols = csr.shape
        rank = int(min(self.rank, n_rows, n_cols))
        dtype = csr.dtype
        values = csr.data.astype(np.float64)
        mean = float(values.mean()) if (center and csr.nnz) else 0.0
        centred = csr.copy()
        centred.data = (values - mean).astype(dtype)
        scale = float(np.sqrt(np.mean((values - mean) ** 2))) if csr.nnz else 0.0
        self._value_scale = scale if scale > 0 else 1.0
        self.global_mean_ = mean
        if not ratings:
            self.users_ = np.arange(n_rows)
            self.items_ = np.arange(n_cols)
        # Training entries, kept on the host for ``recommend(exclude_seen)``.
        self._seen = sp.csr_matrix(
            (np.ones(csr.nnz, dtype=np.int8), csr.indices, csr.indptr),
            shape=csr.shape)

        if self.solver == "sketch":
            # Every row (and column) gets its own sketch workspace.
            sketch_size = self.sketch_size or 4 * rank
            check_allocation(
                np.dtype(dtype).itemsize * max(n_rows, n_cols)
                * (sketch_size * rank + rank * rank + 5 * rank),
                parameter="sketch_size", value=sketch_size,
                what=f"The sketch workspaces of {max(n_rows, n_cols)} rows", xp=xp)
        state = self._initial_state(centred, rank, random_state, xp, like, use_biases)
        self.alpha_path_ = []
        if self.alpha == "auto":
            alpha, state = self._select_alpha(centred, state, xp, like, random_state)
        else:
            alpha = float(self.alpha)
        self.alpha_ = alpha
        observed = observed_from_host(centred, xp, like=like)
        with self._sweeping(self.max_iter) as progress:
            left, right, history, converged, delta, biases = self._sweep(
                xp, observed, state, alpha, self.max_iter, random_state, progress)
        # The ridge of a folded-in row's bias, as in the sweeps (see
        # alternating_minimization).
        bias_ridge = alpha * float(np.mean(np.maximum(np.diff(csr.indptr), 1)))
        self._store_fit(xp, left, right, biases if use_biases else None,
                        history=history, converged=converged, delta=delta,
                        bias_ridge=bias_ridge, n_observed=csr.nnz, stacklevel=2)
        if unit != 1.0:
            self._unscale(unit)
        return self

    def _unscale(self, scale):
        """Fitted state in the units of the data (fitted on data / ``scale``)."""
        root = float(np.sqrt(scale))  # a power of two: exact
        self.row_factors_ = self.row_factors_ * root
        self.col_factors_ = self.col_factors_ * root
        self.row_biases_ = self.row_biases_ * scale
        self.col_biases_ = self.col_biases_ * scale
        self.global_mean_ = self.global_mean_ * scale
        self._value_scale = self._value_scale * scale
        if self.huber_delta_ is not None:
            self.huber_delta_ = self.huber_delta_ * scale
        with np.errstate(over="ignore", under="ignore"):
            # Squared units: beyond ratings of ~1e154 these overflow to inf.
            self.loss_history_ = [float(np.float64(value) * scale * scale)
                                  for value in self.loss_history_]
        self.alpha_path_ = [(alpha, error * scale) for alpha, error in self.alpha_path_]

    def _fit_implicit(self, csr, xp, like):
        """Confidence-weighted ALS on interaction strengths (``loss="implicit"``)."""
        if self.biases is True:
            raise ValueError("biases=True is not available with loss='implicit': "
                             "the implicit model fits preferences in {0, 1}.")
        if self.solver == "sketch":
            raise ValueError("loss='implicit' supports solver='exact' or 'cg'; "
                             "got solver='sketch'.")
        if csr.nnz and csr.data.min() < 0:
            raise ValueError("loss='implicit' needs interaction strengths >= 0; "
                             f"X holds values down to {csr.data.min()}.")
        random_state = check_random_state(self.random_state)
        n_rows, n_cols = csr.shape
        rank = int(min(self.rank, n_rows, n_cols))
        dtype = csr.dtype
        self._fit_scale = 1.0
        self._value_scale = 1.0
        self.global_mean_ = 0.0
        if self.input_type != "ratings":
            self.users_ = np.arange(n_rows)
            self.items_ = np.arange(n_cols)
        self._seen = sp.csr_matrix(
            (np.ones(csr.nnz, dtype=np.int8), csr.indices, csr.indptr),
            shape=csr.shape)
        preference = csr.copy()
        preference.data = (preference.data > 0).astype(dtype)
        if self.init == "svd" and preference.nnz:
            left, right = spectral_init(preference, rank, dtype, random_state)
        else:
            left, right = random_init(n_rows, n_cols, rank, dtype, 1.0, random_state)
        left = to_namespace(np.ascontiguousarray(left), xp, like=like)
        right = to_namespace(np.ascontiguousarray(right), xp, like=like)
        alpha = IMPLICIT_ALPHA if self.alpha == "auto" else float(self.alpha)
        with self._sweeping(self.max_iter) as progress:
            left, right, history, converged = implicit_alternating_minimization(
                xp, csr.copy(), left, right, solver=self.solver, reg=alpha,
                confidence=float(self.confidence), max_iter=self.max_iter,
                tol=float(self.tol), cg_steps=int(self.cg_steps), progress=progress,
                like=like)
        self.alpha_ = alpha
        self.alpha_path_ = []
        self._store_fit(xp, left, right, None, history=history, converged=converged,
                        delta=None, bias_ridge=0.0, n_observed=csr.nnz,
                        stacklevel=3)
        return self

    def _store_fit(self, xp, left, right, biases, *, history, converged, delta,
                   bias_ridge, n_observed, stacklevel):
        """Store the fitted model of a run of sweeps (in memory or distributed).

        Warns when the sweeps stopped at ``max_iter``, balances the factors
        (see :func:`~sparsesolve.completion._algorithm.balance_factors`) and
        sets the fitted attributes; ``biases`` is None for a model without
        them (zero biases are stored).
        """
        if not converged and self.tol > 0:
            warnings.warn(
                f"AltMinCompletion did not converge in max_iter={self.max_iter} "
                f"sweeps (tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning, stacklevel=stacklevel + 1,
            )
        left, right = balance_factors(xp, left, right)
        self.row_factors_ = xp.asarray(left, dtype=left.dtype)
        self.col_factors_ = xp.asarray(right, dtype=right.dtype)
        self._has_biases = biases is not None
        if biases is None:
            device = _device_of(left)
            biases = (xp.zeros(left.shape[0], dtype=left.dtype, device=device),
                      xp.zeros(right.shape[0], dtype=left.dtype, device=device))
        self.row_biases_, self.col_biases_ = biases
        self._row_bias_ridge = bias_ridge
        self.n_iter_ = len(history)
        self.loss_history_ = history
        self.huber_delta_ = delta
        self.n_observed_ = int(n_observed)

    @contextlib.contextmanager
    def _sweeping(self, n_sweeps):
        """numba's thread count and a progress bar, for one run of sweeps."""
        from .._backend import numba_threads

        with numba_threads(self.n_jobs), Progress(
            n_sweeps, self.verbose, desc=type(self).__name__
        ) as progress:
            yield progress

    def _initial_state(self, centred, rank, random_state, xp, like, use_biases):
        """Starting factors (and zero biases) on the device."""
        n_rows, n_cols = centred.shape
        dtype = centred.dtype
        if self.init == "svd" and centred.nnz:
            left, right = spectral_init(centred, rank, dtype, random_state,
                                        robust=self.loss == "huber")
        else:
            left, right = random_init(n_rows, n_cols, rank, dtype, self._value_scale,
                                      random_state)
        left = to_namespace(np.ascontiguousarray(left), xp, like=like)
        right = to_namespace(np.ascontiguousarray(right), xp, like=like)
        biases = None
        if use_biases:
            biases = (to_namespace(np.zeros(n_rows, dtype=dtype), xp, like=like),
                      to_namespace(np.zeros(n_cols, dtype=dtype), xp, like=like))
        return left, right, biases

    def _sweep(self, xp, observed, state, alpha, n_sweeps, random_state, progress,
               tol=None):
        left, right, biases = state
        rank = left.shape[1]
        sketch_size = self.sketch_size or 4 * rank
        copy = (xp.asarray(left, copy=True), xp.asarray(right, copy=True),
                None if biases is None else tuple(xp.asarray(b, copy=True)
                                                  for b in biases))
        return alternating_minimization(
            xp, observed, copy[0], copy[1],
            solver=self.solver, alpha=float(alpha),
            value_scale=self._value_scale, loss=self.loss,
            max_iter=n_sweeps, tol=float(self.tol if tol is None else tol),
            cg_steps=int(self.cg_steps), sketch_size=int(sketch_size),
            random_state=random_state, progress=progress, biases=copy[2],
        )

    def _select_alpha(self, centred, state, xp, like, random_state):
        """Regularisation path on 90% of the entries, scored on the other 10%.

        The path runs from strong to weak ridge, each strength warm-started
        from the previous solution, so that every step only needs a few
        sweeps; it stops once the held-out error has risen at two
        consecutive strengths (it is unimodal along the path in practice:
        over-smoothing, then over-fitting). Returns the chosen strength and
        the path's state there, from which the full fit starts.
        """
        n_observed = centred.nnz
        if n_observed < AUTO_MIN_OBSERVED:
            return FALLBACK_ALPHA, state
        coo = centred.tocoo()
        held = np.zeros(n_observed, dtype=bool)
        n_held = int(AUTO_HOLDOUT * n_observed)
        held[random_state.permutation(n_observed)[:n_held]] = True
        fit_part = sp.csr_matrix(
            (coo.data[~held], (coo.row[~held], coo.col[~held])), shape=centred.shape)
        observed = observed_from_host(fit_part, xp, like=like)
        rows = to_namespace(coo.row[held].astype(np.int64), xp, like=like)
        cols = to_namespace(coo.col[held].astype(np.int64), xp, like=like)
        truth = coo.data[held].astype(np.float64)
        search = AlphaPath(self.alpha_path_, (FALLBACK_ALPHA, state))
        with self._sweeping(len(AUTO_ALPHAS) * AUTO_SWEEPS) as progress:
            for alpha in AUTO_ALPHAS:
                # The sweeps of a path step are not meant to converge: tol=0.
                left, right, _, _, _, biases = self._sweep(
                    xp, observed, state, alpha, AUTO_SWEEPS, random_state, progress,
                    tol=0.0)
                state = (left, right, biases)
                predicted = to_numpy(self._entries(xp, rows, cols, left, right,
                                                   biases)).astype(np.float64)
                error = float(np.sqrt(np.mean((predicted - truth) ** 2)))
                if search.record(alpha, error, state):
                    break
        return search.best[1], search.best[2]

    @staticmethod
    def _entries(xp, rows, cols, left, right, biases):
        values = factor_entries(xp, rows, cols, left, right)
        if biases is not None:
            values = values + xp.take(biases[0], rows) + xp.take(biases[1], cols)
        return values

    # ------------------------------------------------------------------
    # transform / predict
    # ------------------------------------------------------------------
    def transform(self, X):
        """Complete ``X``: observed entries are kept, missing ones predicted.

        Each row of ``X`` is folded in by a ridge least-squares solve of its
        observed entries against ``col_factors_`` (and its bias, when biases
        are fitted), so rows never seen in ``fit`` are completed too.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_cols)
            Dense with NaN for missing entries, or sparse with the observed
            entries stored; ``n_cols`` must equal ``n_features_in_``.

        Returns
        -------
        completed : ndarray of shape (n_rows, n_cols)
            Dense completed matrix, in the namespace of the fitted factors.

        Raises
        ------
        ValueError
            With ratings input (use :meth:`predict_ratings` or
            :meth:`recommend`), or when the dense result would exceed 4 GiB
            (use :meth:`predict_entries` on the entries needed, or
            :meth:`recommend`).
        """
        check_is_fitted(self)
        if self.loss == "implicit":
            raise ValueError(
                "transform is not available with loss='implicit' (new rows would "
                "need the implicit objective over every column); call "
                "recommend(users, n) or predict_entries(rows, cols) for preferences."
            )
        if self.input_type == "ratings":
            raise ValueError(
                "transform completes matrices; with input_type='ratings' call "
                "predict_ratings(pairs) for given (user, item) pairs or "
                "recommend(users, n) for top-N lists."
            )
        csr, xp, like = self._observed_input(X, reset=False)
        right = self.col_factors_
        n_rows = csr.shape[0]
        needed = int(n_rows) * int(right.shape[0]) * np.dtype(right.dtype).itemsize
        if needed > MAX_DENSE_BYTES:
            raise ValueError(
                f"transform would return a dense {n_rows} x {right.shape[0]} array "
                f"({needed / 2**30:.1f} GiB, above the {MAX_DENSE_BYTES / 2**30:.0f}"
                " GiB limit); call predict_entries(rows, cols) for the entries you "
                "need, recommend(users, n) for top-N lists, or transform row blocks."
            )
        # Fold in at the scale the model was fitted at (see fit), so that
        # the ridge solve neither overflows nor underflows.
        scale = getattr(self, "_fit_scale", 1.0)
        root = float(np.sqrt(scale))
        host = csr.astype(right.dtype)
        if scale != 1.0:
            host.data = host.data / host.dtype.type(scale)
            right = right / root
        observed = observed_from_host(host, get_namespace(right), like=right)
        xp = get_namespace(right)
        if self._has_biases:
            given = observed.values
            mean = self.global_mean_ / scale
            col_bias = self.col_biases_ / scale
            observed.values = given - mean
            left, row_bias = fold_in_rows(xp, observed, right, float(self.alpha_),
                                          self._value_scale / scale,
                                          col_bias=col_bias,
                                          bias_ridge=self._row_bias_ridge)
            completed = (left @ right.T + mean
                         + xp.reshape(row_bias, (-1, 1))
                         + xp.reshape(col_bias, (1, -1)))
            observed.values = given
        else:
            left = fold_in_rows(xp, observed, right, float(self.alpha_),
                                self._value_scale / scale)
            completed = left @ right.T
        if scale != 1.0:
            completed = completed * scale
            observed.values = observed.values * scale
        if observed.n_observed:
            flat = xp.reshape(completed, (-1,))
            positions = (xp.astype(observed.rows, xp.int64) * right.shape[0]
                         + xp.astype(observed.indices, xp.int64))
            # Observed entries are data, not estimates: keep them as given.
            flat[positions] = observed.values
            completed = xp.reshape(flat, completed.shape)
        return completed

    def predict(self, X, cols="deprecated"):
        """Predictions for ``X``, in the form the model was fitted on.

        With matrix input (``input_type="matrix"``) this is :meth:`transform`:
        the completed matrix. With ratings input it is
        :meth:`predict_ratings`: one predicted rating per ``(user, item)``
        row. For single entries of the fitted matrix, given by row and
        column indices, call :meth:`predict_entries`.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame}
            Matrix input: a matrix with ``n_features_in_`` columns, dense with
            NaN for missing entries or sparse with the observed entries
            stored. Ratings input: ``(user, item)`` rows (a third, rating
            column is ignored).
        cols : array-like of int, optional
            Deprecated: ``predict(rows, cols)`` is ``predict_entries(rows,
            cols)``, which it calls with a ``FutureWarning``; from
            sparsesolve 0.2 ``predict`` takes ``X`` only.

        Returns
        -------
        predicted : ndarray
            Of shape (n_rows, n_cols) for matrix input, (n_pairs,) for
            ratings input.

        Examples
        --------
        >>> import numpy as np
        >>> from sparsesolve.completion import AltMinCompletion
        >>> X = np.array([[1.0, 2.0, np.nan], [2.0, np.nan, 6.0],
        ...               [np.nan, 4.0, 6.0]])
        >>> model = AltMinCompletion(rank=1, random_state=0).fit(X)
        >>> model.predict(X).shape
        (3, 3)
        """
        if not (isinstance(cols, str) and cols == "deprecated"):
            warnings.warn(
                "predict(rows, cols) is deprecated and from sparsesolve 0.2 "
                "predict takes one argument X, like transform; call "
                "predict_entries(rows, cols) for entries of the fitted matrix.",
                FutureWarning,
                stacklevel=2,
            )
            return self.predict_entries(X, cols)
        check_is_fitted(self)
        if self.input_type == "ratings":
            return self.predict_ratings(X)
        return self.transform(X)

    def predict_entries(self, rows, cols):
        """Entries of the fitted matrix at ``(rows[e], cols[e])``.

        Parameters
        ----------
        rows : array-like of int of shape (n_entries,)
            Row indices into the training matrix (with ratings input, the
            positions of the users in ``users_``).
        cols : array-like of int of shape (n_entries,)
            Column indices (with ratings input, positions in ``items_``).

        Returns
        -------
        values : ndarray of shape (n_entries,)
            ``mu + b[rows[e]] + c[cols[e]] + <row_factors_[rows[e]],
            col_factors_[cols[e]]>`` (the biases are zero unless fitted), in
            the namespace of the fitted factors.

        See Also
        --------
        predict_ratings : Predictions for ``(user, item)`` pairs given by id.
        transform : The completed matrix, or completed new rows.

        Examples
        --------
        >>> import numpy as np
        >>> from sparsesolve.completion import AltMinCompletion
        >>> X = np.array([[1.0, 2.0, np.nan], [2.0, np.nan, 6.0],
        ...               [np.nan, 4.0, 6.0]])
        >>> model = AltMinCompletion(rank=1, random_state=0).fit(X)
        >>> model.predict_entries([0, 2], [2, 0]).shape
        (2,)
        """
        check_is_fitted(self)
        left, right = self.row_factors_, self.col_factors_
        xp = get_namespace(left)
        rows = self._check_indices(rows, left.shape[0], "rows")
        cols = self._check_indices(cols, right.shape[0], "cols")
        if rows.shape != cols.shape:
            raise ValueError(
                f"rows and cols must have the same shape; got {rows.shape} and "
                f"{cols.shape}."
            )
        rows = to_namespace(rows, xp, like=left)
        cols = to_namespace(cols, xp, like=left)
        values = factor_entries(xp, rows, cols, left, right)
        if self._has_biases:
            values = (values + self.global_mean_ + xp.take(self.row_biases_, rows)
                      + xp.take(self.col_biases_, cols))
        elif self.global_mean_:
            values = values + self.global_mean_
        return values

    def predict_ratings(self, X):
        """Predicted ratings of ``(user, item)`` pairs given by their ids.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_pairs, 2) or (n_pairs, 3)
            ``(user, item)`` rows (a third, rating column is ignored), with
            the ids used in ``fit`` (for matrix input, row and column
            indices).

        Returns
        -------
        ratings : ndarray of shape (n_pairs,)
            ``mu + b_u + c_i + <u, v>`` for known pairs. An id never seen in
            ``fit`` contributes nothing but the known part: an unseen user
            gets ``mu + c_i``, an unseen item ``mu + b_u``, and both unseen
            ``mu`` (the global mean; 0 only for matrix input without biases).
        """
        check_is_fitted(self)
        users, items = pairs_from_input(X)
        rows = lookup_ids(self.users_, users)
        cols = lookup_ids(self.items_, items)
        return self._predict_codes(rows, cols)

    def _predict_codes(self, rows, cols):
        """Predictions at encoded (row, col) pairs, -1 marking unknown ids."""
        host = lambda a: np.asarray(to_numpy(a), dtype=np.float64)  # noqa: E731
        out = np.full(rows.shape[0], self.global_mean_, dtype=np.float64)
        known_row, known_col = rows >= 0, cols >= 0
        if self._has_biases:
            out[known_row] += host(self.row_biases_)[rows[known_row]]
            out[known_col] += host(self.col_biases_)[cols[known_col]]
        both = known_row & known_col
        if both.any():
            left, right = self.row_factors_, self.col_factors_
            xp = get_namespace(left)
            out[both] += host(factor_entries(
                xp, to_namespace(np.ascontiguousarray(rows[both]), xp, like=left),
                to_namespace(np.ascontiguousarray(cols[both]), xp, like=left),
                left, right))
        return out.astype(np.dtype(self.row_factors_.dtype), copy=False)

    def score(self, X, y=None):
        """Negative root mean square error at the given observed entries.

        Higher is better, as :class:`~sklearn.model_selection.GridSearchCV`
        expects.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame}
            Ratings input (``input_type="ratings"``): ``(user, item, rating)``
            rows, or ``(user, item)`` rows with the ratings in ``y``. Matrix
            input: a matrix of the fitted shape (n_rows, n_cols) whose stored
            (non-NaN) entries are compared with the model's, typically held-out
            entries of the training matrix.
        y : array-like of shape (n_ratings,), default=None
            Ratings of the ``(user, item)`` rows of ``X``; ignored for matrix
            input.

        Returns
        -------
        score : float
            ``-sqrt(mean((predicted - observed)^2))``.
        """
        check_is_fitted(self)
        if self.loss == "implicit":
            raise ValueError(
                "score is the RMSE of ratings; a loss='implicit' model predicts "
                "preferences to rank, so score it with a ranking metric such as "
                "precision at k on held-out interactions (see recommend)."
            )
        if self.input_type == "ratings":
            if sp.issparse(X):
                coo = sp.coo_matrix(X)
                predicted = self._predict_codes(
                    lookup_ids(self.users_, coo.row), lookup_ids(self.items_, coo.col))
                truth = coo.data
            else:
                users, items, truth = ratings_triplets(X, y)
                predicted = self._predict_codes(lookup_ids(self.users_, users),
                                                lookup_ids(self.items_, items))
        else:
            csr, _, _ = self._observed_input(X, reset=False)
            expected = (self.row_factors_.shape[0], self.col_factors_.shape[0])
            if csr.shape != expected:
                raise ValueError(
                    f"score compares the fitted matrix with the entries stored in X, "
                    f"so X must have the fitted shape {expected}; got {csr.shape}. "
                    "(Use transform to complete new rows.)"
                )
            coo = csr.tocoo()
            predicted = to_numpy(self.predict_entries(coo.row.astype(np.int64),
                                                      coo.col.astype(np.int64)))
            truth = coo.data
        if np.asarray(truth).shape[0] == 0:
            raise ValueError("X holds no observed entries to score.")
        residual = np.asarray(predicted, dtype=np.float64) - np.asarray(
            truth, dtype=np.float64)
        # The RMSE of data near 1e300 would overflow in residual**2.
        unit = power_of_two_scale(float(np.max(np.abs(residual))))
        return -float(np.sqrt(np.mean((residual / unit) ** 2)) * unit)

    def recommend(self, users, n=10, exclude_seen=True):
        """Top-``n`` items of each user, computed in blocks of users.

        Scores ``mu + b_u + c + V u`` are formed for a block of users at a
        time (at most about 64 MB of them), so the full users x items matrix
        never exists.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            User ids as given to ``fit`` (row indices for matrix input). An
            unseen user gets the items of largest ``c`` (bias-only
            popularity) and has nothing to exclude.
        n : int, default=10
            Items per user (capped at the number of items).
        exclude_seen : bool, default=True
            Leave out the items the user rated in ``fit``.

        Returns
        -------
        items : ndarray of shape (n_users, n)
            Item ids (from ``items_``), best first. Where fewer than ``n``
            items are left to recommend, the tail holds the excluded items
            with score ``-inf``.
        scores : ndarray of shape (n_users, n)
            Their predicted ratings.
        """
        check_is_fitted(self)
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}.")
        users = np.asarray(users)
        if users.ndim != 1:
            raise ValueError(f"users must be 1D; got shape {users.shape}.")
        rows = lookup_ids(self.users_, users)
        left = np.asarray(to_numpy(self.row_factors_), dtype=np.float64)
        right = np.asarray(to_numpy(self.col_factors_), dtype=np.float64)
        row_bias = np.asarray(to_numpy(self.row_biases_), dtype=np.float64)
        col_bias = np.asarray(to_numpy(self.col_biases_), dtype=np.float64)
        n_items = right.shape[0]
        n = int(min(n, n_items))
        block = max(1, (64 * 2**20) // (8 * max(n_items, 1)))
        top_items = np.empty((rows.shape[0], n), dtype=np.int64)
        top_scores = np.empty((rows.shape[0], n), dtype=np.float64)
        for start in range(0, rows.shape[0], block):
            chunk = rows[start:start + block]
            known = chunk >= 0
            scores = np.empty((chunk.shape[0], n_items))
            scores[:] = self.global_mean_ + (col_bias if self._has_biases else 0.0)
            scores[known] += left[chunk[known]] @ right.T
            if self._has_biases:
                scores[known] += row_bias[chunk[known], None]
            if exclude_seen and known.any():
                seen = self._seen[chunk[known]].tocoo()
                sub = scores[known]
                sub[seen.row, seen.col] = -np.inf
                scores[known] = sub
            if n < n_items:
                part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
            else:
                part = np.tile(np.arange(n_items), (chunk.shape[0], 1))
            part_scores = np.take_along_axis(scores, part, axis=1)
            order = np.argsort(-part_scores, axis=1, kind="stable")
            top_items[start:start + block] = np.take_along_axis(part, order, axis=1)
            top_scores[start:start + block] = np.take_along_axis(part_scores, order,
                                                                 axis=1)
        return self.items_[top_items], top_scores

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of ``transform``'s output.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; ``transform`` keeps the columns of ``X``, so
            these are also the output names. When None, ``feature_names_in_``
            is used if defined, else ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of the completed matrix. With ratings input,
            where ``transform`` does not apply, the item ids as strings (the
            columns of the users x items matrix the model completes).
        """
        check_is_fitted(self)
        if self.input_type == "ratings":
            return np.asarray([str(item) for item in self.items_], dtype=object)
        return _check_feature_names_in(self, input_features)

    @staticmethod
    def _check_indices(indices, size, name):
        host = np.asarray(to_numpy(indices) if is_array(indices) else indices)
        if host.ndim != 1:
            raise ValueError(f"{name} must be a 1D array of indices; got shape "
                             f"{host.shape}.")
        if host.size and not np.issubdtype(host.dtype, np.integer):
            raise TypeError(f"{name} must hold integers; got dtype {host.dtype}.")
        host = host.astype(np.int64)
        if host.size and (host.min() < 0 or host.max() >= size):
            raise ValueError(f"{name} must lie in [0, {size}); got values in "
                             f"[{host.min()}, {host.max()}].")
        return np.ascontiguousarray(host)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _refuse_complex(matrix, name):
    if np.dtype(matrix.dtype).kind == "c":
        raise ValueError(
            f"Complex data not supported for {name}: AltMinCompletion completes "
            f"real matrices (got dtype {matrix.dtype}); the imaginary part is not "
            "dropped silently."
        )


def _device_of(array):
    import array_api_compat

    return array_api_compat.device(array)
