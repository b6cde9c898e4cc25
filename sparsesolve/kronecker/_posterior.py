"""E-step of sparse Bayesian learning: posterior mean and marginal variances.

Model: ``y = A x + n`` with ``x ~ N(0, diag(gamma))`` and ``n ~ N(0, s2 I)``
(circular complex normal for complex data). The posterior of ``x`` is normal
with covariance ``Sigma = (A^H A / s2 + diag(gamma)^-1)^-1`` and mean
``mu = Sigma A^H y / s2``. SBL only needs ``mu`` and ``diag(Sigma)``.

Two routes are provided, both written against an array namespace ``xp``:

* :func:`kronecker_posterior` for ``A = A_1 ⊗ ⋯ ⊗ A_I`` and
  ``gamma = gamma_1 ⊗ ⋯ ⊗ gamma_I``. Then ``A Gamma A^H`` is the Kronecker
  product of the small matrices ``A_i Gamma_i A_i^H``; their eigenvectors
  ``U_i`` diagonalise the whole measurement-space covariance, so
  ``mu = (⊗ W_i) [d * (⊗ U_i^H) y]`` and
  ``diag(Sigma) = gamma - (⊗ |W_i|^2) d`` with ``W_i = Gamma_i A_i^H U_i`` and
  ``d = 1 / (s2 + p_1 ⊗ ⋯ ⊗ p_I)``. Nothing of size ``M x N`` is formed.
* :func:`dense_posterior` for an explicit matrix ``A`` and any ``gamma``
  (classical SBL), in measurement space (``M x M``) or in coefficient space
  (``N x N``), whichever is smaller.
"""

from __future__ import annotations

import math

from ._operator import _hermitian, mode_product_apply

__all__ = [
    "dense_log_evidence",
    "dense_posterior",
    "kron_vector",
    "kronecker_log_evidence",
    "kronecker_posterior",
]


def kron_vector(vectors, xp):
    """Return ``v_1 ⊗ v_2 ⊗ ⋯ ⊗ v_I`` as a flat array (mode 1 slowest)."""
    result = vectors[0]
    for vector in vectors[1:]:
        result = xp.reshape(result[:, None] * vector[None, :], (-1,))
    return result


def _abs_squared(array, xp):
    if xp.isdtype(array.dtype, "complex floating"):
        return xp.real(array) ** 2 + xp.imag(array) ** 2
    return array * array


def kronecker_posterior(factors, gammas, noise_variance, Y, xp):
    """Posterior mean and variances for a Kronecker dictionary and prior.

    Parameters
    ----------
    factors : list of arrays of shape (m_i, n_i)
        Dictionary factors ``A_i`` (columns already pruned).
    gammas : list of arrays of shape (n_i,)
        Positive prior variances per mode.
    noise_variance : float
        Noise variance ``s2 > 0``.
    Y : array of shape (n_samples, prod(m_i))
        Measurements, one per row; all rows share the prior.
    xp : module
        Array namespace.

    Returns
    -------
    mean : array of shape (n_samples, prod(n_i))
        Posterior means, one row per measurement.
    variance : array of shape (prod(n_i),)
        ``diag(Sigma)`` (real, clipped at zero against round-off).
    """
    unitary_adjoints, weights, weights_squared, eigenvalues = [], [], [], []
    for factor, gamma in zip(factors, gammas, strict=True):
        scaled = factor * gamma[None, :]  # A_i Gamma_i
        covariance = scaled @ _hermitian(factor, xp)
        covariance = 0.5 * (covariance + _hermitian(covariance, xp))
        values, vectors = xp.linalg.eigh(covariance)
        # Eigenvalues of a PSD matrix are >= 0; round-off can make them
        # slightly negative, which would make d larger than 1 / s2.
        eigenvalues.append(xp.maximum(values, 0.0))
        unitary_adjoints.append(_hermitian(vectors, xp))
        weight = _hermitian(scaled, xp) @ vectors  # Gamma_i A_i^H U_i
        weights.append(weight)
        weights_squared.append(_abs_squared(weight, xp))
    precision = 1.0 / (noise_variance + kron_vector(eigenvalues, xp))
    rotated = mode_product_apply(unitary_adjoints, Y, xp) * precision[None, :]
    mean = mode_product_apply(weights, rotated, xp)
    reduction = mode_product_apply(weights_squared, precision[None, :], xp)[0, :]
    variance = xp.maximum(kron_vector(gammas, xp) - reduction, 0.0)
    return mean, variance


def dense_posterior(A, gamma, noise_variance, Y, xp):
    """Posterior mean and variances of classical SBL with an explicit ``A``.

    Works in measurement space (an ``M x M`` eigendecomposition) while
    ``M <= N`` and in coefficient space (``N x N``) once pruning has left
    fewer columns than rows, so that the baseline is as cheap as it can be.

    Parameters
    ----------
    A : array of shape (M, N)
        Dictionary (columns already pruned).
    gamma : array of shape (N,)
        Positive prior variances.
    noise_variance : float
        Noise variance.
    Y : array of shape (n_samples, M)
        Measurements.
    xp : module
        Array namespace.

    Returns
    -------
    mean : array of shape (n_samples, N)
    variance : array of shape (N,)
    """
    n_rows, n_columns = A.shape
    A_adjoint = _hermitian(A, xp)
    if n_columns >= n_rows:
        # Sigma = Gamma - Gamma A^H C^-1 A Gamma with C = s2 I + A Gamma A^H.
        scaled = A * gamma[None, :]
        covariance = scaled @ A_adjoint
        covariance = 0.5 * (covariance + _hermitian(covariance, xp))
        values, vectors = xp.linalg.eigh(covariance)
        precision = 1.0 / (noise_variance + xp.maximum(values, 0.0))
        weight = _hermitian(scaled, xp) @ vectors  # Gamma A^H U, N x M
        rotated = (Y @ xp.conj(vectors) if _is_complex(vectors, xp) else Y @ vectors)
        mean = (rotated * precision[None, :]) @ xp.permute_dims(weight, (1, 0))
        variance = gamma - _abs_squared(weight, xp) @ precision
        return mean, xp.maximum(variance, 0.0)
    # Sigma = G (G A^H A G / s2 + I)^-1 G with G = Gamma^(1/2): the bracket
    # has eigenvalues >= 1, so this form stays well conditioned.
    root = xp.sqrt(gamma)
    gram = (A_adjoint @ A) * (root[:, None] * root[None, :]) / noise_variance
    gram = 0.5 * (gram + _hermitian(gram, xp))
    values, vectors = xp.linalg.eigh(gram)
    values = 1.0 + xp.maximum(values, 0.0)
    scaled_vectors = vectors * root[:, None]  # G V
    # Sigma = (G V) diag(1 / values) (G V)^H.
    variance = _abs_squared(scaled_vectors, xp) @ (1.0 / values)
    projected = (Y @ xp.conj(A) if _is_complex(A, xp) else Y @ A) / noise_variance
    # mean^T = Sigma A^H y^T  ->  mean = (y conj(A) / s2) conj(Sigma), Sigma Hermitian.
    coefficients = projected @ xp.conj(scaled_vectors) if _is_complex(
        scaled_vectors, xp) else projected @ scaled_vectors
    mean = (coefficients / values[None, :]) @ xp.permute_dims(scaled_vectors, (1, 0))
    return mean, xp.maximum(variance, 0.0)


def _is_complex(array, xp):
    return xp.isdtype(array.dtype, "complex floating")


def _gaussian_log_density(log_det, quadratic, n_measurements, complex_data):
    """``log N(y; 0, C)`` from ``log|C|`` and ``y^H C^-1 y`` (per row)."""
    if complex_data:  # circular complex normal
        return -(n_measurements * math.log(math.pi) + log_det + quadratic)
    return -0.5 * (n_measurements * math.log(2.0 * math.pi) + log_det + quadratic)


def kronecker_log_evidence(factors, gammas, noise_variance, Y, xp):
    """Log marginal likelihood of each row of ``Y`` for a Kronecker model.

    ``y ~ N(0, C)`` with ``C = s2 I + (⊗ A_i) diag(⊗ gamma_i) (⊗ A_i)^H``.
    The eigenvectors ``U_i`` of the small ``A_i Gamma_i A_i^H`` diagonalise
    ``C`` (as in :func:`kronecker_posterior`): its eigenvalues are
    ``s2 + p_1 ⊗ ⋯ ⊗ p_I``, so ``log|C|`` and ``y^H C^-1 y`` cost no more
    than an E-step.

    Returns
    -------
    log_evidence : array of shape (n_samples,)
    """
    eigenvalues, unitary_adjoints = [], []
    for factor, gamma in zip(factors, gammas, strict=True):
        covariance = (factor * gamma[None, :]) @ _hermitian(factor, xp)
        covariance = 0.5 * (covariance + _hermitian(covariance, xp))
        values, vectors = xp.linalg.eigh(covariance)
        eigenvalues.append(xp.maximum(values, 0.0))
        unitary_adjoints.append(_hermitian(vectors, xp))
    spectrum = noise_variance + kron_vector(eigenvalues, xp)
    rotated = mode_product_apply(unitary_adjoints, Y, xp)
    quadratic = xp.sum(_abs_squared(rotated, xp) / spectrum[None, :], axis=1)
    log_det = float(xp.sum(xp.log(spectrum)))
    return _gaussian_log_density(log_det, quadratic, int(spectrum.shape[0]),
                                 _is_complex(Y, xp) or _is_complex(factors[0], xp))


def dense_log_evidence(A, gamma, noise_variance, Y, xp):
    """Log marginal likelihood of each row of ``Y`` for an explicit ``A``.

    ``C = s2 I + A Gamma A^H`` is handled in coefficient space (Woodbury and
    the matrix determinant lemma with ``G = Gamma^(1/2)``):
    ``log|C| = M log s2 + sum log(1 + lambda / s2)`` and
    ``y^H C^-1 y = (||y||^2 - sum |V^H G A^H y|^2 / (s2 + lambda)) / s2``,
    where ``G A^H A G = V diag(lambda) V^H``.

    Returns
    -------
    log_evidence : array of shape (n_samples,)
    """
    n_measurements = int(A.shape[0])
    root = xp.sqrt(gamma)
    scaled = A * root[None, :]  # A G
    gram = _hermitian(scaled, xp) @ scaled
    gram = 0.5 * (gram + _hermitian(gram, xp))
    values, vectors = xp.linalg.eigh(gram)
    values = xp.maximum(values, 0.0)
    # Rows: (V^H G A^H y)^T = y^T conj(A G) conj(V).
    if _is_complex(scaled, xp):
        projected = (Y @ xp.conj(scaled)) @ xp.conj(vectors)
    else:
        projected = (Y @ scaled) @ vectors
    quadratic = (
        xp.sum(_abs_squared(Y, xp), axis=1)
        - xp.sum(_abs_squared(projected, xp) / (noise_variance + values)[None, :],
                 axis=1)
    ) / noise_variance
    log_det = n_measurements * math.log(noise_variance) + float(
        xp.sum(xp.log(1.0 + values / noise_variance))
    )
    return _gaussian_log_density(log_det, quadratic, n_measurements,
                                 _is_complex(Y, xp) or _is_complex(A, xp))
