"""Fill the README's results table from ``benchmarks/results/<family>.json``.

Usage: ``python benchmarks/results_table.py`` rewrites the part of README.md
between the ``results:start`` and ``results:end`` markers with the headline
figures (the ``summary`` of each full benchmark run) and the machine they
were measured on. ``--check`` only reports whether the README is up to date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


# The headline figures: (family, figure, target, summary key or a
# function of the summary). Everything else stays in the JSON files.
HEADLINES = [
    (
        "kronecker",
        "fast E-step vs dense SBL (rel. error)",
        "<= 1e-10",
        "estep_mean_rel_error_complex",
    ),
    (
        "kronecker",
        "P: SVD median NMSE gap to oracle LS (dB)",
        "<= 1",
        "P_svd_median_gap_to_oracle_db",
    ),
    ("kronecker", "P: support recovery", ">= 0.95", "P_svd_srr"),
    (
        "kronecker",
        "P: mean NMSE gain over classical SBL (dB)",
        ">= 10",
        "P_svd_mean_gain_over_classic_db",
    ),
    (
        "kronecker",
        "P: mean NMSE gain over ARDRegression (dB)",
        ">= 10",
        "P_svd_mean_gain_over_ard_db",
    ),
    (
        "kronecker",
        "P: speed-up vs classical SBL",
        ">= 100x",
        "P_speedup_svd_vs_classic",
    ),
    ("kronecker", "P: speed-up vs ARDRegression", ">= 1000x", "P_speedup_svd_vs_ard"),
    ("kronecker", "L (N=32768): fit seconds", "< 2", "L_svd_seconds"),
    (
        "kronecker",
        "IRS channel, 12 dB: channel NMSE (published PC-KroSBL 0.049)",
        "optional",
        lambda s: s["IRS_mean_channel_nmse"]["svd"]["12"],
    ),
    ("coding", "CEL0 throughput vs lasso_lars", ">= 10x", "cel0_speedup_vs_lasso_lars"),
    ("coding", "l1/2 throughput vs lasso_lars", ">= 10x", "l1/2_speedup_vs_lasso_lars"),
    ("coding", "CEL0 throughput vs OMP (k=16)", "> 1x", "cel0_speedup_vs_omp_k16"),
    (
        "coding",
        "dictionary learning vs MiniBatchDictionaryLearning",
        ">= 10x",
        "dictionary_learning_speedup_cel0",
    ),
    (
        "unmixing",
        "corrupted bands: SAD (degrees)",
        "<= 1",
        "corrupted_sad_deg_l21_learned",
    ),
    (
        "unmixing",
        "corrupted bands: abundance RMSE",
        "<= 0.03",
        "corrupted_rmse_l21_learned",
    ),
    (
        "unmixing",
        "corrupted bands: sklearn NMF SAD (degrees)",
        "> 10",
        "corrupted_sad_deg_sklearn_nmf",
    ),
    (
        "unmixing",
        "FCLS speed-up per pixel vs pysptools",
        ">= 20x",
        "fcls_speedup_per_pixel_vs_pysptools",
    ),
    ("unmixing", "100x100x180 fit seconds", "< 10", "fit_seconds_100x100x180"),
    (
        "completion",
        "S1: sweeps to 1e-6 (cg)",
        "<= 20",
        lambda s: s["S1_sweeps_to_1e-6"]["cg"],
    ),
    (
        "completion",
        "S1: seconds per sweep (cg)",
        "< 0.05",
        lambda s: s["S1_seconds_per_sweep"]["cg"],
    ),
    (
        "completion",
        "S1: speed-up vs SoftImpute at equal error",
        ">= 100x",
        "S1_speedup_vs_softimpute_at_equal_error_best",
    ),
    (
        "completion",
        "S2 (20000^2, 2M entries): fit seconds (cg)",
        "< 60",
        lambda s: s["S2_fit_seconds"]["cg"],
    ),
    (
        "completion",
        "long rows: log-log slope of sweep time vs rank (cg / sketch / exact)",
        "~1 / ~1 / ~2",
        lambda s: " / ".join(
            f"{s['S3_long_rows']['loglog_slope_vs_rank'][name]:.2f}"
            for name in ("cg", "sketch", "exact")
        ),
    ),
    (
        "completion",
        "5% outliers: Huber error / clean error",
        "<= 2",
        "S6_huber_over_clean",
    ),
    (
        "poisson",
        "64^3 box: DCDM (fit + solve) / PyAMG (setup + solve), 1 / 2 threads",
        "<= 1.0",
        lambda s: " / ".join(
            f"{s[f'64^3 trained box: DCDM / PyAMG wall time, setup + solve ({t})']:.2f}"
            for t in ("1 thread", "2 threads")),
    ),
    (
        "poisson",
        "64^3 box: DCDM / fastest of SciPy CG, IC(0)-PCG, PyAMG, 1 / 2 threads",
        "<= 1.5",
        lambda s: " / ".join(
            f"{s[f'64^3 trained box: DCDM / fastest anchor wall time ({t})']:.2f}"
            for t in ("1 thread", "2 threads")),
    ),
    (
        "poisson",
        "128^3 box: DCDM / fastest anchor, 1 / 2 threads",
        "<= 1.0",
        lambda s: " / ".join(
            f"{s[f'128^3 trained box: DCDM / fastest anchor wall time ({t})']:.2f}"
            for t in ("1 thread", "2 threads")),
    ),
    (
        "poisson",
        "32^3 / 64^3 unseen obstacles: DCDM / fastest anchor (median, 1 thread)",
        "<= 1.5",
        lambda s: " / ".join(
            f"{s[f'{n}^3 unseen obstacles: DCDM / fastest anchor wall time ' + t]:.2f}"
            for n in (32, 64) for t in ("(1 thread)",)),
    ),
    (
        "poisson",
        "iteration growth 64^3 -> 128^3 (default)",
        "<= 1.3",
        "DCDM iteration growth 64^3 -> 128^3 (1 thread)",
    ),
    (
        "poisson",
        "128^3 ablation: time with a smoother / with the network, 1 thread",
        ">= 1.3",
        "128^3 trained box: DCDM, smoother at coarsest / DCDM wall time (1 thread)",
    ),
    (
        "poisson_forward",
        "network pass, numba, 32^3, 1 thread: GFLOP/s / fastest sgemm",
        ">= 0.3",
        "network pass 32^3 numba 1t GFLOP/s / fastest sgemm (wall)",
    ),
    (
        "clustering",
        "digits 5-way 1-shot accuracy (%)",
        ">= 83",
        "digits_1shot_accuracy",
    ),
    (
        "clustering",
        "digits 5-way 5-shot accuracy (%)",
        ">= 93",
        "digits_5shot_accuracy",
    ),
    ("clustering", "digits NMI / KMeans NMI", ">= 1", "digits_nmi_ratio_vs_KMeans"),
    (
        "clustering",
        "1e6 x 64, K=100: one sweep (s)",
        "< 1",
        "sweep_1000000_K100_seconds",
    ),
    # GPU comparisons (``run.py --device gpu``): the CPU path on the reference
    # machine's 2 cores first, then on every core of the GPU machine.
    (
        "kronecker_gpu",
        "XL (N=110592), 1 snapshot: GPU speed-up (2 / all cores)",
        ">= 5x",
        lambda s: _pair(s, "gpu_speedup_vs_cpu_{}_x1"),
    ),
    (
        "kronecker_gpu",
        "XL, 32 snapshots: GPU speed-up (2 / all cores)",
        "(not asked)",
        lambda s: _pair(s, "gpu_speedup_vs_cpu_{}_x32"),
    ),
    (
        "coding_gpu",
        "1e5 patches, CEL0: GPU speed-up (2 / all cores)",
        ">= 10x",
        lambda s: _pair(s, "cel0_gpu_speedup_vs_cpu_{}"),
    ),
    (
        "coding_gpu",
        "1e5 patches, l0 (slowest ratio): GPU speed-up (2 / all cores)",
        ">= 10x",
        lambda s: _pair(s, "l0_gpu_speedup_vs_cpu_{}"),
    ),
    (
        "unmixing_gpu",
        "1000x1000 px fit: GPU speed-up (2 / all cores)",
        ">= 10x",
        lambda s: _pair(s, "gpu_fit_speedup_vs_cpu_{}"),
    ),
    (
        "completion_gpu",
        "S2 fit (cg): GPU speed-up (2 / all cores)",
        ">= 5x",
        lambda s: _pair(s, "S2_cg_gpu_speedup_vs_cpu_{}"),
    ),
    (
        "clustering_gpu",
        "1e6 sweep, K=100: GPU speed-up (2 / all cores)",
        ">= 10x",
        lambda s: _pair(s, "sweep_1000000_K100_gpu_speedup_vs_cpu_{}"),
    ),
    (
        "poisson_gpu",
        "64^3: DCDM (GPU) speed-up vs CuPy CG, solve (white / smooth)",
        "> 1x",
        lambda s: " / ".join(
            f"{s[f'64_{rhs}_dcdm_solve_speedup_vs_cupy_cg']:.3f}"
            for rhs in ("white", "smooth")
        ),
    ),
]


def _pair(summary, pattern):
    """``"a / b"``: a summary figure against 2 cores, then against all cores."""
    return " / ".join(
        f"{summary[pattern.format(cores)]:.2f}" for cores in ("2_cores", "all_cores")
    )


def _format(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _lookup(summary, key):
    try:
        return key(summary) if callable(key) else summary[key]
    except (KeyError, TypeError):
        return None


def build_table():
    """Markdown table of the headline figures of every full benchmark run."""
    records = {
        path.stem: json.loads(path.read_text()) for path in RESULTS.glob("*.json")
    }
    lines = [
        "| family | figure | target | measured | machine |",
        "| --- | --- | --- | --- | --- |",
    ]
    for family, label, target, key in HEADLINES:
        record = records.get(family)
        if record is None:
            continue
        machine = record.get("machine", {})
        where = machine.get("gpu") or f"{machine.get('cpu_count', '?')} CPU cores"
        where += f", {machine.get('date', '')[:10]}"
        value = _lookup(record.get("summary", {}), key)
        shown = "not measured" if value is None else _format(value)
        lines.append(f"| {family} | {label} | {target} | {shown} | {where} |")
    if len(lines) == 2:
        lines.append("| - | no full benchmark run recorded yet | - | - | - |")
    return "\n".join(lines)


def main(argv=None):
    """Rewrite (or check) the README results section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print("README.md has no results markers", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{build_table()}\n{END}{tail}"
    if args.check:
        return 0 if updated == text else 1
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
