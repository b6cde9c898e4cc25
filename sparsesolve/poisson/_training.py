"""Training of the search-direction network (needs the ``train`` extra: PyTorch).

Unsupervised, as in Kaneda et al. (2023): for a unit-norm right-hand side
``b`` and the network output ``y = f(b)``, the loss is the residual left by
the best step along ``y`` in the A-norm,

    alpha = (y . b) / (y . A y),    loss(b) = || b - alpha A y ||^2,

which does not change when ``y`` is rescaled. Training vectors are random
combinations of eigenvectors of the one training matrix, the low end of the
spectrum weighted more (the smooth error modes Krylov methods find hardest).
The paper builds them from Lanczos Ritz vectors; on the small training grids
used here a dense symmetric eigendecomposition gives the exact eigenvectors in
seconds, so that is what this module uses.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._network import N_INNER_CONVS, DirectionNetwork

__all__ = ["make_training_vectors", "train_direction_model"]

# Dense eigendecomposition is O(n^3): 16^3 = 4096 unknowns take seconds,
# 24^3 = 13824 about a minute and 1.5 GB; beyond that it is the wrong tool.
_MAX_DENSE_UNKNOWNS = 14_000


def _require_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError(
            "train_direction_model needs PyTorch: pip install 'sparsesolve[train]'"
        ) from exc
    return torch


def make_training_vectors(A, n_vectors, low_fraction=0.55, low_weight=9.0,
                          random_state=None):
    """Unit-norm random combinations of the eigenvectors of ``A``.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive semi-definite training matrix (at most 14,000 rows).
    n_vectors : int
        How many vectors to draw.
    low_fraction : float, default=0.55
        Fraction of the non-null spectrum, from the bottom, whose coefficients
        are multiplied by ``low_weight`` (the paper: half the Ritz vectors
        plus 500 of 10,000).
    low_weight : float, default=9.0
        Weight of the low part of the spectrum.
    random_state : int, RandomState instance or None, default=None
        Seed of the random coefficients.

    Returns
    -------
    vectors : ndarray of shape (n_vectors, n), float32
        Rows have unit norm and are orthogonal to the null space of ``A``.
    """
    rng = check_random_state(random_state)
    A = sp.csr_matrix(A)
    if A.shape[0] > _MAX_DENSE_UNKNOWNS:
        raise ValueError(
            f"make_training_vectors uses a dense eigendecomposition; A has "
            f"{A.shape[0]} rows, more than {_MAX_DENSE_UNKNOWNS}. Train on a "
            "smaller grid: the network is fully convolutional."
        )
    eigenvalues, eigenvectors = scipy.linalg.eigh(A.toarray())
    # Null vectors (solid cells, closed regions) carry no information and a
    # right-hand side never contains them after projection.
    keep = eigenvalues > 1e-8 * eigenvalues.max()
    eigenvectors = eigenvectors[:, keep]
    n_modes = eigenvectors.shape[1]
    coefficients = rng.standard_normal((n_modes, n_vectors))
    coefficients[: int(round(low_fraction * n_modes))] *= low_weight
    vectors = (eigenvectors @ coefficients).T
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _torch_network(torch, channels):
    nn = torch.nn

    class _DirectionCNN(nn.Module):
        """PyTorch twin of :class:`DirectionNetwork` (same state_dict names)."""

        def __init__(self):
            super().__init__()
            self.conv_in = nn.Conv3d(1, channels, 3, padding=1)
            self.convs = nn.ModuleList(
                nn.Conv3d(channels, channels, 3, padding=1)
                for _ in range(N_INNER_CONVS)
            )
            self.conv_out = nn.Conv3d(channels, 1, 1)

        def forward(self, x):
            relu = torch.relu

            def conv(i, inp):
                return relu(self.convs[i](inp))

            x = self.conv_in(x)
            la = conv(0, x)
            lb = conv(1, la)
            la = conv(2, lb) + la
            lb = conv(3, la)
            a = torch.nn.functional.avg_pool3d(lb, 2)
            for layer in (4, 6, 8):
                a = conv(layer + 1, conv(layer, a)) + a
            u = torch.nn.functional.interpolate(a, scale_factor=2, mode="nearest") + lb
            for layer in (10, 12):
                u = conv(layer + 1, conv(layer, u)) + u
            return self.conv_out(u)

    return _DirectionCNN()


def _sparse_to_torch(torch, A):
    A = sp.coo_matrix(A)
    indices = torch.tensor(np.vstack([A.row, A.col]), dtype=torch.long)
    values = torch.tensor(A.data, dtype=torch.float32)
    return torch.sparse_coo_tensor(
        indices, values, A.shape, check_invariants=False
    ).coalesce()


def _direction_loss(torch, A_torch, b, y):
    """Mean over the batch of ||b - alpha A y||^2, alpha the A-norm step."""
    Ay = torch.sparse.mm(A_torch, y.T).T
    alpha = (y * b).sum(dim=1, keepdim=True) / (y * Ay).sum(dim=1, keepdim=True)
    return ((b - alpha * Ay) ** 2).sum(dim=1).mean()


def train_direction_model(A, grid_shape, *, n_vectors=1000, epochs=15,
                          batch_size=10, learning_rate=1e-3, channels=16,
                          validation_fraction=0.1, time_budget=None,
                          random_state=None, verbose=0):
    """Train the direction CNN on one Poisson matrix with PyTorch.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Training matrix on the full grid (``poisson_matrix`` layout),
        ``n = prod(grid_shape)``, at most 14,000 rows.
    grid_shape : tuple of 3 even ints
        The grid of ``A``.
    n_vectors : int, default=1000
        Training plus validation vectors (see :func:`make_training_vectors`).
    epochs : int, default=15
        Passes over the training vectors.
    batch_size : int, default=10
        Vectors per Adam step.
    learning_rate : float, default=1e-3
        Adam step size.
    channels : int, default=16
        Feature channels of every convolution.
    validation_fraction : float, default=0.1
        Held-out share of the vectors (never trained on).
    time_budget : float, optional
        Stop after the epoch during which this many seconds have passed.
    random_state : int or None, default=None
        Seeds the data and PyTorch's initialisation.
    verbose : int, default=0
        Print one line per epoch when positive.

    Returns
    -------
    network : DirectionNetwork
        The trained weights, with the training history in ``metadata``.
    history : dict
        ``train_loss`` and ``validation_loss`` per epoch, ``seconds``.
    """
    torch = _require_torch()
    grid_shape = tuple(int(n) for n in grid_shape)
    if len(grid_shape) != 3 or any(n % 2 for n in grid_shape):
        raise ValueError(f"grid_shape must be 3 even ints; got {grid_shape}.")
    if A.shape != (int(np.prod(grid_shape)),) * 2:
        raise ValueError(
            f"A has shape {A.shape}; expected {(int(np.prod(grid_shape)),) * 2} "
            f"for grid_shape {grid_shape}."
        )
    rng = check_random_state(random_state)
    torch.manual_seed(int(rng.randint(2**31 - 1)))
    start = time.perf_counter()
    vectors = make_training_vectors(A, n_vectors, random_state=rng)
    n_validation = max(1, int(round(validation_fraction * n_vectors)))
    train = torch.tensor(vectors[n_validation:])
    validation = torch.tensor(vectors[:n_validation])
    A_torch = _sparse_to_torch(torch, A)
    model = _torch_network(torch, channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)

    def loss_of(batch):
        y = model(batch.reshape(-1, 1, *grid_shape)).reshape(batch.shape[0], -1)
        return _direction_loss(torch, A_torch, batch, y)

    history = {"train_loss": [], "validation_loss": []}
    for epoch in range(epochs):
        order = torch.randperm(train.shape[0])
        total = 0.0
        for first in range(0, train.shape[0], batch_size):
            batch = train[order[first:first + batch_size]]
            optimizer.zero_grad()
            loss = loss_of(batch)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * batch.shape[0]
        with torch.no_grad():
            validation_loss = float(loss_of(validation))
        history["train_loss"].append(total / train.shape[0])
        history["validation_loss"].append(validation_loss)
        elapsed = time.perf_counter() - start
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: train {history['train_loss'][-1]:.4g}"
                  f"  validation {validation_loss:.4g}  ({elapsed:.0f} s)", flush=True)
        if time_budget is not None and elapsed > time_budget:
            break
    history["seconds"] = time.perf_counter() - start
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    metadata = {
        "grid_shape": "x".join(str(n) for n in grid_shape),
        "epochs": len(history["train_loss"]),
        "n_vectors": n_vectors,
        "final_validation_loss": history["validation_loss"][-1],
        "training_seconds": history["seconds"],
    }
    return DirectionNetwork(weights, metadata), history
