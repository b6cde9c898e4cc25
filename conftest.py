"""Doctest collection for the package: skip examples whose extra is missing."""

import importlib.util

# The examples of sparsesolve.distributed run Dask, an optional extra
# (``pip install sparsesolve[dask]``); without it they are not collected.
collect_ignore = []
if importlib.util.find_spec("dask") is None:
    collect_ignore.append("sparsesolve/distributed.py")
