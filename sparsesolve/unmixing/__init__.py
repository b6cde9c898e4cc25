"""Robust hyperspectral unmixing: endmembers and abundances of mixed pixels.

:class:`RobustUnmixing` learns endmembers and abundances with an l_2,1 loss
over bands (robust to corrupted bands), a sum-to-one penalty and a learned or
uniform l_p sparsity; :func:`vca` picks endmembers among the pixels and
:func:`fcls` computes exact fully constrained abundances, on the CPU (numba)
or the GPU (CuPy + numba-cuda). :func:`read_envi` reads ENVI cubes (with the
optional ``spectral`` package) and :func:`plot_unmixing` draws the results.
"""

from ._estimator import RobustUnmixing
from ._fcls import fcls
from ._io import read_envi
from ._metrics import cube_to_pixels, match_endmembers, spectral_angles
from ._plotting import plot_unmixing
from ._vca import vca

__all__ = [
    "RobustUnmixing",
    "cube_to_pixels",
    "fcls",
    "match_endmembers",
    "plot_unmixing",
    "read_envi",
    "spectral_angles",
    "vca",
]
