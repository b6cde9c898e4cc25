"""Transductive few-shot and Laplacian clustering: accuracy, NMI, time, scale.

B1  5-way 1-shot and 5-shot episodes on scikit-learn's digits (pixels / 16,
    centred with the mean of all digits, L2-normalised; the 10 digit classes
    leave no disjoint base split, so this "base mean" sees every class):
    TransductiveFewShotClassifier (SLK-means) vs nearest class mean
    (SimpleShot), constrained K-means (laplacian_weight=0), LaplacianShot
    (prototypes frozen at the support means, graph on queries only, 20
    sweeps, written here in NumPy/SciPy) and scikit-learn's LabelSpreading.
    Every method sees the same seeded episodes; accuracy +- 1.96 std/sqrt(n).
B2  Clustering of the 1797 digits: NMI and Hungarian accuracy vs KMeans.
B3  Scale: kNN graph construction (exact scikit-learn, approximate
    pynndescent) and a full fit at 2e4 / 1e5 blob points vs KMeans /
    MiniBatchKMeans; one bound sweep at 1e6 points (numba kernel vs the
    NumPy/SciPy formula), on a random graph of the same density as a
    symmetrised 5-NN graph (a real 1e6-point kNN graph takes minutes).
"""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np
import scipy.sparse as sp
from _harness import Report, cpu_threads, time_call

FAMILY = "clustering"


# --------------------------------------------------------------------------
# B1: few-shot episodes
# --------------------------------------------------------------------------
def _cl2n(Z, mean):
    Z = Z - mean
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def _simpleshot(X_s, y_s, X_q, mean):
    s, q = _cl2n(X_s, mean), _cl2n(X_q, mean)
    classes = np.unique(y_s)
    prototypes = np.stack([s[y_s == c].mean(0) for c in classes])
    return classes[((q[:, None] - prototypes[None]) ** 2).sum(-1).argmin(1)]


def _laplacianshot(X_s, y_s, X_q, mean, lam=0.7, n_neighbors=2, n_steps=20):
    """LaplacianShot as published: frozen support means, graph on queries."""
    from sklearn.neighbors import kneighbors_graph

    s, q = _cl2n(X_s, mean), _cl2n(X_q, mean)
    q = q + s.mean(0) - q.mean(0)
    classes = np.unique(y_s)
    prototypes = np.stack([s[y_s == c].mean(0) for c in classes])
    unary = ((q[:, None] - prototypes[None]) ** 2).sum(-1)
    W = kneighbors_graph(q, n_neighbors, include_self=False)
    W = W.maximum(W.T)
    Y = np.exp(-unary - (-unary).max(1, keepdims=True))
    Y /= Y.sum(1, keepdims=True)
    for _ in range(n_steps):
        logits = -unary + lam * (W @ Y)
        Y = np.exp(logits - logits.max(1, keepdims=True))
        Y /= Y.sum(1, keepdims=True)
    return classes[Y.argmax(1)]


def _labelspreading(X_s, y_s, X_q, mean):
    from sklearn.semi_supervised import LabelSpreading

    Z = _cl2n(np.vstack([X_s, X_q]), mean)
    labels = np.concatenate([y_s, np.full(len(X_q), -1)])
    model = LabelSpreading(kernel="knn", n_neighbors=7, alpha=0.2, max_iter=100)
    return model.fit(Z, labels).transduction_[len(X_s) :]


def _ours(lam):
    from sparsesolve.clustering import TransductiveFewShotClassifier

    def predict(X_s, y_s, X_q, mean):
        model = TransductiveFewShotClassifier(laplacian_weight=lam, feature_mean=mean)
        return model.fit(X_s, y_s).predict(X_q)

    return predict


def _score(method, episodes, mean):
    """Per-episode accuracies and wall seconds per episode."""
    from threadpoolctl import threadpool_limits

    accuracies = np.empty(len(episodes))
    # One BLAS thread for everybody: on 100-point episodes thread start-up
    # costs more than the arithmetic and would blur the comparison.
    with threadpool_limits(1):
        method(*episodes[0][:3], mean)  # compile / import outside the clock
        start = time.perf_counter()
        for i, (X_s, y_s, X_q, y_q) in enumerate(episodes):
            accuracies[i] = np.mean(method(X_s, y_s, X_q, mean) == y_q)
        seconds = (time.perf_counter() - start) / len(episodes)
    return accuracies, seconds


def _fewshot(report, quick):
    from sklearn.datasets import load_digits

    from sparsesolve.datasets import make_fewshot_episodes

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    mean = X.mean(axis=0)
    n_episodes = 60 if quick else 1000
    n_validation = 0 if quick else 200
    results = {}
    for n_shot in (1, 5):
        lam = 0.7
        if n_validation:
            # lambda chosen on separate validation episodes (another seed,
            # same classes: digits has no class split), as the paper tunes it.
            validation = make_fewshot_episodes(
                X, y, 5, n_shot, 15, n_validation, random_state=1000 + n_shot
            )
            grid = (0.3, 0.5, 0.7, 1.0, 1.5)
            scores = [_score(_ours(v), validation, mean)[0].mean() for v in grid]
            lam = grid[int(np.argmax(scores))]
            report.add(
                case=f"digits 5-way {n_shot}-shot validation",
                method="lambda grid",
                grid=list(grid),
                validation_accuracy=scores,
                chosen=lam,
            )
        episodes = make_fewshot_episodes(
            X, y, 5, n_shot, 15, n_episodes, random_state=n_shot
        )
        methods = {
            f"TransductiveFewShotClassifier (lambda={lam})": _ours(lam),
            "constrained K-means (lambda=0)": _ours(0.0),
            "SimpleShot (nearest class mean)": _simpleshot,
            "LaplacianShot (lambda=0.7, NumPy)": _laplacianshot,
            "sklearn LabelSpreading (knn 7, alpha 0.2)": _labelspreading,
        }
        for name, method in methods.items():
            accuracies, seconds = _score(method, episodes, mean)
            ci = 1.96 * accuracies.std() / np.sqrt(len(accuracies))
            results[(n_shot, name.split(" (")[0])] = (100 * accuracies.mean(), 100 * ci)
            report.add(
                case=f"digits 5-way {n_shot}-shot",
                method=name,
                episodes=len(episodes),
                accuracy=100 * accuracies.mean(),
                ci95=100 * ci,
                ms_per_episode=1000 * seconds,
            )
    return results


# --------------------------------------------------------------------------
# B2: clustering NMI on digits
# --------------------------------------------------------------------------
def _hungarian_accuracy(truth, labels):
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import confusion_matrix

    table = confusion_matrix(truth, labels)
    rows, cols = linear_sum_assignment(-table)
    return table[rows, cols].sum() / truth.size


def _digits_clustering(report, quick):
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from sklearn.metrics import normalized_mutual_info_score

    from sparsesolve.clustering import LaplacianKMeans

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    n_init = 2 if quick else 10
    scores = {}
    for name, model in (
        ("KMeans", KMeans(10, n_init=n_init, random_state=0)),
        ("LaplacianKMeans", LaplacianKMeans(10, n_init=n_init, random_state=0)),
    ):
        fitted, seconds = time_call(model.fit, X, repeat=1, warmup=0)
        nmi = normalized_mutual_info_score(y, fitted.labels_)
        scores[name] = nmi
        report.add(
            case="digits clustering (1797 x 64, K=10)",
            method=name,
            n_init=n_init,
            nmi=nmi,
            acc=_hungarian_accuracy(y, fitted.labels_),
            seconds=seconds,
        )
    return scores


# --------------------------------------------------------------------------
# B3: scale
# --------------------------------------------------------------------------
def _blobs_scale(report, quick):
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.datasets import make_blobs
    from sklearn.metrics import normalized_mutual_info_score

    from sparsesolve.clustering import LaplacianKMeans, knn_affinity

    have_pynndescent = importlib.util.find_spec("pynndescent") is not None
    if not have_pynndescent:
        report.notes.append("pynndescent not installed: approximate graphs skipped")
    elif quick:
        # pynndescent compiles its numba code on first use (about a minute).
        have_pynndescent = False
        report.notes.append("quick mode: approximate (pynndescent) graph skipped")
    sizes = [(5_000, 10)] if quick else [(20_000, 20), (100_000, 50)]
    graph_seconds = {}
    for n_samples, n_clusters in sizes:
        X, truth = make_blobs(
            n_samples,
            n_features=32,
            centers=n_clusters,
            cluster_std=4.0,
            random_state=0,
        )
        X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
        case = f"blobs {n_samples} x 32, K={n_clusters}"
        exact = None
        if n_samples <= 20_000:
            exact, seconds = time_call(
                knn_affinity, X, 5, method="exact", repeat=1, warmup=0
            )
            graph_seconds[(n_samples, "exact")] = seconds
            report.add(case=case, method="kNN graph exact (sklearn)", seconds=seconds)
        if have_pynndescent:
            knn_affinity(X[:2000], 5, method="approximate", random_state=0)  # compile
            approx, seconds = time_call(
                knn_affinity,
                X,
                5,
                method="approximate",
                random_state=0,
                repeat=1,
                warmup=0,
            )
            graph_seconds[(n_samples, "approximate")] = seconds
            row = report.add(
                case=case, method="kNN graph approximate (pynndescent)", seconds=seconds
            )
            if exact is not None:
                row["edge_recall"] = float(exact.multiply(approx).sum() / exact.sum())
        method = "approximate" if have_pynndescent and n_samples > 20_000 else "exact"
        models = {
            "LaplacianKMeans": LaplacianKMeans(
                n_clusters,
                laplacian_weight=1.0,
                neighbors_method=method,
                max_iter=30,
                random_state=0,
            ),
            "KMeans": KMeans(n_clusters, n_init=1, random_state=0),
            "MiniBatchKMeans": MiniBatchKMeans(n_clusters, n_init=1, random_state=0),
        }
        for name, model in models.items():
            fitted, seconds = time_call(model.fit, X, repeat=1, warmup=0)
            row = report.add(
                case=case,
                method=name,
                seconds=seconds,
                nmi=normalized_mutual_info_score(truth, fitted.labels_),
            )
            if name == "LaplacianKMeans":
                row.update(
                    n_iter=fitted.n_iter_,
                    sweeps=int(fitted.n_sweeps_.sum()),
                    graph_method=method,
                )
    return graph_seconds


def _reference_sweep(unary, W, Y, lam):
    """The NumPy/SciPy formula the kernel replaces: softmax(-A + lam W Y)."""
    logits = lam * (W @ Y) - unary
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def _reference_sweep_with_energy(unary, W, Y, lam):
    """The same, plus the relaxed energy of Y that the fused kernel also returns."""
    field = W @ Y
    logits = lam * field - unary
    energy = float(
        np.sum(Y * (np.log(np.maximum(Y, 1e-30)) + unary - 0.5 * lam * field))
    )
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits, energy


def _million_sweep(report, quick, device, references=True):
    from sparsesolve._backend import require_cupy
    from sparsesolve.clustering._algorithm import (
        bound_sweep,
        negative_entropy,
        unary_costs,
    )

    n_samples = 100_000 if quick else 1_000_000
    n_features, degree = 64, 5
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    rows = np.repeat(np.arange(n_samples), degree)
    W = sp.csr_array(
        (np.ones(rows.size, np.float32), (rows, rng.integers(0, n_samples, rows.size))),
        shape=(n_samples, n_samples),
    )
    W = W.maximum(W.T)
    W.setdiag(0)
    W.eliminate_zeros()
    W.sort_indices()
    graph = (W.indptr.astype(np.int64), W.indices.astype(np.int64), W.data)
    clamp = np.full(n_samples, -1, np.int64)
    results = {}
    for n_clusters in (10, 100):
        centers = X[rng.choice(n_samples, n_clusters, replace=False)]
        unary = unary_costs(X, centers, "mean", 1.0, np).astype(np.float32)
        unary /= unary.mean()
        Y = rng.dirichlet(np.ones(n_clusters), n_samples).astype(np.float32)
        case = (
            f"one bound sweep, {n_samples} x {n_features}, K={n_clusters}, nnz={W.nnz}"
        )
        entropy = negative_entropy(Y, np)
        _, kernel_seconds = time_call(
            bound_sweep, unary, *graph, Y, entropy, 1.0, 0.0, clamp, repeat=3
        )
        report.add(
            case=case,
            method=f"numba kernel, with energy (CPU, {os.cpu_count()} cores)",
            seconds=kernel_seconds,
        )
        results[n_clusters] = {"cpu": kernel_seconds}
        if device == "gpu":
            # The reference machine of the CPU figures: 2 cores.
            with cpu_threads(2):
                _, two_core_seconds = time_call(
                    bound_sweep, unary, *graph, Y, entropy, 1.0, 0.0, clamp, repeat=3
                )
            report.add(case=case, method="numba kernel, with energy (CPU, 2 threads)",
                       seconds=two_core_seconds)
            results[n_clusters]["cpu_2_cores"] = two_core_seconds
        if references:
            _, numpy_seconds = time_call(
                _reference_sweep, unary, W, Y, 1.0, repeat=2, warmup=0
            )
            _, numpy_energy_seconds = time_call(
                _reference_sweep_with_energy, unary, W, Y, 1.0, repeat=2, warmup=0
            )
            report.add(case=case, method="NumPy/SciPy formula", seconds=numpy_seconds)
            report.add(
                case=case,
                method="NumPy/SciPy formula + energy",
                seconds=numpy_energy_seconds,
            )
            results[n_clusters].update(numpy=numpy_seconds,
                                       numpy_energy=numpy_energy_seconds)
        if device == "gpu":
            cupy = require_cupy()
            on_gpu = [cupy.asarray(a) for a in (unary, *graph, Y, entropy)]
            _, gpu_seconds = time_call(
                bound_sweep,
                *on_gpu,
                1.0,
                0.0,
                cupy.asarray(clamp),
                repeat=5,
                device="gpu",
            )
            report.add(case=case, method="numba-cuda kernel (GPU)", seconds=gpu_seconds)
            results[n_clusters]["gpu"] = gpu_seconds
        del unary, Y
    return n_samples, results


# --------------------------------------------------------------------------
def _figure(report, fewshot, nmi):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = sorted({name for _, name in fewshot}, key=lambda n: -fewshot[(1, n)][0])
    for offset, n_shot in enumerate((1, 5)):
        means = [fewshot[(n_shot, n)][0] for n in names]
        cis = [fewshot[(n_shot, n)][1] for n in names]
        axes[0].barh(
            np.arange(len(names)) + 0.4 * offset,
            means,
            height=0.4,
            xerr=cis,
            label=f"{n_shot}-shot",
        )
    axes[0].set_yticks(np.arange(len(names)) + 0.2, names, fontsize=8)
    axes[0].set_xlim(60, 100)
    axes[0].set_xlabel("accuracy (%) with 95% CI")
    axes[0].set_title("digits, 5-way episodes")
    axes[0].legend()
    axes[1].bar(list(nmi), list(nmi.values()), color=["tab:gray", "tab:blue"])
    axes[1].set_ylim(0.5, 1.0)
    axes[1].set_ylabel("NMI")
    axes[1].set_title("digits clustering (K=10)")
    fig.tight_layout()
    report.save_figure(fig)


def _gpu_comparison(quick):
    """The 1e6-point bound sweep: numba CPU kernel against the CUDA kernel."""
    report = Report(FAMILY, quick, "gpu")
    n_sweep, sweep = _million_sweep(report, quick, "gpu", references=False)
    for n_clusters, times in sweep.items():
        key = f"sweep_{n_sweep}_K{n_clusters}"
        report.summary[f"{key}_cpu_seconds"] = round(times["cpu"], 4)
        report.summary[f"{key}_gpu_seconds"] = round(times["gpu"], 5)
        report.summary[f"{key}_cpu_2_cores_seconds"] = round(times["cpu_2_cores"], 4)
        report.summary[f"{key}_gpu_speedup_vs_cpu_all_cores"] = round(
            times["cpu"] / times["gpu"], 1)
        report.summary[f"{key}_gpu_speedup_vs_cpu_2_cores"] = round(
            times["cpu_2_cores"] / times["gpu"], 1)
    report.notes.append(
        f"CPU: the numba kernel on all {os.cpu_count()} cores and on 2 threads (the "
        "reference machine); GPU: the numba-cuda "
        "kernel on CuPy arrays; best of 3 (CPU) and 5 (GPU) after a warm-up.")
    report.write()
    return report


def run(quick=False, device="cpu"):
    """Run the benchmark and write ``results/clustering.json`` and ``.png``.

    ``device="gpu"`` runs only :func:`_gpu_comparison` (the million-point
    sweep) and writes ``results/clustering_gpu.json``.
    """
    if device == "gpu":
        return _gpu_comparison(quick)
    report = Report(FAMILY, quick, device)
    fewshot = _fewshot(report, quick)
    nmi = _digits_clustering(report, quick)
    graph_seconds = _blobs_scale(report, quick)
    n_sweep, sweep = _million_sweep(report, quick, "cpu")
    summary = {}
    for n_shot in (1, 5):
        ours = next(
            v
            for (s, n), v in fewshot.items()
            if s == n_shot and n == "TransductiveFewShotClassifier"
        )
        summary[f"digits_{n_shot}shot_accuracy"] = f"{ours[0]:.2f} +- {ours[1]:.2f}"
        for anchor in (
            "SimpleShot",
            "sklearn LabelSpreading",
            "LaplacianShot",
            "constrained K-means",
        ):
            value = fewshot[(n_shot, anchor)]
            summary[f"digits_{n_shot}shot_{anchor.replace(' ', '_')}"] = (
                f"{value[0]:.2f} +- {value[1]:.2f}"
            )
    summary["digits_nmi"] = round(nmi["LaplacianKMeans"], 4)
    summary["digits_nmi_KMeans"] = round(nmi["KMeans"], 4)
    summary["digits_nmi_ratio_vs_KMeans"] = round(
        nmi["LaplacianKMeans"] / nmi["KMeans"], 3
    )
    for n_clusters, times in sweep.items():
        key = f"sweep_{n_sweep}_K{n_clusters}"
        summary[f"{key}_seconds"] = round(times["cpu"], 3)
        summary[f"{key}_numpy_seconds"] = round(times["numpy"], 3)
        summary[f"{key}_speedup_vs_numpy"] = round(times["numpy"] / times["cpu"], 2)
        summary[f"{key}_numpy_with_energy_seconds"] = round(times["numpy_energy"], 3)
        summary[f"{key}_speedup_vs_numpy_with_energy"] = round(
            times["numpy_energy"] / times["cpu"], 2
        )
    for (n_samples, method), seconds in graph_seconds.items():
        summary[f"graph_{n_samples}_{method}_seconds"] = round(seconds, 2)
    report.summary = summary
    report.notes.append(
        "Digits has 10 classes, so the centring mean and the lambda validation "
        "episodes come from the same classes as the test episodes (no base/novel "
        "split is possible); lambda is chosen on separate validation episodes."
    )
    report.notes.append(
        "The 1e6-point sweep uses a random symmetric graph with the density of a "
        "symmetrised 5-NN graph (worst-case memory locality); building a real "
        "1e6 x 64 kNN graph takes minutes on 2 cores and is not run here."
    )
    try:
        load = __import__("os").getloadavg()[0]
        report.notes.append(f"1-minute load average at the end of the run: {load:.1f}")
    except OSError:
        pass
    _figure(report, fewshot, nmi)
    report.write()
    return report


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
