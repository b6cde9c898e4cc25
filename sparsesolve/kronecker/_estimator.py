"""Kronecker-structured sparse Bayesian learning as a scikit-learn transformer."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)

from .._backend import get_namespace, to_namespace, to_numpy
from .._docs import API_PAGE
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import (
    check_allocation,
    check_is_fitted,
    check_same_device,
    power_of_two_scale_of,
    validate_data,
)
from ..utils._device import HostCopyMixin
from ._algorithm import (
    _dense_columns,
    log_evidence_on_support,
    posterior_on_support,
    sparse_bayesian_learning,
)
from ._entries import (
    addition_gains,
    cost_from_log_evidence,
    entry_penalty,
    refine_entries,
)
from ._moves import slab_penalty
from ._offgrid import find_peaks, periods, refine_directions
from ._operator import _check_factors
from ._posterior import dense_posterior, kron_vector

__all__ = ["KroneckerSBL"]

# Relative pruning thresholds of the reference implementation, per method,
# for known and for learned noise variance (learning the noise makes early
# variances less reliable, hence the gentler thresholds).
_AUTO_PRUNE = {
    "svd": (1e-3, 5e-4),
    "am": (1e-2, 5e-3),
    "classic": (1e-3, 1e-3),
}


# Most grid entries the free prior may add beyond the Kronecker candidates.
_MAX_ADDITIONS = 8
# Fixed-point iterations after each addition (a warm start: few are needed).
_ADDITION_ITER = 40


class KroneckerSBL(
    HostCopyMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Sparse Bayesian learning with a Kronecker-structured dictionary and prior.

    Recovers sparse codes ``x`` from measurements
    ``y = (A_1 ⊗ A_2 ⊗ ⋯ ⊗ A_I) x + noise`` when the support of ``x`` is
    itself a Kronecker product of per-mode supports (as for the angular
    channel of an IRS-aided MIMO link, or a sparse tensor measured mode by
    mode). The prior variance is ``gamma = gamma_1 ⊗ ⋯ ⊗ gamma_I``, learned
    by expectation-maximisation (type-II maximum likelihood). The E-step
    works on the per-mode factors only, so the ``M x N`` dictionary and the
    ``N x N`` posterior covariance are never formed (except for
    ``method="classic"``, the unstructured baseline).

    Read more in the :ref:`User Guide <kronecker>`.

    Parameters
    ----------
    dictionaries : list of arrays of shape (m_i, n_i)
        The factors ``A_i``, real or complex, mode 1 first: a code ``x`` of
        length ``N = prod(n_i)`` is the C-ordered flattening of a tensor of
        shape ``(n_1, ..., n_I)``, as in ``np.kron(A_1, np.kron(A_2, A_3))``.
        Measurements have length ``M = prod(m_i)``.
    method : {"svd", "am", "classic"}, default="svd"
        M-step. ``"svd"`` (SVD-KroSBL) fits the Kronecker prior to the
        unconstrained update by sequential rank-1 approximation: fastest and
        usually the most accurate. ``"am"`` (AM-KroSBL) minimises the SBL
        cost over one factor at a time; it comes with a convergence
        guarantee. ``"classic"`` is unstructured SBL with one variance per
        coefficient on the dense dictionary (``O(M N)`` memory; a baseline).
    noise_variance : float or None, default=None
        Variance of the (complex: circular) Gaussian noise per measurement.
        ``None`` learns it by EM, starting from a tenth of the variance of
        the measurements.
    max_iter : int, default=150
        Maximum number of EM iterations.
    tol : float or "auto", default="auto"
        Stop when ``||gamma_new - gamma_old|| / ||gamma_old|| < tol``,
        measured on the full zero-filled variance vector. ``"auto"``: 1e-4,
        or 1e-3 with ``steering`` (the grid stage then only has to place
        each source within a cell; the off-grid step estimates it).
    prune_threshold : float in [0, 1) or "auto", default="auto"
        At the start of each iteration, drop the grid points of a mode whose
        variance is below ``prune_threshold`` times the largest of that mode
        (for ``"classic"``: of the whole vector). Pruning is irreversible.
        ``"auto"``: 1e-3 for "svd", 1e-2 for "am" and 1e-3 for "classic"
        (halved for "svd" and "am" when the noise variance is learned).
        ``0`` disables pruning.
    coupling : float, list of (float or None), or None, default=None
        Pattern coupling (PC-KroSBL) for modes whose support is clustered
        (angle spread): the mode's variance is constrained to
        ``eps + C_beta g`` with ``g >= 0`` and ``C_beta`` tridiagonal with ones
        on the diagonal and ``beta`` beside it. A float couples every mode
        with that ``beta``; a list gives ``beta`` (or ``None``) per mode.
        Not available with ``method="classic"``.
    refine : bool or "auto", default="auto"
        ``"auto"``: ``True`` without ``steering``, ``False`` with it (an
        off-grid source spreads over neighbouring slabs, which the slab moves
        would read as an unidentifiable support and rebuild, at a cost,
        while the off-grid step and the per-entry prior handle it). After EM,
        polish the support by exact marginal-likelihood slab moves
        (in the spirit of Tipping and Faul's fast marginal likelihood, at the
        level of one grid point of one mode): a pruned slab is re-added when
        it lowers the SBL cost by more than an extended-BIC penalty
        ``log(n_obs) + log(sum n_i)``, a slab that does not pay for itself is
        deleted, and a mode that keeps more slabs than its ``m_i``
        measurements can identify (``2 |S_i| > m_i``) is rebuilt from an
        empty support by a forward beam search. A change is kept only if the
        penalised cost decreases. This recovers weak slabs that relative
        pruning drops and escapes local optima with a wrong support in one
        mode, at a small cost (typically a few milliseconds). The noise
        variance stays at its EM value; coupled modes are left as EM learned
        them. Has no effect with ``method="classic"``. See the
        :ref:`User Guide <kronecker>`.
    prior : {"auto", "kronecker", "free"}, default="auto"
        Structure of the prior variances. ``"kronecker"``: ``gamma_1 ⊗ ⋯ ⊗
        gamma_I`` (a Kronecker support). ``"free"``: after the Kronecker fit,
        one variance per entry on its candidate set ``S_1 x ⋯ x S_I`` (the
        smallest Kronecker support that covers the data), refined by
        classical SBL on those columns only, so supports that are not
        Kronecker products (independent sources on a 2-D array) lose their
        cross terms; the dictionary formed has ``M x prod |S_i|`` entries,
        never ``M x N``. ``"auto"`` fits both and keeps the one with the
        lower type-II cost (minus the log evidence) penalised per active
        hyperparameter (extended BIC, as the slab moves); the choice is in
        ``prior_``. Ignored with ``method="classic"``, with one mode (the
        Kronecker prior is then already per entry) and, for ``"auto"``, with
        ``coupling`` (the coupled Kronecker prior is kept).
    steering : list of callables or None, default=None
        Parametric dictionary, one callable per mode:
        ``steering[i](theta)`` takes a 1-D array of parameters (angles,
        direction cosines, delays...) and returns the ``(m_i, len(theta))``
        matrix of atoms, with ``dictionaries[i] == steering[i](grids[i])``.
        When given, every separate peak of the learned power is a source
        whose parameters are refined off the grid inside ``fit`` (joint
        variable-projection least squares, each parameter within one grid
        step of its peak): ``directions_``, ``direction_std_``.
    grids : list of 1-D arrays or None, default=None
        The grid parameters of the dictionary columns per mode; required
        with ``steering``.
    random_state : int, RandomState instance or None, default=None
        Accepted for a uniform API; the EM iterations start from a fixed
        flat prior and draw no random numbers.
    verbose : int, default=0
        ``1`` shows a progress bar over EM iterations, ``2`` also prints the
        relative change and noise variance at each iteration.

    Attributes
    ----------
    coef_ : array of shape (n_samples, N), or (N,) for one measurement
        Posterior mean codes of the training measurements (zero off the
        learned support).
    gammas_ : list of arrays of shape (n_i,)
        Learned prior variances per mode, zero where pruned. Their Kronecker
        product is the prior variance of the codes (the overall scale sits
        on the last mode). For ``"classic"`` a single array of length ``N``.
    noise_variance_ : float
        The noise variance used (learned when ``noise_variance=None``).
    support_ : ndarray of bool, shape (N,)
        Grid points that survived pruning.
    posterior_variance_ : array of shape (N,)
        Marginal posterior variances ``diag(Sigma)`` of the code
        coefficients under the learned prior and noise variance (the same
        for every measurement vector); zero off the support, where the prior
        variance is zero. Their square roots are what
        ``transform(Y, return_std=True)`` returns.
    prior_ : {"kronecker", "free"}
        The prior kept (see ``prior``); ``"free"`` for ``method="classic"``.
    directions_ : ndarray of shape (n_sources, I)
        Off-grid parameters per source and mode (only with ``steering``),
        strongest source first.
    direction_std_ : ndarray of shape (n_sources, I)
        Their posterior standard deviations (Laplace approximation of the
        likelihood of the directions at its maximum, flat prior).
    source_amplitudes_ : ndarray of shape (n_samples, n_sources)
        Least-squares amplitudes of the sources at ``directions_`` per
        measurement vector.
    n_iter_ : int
        Number of EM iterations run.
    n_moves_ : int
        Slab moves (and mode rebuilds) accepted by the refinement; ``0``
        when ``refine=False`` or the EM result was already optimal for it.
    history_ : list of float
        Relative change of the variance vector at each iteration.
    n_features_in_ : int
        ``M``, the length of a measurement vector.

    See Also
    --------
    KroneckerOperator : The matrix-free operator ``A_1 ⊗ ⋯ ⊗ A_I``.
    sklearn.linear_model.ARDRegression : Unstructured, real-only relevance
        vector regression with Gamma hyperpriors.

    References
    ----------
    Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse
    vector recovery with application to IRS-MIMO channel estimation", IEEE
    Transactions on Signal Processing, 2024 (arXiv:2307.14719).

    M. E. Tipping and A. C. Faul, "Fast marginal likelihood maximisation for
    sparse Bayesian models", AISTATS, 2003 (the add / delete / re-estimate
    analysis that ``refine`` carries over to Kronecker slabs).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.datasets import make_kronecker_sparse
    >>> from sparsesolve.kronecker import KroneckerSBL
    >>> Y, factors, X = make_kronecker_sparse(
    ...     [(6, 10), (8, 10)], n_nonzero_per_mode=2, snr_db=30, random_state=0)
    >>> model = KroneckerSBL(factors).fit(Y)
    >>> model.coef_.shape
    (1, 100)
    >>> bool(np.linalg.norm(model.coef_ - X) < 0.1 * np.linalg.norm(X))
    True
    >>> codes, std = model.transform(Y, return_std=True)   # posterior mean, std
    >>> bool(np.all(np.abs(codes - X) < 4 * std + 1e-12))
    True
    >>> float(model.score(Y)) > 0                           # mean log evidence
    True
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # The posterior of each measurement vector under the learned prior is
    # independent of the others. Read by distributed.map_rows.
    _row_independent_methods = frozenset({"transform"})

    _parameter_constraints: dict = {
        "dictionaries": [list, tuple],
        "method": [StrOptions({"svd", "am", "classic"})],
        "noise_variance": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "prune_threshold": [
            Interval(Real, 0, 1, closed="left"),
            StrOptions({"auto"}),
        ],
        "coupling": [Interval(Real, 0, None, closed="left"), list, tuple, None],
        "refine": ["boolean", StrOptions({"auto"})],
        "prior": [StrOptions({"auto", "kronecker", "free"})],
        "steering": [list, tuple, None],
        "grids": [list, tuple, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        dictionaries,
        *,
        method="svd",
        noise_variance=None,
        max_iter=150,
        tol="auto",
        prune_threshold="auto",
        coupling=None,
        refine="auto",
        prior="auto",
        steering=None,
        grids=None,
        random_state=None,
        verbose=0,
    ):
        self.dictionaries = dictionaries
        self.method = method
        self.noise_variance = noise_variance
        self.max_iter = max_iter
        self.tol = tol
        self.prune_threshold = prune_threshold
        self.coupling = coupling
        self.refine = refine
        self.prior = prior
        self.steering = steering
        self.grids = grids
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    def _validate_measurements(self, Y, *, reset):
        """Return ``(Y as 2-D array, whether it was 1-D)``."""
        one_d = getattr(Y, "ndim", None) == 1 or (
            isinstance(Y, (list, tuple)) and len(Y) > 0 and np.ndim(Y[0]) == 0
        )
        if one_d:
            xp = get_namespace(Y)
            Y = xp.reshape(xp.asarray(Y), (1, -1))
        # Ask for complex support only when the data are complex: the complex
        # branch of validate_data is NumPy-only.
        if hasattr(Y, "dtype"):
            is_complex = get_namespace(Y).isdtype(Y.dtype, "complex floating")
        else:
            is_complex = np.iscomplexobj(np.asarray(Y))
        Y = validate_data(self, Y, reset=reset, allow_complex=is_complex)
        return Y, one_d

    def _factors_like(self, Y, xp):
        """Validated dictionaries, moved to the namespace and device of ``Y``."""
        factors = _check_factors(self.dictionaries, "dictionaries")
        for mode, factor in enumerate(factors):
            if not bool(get_namespace(factor).any(factor != 0)):
                raise ValueError(
                    f"dictionaries[{mode}] is all zeros: its mode measures nothing, "
                    "so no code can be recovered.")
        if get_namespace(*factors) is not xp:
            factors = [to_namespace(to_numpy(f), xp, like=Y) for f in factors]
        n_measurements = math.prod(int(f.shape[0]) for f in factors)
        if Y.shape[1] != n_measurements:
            shapes = [tuple(int(s) for s in f.shape) for f in factors]
            raise ValueError(
                f"Y has {Y.shape[1]} measurements per sample but the dictionaries "
                f"{shapes} give M = prod(m_i) = {n_measurements}; Y must have "
                f"shape (n_samples, {n_measurements}) or ({n_measurements},)."
            )
        return factors

    def _couplings(self, n_modes):
        coupling = self.coupling
        if coupling is None:
            return [None] * n_modes
        if self.prior == "free":
            raise ValueError(
                "coupling (pattern-coupled KroSBL) constrains the Kronecker "
                "prior; use prior='kronecker' or 'auto' (which keeps it) with "
                "coupling, or coupling=None with prior='free'.")
        if self.method == "classic":
            raise ValueError(
                "coupling (pattern-coupled KroSBL) needs a Kronecker prior; use "
                "method='svd' or 'am', or coupling=None with method='classic'."
            )
        if isinstance(coupling, Real):
            return [float(coupling)] * n_modes
        if len(coupling) != n_modes:
            raise ValueError(
                f"coupling must give one beta (or None) per mode: {n_modes} "
                f"values expected, got {len(coupling)}."
            )
        betas = []
        for beta in coupling:
            if beta is not None and not (isinstance(beta, Real) and beta >= 0):
                raise ValueError(
                    f"coupling values must be nonnegative numbers or None; got "
                    f"{beta!r}."
                )
            betas.append(None if beta is None else float(beta))
        return betas

    @staticmethod
    def _dtypes(Y, factors, xp):
        """Working dtype (double precision) and output dtype of the codes."""
        is_complex = xp.isdtype(Y.dtype, "complex floating") or xp.isdtype(
            factors[0].dtype, "complex floating"
        )
        single = Y.dtype in (xp.float32, xp.complex64)
        work = xp.complex128 if is_complex else xp.float64
        if is_complex:
            out = xp.complex64 if single else xp.complex128
        else:
            out = xp.float32 if single else xp.float64
        real_out = xp.float32 if single else xp.float64
        return work, out, real_out

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, Y, y=None):
        """Learn the prior variances (and noise variance) from measurements.

        Parameters
        ----------
        Y : array of shape (n_samples, M) or (M,)
            Measurements, real or complex; NumPy runs on the CPU, CuPy on the
            GPU. All samples share one prior (multiple measurement vectors).
        y : None
            Ignored.

        Returns
        -------
        self : KroneckerSBL
            The fitted estimator.
        """
        Y, one_d = self._validate_measurements(Y, reset=True)
        xp = get_namespace(Y)
        factors = self._factors_like(Y, xp)
        couplings = self._couplings(len(factors))
        if self.steering is not None:
            self._check_steering(factors)  # fail before the EM, not after
        work, out, real_out = self._dtypes(Y, factors, xp)
        self._check_memory(factors, Y, work, xp)
        # Double precision inside: diag(Sigma) = gamma - (...) cancels badly
        # in single precision at high SNR.
        factors, exponents = _normalised_factors(factors, work, xp)
        Y_work = xp.astype(Y, work)
        # The model is scale-equivariant: measurements scaled by s give codes
        # scaled by s, a factor scaled by c codes scaled by 1/c. Data far from
        # magnitude one (where Gram matrices and evidences of data at 1e300
        # would overflow, or at 1e-300 underflow) are brought to it by a power
        # of two, which divides exactly, and the results are scaled back.
        # EM starts from unit variances, so moderate data keep their units:
        # their iterates are exactly those of the unscaled problem.
        y_scale = _working_scale(Y_work, xp)
        Y_work = Y_work / y_scale
        self._y_exponent = _exponent(y_scale)
        self._code_exponent = self._y_exponent - sum(exponents)
        noise_variance = self._normalised_noise(y_scale)
        threshold = self.prune_threshold
        if threshold == "auto":
            threshold = _AUTO_PRUNE[self.method][self.noise_variance is None]
        result = sparse_bayesian_learning(
            factors,
            Y_work,
            method=self.method,
            noise_variance=noise_variance,
            max_iter=self.max_iter,
            tol=self._tol(),
            prune_threshold=threshold,
            couplings=couplings,
            verbose=self.verbose,
            xp=xp,
            refine=self._refine(),
        )
        self._dense = self.method == "classic"
        self._kept = result.kept
        self._kept_gammas = result.gammas
        sizes = [int(f.shape[1]) for f in factors]
        self._sizes = sizes
        self.prior_ = "free" if self._dense else "kronecker"
        # With one mode the Kronecker prior already has one variance per entry.
        # Pattern coupling is a structured Kronecker prior the caller chose:
        # "auto" keeps it.
        coupled = any(beta is not None for beta in couplings)
        if (not self._dense and self.prior != "kronecker" and len(sizes) > 1
                and not coupled):
            self._choose_prior(factors, Y_work, result, xp)
        positions = self._positions()
        coef = _times_power_of_two(self._zero_fill(result.mean, positions, xp),
                                   self._code_exponent)
        self.coef_ = xp.astype(coef[0, :] if one_d else coef, out)
        grids = [[math.prod(sizes)]] if self._dense else [[s] for s in sizes]
        # Variances scale with the square of the codes; the Kronecker prior is
        # a product over modes, so the factor is spread over them.
        shares = _split_exponent(2 * self._code_exponent, len(result.gammas))
        self.gammas_ = [
            xp.astype(
                _times_power_of_two(
                    self._zero_fill(xp.reshape(g, (1, -1)),
                                    self._mode_positions(k, n[0]), xp)[0, :], share),
                real_out,
            )
            for g, k, n, share in zip(result.gammas, result.kept, grids, shares,
                                      strict=True)
        ]
        support = np.zeros(math.prod(sizes), dtype=bool)
        support[self._flat_support()] = True
        self.support_ = to_namespace(support, xp, like=Y)
        variance = xp.reshape(xp.astype(result.variance, xp.float64), (1, -1))
        self.posterior_variance_ = xp.astype(
            _times_power_of_two(self._zero_fill(variance, positions, xp)[0, :],
                                2 * self._code_exponent), real_out
        )
        self._noise_normalised = float(result.noise_variance)
        # In the units of Y (inf or 0 where the square of the data's scale is
        # beyond float64; the solver itself only uses the normalised value).
        self.noise_variance_ = float(_times_power_of_two(
            np.float64(self._noise_normalised), 2 * self._y_exponent))
        if self.steering is not None:
            self._refine_directions(Y_work, one_d, sizes, xp)
        self.n_iter_ = result.n_iter
        self.n_moves_ = result.n_moves
        self.history_ = result.history
        self._n_features_out = math.prod(sizes)
        return self

    # ------------------------------------------------------------------
    def _tol(self):
        if self.tol != "auto":
            return float(self.tol)
        return 1e-4 if self.steering is None else 1e-3

    def _refine(self):
        if self.refine != "auto":
            return bool(self.refine)
        return self.steering is None

    def _check_memory(self, factors, Y, work, xp):
        """Refuse grids whose code arrays (or dense dictionary) cannot fit."""
        n_measurements = math.prod(int(f.shape[0]) for f in factors)
        n_codes = math.prod(int(f.shape[1]) for f in factors)
        item = 16 if work == xp.complex128 else 8
        # Codes of every sample, the posterior variances and the support on
        # the full grid; method="classic" (and the free prior's candidates)
        # form the dense M x N dictionary.
        needed = float(n_codes) * (item * (int(Y.shape[0]) + 2) + 1)
        if self.method == "classic":
            needed += float(n_measurements) * n_codes * item
        shapes = [tuple(int(s) for s in f.shape) for f in factors]
        check_allocation(needed, "dictionaries",
                         what=f"codes on the {n_codes}-point grid of {shapes}"
                         f" (method={self.method!r})",
                         advice="use dictionaries with fewer columns (a coarser "
                         "grid)")

    def _normalised_noise(self, y_scale):
        """The given noise variance in the units of the normalised data."""
        if self.noise_variance is None:
            return None
        value = float(self.noise_variance) / y_scale / y_scale
        if not (0.0 < value < math.inf):
            raise ValueError(
                f"noise_variance={self.noise_variance!r} is out of float64 range "
                f"relative to the square of the data's scale ({y_scale:g}); give "
                "it in the units of Y squared, or None to learn it.")
        return value

    def _check_steering(self, factors):
        """Validated ``(steering, grids)`` as host callables and arrays."""
        steering, grids = self.steering, self.grids
        n_modes = len(factors)
        if grids is None:
            raise ValueError(
                "grids is required with steering: give the grid parameters of "
                "the dictionary columns of every mode.")
        if len(steering) != n_modes or len(grids) != n_modes:
            raise ValueError(
                f"steering and grids must hold one entry per mode ({n_modes}); "
                f"got {len(steering)} and {len(grids)}.")
        checked = []
        for mode, (function, grid, factor) in enumerate(
                zip(steering, grids, factors, strict=True)):
            if not callable(function):
                raise TypeError(f"steering[{mode}] must be callable; got "
                                f"{type(function).__name__}.")
            grid = np.asarray(grid, dtype=np.float64)
            if grid.ndim != 1 or grid.size != int(factor.shape[1]):
                raise ValueError(
                    f"grids[{mode}] must be 1-D with one value per column of "
                    f"dictionaries[{mode}] ({int(factor.shape[1])}); got shape "
                    f"{grid.shape}.")
            atoms = np.asarray(function(grid))
            host = to_numpy(factor)
            if atoms.shape != host.shape or not np.allclose(
                    atoms, host, rtol=1e-6, atol=1e-9 * np.abs(host).max()):
                raise ValueError(
                    f"steering[{mode}](grids[{mode}]) must equal "
                    f"dictionaries[{mode}] (shape {host.shape}); got an array "
                    f"of shape {atoms.shape} that differs.")
            checked.append(grid)
        return list(steering), checked

    def _choose_prior(self, factors, Y, result, xp):
        """Per-entry refinement on the Kronecker candidates, kept by evidence."""
        is_complex = xp.isdtype(Y.dtype, "complex floating")
        n_samples, n_measurements = int(Y.shape[0]), int(Y.shape[1])
        sigma2 = float(result.noise_variance)
        # Candidates: per mode, the slabs EM kept before the slab moves as
        # well as after them (the moves judge slabs under the Kronecker
        # prior, and a mode rebuild can drop slabs that only independent
        # entries need).
        candidates = [np.union1d(a, b) for a, b in
                      zip(result.kept, result.em_kept or result.kept, strict=True)]
        grids = np.meshgrid(*candidates, indexing="ij")
        flat = np.ravel_multi_index([g.ravel() for g in grids], self._sizes)
        if flat.size == 0:
            return
        learn_noise = self.noise_variance is None
        floor = 1e-10 * float(xp.mean(xp.abs(Y) ** 2))
        if floor == 0.0:
            # All-zero measurements: no entry can explain anything, and the
            # noise-relative gains below would divide by zero.
            return
        penalty = entry_penalty(n_measurements, n_samples, math.prod(self._sizes),
                                is_complex)
        if 2 * flat.size > n_measurements:
            # More candidates than M measurements can identify (2k > M: the
            # Kronecker fit barely pruned, as at low SNR): build the per-entry
            # support forward from nothing instead, so that no dictionary
            # beyond the active columns is formed and SBL on an
            # unidentifiable set does not overfit.
            flat = np.zeros(0, dtype=np.intp)
            keep = flat
            columns = xp.zeros((n_measurements, 0), dtype=Y.dtype,
                               device=_device(Y))
            gamma = xp.zeros((0,), dtype=xp.float64, device=_device(Y))
            free_sigma2 = sigma2 if not learn_noise else float(
                xp.mean(xp.abs(Y) ** 2))
            free_evidence = None
            n_additions = n_measurements // 2
        else:
            keep, gamma, free_evidence, free_sigma2, columns = self._free_start(
                factors, Y, result, candidates, flat, sigma2, learn_noise, floor, xp)
            n_additions = _MAX_ADDITIONS
        # Forward additions over the whole grid (entries no Kronecker slab
        # covered: a source the Kronecker fit missed altogether).
        for _ in range(n_additions):
            active = xp.take(columns, to_namespace(keep, xp, like=columns), axis=1)
            gain, best = addition_gains(factors, active, gamma, free_sigma2, Y, xp)
            gain[flat[keep]] = 0.0
            candidate = int(np.argmax(gain))
            if gain[candidate] <= penalty:
                break
            flat = np.append(flat[keep], candidate)
            multi = [np.asarray(i) for i in np.unravel_index(flat, self._sizes)]
            columns = _dense_columns(factors, multi, xp)
            start = xp.concat([gamma, xp.asarray([best[candidate]], dtype=xp.float64,
                                                 device=_device(columns))])
            keep, gamma, free_evidence, free_sigma2 = refine_entries(
                columns, start, free_sigma2, Y, xp, learn_noise=learn_noise,
                noise_floor=floor, tol=max(self._tol(), 1e-6),
                max_iter=_ADDITION_ITER)
        if free_evidence is None:
            return
        if self.prior == "auto":
            kron_evidence = float(xp.sum(log_evidence_on_support(
                factors, result.kept, result.gammas, sigma2, Y, xp, dense=False)))
            n_slabs = sum(len(k) for k in result.kept)
            kron_cost = cost_from_log_evidence(kron_evidence, is_complex) + (
                slab_penalty(n_measurements, n_samples, sum(self._sizes),
                             is_complex) * n_slabs)
            free_cost = cost_from_log_evidence(free_evidence, is_complex) + (
                entry_penalty(n_measurements, n_samples, math.prod(self._sizes),
                              is_complex) * keep.size)
            self.prior_cost_ = {"kronecker": kron_cost, "free": free_cost}
            if free_cost >= kron_cost:
                return
        A = xp.take(columns, to_namespace(keep, xp, like=columns), axis=1)
        mean, variance = dense_posterior(A, gamma, free_sigma2, Y, xp)
        result.mean, result.variance = mean, variance
        result.noise_variance = free_sigma2
        self._dense = True
        self._kept = [flat[keep]]
        self._kept_gammas = [gamma]
        result.kept, result.gammas = self._kept, self._kept_gammas
        self.prior_ = "free"

    def _free_start(self, factors, Y, result, candidates, flat, sigma2,
                    learn_noise, floor, xp):
        """Per-entry SBL on the Kronecker candidate set."""
        multi = [np.asarray(i) for i in np.unravel_index(flat, self._sizes)]
        columns = _dense_columns(factors, multi, xp)
        # A flat start on the candidates: the Kronecker values would carry
        # its cross-term compromise (tiny variances where a lone source sits
        # in a weak slab) and MacKay's pruning would make it final.
        start = self._candidate_start(result, candidates, xp)
        start = xp.full(start.shape, float(xp.mean(start)), dtype=start.dtype,
                        device=_device(start))
        free_sigma2 = sigma2
        if learn_noise:
            # Restart the noise from the authors' 0.1 var(y) when the
            # Kronecker fit left more than that: signal it could not model
            # sits in its noise estimate and would mask the entries.
            free_sigma2 = min(sigma2, 0.1 * float(xp.mean(xp.abs(Y) ** 2)))
        keep, gamma, evidence, free_sigma2 = refine_entries(
            columns, start, free_sigma2, Y, xp, learn_noise=learn_noise,
            noise_floor=floor, tol=max(self._tol(), 1e-6))
        return keep, gamma, evidence, free_sigma2, columns

    @staticmethod
    def _candidate_start(result, candidates, xp):
        """Kronecker variances on the candidates (EM's values where pruned)."""
        pieces = []
        for mode, index in enumerate(candidates):
            full = {}
            if result.em_kept is not None:
                full.update(zip(result.em_kept[mode].tolist(),
                                to_numpy(result.em_gammas[mode]).tolist(),
                                strict=True))
            full.update(zip(result.kept[mode].tolist(),
                            to_numpy(result.gammas[mode]).tolist(), strict=True))
            values = np.array([full[j] for j in index.tolist()], dtype=np.float64)
            pieces.append(to_namespace(np.maximum(values, 1e-12 * values.max()),
                                       xp, like=result.gammas[mode]))
        return kron_vector(pieces, xp)

    def _refine_directions(self, Y, one_d, sizes, xp):
        """Off-grid directions of the peaks of the learned power."""
        factors = _check_factors(self.dictionaries, "dictionaries")
        steering, grids = self._check_steering(factors)
        power = to_numpy(self.prior_variance())
        wrap = periods(steering, grids)
        peaks = find_peaks(power, sizes, [p is not None for p in wrap])
        # Y is the normalised data (the steering vectors are not): the
        # amplitudes come out in units of y_scale and are scaled back.
        Y_host = to_numpy(Y)
        if peaks.shape[0] == 0:
            self.directions_ = np.zeros((0, len(sizes)))
            self.direction_std_ = np.zeros((0, len(sizes)))
            self.source_amplitudes_ = np.zeros((Y_host.shape[0], 0))
        else:
            theta, std, amplitudes = refine_directions(
                steering, grids, peaks, Y_host, self._noise_normalised, wrap=wrap)
            self.directions_, self.direction_std_ = theta, std
            self.source_amplitudes_ = _times_power_of_two(amplitudes,
                                                          self._y_exponent)
        if one_d:
            self.source_amplitudes_ = self.source_amplitudes_[0]

    def _flat_support(self):
        """Flat indices (on the full grid) of the surviving coefficients."""
        if self._dense:
            return np.asarray(self._kept[0])
        grids = np.meshgrid(*self._kept, indexing="ij")
        return np.ravel_multi_index([g.ravel() for g in grids], self._sizes)

    @staticmethod
    def _mode_positions(kept, size):
        positions = np.full(size, len(kept))
        positions[kept] = np.arange(len(kept))
        return positions

    def _positions(self):
        """For each full-grid point, its column among the survivors (or a pad)."""
        flat = self._flat_support()
        return self._mode_positions(flat, math.prod(self._sizes))

    @staticmethod
    def _zero_fill(rows, positions, xp):
        """Scatter columns of ``rows`` to the full grid, zeros elsewhere."""
        padded = xp.concat(
            [rows, xp.zeros((rows.shape[0], 1), dtype=rows.dtype,
                            device=_device(rows))],
            axis=1,
        )
        index = to_namespace(positions, xp, like=rows)
        return xp.take(padded, index, axis=1)

    def _posterior(self, Y, method):
        """Validated ``Y`` and the E-step inputs in the namespace of ``Y``."""
        check_is_fitted(self)
        check_same_device(Y, self, attribute="coef_", method=method)
        Y, one_d = self._validate_measurements(Y, reset=False)
        xp = get_namespace(Y)
        factors = self._factors_like(Y, xp)
        work, out, real_out = self._dtypes(Y, factors, xp)
        factors, _ = _normalised_factors(factors, work, xp)
        gammas = [xp.astype(g, xp.float64) for g in self._kept_gammas]
        # The fitted state is in the units of the normalised training data.
        Y = _times_power_of_two(xp.astype(Y, work), -self._y_exponent)
        return Y, one_d, xp, factors, gammas, (out, real_out)

    def transform(self, Y, return_std=False):
        """Return posterior-mean codes of ``Y`` under the learned prior.

        Parameters
        ----------
        Y : array of shape (n_samples, M) or (M,)
            Measurements in the namespace the model was fitted in.
        return_std : bool, default=False
            Also return the posterior standard deviation of every code
            coefficient (as ``ARDRegression.predict(return_std=True)``); it
            does not depend on the measurements, only on the learned prior
            and noise variance.

        Returns
        -------
        codes : array of shape (n_samples, N), or (N,) for 1-D input
            Posterior means, zero off the learned support.
        std : array of the shape of ``codes``
            Posterior standard deviations (zero off the support); only with
            ``return_std=True``.
        """
        Y, one_d, xp, factors, gammas, (out, real_out) = self._posterior(
            Y, "transform")
        mean, variance = posterior_on_support(
            factors, self._kept, gammas, self._noise_normalised, Y, xp,
            dense=self._dense,
        )
        codes = xp.astype(_times_power_of_two(
            self._zero_fill(mean, self._positions(), xp), self._code_exponent), out)
        codes = codes[0, :] if one_d else codes
        if not return_std:
            return codes
        variance = self._zero_fill(xp.reshape(variance, (1, -1)), self._positions(),
                                   xp)[0, :]
        std = xp.astype(_times_power_of_two(xp.sqrt(variance), self._code_exponent),
                        real_out)
        return codes, xp.broadcast_to(std, codes.shape)

    def score(self, Y, y=None):
        """Mean log evidence (log marginal likelihood) of measurements ``Y``.

        Under the learned model ``y ~ N(0, s2 I + A Gamma A^H)`` (circular
        complex normal for complex data), the average over rows of
        ``log p(y)``: the type-II likelihood that EM maximises, so larger
        is better and ``GridSearchCV`` / ``cross_val_score`` compare
        settings (``method``, ``prune_threshold``, ``coupling``) by how well
        they predict held-out measurements, with no ground-truth codes. As
        ``sklearn.decomposition.PCA.score``, it is a log density, not R².

        Parameters
        ----------
        Y : array of shape (n_samples, M) or (M,)
            Measurements in the namespace the model was fitted in.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Mean of ``log p(y)`` over the rows of ``Y`` (nats).
        """
        Y, _, xp, factors, gammas, _ = self._posterior(Y, "score")
        log_evidence = log_evidence_on_support(
            factors, self._kept, gammas, self._noise_normalised, Y, xp,
            dense=self._dense,
        )
        # The density of y = s y_n is that of y_n divided by the Jacobian
        # s^M (s^2M for complex data, M real dimensions each way).
        real_dimensions = Y.shape[1] * (
            2 if xp.isdtype(Y.dtype, "complex floating") else 1)
        return float(xp.mean(log_evidence)) - real_dimensions * self._y_exponent \
            * math.log(2.0)

    def prior_variance(self):
        """Return the learned prior variance of every code coefficient.

        Returns
        -------
        gamma : array of shape (N,)
            ``gamma_1 ⊗ ⋯ ⊗ gamma_I`` (zero where pruned).
        """
        check_is_fitted(self)
        xp = get_namespace(self.gammas_[0])
        return kron_vector(self.gammas_, xp)


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags


def _device(array):
    import array_api_compat

    return array_api_compat.device(array)


# Magnitudes inside [2**-64, 2**64] are solved in their own units (see fit).
_MODERATE_EXPONENT = 64


def _working_scale(array, xp):
    """1.0 for moderate data, else a power of two near its largest entry."""
    scale = power_of_two_scale_of(array, xp=xp)
    return 1.0 if abs(_exponent(scale)) <= _MODERATE_EXPONENT else scale


def _exponent(power_of_two):
    """``e`` such that ``power_of_two == 2**e``."""
    return math.frexp(power_of_two)[1] - 1


def _normalised_factors(factors, dtype, xp):
    """Factors in ``dtype`` divided by powers of two near their largest entry.

    Returns the factors and the exponents ``e_i`` they were divided by
    (``2**e_i``), exact in binary floating point.
    """
    converted, exponents = [], []
    for factor in factors:
        factor = xp.astype(factor, dtype)
        scale = _working_scale(factor, xp)
        converted.append(factor / scale)
        exponents.append(_exponent(scale))
    return converted, exponents


def _split_exponent(total, n_parts):
    """``n_parts`` integers summing to ``total``, as equal as possible."""
    base, extra = divmod(total, n_parts)
    return [base + (1 if i < extra else 0) for i in range(n_parts)]


def _times_power_of_two(values, exponent):
    """``values * 2**exponent`` exactly, overflowing to inf (or 0) only when
    the result itself is beyond float64."""
    exponent = int(exponent)
    # Several steps, each within float64's exponent range for any exponent
    # the data can produce (|exponent| < 8000).
    with np.errstate(over="ignore", under="ignore"):
        for part in _split_exponent(exponent, 8):
            if part:
                values = values * math.ldexp(1.0, part)
    return values
