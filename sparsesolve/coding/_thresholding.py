"""Public thresholding (proximal) operators."""

from __future__ import annotations

import math
from numbers import Real

from .._backend import get_namespace, kernel
from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_array_argument
from . import _kernels  # noqa: F401  - registers the kernels

__all__ = ["PENALTIES", "threshold"]

PENALTIES = ("l1", "l0", "l1/2", "cel0")


def _check_nonnegative(value, name, xp, x_shape):
    """Return ``value`` as a scalar or an ``xp`` array after checking it is >= 0.

    An array must broadcast the way the kernels read it: one value per
    column of ``x`` (shape ``(x.shape[-1],)``) or one per entry.
    """
    if hasattr(value, "shape") or isinstance(value, (list, tuple)):
        array = check_array_argument(value, name, allow_empty=True,
                                     caller="threshold")
        array = xp.asarray(array)
        if bool(xp.any(array < 0)):
            raise ValueError(f"{name} must be nonnegative and finite.")
        if array.ndim == 0:
            return float(array)
        shape = tuple(array.shape)
        if shape != tuple(x_shape) and shape != tuple(x_shape[-1:]):
            raise ValueError(
                f"{name} must be a scalar, of shape {tuple(x_shape[-1:])} (one "
                f"value per column of x) or of the shape of x {tuple(x_shape)}; "
                f"got shape {shape}."
            )
        return array
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number or an array; got {type(value).__name__}."
        ) from None
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a nonnegative finite number; got {value!r}.")
    return number


def apply_prox(x, penalty, lam, step, atom_norms, xp):
    """:func:`threshold` without argument checks, for the solvers' inner loops."""
    if penalty == "l1":
        return kernel("soft_threshold", xp)(x, lam * step)
    if penalty == "l0":
        return kernel("hard_threshold", xp)(x, (2.0 * step * lam) ** 0.5)
    if penalty == "l1/2":
        # Xu's H_t minimises (u - x)^2 + t|u|^(1/2), without the 1/2 of our
        # objective: the prox of step*lam*|u|^(1/2) is H_t with t = 2 step lam.
        return kernel("half_threshold", xp)(x, 2.0 * step * lam)
    return kernel("cel0_threshold", xp)(x, step, lam, atom_norms)


@validate_params(
    {
        "x": ["array-like", Real],
        "penalty": [StrOptions(set(PENALTIES))],
        "lam": ["array-like", Interval(Real, 0, None, closed="left")],
        "step": [Interval(Real, 0, None, closed="neither")],
        "atom_norms": ["array-like", Interval(Real, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def threshold(x, penalty, lam, step=1.0, atom_norms=None):
    """Apply the proximal map of ``step * lam * penalty`` elementwise.

    The proximal map of a penalty ``psi`` is
    ``prox(x) = argmin_u 0.5 (u - x)**2 + step * lam * psi(u)``; it is the
    second half of one proximal-gradient (ISTA) step on
    ``0.5 ||x - D c||^2 + lam sum_i psi(c_i)``.

    Parameters
    ----------
    x : array of shape (...)
        Real coefficients (NumPy on the CPU, CuPy on the GPU). Not modified.
        Complex, NaN and infinite entries are refused (these proximal maps
        are defined on the real line).
    penalty : {"l1", "l0", "l1/2", "cel0"}
        ``"l1"``: soft thresholding, ``sign(x) max(|x| - step lam, 0)``.
        ``"l0"``: hard thresholding for ``lam ||u||_0``, keeping entries with
        ``|x| > sqrt(2 step lam)``.
        ``"l1/2"``: half thresholding for ``lam sum |u|**0.5`` (Xu et al.,
        2012, with ``t = 2 step lam``): zero when
        ``|x| <= (54**(1/3) / 4) (2 step lam)**(2/3)``.
        ``"cel0"``: the continuous exact l0 penalty of Soubies et al. (2015),
        which depends on the norms ``a_i`` of the atoms: zero when
        ``|x| <= sqrt(2 lam) a_i step``, identity from ``|x| >= sqrt(2 lam) / a_i``,
        linear with slope ``1 / (1 - a_i**2 step)`` in between; hard
        thresholding at ``sqrt(2 step lam)`` when ``a_i**2 step >= 1``.
    lam : float or array
        Penalty weight: a scalar, one value per column (shape ``(x.shape[-1],)``)
        or one per entry (the shape of ``x``).
    step : float, default=1.0
        Step size of the proximal-gradient iteration.
    atom_norms : float or array, default=None
        Only for ``"cel0"``: the norm of the atom each coefficient multiplies,
        a scalar, one per column or one per entry. ``None`` means unit-norm
        atoms; a zero norm (a dead atom) carries no penalty, so the map is
        the identity there.

    Returns
    -------
    array
        Thresholded copy of ``x`` in the namespace of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.coding import threshold
    >>> x = np.array([-2.0, 0.5, 3.0])
    >>> threshold(x, "l1", lam=1.0)
    array([-1.,  0.,  2.])
    >>> threshold(x, "l0", lam=1.0)
    array([-2.,  0.,  3.])
    >>> threshold(x, "l1/2", lam=0.5).round(4)
    array([-1.8144,  0.    ,  2.852 ])
    >>> threshold(x, "cel0", lam=0.2, step=0.5).round(4)
    array([-2.    ,  0.3675,  3.    ])
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}; got {penalty!r}.")
    if isinstance(step, bool) or not (
        isinstance(step, (int, float)) and math.isfinite(step) and step > 0
    ):
        raise ValueError(f"step must be a positive finite number; got {step!r}.")
    scalar_input = isinstance(x, Real)
    x = check_array_argument(x, "x", allow_empty=True, caller="threshold")
    xp = get_namespace(x, *(a for a in (lam, atom_norms) if hasattr(a, "shape")))
    zero_dimensional = x.ndim == 0
    if zero_dimensional:
        x = xp.reshape(x, (1,))
    lam = _check_nonnegative(lam, "lam", xp, x.shape)
    if penalty == "cel0":
        atom_norms = _check_nonnegative(
            1.0 if atom_norms is None else atom_norms, "atom_norms", xp, x.shape
        )
    elif atom_norms is not None:
        raise ValueError(
            f"atom_norms is only used by penalty='cel0'; got penalty={penalty!r}."
        )
    result = apply_prox(x, penalty, lam, float(step), atom_norms, xp)
    if scalar_input:
        return float(result[0])
    if zero_dimensional:
        return xp.reshape(result, ())
    return result
