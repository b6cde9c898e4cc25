"""make_poisson_problem."""

import numpy as np
import pytest

from sparsesolve.datasets import make_poisson_problem
from sparsesolve.poisson import floating_components, poisson_matrix


@pytest.mark.parametrize("obstacle", ["none", "sphere", "box", "random"])
def test_problem_is_consistent(obstacle):
    A, b, solid = make_poisson_problem((12, 12, 12), obstacle, random_state=0)
    assert (solid.sum() > 0) == (obstacle != "none")
    assert abs(A - poisson_matrix((12, 12, 12), solid)).max() == 0
    assert np.all(b[solid.ravel()] == 0)
    labels, n_floating = floating_components(A)
    # With Dirichlet faces only the solid cells themselves float.
    assert n_floating == int(solid.sum())


def test_neumann_rhs_is_compatible_and_seeded():
    A, b, solid = make_poisson_problem(
        (10, 10), "sphere", boundary="neumann", rhs="smooth", random_state=3)
    assert abs(b[~solid.ravel()].sum()) < 1e-10
    _, b_again, _ = make_poisson_problem(
        (10, 10), "sphere", boundary="neumann", rhs="smooth", random_state=3)
    assert np.array_equal(b, b_again)


def test_random_obstacles_differ_with_seed():
    _, _, solid0 = make_poisson_problem((16, 16, 16), "random", random_state=0)
    _, _, solid1 = make_poisson_problem((16, 16, 16), "random", random_state=1)
    assert not np.array_equal(solid0, solid1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="obstacle"):
        make_poisson_problem((8, 8), "torus")
    with pytest.raises(ValueError, match="rhs"):
        make_poisson_problem((8, 8), rhs="pink")


def _divergence_by_loops(velocities, solid, closed):
    """Net outflow of every cell, face by face (independent of the module)."""
    shape = solid.shape
    out = np.zeros(shape)
    for cell in np.ndindex(shape):
        for axis, velocity in enumerate(velocities):
            for side, sign in ((cell[axis] + 1, 1.0), (cell[axis], -1.0)):
                face = list(cell)
                face[axis] = side
                neighbour = list(cell)
                neighbour[axis] += 1 if sign > 0 else -1
                outside = not 0 <= neighbour[axis] < shape[axis]
                wall = (closed if outside else bool(solid[tuple(neighbour)])) \
                    or bool(solid[cell])
                if not wall:
                    out[cell] += sign * velocity[tuple(face)]
    return out


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann"])
def test_divergence_rhs_matches_face_fluxes(boundary):
    from scipy.ndimage import gaussian_filter

    from sparsesolve.datasets._poisson import _divergence

    solid = np.zeros((7, 6), dtype=bool)
    solid[2:4, 2:4] = True
    # Same draws as _divergence makes from the same seed.
    rng = np.random.RandomState(5)
    velocities = [gaussian_filter(rng.standard_normal((8, 6)), sigma=3.0),
                  gaussian_filter(rng.standard_normal((7, 7)), sigma=3.0)]
    expected = _divergence_by_loops(velocities, solid, boundary != "dirichlet")
    got = _divergence((7, 6), solid, boundary, np.random.RandomState(5))
    np.testing.assert_allclose(got, expected, atol=1e-14)
    if boundary == "neumann":
        # No flow through any wall: the outflows of the fluid cells cancel.
        assert abs(got[~solid].sum()) < 1e-12


def test_divergence_rhs_is_a_valid_problem():
    A, b, solid = make_poisson_problem((12, 12, 12), "sphere", rhs="divergence",
                                       random_state=0)
    assert np.all(b[solid.ravel()] == 0)
    assert np.linalg.norm(b) > 0
    A, b, solid = make_poisson_problem((10, 10), "sphere", boundary="neumann",
                                       rhs="divergence", random_state=1)
    assert abs(b[~solid.ravel()].sum()) < 1e-10
