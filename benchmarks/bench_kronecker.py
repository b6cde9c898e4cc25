"""Benchmark of Kronecker-structured sparse Bayesian learning.

Methods on the same data (per seed the factors are drawn once and shared):
KroneckerSBL with method="svd" and "am" (both with the default support
refinement, ``refine=True``), SVD-KroSBL without it ("svd_em": the plain EM
of the paper, for comparison), classical SBL (method="classic",
the in-house unstructured baseline on the dense dictionary), scikit-learn's
ARDRegression (real data, sizes S and P only, dense dictionary) and oracle
least squares on the true support. Sizes (I = 3 modes):

* S: A_i of shapes (4, 8), (5, 8), (6, 8): N = 512, M = 120, 2 nonzeros/mode
* P: (8, 15), (12, 15), (15, 15): N = 3375, M = 1440, 3 nonzeros/mode (paper)
* L: (16, 32) x 3: N = 32768, M = 4096, 3 nonzeros/mode (dense methods
  would need a 1 GiB dictionary and are not run)

Variants of P (25 dB): i.i.d. normal values on the
Kronecker support ("P-kronsupp", no rank-1 values), complex data
("P-complex"), and M1 = 6, 10, 12, 14 measurements in the first mode
("P-m1=..."). Each has its own size tag, so the P figures are unchanged.

The IRS-MIMO channel of the paper (``make_irs_channel``, after the authors'
``PC-KroSBL/main.m``:
N = 5832 complex unknowns from M = 288 measurements, clustered support) at
4-20 dB on 50 draws: our defaults ("svd", "am", and "pc" = AM with pattern
coupling beta = 0.8 on the IRS and BS modes), the same without refinement
("*_em", the authors' algorithms), classical SBL on 10 draws, and the oracle.
The metric is the authors' channel NMSE, reported beside their published
means.

Seeds for the fast methods: T = 100 at S, 20 at P (the authors' protocol)
and 3 at L. Classical SBL runs on 20 seeds at S and on all 20 at P (about
10 s per fit here); ARDRegression on 20 at S and 3 at P (25-120 s per fit),
so the full run takes about 20 minutes. Support recovery
is reported with the authors' definition (``srr``) and with the truth
thresholded like the estimate (``srr_detectable``, see ``_srr``).

The noise variance is given to the SBL methods (known-noise runs of the
paper). Everything runs with one BLAS thread (threadpoolctl): on a loaded
2-core machine two threads made dense SBL many times slower. Timings are the
best of a few runs after a warm-up for the fast methods and a single run for
the slow anchors.
"""

from __future__ import annotations

import warnings

import numpy as np
from _harness import Report, cpu_threads, peak_memory, time_call
from threadpoolctl import threadpool_limits

from sparsesolve._backend import to_numpy
from sparsesolve.datasets import make_irs_channel, make_kronecker_sparse
from sparsesolve.kronecker import KroneckerOperator, KroneckerSBL

SIZES = {
    "S": ([(4, 8), (5, 8), (6, 8)], 2),
    "P": ([(8, 15), (12, 15), (15, 15)], 3),
    "L": ([(16, 32), (16, 32), (16, 32)], 3),
}
# The GPU comparison's size (CPU against CuPy only).
GPU_SIZES = {"XL": ([(24, 48), (24, 48), (24, 48)], 3)}
# Variants of the P size, each its own size tag so
# that they never mix with the main rows: i.i.d. values on the Kronecker
# support (no rank-1 values), complex data, and the sweep over the number of
# measurements of the first mode (M1 = 8 is P itself).
VARIANTS = {
    "P-kronsupp": ("P", {"values": "kronsupp"}),
    "P-complex": ("P", {"complex_values": True}),
    **{f"P-m1={m1}": ("P", {"m1": m1}) for m1 in (6, 10, 12, 14)},
}
# The paper's IRS-MIMO channel and the means the authors' code
# committed for it (50 trials; channel NMSE averaged over IRS patterns).
IRS_SNRS = (4, 8, 12, 16, 20)
IRS_PUBLISHED = {
    "cSBL": (0.953, 0.724, 0.463, 0.228, 0.144),
    "AM-KroSBL": (0.714, 0.321, 0.197, 0.139, 0.070),
    "SVD-KroSBL": (0.609, 0.305, 0.194, 0.123, 0.105),
    "PC-KroSBL beta=0.8": (0.312, 0.132, 0.049, 0.0089, 0.0029),
}
# PC-KroSBL couples the two angle-spread modes (IRS and BS), as the authors do.
_IRS_COUPLING = [0.8, None, 0.8]
# Our defaults (refined) and the paper's plain EM ("_em") of each variant.
IRS_METHODS = ("svd", "am", "pc", "svd_em", "am_em", "pc_em")
# Support recovery: |x_n| > 1e-3 max |x| counts as detected (the authors' SRR).
_SRR_THRESHOLD = 1e-3


def _nmse(estimate, truth):
    return float(np.sum(np.abs(estimate - truth) ** 2) / np.sum(np.abs(truth) ** 2))


def _srr(estimate, truth, *, detectable=False):
    """Support recovery rate |S_hat & S| / |S_hat | S| (the authors' definition).

    ``S_hat`` keeps the estimated entries above ``1e-3 max |x_hat|``. With
    ``detectable=False`` (the authors' definition) ``S`` is every nonzero of the
    truth. Rank-1 values (products of one N(0, 1) draw per mode) often put
    true entries far below ``1e-3 max |x|``, so that definition scores the
    truth itself below 1; ``detectable=True`` applies the same relative
    threshold to the truth (as the authors' PC-KroSBL ``recover_rate.m``
    does), so that a perfect estimate scores exactly 1.
    """
    found = np.abs(estimate) > _SRR_THRESHOLD * np.max(np.abs(estimate))
    if detectable:
        true = np.abs(truth) > _SRR_THRESHOLD * np.max(np.abs(truth))
    else:
        true = truth != 0
    return float(np.sum(found & true) / np.sum(found | true))


def _db(value):
    return float(10 * np.log10(value)) if value and value > 0 else None


def _problem(size, seed, snr_db, complex_values=False, n_samples=1):
    options = {"complex_values": complex_values}
    if size in VARIANTS:
        size, extra = VARIANTS[size]
        options.update(extra)
    shapes, n_nonzero = {**SIZES, **GPU_SIZES}[size]
    if "m1" in options:
        shapes = [(options["m1"], shapes[0][1]), *shapes[1:]]
    Y, factors, X = make_kronecker_sparse(shapes, n_nonzero, snr_db,
                                          n_samples=n_samples,
                                          complex=options["complex_values"],
                                          values=options.get("values", "rank1"),
                                          random_state=seed)
    clean = KroneckerOperator(factors).matvec(X[0])
    noise_variance = float(np.mean(np.abs(clean) ** 2) * 10 ** (-snr_db / 10))
    return Y, factors, X, noise_variance


def _oracle(factors, y, truth):
    """Least squares on the true (Kronecker) support: (⊗ A_i[:, S_i]) x_S = y."""
    sizes = [f.shape[1] for f in factors]
    support = (truth != 0).reshape(sizes)
    modes = [np.flatnonzero(support.any(axis=tuple(j for j in range(len(sizes))
                                                    if j != i)))
             for i in range(len(sizes))]
    sub = factors[0][:, modes[0]]
    for factor, index in zip(factors[1:], modes[1:], strict=True):
        sub = np.kron(sub, factor[:, index])
    solution = np.linalg.lstsq(sub, y, rcond=None)[0]
    estimate = np.zeros(truth.shape, dtype=solution.dtype)
    grids = np.meshgrid(*modes, indexing="ij")
    estimate[np.ravel_multi_index([g.ravel() for g in grids], sizes)] = solution
    return estimate


def _fit_sbl(method, factors, Y, noise_variance):
    """Fit one benchmark method: ``svd``, ``am``, ``classic``, ``pc`` (AM with
    the IRS coupling), and ``*_em`` for the same without support refinement."""
    refine = not method.endswith("_em")
    method = method.removesuffix("_em")
    coupling = None
    if method == "pc":
        method, coupling = "am", _IRS_COUPLING
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is recorded as n_iter
        model = KroneckerSBL(factors, method=method, noise_variance=noise_variance,
                             refine=refine, coupling=coupling).fit(Y)
    return model


def _fit_ard(A, y):
    from sklearn.linear_model import ARDRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ARDRegression(fit_intercept=False).fit(A, y)


def _measure(report, size, seed, snr_db, method, function, truth, *, repeat,
             memory=False, score=None, **extra):
    """Time ``function`` (returning ``(estimate, n_iter)``) and record a row.

    ``score``, if given, maps the estimate to further metrics for the row.
    """
    warmup = 1 if repeat > 1 else 0
    result, seconds = time_call(function, repeat=repeat, warmup=warmup)
    estimate, n_iter = result
    row = dict(size=size, seed=seed, snr_db=snr_db, method=method,
               nmse=_nmse(estimate, truth), srr=_srr(estimate, truth),
               srr_detectable=_srr(estimate, truth, detectable=True),
               seconds=seconds, n_iter=n_iter, **extra)
    if score is not None:
        row.update(score(estimate))
    if memory:
        _, peak = peak_memory(function)
        row["peak_mib"] = peak / 2**20
    return report.add(**row)


def _run_case(report, size, seed, snr_db, methods, *, memory=False):
    Y, factors, X, noise_variance = _problem(size, seed, snr_db)
    truth = X[0]
    for method in methods:
        if method in ("svd", "svd_em", "am", "classic"):
            def function(method=method):
                model = _fit_sbl(method, factors, Y, noise_variance)
                return model.coef_[0], model.n_iter_
            repeat = 1 if method == "classic" else 3
        elif method == "ard":
            A = KroneckerOperator(factors).todense()

            def function(A=A):
                model = _fit_ard(A, Y[0])
                return model.coef_, getattr(model, "n_iter_", None)
            repeat = 1
        else:  # oracle least squares
            def function():
                return _oracle(factors, Y[0], truth), None
            repeat = 3
        _measure(report, size, seed, snr_db, method, function, truth,
                 repeat=repeat, memory=memory and method in ("svd", "am", "oracle"))


def _channel_nmse(info, code):
    """Channel NMSE of the authors' IRS code: per IRS pattern, then averaged."""
    true, estimate = info.channels, info.channels_of(code)
    errors = np.sum(np.abs(estimate - true) ** 2, axis=(1, 2))
    return float(np.mean(errors / np.sum(np.abs(true) ** 2, axis=(1, 2))))


def _run_irs_case(report, seed, snr_db, methods):
    """One IRS-MIMO channel of the paper, every method on the same draw."""
    Y, factors, X, info = make_irs_channel(snr_db, random_state=seed)
    truth = X[0]
    for method in methods:
        if method == "oracle":
            def function():
                return _oracle(factors, Y[0], truth), None
        else:
            def function(method=method):
                model = _fit_sbl(method, factors, Y, info.noise_variance)
                return model.coef_[0], model.n_iter_
        # One timed run: the IRS rows are about accuracy (timings are the
        # P rows' job), and 50 draws x 5 SNRs x 8 methods add up.
        _measure(report, "IRS", seed, snr_db, method, function, truth, repeat=1,
                 score=lambda code: {"channel_nmse": _channel_nmse(info, code)})


def _estep_check():
    """Fast E-step vs a dense N x N posterior on the S size (relative errors)."""
    from sparsesolve._backend import get_namespace
    from sparsesolve.kronecker._posterior import kron_vector, kronecker_posterior

    xp = get_namespace(np.ones(1))
    errors = {}
    for complex_values in (False, True):
        rng = np.random.RandomState(0)
        shapes = SIZES["S"][0]
        factors = [rng.standard_normal(s) + (1j * rng.standard_normal(s)
                                             if complex_values else 0)
                   for s in shapes]
        gammas = [rng.uniform(0.05, 2.0, n) for _, n in shapes]
        y = rng.standard_normal((1, 120))
        mean, variance = kronecker_posterior(factors, gammas, 0.3, y, xp)
        A = KroneckerOperator(factors).todense()
        precision = A.conj().T @ A / 0.3 + np.diag(1 / kron_vector(gammas, xp))
        # Two refinement steps with extended-precision residuals make the
        # dense reference accurate far below the 1e-10 being checked.
        wide = np.clongdouble if complex_values else np.longdouble
        precision_wide = precision.astype(wide)
        Sigma = np.linalg.inv(precision)
        rhs = (A.conj().T @ y[0] / 0.3)
        ref_mean = Sigma @ rhs
        identity = np.eye(len(precision), dtype=wide)
        for _ in range(2):
            Sigma = Sigma + Sigma @ (identity - precision_wide @ Sigma.astype(wide)
                                     ).astype(Sigma.dtype)
            ref_mean = ref_mean + Sigma @ (rhs.astype(wide) - precision_wide
                                           @ ref_mean.astype(wide)).astype(rhs.dtype)
        ref_variance = np.real(np.diag(Sigma))
        kind = "complex" if complex_values else "real"
        errors[f"estep_mean_rel_error_{kind}"] = float(
            np.linalg.norm(mean[0] - ref_mean) / np.linalg.norm(ref_mean))
        errors[f"estep_variance_rel_error_{kind}"] = float(
            np.linalg.norm(variance - ref_variance) / np.linalg.norm(ref_variance))
    return errors


def _missed_slabs(seeds, size="P", snr_db=25):
    """Why SVD-KroSBL misses true slabs: the evidence the data hold for them.

    For every true slab (one index of one mode) that the fit left out, the
    largest type-II cost decrease adding it could bring (no penalty,
    ``_moves.slab_gains``) is set against the extended-BIC penalty of a slab
    and against the best such gain of any false slab of the same mode. A
    true slab outranked by a false one cannot be found by any rule that
    adds slabs by evidence: the data do not single it out.
    """
    from sparsesolve.kronecker._moves import slab_gains, slab_penalty

    missed, false_gains = [], []
    for seed in seeds:
        Y, factors, X, noise_variance = _problem(size, seed, snr_db)
        model = _fit_sbl("svd", factors, Y, noise_variance)
        sizes = [f.shape[1] for f in factors]
        truth = np.abs(X[0]).reshape(sizes)
        penalty = slab_penalty(Y.shape[1], Y.shape[0], sum(sizes), False)
        for mode, gamma in enumerate(model.gammas_):
            gamma = np.asarray(gamma)
            others = tuple(k for k in range(len(sizes)) if k != mode)
            slab_norm = np.sqrt(np.sum(truth ** 2, axis=others))
            true_slabs = np.flatnonzero(slab_norm > 0)
            gains = slab_gains(factors, model.gammas_, noise_variance, Y, np, mode)
            false = np.setdiff1d(np.flatnonzero(gamma == 0), true_slabs)
            best_false = float(np.max(gains[false])) if false.size else 0.0
            false_gains.append(best_false)
            lost = [j for j in true_slabs if gamma[j] == 0]
            for j in lost:
                missed.append({
                    "seed": int(seed), "mode": mode, "slab": int(j),
                    "relative_slab_norm": float(slab_norm[j] / slab_norm.max()),
                    "evidence_gain": float(gains[j]),
                    "best_false_slab_gain": best_false,
                    "penalty": float(penalty),
                    "outranked_by_a_false_slab": bool(gains[j] < best_false),
                })
    # The strongest false slab over all fits: a penalty below this admits a
    # wrong slab somewhere, so a missed true slab with less evidence cannot
    # be recovered by lowering the penalty without losing support elsewhere.
    return {"missed": missed, "largest_false_slab_gain": max(false_gains)}


def _stats(rows, size, method, snr_db=25):
    picked = [r for r in rows if r["size"] == size and r["method"] == method
              and r["snr_db"] == snr_db]
    if not picked:
        return None
    nmse = np.array([r["nmse"] for r in picked])
    stats = {
        "n_seeds": len(picked),
        "median_nmse_db": _db(np.median(nmse)),
        "mean_nmse_db": _db(np.mean(nmse)),
        "mean_srr": float(np.mean([r["srr"] for r in picked])),
        "mean_srr_detectable": float(np.mean([r["srr_detectable"]
                                              for r in picked])),
        "median_seconds": float(np.median([r["seconds"] for r in picked])),
    }
    peaks = [r["peak_mib"] for r in picked if "peak_mib" in r]
    if peaks:
        stats["max_peak_mib"] = float(max(peaks))
    return stats


def _summary(report):
    rows = report.rows
    summary = {}
    for size in SIZES:
        for method in ("svd", "svd_em", "am", "classic", "ard", "oracle"):
            stats = _stats(rows, size, method)
            if stats is not None:
                summary[f"{size}_{method}"] = stats
    svd_p, oracle_p = summary.get("P_svd"), summary.get("P_oracle")
    if svd_p and oracle_p:
        summary["P_svd_median_gap_to_oracle_db"] = (
            svd_p["median_nmse_db"] - oracle_p["median_nmse_db"])
        summary["P_svd_mean_gap_to_oracle_db"] = (
            svd_p["mean_nmse_db"] - oracle_p["mean_nmse_db"])
        if summary.get("P_svd_em"):
            summary["P_svd_em_median_gap_to_oracle_db"] = (
                summary["P_svd_em"]["median_nmse_db"] - oracle_p["median_nmse_db"])
        summary["P_svd_srr"] = svd_p["mean_srr"]
        summary["P_svd_srr_detectable"] = svd_p["mean_srr_detectable"]
        # The truth scored against itself with the authors' SRR: the ceiling
        # any estimator can reach on these draws.
        truths = [_problem("P", seed, 25)[2][0] for seed in
                  sorted({r["seed"] for r in rows if r["size"] == "P"
                          and r["method"] == "svd" and r["snr_db"] == 25})]
        summary["P_truth_srr_ceiling"] = float(np.mean(
            [_srr(x, x) for x in truths]))
        summary["P_svd_missed_slabs"] = _missed_slabs(
            sorted({r["seed"] for r in rows if r["size"] == "P"
                    and r["method"] == "svd" and r["snr_db"] == 25}))
    for anchor in ("classic", "ard"):
        other = [r for r in rows if r["size"] == "P" and r["method"] == anchor
                 and r["snr_db"] == 25]
        if not (svd_p and other):
            continue
        # Compare on the seeds the (slow) anchor ran on, so means see the
        # same problems.
        seeds = {r["seed"] for r in other}
        mine = [r for r in rows if r["size"] == "P" and r["method"] == "svd"
                and r["snr_db"] == 25 and r["seed"] in seeds]
        summary[f"P_{anchor}_seeds"] = sorted(seeds)
        summary[f"P_svd_mean_gain_over_{anchor}_db"] = (
            _db(np.mean([r["nmse"] for r in other]))
            - _db(np.mean([r["nmse"] for r in mine])))
        summary[f"P_speedup_svd_vs_{anchor}"] = report.ratio(
            float(np.median([r["seconds"] for r in other])),
            float(np.median([r["seconds"] for r in mine])))
    for size in ("S", "P"):
        oracle = {r["seed"]: r["nmse"] for r in rows if r["size"] == size
                  and r["method"] == "oracle" and r["snr_db"] == 25}
        for method in ("svd", "svd_em", "am"):
            fails = [r for r in rows if r["size"] == size and r["method"] == method
                     and r["snr_db"] == 25]
            if not fails:
                continue
            # Failure: NMSE more than 10x the oracle's on the same seed.
            summary[f"{size}_{method}_failure_rate"] = float(np.mean(
                [r["nmse"] > 10 * oracle[r["seed"]] for r in fails]))
            # Paired view: per seed, the NMSE minus the oracle's (dB).
            summary[f"{size}_{method}_paired_median_gap_to_oracle_db"] = float(
                np.median([_db(r["nmse"]) - _db(oracle[r["seed"]])
                           for r in fails]))
    svd_l = summary.get("L_svd")
    if svd_l:
        summary["L_svd_seconds"] = svd_l["median_seconds"]
        summary["L_svd_peak_mib"] = svd_l.get("max_peak_mib")
    return summary


def _variant_summary(rows):
    """Per P variant and method: NMSE, SRR and time (25 dB)."""
    summary = {}
    for tag in VARIANTS:
        for method in ("svd", "svd_em", "am", "classic", "oracle"):
            stats = _stats(rows, tag, method)
            if stats is not None:
                summary[f"{tag}_{method}"] = stats
        if summary.get(f"{tag}_svd") and summary.get(f"{tag}_oracle"):
            summary[f"{tag}_svd_median_gap_to_oracle_db"] = (
                summary[f"{tag}_svd"]["median_nmse_db"]
                - summary[f"{tag}_oracle"]["median_nmse_db"])
    return summary


def _irs_summary(rows):
    """IRS channel: mean channel NMSE per method and SNR, beside the paper's.

    ``IRS_paper_ordering_em`` checks the ordering the authors report
    (PC-KroSBL below AM- and SVD-KroSBL, both below classical SBL) on our
    plain-EM variants; ``IRS_svd_below_published_pc`` compares our default
    with the best published method at each SNR.
    """
    irs = [r for r in rows if r["size"] == "IRS"]
    if not irs:
        return {}
    snrs = sorted({r["snr_db"] for r in irs})
    table = {}
    for method in sorted({r["method"] for r in irs}):
        table[method] = {
            str(snr): float(np.mean([r["channel_nmse"] for r in irs
                                     if r["method"] == method
                                     and r["snr_db"] == snr]))
            for snr in snrs
            if any(r["method"] == method and r["snr_db"] == snr for r in irs)
        }
    summary = {
        "IRS_n_seeds": len({r["seed"] for r in irs if r["method"] == "svd"}),
        "IRS_classic_n_seeds": len({r["seed"] for r in irs
                                    if r["method"] == "classic"}),
        "IRS_mean_channel_nmse": table,
        "IRS_published_mean_channel_nmse": {
            name: dict(zip(map(str, IRS_SNRS), values, strict=True))
            for name, values in IRS_PUBLISHED.items()},
        "IRS_median_seconds": {
            method: float(np.median([r["seconds"] for r in irs
                                     if r["method"] == method]))
            for method in table},
    }
    ordering, below = {}, {}
    published_pc = dict(zip(IRS_SNRS, IRS_PUBLISHED["PC-KroSBL beta=0.8"],
                            strict=True))
    for snr in map(str, snrs):
        if "classic" in table and snr in table["classic"]:
            pc, am, svd = (table[m][snr] for m in ("pc_em", "am_em", "svd_em"))
            ordering[snr] = bool(pc < min(am, svd)
                                 and max(am, svd) < table["classic"][snr])
        if int(snr) in published_pc:
            below[snr] = bool(table["svd"][snr] < published_pc[int(snr)])
    summary["IRS_paper_ordering_em"] = ordering
    summary["IRS_svd_below_published_pc"] = below
    return summary


def _figure(report):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    colours = {"svd": "C0", "svd_em": "C4", "am": "C1", "classic": "C2", "ard": "C3",
               "oracle": "k"}
    for size, marker in zip(SIZES, "os^", strict=True):
        for method, colour in colours.items():
            picked = [r for r in report.rows if r["size"] == size
                      and r["method"] == method]
            snrs = sorted({r["snr_db"] for r in picked})
            if len(snrs) > 1:
                medians = [_db(np.median([r["nmse"] for r in picked
                                          if r["snr_db"] == s])) for s in snrs]
                axes[0].plot(snrs, medians, marker=marker, color=colour,
                             label=f"{method} ({size})")
            at25 = [r for r in picked if r["snr_db"] == 25]
            if at25:
                axes[1].scatter([np.median([r["seconds"] for r in at25])],
                                [_db(np.median([r["nmse"] for r in at25]))],
                                marker=marker, color=colour,
                                label=f"{method} ({size})")
    axes[0].set(xlabel="SNR (dB)", ylabel="median NMSE (dB)",
                title="Accuracy vs SNR")
    axes[1].set(xscale="log", xlabel="seconds per fit (1 BLAS thread)",
                ylabel="median NMSE (dB) at 25 dB", title="Accuracy vs time")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, ncol=2)
    # run() has put the IRS table in the summary before drawing.
    irs = report.summary
    if "IRS_mean_channel_nmse" in irs:
        styles = {"svd": "C0", "am": "C1", "pc": "C5", "svd_em": "C4",
                  "am_em": "C6", "pc_em": "C8", "classic": "C2", "oracle": "k"}
        for method, values in irs["IRS_mean_channel_nmse"].items():
            snrs = [int(k) for k in values]
            axes[2].plot(snrs, list(values.values()), marker="o",
                         color=styles.get(method), label=method)
        for (name, values), style in zip(IRS_PUBLISHED.items(), ":::-", strict=True):
            axes[2].plot(IRS_SNRS, values, linestyle=style, color="0.5",
                         marker="x", linewidth=1)
            axes[2].annotate(name, (IRS_SNRS[-1], values[-1]), fontsize=6,
                             color="0.4")
        axes[2].set(yscale="log", xlabel="SNR (dB)", ylabel="mean channel NMSE",
                    title="IRS-MIMO channel (grey: published means)")
        axes[2].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def run(quick=False, device="cpu"):
    """Run the benchmark and write ``results/kronecker.json`` and ``.png``.

    Parameters
    ----------
    quick : bool, default=False
        Few seeds, no dense method at size P or on the IRS channel (CI smoke
        test, < 1 min).
    device : {"cpu", "gpu"}, default="cpu"
        "gpu" runs only :func:`_gpu_comparison` (SVD-KroSBL at XL, CuPy
        against the CPU path in the same process) and writes
        ``results/kronecker_gpu.json``.

    Returns
    -------
    Report
    """
    if device == "gpu":
        return _gpu_comparison(quick)
    report = Report("kronecker", quick, device)
    try:
        import sklearn.linear_model  # noqa: F401
        have_ard = True
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        have_ard = False
        report.notes.append("scikit-learn missing: ARDRegression rows skipped")
    ard = ["ard"] if have_ard else []
    plan = {
        # size: (seeds for fast methods, seeds for dense methods, dense methods)
        # T = 100 seeds at S and T = 20 at P for the fast
        # methods; the dense baselines run on fewer seeds to keep the full
        # run within a few minutes on 2 cores.
        "S": (range(3) if quick else range(100), range(3) if quick else range(20),
              ["classic", *ard]),
        "P": (range(2) if quick else range(20), [] if quick else range(20),
              ["classic"]),
        "L": (range(1) if quick else range(3), [], []),
    }
    ard_p_seeds = [] if quick else range(3)
    with threadpool_limits(1):
        if not quick:
            report.summary.update(_estep_check())
        for size, (seeds, dense_seeds, dense_methods) in plan.items():
            for seed in seeds:
                methods = ["svd", "am", "oracle"]
                if size in ("S", "P"):
                    methods.append("svd_em")
                if seed in dense_seeds:
                    methods += dense_methods
                if size == "P" and seed in ard_p_seeds and have_ard:
                    methods.append("ard")
                _run_case(report, size, seed, 25, methods, memory=size == "L")
        sweep_seeds = range(2) if quick else range(10)
        for size in ("S", "P"):
            for snr_db in (5, 15):
                for seed in sweep_seeds:
                    _run_case(report, size, seed, snr_db, ["svd", "am", "oracle"])
        for tag in VARIANTS:
            sweep = tag.startswith("P-m1=")
            seeds = range(1) if quick else range(10 if sweep else 20)
            dense_seeds = [] if quick or sweep else range(
                3 if tag == "P-complex" else 5)
            for seed in seeds:
                methods = ["svd", "am", "oracle"] + ([] if sweep else ["svd_em"])
                if seed in dense_seeds:
                    methods.append("classic")
                _run_case(report, tag, seed, 25, methods)
        irs_snrs = (4, 20) if quick else IRS_SNRS
        for snr_db in irs_snrs:
            for seed in range(1) if quick else range(50):
                methods = [*IRS_METHODS, "oracle"]
                if not quick and seed < 10:
                    methods.append("classic")
                _run_irs_case(report, seed, snr_db, methods)
    report.summary.update(_summary(report))
    report.summary.update(_variant_summary(report.rows))
    report.summary.update(_irs_summary(report.rows))
    report.notes.append(
        "Known noise variance for the SBL methods; ARDRegression learns its own "
        "(fit_intercept=False, defaults otherwise). 1 BLAS thread everywhere.")
    report.notes.append(
        "peak_mib is tracemalloc's peak of NumPy allocations during one fit (a "
        "lower bound: BLAS/LAPACK workspaces are not traced).")
    if quick:
        report.notes.append("quick run: classical SBL and ARDRegression only at S.")
    report.save_figure(_figure(report))
    report.write()
    return report


def _gpu_comparison(quick):
    """SVD-KroSBL on the CPU path and on CuPy, same problems, one process.

    The XL size (N = 110592, M = 13824), float64, known noise
    variance, the default ``refine=True``. The CPU path runs twice: with
    every core of the machine, and with 2 numba threads and 1 BLAS thread
    (the reference machine of the CPU benchmark). Each fit is timed twice
    after one untimed warm-up fit. A last case fits 32 snapshots at once
    (shared hyperparameters), where the GPU has more work per step.
    """
    from sparsesolve._backend import require_cupy

    cupy = require_cupy()
    report = Report("kronecker", quick, "gpu")
    size = "L" if quick else "XL"
    cases = [(seed, 1) for seed in (range(1) if quick else range(3))] + [(0, 32)]
    times = {}
    for seed, n_samples in cases:
        Y, factors, X, noise_variance = _problem(size, seed, 25, n_samples=n_samples)
        on_gpu = ([cupy.asarray(f) for f in factors], cupy.asarray(Y))
        for label, (fac, data), device, threads in (
                ("cpu_all_cores", (factors, Y), "cpu", None),
                ("cpu_2_cores", (factors, Y), "cpu", 2),
                ("gpu", on_gpu, "gpu", None)):
            def fit(fac=fac, data=data, noise_variance=noise_variance):
                return _fit_sbl("svd", fac, data, noise_variance)

            with cpu_threads(threads):
                model, seconds = time_call(fit, repeat=2, warmup=1, device=device)
            estimate = to_numpy(model.coef_)
            times.setdefault((n_samples, label), []).append(seconds)
            report.add(size=size, seed=seed, n_samples=n_samples, snr_db=25,
                       method=f"svd ({label})", nmse=_nmse(estimate, X),
                       srr=_srr(estimate[0], X[0]), seconds=seconds,
                       n_iter=model.n_iter_)
            print(f"  kronecker {size} seed {seed} x{n_samples} {label}: "
                  f"{seconds:.3f} s", flush=True)
    median = {f"{label} x{n}": float(np.median(v)) for (n, label), v in times.items()}
    report.summary = {"size": size, "median_seconds": median}
    for n in sorted({n for n, _ in times}):
        for label in ("cpu_all_cores", "cpu_2_cores"):
            report.summary[f"gpu_speedup_vs_{label}_x{n}"] = report.ratio(
                median[f"{label} x{n}"], median[f"gpu x{n}"])
    report.notes.append(
        "SVD-KroSBL (refine=True), float64, known noise variance; best of 2 timed "
        "fits after a warm-up, median over seeds; 'xN' = N snapshots per fit.")
    report.write()
    return report


def held_out(size="P", seeds=range(100, 140), snr_db=25):
    """SVD-KroSBL with and without refinement on seeds the benchmark never uses.

    Prints median / mean NMSE (dB), the authors' SRR and the failure rate for
    ``svd``, ``svd_em`` and the oracle, and writes nothing: the check that a
    change was not tuned to the benchmark's own seeds.
    ``python benchmarks/bench_kronecker.py --held-out P 100 140``.
    """
    report = Report("kronecker_held_out", True, "cpu")
    with threadpool_limits(1):
        for seed in seeds:
            _run_case(report, size, seed, snr_db, ["svd", "svd_em", "oracle"])
    oracle = {r["seed"]: r["nmse"] for r in report.rows if r["method"] == "oracle"}
    for method in ("svd", "svd_em", "oracle"):
        picked = [r for r in report.rows if r["method"] == method]
        nmse = np.array([r["nmse"] for r in picked])
        failures = np.mean([r["nmse"] > 10 * oracle[r["seed"]] for r in picked])
        print(f"{size} seeds {seeds.start}-{seeds.stop - 1} {method:7s}: median "
              f"{_db(np.median(nmse)):.2f} dB, mean {_db(np.mean(nmse)):.2f} dB, "
              f"SRR {np.mean([r['srr'] for r in picked]):.3f}, "
              f"failures {failures:.3f}, median time "
              f"{np.median([r['seconds'] for r in picked]):.4f} s")


if __name__ == "__main__":
    import sys

    import matplotlib

    matplotlib.use("Agg")
    if "--held-out" in sys.argv:
        at = sys.argv.index("--held-out")
        size, low, high = sys.argv[at + 1], int(sys.argv[at + 2]), int(sys.argv[at + 3])
        held_out(size, range(low, high))
        sys.exit(0)
    result = run(quick="--quick" in sys.argv)
    for key, value in result.summary.items():
        print(f"{key}: {value}")
