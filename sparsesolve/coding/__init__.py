"""l_q sparse coding: thresholding operators compiled for the CPU and the GPU."""

from ._thresholding import threshold

__all__ = ["threshold"]
