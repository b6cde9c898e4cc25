"""DeepConjugateDirection: the scikit-learn face of the DCDM solver."""

from __future__ import annotations

import numbers
import os
import warnings

# get_namespace returns array_api_compat.numpy for sparse input; the submodule
# must be imported for that attribute to exist (foundation gap, reported).
import array_api_compat.numpy  # noqa: F401
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .._backend import get_namespace, to_namespace
from .._progress import Progress
from .._validation import check_is_fitted, validate_data
from ._dcdm import deep_conjugate_directions
from ._krylov import check_system, prepare_rhs
from ._levels import coarse_shape, prolong, restrict
from ._network import DirectionNetwork, default_model_path
from ._operator import floating_components

__all__ = ["DeepConjugateDirection"]


def _is_device_sparse(A):
    return type(A).__module__.startswith("cupyx.scipy.sparse")


class DeepConjugateDirection(TransformerMixin, BaseEstimator):
    """Solve Poisson systems with learned (CNN) conjugate search directions.

    The deep conjugate-direction method of Kaneda et al. (2023): each
    iteration feeds the normalised residual, laid out on the grid, to a
    convolutional network, A-orthogonalises its output against the last
    ``n_orthogonal`` directions and takes the exact A-norm step along it.
    By default (``n_levels="auto"``) each iteration also takes a step along
    the network's output for the residual averaged over 2x2x2 blocks, which
    keeps the iteration count nearly flat as the grid grows. The network
    forward pass is sparsesolve's own NumPy/CuPy code; no deep-learning
    framework is needed to solve.

    Parameters
    ----------
    model : "default", str, os.PathLike or DirectionNetwork, default="default"
        The direction network: ``"default"`` is the model shipped with the
        package (trained on Dirichlet boxes of 16^3, then 32^3, see the user
        guide), a
        path names an ``.npz`` written by :meth:`DirectionNetwork.save`.
    n_orthogonal : int, default=2
        Previous directions each new one is A-orthogonalised against.
    n_levels : int or "auto", default="auto"
        Grid levels the network is applied on in each iteration. ``1`` is the
        method of the paper: one network call on the residual. ``"auto"``
        uses two levels when every grid dimension is at least 8 (the coarse
        grid then has at least 4 cells per side) and one otherwise. With
        ``L > 1`` each iteration first takes steps along the network's output
        for the residual averaged over blocks of ``2^l`` cells per side
        (``l = L-1`` down to ``1``, copied back onto the blocks), then along
        its output for the residual itself: the coarse calls see the
        long-range part of the error that the network's receptive field
        misses on a large grid.
        Each coarser call costs an eighth of the one above it. Every level's
        grid must be at least 4 cells in each dimension (sparsesolve's
        extension of the paper; see the user guide for measured counts).
    tol : float, default=1e-6
        Stop when ``||b - A x|| <= tol * ||b||`` (checked on the true
        residual).
    max_iter : int, default=200
        Most iterations per right-hand side (one network call per level
        each).
    verbose : int, default=0
        Progress bar over iterations when positive.

    Attributes
    ----------
    n_features_in_ : int
        Number of unknowns (grid cells).
    grid_shape_ : tuple of int
        The 3D grid the unknowns live on.
    n_levels_ : int
        Grid levels used (``n_levels`` with ``"auto"`` resolved).
    network_ : DirectionNetwork
        The loaded direction network.
    operator_ : sparse matrix
        The fitted matrix (SciPy CSR, or cupyx CSR for CuPy input).
    n_iter_ : int or ndarray of int
        Iterations of the last :meth:`solve` (an int) or :meth:`transform`
        (one per right-hand side).
    residuals_ : ndarray or list of ndarray
        Relative residual history of the last solve (one array per
        right-hand side after :meth:`transform`).
    n_fallbacks_ : int
        Steps of the last solve(s) where the network's direction was
        useless and the residual was used instead.

    See Also
    --------
    sparsesolve.poisson.cg : Plain conjugate gradients.
    sparsesolve.poisson.ic0_pcg : Incomplete-Cholesky preconditioned CG.

    References
    ----------
    .. [1] A. Kaneda, O. Akar, J. Chen, V. A. T. Kala, D. Hyde, J. Teran,
       "A Deep Conjugate Direction Method for Iteratively Solving Linear
       Systems", ICML 2023, PMLR 202:15720-15736.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import DeepConjugateDirection, poisson_matrix
    >>> A = poisson_matrix((8, 8, 8))
    >>> b = np.random.default_rng(0).standard_normal(A.shape[0])
    >>> solver = DeepConjugateDirection().fit(A, grid_shape=(8, 8, 8))
    >>> x = solver.solve(b)
    >>> bool(np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b))
    True
    """

    _parameter_constraints: dict = {
        "model": [StrOptions({"default"}), str, os.PathLike, DirectionNetwork],
        "n_orthogonal": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_levels": [Interval(numbers.Integral, 1, None, closed="left"),
                     StrOptions({"auto"})],
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(self, model="default", n_orthogonal=2, n_levels="auto", tol=1e-6,
                 max_iter=200, verbose=0):
        self.model = model
        self.n_orthogonal = n_orthogonal
        self.n_levels = n_levels
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def _load_network(self):
        if isinstance(self.model, DirectionNetwork):
            return self.model
        path = default_model_path() if self.model == "default" else self.model
        return DirectionNetwork.load(path)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, A, y=None, grid_shape=None):
        """Prepare the solver for the operator ``A``.

        Parameters
        ----------
        A : sparse matrix or array of shape (n, n)
            Symmetric positive (semi-)definite matrix on the full grid, as
            from :func:`~sparsesolve.poisson.poisson_matrix` (solid cells as
            all-zero rows). SciPy sparse or dense for the CPU,
            ``cupyx.scipy.sparse`` for the GPU.
        y : None
            Ignored.
        grid_shape : tuple of 3 ints, default=None
            The grid of the unknowns, C order. None means a cube when ``n``
            is a cube, otherwise a single line of ``n`` cells.

        Returns
        -------
        self : DeepConjugateDirection
            Fitted solver.
        """
        if _is_device_sparse(A):
            operator = A.tocsr()
            self.n_features_in_ = int(A.shape[1])
        else:
            operator = sp.csr_matrix(validate_data(self, A, accept_sparse="csr"))
        n = operator.shape[0]
        if operator.shape[1] != n:
            raise ValueError(f"A must be a square matrix; got shape {operator.shape}.")
        host = operator if sp.issparse(operator) else operator.get()
        asymmetry = abs(host - host.T).max() if host.nnz else 0.0
        if asymmetry > 1e-10 * max(abs(host).max(), 1e-300):
            raise ValueError(
                "A must be symmetric (the conjugate-direction step assumes it); "
                f"max |A - A^T| = {asymmetry:.3g}."
            )
        self.grid_shape_ = self._check_grid_shape(grid_shape, n)
        if self.n_levels == "auto":
            self.n_levels_ = 2 if min(self.grid_shape_) >= 8 else 1
        else:
            self.n_levels_ = int(self.n_levels)
        coarsest = self.grid_shape_
        for _ in range(1, self.n_levels_):
            coarsest = coarse_shape(coarsest)
        if self.n_levels_ > 1 and min(coarsest) < 4:
            raise ValueError(
                f"n_levels={self.n_levels} coarsens the grid {self.grid_shape_} to "
                f"{coarsest}; every level needs at least 4 cells per "
                "dimension. Use fewer levels."
            )
        self.network_ = self._load_network()
        self.operator_ = operator
        # Solid cells (empty rows) never receive a direction: the network is
        # masked to the cells that carry unknowns.
        self._fluid = (np.diff(host.indptr) > 0).reshape(self.grid_shape_)
        # A coarse cell carries an unknown when any of its fine cells does.
        self._level_fluid = [self._fluid]
        for _ in range(1, self.n_levels_):
            self._level_fluid.append(
                restrict(np, self._level_fluid[-1].astype(np.float32)) > 0)
        # The null space of A depends on A alone: found once here, on the
        # host copy, instead of copying a device matrix back at every solve.
        self._components = floating_components(host)
        return self

    @staticmethod
    def _check_grid_shape(grid_shape, n):
        if grid_shape is None:
            side = round(n ** (1 / 3))
            cube = next((s for s in (side - 1, side, side + 1) if s**3 == n), None)
            return (cube,) * 3 if cube else (1, 1, n)
        if (
            not isinstance(grid_shape, (tuple, list))
            or len(grid_shape) != 3
            or not all(isinstance(s, numbers.Integral) and s >= 1 for s in grid_shape)
        ):
            raise ValueError(
                "grid_shape must be a tuple of 3 positive ints (the direction "
                f"network is a 3D CNN); got {grid_shape!r}."
            )
        grid_shape = tuple(int(s) for s in grid_shape)
        if int(np.prod(grid_shape)) != n:
            raise ValueError(
                f"grid_shape {grid_shape} has {int(np.prod(grid_shape))} cells but "
                f"A has {n} rows."
            )
        return grid_shape

    def _direction_function(self, xp, like):
        """The proposals of one iteration, coarsest level first."""
        network = self.network_
        shapes = [mask.shape for mask in self._level_fluid]
        masks = [to_namespace(mask.astype(np.float32), xp, like=like)
                 for mask in self._level_fluid]

        def at_level(level):
            def direction(r):
                grid = xp.reshape(r, shapes[0])
                if level:
                    for _ in range(level):
                        grid = restrict(xp, grid)
                    # The network was trained on unit-norm inputs (r is one).
                    norm = float(xp.linalg.vector_norm(grid))
                    grid = grid / norm if norm > 0 else grid
                out = network(grid) * masks[level]
                for finer in range(level - 1, -1, -1):
                    out = prolong(xp, out, shapes[finer]) * masks[finer]
                return xp.reshape(out, (-1,))
            return direction

        return tuple(at_level(level) for level in range(self.n_levels_ - 1, -1, -1))

    def _solve_one(self, b, x0):
        xp = check_system(self.operator_, b)
        b_range, norm_b = prepare_rhs(self.operator_, b, xp, self.tol,
                                      components=self._components)
        if norm_b == 0.0:
            return xp.zeros_like(b_range), np.zeros(1), 0
        x = xp.zeros_like(b_range) if x0 is None else xp.astype(x0, b.dtype, copy=True)
        # float32 right-hand sides run the Krylov part in float32 too.
        operator = (self.operator_ if self.operator_.dtype == b.dtype
                    else self.operator_.astype(b.dtype))
        with Progress(self.max_iter, self.verbose, type(self).__name__) as progress:
            x, residuals, n_fallbacks = deep_conjugate_directions(
                operator, b_range, x, self._direction_function(xp, b),
                norm_b=norm_b, tol=self.tol, max_iter=self.max_iter,
                n_orthogonal=self.n_orthogonal, progress=progress,
            )
        true_residual = float(
            xp.linalg.vector_norm(b_range - operator @ x)) / norm_b
        if not true_residual <= self.tol:
            warnings.warn(
                f"DeepConjugateDirection did not reach tol={self.tol:g} in "
                f"{residuals.size - 1} iterations (true relative residual "
                f"{true_residual:.3g}); increase max_iter or use a model trained "
                "for this kind of domain.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return x, residuals, n_fallbacks

    def solve(self, b, x0=None):
        """Solve ``A x = b`` for one right-hand side.

        Parameters
        ----------
        b : array of shape (n,)
            Right-hand side, NumPy (CPU) or CuPy (GPU, with a cupyx ``A``).
            Its part in the null space of ``A`` is removed first, with a
            warning when it is not negligible.
        x0 : array of shape (n,), default=None
            Starting guess (zeros by default).

        Returns
        -------
        x : array of shape (n,)
            The solution, in the namespace and dtype of ``b``; ``n_iter_``,
            ``residuals_`` and ``n_fallbacks_`` describe the solve.

        Warns
        -----
        ConvergenceWarning
            When the true relative residual is above ``tol`` at exit.
        """
        check_is_fitted(self)
        if x0 is not None:
            check_system(self.operator_, x0, name_b="x0")
        x, residuals, n_fallbacks = self._solve_one(b, x0)
        self.n_iter_ = int(residuals.size - 1)
        self.residuals_ = residuals
        self.n_fallbacks_ = int(n_fallbacks)
        return x

    def transform(self, B):
        """Solve ``A x = b`` for every row ``b`` of ``B``.

        Parameters
        ----------
        B : array of shape (n_rhs, n)
            Right-hand sides, one per row.

        Returns
        -------
        X : array of shape (n_rhs, n)
            Solutions, one per row, in the namespace and dtype of ``B``.
        """
        check_is_fitted(self)
        B = validate_data(self, B, reset=False)
        xp = get_namespace(B)
        solutions, iterations, histories, fallbacks = [], [], [], 0
        for row in range(B.shape[0]):
            x, residuals, n_fallbacks = self._solve_one(B[row, :], None)
            solutions.append(x)
            iterations.append(residuals.size - 1)
            histories.append(residuals)
            fallbacks += n_fallbacks
        self.n_iter_ = np.asarray(iterations)
        self.residuals_ = histories
        self.n_fallbacks_ = int(fallbacks)
        if not solutions:
            return xp.zeros((0, B.shape[1]), dtype=B.dtype)
        return xp.stack(solutions)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # fit takes the square system matrix, like a precomputed kernel.
        tags.input_tags.pairwise = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
