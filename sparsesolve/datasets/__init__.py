"""Synthetic problem generators and small shipped data sets.

Conventions: ``make_*`` functions build a problem from a seed
(``random_state``, anything :func:`sklearn.utils.check_random_state` accepts)
and return NumPy arrays (move them to the GPU yourself with ``cupy.asarray``);
``load_*`` functions read data that ships inside the package. Nothing is
downloaded at run time.
"""

__all__ = []
