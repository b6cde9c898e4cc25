"""One mini-batch update of the atoms, written against ``xp``."""

from __future__ import annotations

import array_api_compat

__all__ = ["codes_lipschitz", "dictionary_step", "normalize_rows"]

# Power iterations for ||C||_2: the estimate converges from below and only
# scales the step, so a rough value is enough.
_POWER_ITERATIONS = 20


def codes_lipschitz(codes, xp):
    """Estimate ``||C||_2**2``, the Lipschitz constant of the atom gradient.

    Parameters
    ----------
    codes : array of shape (n_samples, n_atoms)
    xp : module

    Returns
    -------
    float
    """
    vector = xp.ones(codes.shape[1], dtype=codes.dtype,
                     device=array_api_compat.device(codes))
    value = 0.0
    for _ in range(_POWER_ITERATIONS):
        image = codes.T @ (codes @ vector)
        norm = float(xp.linalg.vector_norm(image))
        if norm == 0.0:
            return 0.0
        value = norm / float(xp.linalg.vector_norm(vector))
        vector = image / norm
    return value


def dictionary_step(batch, dictionary, codes, learning_rate, xp):
    """One gradient step on ``0.5 ||X_b - C D||_F^2`` with respect to ``D``.

    The step is ``learning_rate / ||C||_2**2``: with ``learning_rate=1`` it is
    the classic ``1 / L`` step of the batch loss, so no rate has to be tuned
    to the batch size or the code scale (the gradient is summed over the
    batch, as in Olshausen & Field's rule).

    Parameters
    ----------
    batch : array of shape (n_samples, n_features)
    dictionary : array of shape (n_atoms, n_features)
    codes : array of shape (n_samples, n_atoms)
    learning_rate : float
    xp : module

    Returns
    -------
    updated : array of shape (n_atoms, n_features)
        The updated (not yet renormalised) atoms.
    residual : array of shape (n_samples, n_features)
        ``X_b - C D`` before the update (for the loss curve).
    """
    residual = batch - codes @ dictionary
    lipschitz = codes_lipschitz(codes, xp)
    if lipschitz == 0.0:
        return dictionary, residual
    return dictionary + (learning_rate / lipschitz) * (codes.T @ residual), residual


def normalize_rows(dictionary, xp):
    """Scale every atom to unit norm (atoms of zero norm stay zero)."""
    norms = xp.linalg.vector_norm(dictionary, axis=1)
    norms = xp.where(norms > 0, norms, xp.ones_like(norms))
    return dictionary / norms[:, None]
