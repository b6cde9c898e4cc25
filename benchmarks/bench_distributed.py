"""Scaling benchmark of the blocked fits on a Dask ``LocalCluster``.

Cases (full sizes; ``--quick`` is a smoke run of a few thousand entries):

* D1, completion: MovieLens-20M-shaped synthetic ratings (138,493 users x
  26,744 items, 2e7 ratings in 1..5 from a rank-10 model plus noise),
  generated on the workers, fitted by ``AltMinCompletion`` (rank 10,
  exact row solves, no biases, random start, 6 sweeps) on 2 worker
  processes of 1 thread whose ``memory_limit`` is below the size of the
  ratings themselves (so the fit cannot be an in-memory fit in disguise;
  Dask spills blocks to disk). Reported: layout time, time per sweep, peak
  resident memory of each worker (polled every 0.5 s) against its limit,
  worker restarts; the in-memory fit of the same ratings (2 numba threads)
  as the reference; Spark MLlib ALS in local mode (``local[2]``) on the same
  ratings, same rank, regularisation and iterations, when a Python with
  ``pyspark`` is named by ``SPARSESOLVE_SPARK_PYTHON`` (its own
  environment: pyspark needs a JRE and is not a dependency).
* D2, clustering: ``LaplacianKMeans`` (K = 100, 64 features, the in-memory
  defaults: exact kNN graph by blocks, spectral start, ``psd_shift="auto"``)
  on the same cluster against the in-memory fit of the same points: time per
  bound sweep, labels, outer iterations and sweeps equal.

Time per sweep of the blocked fit is measured between consecutive sweep
reports of the fit itself (the ``Progress`` object it updates), so the
layout (the shuffle of the ratings into row and column blocks) is reported
apart; Spark's time per iteration is ``(t(n) - t(1)) / (n - 1)`` over two
fits, which leaves out its own blocking in the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report, cpu_threads  # noqa: E402

RANK = 10
SWEEPS = 6
REGULARISATION = 0.05
USERS, ITEMS = 138_493, 26_744

_SPARK_SCRIPT = r"""
import json, sys, time
from pyspark.sql import SparkSession
from pyspark.ml.recommendation import ALS
path, rank, sweeps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
reg = float(sys.argv[4])
spark = (SparkSession.builder.master("local[2]").appName("als-anchor")
         .config("spark.driver.memory", "6g")
         .config("spark.sql.shuffle.partitions", "8")
         .config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
frame = spark.read.csv(path, schema="user INT, item INT, rating FLOAT").cache()
count = frame.count()
times = {}
# A first, untimed fit: the JVM compiles ALS's code paths on first use.
ALS(rank=rank, maxIter=1, regParam=reg, userCol="user", itemCol="item",
    ratingCol="rating", seed=0).fit(frame).userFactors.count()
for iterations in (1, sweeps):
    als = ALS(rank=rank, maxIter=iterations, regParam=reg, userCol="user",
              itemCol="item", ratingCol="rating", seed=0, numUserBlocks=4,
              numItemBlocks=4)
    start = time.perf_counter()
    model = als.fit(frame)
    model.userFactors.count()
    times[iterations] = time.perf_counter() - start
print(json.dumps({"count": count, "times": times,
                  "version": spark.version}))
spark.stop()
"""


# --------------------------------------------------------------------------
# Data, made on the workers
# --------------------------------------------------------------------------
def _factors(n_users, n_items, seed):
    rng = np.random.RandomState(seed)
    return (rng.standard_normal((n_users, RANK)) / np.sqrt(RANK),
            rng.standard_normal((n_items, RANK)))


def ratings_chunk(index, size, n_users, n_items, seed=0):
    """``size`` (user, item, rating) rows; chunk ``index`` of a fixed stream."""
    user_factors, item_factors = _factors(n_users, n_items, seed)
    rng = np.random.RandomState([seed, index])
    users = rng.randint(0, n_users, size)
    # Popular items are rated more (a power law, as in real catalogues).
    items = np.minimum((rng.pareto(1.2, size) * n_items / 20).astype(np.int64),
                       n_items - 1)
    signal = np.einsum("ij,ij->i", user_factors[users], item_factors[items])
    ratings = np.clip(np.rint(3.5 + signal + 0.5 * rng.standard_normal(size)), 1, 5)
    return np.column_stack([users, items, ratings]).astype(np.float64)


def lazy_ratings(n_ratings, n_users, n_items, chunk):
    import dask
    import dask.array as da

    sizes = [chunk] * (n_ratings // chunk) + ([n_ratings % chunk]
                                              if n_ratings % chunk else [])
    return da.concatenate([
        da.from_delayed(dask.delayed(ratings_chunk)(i, s, n_users, n_items),
                        shape=(s, 3), dtype=np.float64)
        for i, s in enumerate(sizes)])


def blobs_chunk(index, size, n_features, n_clusters, seed=0):
    centers = np.random.RandomState(seed).uniform(-10, 10, (n_clusters, n_features))
    rng = np.random.RandomState([seed, index])
    labels = rng.randint(0, n_clusters, size)
    return centers[labels] + 2.0 * rng.standard_normal((size, n_features))


def lazy_blobs(n_points, n_features, n_clusters, chunk):
    import dask
    import dask.array as da

    sizes = [chunk] * (n_points // chunk) + ([n_points % chunk]
                                             if n_points % chunk else [])
    return da.concatenate([
        da.from_delayed(dask.delayed(blobs_chunk)(i, s, n_features, n_clusters),
                        shape=(s, n_features), dtype=np.float64)
        for i, s in enumerate(sizes)])


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------
class MemoryPoll:
    """Peak resident memory of every worker process, polled in a thread."""

    def __init__(self, client, every=0.5):
        self.client, self.every = client, every
        self.peaks, self.pids = {}, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        import psutil

        def rss():
            process = psutil.Process()
            return process.pid, process.memory_info().rss

        while not self._stop.is_set():
            try:
                for address, (pid, value) in self.client.run(rss).items():
                    self.pids.add(pid)
                    self.peaks[address] = max(self.peaks.get(address, 0), value)
            except Exception:  # noqa: BLE001 - a restarting worker; poll again
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class SweepClock:
    """Times of the sweep reports of a fit (patched into its ``Progress``)."""

    def __init__(self, module, name="Progress"):
        self.module, self.name = module, name
        self.stamps = []

    def __enter__(self):
        original = getattr(self.module, self.name)
        clock = self

        class Timed(original):
            def __enter__(self):
                clock.stamps.append(("start", time.perf_counter()))
                return super().__enter__()

            def update(self, **values):
                clock.stamps.append(("sweep", time.perf_counter()))
                return super().update(**values)

        self._original = original
        setattr(self.module, self.name, Timed)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self._original)

    def per_sweep(self):
        """Seconds per sweep of the last run of sweeps (median of the gaps)."""
        last = max(i for i, (kind, _) in enumerate(self.stamps) if kind == "start")
        times = [t for kind, t in self.stamps[last:]]
        gaps = np.diff(times)
        return float(np.median(gaps)) if gaps.size else None, float(times[-1]
                                                                    - times[0])


def _uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return None


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------
def completion_case(report, client, n_ratings, n_users, n_items, limit):
    from sparsesolve.completion import AltMinCompletion
    from sparsesolve.distributed import _completion

    chunk = max(n_ratings // 40, 1000)
    lazy = lazy_ratings(n_ratings, n_users, n_items, chunk)
    data_bytes = n_ratings * 3 * 8
    params = dict(rank=RANK, solver="exact", alpha=REGULARISATION, biases=False,
                  init="random", input_type="ratings", duplicates="last",
                  max_iter=SWEEPS, tol=0.0, random_state=0)
    start = time.perf_counter()
    with MemoryPoll(client) as memory, SweepClock(_completion) as clock, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AltMinCompletion(**params).fit(lazy)
    total = time.perf_counter() - start
    per_sweep, sweeps_total = clock.per_sweep()
    peaks = sorted(memory.peaks.values())
    row = report.add(
        case="D1 completion", method="sparsesolve blocked (Dask, 2 workers)",
        n_ratings=n_ratings, n_observed=model.n_observed_, data_bytes=data_bytes,
        worker_memory_limit=limit, peak_worker_rss=peaks,
        peak_below_limit=bool(peaks and max(peaks) <= limit),
        worker_processes_seen=len(memory.pids), fit_seconds=total,
        layout_seconds=total - sweeps_total, seconds_per_sweep=per_sweep,
        sweeps=model.n_iter_, final_loss=model.loss_history_[-1],
        uptime=_uptime())
    return model, row, params


def completion_in_memory(report, triples, params):
    from sparsesolve.completion import AltMinCompletion, _estimator

    with cpu_threads(2), SweepClock(_estimator) as clock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model = AltMinCompletion(**params).fit(triples)
        total = time.perf_counter() - start
    per_sweep, _ = clock.per_sweep()
    return model, report.add(case="D1 completion", method="sparsesolve in memory",
                             n_ratings=int(triples.shape[0]), fit_seconds=total,
                             seconds_per_sweep=per_sweep, sweeps=model.n_iter_,
                             final_loss=model.loss_history_[-1], uptime=_uptime())


def spark_case(report, triples, quick):
    python = os.environ.get("SPARSESOLVE_SPARK_PYTHON")
    if not python:
        report.notes.append("Spark MLlib ALS skipped: SPARSESOLVE_SPARK_PYTHON is "
                            "not set to a Python with pyspark.")
        return None
    import pandas as pd

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ratings.csv"
        pd.DataFrame({"user": triples[:, 0].astype(np.int64),
                      "item": triples[:, 1].astype(np.int64),
                      "rating": triples[:, 2].astype(np.int64)}).to_csv(
                          path, header=False, index=False)
        script = Path(folder) / "als.py"
        script.write_text(_SPARK_SCRIPT)
        done = subprocess.run(
            [python, str(script), str(path), str(RANK), str(SWEEPS),
             str(REGULARISATION)], capture_output=True, text=True, check=False,
            timeout=1800)
    if done.returncode:
        report.notes.append("Spark MLlib ALS failed: " + done.stderr[-2000:])
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    times = {int(k): v for k, v in result["times"].items()}
    per_iteration = (times[SWEEPS] - times[1]) / (SWEEPS - 1)
    return report.add(case="D1 completion",
                      method=f"Spark MLlib ALS {result['version']} local[2]",
                      n_ratings=result["count"], fit_seconds=times[SWEEPS],
                      seconds_per_sweep=per_iteration, uptime=_uptime())


def clustering_case(report, client, n_points, n_features, n_clusters, quick):
    from sparsesolve.clustering import LaplacianKMeans, _algorithm
    from sparsesolve.distributed import _clustering

    lazy = lazy_blobs(n_points, n_features, n_clusters,
                      max(n_points // 8, n_clusters))
    # The in-memory defaults (spectral start, psd_shift="auto", unary in edge
    # lengths, warm-started sweeps); "exact" is what "auto" picks up to
    # 50,000 points, and the only graph the blocked fit builds.
    params = dict(n_clusters=n_clusters, n_neighbors=10, neighbors_method="exact",
                  max_iter=2 if quick else 5, max_inner_iter=10 if quick else 100,
                  random_state=0)

    def timing(klass, durations):
        original = klass.sweep

        def timed(self, *args, **kwargs):
            start = time.perf_counter()
            result = original(self, *args, **kwargs)
            durations.append(time.perf_counter() - start)
            return result

        return original, timed

    # One sweep: the halo exchange, every block's bound update and the
    # energy brought back (blocked); the kernel and the energy sum (memory).
    blocked_sweeps = []
    original, timed = timing(_clustering._BlockedProblem, blocked_sweeps)
    _clustering._BlockedProblem.sweep = timed
    try:
        with MemoryPoll(client) as memory, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            blocked = LaplacianKMeans(**params).fit(lazy)
            total = time.perf_counter() - start
    finally:
        _clustering._BlockedProblem.sweep = original
    distributed_sweep = float(np.median(blocked_sweeps)) if blocked_sweeps else None
    report.add(case="D2 clustering", method="sparsesolve blocked (Dask, 2 workers)",
               n_points=n_points, n_features=n_features, n_clusters=n_clusters,
               fit_seconds=total, seconds_per_bound_sweep=distributed_sweep,
               n_sweeps=int(np.sum(blocked.n_sweeps_)), n_iter=blocked.n_iter_,
               peak_worker_rss=sorted(memory.peaks.values()), uptime=_uptime())
    X = lazy.compute()
    memory_sweeps = []
    original, timed = timing(_algorithm._ArrayProblem, memory_sweeps)
    _algorithm._ArrayProblem.sweep = timed
    try:
        with cpu_threads(2), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            reference = LaplacianKMeans(**params).fit(X)
            total_memory = time.perf_counter() - start
    finally:
        _algorithm._ArrayProblem.sweep = original
    in_memory_sweep = float(np.median(memory_sweeps)) if memory_sweeps else None
    same = bool(np.array_equal(blocked.labels_, reference.labels_)
                and blocked.n_iter_ == reference.n_iter_
                and np.array_equal(blocked.n_sweeps_, reference.n_sweeps_))
    report.add(case="D2 clustering", method="sparsesolve in memory",
               n_points=n_points, fit_seconds=total_memory,
               seconds_per_bound_sweep=in_memory_sweep,
               n_sweeps=int(np.sum(reference.n_sweeps_)), n_iter=reference.n_iter_,
               labels_and_sweeps_equal=same, uptime=_uptime())
    return distributed_sweep, in_memory_sweep, same


def run(quick=False, device="cpu"):
    """Run D1 and D2 and write ``results/distributed.json``."""
    from distributed import Client, LocalCluster

    report = Report("distributed", quick=quick, device=device)
    if quick:
        n_ratings, n_users, n_items, limit = 20_000, 2_000, 500, 2**30
        n_points, n_clusters = 600, 10
        skip = {"spark"}
    else:
        # 3e7 ratings are 720 MB as 3 float64 columns; each worker gets
        # 650 MiB (681 MB), which also holds its Python, NumPy, numba and
        # Dask (about 300 MB resident before any data).
        n_ratings = int(os.environ.get("SPARSESOLVE_BENCH_RATINGS", 30_000_000))
        limit = int(os.environ.get("SPARSESOLVE_BENCH_LIMIT_MIB", 650)) * 2**20
        n_users, n_items = USERS, ITEMS
        n_points, n_clusters = int(os.environ.get("SPARSESOLVE_BENCH_POINTS",
                                                  50_000)), 100
        skip = set()
    skip |= set(os.environ.get("SPARSESOLVE_BENCH_SKIP", "").split(","))
    report.notes.append(f"uptime at start: {_uptime()}")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      memory_limit=limit, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        model, blocked_row, params = completion_case(report, client, n_ratings,
                                                     n_users, n_items, limit)
        triples = lazy_ratings(n_ratings, n_users, n_items,
                               max(n_ratings // 40, 1000)).compute()
    distributed_sweep = in_memory_sweep = same = None
    if "clustering" not in skip:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          memory_limit=max(limit, 2**30),
                          dashboard_address=None) as cluster, \
                Client(cluster) as client:
            distributed_sweep, in_memory_sweep, same = clustering_case(
                report, client, n_points, 64, n_clusters, quick)
    reference, memory_row = completion_in_memory(report, triples, params)
    factor_error = float(np.abs(reference.row_factors_ - model.row_factors_).max()
                         / np.abs(reference.row_factors_).max())
    memory_row["max_relative_factor_difference_vs_blocked"] = factor_error
    spark_row = None if "spark" in skip else spark_case(report, triples, quick)
    report.summary = {
        "completion ratings": n_ratings,
        "completion s/sweep blocked": blocked_row["seconds_per_sweep"],
        "completion s/sweep in memory": memory_row["seconds_per_sweep"],
        "completion blocked vs in-memory factors (rel.)": factor_error,
        "completion peak worker RSS / limit": (max(blocked_row["peak_worker_rss"])
                                               / blocked_row["worker_memory_limit"]
                                               if blocked_row["peak_worker_rss"]
                                               else None),
        "completion s/sweep blocked / Spark ALS s/iteration": report.ratio(
            blocked_row["seconds_per_sweep"],
            spark_row["seconds_per_sweep"] if spark_row else None),
        "clustering points": n_points,
        "clustering s/bound sweep blocked": distributed_sweep,
        "clustering s/bound sweep in memory": in_memory_sweep,
        "clustering labels, iterations and sweeps equal": same,
    }
    report.notes.append(f"uptime at end: {_uptime()}")
    report.write()
    _figure(report)
    return report


def _figure(report):
    import matplotlib.pyplot as plt

    rows = [r for r in report.rows if r.get("seconds_per_sweep")
            or r.get("seconds_per_bound_sweep")]
    figure, axis = plt.subplots(figsize=(7, 3))
    labels = [f"{r['case'].split()[0]}: {r['method']}" for r in rows]
    values = [r.get("seconds_per_sweep") or r.get("seconds_per_bound_sweep")
              for r in rows]
    axis.barh(labels, values)
    axis.set_xlabel("seconds per sweep")
    axis.set_xscale("log")
    report.save_figure(figure)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick).summary, indent=2, default=str))
