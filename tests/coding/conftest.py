import numpy as np
import pytest

from sparsesolve.coding import threshold


def _make_sparse_problem(seed, n_atoms=60, n_features=20, n_samples=40, n_active=6):
    # Overcomplete and not very sparse, so that the start of the non-convex
    # coders matters: unit-norm random atoms, n_active nonzeros per row, noise.
    rng = np.random.RandomState(seed)
    dictionary = rng.standard_normal((n_atoms, n_features))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((n_samples, n_atoms))
    for row in codes:
        row[rng.choice(n_atoms, n_active, replace=False)] = rng.uniform(-2, 2, n_active)
    X = codes @ dictionary + 0.1 * rng.standard_normal((n_samples, n_features))
    return X, dictionary


@pytest.fixture
def sparse_problem():
    """Factory ``sparse_problem(seed, ...) -> (X, dictionary)``: noisy sparse rows."""
    return _make_sparse_problem


def _reference_codes(X, dictionary, penalty, alpha, *, max_iter, tol,
                     algorithm="fista", init=None):
    # A plain NumPy proximal-gradient coder, the reference of the row kernel:
    # vectorised over samples and written from the formulas (Beck and
    # Teboulle's FISTA with O'Donoghue and Candes' adaptive restart, the
    # public proximal operators), with none of the kernel's shortcuts (no
    # sparse gradient, no dead-zone test, no support refit). Each sample
    # stops on the relative-change rule ||c_new - c|| <= tol ||c_new||; the
    # kernel with refit=False computes the same iterates.
    gram = dictionary @ dictionary.T
    correlations = X @ dictionary.T
    step = 1.0 / np.linalg.norm(dictionary, 2) ** 2
    norms = np.linalg.norm(dictionary, axis=1) if penalty == "cel0" else None
    codes = np.zeros_like(correlations) if init is None else np.array(init)
    point = codes.copy()
    momentum = np.ones(X.shape[0])
    active = np.ones(X.shape[0], dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        rows = np.flatnonzero(active)
        gradient = point[rows] @ gram - correlations[rows]
        new = threshold(point[rows] - step * gradient, penalty, alpha, step,
                        atom_norms=norms)
        difference = new - codes[rows]
        if algorithm == "fista":
            restart = np.sum((point[rows] - new) * difference, axis=1) > 0
            following = (1 + np.sqrt(1 + 4 * momentum[rows] ** 2)) / 2
            beta = np.where(restart, 0.0, (momentum[rows] - 1) / following)
            momentum[rows] = np.where(restart, 1.0, following)
            point[rows] = new + beta[:, None] * difference
        else:
            point[rows] = new
        codes[rows] = new
        change = np.linalg.norm(difference, axis=1)
        done = (change == 0) | (change <= tol * np.linalg.norm(new, axis=1))
        active[rows[done]] = False
    return codes


@pytest.fixture
def reference_codes():
    """The plain vectorised proximal-gradient coder (no kernel shortcuts)."""
    return _reference_codes
