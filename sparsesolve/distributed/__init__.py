"""Dask entry points for data that outgrows one machine.

Two ways in:

* :func:`map_rows` applies a fitted estimator's per-row method
  (``transform``, ``predict``...) to a Dask array, block by block.
* ``fit`` itself scales out: ``AltMinCompletion``, ``LqDictionaryLearning``,
  ``RobustUnmixing`` and ``LaplacianKMeans`` accept Dask collections in
  ``fit`` and run a blocked version of their in-memory iteration on the
  ``dask.distributed`` client in use (per-row / per-pixel / per-point
  updates where the blocks live, small reductions on the client). The
  fitted model is the ordinary in-memory estimator. See the scaling guide.
"""

from ._dispatch import is_dask_collection
from ._map_rows import map_rows

__all__ = ["is_dask_collection", "map_rows"]
