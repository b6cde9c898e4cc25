"""Scalar bodies of the proximal (thresholding) operators.

Each body maps one coefficient ``x`` to the minimiser of
``0.5 * (u - x)**2 + threshold-dependent penalty(u)``; it is compiled for the
CPU and the GPU by :mod:`sparsesolve._backend`. Bodies use only scalar
arithmetic so that numba can compile them for both targets.
"""

from .._backend import register_elementwise


@register_elementwise("soft_threshold", n_params=1)
def soft_threshold(x, threshold):
    """Proximal map of ``threshold * |u|``: shrink towards zero by ``threshold``."""
    if x > threshold:
        return x - threshold
    if x < -threshold:
        return x + threshold
    return 0.0 * x


@register_elementwise("hard_threshold", n_params=1)
def hard_threshold(x, threshold):
    """Proximal map of ``0.5 * threshold**2 * [u != 0]``: keep ``|x| > threshold``.

    With penalty ``lam * ||u||_0`` and step 1 the threshold is ``sqrt(2 lam)``;
    the caller converts, so this body stays a pure comparison.
    """
    if x > threshold or x < -threshold:
        return x
    return 0.0 * x
