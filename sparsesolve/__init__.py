"""sparsesolve: sparse and structured solvers with scikit-learn manners.

Six solver families, each usable on NumPy arrays (CPU, numba) and CuPy
arrays (GPU): Kronecker-structured sparse Bayesian recovery, l_q sparse
coding and dictionary learning, robust hyperspectral unmixing, low-rank
matrix completion, deep conjugate-direction Poisson solves and transductive
Laplacian clustering. Run ``python -m sparsesolve demo`` for a tour.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sparsesolve")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
