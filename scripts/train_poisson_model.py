"""Train the direction network that ships as ``sparsesolve/poisson/default_model.npz``.

Usage (needs the ``train`` extra, ``pip install -e ".[train]"``)::

    python scripts/train_poisson_model.py [--grid 16] [--epochs 30]
        [--time-budget 900] [--output sparsesolve/poisson/default_model.npz]

The training domain is an empty cube with Dirichlet faces (the
``poisson_matrix((n, n, n))`` of the package), as in the scaled-down recipe of
the DCDM spec: 1,000 unit-norm vectors from the eigenvectors of that one
matrix, 10 % held out, Adam (learning rate 1e-3, batch 10). Training stops
after ``--epochs`` or after the epoch during which ``--time-budget`` seconds
have passed, whichever comes first; the number of epochs actually run is
stored in the file's metadata.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsesolve.poisson import poisson_matrix, train_direction_model

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1] / "sparsesolve" / "poisson"
    / "default_model.npz"
)


def main(argv=None):
    """Parse the arguments, train, write the ``.npz``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--vectors", type=int, default=1000)
    parser.add_argument("--time-budget", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    shape = (args.grid,) * 3
    A = poisson_matrix(shape)
    network, history = train_direction_model(
        A, shape, n_vectors=args.vectors, epochs=args.epochs,
        time_budget=args.time_budget, random_state=args.seed, verbose=1,
    )
    network.metadata.update(boundary="dirichlet", obstacle="none", seed=args.seed)
    network.save(args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e3:.0f} kB), "
          f"{network.n_parameters} parameters, {len(history['train_loss'])} epochs, "
          f"{history['seconds']:.0f} s")


if __name__ == "__main__":
    main()
