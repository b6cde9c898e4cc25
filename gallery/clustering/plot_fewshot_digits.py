"""
Few-shot episodes on handwritten digits
=======================================

We sample 5-way episodes from scikit-learn's digits: one or five labelled
"support" images per class and fifteen unlabelled "query" images per class.
Nearest class mean ("SimpleShot") labels each query on its own;
:class:`~sparsesolve.clustering.TransductiveFewShotClassifier` labels the
whole query batch at once, moving the class prototypes towards the queries
(K-means) and smoothing the labels along a k-nearest-neighbour graph (the
Laplacian term). Both see the same episodes, centred by the mean digit and
L2-normalised.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from sparsesolve.clustering import TransductiveFewShotClassifier
from sparsesolve.datasets import make_fewshot_episodes

X, y = load_digits(return_X_y=True)
X = X / 16.0
mean = X.mean(axis=0)


def normalise(Z):
    Z = Z - mean
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def simpleshot(X_s, y_s, X_q):
    classes = np.unique(y_s)
    prototypes = np.stack([normalise(X_s)[y_s == c].mean(0) for c in classes])
    distances = ((normalise(X_q)[:, None] - prototypes[None]) ** 2).sum(-1)
    return classes[distances.argmin(1)]


# %%
# Accuracy over 40 episodes per setting, with 95 % confidence intervals.
methods = {
    "SimpleShot": simpleshot,
    "K-means (lambda=0)": lambda X_s, y_s, X_q: (
        TransductiveFewShotClassifier(laplacian_weight=0.0, feature_mean=mean)
        .fit(X_s, y_s)
        .predict(X_q)
    ),
    "Laplacian K-means": lambda X_s, y_s, X_q: (
        TransductiveFewShotClassifier(feature_mean=mean).fit(X_s, y_s).predict(X_q)
    ),
}
results = {}
for n_shot in (1, 5):
    episodes = make_fewshot_episodes(X, y, 5, n_shot, 15, 40, random_state=n_shot)
    for name, method in methods.items():
        scores = np.array(
            [np.mean(method(X_s, y_s, X_q) == y_q) for X_s, y_s, X_q, y_q in episodes]
        )
        results[name, n_shot] = (
            100 * scores.mean(),
            196 * scores.std() / np.sqrt(len(scores)),
        )
        print(
            f"{n_shot}-shot {name:>20}: {results[name, n_shot][0]:.1f} "
            f"+- {results[name, n_shot][1]:.1f} %"
        )

fig, ax = plt.subplots(figsize=(6, 3.5))
for offset, n_shot in enumerate((1, 5)):
    values = [results[name, n_shot] for name in methods]
    ax.bar(
        np.arange(3) + 0.38 * offset,
        [v[0] for v in values],
        width=0.38,
        yerr=[v[1] for v in values],
        label=f"{n_shot}-shot",
        capsize=3,
    )
ax.set_xticks(np.arange(3) + 0.19, list(methods))
ax.set_ylim(60, 100)
ax.set_ylabel("query accuracy (%)")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# The soft assignments are available too: ``predict_proba`` returns one row
# per query, summing to one, in the order of ``classes_``.
X_s, y_s, X_q, y_q = episodes[0]
model = TransductiveFewShotClassifier(feature_mean=mean).fit(X_s, y_s)
print(model.classes_, np.round(model.predict_proba(X_q[:3]), 3))
