"""The deep conjugate-direction iteration (Kaneda et al., ICML 2023).

A truncated conjugate-direction method whose search direction is a learned
function of the normalised residual, ``q = f(r / ||r||)``, A-orthogonalised
against the last ``n_orthogonal`` directions (modified Gram-Schmidt), with the
exact A-norm line search ``alpha = q.r / q.Aq``. Each step minimises the
A-norm error along ``q``, so the error never grows whatever the network
returns; when the direction is useless (``q.r`` tiny or ``q.Aq <= 0``) the
residual itself is used instead (a steepest-descent step) so that the
iteration cannot stall. Several proposals per iteration (coarse to fine,
see ``DeepConjugateDirection(n_levels=...)``) are taken one after the other,
each from the residual the previous one left, with its own orthogonalisation
and line search. A proposal may return ``(q, A q)`` when it has the image
anyway (the multilevel cycle does), which saves the matrix-vector product.
Written once against the namespace of ``b``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["deep_conjugate_directions"]

# Below this cosine between the proposed direction and the residual the step
# would gain almost nothing; fall back to the residual.
_MIN_COSINE = 1e-8


def deep_conjugate_directions(A, b, x, direction, *, norm_b, tol, max_iter,
                              n_orthogonal, progress=None, callback=None):
    """Run the DCDM iteration from ``x`` until ``||b - A x|| <= tol * norm_b``.

    Parameters
    ----------
    A : sparse matrix
        SciPy or cupyx sparse, symmetric positive (semi-)definite.
    b : array of shape (n,)
        Right-hand side in the range of ``A``.
    x : array of shape (n,)
        Starting point (not modified).
    direction : callable or sequence of callables
        ``direction(r)`` returns a search direction for the residual ``r``
        (already divided by its norm) in the same namespace, or the pair
        ``(q, A q)``. With a sequence, every iteration takes one step along
        each proposal in turn.
    norm_b : float
        ``||b||`` (the reference of the relative residual).
    tol : float
        Relative residual to reach.
    max_iter : int
        Most iterations.
    n_orthogonal : int
        How many previous directions each new one is A-orthogonalised against.
    progress : Progress, optional
        Updated once per iteration with the relative residual.
    callback : callable, optional
        Called as ``callback(x)`` after every iteration, as SciPy's solvers do.

    Returns
    -------
    x : array of shape (n,)
    residuals : ndarray of shape (n_iter + 1,)
        Relative residuals from iteration 0.
    n_fallbacks : int
        Steps where the residual replaced the network's direction.
    """
    import array_api_compat

    xp = array_api_compat.array_namespace(b)
    proposals = (tuple(direction) if isinstance(direction, (list, tuple))
                 else (direction,))
    x = xp.asarray(x, copy=True)
    r = b - A @ x
    norm_r = float(xp.linalg.vector_norm(r))
    residuals = [norm_r / norm_b]
    history = []  # (p, A p, p.A p) of the last n_orthogonal directions
    n_fallbacks = 0
    exhausted = False
    while residuals[-1] > tol and len(residuals) <= max_iter:
        for propose in proposals:
            proposed = propose(r / norm_r)
            if isinstance(proposed, tuple):
                q, Aq = (xp.astype(v, b.dtype) for v in proposed)
            else:
                q, Aq = xp.astype(proposed, b.dtype), None
            q, Aq, curvature = _orthogonalise(xp, A, q, history, Aq)
            gain = float(xp.vecdot(q, r))
            norm_q = float(xp.linalg.vector_norm(q))
            if curvature <= 0.0 or not abs(gain) > _MIN_COSINE * norm_q * norm_r:
                n_fallbacks += 1
                q, Aq, curvature = _orthogonalise(xp, A, r, history)
                gain = float(xp.vecdot(q, r))
                if curvature <= 0.0:
                    exhausted = True  # r is in the null space of A: nothing to gain
                    break
            alpha = gain / curvature
            x = x + alpha * q
            r = r - alpha * Aq
            history.append((q, Aq, curvature))
            if len(history) > n_orthogonal:
                history.pop(0)
            norm_r = float(xp.linalg.vector_norm(r))
            if norm_r == 0.0:
                break
        if exhausted:
            break
        if norm_r <= tol * norm_b:
            # Confirm with the true residual before stopping; continue from it
            # when the recursively updated one has drifted.
            r = b - A @ x
            norm_r = float(xp.linalg.vector_norm(r))
        residuals.append(norm_r / norm_b)
        if progress is not None:
            progress.update(residual=residuals[-1])
        if callback is not None:
            callback(x)
        if norm_r == 0.0:
            break
    return x, np.asarray(residuals), n_fallbacks


def _orthogonalise(xp, A, q, history, Aq=None):
    """A-orthogonalise ``q`` against ``history`` (modified Gram-Schmidt).

    With ``Aq`` given, its image is updated alongside instead of recomputed.
    """
    for p, Ap, curvature in history:
        coefficient = float(xp.vecdot(q, Ap)) / curvature
        q = q - coefficient * p
        if Aq is not None:
            Aq = Aq - coefficient * Ap
    if Aq is None:
        Aq = A @ q
    return q, Aq, float(xp.vecdot(q, Aq))
