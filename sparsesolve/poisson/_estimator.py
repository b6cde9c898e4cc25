"""DeepConjugateDirection: the scikit-learn face of the DCDM solver."""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
import warnings

# get_namespace returns array_api_compat.numpy for sparse input; the submodule
# must be imported for that attribute to exist (foundation gap, reported).
import array_api_compat.numpy  # noqa: F401
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._backend import (
    get_namespace,
    is_device_sparse,
    kernel_threads,
    sparse_to_host,
    to_namespace,
)
from .._docs import API_PAGE
from .._progress import Progress
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import check_is_fitted, validate_data
from ._dcdm import deep_conjugate_directions
from ._krylov import check_system, prepare_rhs
from ._levels import coarse_shape, prolong, restrict
from ._multilevel import MultilevelHierarchy
from ._network import DirectionNetwork, default_model_path
from ._operator import floating_components

__all__ = ["DCDMResult", "DeepConjugateDirection"]


@functools.cache
def _shipped_network():
    """The shipped model, read once per process (reading it costs a few ms,
    as much as a whole small solve); solvers only read its weights."""
    return DirectionNetwork.load(default_model_path())


@dataclasses.dataclass
class DCDMResult:
    """Outcome of one :meth:`DeepConjugateDirection.solve`.

    Parameters
    ----------
    x : array of shape (n,)
        The solution, in the namespace and dtype of ``b``.
    n_iter : int
        Iterations run.
    residuals : ndarray of shape (n_iter + 1,)
        Relative residuals ``||b - A x_k|| / ||b||`` from ``k = 0``.
    converged : bool
        True when the true relative residual at exit is at most ``tol``.
    true_residual : float
        ``||b - A x|| / ||b||`` recomputed at exit.
    n_fallbacks : int
        Steps where the proposed direction was useless and the residual was
        used instead.
    """

    x: object
    n_iter: int
    residuals: np.ndarray
    converged: bool
    true_residual: float
    n_fallbacks: int


class DeepConjugateDirection(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Solve Poisson systems with learned conjugate search directions.

    The deep conjugate-direction method of Kaneda et al. (2023) takes, at
    every iteration, a search direction proposed from the residual,
    A-orthogonalises it against the last ``n_orthogonal`` directions and
    steps to the minimum of the A-norm error along it, so it converges
    whatever the proposal is. The proposal is where the two methods differ:

    * ``method="multilevel"`` (the default): one V-cycle of an aggregation
      multigrid hierarchy built in :meth:`fit`, with Chebyshev smoothing on
      every grid but the coarsest and the direction network as the solver on
      the coarsest grid (at most ``coarsest_size`` cells a side). The network
      then costs a few percent of an iteration instead of nearly all of it,
      and sees the whole domain at once.
    * ``method="dcdm"``: the paper's method, the network on the full-resolution
      residual (with ``n_levels=2``, also on the residual averaged over
      2 x 2 x 2 blocks).

    The network forward pass is sparsesolve's own numba/NumPy/CuPy code (no
    deep-learning framework is needed to solve), or PyTorch with
    ``engine="torch"``.

    Parameters
    ----------
    model : "default", str, os.PathLike or DirectionNetwork, default="default"
        The direction network: ``"default"`` is the model shipped with the
        package (trained on Dirichlet boxes of 16^3, then 32^3, see the user
        guide), a path names an ``.npz`` written by
        :meth:`DirectionNetwork.save`.
    grid_shape : tuple of 3 ints or None, default=None
        The grid of the unknowns, C order. None means a cube when ``n`` is a
        cube, otherwise a single line of ``n`` cells.
    method : {"multilevel", "dcdm"}, default="multilevel"
        Where the network is applied, see above.
    coarse_solver : {"network", "smoother", "none"}, default="network"
        What solves on the coarsest grid of the multilevel cycle: the
        network, a Chebyshev sweep in its place, or nothing (the last two
        measure what the network contributes; see the user guide).
    coarsest_size : int or "auto", default="auto"
        The multilevel hierarchy coarsens the grid by 2 in every dimension
        while any side exceeds this many cells. ``"auto"`` stops at a quarter
        of the longest side (at least 8): the network then sees 1/64 of the
        cells, and its pass (about 2,000 floating-point operations per cell
        it sees) costs about as much as two fine-grid matrix-vector products,
        comparable to the smoothing in the same cycle and never dominating
        it. The shipped network was trained on grids of 16 and 32 cells a
        side.
    smoother_degree : int, default=2
        Degree of the Chebyshev polynomial of every smoothing sweep (each
        costs that many matrix-vector products on its grid).
    n_orthogonal : int, default=2
        Previous directions each new one is A-orthogonalised against.
    n_levels : int or "auto", default="auto"
        Only for ``method="dcdm"``: grid levels the network is applied on in
        each iteration. ``1`` is the method of the paper; ``"auto"`` uses
        two levels when every grid dimension is at least 8.
    engine : {"auto", "numba", "matmul", "torch"}, default="auto"
        Forward pass of the network: ``"auto"`` is the numba kernel on the
        CPU and matrix products on the GPU; ``"torch"`` uses PyTorch
        (oneDNN on the CPU, cuDNN on the GPU through DLPack) and needs the
        ``train`` extra. All engines run the same weights.
    tol : float, default=1e-6
        Stop when ``||b - A x|| <= tol * ||b||`` (checked on the true
        residual).
    max_iter : int, default=200
        Most iterations per right-hand side.
    random_state : int, RandomState instance or None, default=0
        Start vectors of the eigenvalue estimates in :meth:`fit`.
    verbose : int, default=0
        Progress bar over iterations when positive.

    Attributes
    ----------
    n_features_in_ : int
        Number of unknowns (grid cells).
    grid_shape_ : tuple of int
        The 3D grid the unknowns live on.
    level_shapes_ : list of tuple of int
        Grids of the multilevel hierarchy, finest first (``method="dcdm"``:
        the grids the network is applied on).
    n_levels_ : int
        Number of those grids.
    network_ : DirectionNetwork
        The loaded direction network.
    operator_ : sparse matrix
        The fitted matrix (SciPy CSR, or cupyx CSR for CuPy input).

    See Also
    --------
    sparsesolve.poisson.cg : Plain conjugate gradients.
    sparsesolve.poisson.ic0_pcg : Incomplete-Cholesky preconditioned CG.

    Notes
    -----
    :meth:`solve` and :meth:`transform` do not change the fitted estimator:
    the iteration count and residual history of a solve come back in a
    :class:`DCDMResult` (``solve(b, return_result=True)``), so one fitted
    solver can be shared between threads.

    References
    ----------
    .. [1] A. Kaneda, O. Akar, J. Chen, V. A. T. Kala, D. Hyde, J. Teran,
       "A Deep Conjugate Direction Method for Iteratively Solving Linear
       Systems", ICML 2023, PMLR 202:15720-15736.
    .. [2] Y. Notay, P. S. Vassilevski, "Recursive Krylov-based multigrid
       cycles", Numer. Linear Algebra Appl. 15 (2008) 473-487.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson import DeepConjugateDirection, poisson_matrix
    >>> A = poisson_matrix((32, 32, 32))
    >>> b = np.random.default_rng(0).standard_normal(A.shape[0])
    >>> solver = DeepConjugateDirection(grid_shape=(32, 32, 32)).fit(A)
    >>> result = solver.solve(b, return_result=True)
    >>> bool(np.linalg.norm(b - A @ result.x) <= 1e-6 * np.linalg.norm(b))
    True
    >>> result.n_iter < 20
    True
    """

    _doc_link_module = "sparsesolve"
    _doc_link_template = API_PAGE

    # One solve per right-hand side (row). Read by distributed.map_rows.
    _row_independent_methods = frozenset({"transform"})

    _parameter_constraints: dict = {
        "model": [StrOptions({"default"}), str, os.PathLike, DirectionNetwork],
        "grid_shape": [tuple, list, None],
        "method": [StrOptions({"multilevel", "dcdm"})],
        "coarse_solver": [StrOptions({"network", "smoother", "none"})],
        "coarsest_size": [Interval(numbers.Integral, 4, None, closed="left"),
                          StrOptions({"auto"})],
        "smoother_degree": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_orthogonal": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_levels": [Interval(numbers.Integral, 1, None, closed="left"),
                     StrOptions({"auto"})],
        "engine": [StrOptions({"auto", "numba", "matmul", "torch"})],
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, model="default", *, grid_shape=None, method="multilevel",
                 coarse_solver="network", coarsest_size="auto", smoother_degree=2,
                 n_orthogonal=2, n_levels="auto", engine="auto", tol=1e-6,
                 max_iter=200, random_state=0, verbose=0):
        self.model = model
        self.grid_shape = grid_shape
        self.method = method
        self.coarse_solver = coarse_solver
        self.coarsest_size = coarsest_size
        self.smoother_degree = smoother_degree
        self.n_orthogonal = n_orthogonal
        self.n_levels = n_levels
        self.engine = engine
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    def _load_network(self):
        if isinstance(self.model, DirectionNetwork):
            return self.model
        if self.model == "default":
            return _shipped_network()
        return DirectionNetwork.load(self.model)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, A, y=None, grid_shape="deprecated"):
        """Prepare the solver for the operator ``A``.

        Parameters
        ----------
        A : sparse matrix or array of shape (n, n)
            Symmetric positive (semi-)definite matrix on the full grid, as
            from :func:`~sparsesolve.poisson.poisson_matrix` (solid cells as
            all-zero rows). SciPy sparse or dense for the CPU,
            ``cupyx.scipy.sparse`` for the GPU. The multilevel hierarchy and
            the null space need the entries, so a
            :class:`scipy.sparse.linalg.LinearOperator` is refused.
        y : None
            Ignored.
        grid_shape : tuple of 3 ints
            Deprecated: pass ``grid_shape`` to the constructor.

        Returns
        -------
        self : DeepConjugateDirection
            Fitted solver.
        """
        if isinstance(A, spla.LinearOperator):
            raise TypeError(
                "A must be a matrix (SciPy sparse, dense, or cupyx sparse): "
                "DeepConjugateDirection builds a multigrid hierarchy and the "
                "null space from its entries. For a matrix-free operator use "
                "sparsesolve.poisson.cg, which accepts a LinearOperator."
            )
        if isinstance(grid_shape, str) and grid_shape == "deprecated":
            grid_shape = self.grid_shape
        else:
            warnings.warn(
                "fit(A, grid_shape=...) is deprecated; pass grid_shape to the "
                "constructor: DeepConjugateDirection(grid_shape=...).fit(A).",
                FutureWarning,
                stacklevel=3,
            )
        if is_device_sparse(A):
            operator = A.tocsr()
            self.n_features_in_ = int(A.shape[1])
        else:
            operator = sp.csr_matrix(validate_data(self, A, accept_sparse="csr"))
        n = operator.shape[0]
        if operator.shape[1] != n:
            raise ValueError(f"A must be a square matrix; got shape {operator.shape}.")
        host = sparse_to_host(operator)
        if host.nnz and not np.all(np.isfinite(host.data)):
            raise ValueError("A contains NaN or infinity.")
        if host.nnz == 0 or not np.any(host.data):
            raise ValueError(
                "A is all zero: a Poisson operator has a nonzero diagonal (the "
                "solve A x = b is undefined).")
        asymmetry = abs(host - host.T).max() if host.nnz else 0.0
        if asymmetry > 1e-10 * max(abs(host).max(), 1e-300):
            raise ValueError(
                "A must be symmetric (the conjugate-direction step assumes it); "
                f"max |A - A^T| = {asymmetry:.3g}."
            )
        self.grid_shape_ = self._check_grid_shape(grid_shape, n)
        self.network_ = self._load_network()
        self.operator_ = operator
        if self.method == "multilevel":
            # Power iterations and smoothing kernels alternate with vector
            # products, as in the solve.
            with kernel_threads(None, get_namespace(host.data)):
                self._fit_multilevel(host)
        else:
            self._fit_network_levels(host)
        # The null space of A depends on A alone: found once here, on the
        # host copy, instead of copying a device matrix back at every solve.
        self._components = floating_components(host)
        return self

    def _fit_multilevel(self, host):
        coarsest_size = self.coarsest_size
        if coarsest_size == "auto":
            coarsest_size = max(8, -(-max(self.grid_shape_) // 4))
        # The hierarchy is built for A / max|A| (a direction's scale does not
        # matter: every step is line-searched), so that matrices scaled by
        # 1e-300 or 1e300 give directions and products of ordinary size.
        self._operator_scale = float(abs(host).max()) if host.nnz else 1.0
        self._hierarchy = MultilevelHierarchy(
            host / self._operator_scale, self.grid_shape_, coarsest_size,
            check_random_state(self.random_state))
        self.level_shapes_ = self._hierarchy.shapes
        self.n_levels_ = len(self.level_shapes_)

    def _fit_network_levels(self, host):
        if self.n_levels == "auto":
            self.n_levels_ = 2 if min(self.grid_shape_) >= 8 else 1
        else:
            self.n_levels_ = int(self.n_levels)
        coarsest = self.grid_shape_
        self.level_shapes_ = [coarsest]
        for _ in range(1, self.n_levels_):
            coarsest = coarse_shape(coarsest)
            self.level_shapes_.append(coarsest)
        if self.n_levels_ > 1 and min(coarsest) < 4:
            raise ValueError(
                f"n_levels={self.n_levels} coarsens the grid {self.grid_shape_} to "
                f"{coarsest}; every level needs at least 4 cells per "
                "dimension. Use fewer levels."
            )
        # Solid cells (empty rows) never receive a direction: the network is
        # masked to the cells that carry unknowns.
        fluid = (np.diff(host.indptr) > 0).reshape(self.grid_shape_)
        # A coarse cell carries an unknown when any of its fine cells does.
        self._level_fluid = [fluid]
        for _ in range(1, self.n_levels_):
            self._level_fluid.append(
                restrict(np, self._level_fluid[-1].astype(np.float32)) > 0)

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

    def _network_direction(self, xp, grid, mask):
        """The network's direction for ``grid`` (unit-normed first), masked."""
        norm = float(xp.linalg.vector_norm(grid))
        # The network was trained on unit-norm inputs.
        grid = grid / norm if norm > 0 else grid
        return self.network_(grid, engine=self.engine) * mask

    def _multilevel_direction(self, xp, operator, like):
        """The V-cycle proposal ``r -> (q, A q)`` for right-hand sides like ``like``."""
        hierarchy = self._hierarchy
        levels = hierarchy.levels_for(xp, operator, like)
        coarsest = levels[-1]
        if self.coarse_solver == "network":
            mask = to_namespace(coarsest.fluid.astype(np.float32), xp, like=like)

            def coarse_direction(residual, level):
                grid = xp.reshape(residual, level.shape)
                out = self._network_direction(xp, grid, mask)
                return xp.reshape(xp.astype(out, residual.dtype), (-1,))
        else:
            coarse_direction = self.coarse_solver

        operator_scale = self._operator_scale

        def direction(residual):
            q, image = hierarchy.cycle(levels, residual, coarse_direction,
                                       self.smoother_degree)
            return q, image * operator_scale

        return direction

    def _network_level_directions(self, xp, like):
        """The proposals of ``method="dcdm"``, coarsest level first."""
        shapes = self.level_shapes_
        masks = [to_namespace(mask.astype(np.float32), xp, like=like)
                 for mask in self._level_fluid]

        def at_level(level):
            def direction(r):
                grid = xp.reshape(r, shapes[0])
                for _ in range(level):
                    grid = restrict(xp, grid)
                out = self._network_direction(xp, grid, masks[level])
                for finer in range(level - 1, -1, -1):
                    out = prolong(xp, out, shapes[finer]) * masks[finer]
                return xp.reshape(out, (-1,))
            return direction

        return tuple(at_level(level) for level in range(self.n_levels_ - 1, -1, -1))

    def _solve_one(self, b, x0, callback=None):
        xp = check_system(self.operator_, b)
        # Solve for b / max|b| and scale back: norms of b scaled by 1e-300
        # (or 1e300) would underflow (overflow) and end the solve at once.
        scale = float(xp.max(xp.abs(b))) if b.shape[0] else 0.0
        if scale == 0.0:
            return DCDMResult(xp.zeros_like(b), 0, np.zeros(1), True, 0.0, 0)
        scaled_x0 = None if x0 is None else x0 / scale
        if callback is not None:
            user_callback = callback

            def callback(x):
                user_callback(x * scale)
        result = self._solve_scaled(b / scale, scaled_x0, callback)
        result.x = result.x * scale
        return result

    def _solve_scaled(self, b, x0, callback):
        # One BLAS thread around the numba kernels of the cycle (see
        # kernel_threads): the vector products in between are memory-bound,
        # and BLAS threads fighting numba's spinning workers made a 32^3
        # solve on 2 threads 3-6x slower than on one.
        with kernel_threads(None, get_namespace(b)):
            return self._solve_scaled_here(b, x0, callback)

    def _solve_scaled_here(self, b, x0, callback):
        xp = get_namespace(b)
        b_range, norm_b = prepare_rhs(self.operator_, b, xp, self.tol,
                                      components=self._components)
        if norm_b == 0.0:
            return DCDMResult(xp.zeros_like(b_range), 0, np.zeros(1), True, 0.0, 0)
        x = xp.zeros_like(b_range) if x0 is None else xp.astype(x0, b.dtype, copy=True)
        # float32 right-hand sides run the Krylov part in float32 too.
        operator = (self.operator_ if self.operator_.dtype == b.dtype
                    else self.operator_.astype(b.dtype))
        if self.method == "multilevel":
            directions = self._multilevel_direction(xp, self.operator_, b)
        else:
            directions = self._network_level_directions(xp, b)
        with Progress(self.max_iter, self.verbose, type(self).__name__) as progress:
            x, residuals, n_fallbacks = deep_conjugate_directions(
                operator, b_range, x, directions,
                norm_b=norm_b, tol=self.tol, max_iter=self.max_iter,
                n_orthogonal=self.n_orthogonal, progress=progress,
                callback=callback,
            )
        true_residual = float(
            xp.linalg.vector_norm(b_range - operator @ x)) / norm_b
        converged = true_residual <= self.tol
        if not converged:
            warnings.warn(
                f"DeepConjugateDirection did not reach tol={self.tol:g} in "
                f"{residuals.size - 1} iterations (true relative residual "
                f"{true_residual:.3g}); increase max_iter or use a model trained "
                "for this kind of domain.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return DCDMResult(x, int(residuals.size - 1), residuals, bool(converged),
                          true_residual, int(n_fallbacks))

    def solve(self, b, x0=None, *, return_result=False, callback=None):
        """Solve ``A x = b`` for one right-hand side.

        Parameters
        ----------
        b : array of shape (n,)
            Right-hand side, NumPy (CPU) or CuPy (GPU, with a cupyx ``A``).
            Its part in the null space of ``A`` is removed first, with a
            warning when it is not negligible.
        x0 : array of shape (n,), default=None
            Starting guess (zeros by default).
        return_result : bool, default=False
            Return a :class:`DCDMResult` (solution, iterations, residual
            history, fallbacks) instead of the solution alone.
        callback : callable, default=None
            Called as ``callback(xk)`` after every iteration, as in
            :func:`scipy.sparse.linalg.cg`.

        Returns
        -------
        x : array of shape (n,) or DCDMResult
            The solution, in the namespace and dtype of ``b``.

        Warns
        -----
        ConvergenceWarning
            When the true relative residual is above ``tol`` at exit.
        """
        check_is_fitted(self)
        if x0 is not None:
            check_system(self.operator_, x0, name_b="x0")
        if callback is not None and not callable(callback):
            raise TypeError(
                f"callback must be callable; got {type(callback).__name__}.")
        result = self._solve_one(b, x0, callback)
        return result if return_result else result.x

    def transform(self, B):
        """Solve ``A x = b`` for every row ``b`` of ``B``.

        Parameters
        ----------
        B : array or sparse matrix of shape (n_rhs, n)
            Right-hand sides, one per row (a sparse ``B`` is made dense).

        Returns
        -------
        X : array of shape (n_rhs, n)
            Solutions, one per row, in the namespace and dtype of ``B``.
        """
        return self._transform(self._check_right_hand_sides(B))

    def _check_right_hand_sides(self, B):
        check_is_fitted(self)
        B = validate_data(self, B, reset=False, accept_sparse="csr")
        return B.toarray() if sp.issparse(B) else B

    def _transform(self, B):
        xp = get_namespace(B)
        solutions = [self._solve_one(B[row, :], None).x for row in range(B.shape[0])]
        if not solutions:
            return xp.zeros((0, B.shape[1]), dtype=B.dtype)
        return xp.stack(solutions)

    def score(self, B, y=None):
        """Negative mean relative residual ``||b - A x|| / ||b||`` over ``B``'s rows.

        Higher is better, as scikit-learn's scorers expect; a solve that
        reaches ``tol`` scores at least ``-tol``.

        Parameters
        ----------
        B : array of shape (n_rhs, n)
            Right-hand sides, one per row.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        B = self._check_right_hand_sides(B)
        X = self._transform(B)
        xp = get_namespace(X)
        residuals = []
        for row in range(X.shape[0]):
            b = B[row, :]
            norm_b = float(xp.linalg.vector_norm(b))
            error = float(xp.linalg.vector_norm(b - self.operator_ @ X[row, :]))
            residuals.append(error / norm_b if norm_b > 0 else 0.0)
        return -float(np.mean(residuals)) if residuals else 0.0

    def aspreconditioner(self):
        """One multilevel cycle as a :class:`scipy.sparse.linalg.LinearOperator`.

        For SciPy's Krylov solvers, like PyAMG's ``aspreconditioner``. With
        ``coarse_solver="network"`` the cycle is a nonlinear function of the
        residual (ReLUs, and each coarse step is a line search), which only a
        flexible method is sure to tolerate: SciPy's ``gcrotmk``, or this
        estimator's own iteration. ``coarse_solver="smoother"`` gives a fixed
        polynomial on each level apart from the coarse line-search scalars.

        Returns
        -------
        M : scipy.sparse.linalg.LinearOperator
            ``M @ r`` approximates ``A^{-1} r`` (NumPy vectors only).
        """
        check_is_fitted(self)
        if self.method != "multilevel":
            raise ValueError('aspreconditioner needs method="multilevel".')
        operator = sparse_to_host(self.operator_)
        n = operator.shape[0]

        def apply(r):
            r = np.asarray(r, dtype=np.float64).reshape(-1)
            norm = float(np.linalg.norm(r))
            if norm == 0.0:
                return np.zeros_like(r)
            xp = get_namespace(r)
            q, _ = self._multilevel_direction(xp, operator, r)(r / norm)
            # The hierarchy approximates (A / max|A|)^{-1}.
            return q * (norm / self._operator_scale)

        return spla.LinearOperator((n, n), matvec=apply, dtype=np.float64)

    def aslinearoperator(self):
        """The solve ``b -> x`` as a :class:`scipy.sparse.linalg.LinearOperator`.

        Each product runs a full solve to ``tol``, so the operator is linear
        to within ``tol`` (it is ``A^{-1}`` on the range of ``A``).

        Returns
        -------
        solve_operator : scipy.sparse.linalg.LinearOperator
        """
        check_is_fitted(self)
        n = self.operator_.shape[0]
        return spla.LinearOperator(
            (n, n), matvec=lambda b: self.solve(np.asarray(b).reshape(-1)),
            dtype=np.float64)

    def to_cpu(self):
        """Return a copy whose operator and arrays are on the host (SciPy/NumPy).

        See :func:`sparsesolve.utils.to_cpu`: a solver fitted on a cupyx
        matrix, brought to a machine without a GPU. This solver is unchanged.

        Returns
        -------
        solver : DeepConjugateDirection
            A copy that solves NumPy right-hand sides.
        """
        import copy

        moved = copy.copy(self)
        if hasattr(self, "operator_"):
            moved.operator_ = sparse_to_host(self.operator_)
        if hasattr(self, "_hierarchy"):
            moved._hierarchy = self._hierarchy.host_copy()
        return moved

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # fit takes the square system matrix, like a precomputed kernel.
        tags.input_tags.pairwise = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
