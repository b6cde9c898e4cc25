"""scikit-learn estimators for l_q sparse coding and dictionary learning."""

from __future__ import annotations

import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import array_api_compat
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._backend import (
    get_namespace,
    kernel_threads,
    to_namespace,
    to_numpy,
)
from .._docs import API_PAGE
from .._progress import Progress
from .._sklearn_compat import (
    Interval,
    StrOptions,
    fit_context,
    validate_estimator_params,
)
from .._validation import (
    N_JOBS_CONSTRAINT,
    check_allocation,
    check_array_argument,
    check_finite_score,
    check_is_fitted,
    check_same_device,
    power_of_two_scale,
    validate_data,
)
from ..distributed._dispatch import fit_distributed, is_dask_collection
from ..utils._device import HostCopyMixin
from ._algorithm import (
    default_step,
    dictionary_lipschitz,
    encode,
    encode_continuation,
    l1_start_alpha,
    penalty_value,
)
from ._dictionary import dictionary_step, normalize_rows
from ._thresholding import PENALTIES

__all__ = ["LqDictionaryLearning", "LqSparseCoder"]

_CODING_CONSTRAINTS = {
    "penalty": [StrOptions(set(PENALTIES))],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "n_jobs": N_JOBS_CONSTRAINT,
}
_INIT_OPTIONS = [StrOptions({"continuation", "l1"}), None]


def _warn_unconverged(n_unconverged, n_samples, max_iter, name, parameters):
    if n_unconverged:
        max_iter_name, tol_name = parameters
        warnings.warn(
            f"{name}: {n_unconverged} of {n_samples} samples did not reach tol "
            f"within {max_iter_name}={max_iter} iterations; increase "
            f"{max_iter_name} or {tol_name}.",
            ConvergenceWarning,
            stacklevel=4,
        )


# How each penalty's weight scales with the data: coding ``s x`` with weight
# ``s**degree * alpha`` gives ``s`` times the codes of ``x`` with ``alpha``
# (the data term scales as s**2, |c| as s, |c|**0.5 as s**0.5, and the l0
# count and CEL0 -- whose thresholds are sqrt(2 alpha) / a_i -- as 1).
_PENALTY_DEGREE = {"l1": 1.0, "l0": 2.0, "l1/2": 1.5, "cel0": 2.0}

# Normalised data have entries below one in magnitude, so a weight above
# this zeroes every code of a signal of fewer than 2**60 features (the zero
# code then beats any other in the objective); capping keeps the weight of
# tiny data (1e-300) finite inside the kernels.
_ALPHA_CAP = 2.0**64


def _normalised(X, xp, penalty, alpha, atom_norms=None):
    """``(X / scale, alpha in the units of X / scale, scale)``.

    ``scale`` is a power of four (its square root and the 1.5 power of the
    l1/2 weight are then powers of two too), so the division is exact and the
    codes of ``s X`` are those of ``X`` times ``s`` with no overflow of
    ``||x||^2`` at 1e300 nor underflow at 1e-300 (Higham, "Accuracy and
    Stability of Numerical Algorithms", 2nd ed., sec. 2.1: scaling by a power
    of the base is exact).
    """
    max_abs = float(xp.max(xp.abs(X))) if X.shape[0] * X.shape[1] else 0.0
    scale = power_of_two_scale(max_abs, even=True)
    degree = _PENALTY_DEGREE[penalty]
    with np.errstate(over="ignore", divide="ignore"):
        scaled_alpha = float(np.float64(alpha) / np.float64(scale) ** degree)
    cap = _ALPHA_CAP
    if atom_norms is not None and atom_norms.shape[0]:
        cap *= max(1.0, float(xp.max(atom_norms))) ** 2
    scaled_alpha = min(scaled_alpha, cap)
    if scale == 1.0:
        return X, scaled_alpha, scale
    return X / scale, scaled_alpha, scale


def _reconstruction_score(X, codes, dictionary, xp):
    """Minus the mean over samples of ``0.5 ||x - c D||^2`` (the data term)."""
    residual = X - codes @ dictionary
    return -0.5 * float(xp.sum(residual * residual)) / X.shape[0]


def _checked_dictionary(dictionary, xp, like, caller):
    """The ``dictionary`` parameter as a real, finite 2-D array in ``xp``."""
    if not hasattr(dictionary, "shape") or get_namespace(dictionary) is not xp:
        host = to_numpy(dictionary) if hasattr(dictionary, "shape") else dictionary
        host = check_array_argument(host, "dictionary", ndim=2, caller=caller)
        return to_namespace(np.asarray(host), xp, like=like)
    return check_array_argument(dictionary, "dictionary", ndim=2, caller=caller)


def _check_gram(gram, xp):
    """Refuse a dictionary whose Gram matrix overflows (atoms above ~1e154)."""
    if not bool(xp.all(xp.isfinite(gram))):
        raise ValueError(
            "dictionary: the Gram matrix D D^T of the atoms overflows "
            "(entries around 1e154 or larger); rescale the dictionary (the "
            "codes scale inversely with it)."
        )


def _itemsize(X, xp):
    """Bytes per entry of the real float array ``X`` (any namespace)."""
    return 4 if X.dtype == xp.float32 else 8


def _coding_bytes(n_samples, n_atoms, n_features, itemsize):
    """Memory of one coding call: Gram, correlations, codes and start."""
    return itemsize * (n_atoms * n_atoms + 3 * n_samples * n_atoms
                       + n_atoms * n_features)


class _DictionaryCache:
    """Gram matrix, step and atom norms of one dictionary, recomputed on change.

    The fingerprint (identity, shape, dtype, and two checksums) catches a
    new dictionary passed through ``set_params`` as well as in-place edits.
    """

    def __init__(self, dictionary, xp):
        n_atoms = dictionary.shape[0]
        check_allocation(_itemsize(dictionary, xp) * n_atoms * n_atoms,
                         parameter="dictionary",
                         what=f"The Gram matrix of {n_atoms} atoms", xp=xp)
        self.key = self.fingerprint(dictionary, xp)
        with np.errstate(over="ignore", invalid="ignore"):
            self.gram = dictionary @ dictionary.T
        _check_gram(self.gram, xp)
        self.step = default_step(dictionary_lipschitz(dictionary, xp),
                                 dictionary.dtype, xp)
        self.atom_norms = xp.sqrt(xp.sum(dictionary * dictionary, axis=1))

    @staticmethod
    def fingerprint(dictionary, xp):
        weights = xp.arange(1, dictionary.shape[1] + 1, dtype=dictionary.dtype,
                            device=array_api_compat.device(dictionary))
        with np.errstate(over="ignore", invalid="ignore"):
            return (
                id(dictionary), tuple(dictionary.shape), str(dictionary.dtype),
                float(xp.sum(dictionary * dictionary)),
                float(xp.sum(dictionary @ weights)),
            )


class _BaseLqCoding(
    HostCopyMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator,
    metaclass=ABCMeta,
):
    """Coding shared by :class:`LqSparseCoder` and :class:`LqDictionaryLearning`.

    One start rule and one stopping rule for both estimators (as
    scikit-learn's ``_BaseSparseCoding`` serves ``SparseCoder`` and the
    dictionary learners): the same dictionary, penalty and coding parameters
    give the same codes whichever estimator holds the dictionary.
    Subclasses say where their coding parameters live
    (:meth:`_coding_parameters`) and which dictionary codes ``X``
    (:meth:`_dictionary_in`).
    """

    # Names of (max_iter, tol) as the subclass calls them, for messages.
    _coding_parameter_names = ("max_iter", "tol")

    @abstractmethod
    def _coding_parameters(self):
        """``(max_iter, tol, algorithm, init)`` of the coder."""

    @abstractmethod
    def _dictionary_in(self, X):
        """The dictionary in the namespace and dtype of ``X``."""

    def _cache_for(self, dictionary, xp):
        cache = getattr(self, "_dictionary_cache", None)
        if cache is None or cache.key != _DictionaryCache.fingerprint(dictionary, xp):
            cache = _DictionaryCache(dictionary, xp)
            self._dictionary_cache = cache
        return cache

    def _encode(self, X, dictionary, cache, xp, start=None, alpha=None):
        """Codes of ``X`` and the number of samples that missed ``tol``.

        ``start`` (warm-start codes) takes precedence over ``init``. For the
        non-convex penalties ``init`` picks the start: the lambda-continuation
        (:func:`~sparsesolve.coding._algorithm.encode_continuation`), the
        lasso codes, or zero codes. l1 is convex and always starts from
        ``start`` or zero.
        """
        max_iter, tol, algorithm, init = self._coding_parameters()
        alpha = float(self.alpha if alpha is None else alpha)
        options = dict(max_iter=max_iter, tol=tol, algorithm=algorithm,
                       gram=cache.gram, step=cache.step,
                       atom_norms=cache.atom_norms)
        nonconvex = self.penalty != "l1"
        if start is None and nonconvex and init == "continuation":
            codes, _, n_unconverged = encode_continuation(
                X, dictionary, self.penalty, alpha, xp=xp, **options)
            return codes, n_unconverged
        if start is None and nonconvex and init == "l1":
            # Its unconverged samples are not reported: the non-convex solve
            # below refines them and is the one checked.
            l1_alpha = l1_start_alpha(self.penalty, alpha, cache.step,
                                      float(xp.mean(cache.atom_norms)))
            start, _, _ = encode(X, dictionary, "l1", l1_alpha, xp=xp, **options)
        codes, _, n_unconverged = encode(X, dictionary, self.penalty, alpha, xp=xp,
                                         init=start, **options)
        return codes, n_unconverged

    def _transform(self, X, dictionary, start=None):
        """Codes of the validated ``X`` over ``dictionary``, warning on ``tol``."""
        xp = get_namespace(X)
        cache = self._cache_for(dictionary, xp)
        X, alpha, scale = _normalised(X, xp, self.penalty, self.alpha,
                                      cache.atom_norms)
        if start is not None and scale != 1.0:
            start = start / scale
        with kernel_threads(self.n_jobs, xp):
            codes, n_unconverged = self._encode(X, dictionary, cache, xp, start,
                                                alpha=alpha)
        if scale != 1.0:
            codes = codes * scale
        _warn_unconverged(n_unconverged, X.shape[0], self._coding_parameters()[0],
                          type(self).__name__, self._coding_parameter_names)
        return codes

    def score(self, X, y=None):
        """Minus the mean reconstruction loss of ``X`` coded over the dictionary.

        ``-(1 / n_samples) sum_n 0.5 ||x_n - c_n D||^2`` with ``c_n`` from
        :meth:`transform`: the data term of the coding objective, so larger
        is better, as scikit-learn's scorers expect (``GridSearchCV`` and
        ``cross_val_score`` work with their default scorer). It leaves the
        penalty out, so it rewards denser codes (smaller ``alpha``); compare
        settings at a fixed sparsity budget, or score sparsity separately.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Minus the mean squared reconstruction error (halved) per sample.
        """
        codes = self.transform(X)
        X = validate_data(self, X, reset=False)
        xp = get_namespace(X)
        with np.errstate(over="ignore", invalid="ignore"):
            score = _reconstruction_score(X, codes, self._dictionary_in(X), xp)
        return check_finite_score(score, self, X)


class LqSparseCoder(_BaseLqCoding):
    """Sparse coding over a fixed dictionary with l1, l0, l1/2 or CEL0 penalties.

    Each row ``x`` of ``X`` is coded by minimising

    ``0.5 ||x - c D||^2 + alpha sum_i psi(c_i)``

    with proximal-gradient iterations (FISTA with adaptive restart, or ISTA)
    and step ``1 / ||D||_2**2``. Penalties closer to l0 than l1 reach the same
    reconstruction error with far fewer active atoms (Rentzeperis et al.,
    2023). Every sample runs its own compiled loop (the same one on the CPU
    and, for CuPy input, on the GPU) whose cost grows with the number of its
    active atoms, and stops on its own.

    Parameters
    ----------
    dictionary : array of shape (n_atoms, n_features)
        Atoms as rows (as in :class:`sklearn.decomposition.SparseCoder`),
        NumPy or CuPy. They need not have unit norm; CEL0 uses their norms.
    penalty : {"l1", "l0", "l1/2", "cel0"}, default="cel0"
        Penalty ``psi``: absolute value (lasso), count of nonzeros, square
        root of the absolute value, or the continuous exact l0 penalty of
        Soubies et al. (2015).
    alpha : float, default=1.0
        Penalty weight. Its scale is that of ``0.5 ||x||^2``; with
        ``penalty="l1"`` it equals scikit-learn's ``transform_alpha`` of
        ``SparseCoder(transform_algorithm="lasso_lars")``.
    max_iter : int, default=500
        Most iterations per sample.
    tol : float, default=1e-4
        Stopping rule of each sample. ``penalty="l1"``: the duality gap of
        the lasso is at most ``tol ||x||^2`` (the rule of
        :class:`sklearn.linear_model.Lasso`), a certificate that the
        objective is within that of its minimum. The non-convex penalties
        have no such certificate: a sample stops once
        ``||c_new - c|| <= tol ||c_new||``.
    algorithm : {"fista", "ista"}, default="fista"
        Accelerated (with per-sample restart) or plain proximal gradient.
    warm_start : bool, default=False
        Start :meth:`transform` from the codes of the previous call when it
        had the same number of samples (for example along a decreasing
        ``alpha`` path on the same data). Those codes take precedence over
        ``init``.
    init : {"continuation", "l1"} or None, default="continuation"
        Start of the non-convex penalties (l0, l1/2, CEL0), which stop at a
        local minimiser that depends on where they start.
        ``"continuation"`` solves with weights ``8 alpha``, ``4 alpha``,
        ``2 alpha`` and then ``alpha``, each stage started from the codes of
        the previous one (the earlier stages to a loose tolerance of
        ``1e-2``; see :ref:`the user guide <coding_l1_start>`): atoms enter
        gradually, which gives a lower error at the same sparsity than the
        zero start on image patches, at 1-1.2x its coding time for CEL0
        (l1/2 codes faster). ``None`` starts from zero codes.
        ``"l1"`` first solves the lasso with half the l1 weight whose
        zeroing threshold equals the penalty's (``sqrt(2 alpha) / 2`` for
        l0 and unit-norm CEL0) and starts from its codes; about as accurate
        as the continuation, at 2-3x the coding time. Ignored for
        ``penalty="l1"`` (convex: one minimiser).
    n_jobs : int, default=None
        Threads of the CPU coder (numba); ``None`` keeps numba's setting,
        ``-1`` uses all cores.

    Attributes
    ----------
    n_components_ : int
        Number of atoms.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit` (string column names only).

    See Also
    --------
    LqDictionaryLearning : Learn the dictionary with the same penalties.
    sklearn.decomposition.SparseCoder : Lasso and greedy coders.

    References
    ----------
    .. [1] I. Rentzeperis, L. Calatroni, L. U. Perrinet, D. Prandi, "Beyond l1
       sparse coding in V1", PLOS Comput. Biol. 19(9), e1011459, 2023.
    .. [2] E. Soubies, L. Blanc-Feraud, G. Aubert, "A continuous exact l0
       penalty (CEL0) for least squares regularized problem", SIAM J. Imaging
       Sci. 8(3), 2015.
    .. [3] Z. Xu, X. Chang, F. Xu, H. Zhang, "L1/2 regularization: a
       thresholding representation theory and a fast solver", IEEE TNNLS
       23(7), 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.coding import LqSparseCoder
    >>> rng = np.random.RandomState(0)
    >>> dictionary = rng.standard_normal((20, 10))
    >>> dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    >>> X = 3 * dictionary[[2, 7]] + 2 * dictionary[[5, 11]]
    >>> coder = LqSparseCoder(dictionary, penalty="cel0", alpha=0.5)
    >>> codes = coder.fit_transform(X)
    >>> codes.shape
    (2, 20)
    >>> [np.flatnonzero(row).tolist() for row in codes]
    [[2, 5], [7, 11]]
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # Each row is coded on its own (own stopping test). Read by
    # distributed.map_rows.
    _row_independent_methods = frozenset({"transform", "inverse_transform"})

    _parameter_constraints: dict = {
        "dictionary": ["array-like"],
        **_CODING_CONSTRAINTS,
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "algorithm": [StrOptions({"fista", "ista"})],
        "warm_start": ["boolean"],
        "init": _INIT_OPTIONS,
    }

    def __init__(
        self,
        dictionary,
        *,
        penalty="cel0",
        alpha=1.0,
        max_iter=500,
        tol=1e-4,
        algorithm="fista",
        warm_start=False,
        init="continuation",
        n_jobs=None,
    ):
        self.dictionary = dictionary
        self.penalty = penalty
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.algorithm = algorithm
        self.warm_start = warm_start
        self.init = init
        self.n_jobs = n_jobs

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and check ``X`` against the dictionary.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, only used for validation.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The estimator itself.
        """
        X = validate_data(self, X)
        dictionary = self._dictionary_in(X)
        self.n_components_ = dictionary.shape[0]
        self._cache_for(dictionary, get_namespace(X))
        return self

    def _dictionary_in(self, X):
        """The dictionary in the namespace and dtype of ``X``, checked."""
        xp = get_namespace(X)
        dictionary = _checked_dictionary(self.dictionary, xp, X,
                                         type(self).__name__)
        if dictionary.shape[1] != X.shape[1]:
            raise ValueError(
                "Dictionary and X have different numbers of features: "
                f"dictionary.shape={tuple(dictionary.shape)}, X.shape="
                f"{tuple(X.shape)}."
            )
        if dictionary.dtype != X.dtype:
            dictionary = xp.astype(dictionary, X.dtype)
        return dictionary

    def _coding_parameters(self):
        return self.max_iter, self.tol, self.algorithm, self.init

    def transform(self, X, y=None):
        """Encode ``X`` as sparse combinations of the dictionary atoms.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals, NumPy (CPU) or CuPy (GPU).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        codes : array of shape (n_samples, n_atoms)
            Sparse codes, in the namespace and dtype of ``X``.
        """
        validate_estimator_params(self)
        X = validate_data(self, X, reset=False)
        xp = get_namespace(X)
        dictionary = self._dictionary_in(X)
        check_allocation(
            _coding_bytes(X.shape[0], dictionary.shape[0], X.shape[1],
                          _itemsize(X, xp)),
            parameter="the rows of X (code them in batches) or the atoms of dictionary",
            what="Coding X over the dictionary would",
            xp=xp)
        if getattr(self, "n_components_", None) != dictionary.shape[0]:
            self.n_components_ = dictionary.shape[0]
        start = None
        previous = getattr(self, "_last_codes", None)
        if (
            self.warm_start
            and previous is not None
            and tuple(previous.shape) == (X.shape[0], dictionary.shape[0])
            and get_namespace(previous) is xp
        ):
            start = xp.astype(previous, X.dtype)
        codes = self._transform(X, dictionary, start)
        if self.warm_start:
            self._last_codes = codes
        return codes

    def inverse_transform(self, X):
        """Rebuild signals from codes: ``X @ dictionary``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_atoms)
            Codes.

        Returns
        -------
        array of shape (n_samples, n_features)
            Reconstructed signals.
        """
        X = check_array_argument(X, "X", ndim=2, caller="inverse_transform")
        xp = get_namespace(X)
        dictionary = _checked_dictionary(self.dictionary, xp, X,
                                         type(self).__name__)
        if X.shape[1] != dictionary.shape[0]:
            raise ValueError(
                f"inverse_transform: X has {X.shape[1]} columns but the "
                f"dictionary has {dictionary.shape[0]} atoms; pass codes of shape "
                f"(n_samples, {dictionary.shape[0]})."
            )
        return X @ xp.astype(dictionary, X.dtype)

    @property
    def _n_features_out(self):
        return self.dictionary.shape[0]


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # The dictionary is a constructor parameter, stored unchanged, so it
        # stays in the namespace the user gave it; scikit-learn's array API
        # checks expect every array attribute to follow X. CuPy (or any
        # array API) input works when the dictionary comes from the same
        # library (tested on array-api-strict in tests/coding).
        tags.array_api_support = False
        return tags


class LqDictionaryLearning(_BaseLqCoding):
    """Mini-batch dictionary learning with l1, l0, l1/2 or CEL0 sparse codes.

    Alternates, on each mini-batch ``X_b``, sparse coding over the current
    dictionary (the coder of :class:`LqSparseCoder`, with the same start and
    stopping rule) and one projected gradient step on
    ``0.5 ||X_b - C D||_F^2`` with respect to the atoms, followed by
    renormalising every atom to unit norm (the "Hebbian" learning of
    Olshausen & Field used by Rentzeperis et al., 2023, with the step scaled by
    the batch's Lipschitz constant instead of a hand-tuned rate). Learning
    stops early as in :class:`sklearn.decomposition.MiniBatchDictionaryLearning`:
    when the atoms stop moving (``tol``) or the smoothed batch objective stops
    improving (``max_no_improvement``).

    Parameters
    ----------
    n_components : int, default=None
        Number of atoms; ``None`` means ``n_features``.
    penalty : {"l1", "l0", "l1/2", "cel0"}, default="cel0"
        Penalty of the codes.
    alpha : float, default=1.0
        Penalty weight (scale of ``0.5 ||x||^2``).
    max_iter : int, default=100
        Most passes (epochs) over the training data in :meth:`fit`; a
        :class:`~sklearn.exceptions.ConvergenceWarning` says when they run
        out before either stopping rule is met.
    tol : float, default=1e-3
        Stop once a mini-batch step moves the atoms by at most ``tol``:
        ``||D_new - D||_F / n_components <= tol`` (scikit-learn's rule).
        0 disables it.
    max_no_improvement : int or None, default=10
        Stop once this many consecutive mini-batches do not lower the
        exponentially weighted average of the batch objective (weight
        ``batch_size / (n_samples + 1)``, as scikit-learn). ``None``
        disables it.
    batch_size : int, default=256
        Samples per mini-batch.
    learning_rate : float, default=1.0
        Fraction of the batch's full gradient step ``1 / ||C||_2**2`` taken on
        the atoms (1 minimises the batch loss along the gradient; smaller
        values average over more batches).
    transform_max_iter : int, default=500
        Most coding iterations per sample, during learning and in
        :meth:`transform` (``max_iter`` of :class:`LqSparseCoder`).
    transform_tol : float, default=1e-4
        Stopping rule of the coding (``tol`` of :class:`LqSparseCoder`: a
        duality gap for l1, the relative change of the codes otherwise).
    transform_algorithm : {"fista", "ista"}, default="fista"
        Coding iteration (``algorithm`` of :class:`LqSparseCoder`).
    transform_init : {"continuation", "l1"} or None, default="continuation"
        Start of the non-convex coders (``init`` of :class:`LqSparseCoder`;
        see :ref:`the user guide <coding_l1_start>`).
    shuffle : bool, default=True
        Shuffle the samples before each epoch.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial atoms (drawn from the data) and of the shuffling.
    verbose : int, default=0
        0: silent; 1: progress bar over epochs; 2: plus one line per epoch.
    n_jobs : int, default=None
        Threads of the CPU coder (numba).

    Attributes
    ----------
    components_ : array of shape (n_components, n_features)
        Unit-norm atoms, in the namespace and dtype of the training data.
    n_components_ : int
        Number of atoms.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit` (string column names only).
    n_iter_ : int
        Epochs started by :meth:`fit` (the last one may be partial when a
        stopping rule was met inside it).
    n_steps_ : int
        Mini-batch updates done so far (:meth:`fit` and :meth:`partial_fit`).
    loss_curve_ : list of float
        Mean per-sample objective of each mini-batch, before its update.
    atom_usage_ : ndarray of shape (n_components,)
        Fraction of the samples of the last epoch (or last
        :meth:`partial_fit` batch) that used each atom; zeros are dead atoms.

    See Also
    --------
    LqSparseCoder : Code data over a fixed dictionary.
    sklearn.decomposition.MiniBatchDictionaryLearning : Lasso dictionary learning.

    References
    ----------
    .. [1] I. Rentzeperis, L. Calatroni, L. U. Perrinet, D. Prandi, "Beyond l1
       sparse coding in V1", PLOS Comput. Biol. 19(9), e1011459, 2023.
    .. [2] B. A. Olshausen, D. J. Field, "Sparse coding with an overcomplete
       basis set: a strategy employed by V1?", Vision Research 37(23), 1997.
    .. [3] J. Mairal, F. Bach, J. Ponce, G. Sapiro, "Online dictionary
       learning for sparse coding", ICML 2009.

    Examples
    --------
    >>> from sparsesolve.coding import LqDictionaryLearning
    >>> from sparsesolve.datasets import make_image_patches
    >>> X = make_image_patches(patch_size=(8, 8), n_patches=500, random_state=0)
    >>> learner = LqDictionaryLearning(32, penalty="cel0", alpha=0.05,
    ...                                random_state=0).fit(X)
    >>> learner.components_.shape
    (32, 64)
    >>> learner.n_iter_ < learner.max_iter  # stopped early
    True
    >>> learner.transform(X[:3]).shape
    (3, 32)
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # Each row is coded on its own over the learned atoms. Read by
    # distributed.map_rows.
    _row_independent_methods = frozenset({"transform"})

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        **_CODING_CONSTRAINTS,
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_no_improvement": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "transform_tol": [Interval(Real, 0, None, closed="left")],
        "transform_algorithm": [StrOptions({"fista", "ista"})],
        "transform_init": _INIT_OPTIONS,
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    _coding_parameter_names = ("transform_max_iter", "transform_tol")

    def __init__(
        self,
        n_components=None,
        *,
        penalty="cel0",
        alpha=1.0,
        max_iter=100,
        tol=1e-3,
        max_no_improvement=10,
        batch_size=256,
        learning_rate=1.0,
        transform_max_iter=500,
        transform_tol=1e-4,
        transform_algorithm="fista",
        transform_init="continuation",
        shuffle=True,
        random_state=None,
        verbose=0,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.penalty = penalty
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol
        self.transform_algorithm = transform_algorithm
        self.transform_init = transform_init
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    def _coding_parameters(self):
        return (self.transform_max_iter, self.transform_tol,
                self.transform_algorithm, self.transform_init)

    def _dictionary_in(self, X):
        # copy=False: the same array (and so the same cached Gram matrix)
        # while X has the dtype of the atoms.
        return get_namespace(X).astype(self.components_, X.dtype, copy=False)

    @staticmethod
    def _zero_codes(batch, dictionary, xp):
        return xp.zeros((batch.shape[0], dictionary.shape[0]), dtype=batch.dtype,
                        device=array_api_compat.device(batch))

    def _initialize(self, X, xp, random_state):
        n_samples, n_features = X.shape
        n_components = self.n_components or n_features
        # Atoms (host draw and device copy), their Gram matrix and the codes
        # of one batch, before any of them is allocated.
        batch = min(self.batch_size, n_samples)
        check_allocation(
            8 * n_components * n_features
            + _coding_bytes(batch, n_components, n_features, _itemsize(X, xp)),
            parameter="n_components", value=self.n_components,
            what=(f"{n_components} atoms of {n_features} features"
                  + (" (n_components=None means n_features)"
                     if self.n_components is None else "")), xp=xp)
        # Random training samples as first atoms (drawn on the host so CPU
        # and GPU runs start alike); Gaussian atoms fill in when there are
        # fewer samples than atoms or a drawn sample is flat.
        chosen = random_state.choice(n_samples, size=min(n_samples, n_components),
                                     replace=False)
        atoms = random_state.standard_normal((n_components, n_features))
        # Only the chosen rows travel to the host.
        atoms[: chosen.size] = to_numpy(
            xp.take(X, to_namespace(chosen, xp, like=X), axis=0))
        norms = np.linalg.norm(atoms, axis=1)
        flat = norms < 1e-10 * max(float(norms.max()), 1.0)
        atoms[flat] = random_state.standard_normal((int(flat.sum()), n_features))
        atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
        self.components_ = to_namespace(atoms, xp, like=X)
        self.components_ = xp.astype(self.components_, X.dtype)
        self.n_components_ = n_components
        self.n_steps_ = 0
        self.loss_curve_ = []
        self.atom_usage_ = xp.zeros(n_components, dtype=X.dtype,
                                    device=array_api_compat.device(X))

    def _update(self, batch, xp, scale=1.0):
        """Code one batch and take one step on the atoms.

        ``batch`` is normalised (divided by ``scale``, see :func:`_normalised`)
        and coded with the weight in those units, so the atoms learned from
        ``s X`` are those learned from ``X`` (with ``alpha`` scaled as the
        penalty's degree). Returns the codes (normalised), the move
        ``||D_new - D||_F / n_components`` (the quantity scikit-learn's
        ``tol`` bounds) and the batch objective in normalised units; the
        loss curve records it in the units of the data.
        """
        degree = _PENALTY_DEGREE[self.penalty]
        with np.errstate(over="ignore", divide="ignore"):
            alpha = min(float(np.float64(self.alpha) / np.float64(scale) ** degree),
                        _ALPHA_CAP)
        dictionary = self.components_
        # Mini-batches are coded from zero codes, not from the start of
        # transform_init: on planted dictionaries the continuation's sparser
        # first codes kept l0 and CEL0 learning from recovering atoms that
        # the zero start recovers (see the user guide).
        codes, _ = self._encode(batch, dictionary,
                                _DictionaryCache(dictionary, xp), xp,
                                start=self._zero_codes(batch, dictionary, xp),
                                alpha=alpha)
        updated, residual = dictionary_step(batch, dictionary, codes,
                                            self.learning_rate, xp)
        # Atoms have unit norm here, so CEL0's atom norms are ones.
        loss = 0.5 * xp.sum(residual * residual, axis=1) + penalty_value(
            codes, self.penalty, alpha, xp)
        loss = float(xp.mean(loss))
        with np.errstate(over="ignore", under="ignore"):
            # In the units of the data: beyond |X| ~ 1e154 this is inf.
            self.loss_curve_.append(float(np.float64(loss) * np.float64(scale) ** 2))
        self.components_ = normalize_rows(updated, xp)
        self.n_steps_ += 1
        move = float(xp.linalg.vector_norm(self.components_ - dictionary))
        return codes, move / dictionary.shape[0], loss

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` with mini-batch passes.

        Passes continue until a stopping rule is met (``tol``,
        ``max_no_improvement``) or ``max_iter`` epochs have run.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training signals, NumPy (CPU) or CuPy (GPU).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if is_dask_collection(X):
            return fit_distributed(self, X, y)
        X = validate_data(self, X)
        xp = get_namespace(X)
        X, _, scale = _normalised(X, xp, self.penalty, self.alpha)
        random_state = check_random_state(self.random_state)
        self._initialize(X, xp, random_state)
        n_samples = X.shape[0]
        batch_size = min(self.batch_size, n_samples)
        stopping = _EarlyStopping(self.tol, self.max_no_improvement,
                                  batch_size / (n_samples + 1))
        self.n_iter_ = 0
        with kernel_threads(self.n_jobs, xp), Progress(
            self.max_iter, self.verbose, desc="LqDictionaryLearning"
        ) as progress:
            while self.n_iter_ < self.max_iter and not stopping.converged:
                self.n_iter_ += 1
                order = (random_state.permutation(n_samples) if self.shuffle
                         else np.arange(n_samples))
                order = to_namespace(order, xp, like=X)
                usage = None
                first_step = self.n_steps_
                seen = 0
                for start in range(0, n_samples, batch_size):
                    batch = xp.take(X, order[start:start + batch_size], axis=0)
                    codes, move, loss = self._update(batch, xp, scale)
                    used = xp.sum(xp.astype(codes != 0, X.dtype), axis=0)
                    usage = used if usage is None else usage + used
                    seen += batch.shape[0]
                    if stopping.update(loss, move):
                        break
                self.atom_usage_ = usage / seen
                progress.update(
                    loss=float(np.mean(self.loss_curve_[first_step:])),
                    dead_atoms=float(xp.sum(xp.astype(self.atom_usage_ == 0,
                                                      xp.int32))),
                )
        if not stopping.converged:
            warnings.warn(
                f"LqDictionaryLearning did not converge within max_iter="
                f"{self.max_iter} epochs (tol={self.tol}, max_no_improvement="
                f"{self.max_no_improvement}); increase max_iter.",
                ConvergenceWarning,
                stacklevel=2,
            )
        # Gram matrix and step of the final dictionary, built here so that
        # transform only reads the estimator (scikit-learn's
        # check_dict_unchanged).
        self._cache_for(self._dictionary_in(X), get_namespace(X))
        return self

    def partial_fit(self, X, y=None):
        """Update the dictionary with one mini-batch step on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One mini-batch of signals.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first_call = not hasattr(self, "components_")
        if first_call:
            validate_estimator_params(self)
        X = validate_data(self, X, reset=first_call)
        xp = get_namespace(X)
        # Each batch is normalised on its own: the atoms do not depend on
        # the scale of the data, only the codes and the loss do.
        X, _, scale = _normalised(X, xp, self.penalty, self.alpha)
        if first_call:
            self._random_state = check_random_state(self.random_state)
            self._initialize(X, xp, self._random_state)
            self.n_iter_ = 0
        elif get_namespace(self.components_) is not xp:
            raise TypeError(
                "LqDictionaryLearning.partial_fit got X from another array "
                "library than the one it was first fitted on."
            )
        with kernel_threads(self.n_jobs, xp):
            codes, _, _ = self._update(xp.astype(X, self.components_.dtype), xp,
                                       scale)
        self.atom_usage_ = xp.sum(xp.astype(codes != 0, X.dtype), axis=0) / X.shape[0]
        self._cache_for(self._dictionary_in(X), xp)
        return self

    def transform(self, X):
        """Sparse codes of ``X`` over the learned atoms.

        The codes of :class:`LqSparseCoder` with ``components_`` as its
        dictionary and ``transform_*`` as its ``max_iter``, ``tol``,
        ``algorithm`` and ``init``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals.

        Returns
        -------
        codes : array of shape (n_samples, n_components)
            Codes in the namespace and dtype of ``X``.
        """
        check_is_fitted(self)
        check_same_device(X, self, attribute="components_", method="transform")
        X = validate_data(self, X, reset=False)
        return self._transform(X, self._dictionary_in(X))

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        tags.non_deterministic = False
        return tags


class _EarlyStopping:
    """The two stopping rules of mini-batch dictionary learning.

    As scikit-learn's ``MiniBatchDictionaryLearning``: the atoms stopped
    moving (``move <= tol``), or ``max_no_improvement`` consecutive batches
    did not lower the exponentially weighted average of the batch objective.
    The first step is not judged.
    """

    def __init__(self, tol, max_no_improvement, weight):
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.weight = min(weight, 1.0)
        self.steps = 0
        self.average = None
        self.best = None
        self.no_improvement = 0
        self.converged = False

    def update(self, batch_loss, move):
        """Record one step; return True once a rule is met."""
        self.steps += 1
        if self.steps == 1:
            # The first step starts from atoms drawn from the data, not from
            # a learned dictionary: its move and loss say nothing yet.
            return False
        if self.average is None:
            self.average = batch_loss
        else:
            self.average = (1 - self.weight) * self.average + self.weight * batch_loss
        if self.tol > 0 and move <= self.tol:
            self.converged = True
        if self.best is None or self.average < self.best:
            self.best = self.average
            self.no_improvement = 0
        else:
            self.no_improvement += 1
        if (self.max_no_improvement is not None
                and self.no_improvement >= self.max_no_improvement):
            self.converged = True
        return self.converged
