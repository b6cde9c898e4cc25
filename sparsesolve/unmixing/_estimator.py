"""RobustUnmixing: the scikit-learn estimator."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from .._backend import get_namespace, to_namespace, to_numpy
from .._docs import API_PAGE
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import (
    check_finite,
    check_is_fitted,
    check_real,
    check_same_device,
    power_of_two_scale_of,
    validate_data,
)
from ..distributed._dispatch import fit_distributed, is_dask_collection
from ._algorithm import band_noise_levels, robust_unmixing
from ._fcls import fcls
from ._metrics import cube_to_pixels
from ._vca import vca

__all__ = ["RobustUnmixing"]

# Bands whose estimated noise exceeds this multiple of the median band noise
# are left out of the VCA initialisation (they would attract VCA to outlier
# pixels); the robust loss handles them afterwards.
_NOISY_BAND_FACTOR = 3.0


# Share of pixels sitting exactly on a band's extreme value above which the
# band is taken as dead or saturated.
_CLIPPED_SHARE = 0.05


class RobustUnmixing(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Blind hyperspectral unmixing robust to corrupted bands, with l_p sparsity.

    Factorises pixel spectra ``X ~ A E`` into nonnegative endmembers ``E``
    and abundances ``A`` on the probability simplex (nonnegative, summing to
    one), minimising

    .. math::

        \\frac{N}{2} \\sum_l \\log \\|x_l - A e_l\\|_2^2
        + \\alpha \\sum_n h_n \\sum_k (A_{nk} + \\epsilon)^p + \\gamma \\|h\\|^2

    where ``x_l`` is band ``l`` over all pixels and ``N`` the number of
    pixels. The data term (``loss="log"``) is the Gaussian likelihood with an
    unknown noise level per band, maximised over those levels: a band that
    no endmember mixture can explain (water absorption, striping, a hot,
    dead or saturated detector) is weighted by its inverse residual variance,
    so it cannot drag the fit. ``loss="l21"`` is the l2,1 norm over bands of
    RRLbS (weights the inverse residual norm, milder) and ``loss="l2"`` least
    squares; both are normalised by the noise level of a typical band,
    estimated at the start, so that no term depends on the scale of the
    data. ``h`` is a per-pixel guidance
    map that sets how strongly each pixel is pushed towards purity; with
    ``guidance="learned"`` it is learned jointly (a sparse map on the scaled
    simplex), with ``"uniform"`` it is fixed to one (the L1/2-NMF penalty). The
    updates are block majorise-minimise steps: each iteration solves a
    simplex-constrained quadratic program per pixel exactly for ``A``
    (reweighted least squares plus the tangent of the penalty), then exact
    coordinate steps for ``E``, so the objective never increases
    (:attr:`objective_`) and a fit never ends above its VCA + FCLS start.

    The model follows the robust representation and learning-based sparsity
    (RRLbS) idea of Zhu et al.; their paper's update equations were not
    available, and these updates are our own derivation (see the user guide).

    Parameters
    ----------
    n_endmembers : int, default=3
        Number of endmembers (materials).
    p : float in (0, 1], default=0.5
        Exponent of the sparsity penalty. With abundances summing to one,
        ``p=1`` is a constant and does nothing; ``p=0.5`` is the usual choice.
    alpha : float >= 0, default=20.0
        Weight of the sparsity penalty per pixel. The data term is normalised
        by the noise level estimated at the start (one unit per typical band
        and pixel), so ``alpha`` means the same at any data scale, image size
        or noise level. Besides favouring pure pixels it keeps the simplex
        from growing around the noise, which matters most for nearly collinear
        endmembers.
    loss : {"log", "l21", "l2"}, default="log"
        ``"log"``: ``(N/2)`` times the sum over bands of the log residual
        norm, the Gaussian likelihood with an unknown noise variance per band
        maximised over those variances: each band is weighted by its inverse
        residual variance, so corrupted bands count very little.
        ``"l21"``: sum over bands of the residual norms (the l2,1 loss of
        RRLbS; corrupted bands count with the inverse residual norm).
        ``"l2"``: half the squared Frobenius norm (L1/2-NMF).
    guidance : {"learned", "uniform"} or None, default="learned"
        Per-pixel weighting of the sparsity penalty; ``None`` drops it.
    guidance_sharpness : float > 0, default=1.0
        ``alpha / (2 gamma)``: larger values make the learned guidance map
        sparser (only the purest pixels pushed towards purity).
    init : {"vca", "random"}, default="vca"
        Start: VCA endmembers on the bands that look clean (per-band noise
        estimate, plus dead or saturated bands), FCLS abundances; or random
        pixels and random abundances.
    n_init : int, default=10
        Number of VCA draws (random directions) tried for ``init="vca"``; the
        one whose FCLS abundances reconstruct the clean bands best is the
        start.
    max_iter : int, default=300
        Maximum number of outer iterations.
    tol : float >= 0, default=1e-3
        Stop when the decrease still expected (the last decrease extrapolated
        with the observed ratio of successive decreases) is below ``tol``
        times the decrease achieved since the start.
    random_state : int, RandomState instance or None, default=None
        Seeds VCA's random directions or the random start (drawn on the host
        and moved to the data's device).
    verbose : int, default=0
        0 silent, 1 progress bar, 2 one line per iteration.

    Attributes
    ----------
    endmembers_ : array of shape (n_endmembers, n_bands)
        Learned endmember spectra. Rows of corrupted bands hold whatever fits
        them best and carry no meaning.
    abundances_ : array of shape (n_pixels, n_endmembers), or maps
        (n_rows, n_cols, n_endmembers) when fitted on a cube.
        Abundances of the training pixels at the end of the updates (on the
        simplex, including the sparsity penalty; :meth:`transform` gives the
        plain weighted FCLS abundances for the learned endmembers).
    guidance_map_ : array of shape (n_pixels,) or (n_rows, n_cols)
        Guidance value of each training pixel (all ones unless
        ``guidance="learned"``); zero marks highly mixed pixels.
    band_weights_ : array of shape (n_bands,)
        Final weight of each band in the fit, relative to a typical band's
        (about 1 for typical bands, small for corrupted ones; all ones for
        ``loss="l2"``). :meth:`transform` uses them.
    objective_ : array of shape (n_iter + 1,)
        Objective value at the start and after every iteration (float64, in
        the namespace of the training data).
    n_iter_ : int
        Number of iterations run.
    n_features_in_ : int
        Number of bands seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_bands,)
        Band names seen during :meth:`fit`, when ``X`` had string column names.

    Notes
    -----
    ``fit`` runs host BLAS on one thread (through threadpoolctl): the
    products have only ``n_endmembers`` columns, and multi-threaded BLAS
    spends far more CPU on them than it saves.

    See Also
    --------
    fcls : Exact abundances for given endmembers.
    vca : Endmembers picked among the pixels.
    sklearn.decomposition.NMF : Nonnegative factorisation without sum-to-one
        or robust loss.

    References
    ----------
    F. Zhu, Y. Wang, B. Fan, G. Meng, C. Pan, "Effective spectral unmixing via
    robust representation and learning-based sparsity", arXiv:1409.0685, 2014.

    Y. Qian, S. Jia, J. Zhou, A. Robles-Kelly, "Hyperspectral unmixing via
    L1/2 sparsity-constrained nonnegative matrix factorization", IEEE TGRS
    49(11), 2011.

    Examples
    --------
    >>> from sparsesolve.datasets import make_hyperspectral
    >>> from sparsesolve.unmixing import RobustUnmixing, cube_to_pixels
    >>> cube, endmembers, abundances, _ = make_hyperspectral(
    ...     20, 20, n_endmembers=3, n_bands=60, random_state=0)
    >>> model = RobustUnmixing(n_endmembers=3, random_state=0).fit(
    ...     cube_to_pixels(cube))
    >>> model.endmembers_.shape
    (3, 60)
    >>> A = model.transform(cube_to_pixels(cube))
    >>> bool(abs(A.sum(axis=1) - 1).max() < 1e-6 and A.min() >= 0)
    True
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # FCLS per pixel and a product per pixel. Read by distributed.map_rows.
    _row_independent_methods = frozenset({"transform", "inverse_transform"})

    _parameter_constraints: dict = {
        "n_endmembers": [Interval(Integral, 1, None, closed="left")],
        "p": [Interval(Real, 0, 1, closed="right")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "loss": [StrOptions({"log", "l21", "l2"})],
        "guidance": [StrOptions({"learned", "uniform"}), None],
        "guidance_sharpness": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions({"vca", "random"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_endmembers=3,
        *,
        p=0.5,
        alpha=20.0,
        loss="log",
        guidance="learned",
        guidance_sharpness=1.0,
        init="vca",
        n_init=10,
        max_iter=300,
        tol=1e-3,
        random_state=None,
        verbose=0,
    ):
        self.n_endmembers = n_endmembers
        self.p = p
        self.alpha = alpha
        self.loss = loss
        self.guidance = guidance
        self.guidance_sharpness = guidance_sharpness
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _n_features_out(self):
        return self.endmembers_.shape[0]

    def _clean_band_mask(self, X):
        """Bands whose estimated noise is not far above the typical band's."""
        n_pixels, n_bands = X.shape
        if n_pixels <= 2 * n_bands or n_bands < 3:
            # Too few pixels to regress a band on the others reliably.
            return np.ones(n_bands, dtype=bool)
        noise = to_numpy(band_noise_levels(X, get_namespace(X)))
        clean = noise <= _NOISY_BAND_FACTOR * np.median(noise)
        # Dead (constant) and saturated (clipped) bands look noise-free to
        # the regression test; they are recognised by repeated values.
        values = to_numpy(X)
        top = values.max(axis=0)
        bottom = values.min(axis=0)
        clipped = np.maximum((values == top).mean(axis=0),
                             (values == bottom).mean(axis=0))
        clean &= clipped < _CLIPPED_SHARE
        if clean.sum() < self.n_endmembers:
            return np.ones(n_bands, dtype=bool)
        return clean

    def _initialise(self, X, xp, rng):
        n_pixels, n_bands = X.shape
        k = self.n_endmembers
        if self.init == "vca":
            clean = self._clean_band_mask(X)
            clean_index = to_namespace(np.flatnonzero(clean), xp, like=X)
            X_clean = xp.take(X, clean_index, axis=1)
            # VCA's random directions sometimes pick a mixed pixel for one
            # material, a start the alternating fit cannot repair (it
            # settles in a nearby local minimum). Several draws, keeping the
            # one whose FCLS fit explains the clean bands best, cost little
            # (one VCA + FCLS each) and avoid most such starts.
            best = None
            for _ in range(self.n_init):
                _, indices = vca(X_clean, k, random_state=rng)
                candidate = xp.take(X, to_namespace(indices, xp, like=X), axis=0)
                candidate_clean = xp.take(candidate, clean_index, axis=1)
                fitted = fcls(X_clean, candidate_clean)
                error = float(xp.sum((X_clean - fitted @ candidate_clean) ** 2))
                # A draw must be better beyond rounding to replace the
                # first: the same pixels found in another order tie, and
                # rounding alone (data scaled by a non-power of two) must
                # not reorder the endmembers.
                if best is None or error < best[0] * (1.0 - 1e-9):
                    best = (error, candidate, fitted)
            _, endmembers, abundances = best
        else:
            indices = rng.choice(n_pixels, size=k, replace=False)
            endmembers = xp.take(X, to_namespace(indices, xp, like=X), axis=0)
            abundances = to_namespace(
                rng.dirichlet(np.ones(k), size=n_pixels).astype(X.dtype), xp, like=X
            )
        # Endmembers are nonnegative reflectances; a noisy pixel can have a
        # few negative values.
        endmembers = xp.clip(endmembers, 0.0, None)
        return xp.astype(abundances, X.dtype), xp.astype(endmembers, X.dtype)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn endmembers (and the guidance map and band weights) from pixels.

        Parameters
        ----------
        X : array of shape (n_pixels, n_bands) or (n_rows, n_cols, n_bands)
            Pixel spectra or an image cube, NumPy or CuPy, any scale. For a
            cube, :attr:`abundances_` and :attr:`guidance_map_` come back as
            maps of shape (n_rows, n_cols, ...).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : RobustUnmixing
            Fitted estimator.
        """
        if is_dask_collection(X):
            return fit_distributed(self, X, y)
        X, cube_shape = _as_pixels(X, "X")
        X = validate_data(self, X)
        xp = get_namespace(X)
        n_pixels, n_bands = X.shape
        if self.n_endmembers > min(n_pixels, n_bands):
            raise ValueError(
                f"n_endmembers={self.n_endmembers} must be at most min(n_samples="
                f"{n_pixels}, n_features={n_bands}) (pixels, bands) for X of shape "
                f"{tuple(X.shape)}."
            )
        if not bool(xp.any(X != 0)):
            raise ValueError(
                "X is all zeros: pixels that are all zero carry no endmember "
                "spectra to learn.")
        # The model is scale-equivariant (E scales with X, A does not, and
        # the objective is normalised by the noise level): fit at magnitude
        # one, so that squares of data at 1e300 do not overflow nor those of
        # data at 1e-300 underflow; dividing by a power of two is exact.
        scale = power_of_two_scale_of(X, xp=xp)
        X = X / scale
        rng = check_random_state(self.random_state)
        # The products have only n_endmembers columns: multi-threaded BLAS
        # gains nothing on them and, on small or busy machines, its spinning
        # threads cost tens of times more CPU (as scikit-learn's KMeans, we
        # pin host BLAS to one thread; GPU work is unaffected).
        with threadpool_limits(limits=1, user_api="blas"):
            abundances, endmembers = self._initialise(X, xp, rng)
            result = self._run(X, abundances, endmembers)
        self.endmembers_ = result["endmembers"] * scale
        self.abundances_ = _as_maps(result["abundances"], cube_shape)
        self.guidance_map_ = _as_maps(result["guidance"], cube_shape)
        self.band_weights_ = xp.astype(result["band_weights"], X.dtype)
        self.objective_ = to_namespace(np.asarray(result["objective"]), xp, like=X)
        self.n_iter_ = int(result["n_iter"])
        return self

    def _run(self, X, abundances, endmembers):
        return robust_unmixing(
            X,
            abundances,
            endmembers,
            loss=self.loss,
            guidance=self.guidance,
            p=float(self.p),
            alpha=float(self.alpha),
            guidance_sharpness=float(self.guidance_sharpness),
            max_iter=self.max_iter,
            tol=float(self.tol),
            verbose=self.verbose,
        )

    def transform(self, X):
        """Exact simplex abundances of pixels for the learned endmembers.

        Solves a fully constrained least squares problem per pixel, with the
        learned band weights (corrupted bands count little), so the rows are
        nonnegative and sum to one to rounding.

        Parameters
        ----------
        X : array of shape (n_pixels, n_bands) or (n_rows, n_cols, n_bands)
            Pixel spectra or an image cube, in the namespace the model was
            fitted in.

        Returns
        -------
        abundances : array of shape (n_pixels, n_endmembers), or maps
            (n_rows, n_cols, n_endmembers) for a cube input.
            Same namespace and floating dtype as ``X``; abundance maps for a
            cube.
        """
        check_is_fitted(self)
        X, cube_shape = _as_pixels(X, "X")
        check_same_device(X, self, attribute="endmembers_", method="transform")
        X = validate_data(self, X, reset=False)
        xp = get_namespace(X)
        endmembers = xp.astype(self.endmembers_, X.dtype)
        weights = xp.astype(self.band_weights_, X.dtype)
        return _as_maps(fcls(X, endmembers, band_weights=weights), cube_shape)

    def fit_transform(self, X, y=None):
        """Fit, then return the exact simplex abundances of ``X``.

        Parameters
        ----------
        X : array of shape (n_pixels, n_bands) or (n_rows, n_cols, n_bands)
            Pixel spectra or an image cube.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        abundances : array of shape (n_pixels, n_endmembers), or maps
            (n_rows, n_cols, n_endmembers) for a cube input.
            Same as ``fit(X).transform(X)``.
        """
        return self.fit(X, y).transform(X)

    def score(self, X, y=None):
        """Minus the reconstruction loss of ``X`` with the learned endmembers.

        Abundances come from :meth:`transform`; the loss is the data term of
        the fitted ``loss``, scaled so that folds of different sizes compare.
        For ``"l21"`` and ``"log"`` (whose band weights are refitted noise
        levels, so the robust l_2,1 term stands in for it) it is the sum over
        bands of each band's root-mean-square residual,
        ``sum_l ||x_l - A e_l||_2 / sqrt(n_pixels)``: a corrupted band costs
        its RMS, not its mean square. For ``"l2"`` it is the mean over pixels
        of ``0.5 ||x_n - a_n E||^2``. Larger is better, so ``GridSearchCV``
        and ``cross_val_score`` work with their default scorer.

        Parameters
        ----------
        X : array of shape (n_pixels, n_bands)
            Pixel spectra in the namespace the model was fitted in.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Minus the scaled reconstruction loss.
        """
        abundances = self.transform(X)
        X = validate_data(self, X, reset=False)
        xp = get_namespace(X)
        # Residuals at magnitude one (exact power-of-two scaling), so that
        # their squares neither overflow nor underflow; the loss is scaled
        # back at the end.
        scale = power_of_two_scale_of(X, self.endmembers_, xp=xp)
        endmembers = xp.astype(self.endmembers_, X.dtype) / scale
        residual = X / scale - abundances @ endmembers
        squared = residual * residual
        if self.loss == "l2":
            # A mean square of data near 1e300 is beyond float64: -inf then.
            with np.errstate(over="ignore"):
                return float(np.float64(-0.5 * float(xp.sum(squared)) / X.shape[0])
                             * scale * scale)
        return -float(xp.sum(xp.sqrt(xp.mean(squared, axis=0)))) * scale

    def inverse_transform(self, X):
        """Spectra ``X @ endmembers_`` reconstructed from abundances ``X``.

        Parameters
        ----------
        X : array of shape (n_pixels, n_endmembers)
            Abundances, for example from :meth:`transform`.

        Returns
        -------
        spectra : array of shape (n_pixels, n_bands)
            Reconstructed spectra.
        """
        check_is_fitted(self)
        xp = get_namespace(X)
        abundances = xp.asarray(X)
        check_real(abundances, "X", xp, reason="abundances are real;")
        if not xp.isdtype(abundances.dtype, "real floating"):
            abundances = xp.astype(abundances, xp.float64)
        if abundances.ndim == 2 and abundances.shape[0] < 1:
            raise ValueError("X holds no abundances (0 rows).")
        check_finite(abundances, "X", xp)
        if abundances.ndim != 2 or abundances.shape[1] != self.endmembers_.shape[0]:
            raise ValueError(
                "abundances must have shape (n_pixels, "
                f"{self.endmembers_.shape[0]}); got {tuple(abundances.shape)}."
            )
        return abundances @ xp.astype(self.endmembers_, abundances.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _as_pixels(X, name):
    """A cube (n_rows, n_cols, n_bands) as pixels, and its map shape (or None)."""
    if getattr(X, "ndim", None) == 3 and not hasattr(X, "columns"):
        n_rows, n_cols, _ = X.shape
        return cube_to_pixels(X), (n_rows, n_cols)
    return X, None


def _as_maps(values, cube_shape):
    """Per-pixel results back in the cube's (n_rows, n_cols, ...) shape."""
    if cube_shape is None:
        return values
    xp = get_namespace(values)
    return xp.reshape(values, cube_shape + tuple(values.shape[1:]))
