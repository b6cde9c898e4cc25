"""The scikit-learn estimator for low-rank matrix completion."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, metadata_routing
from sklearn.utils._param_validation import Interval, StrOptions

from .._backend import get_namespace, is_array, to_namespace, to_numpy
from .._progress import Progress
from .._validation import check_is_fitted, validate_data
from ._algorithm import (
    alternating_minimization,
    balance_factors,
    fold_in_rows,
    predict_entries,
    random_init,
    spectral_init,
)
from ._kernels import SOLVERS
from ._observed import csr_from_input, observed_from_host

__all__ = ["AltMinCompletion"]


def _is_cupy_sparse(X):
    return type(X).__module__.startswith("cupyx.scipy.sparse")


class AltMinCompletion(TransformerMixin, BaseEstimator):
    """Low-rank matrix completion by alternating minimisation (ALS).

    Fits ``M ~ U V^T`` of rank ``rank`` to the observed entries of a
    partially known matrix (Jain, Netrapalli and Sanghavi 2013) by
    alternating ridge least squares over rows and columns. Every row solve
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
    alpha : float, default=1e-3
        Ridge strength relative to the data: the penalty of row ``i`` is
        ``alpha * s * n_i * ||u_i||^2``, with ``n_i`` its number of
        observations and ``s`` the root mean square of the observed values
        (and likewise for columns). Use ``1e-8`` or so for noiseless data,
        ``1e-2`` to ``1e-1`` for noisy ratings.
    loss : {"squared", "huber"}, default="squared"
        Data-fit term. ``"huber"`` downweights residuals beyond
        ``1.345 * 1.4826 * MAD(residuals)`` (re-estimated every sweep).
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
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the sketches (drawn on the host, so
        CPU and GPU runs start alike).
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
    n_iter_ : int
        Sweeps run.
    loss_history_ : list of float
        Mean training loss (0.5 r^2, or Huber) after every sweep.
    huber_delta_ : float or None
        Final Huber threshold; None for the squared loss.
    n_observed_ : int
        Number of observed entries used in ``fit``.
    n_features_in_ : int
        Number of columns seen in ``fit``.

    See Also
    --------
    sklearn.impute.IterativeImputer : Column-wise model-based imputation.
    sklearn.decomposition.TruncatedSVD : Low-rank factorisation of a fully
        known (sparse) matrix.

    Notes
    -----
    Input: a SciPy sparse matrix, whose stored entries are the observations
    (explicit zeros count; duplicate coordinates in COO input are summed, as
    SciPy does), or a dense array with NaN marking the missing entries. CuPy
    arrays and ``cupyx.scipy.sparse`` matrices run the same sweeps on the GPU
    (numba-cuda kernels, one thread per row) and fitted arrays stay CuPy.

    ``transform`` folds new rows in: each is one ridge solve against
    ``col_factors_``. ``predict(rows, cols)`` returns single entries of the
    fitted matrix; ``predict(X)`` with one matrix argument is ``transform``.

    References
    ----------
    P. Jain, P. Netrapalli, S. Sanghavi, "Low-rank matrix completion using
    alternating minimization", STOC 2013.

    Y. Gu, Z. Song, J. Yin, L. Zhang, "Low rank matrix completion via robust
    alternating minimization in nearly linear time", ICLR 2024.

    Y. Zhou, D. Wilkinson, R. Schreiber, R. Pan, "Large-scale parallel
    collaborative filtering for the Netflix prize", AAIM 2008.

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
    >>> model.predict([0, 1], [3, 4]).shape
    (2,)
    """

    # ``rows``/``cols`` of ``predict`` are arguments, not metadata to route:
    # without this scikit-learn would generate ``set_predict_request``.
    __metadata_request__predict = {
        "rows": metadata_routing.UNUSED, "cols": metadata_routing.UNUSED
    }

    _parameter_constraints: dict = {
        "rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "loss": [StrOptions({"squared", "huber"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "init": [StrOptions({"svd", "random"})],
        "cg_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "sketch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(
        self,
        rank=10,
        *,
        solver="cg",
        alpha=1e-3,
        loss="squared",
        max_iter=20,
        tol=1e-6,
        init="svd",
        cg_steps=3,
        sketch_size=None,
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
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------
    # input
    # ------------------------------------------------------------------
    def _observed_input(self, X, reset):
        """Validate ``X``; return (host CSR of observations, xp, device array)."""
        if _is_cupy_sparse(X):
            import cupy

            if X.ndim != 2:
                raise ValueError("X must be a 2D sparse matrix.")
            host = X.get()
            if host.dtype not in (np.float32, np.float64):
                host = host.astype(np.float64)
            self._check_columns(host.shape[1], reset)
            xp = get_namespace(cupy.empty(0))
            like = X.data
        elif sp.issparse(X):
            host = validate_data(
                self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                ensure_all_finite=True,
            )
            xp, like = get_namespace(np.empty(0)), None
        else:
            xp = get_namespace(X) if is_array(X) else None
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
        return csr_from_input(host), xp, like

    def _check_columns(self, n_columns, reset):
        if reset:
            self.n_features_in_ = n_columns
        elif n_columns != self.n_features_in_:
            raise ValueError(
                f"X has {n_columns} features, but AltMinCompletion is expecting "
                f"{self.n_features_in_} features as input."
            )

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the factors to the observed entries of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_cols)
            Dense with NaN for missing entries, or sparse with the observed
            entries stored (explicit zeros are observations).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        csr, xp, like = self._observed_input(X, reset=True)
        random_state = check_random_state(self.random_state)
        n_rows, n_cols = csr.shape
        rank = int(min(self.rank, n_rows, n_cols))
        dtype = csr.dtype
        scale = (float(np.sqrt(np.mean(csr.data.astype(np.float64) ** 2)))
                 if csr.nnz else 0.0)
        self._value_scale = scale if scale > 0 else 1.0
        if self.init == "svd" and csr.nnz:
            left, right = spectral_init(csr, rank, dtype, random_state,
                                        robust=self.loss == "huber")
        else:
            left, right = random_init(n_rows, n_cols, rank, dtype, self._value_scale,
                                      random_state)
        observed = observed_from_host(csr, xp, like=like)
        left = to_namespace(np.ascontiguousarray(left), xp, like=like)
        right = to_namespace(np.ascontiguousarray(right), xp, like=like)
        sketch_size = self.sketch_size or 4 * rank

        from .._backend import numba_threads

        with numba_threads(self.n_jobs), Progress(
            self.max_iter, self.verbose, desc=type(self).__name__
        ) as progress:
            left, right, history, converged, delta = alternating_minimization(
                xp, observed, left, right,
                solver=self.solver, alpha=float(self.alpha),
                value_scale=self._value_scale, loss=self.loss,
                max_iter=self.max_iter, tol=float(self.tol),
                cg_steps=int(self.cg_steps), sketch_size=int(sketch_size),
                random_state=random_state, progress=progress,
            )
        if not converged and self.tol > 0:
            warnings.warn(
                f"AltMinCompletion did not converge in max_iter={self.max_iter} "
                f"sweeps (tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning, stacklevel=2,
            )
        left, right = balance_factors(xp, left, right)
        self.row_factors_ = xp.asarray(left, dtype=left.dtype)
        self.col_factors_ = xp.asarray(right, dtype=right.dtype)
        self.n_iter_ = len(history)
        self.loss_history_ = history
        self.huber_delta_ = delta
        self.n_observed_ = int(csr.nnz)
        return self

    # ------------------------------------------------------------------
    # transform / predict
    # ------------------------------------------------------------------
    def transform(self, X):
        """Complete ``X``: observed entries are kept, missing ones predicted.

        Each row of ``X`` is folded in by a ridge least-squares solve of its
        observed entries against ``col_factors_``, so rows never seen in
        ``fit`` are completed too.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_cols)
            Dense with NaN for missing entries, or sparse with the observed
            entries stored; ``n_cols`` must equal ``n_features_in_``.

        Returns
        -------
        completed : ndarray of shape (n_rows, n_cols)
            Dense completed matrix, in the namespace of the fitted factors.
        """
        check_is_fitted(self)
        csr, xp, like = self._observed_input(X, reset=False)
        right = self.col_factors_
        observed = observed_from_host(csr.astype(right.dtype), get_namespace(right),
                                      like=right)
        xp = get_namespace(right)
        left = fold_in_rows(xp, observed, right, float(self.alpha), self._value_scale)
        completed = left @ right.T
        if observed.n_observed:
            flat = xp.reshape(completed, (-1,))
            positions = (xp.astype(observed.rows, xp.int64) * right.shape[0]
                         + xp.astype(observed.indices, xp.int64))
            # Observed entries are data, not estimates: keep them as given.
            flat[positions] = observed.values
            completed = xp.reshape(flat, completed.shape)
        return completed

    def predict(self, rows, cols=None):
        """Entries of the fitted matrix at ``(rows[e], cols[e])``.

        Parameters
        ----------
        rows : array-like of int of shape (n_entries,)
            Row indices into the training matrix. If ``cols`` is omitted,
            ``rows`` is instead a matrix and ``transform(rows)`` is returned.
        cols : array-like of int of shape (n_entries,), default=None
            Column indices.

        Returns
        -------
        values : ndarray of shape (n_entries,)
            ``<row_factors_[rows[e]], col_factors_[cols[e]]>``.
        """
        check_is_fitted(self)
        if cols is None:
            return self.transform(rows)
        left, right = self.row_factors_, self.col_factors_
        xp = get_namespace(left)
        rows = self._check_indices(rows, left.shape[0], "rows")
        cols = self._check_indices(cols, right.shape[0], "cols")
        if rows.shape != cols.shape:
            raise ValueError(
                f"rows and cols must have the same shape; got {rows.shape} and "
                f"{cols.shape}."
            )
        return predict_entries(
            xp, to_namespace(rows, xp, like=left), to_namespace(cols, xp, like=left),
            left, right,
        )

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
