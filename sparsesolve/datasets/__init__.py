"""Synthetic problem generators and small shipped data sets.

Conventions: ``make_*`` functions build a problem from a seed
(``random_state``, anything :func:`sklearn.utils.check_random_state` accepts)
and return NumPy arrays (move them to the GPU yourself with ``cupy.asarray``);
``load_*`` functions read data that ships inside the package. Nothing is
downloaded at run time.
"""

from ._array import make_ura_doa, ula_steering
from ._clustering import make_fewshot_episodes
from ._coding import make_image_patches
from ._completion import load_movielens_100k, make_completion_problem
from ._images import load_mnist, load_mnist_sample
from ._irs import make_irs_channel
from ._kronecker import make_kronecker_sparse
from ._poisson import make_poisson_problem
from ._unmixing import (
    load_earthlib_spectra,
    make_hyperspectral,
    make_measured_hyperspectral,
)

__all__ = [
    "load_earthlib_spectra",
    "load_mnist",
    "load_mnist_sample",
    "load_movielens_100k",
    "make_completion_problem",
    "make_fewshot_episodes",
    "make_hyperspectral",
    "make_image_patches",
    "make_irs_channel",
    "make_kronecker_sparse",
    "make_measured_hyperspectral",
    "make_poisson_problem",
    "make_ura_doa",
    "ula_steering",
]
