"""Public thresholding (proximal) operators."""

from __future__ import annotations

import math

from .._backend import get_namespace, kernel
from . import _kernels  # noqa: F401  - registers the kernels

__all__ = ["threshold"]

_PENALTIES = ("l1", "l0")


def threshold(x, penalty, lam, step=1.0):
    """Apply the proximal map of ``step * lam * penalty`` elementwise.

    Parameters
    ----------
    x : array of shape (...)
        Coefficients (NumPy on the CPU, CuPy on the GPU). Not modified.
    penalty : {"l1", "l0"}
        ``"l1"``: soft thresholding, ``prox(x) = sign(x) max(|x| - step lam, 0)``.
        ``"l0"``: hard thresholding for ``lam ||u||_0``, keeping entries with
        ``|x| > sqrt(2 step lam)``.
    lam : float or array
        Penalty weight: a scalar, one value per column (shape ``(x.shape[-1],)``)
        or one per entry (the shape of ``x``).
    step : float, default=1.0
        Step size of the proximal-gradient iteration.

    Returns
    -------
    array
        Thresholded copy of ``x`` in the namespace of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.coding import threshold
    >>> threshold(np.array([-2.0, 0.5, 3.0]), "l1", lam=1.0)
    array([-1.,  0.,  2.])
    >>> threshold(np.array([-2.0, 0.5, 3.0]), "l0", lam=1.0)
    array([-2.,  0.,  3.])
    """
    if penalty not in _PENALTIES:
        raise ValueError(f"penalty must be one of {_PENALTIES}; got {penalty!r}.")
    if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive finite number; got {step!r}.")
    xp = get_namespace(x, lam)
    lam_array = xp.asarray(lam) if hasattr(lam, "shape") else lam
    if hasattr(lam_array, "shape"):
        if bool(xp.any(lam_array < 0)):
            raise ValueError("lam must be nonnegative.")
    elif not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a nonnegative finite number; got {lam!r}.")
    if penalty == "l1":
        return kernel("soft_threshold", xp)(x, lam_array * step)
    return kernel("hard_threshold", xp)(x, (2.0 * step * lam_array) ** 0.5)
