"""Benchmark of the unmixing family: accuracy under corrupted bands, and speed.

Scenes come from :func:`sparsesolve.datasets.make_hyperspectral` (smooth
hand-built spectra, spatially smooth abundances; K=4, 180 bands over
0.4-2.45 um). Scenarios: clean (40 dB), noisy (20 dB), and corrupted water
windows plus hot bands at two outlier levels (30 dB); for the corrupted ones
the same methods also run with the bad bands removed by hand ("oracle").

Methods on the same data: RobustUnmixing (l21 + learned guidance, l21 +
uniform l1/2, l2 + uniform l1/2 = L1/2-NMF), scikit-learn NMF (Frobenius,
solver "mu", initialised from the same VCA+FCLS start, abundances renormalised
to sum to one), VCA + our FCLS, and VCA + pysptools FCLS when pysptools
installs. Scores: mean spectral angle (degrees, Hungarian-matched, clean bands
only), abundance RMSE, time, pixels per second. BLAS runs on one thread
(two OpenBLAS threads slow the skinny products down on 2 cores).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
from _harness import Report, cpu_threads, time_call
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from sparsesolve.datasets import make_hyperspectral
from sparsesolve.unmixing import (
    RobustUnmixing,
    cube_to_pixels,
    fcls,
    match_endmembers,
    vca,
)

N_ENDMEMBERS = 4
N_BANDS = 180

SCENARIOS = {
    "clean": dict(snr_db=40.0, corrupted_bands=None),
    "noisy": dict(snr_db=20.0, corrupted_bands=None),
    "corrupted_0.3": dict(snr_db=30.0, corrupted_bands="water", corruption_scale=0.3),
    "corrupted_1.0": dict(snr_db=30.0, corrupted_bands="water", corruption_scale=1.0),
}

ROBUST_METHODS = {
    "RobustUnmixing log learned (default)": dict(loss="log", guidance="learned"),
    "RobustUnmixing l21 learned": dict(loss="l21", guidance="learned"),
    "RobustUnmixing l21 uniform": dict(loss="l21", guidance="uniform"),
    "RobustUnmixing l2 uniform (L1/2-NMF)": dict(loss="l2", guidance="uniform"),
}


def _score(endmembers, abundances, true_endmembers, true_abundances, clean):
    order, angles = match_endmembers(true_endmembers, endmembers, bands=clean)
    rmse = float(np.sqrt(np.mean((abundances[:, order] - true_abundances) ** 2)))
    return {
        "sad_deg": float(angles.mean()),
        "rmse": rmse,
        "sum_to_one_error": float(np.abs(abundances.sum(axis=1) - 1).max()),
        "min_abundance": float(abundances.min()),
    }


def _robust_fit(X, kwargs, max_iter):
    model = RobustUnmixing(N_ENDMEMBERS, random_state=0, max_iter=max_iter, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        abundances = model.fit_transform(X)
        seconds = time.perf_counter() - start
    return model, abundances, seconds


def _sklearn_nmf(X, start_abundances, start_endmembers, max_iter):
    from sklearn.decomposition import NMF

    # NMF needs nonnegative data: clip the (rare) negative noise values.
    data = np.clip(X, 0, None)
    model = NMF(N_ENDMEMBERS, init="custom", solver="mu", max_iter=max_iter, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        W = model.fit_transform(
            data, W=np.clip(start_abundances, 1e-4, None).copy(),
            H=np.clip(start_endmembers, 1e-6, None).copy())
        seconds = time.perf_counter() - start
    # Scale ambiguity: rescale so that abundances sum to one per pixel on
    # average, then renormalise each pixel (NMF has no sum-to-one).
    totals = W.sum(axis=1, keepdims=True)
    abundances = W / np.maximum(totals, 1e-12)
    return model.components_, abundances, seconds, model.n_iter_


def _vca_fcls(X, clean_bands):
    start = time.perf_counter()
    _, indices = vca(X[:, clean_bands], N_ENDMEMBERS, random_state=0)
    endmembers = X[indices]
    abundances = fcls(X[:, clean_bands], endmembers[:, clean_bands])
    return endmembers, abundances, time.perf_counter() - start


def _pysptools_fcls():
    try:
        from pysptools.abundance_maps.amaps import FCLS
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
        return None, f"pysptools FCLS unavailable ({exc!r}); skipped"
    return FCLS, ""


def _accuracy(report, quick):
    size = 40 if quick else 60
    max_iter = 300
    scenarios = ["clean", "corrupted_1.0"] if quick else list(SCENARIOS)
    pysptools_fcls, reason = _pysptools_fcls()
    if pysptools_fcls is None:
        report.notes.append(reason)
    results = {}
    # Compile (or load from cache) the numba kernel outside the timings.
    fcls(np.ones((2, 3)), np.eye(2, 3) + 0.1)
    for scenario in scenarios:
        cube, endmembers, abundances, bad = make_hyperspectral(
            size, size, N_ENDMEMBERS, N_BANDS, random_state=1, **SCENARIOS[scenario])
        X = cube_to_pixels(cube)
        truth = abundances.reshape(-1, N_ENDMEMBERS)
        clean = np.setdiff1d(np.arange(N_BANDS), bad)
        n_pixels = X.shape[0]

        def add(method, endmembers_hat, abundances_hat, seconds, n_iter=None,
                monotone=None, scenario=scenario, truth=truth, clean=clean,
                endmembers=endmembers, n_pixels=n_pixels):
            row = report.add(
                case=f"{scenario} {size}x{size}x{N_BANDS}", scenario=scenario,
                method=method, seconds=seconds, pixels_per_second=n_pixels / seconds,
                n_iter=n_iter, objective_monotone=monotone,
                **_score(endmembers_hat, abundances_hat, endmembers, truth, clean))
            results[(scenario, method)] = row
            print(f"   {scenario:14s} {method:40s} SAD {row['sad_deg']:6.2f} "
                  f"RMSE {row['rmse']:.4f} {seconds:6.2f} s", flush=True)

        # VCA + FCLS on the bands our estimator would screen as clean (the
        # same start RobustUnmixing uses): the start point of every NMF.
        screen = RobustUnmixing(N_ENDMEMBERS)._clean_band_mask(X)
        vca_endmembers, vca_abundances, seconds = _vca_fcls(X, np.flatnonzero(screen))
        add("VCA + FCLS (ours)", vca_endmembers, vca_abundances, seconds)
        if pysptools_fcls is not None:
            subset = slice(0, min(n_pixels, 400 if quick else n_pixels))
            start = time.perf_counter()
            pys = pysptools_fcls(X[subset][:, screen], vca_endmembers[:, screen])
            pys_seconds = time.perf_counter() - start
            row = report.add(
                case=f"{scenario} {size}x{size}x{N_BANDS}", scenario=scenario,
                method="VCA + pysptools FCLS", seconds=pys_seconds,
                pixels_per_second=pys.shape[0] / pys_seconds,
                note=f"first {pys.shape[0]} pixels only" if quick else None,
                **_score(vca_endmembers, np.asarray(pys, dtype=float),
                         endmembers, truth[subset], clean))
            results[(scenario, "VCA + pysptools FCLS")] = row

        for method, kwargs in ROBUST_METHODS.items():
            model, estimate, seconds = _robust_fit(X, kwargs, max_iter)
            monotone = bool(np.all(np.diff(model.objective_)
                                   <= 1e-10 * np.abs(model.objective_[:-1])))
            add(method, model.endmembers_, estimate, seconds, model.n_iter_, monotone)
            if bad.size:
                oracle, oracle_estimate, oracle_seconds = _robust_fit(
                    X[:, clean], kwargs, max_iter)
                full = np.zeros((N_ENDMEMBERS, N_BANDS))
                full[:, clean] = oracle.endmembers_
                add(method + " [bad bands removed]", full, oracle_estimate,
                    oracle_seconds, oracle.n_iter_)

        start_abundances = fcls(X[:, screen], vca_endmembers[:, screen])
        nmf_endmembers, nmf_abundances, seconds, n_iter = _sklearn_nmf(
            X, start_abundances, vca_endmembers, max_iter)
        add("sklearn NMF (mu, l2)", nmf_endmembers, nmf_abundances, seconds, n_iter)
    return results, size


def _speed(report, quick):
    rows = {}
    rng = np.random.RandomState(0)
    endmembers = np.abs(rng.rand(N_ENDMEMBERS, N_BANDS)) + 0.05
    n_pixels = 20_000 if quick else 100_000
    X = rng.dirichlet(np.ones(N_ENDMEMBERS), size=n_pixels) @ endmembers
    X += 0.01 * rng.standard_normal(X.shape)
    _, seconds = time_call(fcls, X, endmembers, repeat=3)
    rows["fcls"] = report.add(case=f"FCLS {n_pixels} px x {N_BANDS} bands, K=4",
                              method="sparsesolve fcls", seconds=seconds,
                              seconds_per_pixel=seconds / n_pixels)
    pysptools_fcls, _ = _pysptools_fcls()
    if pysptools_fcls is not None:
        n_anchor = 300 if quick else 2000
        _, anchor_seconds = time_call(pysptools_fcls, X[:n_anchor], endmembers,
                                      repeat=1, warmup=0)
        rows["pysptools"] = report.add(
            case=f"FCLS {n_anchor} px x {N_BANDS} bands, K=4",
            method="pysptools FCLS (cvxopt)", seconds=anchor_seconds,
            seconds_per_pixel=anchor_seconds / n_anchor)

    size = 60 if quick else 100
    cube, _, _, _ = make_hyperspectral(size, size, N_ENDMEMBERS, N_BANDS,
                                       snr_db=30, corrupted_bands="water",
                                       random_state=2)
    X = cube_to_pixels(cube)
    # Warm-up (numba compilation) on a small slice, then one timed fit.
    default = ROBUST_METHODS["RobustUnmixing log learned (default)"]
    _robust_fit(X[:500], default, 5)
    # The figure is wall time; CPU time (this process, all
    # threads) is recorded too because the shared benchmark machine is busy.
    cpu_start = time.process_time()
    model, _, seconds = _robust_fit(X, default, 300)
    cpu_seconds = time.process_time() - cpu_start
    rows["fit"] = report.add(
        case=f"fit {size}x{size} px x {N_BANDS} bands, K=4 (corrupted)",
        method="RobustUnmixing log learned (default)", seconds=seconds,
        cpu_seconds=cpu_seconds,
        n_iter=model.n_iter_, seconds_per_iteration=seconds / max(model.n_iter_, 1))
    return rows, size


# Scenes from measured spectra (earthlib). Seeds 0-4 were used while choosing
# the defaults (alpha, tol); the figures are medians over the held-out seeds.
MEASURED_SEEDS = (100, 101, 102, 103, 104)
MEASURED_SEEDS_QUICK = (100, 101)


def _nmf_anchor(X, k, max_iter):
    from sklearn.decomposition import NMF

    model = NMF(k, init="nndsvda", solver="mu", max_iter=max_iter, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W = model.fit_transform(np.clip(X, 0, None))
    return model.components_, W / np.maximum(W.sum(axis=1, keepdims=True), 1e-12)


def _measured(report, quick):
    """RobustUnmixing against VCA + FCLS, band-dropping VCA + FCLS, NMF and the oracle.

    Scenes: :func:`make_measured_hyperspectral` (earthlib measured spectra on
    a 206-band grid; water windows, low-SNR edges, striping, a dead and a
    saturated band), K in {3, 4, 6}, correlated (every pair within 8 degrees)
    or distinct materials, corrupted or clean, 30 dB.
    """
    from sparsesolve.datasets import make_measured_hyperspectral

    try:
        from pysptools.abundance_maps.amaps import FCLS as pysptools_fcls
    except Exception:  # noqa: BLE001 - any import failure means "skip"
        pysptools_fcls = None
    size = 40
    seeds = MEASURED_SEEDS_QUICK if quick else MEASURED_SEEDS
    counts = (4,) if quick else (3, 4, 6)
    rows = []
    for k in counts:
        for correlated in (True, False):
            for corruption in ("realistic", None):
                for seed in seeds:
                    cube, E, A, bad, _ = make_measured_hyperspectral(
                        size, size, k, correlated=correlated, corruption=corruption,
                        random_state=seed)
                    X = cube_to_pixels(cube)
                    truth = A.reshape(-1, k)
                    clean = np.setdiff1d(np.arange(X.shape[1]), bad)
                    scene = dict(k=k, correlated=correlated,
                                 corrupted=corruption is not None, seed=seed)

                    def score(Eh, Ah, clean=clean, E=E, truth=truth):
                        order, angles = match_endmembers(E, Eh, bands=clean)
                        return float(angles.mean()), float(
                            np.sqrt(np.mean((Ah[:, order] - truth) ** 2)))

                    out = {}
                    # What a user runs first: VCA + FCLS on every band.
                    _, idx = vca(X, k, random_state=0)
                    out["vca_fcls"] = score(X[idx], fcls(X, X[idx]))
                    # A careful user: drop the bands the noise screen flags.
                    keep = RobustUnmixing(k)._clean_band_mask(X)
                    _, idx = vca(X[:, keep], k, random_state=0)
                    out["vca_fcls_dropped"] = score(
                        X[idx], fcls(X[:, keep], X[idx][:, keep]))
                    out["nmf"] = score(*_nmf_anchor(X, k, 300 if quick else 500))
                    # RobustUnmixing's own start (best of n_init VCA draws +
                    # FCLS): not an anchor, but it shows
                    # what the iterations themselves add.
                    start_model = RobustUnmixing(k)
                    start_A, start_E = start_model._initialise(
                        X, np, np.random.RandomState(0))
                    out["own_start"] = score(start_E, start_A)
                    model = RobustUnmixing(k, random_state=0)
                    start = time.perf_counter()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", ConvergenceWarning)
                        Ah = model.fit_transform(X)
                    seconds = time.perf_counter() - start
                    out["robust"] = score(model.endmembers_, Ah)
                    oracle = fcls(X[:, clean], E[:, clean])
                    out["oracle_rmse"] = float(np.sqrt(np.mean((oracle - truth) ** 2)))
                    if pysptools_fcls is not None and seed == seeds[0]:
                        subset = slice(0, 200)
                        pys = np.asarray(pysptools_fcls(X[subset][:, clean],
                                                        E[:, clean]), dtype=float)
                        out["pysptools_oracle_max_diff"] = float(
                            np.abs(pys - oracle[subset]).max())
                    objective = np.asarray(model.objective_)
                    row = report.add(
                        case=f"measured {size}x{size}x206 K={k}", method="all",
                        seconds=seconds, n_iter=model.n_iter_,
                        converged=not any(issubclass(w.category, ConvergenceWarning)
                                          for w in caught),
                        ended_above_start=bool(objective[-1] > objective[0]),
                        monotone=bool(np.all(np.diff(objective)
                                             <= 1e-10 * np.abs(objective[:-1]))),
                        **scene, **{f"{m}_sad": v[0] for m, v in out.items()
                                    if isinstance(v, tuple)},
                        **{f"{m}_rmse": v[1] for m, v in out.items()
                           if isinstance(v, tuple)},
                        oracle_rmse=out["oracle_rmse"],
                        pysptools_oracle_max_diff=out.get("pysptools_oracle_max_diff"))
                    rows.append(row)
                    print(f"   measured K={k} corr={correlated} {corruption} "
                          f"seed={seed}"
                          f": RU {out['robust'][0]:.2f} deg/{out['robust'][1]:.3f} "
                          f"VCA {out['vca_fcls'][0]:.2f}/{out['vca_fcls'][1]:.3f} "
                          f"drop {out['vca_fcls_dropped'][0]:.2f}/"
                          f"{out['vca_fcls_dropped'][1]:.3f} NMF {out['nmf'][0]:.2f}/"
                          f"{out['nmf'][1]:.3f} oracle {out['oracle_rmse']:.3f} "
                          f"its {model.n_iter_}", flush=True)
    return rows


def _measured_summary(rows):
    anchors = ("vca_fcls", "vca_fcls_dropped", "nmf")
    corrupted = [r for r in rows if r["corrupted"]]
    clean = [r for r in rows if not r["corrupted"]]

    def best(row, metric):
        return min(row[f"{a}_{metric}"] for a in anchors)

    summary = {
        "measured_corrupted_sad_ratio_median": float(np.median(
            [r["robust_sad"] / best(r, "sad") for r in corrupted])),
        "measured_corrupted_rmse_ratio_median": float(np.median(
            [r["robust_rmse"] / best(r, "rmse") for r in corrupted])),
        "measured_clean_sad_ratio_to_vca_max": float(max(
            r["robust_sad"] / r["vca_fcls_sad"] for r in clean)),
        "measured_clean_sad_ratio_to_vca_median": float(np.median(
            [r["robust_sad"] / r["vca_fcls_sad"] for r in clean])),
        "measured_clean_scenes_worse_than_vca": int(sum(
            r["robust_sad"] > r["vca_fcls_sad"] for r in clean)),
        "measured_corrupted_sad_ratio_to_own_start_median": float(np.median(
            [r["robust_sad"] / r["own_start_sad"] for r in corrupted])),
        "measured_corrupted_rmse_ratio_to_own_start_median": float(np.median(
            [r["robust_rmse"] / r["own_start_rmse"] for r in corrupted])),
        "measured_clean_sad_ratio_to_own_start_max": float(max(
            r["robust_sad"] / r["own_start_sad"] for r in clean)),
        "measured_n_scenes": len(rows),
        "measured_fits_ending_above_start": int(
            sum(r["ended_above_start"] for r in rows)),
        "measured_fits_monotone": all(r["monotone"] for r in rows),
        "measured_fits_not_converged": int(sum(not r["converged"] for r in rows)),
        "measured_iterations_median": float(np.median([r["n_iter"] for r in rows])),
    }
    for group, name in ((corrupted, "corrupted"), (clean, "clean")):
        for method in ("robust", "own_start") + anchors:
            summary[f"measured_{name}_{method}_sad_median"] = float(
                np.median([r[f"{method}_sad"] for r in group]))
            summary[f"measured_{name}_{method}_rmse_median"] = float(
                np.median([r[f"{method}_rmse"] for r in group]))
        summary[f"measured_{name}_oracle_rmse_median"] = float(
            np.median([r["oracle_rmse"] for r in group]))
    return summary


def _draw_measured(axes, rows):
    methods = ("robust", "own_start", "vca_fcls", "vca_fcls_dropped", "nmf")
    labels = ("RobustUnmixing", "its start (best of 10 VCA, FCLS)", "VCA+FCLS",
              "drop bands, VCA+FCLS", "sklearn NMF")
    groups = [(c, corr) for c in (True, False) for corr in (True, False)]
    width = 0.8 / len(methods)
    for ax, metric in zip(axes, ("sad", "rmse"), strict=True):
        for i, (method, label) in enumerate(zip(methods, labels, strict=True)):
            values = [np.median([r[f"{method}_{metric}"] for r in rows
                                 if r["corrupted"] == c and r["correlated"] == corr])
                      for c, corr in groups]
            ax.bar(np.arange(len(groups)) + i * width, values, width, label=label)
        if metric == "rmse":
            oracle = [np.median([r["oracle_rmse"] for r in rows
                                 if r["corrupted"] == c and r["correlated"] == corr])
                      for c, corr in groups]
            ax.plot(np.arange(len(groups)) + 0.4 - width / 2, oracle, "k_", ms=30,
                    mew=2, label="FCLS with the true endmembers")
            ax.legend(fontsize=7)
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
        ax.set_xticklabels([("corrupted" if c else "clean")
                            + (", correlated" if corr else ", distinct")
                            for c, corr in groups], fontsize=8)
        ax.set_yscale("log")
        ax.set_title("measured spectra (earthlib), held-out seeds: median "
                     + ("SAD (deg, clean bands)" if metric == "sad"
                        else "abundance RMSE"), fontsize=9)
    axes[0].legend(fontsize=7)


def _demo_iterations():
    cube, _, _, _ = make_hyperspectral(40, 40, 4, N_BANDS, snr_db=30,
                                       corrupted_bands="water",
                                       corruption_scale=1.0, random_state=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = RobustUnmixing(4, random_state=0).fit(cube_to_pixels(cube))
    return model.n_iter_, len(caught)


def _gpu(report, quick):
    """The learned-guidance l_2,1 fit and FCLS on the CPU path and on CuPy.

    A 1000 x 1000-pixel scene (300 x 300 with ``quick``), float32, 50
    iterations. The CPU path runs on every core; both devices are warmed up
    on a 50 x 50 crop first so that compilation is not timed, then each fit
    is timed once and FCLS twice.
    """
    from sparsesolve._backend import require_cupy

    cupy = require_cupy()
    side = 300 if quick else 1000
    cube, _, _, _ = make_hyperspectral(side, side, N_ENDMEMBERS, N_BANDS, snr_db=30,
                                       corrupted_bands="water", random_state=3)
    X = cube_to_pixels(cube).astype(np.float32)
    iterations = 50
    results = {}
    for label, data, threads in (("cpu_all_cores", X, None), ("cpu_2_cores", X, 2),
                                 ("gpu", cupy.asarray(X), None)):
        device = "gpu" if label == "gpu" else "cpu"
        with cpu_threads(threads):
            _robust_fit(data[:2500], ROBUST_METHODS["RobustUnmixing l21 learned"], 3)

            def fit(data=data):
                return _robust_fit(data, ROBUST_METHODS["RobustUnmixing l21 learned"],
                                   iterations)
            _, seconds = time_call(fit, repeat=1, warmup=0, device=device)
            _, fcls_seconds = time_call(fcls, data, data[:N_ENDMEMBERS], repeat=2,
                                        device=device)
        results[label] = report.add(
            case=f"fit {side}x{side} px x {N_BANDS} bands float32, {iterations} its",
            method=f"RobustUnmixing l21 learned ({label})", seconds=seconds)
        results[f"fcls_{label}"] = report.add(
            case=f"FCLS {side * side} px float32",
            method=f"sparsesolve fcls ({label})", seconds=fcls_seconds)
        print(f"  unmixing {label}: fit {seconds:.2f} s, fcls {fcls_seconds:.3f} s",
              flush=True)
    return results


def _figure(report, results, size, measured_rows):
    import matplotlib.pyplot as plt

    rows = 2 if results and measured_rows else 1
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4.5 * rows), squeeze=False)
    if results:
        _draw_synthetic(axes[0], results, size)
    if measured_rows:
        _draw_measured(axes[-1], measured_rows)
    fig.tight_layout()
    report.save_figure(fig)


def _draw_synthetic(axes, results, size):
    scenarios = sorted({scenario for scenario, _ in results})
    methods = [m for m in dict.fromkeys(method for _, method in results)
               if "removed" not in m]
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        for ax, metric in zip(axes, ("sad_deg", "rmse"), strict=False):
            values = [results.get((s, method), {}).get(metric, np.nan)
                      for s in scenarios]
            ax.bar(np.arange(len(scenarios)) + i * width, values, width, label=method)
    titles = ("mean SAD (degrees, clean bands)", "abundance RMSE")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xticks(np.arange(len(scenarios)) + 0.4 - width / 2)
        ax.set_xticklabels(scenarios)
        ax.set_yscale("log")
        ax.set_title(f"synthetic spectra: {title}, {size}x{size} px, {N_BANDS} bands",
                     fontsize=9)
    axes[0].legend(fontsize=7)


def run(quick=False, device="cpu"):
    """Run the unmixing benchmark and write its JSON and PNG."""
    report = Report("unmixing", quick, device)
    if device == "gpu":
        gpu = _gpu(report, quick)
        report.summary = {}
        for cpu in ("cpu_all_cores", "cpu_2_cores"):
            report.summary[f"gpu_fit_speedup_vs_{cpu}"] = report.ratio(
                gpu[cpu]["seconds"], gpu["gpu"]["seconds"])
            report.summary[f"gpu_fcls_speedup_vs_{cpu}"] = report.ratio(
                gpu[f"fcls_{cpu}"]["seconds"], gpu["fcls_gpu"]["seconds"])
        report.notes.append(
            f"CPU path on all {os.cpu_count()} cores (numba and BLAS threads at "
            "their defaults), and on 2 numba threads with 1 BLAS thread (the "
            "reference machine).")
        report.write()
        return report
    with threadpool_limits(1):
        measured_rows = _measured(report, quick)
        # UNMIXING_MEASURED_ONLY=1 skips the synthetic scenarios (used for
        # the last full run, on a shared machine short of time).
        if os.environ.get("UNMIXING_MEASURED_ONLY"):
            results, size = {}, 0
        else:
            results, size = _accuracy(report, quick)
        speed, fit_size = _speed(report, quick)
        demo_iterations, demo_warnings = _demo_iterations()

    worst = "corrupted_1.0"
    summary = {}
    robust = results.get((worst, "RobustUnmixing l21 learned"))
    uniform = results.get((worst, "RobustUnmixing l21 uniform"))
    default = results.get((worst, "RobustUnmixing log learned (default)"))
    if default:
        summary["corrupted_sad_deg_default"] = default["sad_deg"]
        summary["corrupted_rmse_default"] = default["rmse"]
    if robust:
        oracle = results[(worst, "RobustUnmixing l21 learned [bad bands removed]")]
        summary.update({
            "corrupted_sad_deg_l21_learned": robust["sad_deg"],
            "corrupted_rmse_l21_learned": robust["rmse"],
            "corrupted_sad_deg_l21_uniform": uniform["sad_deg"],
            "corrupted_rmse_l21_uniform": uniform["rmse"],
            "corrupted_sad_deg_l2_half_nmf": results[
                (worst, "RobustUnmixing l2 uniform (L1/2-NMF)")]["sad_deg"],
            "corrupted_sad_deg_sklearn_nmf": results[
                (worst, "sklearn NMF (mu, l2)")]["sad_deg"],
            "corrupted_rmse_ratio_to_bands_removed": report.ratio(
                robust["rmse"], oracle["rmse"]),
            "corrupted_sad_ratio_to_bands_removed": report.ratio(
                robust["sad_deg"], oracle["sad_deg"]),
        })
    robust_rows = [r for r in report.rows if str(r.get("method", "")).startswith(
        "RobustUnmixing")]
    summary["max_sum_to_one_error"] = max((r["sum_to_one_error"] for r in robust_rows
                                          if "sum_to_one_error" in r), default=None)
    summary["min_abundance"] = min((r["min_abundance"] for r in robust_rows
                                   if "min_abundance" in r), default=None)
    summary["objective_monotone_all_fits"] = all(
        r["objective_monotone"] for r in robust_rows
        if r.get("objective_monotone") is not None)
    if "pysptools" in speed:
        summary["fcls_speedup_per_pixel_vs_pysptools"] = report.ratio(
            speed["pysptools"]["seconds_per_pixel"], speed["fcls"]["seconds_per_pixel"])
    summary[f"fit_seconds_{fit_size}x{fit_size}x{N_BANDS}"] = speed["fit"]["seconds"]
    summary["fit_cpu_seconds"] = speed["fit"]["cpu_seconds"]
    summary["load_average_1min"] = os.getloadavg()[0]
    summary["fit_iterations"] = speed["fit"]["n_iter"]
    summary.update(_measured_summary(measured_rows))
    summary["demo_iterations_defaults"] = demo_iterations
    summary["demo_convergence_warnings"] = demo_warnings
    report.summary = summary
    _figure(report, results, size, measured_rows)
    report.write()
    return report


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    arguments = parser.parse_args()
    run(arguments.quick, arguments.device)
