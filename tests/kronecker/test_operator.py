"""KroneckerOperator against np.kron: products, adjoint (dot test), errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparsesolve.kronecker import KroneckerOperator


def _factors(rng, shapes, complex_values):
    factors = [rng.standard_normal(shape) for shape in shapes]
    if complex_values:
        factors = [f + 1j * rng.standard_normal(f.shape) for f in factors]
    return factors


def _dense(factors):
    dense = factors[0]
    for factor in factors[1:]:
        dense = np.kron(dense, factor)
    return dense


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4
    ),
    complex_values=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matvec_and_rmatvec_match_np_kron(shapes, complex_values, seed):
    rng = np.random.RandomState(seed)
    factors = _factors(rng, shapes, complex_values)
    op = KroneckerOperator(factors)
    dense = _dense(factors)
    assert op.shape == dense.shape
    x = rng.standard_normal(dense.shape[1])
    y = rng.standard_normal(dense.shape[0])
    # Tolerance: a few roundings per mode product on O(1) entries.
    assert_allclose(op.matvec(x), dense @ x, rtol=1e-12, atol=1e-12)
    assert_allclose(op.rmatvec(y), dense.conj().T @ y, rtol=1e-12, atol=1e-12)
    assert_allclose(op.todense(), dense, rtol=1e-14, atol=0)


@pytest.mark.parametrize("complex_values", [False, True])
def test_dot_test_adjoint(complex_values):
    # <A x, y> = <x, A^H y> for the matrix-free pair, in the PyLops style.
    rng = np.random.RandomState(0)
    op = KroneckerOperator(_factors(rng, [(3, 5), (4, 2), (2, 6)], complex_values))
    x = rng.standard_normal(op.shape[1]) + 1j * rng.standard_normal(op.shape[1])
    y = rng.standard_normal(op.shape[0]) + 1j * rng.standard_normal(op.shape[0])
    lhs = np.vdot(op @ x, y)
    rhs = np.vdot(x, op.H.matvec(y))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_matmat_columns_are_independent():
    rng = np.random.RandomState(1)
    factors = _factors(rng, [(2, 3), (3, 4)], False)
    op = KroneckerOperator(factors)
    X = rng.standard_normal((12, 5))
    assert_allclose(op.matmat(X), _dense(factors) @ X, rtol=1e-12)
    assert_allclose(op.rmatvec(rng.standard_normal((6, 2))).shape, (12, 2))


def test_operator_on_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.RandomState(2)
    factors = _factors(rng, [(2, 3), (3, 4)], True)
    x = rng.standard_normal(12)
    op = KroneckerOperator([xps.asarray(f) for f in factors])
    result = op.matvec(xps.asarray(x))
    assert isinstance(result, type(xps.asarray(1.0)))
    assert_allclose(np.asarray(result), _dense(factors) @ x, rtol=1e-12)


def test_operator_does_not_modify_inputs():
    rng = np.random.RandomState(3)
    factors = _factors(rng, [(2, 3), (3, 2)], False)
    copies = [f.copy() for f in factors]
    x = rng.standard_normal(6)
    x_copy = x.copy()
    KroneckerOperator(factors).matvec(x)
    assert all(np.array_equal(a, b) for a, b in zip(factors, copies, strict=True))
    assert np.array_equal(x, x_copy)


def test_operator_rejects_bad_factors_and_vectors():
    with pytest.raises(ValueError, match=r"factors\[1\] must be a 2-D array"):
        KroneckerOperator([np.ones((2, 2)), np.ones(3)])
    with pytest.raises(ValueError, match="NaN"):
        KroneckerOperator([np.array([[1.0, np.nan]])])
    with pytest.raises(TypeError, match="list or tuple"):
        KroneckerOperator(np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least one"):
        KroneckerOperator([])
    op = KroneckerOperator([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        op.matvec(np.ones(4))
