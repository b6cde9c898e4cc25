"""Alternating minimisation for low-rank matrix completion, written once for NumPy/CuPy.

Model: ``M ~ U V^T`` with ``U`` (n_rows x k) and ``V`` (n_cols x k), fitted on
the observed set Omega by

    min  sum_{(i,j) in Omega} w_ij (m_ij - <u_i, v_j>)^2
         + alpha * s * (sum_i n_i ||u_i||^2 + sum_j n_j ||v_j||^2)

where ``n_i``/``n_j`` count the observations of row i / column j (ALS-WR,
Zhou et al. 2008), ``s`` is the root mean square of the observed values (so
``alpha`` does not depend on the units of the data) and ``w_ij`` are 1 for
the squared loss or iteratively reweighted Huber weights. Every half-sweep
solves all rows (then all columns) independently with the row kernels of
:mod:`._kernels`, run by :func:`sparsesolve._backend.kernel` where the arrays
live (numba on the CPU for NumPy, numba-cuda on the GPU for CuPy).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.extmath import randomized_svd

from .._backend import kernel, to_namespace
from . import _implicit_kernels, _kernels  # noqa: F401 - register the row kernels

__all__ = [
    "alternating_minimization",
    "draw_sketch_hashes",
    "fold_in_rows",
    "predict_entries",
    "HUBER_K",
]

# Huber's tuning constant for 95% efficiency under Gaussian noise, in units of
# the robust noise scale 1.4826 * MAD.
HUBER_K = 1.345
_MAD_TO_SIGMA = 1.4826


def predict_entries(xp, rows, cols, left, right):
    """``<left[rows[e]], right[cols[e]]>`` for every entry ``e``."""
    out = xp.empty(rows.shape, dtype=left.dtype, device=_device(left))
    kernel("completion_predict", xp)(rows.shape[0], rows, cols, left, right, out)
    return out


def _device(array):
    import array_api_compat

    return array_api_compat.device(array)


def spectral_init(csr_host, rank, dtype, random_state, robust=False):
    """Top-``rank`` SVD of the zero-filled observations rescaled by 1/p.

    Jain, Netrapalli and Sanghavi's initialisation: ``E[P_Omega(M) / p] = M``
    under uniform sampling, so its leading singular subspaces are close to
    those of ``M``. The singular values are split evenly between the factors.
    With ``robust=True`` the values are first winsorised at 3 robust standard
    deviations from their median, so gross outliers cannot steer the SVD.
    """
    if robust and csr_host.nnz:
        csr_host = csr_host.copy()
        median = np.median(csr_host.data)
        spread = _MAD_TO_SIGMA * np.median(np.abs(csr_host.data - median))
        if spread > 0:
            np.clip(csr_host.data, median - 3 * spread, median + 3 * spread,
                    out=csr_host.data)
    n_rows, n_cols = csr_host.shape
    density = max(csr_host.nnz, 1) / (n_rows * n_cols)
    left, singular, right_t = randomized_svd(
        csr_host.astype(np.float64) / density,
        rank,
        n_oversamples=10,
        n_iter=4,
        random_state=random_state,
    )
    scale = np.sqrt(singular)
    return (left * scale).astype(dtype), (right_t.T * scale).astype(dtype)


def random_init(shape_rows, shape_cols, rank, dtype, scale, random_state):
    """Small Gaussian factors with ``<u_i, v_j>`` of the data's magnitude."""
    std = math.sqrt(scale / math.sqrt(rank))
    left = random_state.standard_normal((shape_rows, rank)) * std
    right = random_state.standard_normal((shape_cols, rank)) * std
    return left.astype(dtype), right.astype(dtype)


def balance_factors(xp, left, right):
    """Rotate and rescale so that ``left^T left = right^T right`` is diagonal.

    The product ``left @ right.T`` is unchanged; the columns come out ordered
    by decreasing singular value of the completed matrix.
    """
    q_left, r_left = xp.linalg.qr(left)
    q_right, r_right = xp.linalg.qr(right)
    u, s, vt = xp.linalg.svd(r_left @ r_right.T)
    root = xp.sqrt(s)
    return (q_left @ u) * root, (q_right @ vt.T) * root


def _robust_scale(xp, residual):
    """1.4826 * median absolute deviation, via a sort (in the array API)."""
    sorted_residual = xp.sort(residual)
    median = sorted_residual[residual.shape[0] // 2]
    deviation = xp.sort(xp.abs(residual - median))
    return float(deviation[residual.shape[0] // 2]) * _MAD_TO_SIGMA


def huber_terms(xp, residual, delta, dtype):
    """IRLS weights ``min(1, delta / |r|)`` (in ``dtype``) and the Huber data term."""
    magnitude = xp.abs(residual)
    inside = magnitude <= delta
    data_term = xp.where(inside, 0.5 * residual * residual,
                         delta * (magnitude - 0.5 * delta))
    weights = xp.where(inside, xp.ones_like(residual),
                       delta / xp.where(inside, 1.0, magnitude))
    return xp.astype(weights, dtype), data_term


def _huber_weights(xp, residual, dtype):
    """IRLS weights ``min(1, delta / |r|)``, Huber loss and ``delta``."""
    scale = _robust_scale(xp, residual)
    delta = HUBER_K * scale if scale > 0 else float("inf")
    weights, data_term = huber_terms(xp, residual, delta, dtype)
    return weights, data_term, delta


def _row_pass(xp, solver, indptr, indices, values, weights, other, reg, x,
              cg_steps=0, cg_tol=0.0, bucket=None, sign=None, sketch_size=0):
    """Solve every row of ``x`` (updated in place) against ``other``."""
    arguments = (indptr, indices, values, weights, other, reg, x)
    n_rows = x.shape[0]
    if solver == "exact":
        kernel("completion_exact", xp)(n_rows, *arguments)
    elif solver == "cg":
        kernel("completion_cg", xp)(n_rows, *arguments, int(cg_steps), float(cg_tol))
    else:
        kernel("completion_sketch", xp)(n_rows, *arguments, int(cg_steps),
                                        float(cg_tol), bucket, sign, int(sketch_size))


def draw_sketch_hashes(xp, observed, sketch_size, random_state, dtype):
    """CountSketch bucket and sign of every observation, in CSR and CSC order.

    The hashes are drawn once per fit, on the host, so CPU and GPU runs agree
    and results do not depend on the number of threads.
    """
    values = observed.values
    host_bucket = random_state.randint(0, sketch_size, size=observed.n_observed)
    host_sign = random_state.choice(np.array([-1.0, 1.0], dtype=dtype),
                                    observed.n_observed)
    bucket = to_namespace(host_bucket.astype(np.int32), xp, like=values)
    sign = to_namespace(host_sign, xp, like=values)
    return (bucket, sign, xp.take(bucket, observed.transpose_order),
            xp.take(sign, observed.transpose_order))


def alternating_minimization(
    xp,
    observed,
    left,
    right,
    *,
    solver,
    alpha,
    value_scale,
    loss,
    max_iter,
    tol,
    cg_steps,
    sketch_size,
    random_state,
    progress,
    sketch_hashes=None,
    biases=None,
):
    """Run AltMin sweeps from ``(left, right)``; return factors and history.

    Parameters
    ----------
    xp : module
        Namespace of the device arrays in ``observed``, ``left`` and ``right``.
    observed : ObservedEntries
        CSR/CSC structure of the observations on the device.
    left, right : arrays of shape (n_rows, k) and (n_cols, k)
        Starting factors (updated in place and returned).
    solver : {"exact", "cg", "sketch"}
        Per-row least-squares solver.
    alpha : float
        Relative ridge strength (see module docstring).
    value_scale : float
        Root mean square of the observed training values (``s`` above).
    loss : {"squared", "huber"}
        Data-fit term; Huber is solved by iteratively reweighted ALS.
    max_iter : int
        Most sweeps (one row pass plus one column pass each).
    tol : float
        Stop when the training loss changes by less than ``tol`` relative, or
        when the root mean square residual is below ``tol`` times the data's.
    cg_steps : int
        CG iterations per row and half-sweep (``"cg"`` and ``"sketch"``).
    sketch_size : int
        Rows of the CountSketch (``"sketch"``).
    random_state : numpy.random.RandomState
        Source of the sketch hashes (drawn once on the host).
    progress : Progress
        Receives one update per sweep.
    sketch_hashes : tuple of arrays, optional
        Output of :func:`draw_sketch_hashes` to reuse (``"sketch"``); drawn
        from ``random_state`` when None.
    biases : tuple of two arrays, optional
        ``(row_bias, col_bias)`` of shapes (n_rows,) and (n_cols,), starting
        values of per-row and per-column offsets fitted with the factors
        (updated and returned); None fits the pure low-rank model. Each
        half-sweep first solves the factors on the values less both
        offsets, then updates that side's offsets in closed form,
        ``b_i = sum_j w_ij r_ij / (sum_j w_ij + lam)`` with ``r_ij`` the
        residual of the rest of the model. ``lam`` is the same for every row
        of a side (``alpha`` times the mean number of observations per
        row; unlike the factors' ridge it has no ``s``, so that the fit is
        equivariant in the units of the data), so sparsely observed rows
        and columns are shrunk towards the global mean, as in Koren's
        baseline estimates (Koren 2010, "Factor in the neighbors", section
        2.1); scaling it with each row's count,
        as ALS-WR does for the factors, would leave one-rating users with
        their whole residual as bias.

    Returns
    -------
    left, right : arrays
        Fitted factors.
    history : list of float
        Training loss after every sweep.
    converged : bool
        Whether the ``tol`` criterion was met.
    huber_delta : float or None
        Final Huber threshold (None for the squared loss).
    biases : tuple of two arrays or None
        Fitted ``(row_bias, col_bias)`` when ``biases`` was given.
    """
    dtype = left.dtype
    values = observed.values
    n_observed = observed.n_observed
    rms = value_scale
    # ALS-WR: the ridge of a row grows with its number of observations, so
    # heavy and cold rows are shrunk alike relative to their data term.
    reg_rows = to_namespace(
        (alpha * rms * np.maximum(observed.counts, 1)).astype(dtype), xp, like=values
    )
    reg_cols = to_namespace(
        (alpha * rms * np.maximum(observed.counts_t, 1)).astype(dtype), xp, like=values
    )
    weights = xp.ones(values.shape, dtype=dtype, device=_device(values))
    weights_t = weights
    bucket = bucket_t = sign = sign_t = None
    if solver == "sketch":
        if sketch_hashes is None:
            sketch_hashes = draw_sketch_hashes(xp, observed, sketch_size,
                                               random_state, dtype)
        bucket, sign, bucket_t, sign_t = sketch_hashes

    cg_tol = 1e-10 if dtype == np.float64 else 1e-5
    # Below this mean loss the residuals are round-off of the data's scale:
    # relative changes there are noise, so the fit counts as converged.
    round_off_loss = (10 * float(np.finfo(dtype).eps) * value_scale) ** 2
    # On (nearly) exact data the loss falls geometrically, so its relative
    # change never drops below tol; a fit whose residuals are below tol times
    # the data's scale is converged as well.
    fitted_loss = max(round_off_loss, 0.5 * (tol * value_scale) ** 2)
    history = []
    converged = False
    huber_delta = None
    row_bias = col_bias = None
    if biases is not None:
        row_bias, col_bias = biases
        # Column of every CSR entry is ``indices``; row of every CSC entry is
        # ``indices_t`` and its column is ``columns_t``.
        columns_t = xp.take(observed.indices, observed.transpose_order)
        # No factor s here: an offset has the units of the data (a factor
        # only their square root), so ``lam b**2`` matches the data term for
        # any units when ``lam`` is a pure number.
        bias_reg_rows = alpha * float(np.mean(np.maximum(observed.counts, 1)))
        bias_reg_cols = alpha * float(np.mean(np.maximum(observed.counts_t, 1)))
        # Unit weights (squared loss) sum to the observation counts.
        totals_rows = totals_cols = None
        if loss == "squared":
            totals_rows = to_namespace(observed.counts.astype(np.float64), xp,
                                       like=values)
            totals_cols = to_namespace(observed.counts_t.astype(np.float64), xp,
                                       like=values)

    def current_residual():
        residual = values - predict_entries(xp, observed.rows, observed.indices,
                                            left, right)
        if biases is not None:
            residual = (residual - xp.take(row_bias, observed.rows)
                        - xp.take(col_bias, observed.indices))
        return residual

    if loss == "huber" and n_observed:
        # Weight the very first solves already: the initial factors come from
        # winsorised data, so their residuals flag the outliers.
        weights, _, huber_delta = _huber_weights(xp, current_residual(), dtype)
        weights_t = xp.take(weights, observed.transpose_order)
    for _ in range(max_iter):
        if biases is None:
            _row_pass(xp, solver, observed.indptr, observed.indices, values,
                      weights, right, reg_rows, left, cg_steps, cg_tol, bucket, sign,
                      sketch_size)
            _row_pass(xp, solver, observed.indptr_t, observed.indices_t,
                      observed.values_t, weights_t, left, reg_cols, right, cg_steps,
                      cg_tol, bucket_t, sign_t, sketch_size)
        else:
            # Rows: factors on m_ij - b_i - c_j, then b_i on what is left.
            offset = values - xp.take(col_bias, observed.indices)
            _row_pass(xp, solver, observed.indptr, observed.indices,
                      offset - xp.take(row_bias, observed.rows), weights, right,
                      reg_rows, left, cg_steps, cg_tol, bucket, sign, sketch_size)
            row_bias = shrunk_offsets(
                xp, offset - predict_entries(xp, observed.rows, observed.indices,
                                             left, right),
                weights, observed.indptr, bias_reg_rows, dtype, totals_rows)
            # Columns: the same with the roles swapped (CSC order).
            offset = observed.values_t - xp.take(row_bias, observed.indices_t)
            _row_pass(xp, solver, observed.indptr_t, observed.indices_t,
                      offset - xp.take(col_bias, columns_t), weights_t, left,
                      reg_cols, right, cg_steps, cg_tol, bucket_t, sign_t,
                      sketch_size)
            column_residual = offset - predict_entries(xp, observed.indices_t,
                                                       columns_t, left, right)
            col_bias = shrunk_offsets(xp, column_residual, weights_t,
                                      observed.indptr_t, bias_reg_cols, dtype,
                                      totals_cols)
        if biases is not None and loss == "squared":
            # The full residual in CSC order: the loss does not depend on the
            # order, so this saves one pass over the entries.
            residual = column_residual - xp.take(col_bias, columns_t)
        else:
            residual = current_residual()
        if loss == "huber" and n_observed:
            weights, data_term, huber_delta = _huber_weights(xp, residual, dtype)
            weights_t = xp.take(weights, observed.transpose_order)
        else:
            data_term = 0.5 * residual * residual
        current = float(xp.mean(data_term)) if n_observed else 0.0
        progress.update(loss=current)
        if sweeps_converged(history, current, tol, fitted_loss):
            converged = True
            break
    fitted_biases = None if biases is None else (row_bias, col_bias)
    return left, right, history, converged, huber_delta, fitted_biases


class AlphaPath:
    """The held-out errors along a regularisation path, and where to stop it.

    Records ``(alpha, error)`` pairs in ``path``, keeps the best step's
    ``(error, alpha, state)`` in ``best`` and stops once the error has risen
    at two consecutive strengths (the error is unimodal along the path in
    practice: over-smoothing, then over-fitting).

    Parameters
    ----------
    path : list
        Receives the ``(alpha, error)`` pairs (the estimator's
        ``alpha_path_``).
    fallback : tuple
        ``(alpha, state)`` returned when no step is recorded.
    """

    def __init__(self, path, fallback):
        self.path = path
        self.best = (math.inf, *fallback)
        self._rises = 0
        self._previous = math.inf

    def record(self, alpha, error, state):
        """Record one step of the path; True when the path should stop."""
        self.path.append((alpha, error))
        if error < self.best[0]:
            self.best = (error, alpha, state)
        self._rises = self._rises + 1 if error > self._previous else 0
        self._previous = error
        return self._rises >= 2


def sweeps_converged(history, current, tol, fitted_loss=-math.inf):
    """Append the loss of a sweep to ``history``; whether to stop sweeping.

    The sweeps stop when the loss changes by at most ``tol`` of its previous
    value, or when it reaches ``fitted_loss`` (the loss of an exact fit, when
    there is one).
    Used by the in-memory and the distributed sweeps alike.
    """
    previous = history[-1] if history else None
    history.append(current)
    if previous is not None and abs(previous - current) <= tol * max(previous,
                                                                     1e-300):
        return True
    return current <= fitted_loss


def shrunk_offsets(xp, residual, weights, indptr, ridge, dtype, totals=None):
    """Per-row ``sum_j w_ij r_ij / (sum_j w_ij + ridge)`` over a CSR layout.

    Row sums are differences of a running sum at the row pointers, which
    every array-API library (NumPy, CuPy) provides; accumulated in float64
    so that float32 data keep their precision. ``totals``, the per-row sums
    of the weights, can be passed when they are known (the observation
    counts, for unit weights).
    """
    wide = xp.float64
    zero = xp.zeros(1, dtype=wide, device=_device(residual))
    start, stop = indptr[:-1], indptr[1:]
    weighted = xp.concat([zero, xp.cumulative_sum(xp.astype(weights * residual,
                                                            wide))])
    numerator = xp.take(weighted, stop) - xp.take(weighted, start)
    if totals is None:
        running = xp.concat([zero, xp.cumulative_sum(xp.astype(weights, wide))])
        totals = xp.take(running, stop) - xp.take(running, start)
    return xp.astype(numerator / (totals + ridge), dtype)


# Most block updates (factor, then bias) of folded-in rows; see fold_in_rows.
_FOLD_IN_ALTERNATIONS = 200


def fold_in_rows(xp, observed, right, alpha, value_scale, col_bias=None,
                 bias_ridge=0.0):
    """Row factors of new rows by an exact ridge solve against ``right``.

    Each new row is one small least-squares problem, so the exact solver is
    always used here; the ridge follows the same ALS-WR rule as in fitting.
    With ``col_bias`` (values already centred by the global mean) each row's
    factor and bias (ridge ``bias_ridge``) are fitted by the block updates
    of the fitting sweeps, repeated, and the pair ``(left, row_bias)`` is
    returned; otherwise ``left`` alone.
    """
    dtype = right.dtype
    values = observed.values
    reg_rows = to_namespace(
        (alpha * value_scale * np.maximum(observed.counts, 1)).astype(dtype), xp,
        like=right,
    )
    weights = xp.ones(values.shape, dtype=dtype, device=_device(right))
    left = xp.zeros((observed.shape[0], right.shape[1]), dtype=dtype,
                    device=_device(right))
    if col_bias is None:
        _row_pass(xp, "exact", observed.indptr, observed.indices, values, weights,
                  right, reg_rows, left)
        return left
    # Each row's (factor, bias) problem is jointly convex in two blocks, so
    # alternating the two updates converges (linearly, at a rate set by how
    # far the mean of the factors is from 0); stop when the biases settle.
    offset = values - xp.take(col_bias, observed.indices)
    row_bias = xp.zeros(observed.shape[0], dtype=dtype, device=_device(right))
    settled = 1e-10 if dtype == np.float64 else 1e-5
    for _ in range(_FOLD_IN_ALTERNATIONS):
        _row_pass(xp, "exact", observed.indptr, observed.indices,
                  offset - xp.take(row_bias, observed.rows), weights, right,
                  reg_rows, left)
        previous = row_bias
        row_bias = shrunk_offsets(
            xp, offset - predict_entries(xp, observed.rows, observed.indices, left,
                                         right),
            weights, observed.indptr, bias_ridge, dtype)
        if row_bias.shape[0] == 0 or float(xp.max(xp.abs(row_bias - previous))) <= (
                settled * value_scale):
            break
    return left, row_bias


def _implicit_sides(csr_host, confidence, dtype):
    """CSR arrays of one side for confidence-weighted ALS.

    Returns ``(indptr, indices, values, weights)`` with ``weights = c - 1 =
    confidence * r`` and ``values = c p`` (``1 + confidence * r`` where ``r >
    0``, else 0) of every stored entry, as the implicit row kernels take them.
    """
    raw = csr_host.data.astype(np.float64)
    weights = confidence * raw
    values = np.where(raw > 0, 1.0 + weights, 0.0)
    index_dtype = np.int32 if max(csr_host.nnz, csr_host.shape[1]) < 2**31 - 1 \
        else np.int64
    return (csr_host.indptr.astype(index_dtype), csr_host.indices.astype(index_dtype),
            values.astype(dtype), weights.astype(dtype))


def implicit_alternating_minimization(xp, csr_host, left, right, *, solver, reg,
                                      confidence, max_iter, tol, cg_steps,
                                      progress, like=None):
    """Confidence-weighted ALS for implicit feedback (Hu, Koren and Volinsky 2008).

    Minimises ``sum_{all i,j} c_ij (p_ij - u_i.v_j)^2 + reg (||U||^2 + ||V||^2)``
    with ``p_ij = 1`` where ``r_ij > 0`` (else 0) and ``c_ij = 1 +
    confidence * r_ij``. A row's normal equations are
    ``(Y^T Y + Y_i^T (C_i - I) Y_i + reg I) x = Y_i^T C_i p_i``: ``Y^T Y`` is
    shared by every row and the rest only involves the observed entries
    (the "Gram trick" of the paper). ``Y^T Y + reg I`` is formed once per
    half-sweep (one BLAS product) and handed to the implicit row kernels of
    :mod:`._implicit_kernels`, which apply it densely: ``O(nnz k^2 + n k^3)``
    per sweep for the exact solver and ``O(nnz k + n k^2)`` per CG step.

    ``csr_host`` holds the raw interaction strengths ``r_ij >= 0``; returns
    ``(left, right, history, converged)``, ``history`` holding the mean
    weighted squared error over all ``n_rows * n_cols`` entries.
    """
    dtype = left.dtype
    rank = left.shape[1]
    n_rows, n_cols = csr_host.shape
    sides = []
    for host in (csr_host, csr_host.T.tocsr()):
        host.sort_indices()
        sides.append(tuple(to_namespace(np.ascontiguousarray(a), xp, like=like)
                           for a in _implicit_sides(host, confidence, dtype)))
    cg_tol = 1e-10 if dtype == np.float64 else 1e-5
    ridge = reg * xp.eye(rank, dtype=dtype, device=_device(left))
    loss_rows = xp.empty(n_rows, dtype=xp.float64, device=_device(left))

    def solve(side, gram, x, other):
        indptr, indices, values, weights = side
        if solver == "exact":
            kernel("completion_implicit_exact", xp)(
                x.shape[0], indptr, indices, values, weights, other, gram, x)
        else:
            kernel("completion_implicit_cg", xp)(
                x.shape[0], indptr, indices, values, weights, other, gram, x,
                int(cg_steps), float(cg_tol))

    history = []
    converged = False
    gram_right = right.T @ right
    for _ in range(max_iter):
        solve(sides[0], gram_right + ridge, left, right)
        gram_left = left.T @ left
        solve(sides[1], gram_left + ridge, right, left)
        gram_right = right.T @ right
        # sum over all entries of c (p - x)^2 = sum_all x^2
        #   + sum_observed [c (p - x)^2 - x^2], and sum_all x^2 =
        #   trace(U^T U V^T V), from the Gram matrices of the solves.
        kernel("completion_implicit_loss", xp)(n_rows, *sides[0], left, right,
                                               loss_rows)
        everywhere = float(xp.sum(xp.astype(gram_left, xp.float64)
                                  * xp.astype(gram_right, xp.float64)))
        current = (everywhere + float(xp.sum(loss_rows))) / (n_rows * n_cols)
        progress.update(loss=current)
        if sweeps_converged(history, current, tol):
            converged = True
            break
    return left, right, history, converged
