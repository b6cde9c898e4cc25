"""l_q sparse coding: penalties vs scikit-learn coders at matched sparsity.

Track A (fixed dictionary): one dictionary learned once (l1, our learner) on
whitened patches of ``china.jpg``; test patches from ``flower.jpg``. Each
penalty of :class:`~sparsesolve.coding.LqSparseCoder` sweeps ``alpha`` and
its NMSE is interpolated (log-log) at a matched mean number of active
coefficients (non-convex penalties: the default lambda-continuation start,
and also the zero start ``init=None`` and the lasso start ``init="l1"``);
scikit-learn's ``SparseCoder`` (lasso_lars, lasso_cd, omp with fixed k) and
``orthogonal_mp_gram`` with a per-patch residual tolerance are run on the
same data. Throughput is measured at about 16 active atoms.

Track B (dictionary learning): time of one epoch of
:class:`~sparsesolve.coding.LqDictionaryLearning` vs scikit-learn's
``MiniBatchDictionaryLearning`` at the same size and alpha.

Run: ``python benchmarks/run.py coding [--quick] [--device gpu]``.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
from _harness import Report, cpu_threads, time_call

from sparsesolve._backend import require_cupy, to_numpy
from sparsesolve.coding import LqDictionaryLearning, LqSparseCoder
from sparsesolve.datasets import make_image_patches

PENALTIES = ("l1", "l0", "l1/2", "cel0")
# Non-convex penalties are also swept from the other starts: zero codes
# (init=None, the default before the continuation) and the lasso codes.
NONCONVEX = ("l0", "l1/2", "cel0")
OTHER_STARTS = {" (init=None)": None, " (init=l1)": "l1"}
# alpha grids wide enough to bracket 8-70 active atoms of 128-512 on these
# patches (their squared norm is about 50); the continuation gives sparser
# codes at equal alpha, hence the low ends.
ALPHA_GRIDS = {
    "l1": np.geomspace(0.05, 3.0, 9),
    "l0": np.geomspace(0.002, 1.0, 11),
    "l1/2": np.geomspace(0.004, 1.5, 11),
    "cel0": np.geomspace(0.002, 1.0, 11),
}
DEFAULT = "continuation"


def _config(quick):
    if quick:
        return dict(patch=(8, 8), n_atoms=128, n_train=3000, n_test=300,
                    n_lars=150, targets=(8, 16), dl_epochs=2, dl_train=1000,
                    dl_atoms=64, coder_iter=300)
    return dict(patch=(16, 16), n_atoms=512, n_train=10000, n_test=1000,
                n_lars=200, targets=(16, 32, 64), dl_epochs=2, dl_train=2000,
                dl_atoms=256, coder_iter=500)


def _log(message):
    print(f"   [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _nmse(X, codes, dictionary):
    return float(np.sum((X - codes @ dictionary) ** 2) / np.sum(X**2))


def _mean_nnz(codes):
    return float(np.mean(np.count_nonzero(codes, axis=1)))


def _interpolate(nnz, values, target, log_values=True):
    """Log-log interpolation of ``values`` at ``target`` mean nnz (None outside)."""
    nnz = np.asarray(nnz, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = nnz > 0
    nnz, values = nnz[keep], values[keep]
    if nnz.size < 2 or not (nnz.min() <= target <= nnz.max()):
        return None
    order = np.argsort(nnz)
    x = np.log(nnz[order])
    y = np.log(values[order]) if log_values else values[order]
    result = np.interp(np.log(target), x, y)
    return float(np.exp(result) if log_values else result)


def _learn_dictionary(train, n_atoms, quick):
    # One dictionary for every coder: l1 learning, a few
    # hundred mini-batches.
    learner = LqDictionaryLearning(
        n_atoms, penalty="l1", alpha=0.3, batch_size=250,
        max_iter=1, transform_max_iter=60, transform_tol=1e-3, random_state=0,
    )
    return learner.fit(train).components_


def _sweep(report, X, dictionary, penalty, alphas, max_iter, init=DEFAULT, suffix=""):
    # The grids are written for 16x16 patches (squared norm about 50); alpha
    # scales with the squared norm of the signals.
    alphas = np.asarray(alphas) * float(np.mean(np.sum(X**2, axis=1))) / 50.0
    rows = []
    for alpha in alphas:
        coder = LqSparseCoder(dictionary, penalty=penalty, alpha=float(alpha),
                              max_iter=max_iter, tol=1e-4, init=init)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes = coder.transform(X)
        seconds = time.perf_counter() - start
        rows.append(report.add(
            track="fixed_dictionary",
            method=f"sparsesolve {penalty}{suffix}",
            init=init if penalty != "l1" else None, alpha=float(alpha),
            mean_nnz=_mean_nnz(codes),
            nmse=_nmse(X, codes, dictionary), seconds=seconds,
            patches_per_s=X.shape[0] / seconds,
        ))
    return rows


def _sklearn_sweep(report, X, dictionary, algorithm, alphas):
    from sklearn.decomposition import SparseCoder

    rows = []
    for alpha in alphas:
        coder = SparseCoder(dictionary, transform_algorithm=algorithm,
                            transform_alpha=float(alpha), transform_max_iter=1000)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes = coder.transform(X)
        seconds = time.perf_counter() - start
        rows.append(report.add(
            track="fixed_dictionary", method=f"sklearn {algorithm}",
            alpha=float(alpha), mean_nnz=_mean_nnz(codes),
            nmse=_nmse(X, codes, dictionary), seconds=seconds,
            patches_per_s=X.shape[0] / seconds,
        ))
    return rows


def _omp_rows(report, X, dictionary, targets):
    from sklearn.decomposition import SparseCoder
    from sklearn.linear_model import orthogonal_mp_gram

    fixed = {}
    for k in targets:
        coder = SparseCoder(dictionary, transform_algorithm="omp",
                            transform_n_nonzero_coefs=k)
        codes, seconds = time_call(coder.transform, X, repeat=1)
        fixed[k] = report.add(
            track="fixed_dictionary", method="sklearn omp (fixed k)", k=k,
            mean_nnz=_mean_nnz(codes), nmse=_nmse(X, codes, dictionary),
            seconds=seconds, patches_per_s=X.shape[0] / seconds,
        )
    # Per-patch tolerance: every patch stops once its squared residual is
    # below tol, so easy patches get few atoms and hard ones many.
    gram = dictionary @ dictionary.T
    norms_squared = np.sum(X**2, axis=1)
    tolerance_rows = []
    for fraction in np.geomspace(0.02, 0.6, 9):
        tol = fraction * float(norms_squared.mean())
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes = orthogonal_mp_gram(gram, (X @ dictionary.T).T, tol=tol,
                                       norms_squared=norms_squared).T
        seconds = time.perf_counter() - start
        tolerance_rows.append(report.add(
            track="fixed_dictionary", method="sklearn omp (per-patch tol)",
            tol_fraction=float(fraction), mean_nnz=_mean_nnz(codes),
            nmse=_nmse(X, codes, dictionary), seconds=seconds,
            patches_per_s=X.shape[0] / seconds,
        ))
    return fixed, tolerance_rows


def _matched(rows, target):
    return _interpolate([r["mean_nnz"] for r in rows], [r["nmse"] for r in rows],
                        target)


def _alpha_for(rows, target):
    return _interpolate([r["mean_nnz"] for r in rows], [r["alpha"] for r in rows],
                        target)


def _time_at(X, dictionary, penalty, alpha, max_iter, n_jobs=None, init=DEFAULT):
    coder = LqSparseCoder(dictionary, penalty=penalty, alpha=alpha, max_iter=max_iter,
                          tol=1e-4, n_jobs=n_jobs, init=init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes, seconds = time_call(coder.transform, X, repeat=2)
    return _mean_nnz(codes), _nmse(X, codes, dictionary), X.shape[0] / seconds


def _dictionary_learning(report, train, n_atoms, epochs):
    from sklearn.decomposition import MiniBatchDictionaryLearning

    results = {}
    # alphas giving about 16 active atoms of 256 on 16x16 patches (scaled
    # with the squared patch norm for the quick run's 8x8 patches).
    scale = float(np.mean(np.sum(train**2, axis=1))) / 50.0
    alpha = 1.0 * scale
    cel0_alpha = 0.4 * scale
    for penalty in ("l1", "cel0"):
        learner = LqDictionaryLearning(
            n_atoms, penalty=penalty, alpha=alpha if penalty == "l1" else cel0_alpha,
            batch_size=256, max_iter=epochs, tol=0.0, max_no_improvement=None,
            transform_max_iter=100, transform_tol=1e-3, random_state=0,
        )
        # Compile the kernels outside the timed fit.
        LqDictionaryLearning(n_atoms, penalty=penalty, max_iter=1, batch_size=256,
                             transform_max_iter=5).fit(train[:300])
        start = time.perf_counter()
        learner.fit(train)
        seconds = (time.perf_counter() - start) / epochs
        components = learner.components_
        codes = learner.transform(train[:500])
        results[penalty] = report.add(
            track="dictionary_learning", method=f"sparsesolve {penalty}",
            alpha=learner.alpha, n_samples=train.shape[0], n_atoms=n_atoms,
            seconds_per_epoch=seconds, mean_nnz=_mean_nnz(codes),
            nmse=_nmse(train[:500], codes, components),
        )
    sklearn_learner = MiniBatchDictionaryLearning(
        n_components=n_atoms, alpha=alpha, batch_size=256, max_iter=1,
        fit_algorithm="lars", transform_algorithm="lasso_lars",
        transform_alpha=alpha, random_state=0, tol=0, max_no_improvement=None,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sklearn_learner.fit(train)
        seconds = time.perf_counter() - start
        codes = sklearn_learner.transform(train[:500])
    results["sklearn"] = report.add(
        track="dictionary_learning", method="sklearn MiniBatchDictionaryLearning",
        alpha=alpha, n_samples=train.shape[0], n_atoms=n_atoms,
        seconds_per_epoch=seconds, mean_nnz=_mean_nnz(codes),
        nmse=_nmse(train[:500], codes, sklearn_learner.components_),
    )
    return results


def _figure(report, sweeps, tolerance_rows, fixed, dl):
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rows in sweeps.items():
        rows = sorted(rows, key=lambda r: r["mean_nnz"])
        if name.endswith(" (init=None)") and not name.endswith("cel0 (init=None)"):
            continue  # keep the figure readable: CEL0's zero start only
        style = ("s--" if not name.startswith("sparsesolve")
                 else ".:" if name.endswith(")") else "o-")
        left.loglog([r["mean_nnz"] for r in rows], [r["nmse"] for r in rows],
                    style, label=name)
    rows = sorted(tolerance_rows, key=lambda r: r["mean_nnz"])
    left.loglog([r["mean_nnz"] for r in rows], [r["nmse"] for r in rows], "k^:",
                label="sklearn omp (per-patch tol)")
    left.loglog([r["mean_nnz"] for r in fixed.values()],
                [r["nmse"] for r in fixed.values()], "kx", markersize=9,
                label="sklearn omp (fixed k)")
    left.set_xlabel("mean active atoms per patch")
    left.set_ylabel("NMSE (test patches)")
    left.set_title("Same dictionary: error vs sparsity")
    left.legend(fontsize=7)
    names = list(dl)
    right.bar(names, [dl[n]["seconds_per_epoch"] for n in names],
              color=["C0", "C3", "0.5"][: len(names)])
    right.set_yscale("log")
    right.set_ylabel("seconds per epoch")
    right.set_title("Dictionary learning, one epoch")
    figure.tight_layout()
    report.save_figure(figure)


# Weights that gave about 16 active atoms (of 512) per 16x16 patch in the CPU
# benchmark (results/coding.json, throughput rows); the GPU comparison
# reports the mean number of active atoms it actually gets.
GPU_ALPHAS = {"l1": 0.925, "l0": 0.0339, "l1/2": 0.125, "cel0": 0.1525}


def _gpu_comparison(quick):
    """Batched coding of 1e5 patches on the CPU path and on CuPy.

    The dictionary of the CPU benchmark (512 atoms of 16 x 16 patches,
    learned on china.jpg) codes 1e5 flower.jpg patches (1e4 with ``quick``)
    with each penalty at its default start. The CPU path runs numba on
    every core. Both devices code 100 patches first so that compilation is
    not timed; then the best of two timed calls.
    """
    cupy = require_cupy()
    report = Report("coding", quick, "gpu")
    config = _config(False)
    n_patches = 10_000 if quick else 100_000
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    train = make_image_patches([china], patch_size=config["patch"],
                               n_patches=config["n_train"], random_state=0)
    X = make_image_patches([flower], patch_size=config["patch"],
                           n_patches=n_patches, random_state=1)
    dictionary = _learn_dictionary(train, config["n_atoms"], False)
    rates = {}
    for penalty, alpha in GPU_ALPHAS.items():
        for device, move, threads in (("cpu_all_cores", np.asarray, None),
                                      ("cpu_2_cores", np.asarray, 2),
                                      ("gpu", cupy.asarray, None)):
            coder = LqSparseCoder(move(dictionary), penalty=penalty, alpha=alpha,
                                  max_iter=config["coder_iter"], tol=1e-4)
            # Patches are coded independently: the 2-core rate is measured on
            # a fifth of the batch to save time.
            batch = X[: n_patches // 5] if threads else X
            Xd = move(batch)
            with warnings.catch_warnings(), cpu_threads(threads):
                warnings.simplefilter("ignore")
                coder.transform(Xd[:100])
                codes, seconds = time_call(
                    coder.transform, Xd, repeat=1 if threads else 2, warmup=0,
                    device="gpu" if device == "gpu" else "cpu")
            codes = to_numpy(codes)
            rates[(penalty, device)] = batch.shape[0] / seconds
            report.add(method=f"sparsesolve {penalty} ({device})", alpha=alpha,
                       n_patches=batch.shape[0], seconds=seconds,
                       patches_per_s=batch.shape[0] / seconds,
                       mean_nnz=_mean_nnz(codes),
                       nmse=_nmse(batch, codes, dictionary))
            print(f"  coding {penalty} {device}: {seconds:.3f} s, "
                  f"nnz {_mean_nnz(codes):.1f}", flush=True)
    report.summary = {
        f"{penalty}_gpu_speedup_vs_{cpu}": report.ratio(rates[(penalty, "gpu")],
                                                        rates[(penalty, cpu)])
        for penalty in GPU_ALPHAS for cpu in ("cpu_all_cores", "cpu_2_cores")}
    report.summary["patches_per_s"] = {f"{p} ({d})": r for (p, d), r in rates.items()}
    report.notes.append(
        f"{n_patches} patches of 16x16, 512 atoms, float64, tol=1e-4, default "
        f"start per penalty; CPU path: numba on all {os.cpu_count()} cores, and on 2 "
        "threads with 1 BLAS thread (the reference machine; timed once on the "
        "first fifth of the patches).")
    report.write()
    return report


def run(quick=False, device="cpu"):
    """Run the benchmark and write ``results/coding.json`` and ``coding.png``.

    ``device="gpu"`` runs only :func:`_gpu_comparison` and writes
    ``results/coding_gpu.json``.
    """
    if device == "gpu":
        return _gpu_comparison(quick)
    report = Report("coding", quick, device)
    config = _config(quick)

    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    train = make_image_patches([china], patch_size=config["patch"],
                               n_patches=config["n_train"], random_state=0)
    test = make_image_patches([flower], patch_size=config["patch"],
                              n_patches=config["n_test"], random_state=1)
    start = time.perf_counter()
    dictionary = _learn_dictionary(train, config["n_atoms"], quick)
    report.notes.append(
        f"dictionary: {config['n_atoms']} atoms of {config['patch']} patches, "
        f"learned with LqDictionaryLearning(l1, alpha=0.3) on {config['n_train']} "
        f"china.jpg patches in {time.perf_counter() - start:.1f} s; test: "
        f"{config['n_test']} flower.jpg patches (lasso_lars/lasso_cd on the "
        f"first {config['n_lars']})."
    )
    # Compile the numba kernels before anything is timed.
    LqSparseCoder(dictionary, penalty="cel0", alpha=0.1).transform(test[:4])

    _log("dictionary learned; sweeping alpha")
    sweeps = {}
    for penalty in PENALTIES:
        sweeps[f"sparsesolve {penalty}"] = _sweep(
            report, test, dictionary, penalty, ALPHA_GRIDS[penalty],
            config["coder_iter"])
    for suffix, init in OTHER_STARTS.items():
        for penalty in NONCONVEX:
            sweeps[f"sparsesolve {penalty}{suffix}"] = _sweep(
                report, test, dictionary, penalty, ALPHA_GRIDS[penalty],
                config["coder_iter"], init=init, suffix=suffix)
    _log("sparsesolve sweeps done; scikit-learn coders")
    lars_test = test[: config["n_lars"]]
    lars_alphas = np.geomspace(0.1, 2.0, 5 if quick else 6) * float(
        np.mean(np.sum(test**2, axis=1))) / 50.0
    sweeps["sklearn lasso_lars"] = _sklearn_sweep(report, lars_test, dictionary,
                                                  "lasso_lars", lars_alphas)
    sweeps["sklearn lasso_cd"] = _sklearn_sweep(report, lars_test, dictionary,
                                                "lasso_cd", lars_alphas)
    fixed, tolerance_rows = _omp_rows(report, test, dictionary, config["targets"])

    summary = {"targets": {}}
    for target in config["targets"]:
        entry = {name: _matched(rows, target) for name, rows in sweeps.items()}
        entry["sklearn omp (per-patch tol)"] = _matched(tolerance_rows, target)
        entry["sklearn omp (fixed k)"] = fixed[target]["nmse"]
        # The checks for the default start, then for the other two (the
        # l1 coder is the same in all three).
        for suffix in ("", *OTHER_STARTS):
            ours = [entry[f"sparsesolve {p}{suffix}"] for p in ("cel0", "l1/2", "l0")]
            ours.append(entry["sparsesolve l1"])
            entry[f"order_cel0<=half<=hard<=soft{suffix}"] = (
                None if None in ours else bool(all(
                    a <= b for a, b in zip(ours, ours[1:], strict=False))))
            cel0 = entry[f"sparsesolve cel0{suffix}"]
            if cel0 and entry["sparsesolve l1"]:
                entry[f"l1_over_cel0{suffix}"] = entry["sparsesolve l1"] / cel0
            if cel0 and entry["sklearn omp (per-patch tol)"]:
                entry[f"cel0_over_omp_tol{suffix}"] = (
                    cel0 / entry["sklearn omp (per-patch tol)"])
        summary["targets"][str(target)] = entry

    _log("throughput")
    # Throughput at ~16 active atoms (8 in quick mode: smaller dictionary).
    target = config["targets"][0] if quick else 16
    throughput = {}
    for penalty in PENALTIES:
        alpha = _alpha_for(sweeps[f"sparsesolve {penalty}"], target)
        if alpha is None:
            continue
        for n_jobs in (None, 1):
            nnz, nmse, rate = _time_at(test, dictionary, penalty, alpha,
                                       config["coder_iter"], n_jobs)
            label = f"sparsesolve {penalty}" + (" (1 thread)" if n_jobs == 1 else "")
            throughput[label] = report.add(
                track="throughput", method=label, alpha=alpha, mean_nnz=nnz,
                nmse=nmse, patches_per_s=rate,
            )
    # CEL0 and l1/2 from the other starts, so that their cost is visible.
    for suffix, init in OTHER_STARTS.items():
        for penalty in ("cel0", "l1/2"):
            alpha = _alpha_for(sweeps[f"sparsesolve {penalty}{suffix}"], target)
            if alpha is None:
                continue
            nnz, nmse, rate = _time_at(test, dictionary, penalty, alpha,
                                       config["coder_iter"], init=init)
            label = f"sparsesolve {penalty}{suffix}"
            throughput[label] = report.add(
                track="throughput", method=label, init=init, alpha=alpha,
                mean_nnz=nnz, nmse=nmse, patches_per_s=rate,
            )
    lars_alpha = _alpha_for(sweeps["sklearn lasso_lars"], target)
    if lars_alpha is not None:
        from sklearn.decomposition import SparseCoder

        coder = SparseCoder(dictionary, transform_algorithm="lasso_lars",
                            transform_alpha=lars_alpha)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes, seconds = time_call(coder.transform, lars_test, repeat=1)
        throughput["sklearn lasso_lars"] = report.add(
            track="throughput", method="sklearn lasso_lars", alpha=lars_alpha,
            mean_nnz=_mean_nnz(codes), nmse=_nmse(lars_test, codes, dictionary),
            patches_per_s=lars_test.shape[0] / seconds,
        )
    throughput["sklearn omp k"] = fixed.get(target, None)
    rates = {k: (v or {}).get("patches_per_s") for k, v in throughput.items()}
    summary["throughput_patches_per_s"] = rates
    summary["throughput_target_nnz"] = target
    others = [(f"{p}{suffix}", f"{p}_init_{init}".replace("l1/2", "half"))
              for suffix, init in OTHER_STARTS.items() for p in ("cel0", "l1/2")]
    for penalty, key in (*((p, p) for p in PENALTIES), *others):
        ours = rates.get(f"sparsesolve {penalty}")
        summary[f"{key}_speedup_vs_lasso_lars"] = report.ratio(
            ours, rates.get("sklearn lasso_lars"))
        summary[f"{key}_speedup_vs_omp_k{target}"] = report.ratio(
            ours, rates.get("sklearn omp k"))

    _log("dictionary learning")
    train_dl = train[: config["dl_train"]]
    dl = _dictionary_learning(report, train_dl, config["dl_atoms"],
                              config["dl_epochs"])
    summary["dictionary_learning_seconds_per_epoch"] = {
        k: v["seconds_per_epoch"] for k, v in dl.items()}
    summary["dictionary_learning_speedup_l1"] = report.ratio(
        dl["sklearn"]["seconds_per_epoch"], dl["l1"]["seconds_per_epoch"])
    summary["dictionary_learning_speedup_cel0"] = report.ratio(
        dl["sklearn"]["seconds_per_epoch"], dl["cel0"]["seconds_per_epoch"])
    summary["dictionary_learning_mean_nnz"] = {k: v["mean_nnz"] for k, v in dl.items()}
    report.summary = summary
    report.notes.append(
        "sklearn SparseCoder/MiniBatchDictionaryLearning run with n_jobs=None "
        "(one process); sparsesolve runs numba on all cores unless marked "
        "'(1 thread)'. GPU figures: --device gpu (results/coding_gpu.json).")
    _figure(report, sweeps, tolerance_rows, fixed, dl)
    report.write()
    return report


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")
    result = run(quick=True)
    print(result.summary)
