"""Poisson operators, Krylov baselines and the deep conjugate-direction solver.

* :func:`poisson_matrix` builds the 5-point (2D) / 7-point (3D) Laplacian of
  a cell grid with solid obstacles; :func:`floating_components` and
  :func:`project_to_range` deal with its null space.
* :func:`cg` and :func:`ic0_pcg` are the classical baselines, with residual
  histories and the same stopping rule as the learned solver.
* :class:`DeepConjugateDirection` runs the deep conjugate-direction method
  with a shipped (or user-trained) :class:`DirectionNetwork`;
  :func:`train_direction_model` trains one (needs PyTorch, extra ``train``).
"""

from ._estimator import DeepConjugateDirection
from ._krylov import IncompleteCholesky, KrylovResult, cg, ic0_pcg
from ._network import DirectionNetwork
from ._operator import floating_components, poisson_matrix, project_to_range
from ._training import make_training_vectors, train_direction_model

__all__ = [
    "DeepConjugateDirection",
    "DirectionNetwork",
    "IncompleteCholesky",
    "KrylovResult",
    "cg",
    "floating_components",
    "ic0_pcg",
    "make_training_vectors",
    "poisson_matrix",
    "project_to_range",
    "train_direction_model",
]
