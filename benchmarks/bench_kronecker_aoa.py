"""KroneckerSBL on two-dimensional angle of arrival with a rectangular array.

An 8 x 8 half-wavelength uniform rectangular array (steering
``kron(a(u), a(v))``) and a 16 x 16 direction-cosine grid: the grid
dictionary is the Kronecker product of two 8 x 16 ULA dictionaries, which is
what :class:`~sparsesolve.kronecker.KroneckerSBL` takes. Sources sit at
random off-grid directions (``make_ura_doa``), at least two cells (the
Rayleigh resolution) apart, with unit-power independent complex Gaussian
signals and white noise.

Layouts: ``independent`` (3 sources at unrelated ``(u, v)``: their grid
support is not a Kronecker product) and ``separable`` (2 x 2: two ``u``
times two ``v``, a Kronecker support).

Methods (all given the same snapshots; every anchor is told the true number
of sources ``K``, KroneckerSBL is not):

* ``krosbl``: ``KroneckerSBL(factors, steering=..., grids=...)`` with every
  other parameter at its default (``prior="auto"``, noise variance learned);
  its ``K`` strongest ``directions_`` are scored.
* ``krosbl_grid``: the same without ``steering`` (the ``K`` largest local
  maxima of the learned prior variance on the grid): what the per-entry
  prior alone brings.
* ``krosbl_kron``: ``prior="kronecker"`` with ``steering``: what the
  Kronecker prior alone gives.
* ``omp``: scikit-learn ``OrthogonalMatchingPursuit`` on the real-stacked
  problem (``[[Re A, -Im A], [Im A, Re A]]``, ``2K`` real atoms per
  snapshot), power summed over snapshots, ``K`` largest peaks.
* ``bartlett``: the conventional beamformer ``sum_l |a_g^H y_l|^2`` on the
  grid, ``K`` largest local maxima.
* ``music``: 2-D MUSIC, a reference implementation written here (sample
  covariance, noise subspace of its ``M - K`` smallest eigenvectors,
  pseudo-spectrum ``1 / ||E_n^H a_g||^2``) on the same grid, ``K`` largest
  local maxima.
* ``music_fine``: the same MUSIC on a 4x finer grid (64 x 64), as a
  reference for what a grid search can reach (not an anchor of the ratios).

Error: each true source is matched to one estimate (Hungarian assignment on
the distance in grid cells); a true source left without an estimate counts
the distance to the nearest one. Reported: mean error in cells over trials
and sources, the fraction within one cell, and RMSE in direction cosine.
Physical limit: the deterministic Cramér-Rao bound for ``(u, v)`` of every
source (Stoica and Nehorai, IEEE TASSP 37(5), 1989, extended to two
parameters per source), averaged over sources and trials.

Fit time: ``krosbl`` against ``omp``, one trial after the other in one
process, 1 BLAS thread, median of the per-trial ratios (the machine is
shared: ratios, not absolute times).

Seeds: trials use seeds 0..T-1 of ``make_ura_doa``. The defaults of
KroneckerSBL were chosen on seeds 1000-1009 of the same generator (20 dB, 10
snapshots), none of which is reported.

Run: ``python benchmarks/bench_kronecker_aoa.py [--quick]``; writes
``results/kronecker_aoa.json`` and ``.png``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.optimize import linear_sum_assignment
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402

from sparsesolve.datasets import make_ura_doa, ula_steering  # noqa: E402
from sparsesolve.kronecker import KroneckerSBL  # noqa: E402

ARRAY = (8, 8)
GRID = (16, 16)
LAYOUTS = {"independent": 3, "separable": 4}
ANCHORS = ("omp", "bartlett", "music")
SNR_SWEEP = (0, 10, 20, 30)
SNAPSHOT_SWEEP = (1, 10, 100)


# ----------------------------------------------------------------------------
# Anchors
def _peaks(power, k):
    """Grid multi-indices of the ``k`` largest local maxima (then largest cells)."""
    local = maximum_filter(power, size=3, mode="constant", cval=-np.inf)
    flat = np.flatnonzero((power >= local).ravel())
    flat = flat[np.argsort(-power.ravel()[flat], kind="stable")][:k]
    if flat.size < k:
        rest = np.argsort(-power.ravel(), kind="stable")
        rest = rest[~np.isin(rest, flat)][: k - flat.size]
        flat = np.concatenate([flat, rest])
    return np.stack(np.unravel_index(flat, power.shape), axis=1)


def _on_grid(indices, grids):
    return np.stack([grids[0][indices[:, 0]], grids[1][indices[:, 1]]], axis=1)


def _grid_dictionary(grids):
    return np.kron(ula_steering(ARRAY[0], grids[0]), ula_steering(ARRAY[1], grids[1]))


def bartlett(Y, grids, k):
    """Conventional (Bartlett) beamformer peaks on the grid."""
    A = _grid_dictionary(grids)
    power = np.sum(np.abs(Y @ A.conj()) ** 2, axis=0)
    shape = (len(grids[0]), len(grids[1]))
    return _on_grid(_peaks(power.reshape(shape), k), grids)


def music(Y, grids, k):
    """2-D MUSIC (reference implementation for this benchmark).

    ``R = Y^T conj(Y) / n`` (rows of ``Y`` are snapshots), noise subspace =
    eigenvectors of the ``M - k`` smallest eigenvalues, pseudo-spectrum
    ``1 / ||E_n^H a(u, v)||^2`` over the grid, ``k`` largest local maxima
    (Schmidt, IEEE TAP 34(3), 1986).
    """
    R = Y.T @ Y.conj() / Y.shape[0]
    _, vectors = np.linalg.eigh(0.5 * (R + R.conj().T))
    noise = vectors[:, : R.shape[0] - k]
    A = _grid_dictionary(grids)
    spectrum = 1.0 / np.maximum(np.sum(np.abs(noise.conj().T @ A) ** 2, axis=0),
                                1e-300)
    shape = (len(grids[0]), len(grids[1]))
    return _on_grid(_peaks(spectrum.reshape(shape), k), grids)


def _real_stacked(A, Y):
    A_real = np.block([[A.real, -A.imag], [A.imag, A.real]])
    Y_real = np.vstack([Y.T.real, Y.T.imag])
    return A_real, Y_real


def omp(A_real, Y_real, grids, k):
    """scikit-learn OMP on the real-stacked problem, ``2k`` atoms per snapshot."""
    from sklearn.linear_model import OrthogonalMatchingPursuit

    model = OrthogonalMatchingPursuit(n_nonzero_coefs=2 * k, fit_intercept=False)
    model.fit(A_real, Y_real)
    return model


def _omp_directions(model, grids, k):
    coef = np.atleast_2d(model.coef_)
    n = coef.shape[1] // 2
    power = np.sum(coef[:, :n] ** 2 + coef[:, n:] ** 2, axis=0)
    shape = (len(grids[0]), len(grids[1]))
    return _on_grid(_peaks(power.reshape(shape), k), grids)


# ----------------------------------------------------------------------------
# Metrics
def match_errors(estimates, truth, cell):
    """Per-true-source error in cells and in direction cosine (Hungarian)."""
    estimates = np.asarray(estimates, dtype=np.float64).reshape(-1, 2)
    if estimates.shape[0] == 0:
        worst = np.full(truth.shape[0], float(max(GRID)))
        return worst, worst * cell.max(), np.full((truth.shape[0], 2), np.nan)
    delta = estimates[:, None, :] - truth[None, :, :]
    cells = np.linalg.norm(delta / cell, axis=2)
    rows, cols = linear_sum_assignment(cells)
    error = np.full(truth.shape[0], np.nan)
    error[cols] = cells[rows, cols]
    squared = np.full((truth.shape[0], 2), np.nan)
    squared[cols] = delta[rows, cols] ** 2
    missing = np.isnan(error)
    if missing.any():
        nearest = np.argmin(cells[:, missing], axis=0)
        error[missing] = cells[nearest, np.flatnonzero(missing)]
        squared[missing] = delta[nearest, np.flatnonzero(missing)] ** 2
    return error, np.sqrt(squared.sum(axis=1)), squared


def deterministic_crb(directions, signals, noise_variance):
    """Deterministic CRB of ``(u_k, v_k)`` for every source (2K x 2K).

    ``FIM_pq = (2 n / s2) Re[(D_p^H P_perp D_q) ∘ P^T]`` with ``D_p`` the
    derivatives of the steering vectors with respect to parameter ``p`` of
    each source, ``P_perp`` the projector orthogonal to the steering matrix
    and ``P`` the sample covariance of the source signals (Stoica and
    Nehorai 1989).
    """
    m1, m2 = ARRAY
    u, v = directions[:, 0], directions[:, 1]
    a1, a2 = ula_steering(m1, u), ula_steering(m2, v)
    d1 = 1j * np.pi * np.arange(m1)[:, None] * a1
    d2 = 1j * np.pi * np.arange(m2)[:, None] * a2
    k = directions.shape[0]
    A = np.stack([np.kron(a1[:, i], a2[:, i]) for i in range(k)], axis=1)
    D = [np.stack([np.kron(d1[:, i], a2[:, i]) for i in range(k)], axis=1),
         np.stack([np.kron(a1[:, i], d2[:, i]) for i in range(k)], axis=1)]
    projector = np.eye(A.shape[0]) - A @ np.linalg.pinv(A)
    n = signals.shape[0]
    P = signals.T @ signals.conj() / n  # sample covariance of the sources
    fim = np.block([[np.real((D[p].conj().T @ projector @ D[q]) * P.T)
                     for q in range(2)] for p in range(2)]) * 2 * n / noise_variance
    crb = np.linalg.inv(fim)
    # Per source: CRB(u_k) + CRB(v_k).
    return np.diag(crb)[:k] + np.diag(crb)[k:]


# ----------------------------------------------------------------------------
def _run_trial(report, layout, seed, snr_db, n_snapshots, methods, *, crb=False):
    k = LAYOUTS[layout]
    Y, factors, info = make_ura_doa(
        k, layout=layout, array_shape=ARRAY, grid_size=GRID, snr_db=snr_db,
        n_snapshots=n_snapshots, random_state=seed)
    grids, cell, truth = info["grids"], info["cell"], info["directions"]
    case = dict(layout=layout, seed=seed, snr_db=snr_db, n_snapshots=n_snapshots)
    A_real, Y_real = _real_stacked(np.kron(factors[0], factors[1]), Y)
    seconds = {}
    estimates = {}
    extra = {}
    for method in methods:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings: reported rows
            if method.startswith("krosbl"):
                kwargs = {}
                if method != "krosbl_grid":
                    kwargs = dict(steering=info["steering"], grids=grids)
                if method == "krosbl_kron":
                    kwargs["prior"] = "kronecker"
                model = KroneckerSBL(factors, **kwargs).fit(Y)
                seconds[method] = time.perf_counter() - start
                if method == "krosbl_grid":
                    power = np.asarray(model.prior_variance()).reshape(GRID)
                    found = _peaks(power, k)
                    found = found[power[found[:, 0], found[:, 1]] > 0]
                    estimates[method] = _on_grid(found, grids)
                    extra[method] = dict(n_found=int(found.shape[0]))
                else:
                    estimates[method] = model.directions_[:k]
                    extra[method] = dict(n_found=int(model.directions_.shape[0]),
                                         prior=model.prior_)
                    if method == "krosbl":
                        extra[method]["mean_std"] = (
                            float(np.mean(model.direction_std_[:k]))
                            if model.directions_.size else None)
                        extra[method]["std_per_source"] = (
                            model.direction_std_[:k].tolist())
                extra[method]["prior"] = model.prior_
            elif method == "omp":
                model = omp(A_real, Y_real, grids, k)
                seconds[method] = time.perf_counter() - start
                estimates[method] = _omp_directions(model, grids, k)
            elif method == "bartlett":
                estimates[method] = bartlett(Y, grids, k)
                seconds[method] = time.perf_counter() - start
            elif method == "music":
                estimates[method] = music(Y, grids, k)
                seconds[method] = time.perf_counter() - start
            elif method == "music_fine":
                fine = [-1.0 + 0.5 * cell[0] / 2 * np.arange(4 * GRID[0]),
                        -1.0 + 0.5 * cell[1] / 2 * np.arange(4 * GRID[1])]
                estimates[method] = music(Y, fine, k)
                seconds[method] = time.perf_counter() - start
    bound = (deterministic_crb(truth, info["signals"], info["noise_variance"])
             if crb else None)
    for method in methods:
        cells, cosine, squared = match_errors(estimates[method], truth, cell)
        row = dict(case, method=method, mean_error_cells=float(cells.mean()),
                   within_one_cell=float(np.mean(cells <= 1.0)),
                   squared_error=float(np.nansum(squared)),
                   n_true=k, seconds=seconds[method], **extra.get(method, {}))
        if method == "krosbl" and "std_per_source" in row:
            # Calibration: squared error over the predicted variance (u, v).
            std = np.asarray(row.pop("std_per_source")).reshape(-1, 2)
            if std.shape[0] == k:
                order = linear_sum_assignment(np.linalg.norm(
                    (estimates[method][:, None, :] - truth[None]) / cell, axis=2))
                z = (estimates[method][order[0]] - truth[order[1]]) / np.maximum(
                    std[order[0]], 1e-12)
                row["mean_z2"] = float(np.mean(z ** 2))
        if bound is not None:
            row["crb_sum"] = float(bound.sum())
        report.add(**row)


def _aggregate(rows, layout, snr_db, n_snapshots, method, key):
    values = [r[key] for r in rows if r["layout"] == layout and r["snr_db"] == snr_db
              and r["n_snapshots"] == n_snapshots and r["method"] == method
              and r.get(key) is not None]
    return values


def _summary(report, main_methods):
    rows = report.rows
    summary = {}
    for layout, k in LAYOUTS.items():
        point = {}
        for method in main_methods:
            errors = _aggregate(rows, layout, 20, 10, method, "mean_error_cells")
            if not errors:
                continue
            point[method] = dict(
                mean_error_cells=float(np.mean(errors)),
                within_one_cell=float(np.mean(_aggregate(
                    rows, layout, 20, 10, method, "within_one_cell"))),
                median_seconds=float(np.median(_aggregate(
                    rows, layout, 20, 10, method, "seconds"))),
                n_trials=len(errors))
        anchors = {m: point[m]["mean_error_cells"] for m in ANCHORS if m in point}
        best = min(anchors, key=anchors.get)
        summary[f"{layout}_20dB_10snap"] = point
        summary[f"{layout}_best_anchor"] = best
        summary[f"{layout}_error_ratio_vs_best_anchor"] = (
            point["krosbl"]["mean_error_cells"] / anchors[best])
        times = {r["seed"]: r["seconds"] for r in rows if r["layout"] == layout
                 and r["snr_db"] == 20 and r["n_snapshots"] == 10
                 and r["method"] == "krosbl"}
        omp_times = {r["seed"]: r["seconds"] for r in rows if r["layout"] == layout
                     and r["snr_db"] == 20 and r["n_snapshots"] == 10
                     and r["method"] == "omp"}
        ratios = [times[s] / omp_times[s] for s in times if s in omp_times]
        summary[f"{layout}_fit_time_ratio_vs_omp_median"] = float(np.median(ratios))
        summary[f"{layout}_krosbl_prior_free_fraction"] = float(np.mean([
            r.get("prior") == "free" for r in rows if r["layout"] == layout
            and r["snr_db"] == 20 and r["n_snapshots"] == 10
            and r["method"] == "krosbl"]))
        summary[f"{layout}_krosbl_order_correct_fraction"] = float(np.mean([
            r.get("n_found") == k for r in rows if r["layout"] == layout
            and r["snr_db"] == 20 and r["n_snapshots"] == 10
            and r["method"] == "krosbl"]))
        z2 = _aggregate(rows, layout, 20, 10, "krosbl", "mean_z2")
        if z2:
            summary[f"{layout}_krosbl_median_z2"] = float(np.median(z2))
        # CRB point.
        crb_rows = [r for r in rows if r["layout"] == layout and r["snr_db"] == 30
                    and r["n_snapshots"] == 100 and "crb_sum" in r]
        if crb_rows:
            bound = np.mean([r["crb_sum"] for r in crb_rows if r["method"] == "krosbl"])
            for method in sorted({r["method"] for r in crb_rows}):
                mse = np.mean([r["squared_error"] for r in crb_rows
                               if r["method"] == method])
                summary.setdefault(f"{layout}_30dB_100snap_rmse_over_sqrt_crb", {})[
                    method] = float(np.sqrt(mse / bound))
        # Sweeps.
        for key, points in (("snr_sweep", [(s, 10) for s in SNR_SWEEP]),
                            ("snapshot_sweep", [(20, n) for n in SNAPSHOT_SWEEP])):
            table = {}
            for snr_db, n_snapshots in points:
                for method in (*ANCHORS, "krosbl"):
                    errors = _aggregate(rows, layout, snr_db, n_snapshots, method,
                                        "mean_error_cells")
                    if errors:
                        table.setdefault(method, {})[
                            f"{snr_db}dB/{n_snapshots}"] = float(np.mean(errors))
            summary[f"{layout}_{key}_mean_error_cells"] = table
    return summary


def _figure(summary):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    for row, layout in enumerate(LAYOUTS):
        for col, key in enumerate(("snr_sweep", "snapshot_sweep")):
            ax = axes[row, col]
            table = summary.get(f"{layout}_{key}_mean_error_cells", {})
            for method, values in table.items():
                labels = list(values)
                ax.semilogy(range(len(labels)), [max(v, 1e-3) for v in values.values()],
                            "o-", label=method)
                ax.set_xticks(range(len(labels)), labels)
            ax.set_title(f"{layout}: {key.replace('_', ' ')}")
            ax.set_ylabel("mean angle error (grid cells)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    figure.suptitle("2-D AoA, 8x8 URA, 16x16 direction-cosine grid, off-grid sources")
    figure.tight_layout()
    return figure


def run(quick=False, device="cpu"):
    """Run the benchmark and write ``results/kronecker_aoa.json`` and ``.png``.

    Parameters
    ----------
    quick : bool, default=False
        Two trials per point (CI smoke test).
    device : {"cpu"}, default="cpu"
        The problem is tiny (64 x 256); only the CPU path is benchmarked.

    Returns
    -------
    Report
    """
    report = Report("kronecker_aoa", quick, device)
    main = range(2) if quick else range(50)
    sweep = range(2) if quick else range(20)
    main_methods = ["krosbl", "krosbl_grid", "krosbl_kron", *ANCHORS, "music_fine"]
    with threadpool_limits(1):
        # Warm-up (imports, first calls), not recorded.
        _run_trial(Report("warmup", True), "independent", 999, 20, 10, main_methods)
        for layout in LAYOUTS:
            for seed in main:
                _run_trial(report, layout, seed, 20, 10, main_methods)
            for snr_db in SNR_SWEEP:
                if snr_db == 20:
                    continue
                for seed in sweep:
                    _run_trial(report, layout, seed, snr_db, 10, ["krosbl", *ANCHORS])
            for n_snapshots in SNAPSHOT_SWEEP:
                if n_snapshots == 10:
                    continue
                for seed in sweep:
                    _run_trial(report, layout, seed, 20, n_snapshots,
                               ["krosbl", *ANCHORS])
            for seed in main:
                _run_trial(report, layout, seed, 30, 100,
                           ["krosbl", *ANCHORS, "music_fine"], crb=True)
    report.summary.update(_summary(report, main_methods))
    report.notes.append(
        "Anchors are told the true number of sources; KroneckerSBL estimates it "
        "(its K strongest sources are scored; order_correct_fraction says how "
        "often it found exactly K).")
    report.notes.append(
        "Defaults chosen on make_ura_doa seeds 1000-1009 (20 dB, 10 snapshots); "
        "reported seeds are 0-49 (0-19 for the sweeps).")
    report.notes.append(
        "Fit times: 1 BLAS thread, on a shared 2-core machine; the ratio to OMP "
        "is per trial, in one process.")
    report.notes.append(
        "ARDRegression not run: it is real-valued and single-target, so it would "
        "need one fit per snapshot on the 128 x 512 real-stacked problem.")
    report.save_figure(_figure(report.summary))
    report.write()
    return report


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    import json

    print(json.dumps(result.summary, indent=1, default=float))
