"""Hostile-input suite: small adversarial probes of every public entry point.

Every public function and class of sparsesolve (the subpackages' ``__all__``
and :func:`sparsesolve.utils.all_estimators`) gets a *recipe*, a small valid
call (``recipes.py``). From each recipe the suite derives probes: NaN/inf,
empty, wrong ``ndim`` and feature counts, dtypes, sparse, Fortran-ordered,
read-only and DataFrame inputs, scaled and all-zero data, bad
hyperparameters, input mutation, pickling, refit determinism, shared use from
threads, non-convergence warnings and ``map_rows`` (``engine.py``). The
probes run in a small pool of worker processes with a watchdog and a memory
cap (``pool.py``), so a segfault, an abort or a hang is recorded as a crash
instead of killing the run.

Run it and write the table of findings::

    python -m tests.hostile --report notes/hostile-findings.md

``tests/hostile/test_hostile.py`` runs the same suite under pytest.
"""
