"""Demo row: transductive 5-way 1-shot episodes on digits vs LabelSpreading."""

from __future__ import annotations

import numpy as np

from .._demo import DemoRow, compare

_N_EPISODES = 50


def _episodes():
    from sklearn.datasets import load_digits

    from ..datasets import make_fewshot_episodes

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float64)
    return X.mean(axis=0), make_fewshot_episodes(
        X, y, 5, 1, 15, _N_EPISODES, random_state=0
    )


def _ours(mean, episodes, device):
    from . import TransductiveFewShotClassifier

    def move(a):
        return a

    if device == "gpu":
        from .._backend import require_cupy

        move = require_cupy().asarray
    from .._backend import to_numpy

    correct = []
    for X_s, y_s, X_q, y_q in episodes:
        model = TransductiveFewShotClassifier(feature_mean=mean).fit(move(X_s), y_s)
        correct.append(np.mean(to_numpy(model.predict(move(X_q))) == y_q))
    return float(np.mean(correct))


def _anchor(mean, episodes):
    from sklearn.semi_supervised import LabelSpreading

    correct = []
    for X_s, y_s, X_q, y_q in episodes:
        Z = np.vstack([X_s, X_q]) - mean
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        labels = np.concatenate([y_s, np.full(len(X_q), -1)])
        model = LabelSpreading(kernel="knn", n_neighbors=7, alpha=0.2, max_iter=100)
        predicted = model.fit(Z, labels).transduction_[len(X_s) :]
        correct.append(np.mean(predicted == y_q))
    return float(np.mean(correct))


def demo(device="cpu"):
    """Classify 50 digits 5-way 1-shot episodes transductively.

    Parameters
    ----------
    device : {"cpu", "gpu"}, default="cpu"
        Where sparsesolve runs (the anchor always runs on the CPU).

    Returns
    -------
    DemoRow
        Mean episode accuracy of sparsesolve and of scikit-learn's
        LabelSpreading on the same episodes, with wall times.
    """
    mean, episodes = _episodes()
    accuracy, ours, anchor_accuracy, theirs = compare(
        lambda: _ours(mean, episodes, device), lambda: _anchor(mean, episodes))
    return DemoRow.from_timings(
        f"digits 5-way 1-shot, {_N_EPISODES} episodes",
        f"accuracy {100 * accuracy:.1f}%",
        f"LabelSpreading {100 * anchor_accuracy:.1f}%",
        ours,
        theirs,
    )
