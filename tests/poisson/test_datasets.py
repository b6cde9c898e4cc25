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
