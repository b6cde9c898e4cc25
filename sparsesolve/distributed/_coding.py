"""Data-parallel :class:`LqDictionaryLearning` on a Dask array.

On a Dask array every epoch is one step on the whole data set (the batch is
the array): each worker codes its row blocks over the current atoms with the
in-memory coder and returns the sufficient statistics of the atom update,
``C_b^T C_b`` (atoms x atoms), ``C_b^T (X_b - C_b D)`` (atoms x features),
its loss and atom usage; the client adds them and takes the atom step.
Codes are per-sample problems, so they are the same as in memory, and the
step is the one of :func:`~sparsesolve.coding._dictionary.dictionary_step`
on the full batch. The in-memory fit with ``batch_size >= n_samples`` is
therefore the same algorithm (its single batch is the whole data, shuffled
or not, which only reorders sums), and the two agree up to the order of
floating-point sums. Mini-batches smaller than the data are a sequential
algorithm (each batch waits for the previous step) and do not distribute;
``batch_size`` is not used on Dask.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from .._backend import numba_threads
from .._progress import Progress
from ..coding._algorithm import encode, penalty_value
from ..coding._dictionary import codes_lipschitz, normalize_rows
from ._dispatch import get_client
from ._reduce import gather, submit

__all__ = ["fit_dictionary", "row_blocks"]


def row_blocks(client, X, name):
    """Futures of the row blocks of a 2D Dask array (all columns in each)."""
    import dask.array as da

    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError(f"{name}.fit on Dask takes a 2D dask.array.Array; got "
                        f"{type(X).__name__}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    X = X.rechunk({1: -1})
    blocks = client.compute(list(X.to_delayed()[:, 0]))
    return X, blocks


def _block_statistics(block, dictionary, settings):
    """Codes of one block and its share of the atom update."""
    penalty, alpha, max_iter, tol, algorithm, n_jobs = settings
    if not np.all(np.isfinite(block)):
        raise ValueError("Input X contains NaN or infinity.")
    with numba_threads(n_jobs), threadpool_limits(limits=1, user_api="blas"):
        codes, _, _ = encode(block, dictionary, penalty, alpha, xp=np,
                             max_iter=max_iter, tol=tol, algorithm=algorithm)
        residual = block - codes @ dictionary
        loss = 0.5 * np.sum(residual * residual, axis=1) + penalty_value(
            codes, penalty, alpha, np)
        return (codes.T @ codes, codes.T @ residual, float(np.sum(loss)),
                np.sum((codes != 0).astype(block.dtype), axis=0))


def _gram_root(gram):
    """``R`` with ``R^T R = gram``, so that ``codes_lipschitz(R)`` is ``||C||_2^2``.

    The power iteration of ``codes_lipschitz`` only ever multiplies by
    ``C^T C``, which the blocks return summed; its symmetric square root
    stands in for the codes.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))).T


def _initial_atoms(estimator, X, random_state):
    """The start of ``LqDictionaryLearning._initialize``, the rows read from Dask.

    Same draws in the same order: training samples as atoms, Gaussian atoms
    where there are fewer samples than atoms or a chosen sample is flat.
    """
    n_samples, n_features = X.shape
    n_components = estimator.n_components or n_features
    chosen = random_state.choice(n_samples, size=min(n_samples, n_components),
                                 replace=False)
    atoms = random_state.standard_normal((n_components, n_features))
    atoms[: chosen.size] = X[chosen].compute()
    norms = np.linalg.norm(atoms, axis=1)
    flat = norms < 1e-10 * max(float(norms.max()), 1.0)
    atoms[flat] = random_state.standard_normal((int(flat.sum()), n_features))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    return atoms.astype(X.dtype), n_components


def fit_dictionary(estimator, X, y=None):
    """Fit ``estimator`` (an LqDictionaryLearning) on a Dask array; return it."""
    name = type(estimator).__name__
    client = get_client(name)
    X, blocks = row_blocks(client, X, name)
    n_samples, n_features = (int(s) for s in X.shape)
    if n_samples == 0:
        raise ValueError(f"{name}.fit needs at least one sample; got 0.")
    random_state = check_random_state(estimator.random_state)
    dictionary, n_components = _initial_atoms(estimator, X, random_state)
    estimator.n_features_in_ = n_features
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.n_components_ = n_components
    estimator.n_steps_ = 0
    estimator.loss_curve_ = []
    settings = (estimator.penalty, float(estimator.alpha),
                estimator.transform_max_iter, estimator.transform_tol,
                estimator.transform_algorithm, estimator.n_jobs)
    # Full-batch epochs: max_iter counts epochs, as in the in-memory fit.
    n_epochs = estimator.max_iter
    usage = np.zeros(n_components, dtype=X.dtype)
    with Progress(n_epochs, estimator.verbose, desc=name) as progress:
        for _ in range(n_epochs):
            if estimator.shuffle:
                # The in-memory fit draws a permutation every epoch; the
                # stream of draws stays the same.
                random_state.permutation(n_samples)
            shared = submit(client, np.asarray, dictionary)
            parts = gather(client, [submit(client, _block_statistics, b, shared,
                                           settings) for b in blocks])
            gram = sum(p[0] for p in parts[1:]) + parts[0][0]
            cross = sum(p[1] for p in parts[1:]) + parts[0][1]
            usage = sum(p[3] for p in parts[1:]) + parts[0][3]
            estimator.loss_curve_.append(float(sum(p[2] for p in parts) / n_samples))
            lipschitz = codes_lipschitz(_gram_root(gram), np)
            if lipschitz != 0.0:
                dictionary = dictionary + (estimator.learning_rate / lipschitz) * cross
            dictionary = normalize_rows(dictionary, np)
            estimator.n_steps_ += 1
            progress.update(loss=estimator.loss_curve_[-1],
                            dead_atoms=float(np.sum(usage == 0)))
    estimator.components_ = dictionary.astype(X.dtype)
    estimator.atom_usage_ = usage / n_samples
    estimator.n_iter_ = n_epochs
    return estimator
