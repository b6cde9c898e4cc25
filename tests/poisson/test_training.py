"""Training data and the torch training loop (toy sizes)."""

import numpy as np
import pytest

from sparsesolve.poisson import make_training_vectors, poisson_matrix


def test_training_vectors_are_unit_norm_and_in_the_range():
    A = poisson_matrix((6, 6), boundary="neumann")
    vectors = make_training_vectors(A, 50, random_state=0)
    assert vectors.shape == (50, 36)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(vectors.sum(axis=1), 0, atol=1e-5)  # constant removed
    # Low modes weighted: the mean Rayleigh quotient sits below the plain
    # average eigenvalue of A (trace / rank).
    rayleigh = np.einsum("ij,ij->i", vectors @ A.toarray(), vectors)
    assert rayleigh.mean() < A.diagonal().sum() / 35


def test_lanczos_ritz_pairs_match_the_exact_low_spectrum():
    from sparsesolve.poisson._training import _lanczos_ritz

    A = poisson_matrix((6, 6, 6))
    values, vectors = _lanczos_ritz(A, 80, np.random.RandomState(0))
    assert vectors.shape == (80, 216)
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(80), atol=1e-10)
    # The extreme Ritz pairs converge first: the lowest is an eigenpair.
    exact = np.linalg.eigvalsh(A.toarray())
    assert values[0] == pytest.approx(exact[0], rel=1e-10)
    assert np.linalg.norm(A @ vectors[0] - values[0] * vectors[0]) < 1e-8
    # An exhausted Krylov space stops early instead of dividing by zero:
    # a chain of 10 cells has 10 distinct eigenvalues.
    values, vectors = _lanczos_ritz(poisson_matrix((10, 1)), 30,
                                    np.random.RandomState(0))
    assert len(values) == 10
    np.testing.assert_allclose(values, np.linalg.eigvalsh(
        poisson_matrix((10, 1)).toarray()), rtol=1e-10)


def test_lanczos_training_vectors():
    A = poisson_matrix((6, 6), boundary="neumann")
    vectors = make_training_vectors(A, 40, random_state=0, n_ritz=24,
                                    n_lanczos_runs=2)
    assert vectors.shape == (40, 36)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    # Start vectors in the range of A: no constant (null) component.
    np.testing.assert_allclose(vectors.sum(axis=1), 0, atol=1e-5)
    rayleigh = np.einsum("ij,ij->i", vectors @ A.toarray(), vectors)
    assert rayleigh.mean() < A.diagonal().sum() / 35
    with pytest.raises(ValueError, match="n_lanczos_runs"):
        make_training_vectors(A, 4, n_ritz=3, n_lanczos_runs=2)
    big = poisson_matrix((25, 25, 25))
    with pytest.raises(ValueError, match="n_ritz"):
        make_training_vectors(big, 4)


def test_toy_training_lowers_the_loss_and_exports_matching_weights():
    torch = pytest.importorskip("torch")
    from sparsesolve.poisson import train_direction_model
    from sparsesolve.poisson._training import (
        _direction_loss,
        _sparse_to_torch,
        _torch_network,
    )

    A = poisson_matrix((4, 4, 4))
    network, history = train_direction_model(
        A, (4, 4, 4), n_vectors=40, epochs=4, channels=4, learning_rate=1e-2,
        random_state=0)
    assert len(history["train_loss"]) == 4
    assert history["validation_loss"][-1] < history["validation_loss"][0]
    # Exported weights reproduce the torch model's output in NumPy.
    model = _torch_network(torch, 4)
    model.load_state_dict({k: torch.tensor(v) for k, v in network.weights.items()})
    r = np.random.default_rng(0).standard_normal((4, 4, 4)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.tensor(r)[None, None]).numpy()[0, 0]
    np.testing.assert_allclose(network(r), expected, atol=1e-5 * np.abs(expected).max())
    # The loss is the residual of the A-norm step, invariant to scaling y.
    b = torch.tensor(np.random.default_rng(1).standard_normal((2, 64)),
                     dtype=torch.float32)
    y = torch.tensor(np.random.default_rng(2).standard_normal((2, 64)),
                     dtype=torch.float32)
    A_torch = _sparse_to_torch(torch, A)
    loss = float(_direction_loss(torch, A_torch, b, y))
    assert float(_direction_loss(torch, A_torch, b, 7.5 * y)) == pytest.approx(loss,
                                                                               rel=1e-5)
    Ad = A.toarray()
    bn, yn = b.numpy().astype(float), y.numpy().astype(float)
    expected_loss = np.mean([
        np.sum((bi - (yi @ bi) / (yi @ Ad @ yi) * (Ad @ yi)) ** 2)
        for bi, yi in zip(bn, yn, strict=True)])
    assert loss == pytest.approx(expected_loss, rel=1e-4)


def test_training_argument_checks():
    pytest.importorskip("torch")
    from sparsesolve.poisson import train_direction_model

    with pytest.raises(ValueError, match="even"):
        train_direction_model(poisson_matrix((3, 4, 4)), (3, 4, 4))
    with pytest.raises(ValueError, match="expected"):
        train_direction_model(poisson_matrix((4, 4, 4)), (4, 4, 6))


def test_training_continues_from_a_network_and_checkpoints(tmp_path):
    pytest.importorskip("torch")
    from sparsesolve.poisson import DirectionNetwork, train_direction_model

    A = poisson_matrix((4, 4, 4))
    start = DirectionNetwork.random(channels=4, random_state=0)
    path = tmp_path / "ckpt.npz"
    network, history = train_direction_model(
        A, (4, 4, 4), n_vectors=20, epochs=2, learning_rate=1e-3,
        random_state=0, initial_network=start, n_ritz=30, n_lanczos_runs=2,
        checkpoint=path, checkpoint_every=3)
    assert network.channels == 4  # taken from the initial network
    assert start.weights["conv_in.weight"].shape[0] == 4
    saved = DirectionNetwork.load(path)
    assert saved.metadata["epochs"] == 2
    for name, value in network.weights.items():
        np.testing.assert_array_equal(saved.weights[name], value)
        # Trained from `start`, which is left unchanged, and moved by Adam.
        assert not np.array_equal(start.weights[name], value)
        assert np.abs(start.weights[name] - value).max() < 0.05
