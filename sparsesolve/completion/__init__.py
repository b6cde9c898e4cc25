"""Low-rank matrix completion by (robust) alternating minimisation.

:class:`AltMinCompletion` fills in a partially observed matrix with a rank-k
model ``U V^T``, with exact, conjugate-gradient or sketch-preconditioned row
solves compiled by numba for the CPU and numba-cuda for CuPy input, from a
matrix or from (user, item, rating) tables with arbitrary ids.
:class:`RatingsKFold` cross-validates over observed ratings.
"""

# sparsesolve._backend.get_namespace returns ``array_api_compat.numpy`` when
# no array is given, an attribute that only exists once the submodule has
# been imported somewhere; make sure it has.
import array_api_compat.numpy  # noqa: F401

from ._estimator import AltMinCompletion
from ._split import RatingsKFold

__all__ = ["AltMinCompletion", "RatingsKFold"]
