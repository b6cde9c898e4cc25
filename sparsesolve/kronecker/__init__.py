"""Sparse Bayesian learning with Kronecker-structured dictionaries (KroSBL).

Recover a sparse ``x`` from ``y = (A_1 ⊗ ⋯ ⊗ A_I) x + noise`` when the
support of ``x`` is Kronecker-structured, without forming the Kronecker
product: :class:`KroneckerSBL` (SVD-, AM- and pattern-coupled KroSBL, plus
classical SBL as a baseline) and the matrix-free :class:`KroneckerOperator`.
"""

from ._estimator import KroneckerSBL
from ._operator import KroneckerOperator

__all__ = ["KroneckerOperator", "KroneckerSBL"]
