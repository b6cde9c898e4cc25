"""l_q sparse coding and dictionary learning (l1, l0, l1/2 and CEL0 penalties).

Proximal operators compiled for the CPU and the GPU (:func:`threshold`), a
sparse coder over a fixed dictionary (:class:`LqSparseCoder`) and mini-batch
dictionary learning (:class:`LqDictionaryLearning`), after Rentzeperis et al.,
"Beyond l1 sparse coding in V1", PLOS Comput. Biol. 2023.
"""

from ._estimator import LqDictionaryLearning, LqSparseCoder
from ._thresholding import threshold

__all__ = ["LqDictionaryLearning", "LqSparseCoder", "threshold"]
