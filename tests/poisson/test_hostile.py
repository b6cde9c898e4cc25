"""Hostile inputs to the Poisson family: bad shapes, complex data, huge sizes."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparsesolve.poisson import (
    DeepConjugateDirection,
    DirectionNetwork,
    IncompleteCholesky,
    cg,
    floating_components,
    ic0_pcg,
    make_training_vectors,
    poisson_matrix,
    project_to_range,
    train_direction_model,
)


@pytest.mark.parametrize("channels", [0, -1, 1.5, True])
def test_random_network_rejects_bad_channels(channels):
    # Regression: channels=0 raised ZeroDivisionError from the He scaling.
    with pytest.raises(ValueError, match="channels must be a positive int"):
        DirectionNetwork.random(channels=channels)


def test_random_network_refuses_absurd_allocation():
    with pytest.raises(ValueError, match="channels asks for .* PiB"):
        DirectionNetwork.random(channels=10**6)


def test_network_checks_its_input():
    net = DirectionNetwork.random(channels=2, random_state=0)
    with pytest.raises(TypeError, match="weights must be a mapping"):
        DirectionNetwork(3)
    with pytest.raises(ValueError, match="residual contains NaN"):
        net(np.full((4, 4, 4), np.nan))
    # Regression: complex residuals lost their imaginary part silently.
    with pytest.raises(TypeError, match="residual is complex"):
        net(np.ones((4, 4, 4)) + 1j)
    with pytest.raises(ValueError, match="non-empty 3D grid"):
        net(np.ones((0, 4, 4)))
    # float32 layers overflow on such inputs: an error, not inf directions.
    with pytest.raises(ValueError, match="normalised residual"):
        net(np.full((4, 4, 4), 1e300))


def test_incomplete_cholesky_rejects_non_square_and_wrong_vectors():
    # Regression: a 3x4 matrix was accepted; a short vector was written out
    # of bounds by the compiled solve.
    with pytest.raises(ValueError, match="A must be square"):
        IncompleteCholesky(sp.random(3, 4, density=1.0, random_state=0))
    factor = IncompleteCholesky(poisson_matrix((4, 4, 4)))
    for r in (np.ones(3), np.ones(65), np.ones((64, 2))):
        with pytest.raises(ValueError, match="r must be a 1D array of length 64"):
            factor.solve(r)


def test_incomplete_cholesky_rejects_negative_diagonal():
    # -A used to be "preconditioned" by silently replaced pivots.
    A = poisson_matrix((4, 4))
    with pytest.raises(ValueError, match="nonnegative diagonal"):
        IncompleteCholesky(-A)
    with pytest.raises(ValueError, match="nonnegative diagonal"):
        ic0_pcg(-A, np.ones(16))


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_solvers_reject_nan_matrix_and_bad_scalars(solver):
    # Regression: a NaN in A gave x = 0 and no error.
    A = poisson_matrix((4, 4)).tolil()
    A[0, 0] = np.nan
    with pytest.raises(ValueError, match="A contains NaN"):
        solver(A.tocsr(), np.ones(16))
    A = poisson_matrix((4, 4))
    with pytest.raises(ValueError, match="'maxiter' parameter"):
        solver(A, np.ones(16), maxiter=0)
    with pytest.raises(ValueError, match="'rtol' parameter"):
        solver(A, np.ones(16), rtol=np.nan)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_solvers_complex_hermitian_against_dense_solve(solver):
    # Complex Hermitian systems are supported: compare with numpy.linalg.solve.
    A = poisson_matrix((4, 4)).astype(complex)
    A = A + sp.diags(np.full(16, 0.5)) + 1j * (sp.eye(16, k=1) - sp.eye(16, k=-1)) * 0.3
    b = np.arange(16.0) + 1j * np.ones(16)
    result = solver(A.tocsr(), b, rtol=1e-12)
    assert_allclose(result.x, np.linalg.solve(A.toarray(), b), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_solvers_are_scale_invariant(solver, scale):
    A = poisson_matrix((6, 6))
    b = np.random.RandomState(0).rand(36)
    reference = solver(A, b).x
    assert_allclose(solver(A, scale * b).x / scale, reference, rtol=1e-10)
    assert_allclose(solver(scale * A, b).x * scale, reference, rtol=1e-10)


@pytest.mark.parametrize("solver", [cg, ic0_pcg])
def test_solvers_warn_naming_maxiter(solver):
    A = poisson_matrix((12, 12, 12))
    b = np.random.RandomState(0).rand(A.shape[0])
    with pytest.warns(ConvergenceWarning, match="increase maxiter"):
        solver(A, b, maxiter=2)


def test_dcdm_warns_naming_max_iter():
    A = poisson_matrix((16, 16, 16))
    b = np.random.RandomState(0).rand(A.shape[0])
    model = DeepConjugateDirection(max_iter=2).fit(A)
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        model.solve(b)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_dcdm_is_scale_invariant(scale):
    A = poisson_matrix((4, 4, 4))
    b = np.random.RandomState(0).rand(64)
    model = DeepConjugateDirection(grid_shape=(4, 4, 4)).fit(A)
    reference = model.solve(b)
    assert_allclose(model.solve(scale * b) / scale, reference, rtol=1e-9, atol=0)
    scaled = DeepConjugateDirection(grid_shape=(4, 4, 4)).fit(scale * A)
    assert_allclose(scaled.solve(b) * scale, reference, rtol=1e-9)


def test_dcdm_rejects_complex_right_hand_side():
    model = DeepConjugateDirection(grid_shape=(4, 4, 4)).fit(poisson_matrix((4, 4, 4)))
    with pytest.raises(TypeError, match="b must be a real"):
        model.solve(np.ones(64) + 1j)


def test_poisson_matrix_refuses_absurd_grid():
    with pytest.raises(ValueError, match="shape asks for .* more than this machine"):
        poisson_matrix((10**5, 10**5, 10**5))
    with pytest.raises(ValueError, match="'boundary' parameter"):
        poisson_matrix((4, 4), boundary="periodic")


def test_floating_components_and_projection_check_their_input():
    with pytest.raises(ValueError, match="A must be a square matrix"):
        floating_components(sp.eye(3, 4))
    with pytest.raises(ValueError, match="A contains NaN"):
        floating_components(sp.csr_matrix(np.array([[np.nan]])))
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, n_floating=2\)"):
        project_to_range(np.ones(4), np.array([0, 0, 1, 5]), 2)
    with pytest.raises(ValueError, match="labels must be integers of shape"):
        project_to_range(np.ones(4), np.array([0, 0, 1]), 2)
    with pytest.raises(ValueError, match="'n_floating' parameter"):
        project_to_range(np.ones(4), np.zeros(4, dtype=int), -1)


def test_project_to_range_keeps_complex_parts():
    # Regression: complex right-hand sides were cast to float64.
    labels, n = floating_components(poisson_matrix((2, 2), boundary="neumann"))
    b = np.array([1.0, 2.0, 3.0, 6.0]) * (1 + 2j)
    assert_allclose(project_to_range(b, labels, n),
                    np.array([-2.0, -1.0, 0.0, 3.0]) * (1 + 2j))


def test_training_functions_validate_arguments():
    A = poisson_matrix((4, 4, 4))
    with pytest.raises(ValueError, match="'n_vectors' parameter"):
        make_training_vectors(A, 0)
    with pytest.raises(ValueError, match="n_vectors asks for"):
        make_training_vectors(A, 10**12)
    with pytest.raises(TypeError, match="A is complex"):
        make_training_vectors(A.astype(complex), 3)
    with pytest.raises(ValueError, match="A must be a square matrix"):
        make_training_vectors(sp.eye(3, 4), 3)
    with pytest.raises(ValueError, match="'epochs' parameter"):
        train_direction_model(A, (4, 4, 4), epochs=0)
    with pytest.raises(ValueError, match="'channels' parameter"):
        train_direction_model(A, (4, 4, 4), channels=0)
    with pytest.raises(ValueError, match="leaves no training vector"):
        train_direction_model(A, (4, 4, 4), n_vectors=2, validation_fraction=0.9)


def test_project_to_range_and_training_refuse_invalid_input():
    labels, n = floating_components(poisson_matrix((2, 2), boundary="neumann"))
    with pytest.raises(ValueError, match="b contains NaN"):
        project_to_range(np.array([1.0, np.nan, 0, 0]), labels, n)
    with pytest.raises(TypeError, match="b must hold numbers"):
        project_to_range(np.array(["a"] * 4), labels, n)
    assert_allclose(project_to_range(np.array([1, 2, 3, 6]), labels, n),
                    [-2.0, -1.0, 0.0, 3.0])
    with pytest.raises(ValueError, match="no nonzero entry"):
        make_training_vectors(sp.csr_matrix((8, 8)), 2)
    with pytest.raises(ValueError, match="channels asks for"):
        train_direction_model(poisson_matrix((4, 4, 4)), (4, 4, 4), channels=10**6)
    net = DirectionNetwork.random(channels=2, random_state=0)
    assert net(np.ones((2, 2, 2)).tolist()).shape == (2, 2, 2)


def test_dcdm_refuses_float16_right_hand_side():
    model = DeepConjugateDirection(grid_shape=(4, 4, 4)).fit(poisson_matrix((4, 4, 4)))
    with pytest.raises(TypeError, match="b is float16"):
        model.solve(np.ones(64, dtype=np.float16))
