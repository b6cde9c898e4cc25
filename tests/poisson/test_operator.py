"""poisson_matrix, floating_components and project_to_range."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from sparsesolve.poisson import floating_components, poisson_matrix, project_to_range


def _brute_force_matrix(shape, solid, boundary):
    """Cell-by-cell assembly of the same operator (independent reference)."""
    n = int(np.prod(shape))
    A = np.zeros((n, n))
    index = np.arange(n).reshape(shape)
    for cell in itertools.product(*[range(s) for s in shape]):
        if solid[cell]:
            continue
        i = index[cell]
        for axis, step in itertools.product(range(len(shape)), (-1, 1)):
            neighbour = list(cell)
            neighbour[axis] += step
            if 0 <= neighbour[axis] < shape[axis]:
                if not solid[tuple(neighbour)]:
                    A[i, i] += 1
                    A[i, index[tuple(neighbour)]] -= 1
            elif boundary == "dirichlet" or (
                boundary == "open_top" and axis == 0 and step == 1
            ):
                A[i, i] += 1
    return A


@pytest.mark.parametrize("shape", [(5, 6, 7), (4, 9), (1, 6)])
def test_dirichlet_box_matches_pyamg(shape):
    pyamg = pytest.importorskip("pyamg")
    A = poisson_matrix(shape)
    reference = pyamg.gallery.poisson(shape, format="csr")
    assert sp.isspmatrix_csr(A)
    assert abs(A - reference).max() == 0.0


def test_2d_equals_kronecker_sum_of_1d_second_differences():
    ny, nx = 5, 7

    def second_difference(n):
        return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])

    reference = sp.kron(second_difference(ny), sp.eye(nx)) + sp.kron(
        sp.eye(ny), second_difference(nx))
    assert np.array_equal(poisson_matrix((ny, nx)).toarray(), reference.toarray())


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "open_top"])
@pytest.mark.parametrize("shape", [(4, 5, 3), (6, 5)])
def test_solids_match_brute_force_assembly(boundary, shape):
    rng = np.random.default_rng(0)
    solid = rng.random(shape) < 0.25
    A = poisson_matrix(shape, solid, boundary=boundary)
    expected = _brute_force_matrix(shape, solid, boundary)
    assert np.array_equal(A.toarray(), expected)
    # Solid rows and columns are zero; the matrix is symmetric PSD.
    dense = A.toarray()
    assert not dense[solid.ravel()].any()
    assert not dense[:, solid.ravel()].any()
    assert np.array_equal(dense, dense.T)
    assert np.linalg.eigvalsh(dense).min() > -1e-10


def test_floating_components_count_the_null_space():
    # A Dirichlet box with a closed solid shell around an inner fluid pocket:
    # the pocket floats (no Dirichlet face), the rest does not.
    shape = (7, 7, 7)
    solid = np.zeros(shape, dtype=bool)
    solid[1:6, 1:6, 1:6] = True
    solid[2:5, 2:5, 2:5] = False
    A = poisson_matrix(shape, solid)
    labels, n_floating = floating_components(A)
    null_dimension = int(np.sum(np.linalg.eigvalsh(A.toarray()) < 1e-9))
    # One pocket plus one trivial component per solid cell.
    assert n_floating == 1 + int(solid.sum())
    assert n_floating == null_dimension
    pocket = np.zeros(shape, dtype=bool)
    pocket[2:5, 2:5, 2:5] = True
    assert len(set(labels[pocket.ravel()].tolist())) == 1
    assert (labels[~(pocket | solid).ravel()] == -1).all()


def test_project_to_range_is_orthogonal_to_null_vectors():
    shape = (6, 6)
    solid = np.zeros(shape, dtype=bool)
    solid[:, 3] = True  # two closed halves
    A = poisson_matrix(shape, solid, boundary="neumann")
    labels, n_floating = floating_components(A)
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    b_before = b.copy()
    projected = project_to_range(b, labels, n_floating)
    assert np.array_equal(b, b_before)  # caller's array untouched
    values, vectors = np.linalg.eigh(A.toarray())
    null = vectors[:, values < 1e-9]
    assert null.shape[1] == n_floating
    np.testing.assert_allclose(null.T @ projected, 0, atol=1e-12)
    # Projection only removes the null part: the range part is unchanged.
    rng_part = vectors[:, values >= 1e-9]
    np.testing.assert_allclose(rng_part.T @ projected, rng_part.T @ b, atol=1e-12)
    two_rhs = project_to_range(np.stack([b, 2 * b], axis=1), labels, n_floating)
    np.testing.assert_allclose(two_rhs[:, 1], 2 * projected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": 5}, TypeError, "shape"),
        ({"shape": (2, 2, 2, 2)}, ValueError, "shape"),
        ({"shape": (3, 0)}, ValueError, "shape"),
        ({"shape": (3, 3), "solid": np.zeros((3, 4), bool)}, ValueError, "solid"),
        ({"shape": (3, 3), "solid": np.zeros((3, 3))}, TypeError, "solid"),
        ({"shape": (3, 3), "boundary": "periodic"}, ValueError, "boundary"),
    ],
)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        poisson_matrix(**kwargs)
