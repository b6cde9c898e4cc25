import numpy as np
import pytest


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
