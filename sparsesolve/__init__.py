"""sparsesolve: sparse and structured solvers with scikit-learn manners.

Six solver families, each usable on NumPy arrays (CPU, numba) and CuPy
arrays (GPU): Kronecker-structured sparse Bayesian recovery, l_q sparse
coding and dictionary learning, robust hyperspectral unmixing, low-rank
matrix completion, deep conjugate-direction Poisson solves and transductive
Laplacian clustering. Run ``python -m sparsesolve demo`` for a tour.

The estimators are importable from here or from their family module
(``sparsesolve.KroneckerSBL`` is ``sparsesolve.kronecker.KroneckerSBL``).
Families are imported on first use, so ``import sparsesolve`` stays quick.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sparsesolve")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# Public name -> family module that defines it.
_PUBLIC = {
    "KroneckerOperator": "kronecker",
    "KroneckerSBL": "kronecker",
    "LqDictionaryLearning": "coding",
    "LqSparseCoder": "coding",
    "threshold": "coding",
    "RobustUnmixing": "unmixing",
    "fcls": "unmixing",
    "vca": "unmixing",
    "AltMinCompletion": "completion",
    "DeepConjugateDirection": "poisson",
    "cg": "poisson",
    "ic0_pcg": "poisson",
    "poisson_matrix": "poisson",
    "LaplacianKMeans": "clustering",
    "TransductiveFewShotClassifier": "clustering",
    "to_device": "utils",
    "to_numpy": "utils",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name):
    if name in _PUBLIC:
        module = importlib.import_module(f"sparsesolve.{_PUBLIC[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sparsesolve' has no attribute {name!r}")


def __dir__():
    return __all__
