"""Low-rank matrix completion by (robust) alternating minimisation.

:class:`AltMinCompletion` fills in a partially observed matrix with a rank-k
model ``U V^T``, with exact, conjugate-gradient or sketch-preconditioned row
solves compiled by numba for the CPU and numba-cuda for CuPy input.
"""

# sparsesolve._backend.get_namespace returns ``array_api_compat.numpy`` when
# no array is given, an attribute that only exists once the submodule has
# been imported somewhere; make sure it has.
import array_api_compat.numpy  # noqa: F401

from ._estimator import AltMinCompletion

__all__ = ["AltMinCompletion"]
