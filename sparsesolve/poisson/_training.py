"""Training of the search-direction network (needs the ``train`` extra: PyTorch).

Unsupervised, as in Kaneda et al. (2023): for a unit-norm right-hand side
``b`` and the network output ``y = f(b)``, the loss is the residual left by
the best step along ``y`` in the A-norm,

    alpha = (y . b) / (y . A y),    loss(b) = || b - alpha A y ||^2,

which does not change when ``y`` is rescaled. Training vectors are random
combinations of eigenvectors of the one training matrix, the low end of the
spectrum weighted more (the smooth error modes Krylov methods find hardest).
The paper builds them from Lanczos Ritz vectors. On small grids (16^3) a dense
symmetric eigendecomposition gives the exact eigenvectors in seconds, so that
is used when no ``n_ritz`` is asked for; on larger grids (32^3) the vectors
come from Lanczos runs with full re-orthogonalisation, as in the paper.
"""

from __future__ import annotations

import os
import time
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, validate_params
from .._validation import check_allocation
from ._architecture import INPUT, LAYER_PLAN, Conv, Pool, weight_shapes
from ._network import DirectionNetwork
from ._operator import _check_square_sparse

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


def _lanczos_ritz(A, n_steps, rng):
    """Ritz values and vectors of ``n_steps`` Lanczos steps on ``A``.

    Full re-orthogonalisation (twice, against every earlier Lanczos vector)
    keeps the basis orthonormal in floating point, as the paper's data
    generator does. The start vector is ``A @ randn``, so the Krylov space
    lies in the range of ``A`` (no null-space content).

    Returns the Ritz values (ascending) and the Ritz vectors as the rows of an
    array of shape (n_ritz, n); ``n_ritz < n_steps`` when the Krylov space is
    exhausted early (an invariant subspace was found).
    """
    n = A.shape[0]
    basis = np.zeros((n_steps, n))
    alphas, betas = [], []
    v = A @ rng.standard_normal(n)
    v /= np.linalg.norm(v)
    beta, previous = 0.0, np.zeros(n)
    for step in range(n_steps):
        basis[step] = v
        w = A @ v - beta * previous
        alpha = float(v @ w)
        w -= alpha * v
        for _ in range(2):
            w -= basis[: step + 1].T @ (basis[: step + 1] @ w)
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        if step + 1 == n_steps or beta <= 1e-10 * abs(alpha):
            break
        betas.append(beta)
        previous, v = v, w / beta
    m = len(alphas)
    values, vectors = scipy.linalg.eigh_tridiagonal(np.array(alphas),
                                                    np.array(betas[: m - 1]))
    return values, vectors.T @ basis[:m]


def _check_training_matrix(A):
    """``A`` as a finite, real, square CSR matrix (the network is real)."""
    A = _check_square_sparse(A, "A")
    if A.shape[0] < 1 or A.nnz == 0 or not np.any(A.data):
        raise ValueError(
            f"A (shape {A.shape}) has no nonzero entry: it has no spectrum to draw "
            "training vectors from.")
    if np.iscomplexobj(A.data):
        raise TypeError(
            "A is complex but the direction network and its training vectors are "
            "real (float32); train on the real symmetric matrix.")
    return A


@validate_params(
    {
        "A": ["array-like", "sparse matrix"],
        "n_vectors": [Interval(Integral, 1, None, closed="left")],
        "low_fraction": [Interval(Real, 0, 1, closed="both")],
        "low_weight": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "n_ritz": [Interval(Integral, 2, None, closed="left"), None],
        "n_lanczos_runs": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def make_training_vectors(A, n_vectors, low_fraction=0.55, low_weight=9.0,
                          random_state=None, *, n_ritz=None, n_lanczos_runs=1):
    """Unit-norm random combinations of (Ritz) eigenvectors of ``A``.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive semi-definite training matrix (at most 14,000 rows
        unless ``n_ritz`` is given).
    n_vectors : int
        How many vectors to draw.
    low_fraction : float, default=0.55
        Fraction of the non-null spectrum, from the bottom, whose coefficients
        are multiplied by ``low_weight`` (the paper: half the Ritz vectors
        plus 500 of 10,000).
    low_weight : float, default=9.0
        Weight of the low part of the spectrum.
    random_state : int, RandomState instance or None, default=None
        Seed of the random coefficients and Lanczos start vectors.
    n_ritz : int, optional
        Use ``n_ritz`` Lanczos Ritz vectors in total (the paper's recipe)
        instead of all exact eigenvectors from a dense eigendecomposition;
        needed above 14,000 unknowns.
    n_lanczos_runs : int, default=1
        Split the ``n_ritz`` Lanczos steps over this many runs from
        independent random starts. One Krylov space holds a single direction
        of every repeated eigenvalue, and the eigenvalues of a symmetric
        domain (a cube) are repeated; several starts give the network all the
        orientations of those modes.

    Returns
    -------
    vectors : ndarray of shape (n_vectors, n), float32
        Rows have unit norm and are orthogonal to the null space of ``A``.

    Examples
    --------
    >>> from sparsesolve.poisson import make_training_vectors, poisson_matrix
    >>> A = poisson_matrix((8, 8, 8))
    >>> make_training_vectors(A, 20, random_state=0).shape
    (20, 512)
    >>> make_training_vectors(A, 20, random_state=0, n_ritz=60,
    ...                       n_lanczos_runs=2).shape
    (20, 512)
    """
    rng = check_random_state(random_state)
    A = _check_training_matrix(A)
    n = A.shape[0]
    n_modes = n if n_ritz is None else min(int(n_ritz), n)
    # Coefficients (n_modes x n_vectors) and the vectors (float64, then a
    # float32 copy) are the allocations n_vectors sets.
    check_allocation(8.0 * n_vectors * (n_modes + 1.5 * n), "n_vectors",
                     what=f"{n_vectors} training vectors of length {n}")
    if n_ritz is None:
        if A.shape[0] > _MAX_DENSE_UNKNOWNS:
            raise ValueError(
                f"make_training_vectors uses a dense eigendecomposition; A has "
                f"{A.shape[0]} rows, more than {_MAX_DENSE_UNKNOWNS}. Pass "
                "n_ritz to use Lanczos Ritz vectors instead."
            )
        eigenvalues, eigenvectors = scipy.linalg.eigh(A.toarray())
    else:
        n_ritz, n_lanczos_runs = int(n_ritz), int(n_lanczos_runs)
        if n_lanczos_runs < 1 or n_ritz < 2 * n_lanczos_runs:
            raise ValueError(
                f"need n_lanczos_runs >= 1 and n_ritz >= 2 * n_lanczos_runs; got "
                f"n_ritz={n_ritz}, n_lanczos_runs={n_lanczos_runs}."
            )
        runs = [_lanczos_ritz(A, n_ritz // n_lanczos_runs, rng)
                for _ in range(n_lanczos_runs)]
        eigenvalues = np.concatenate([values for values, _ in runs])
        order = np.argsort(eigenvalues, kind="stable")
        eigenvalues = eigenvalues[order]
        # Columns, like eigh's output.
        eigenvectors = np.concatenate([vectors for _, vectors in runs])[order].T
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
    """PyTorch twin of :class:`DirectionNetwork`: the same layer plan and names."""
    nn = torch.nn
    functional = torch.nn.functional
    shapes = weight_shapes(channels)

    class _DirectionCNN(nn.Module):
        """The layers of :data:`LAYER_PLAN` as ``Conv3d`` modules."""

        def __init__(self):
            super().__init__()
            for step in LAYER_PLAN:
                if not isinstance(step, Conv):
                    continue
                c_out, c_in, k = shapes[f"{step.weight}.weight"][:3]
                layer = nn.Conv3d(c_in, c_out, k, padding=k // 2)
                # "convs.4" lives in a ModuleDict "convs" under key "4", so
                # the state_dict names are the plan's weight names.
                group, _, key = step.weight.rpartition(".")
                if group:
                    if not hasattr(self, group):
                        self.add_module(group, nn.ModuleDict())
                    getattr(self, group)[key] = layer
                else:
                    self.add_module(step.weight, layer)

        def forward(self, x):
            values = {INPUT: x}
            for step in LAYER_PLAN:
                inp = values[step.source]
                if isinstance(step, Conv):
                    out = self.get_submodule(step.weight)(inp)
                    if step.relu:
                        out = torch.relu(out)
                elif isinstance(step, Pool):
                    out = functional.avg_pool3d(inp, 2)
                else:
                    out = functional.interpolate(inp, scale_factor=2, mode="nearest")
                if getattr(step, "add", None) is not None:
                    out = out + values[step.add]
                values[step.out] = out
            return values[LAYER_PLAN[-1].out]

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


@validate_params(
    {
        "A": ["array-like", "sparse matrix"],
        "grid_shape": [tuple, list],
        "n_vectors": [Interval(Integral, 2, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "channels": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "initial_network": [DirectionNetwork, None],
        "n_ritz": [Interval(Integral, 2, None, closed="left"), None],
        "n_lanczos_runs": [Interval(Integral, 1, None, closed="left")],
        "checkpoint": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def train_direction_model(A, grid_shape, *, n_vectors=1000, epochs=15,
                          batch_size=10, learning_rate=1e-3, channels=16,
                          validation_fraction=0.1, time_budget=None,
                          random_state=None, verbose=0, initial_network=None,
                          n_ritz=None, n_lanczos_runs=1, checkpoint=None,
                          checkpoint_every=None):
    """Train the direction CNN on one Poisson matrix with PyTorch.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Training matrix on the full grid (``poisson_matrix`` layout),
        ``n = prod(grid_shape)``, at most 14,000 rows unless ``n_ritz`` is
        given.
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
    initial_network : DirectionNetwork, optional
        Start from these weights instead of a random initialisation (for
        example to continue training a 16^3 model on a 32^3 grid; the network
        is fully convolutional). ``channels`` is then taken from it.
    n_ritz, n_lanczos_runs : int, optional
        Build the training vectors from Lanczos Ritz vectors (see
        :func:`make_training_vectors`); needed above 14,000 unknowns.
    checkpoint : str or os.PathLike, optional
        Write the current weights there (``.npz``) after every epoch and, with
        ``checkpoint_every``, every that many Adam steps, so a long run can be
        stopped and still leave a usable model.
    checkpoint_every : int, optional
        Adam steps between checkpoints inside an epoch.

    Returns
    -------
    network : DirectionNetwork
        The trained weights, with the training history in ``metadata``.
    history : dict
        ``train_loss`` and ``validation_loss`` per epoch, ``seconds``.
    """
    # Arguments first: a wrong call fails the same way with or without
    # PyTorch installed.
    A = _check_training_matrix(A)
    if not all(isinstance(n, Integral) and not isinstance(n, bool) and n >= 2
               for n in grid_shape):
        raise ValueError(f"grid_shape must be 3 even ints; got {grid_shape!r}.")
    grid_shape = tuple(int(n) for n in grid_shape)
    if len(grid_shape) != 3 or any(n % 2 for n in grid_shape):
        raise ValueError(f"grid_shape must be 3 even ints; got {grid_shape}.")
    from ._architecture import weight_shapes

    check_allocation(
        16.0 * sum(float(np.prod(s, dtype=float))
                   for s in weight_shapes(int(channels)).values())
        + 4.0 * channels * batch_size * float(np.prod(grid_shape, dtype=float)) * 4,
        "channels", what=f"a {channels}-channel network and its activations")
    if n_vectors - max(1, int(round(validation_fraction * n_vectors))) < 1:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves no training vector "
            f"of n_vectors={n_vectors}; lower it or raise n_vectors.")
    if A.shape != (int(np.prod(grid_shape)),) * 2:
        raise ValueError(
            f"A has shape {A.shape}; expected {(int(np.prod(grid_shape)),) * 2} "
            f"for grid_shape {grid_shape}."
        )
    torch = _require_torch()
    rng = check_random_state(random_state)
    torch.manual_seed(int(rng.randint(2**31 - 1)))
    start = time.perf_counter()
    vectors = make_training_vectors(A, n_vectors, random_state=rng,
                                    n_ritz=n_ritz, n_lanczos_runs=n_lanczos_runs)
    data_seconds = time.perf_counter() - start
    n_validation = max(1, int(round(validation_fraction * n_vectors)))
    train = torch.tensor(vectors[n_validation:])
    validation = torch.tensor(vectors[:n_validation])
    A_torch = _sparse_to_torch(torch, A)
    if initial_network is not None:
        channels = initial_network.weights["conv_in.weight"].shape[0]
    model = _torch_network(torch, channels)
    if initial_network is not None:
        model.load_state_dict({k: torch.tensor(np.asarray(v, dtype=np.float32))
                               for k, v in initial_network.weights.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)

    def loss_of(batch):
        y = model(batch.reshape(-1, 1, *grid_shape)).reshape(batch.shape[0], -1)
        return _direction_loss(torch, A_torch, batch, y)

    history = {"train_loss": [], "validation_loss": [],
               "data_seconds": data_seconds}

    def export(n_epochs):
        weights = {k: v.detach().numpy().copy()
                   for k, v in model.state_dict().items()}
        metadata = {
            "grid_shape": "x".join(str(n) for n in grid_shape),
            "epochs": n_epochs,
            "n_vectors": n_vectors,
            "final_validation_loss": (history["validation_loss"][-1]
                                      if history["validation_loss"] else np.nan),
            "training_seconds": time.perf_counter() - start,
        }
        return DirectionNetwork(weights, metadata)

    steps = 0
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
            steps += 1
            if checkpoint is not None and checkpoint_every and \
                    steps % checkpoint_every == 0:
                # Fractional epochs in the metadata say where it stopped.
                export(round(epoch + (first + batch_size) / train.shape[0],
                             3)).save(checkpoint)
        with torch.no_grad():
            validation_loss = float(loss_of(validation))
        history["train_loss"].append(total / train.shape[0])
        history["validation_loss"].append(validation_loss)
        if checkpoint is not None:
            export(epoch + 1).save(checkpoint)
        elapsed = time.perf_counter() - start
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: train {history['train_loss'][-1]:.4g}"
                  f"  validation {validation_loss:.4g}  ({elapsed:.0f} s)", flush=True)
        if time_budget is not None and elapsed > time_budget:
            break
    history["seconds"] = time.perf_counter() - start
    network = export(len(history["train_loss"]))
    network.metadata["training_seconds"] = history["seconds"]
    return network, history
