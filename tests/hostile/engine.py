"""Probes: how they are derived from recipes, run, and classified.

A probe is a small call with one attacked argument, described by a
:class:`Probe` (entry point, category, name, attacked argument) that the
parent sends to a worker. ``run_probe`` returns ``(outcome, message)``
with outcome one of

* ``ok``: the call did what it should (a valid result, or a clear error
  raised by sparsesolve that names the attacked argument);
* ``crash``: the worker died (segfault, abort), the watchdog fired (hang),
  or an exception came from inside NumPy/SciPy/numba/scikit-learn internals
  (the traceback's last frame is not sparsesolve's own code nor a
  scikit-learn validation helper), or is of a type no validation raises
  (``IndexError``, ``ZeroDivisionError``, ``LinAlgError``, numba's typing
  errors, NumPy's own allocation ``MemoryError``...);
* ``silent``: a wrong answer without an error: NaN/inf in the output,
  invalid input accepted, an imaginary part dropped, a mutated input, a
  result that differs from the reference call (scaled, reordered, pickled,
  threaded...), or a missing ``ConvergenceWarning``;
* ``unnamed``: a clean error raised by sparsesolve whose message does not
  name the attacked argument.

An error raised by scikit-learn's input validation (``check_array``,
``validate_data``, ``validate_params``) on behalf of sparsesolve is a clean
error. For the one data argument of an estimator method its messages
("Expected 2D array, got 1D array instead", "Found array with 0 sample(s)",
"could not convert string to float") leave no doubt which argument is meant
and count as naming it; elsewhere the message must name the argument.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import pickle
import re
import threading
import traceback
import warnings
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np
import scipy.sparse as sp

OUTCOMES = ("ok", "crash", "silent", "unnamed")
# A probe of an entry point whose optional dependency is not installed (its
# documented ImportError is all it can do) is "unavailable": reported, not
# counted as a failure.

# Inputs that must be refused, and inputs that may be accepted (then the
# output must be finite, and equal the reference where one is given).
REJECT = ("nan", "inf", "empty", "ndim+1", "ndim-1", "object-str")
ACCEPT = (
    "object-num", "bool", "int", "float16", "float32", "complex", "sparse",
    "fortran", "readonly", "dataframe", "list", "zeros",
)
SCALES = (1e-300, 1e-150, 1e150, 1e300)
# Categories whose result must equal the float64, C-ordered, writable call.
EQUAL_TO_BASELINE = ("object-num", "fortran", "readonly", "dataframe", "list")
# Estimator method categories (fit on clean data, attack the method input).
METHOD_ONLY = ("n_features-1", "n_features+1")

CLEAN_TYPES = (ValueError, TypeError, MemoryError, NotImplementedError,
               OSError, AttributeError, KeyError, ImportError)
_INTERNAL_MODULES = ("numpy", "scipy", "numba", "llvmlite", "pandas")
# Messages NumPy/SciPy/Python give for errors of the calling code, not of a
# deliberate check, even when the last Python frame is sparsesolve's.
_INTERNAL_MESSAGES = re.compile(
    "|".join([
        r"operands could not be broadcast", r"could not convert string to",
        r"setting an array element", r"zero-size array to reduction",
        r"shapes .* not aligned", r"matmul: ", r"is out of bounds for axis",
        r"invalid literal for", r"cannot reshape array", r"has no len\(\)",
        r"unhashable type", r"must be real number, not",
        r"not supported between instances", r"only integer scalar arrays",
        r"can't multiply sequence", r"Cannot cast (ufunc|array)", r"ufunc '",
        r"object has no attribute", r"unsupported operand type",
        r"object is not subscriptable", r"object is not iterable",
        r"argument of type", r"tuple index out of range",
        r"list index out of range", r"too many indices",
        r"buffer source array is read-only", r"array must not contain infs",
        r"destination is read-only", r"output array is read-only",
        r"division by zero", r"math domain error", r"takes \d+ positional",
        r"unexpected keyword", r"missing \d+ required",
        r"cannot be interpreted as an integer", r"range\(\) arg",
        r"doesn't define __round__", r"cannot convert float NaN to integer",
        r"vars\(\) argument", r"object is not callable",
        r"matrix contains invalid numeric entries",
    ])
)

_SPARSESOLVE_DIR = None


def _sparsesolve_dir():
    global _SPARSESOLVE_DIR
    if _SPARSESOLVE_DIR is None:
        import sparsesolve

        _SPARSESOLVE_DIR = os.path.dirname(os.path.abspath(sparsesolve.__file__))
    return _SPARSESOLVE_DIR


_VALIDATION_FILES = (
    os.path.join("sklearn", "utils", "validation.py"),
    os.path.join("sklearn", "utils", "_param_validation.py"),
    os.path.join("sklearn", "utils", "multiclass.py"),
    os.path.join("sklearn", "base.py"),
)


# --------------------------------------------------------------- recipes


@dataclass
class Arg:
    """An array argument of a recipe and how it may be attacked.

    Parameters
    ----------
    allow : set of str or "all"
        Categories of ``REJECT`` that are valid input for this argument (they
        are then probed as "may accept").
    skip : dict
        ``{category: reason}`` of categories that make no sense here.
    scale : int, "labels", tuple or None
        How the output scales when this argument alone is multiplied by
        ``s``: ``k`` means ``out(s x) = s**k out(x)``; "labels" a partition
        that does not change; a tuple gives one law per output array; None
        means no law (the output must only stay finite).
    sparse_equal : bool
        Whether the sparse (or densified) input must give the same result.
    list_of : bool
        The argument is a list of arrays; the attack hits its last element.
    only : tuple or None
        Probe only these categories.
    """

    allow: object = ()
    skip: dict = field(default_factory=dict)
    scale: object = None
    sparse_equal: bool = True
    list_of: bool = False
    only: tuple | None = None
    aliases: tuple = ()


@dataclass
class Extra:
    """A hand-written probe: keyword overrides and the expected behaviour."""

    name: str
    arg: str
    override: object  # dict, or callable(kwargs/data) -> None that edits in place
    expect: str = "reject"  # or "accept"
    category: str = "special"
    # Estimators: "fit" (fit alone must refuse it) or "all" (fit, then every
    # method: the attacked input is a method's).
    phase: str = "fit"


@dataclass
class Fn:
    """Recipe of a public function (or a class used through one method)."""

    entry: str
    call: object
    kwargs: object  # callable() -> dict of a small valid call
    arrays: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # name -> kind (see HYPER)
    objects: tuple = ()  # non-array arguments to hand a wrong type
    post: object = None  # result -> output to check
    joint_scale: object = None  # law when every float array is scaled
    extra: tuple = ()
    nan_out_ok: bool = False
    complex_real_ok: str = ""  # reason when a real output is right
    max_iter: dict = field(default_factory=dict)  # param -> {tol param: value}
    threads: bool = True
    rtol: float = 1e-6
    record: bool = False  # a plain container: baseline and pickle only
    requires: tuple = ()  # optional modules the entry point needs
    # (kwargs, output) -> None, or why the output is wrong: an independent
    # check of accepted calls (a solver's residual, for instance).
    verify: object = None


@dataclass
class Est:
    """Recipe of an estimator: data, construction, the methods to probe."""

    entry: str
    make: object  # callable(data, **params) -> estimator
    data: object  # callable() -> dict of arrays
    fit: tuple  # keys of data passed to fit, positionally
    methods: dict  # method -> tuple of data keys
    xlike: tuple = ()  # data keys transformed together with fit's first arg
    fit_arg: Arg = field(default_factory=Arg)
    method_args: dict = field(default_factory=dict)  # method -> Arg
    ctor_arrays: dict = field(default_factory=dict)  # param -> (data key, Arg)
    fit_scale: dict = field(default_factory=dict)  # method -> law
    params: dict = field(default_factory=dict)  # overrides of the kind table
    skip_params: tuple = ()
    labels: tuple = ()  # methods whose output is a partition
    map_methods: tuple = ()
    max_iter: dict = field(default_factory=dict)
    hard_data: object = None  # data for the max_iter probes
    extra: tuple = ()
    complex_real_ok: str = ""
    real_methods: tuple = ("score",)  # real output whatever the input
    verify: object = None  # (data, {method: output}) -> None or why it is wrong
    requires: tuple = ()
    rtol: float = 1e-6
    fit_kwargs: dict = field(default_factory=dict)


# Kinds of scalar hyperparameters: which values must be refused.
#   size  : positive integer that sets an allocation size (0, -1, NaN
#           refused; 10**6 must give a clear error or a finite result, never
#           an attempt to allocate it)
#   count : positive integer (0, -1, NaN refused)
#   posint: positive integer (0, -1, NaN refused)
#   pos   : positive real (0, -1, NaN refused)
#   nonneg: non-negative real (-1, NaN refused; 0 may be accepted)
#   real  : any real (NaN refused; 0 and -1 may be accepted)
#   njobs : like scikit-learn's n_jobs (0 and NaN refused, -1 accepted)
#   choice: a string option ("bogus" refused)
HYPER = {
    "size": (("0", 0, "reject"), ("-1", -1, "reject"), ("nan", np.nan, "reject"),
             ("str", "abc", "reject"), ("huge", 10**6, "accept")),
    "count": (("0", 0, "reject"), ("-1", -1, "reject"), ("nan", np.nan, "reject"),
              ("str", "abc", "reject")),
    "posint": (("0", 0, "reject"), ("-1", -1, "reject"), ("nan", np.nan, "reject"),
               ("str", "abc", "reject")),
    "pos": (("0", 0.0, "reject"), ("-1", -1.0, "reject"), ("nan", np.nan, "reject"),
            ("str", "abc", "reject")),
    "nonneg": (("0", 0.0, "accept"), ("-1", -1.0, "reject"), ("nan", np.nan, "reject"),
               ("str", "abc", "reject")),
    "real": (("0", 0.0, "accept"), ("-1", -1.0, "accept"), ("nan", np.nan, "reject"),
             ("str", "abc", "reject")),
    "njobs": (("0", 0, "reject"), ("-1", -1, "accept"), ("nan", np.nan, "reject"),
              ("str", "abc", "reject")),
    "choice": (("bogus", "bogus", "reject"),),
}

# Default kinds of estimator hyperparameters, by name (recipes override).
KIND_BY_NAME = {
    **dict.fromkeys(
        ["n_components", "n_clusters", "rank", "n_endmembers", "n_neighbors",
         "sketch_size", "channels", "n_splits"], "size"),
    **dict.fromkeys(["batch_size", "n_init", "n_orthogonal"], "count"),
    **dict.fromkeys(
        ["max_iter", "max_inner_iter", "transform_max_iter",
         "max_no_improvement", "cg_steps", "smoother_degree"], "posint"),
    **dict.fromkeys(["tol", "inner_tol", "transform_tol", "alpha",
                     "laplacian_weight"], "nonneg"),
    **dict.fromkeys(["learning_rate", "confidence", "guidance_sharpness"], "pos"),
    "n_jobs": "njobs",
}
NEVER_ATTACKED = {"random_state", "verbose", "copy", "warm_start"}


@dataclass(frozen=True)
class Probe:
    pid: str
    entry: str
    category: str
    name: str
    arg: str


# ------------------------------------------------------------ transforms


def _dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def transform(x, category, s=None):
    """Return ``x`` attacked by ``category`` (a new object; ``x`` unchanged)."""
    if sp.issparse(x):
        return _transform_sparse(x, category, s)
    x = np.array(x, copy=True)
    if category in ("nan", "inf"):
        y = x.astype(np.result_type(x.dtype, np.float64))
        if y.size:
            y.flat[y.size // 2] = np.nan if category == "nan" else np.inf
        return y
    if category == "empty":
        return x[:0] if x.ndim else np.zeros(0)
    if category == "ndim+1":
        return x[None]
    if category == "ndim-1":
        return x[0] if x.ndim else x
    if category == "n_features-1":
        return x[:, :-1]
    if category == "n_features+1":
        return np.hstack([x, x[:, :1]])
    if category == "object-str":
        return np.full(x.shape, "a", dtype=object)
    if category == "object-num":
        return x.astype(object)
    if category == "bool":
        return x > np.median(x) if x.size else x.astype(bool)
    if category == "int":
        return np.rint(x).astype(np.int64)
    if category in ("float16", "float32"):
        return x.astype(category)
    if category == "complex":
        imag = np.roll(x, 1) if x.size else x
        return x + 0.5j * (imag + 1.0)
    if category == "sparse":
        return sp.csr_array(np.atleast_2d(x)) if x.ndim <= 2 else x
    if category == "fortran":
        return np.asfortranarray(x)
    if category == "readonly":
        x.flags.writeable = False
        return x
    if category == "dataframe":
        import pandas as pd

        return pd.DataFrame(x) if x.ndim == 2 else pd.Series(x)
    if category == "list":
        return x.tolist()
    if category == "zeros":
        return np.zeros_like(x)
    if category == "scale":
        return s * x
    raise KeyError(category)


def _transform_sparse(x, category, s):
    x = x.copy()
    if category in ("nan", "inf"):
        x = x.astype(np.float64)
        x.data[len(x.data) // 2] = np.nan if category == "nan" else np.inf
        return x
    if category == "empty":
        return type(x)((0, 0))
    if category in ("ndim+1", "ndim-1", "list", "dataframe", "object-str",
                    "object-num", "n_features-1", "n_features+1"):
        dense = transform(x.toarray(), category, s)
        return dense
    if category == "bool":
        return x.astype(bool)
    if category == "int":
        x.data = np.rint(x.data)
        return x.astype(np.int64)
    if category in ("float16", "float32"):
        return x.astype(category)
    if category == "complex":
        return x.astype(complex) + 0.5j * x.astype(complex)
    if category == "sparse":  # the attack is densification here
        return x.toarray()
    if category == "fortran":
        return x.tocsc()
    if category == "readonly":
        for part in ("data", "indices", "indptr"):
            getattr(x, part).flags.writeable = False
        return x
    if category == "zeros":
        x.data[:] = 0
        return x
    if category == "scale":
        return s * x
    raise KeyError(category)


HYPOTHESIS_EXAMPLES = 3
_DRAWN = {}


def hypothesis_arrays(shape):
    """Finite float64 arrays of ``shape`` drawn by Hypothesis, reproducibly.

    ``derandomize=True`` and a fixed example count keep the suite
    deterministic and bounded; the draws mix magnitudes from subnormal to
    1e6 and exact zeros, which fixed test data rarely has.
    """
    if shape not in _DRAWN:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import strategies as st
        from hypothesis.extra.numpy import arrays

        drawn = []
        elements = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False,
                             allow_infinity=False, allow_subnormal=True)

        @settings(derandomize=True, max_examples=HYPOTHESIS_EXAMPLES * 3,
                  database=None, phases=[Phase.generate], deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(arrays(np.float64, shape, elements=elements))
        def collect(a):
            drawn.append(a)

        collect()
        # All-zero draws repeat the "zeros" probe; keep the others.
        drawn = [a for a in drawn if a.any()][::2][:HYPOTHESIS_EXAMPLES]
        _DRAWN[shape] = drawn or [np.ones(shape)]
    return _DRAWN[shape]


def _apply(value, spec, category, s=None):
    if category == "hypothesis":
        drawn = hypothesis_arrays(np.shape(value))
        return drawn[int(s) % len(drawn)].copy()
    if spec.list_of:
        value = list(value)
        value[-1] = transform(value[-1], category, s)
        return value
    return transform(value, category, s)


# --------------------------------------------------------------- outputs


def flatten(out):
    """Every array of a result, as NumPy arrays, in a stable order."""
    if out is None or isinstance(out, (str, bytes, type)):
        return []
    if isinstance(out, np.ndarray):
        return [out]
    if sp.issparse(out):
        return [out.toarray()]
    if isinstance(out, (bool, int, float, complex, np.number, np.bool_)):
        return [np.asarray(out)]
    if isinstance(out, dict):
        return [a for key in sorted(out, key=str) for a in flatten(out[key])]
    if isinstance(out, (list, tuple)):
        return [a for item in out for a in flatten(item)]
    if is_dataclass(out):
        return [a for f in fields(out) for a in flatten(getattr(out, f.name))]
    if hasattr(out, "to_numpy"):
        return [np.asarray(out.to_numpy())]
    if hasattr(out, "__array__"):
        return [np.asarray(out)]
    if hasattr(out, "__dict__") and type(out).__module__.startswith("sklearn"):
        return [a for key in sorted(vars(out)) for a in flatten(vars(out)[key])]
    return []


def _numeric(a):
    return a.dtype.kind in "biufc"


def nonfinite(arrays):
    for a in arrays:
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            return True
        if a.dtype == object:
            try:
                if not np.all(np.isfinite(a.astype(complex))):
                    return True
            except (TypeError, ValueError):
                pass
    return False


def _same_partition(a, b):
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape:
        return False
    pairs = {}
    back = {}
    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        if pairs.setdefault(u, v) != v or back.setdefault(v, u) != u:
            return False
    return True


def _as_number(a):
    if a.dtype == object:
        for kind in (np.float64, np.complex128):
            try:
                return a.astype(kind)
            except (TypeError, ValueError):
                pass
    return a


def differ(got, ref, rtol, law=0, s=1.0):
    """Why ``got`` is not ``s**law * ref`` (None when it is)."""
    if len(got) != len(ref):
        return f"{len(got)} output arrays instead of {len(ref)}"
    laws = law if isinstance(law, tuple) else (law,) * len(ref)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        k = laws[i] if i < len(laws) else 0
        if k is None:
            continue
        if g.shape != r.shape:
            return f"output {i} has shape {g.shape}, reference {r.shape}"
        if k == "labels":
            if not _same_partition(g, r):
                return f"output {i}: another partition"
            continue
        g, r = _as_number(g), _as_number(r)
        if not (_numeric(g) and _numeric(r)):
            if g.dtype == object or r.dtype == object:
                if not np.array_equal(g.astype(str), r.astype(str)):
                    return f"output {i} differs"
            elif not np.array_equal(g, r):
                return f"output {i} differs"
            continue
        if r.dtype.kind in "biu" and g.dtype.kind in "biu" and k == 0:
            if not np.array_equal(g, r):
                return f"output {i} (integers) differs"
            continue
        with np.errstate(all="ignore"):
            g = g.astype(np.result_type(g.dtype, np.float64))
            if k != 0:
                g = g * (float(s) ** -k)
            r = r.astype(np.result_type(r.dtype, np.float64))
            err = np.linalg.norm((g - r).ravel())
            size = np.linalg.norm(r.ravel())
        if not np.isfinite(err) or err > rtol * size + 1e-300 * (size == 0) + (
            rtol * 1e-12 if size == 0 else 0
        ):
            return f"output {i} off by {err / size if size else err:.3g} (relative)"
    return None


# -------------------------------------------------------- classification


def _origin(exc):
    """Who raised: "sparsesolve", "validation" (scikit-learn's input
    validation, called by sparsesolve) or "internal"; and where."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "internal", "?"
    last = frames[-1]
    where = f"{os.path.basename(last.filename)}:{last.lineno}"
    paths = [os.path.abspath(f.filename) for f in frames]
    own = _sparsesolve_dir() + os.sep
    if paths[-1].startswith(own):
        return "sparsesolve", where
    validation = [i for i, p in enumerate(paths)
                  if any(p.endswith(v) for v in _VALIDATION_FILES)]
    # check_array's own conversion (np.asarray of strings, SciPy refusing a
    # dtype) counts as validation: the error comes out of the validation
    # call, not out of sparsesolve's algorithm.
    if validation and not any(p.startswith(own) for p in paths[validation[-1]:]):
        return "validation", where
    return "internal", where


def _names(message, names):
    return any(
        re.search(r"(?<![A-Za-z0-9_])" + re.escape(str(n)) + r"(?![A-Za-z0-9_])",
                  message)
        for n in names if n
    )


def classify_exception(exc, names, single_array=False):
    """``(outcome, message)`` for an exception raised by a probed call."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    origin, where = _origin(exc)
    kind = type(exc)
    label = f"{kind.__name__}: {message}"[:300]
    if issubclass(kind, FileNotFoundError):
        # The standard error for a missing path, which it names.
        return ("ok" if _names(str(exc), names) else "unnamed"), label
    clean = (
        issubclass(kind, CLEAN_TYPES)
        and kind.__module__.split(".")[0] not in _INTERNAL_MODULES
        and origin != "internal"
        and not (origin == "sparsesolve" and _INTERNAL_MESSAGES.search(str(exc)))
    )
    if not clean:
        return "crash", f"{label} [raised at {where}]"
    if _names(str(exc), names):
        return "ok", label
    if single_array and origin == "validation":
        # scikit-learn's check_array on the one array argument of an
        # estimator method: "Expected 2D array, got 1D array instead" or
        # "Found array with 0 sample(s)" leaves no doubt which argument.
        return "ok", label
    return "unnamed", label


# ---------------------------------------------------------------- probes


def _entry_objects():
    """Every public entry point: ``{qualified name: object}``."""
    import importlib

    from sparsesolve.utils import all_estimators

    found = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            canonical = f"{module_name}.{name}"
            found.setdefault(id(obj), (canonical, obj))
    for name, cls in all_estimators():
        found.setdefault(id(cls), (f"{cls.__module__}.{name}", cls))
    return {name: obj for name, obj in found.values()}


PUBLIC_MODULES = (
    "sparsesolve", "sparsesolve.poisson", "sparsesolve.unmixing",
    "sparsesolve.coding", "sparsesolve.kronecker", "sparsesolve.completion",
    "sparsesolve.clustering", "sparsesolve.datasets", "sparsesolve.distributed",
    "sparsesolve.utils",
)


def discover():
    """``(entry points, missing)``: public names and those with no recipe.

    An entry point is covered when a recipe's ``entry`` is its name or starts
    with ``name.`` (a class probed through its methods).
    """
    from .recipes import RECIPES

    entries = _entry_objects()
    short = {}
    for qualname, obj in entries.items():
        short[qualname] = obj.__name__ if hasattr(obj, "__name__") else qualname
    names = {r.entry.split(".")[0] for r in RECIPES.values()}
    missing = sorted(q for q, s in short.items() if s not in names)
    return sorted(short.values()), missing


def _probe(entry, category, name, arg):
    return Probe(f"{entry}|{name}", entry, category, name, arg)


def build_probes():
    """Every probe of every recipe, in a deterministic order."""
    from .recipes import RECIPES

    probes = []
    for key in sorted(RECIPES):
        recipe = RECIPES[key]
        if isinstance(recipe, Est):
            probes.extend(_est_probes(recipe))
        else:
            probes.extend(_fn_probes(recipe))
    return probes


def _arg_categories(spec, value):
    first = value[-1] if spec.list_of else value
    cats = list(REJECT) + list(ACCEPT)
    if sp.issparse(first):
        # SciPy's sparse formats hold no strings and no float16.
        cats.remove("object-str")
        cats.remove("float16")
    elif np.ndim(first) > 2:
        cats.remove("dataframe")
        cats.remove("sparse")
    cats += [f"scale:{s:g}" for s in SCALES]
    if spec.only is not None:
        cats = [c for c in cats if c.split(":")[0] in spec.only]
    return [c for c in cats if c.split(":")[0] not in spec.skip]


def _hypothesis_target(value, spec):
    return (not spec.list_of and isinstance(value, np.ndarray)
            and value.dtype.kind == "f" and value.size > 0
            and (spec.only is None or "hypothesis" in spec.only)
            and "hypothesis" not in spec.skip)


def _fn_probes(r):
    e = r.entry
    out = [_probe(e, "baseline", "baseline + no mutation", "")]
    out.append(_probe(e, "pickle", "pickle round trip", ""))
    if r.record:
        return out
    kwargs = r.kwargs()
    for arg, spec in r.arrays.items():
        for cat in _arg_categories(spec, kwargs[arg]):
            out.append(_probe(e, cat.split(":")[0], f"{arg}: {cat}", arg))
        if _hypothesis_target(kwargs[arg], spec):
            for i in range(HYPOTHESIS_EXAMPLES):
                out.append(_probe(e, "hypothesis", f"{arg}: hypothesis:{i}", arg))
    if r.joint_scale is not None:
        for s in SCALES:
            out.append(_probe(e, "scale", f"all arrays: scale:{s:g}", ""))
    for p, kind in r.params.items():
        for label, _, _ in HYPER[kind]:
            out.append(_probe(e, "hyper", f"{p}={label}", p))
    for obj in r.objects:
        out.append(_probe(e, "type", f"{obj}: wrong type", obj))
    for x in r.extra:
        out.append(_probe(e, x.category, x.name, x.arg))
    if r.threads:
        out.append(_probe(e, "threads", "4 threads == serial", ""))
    if "random_state" in kwargs:
        out.append(_probe(e, "determinism", "random_state: same result twice",
                          "random_state"))
    for p in r.max_iter:
        out.append(_probe(e, "max_iter", f"{p}=1 warns", p))
    return out


def est_params(r):
    """``{param: kind}`` attacked for an estimator recipe."""
    est = r.make(r.data())
    kinds = {}
    for p, default in est.get_params(deep=False).items():
        if p in NEVER_ATTACKED or p in r.skip_params or p in r.ctor_arrays:
            continue
        kind = r.params.get(p, KIND_BY_NAME.get(p))
        if kind is None:
            if isinstance(default, str):
                kind = "choice"
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                kind = "real"
        if kind:
            kinds[p] = kind
    return kinds


def _est_probes(r):
    e = r.entry
    out = [_probe(e, "baseline", "baseline + no mutation", "")]
    data = r.data()
    fit_name = _fit_arg_name(r)
    for cat in _arg_categories(r.fit_arg, data[r.fit[0]]):
        out.append(_probe(e, cat.split(":")[0], f"fit {fit_name}: {cat}", fit_name))
    if _hypothesis_target(data[r.fit[0]], r.fit_arg):
        for i in range(HYPOTHESIS_EXAMPLES):
            out.append(_probe(e, "hypothesis", f"fit {fit_name}: hypothesis:{i}",
                              fit_name))
    for method, keys in r.methods.items():
        spec = r.method_args.get(method, Arg())
        arg = _method_arg_name(r, method)
        cats = [c for c in _arg_categories(spec, data[keys[0]])
                if not c.startswith("scale")]
        if data[keys[0]].ndim == 2 and "n_features" not in spec.skip:
            cats += list(METHOD_ONLY)
        for cat in cats:
            category = "n_features" if cat.startswith("n_features") else cat
            out.append(_probe(e, category, f"{method} {arg}: {cat}", arg))
    for p, (key, spec) in r.ctor_arrays.items():
        for cat in _arg_categories(spec, data[key]):
            out.append(_probe(e, cat.split(":")[0], f"param {p}: {cat}", p))
    for p, kind in est_params(r).items():
        for label, _, _ in HYPER[kind]:
            out.append(_probe(e, "hyper", f"{p}={label}", p))
    for x in r.extra:
        out.append(_probe(e, x.category, x.name, x.arg))
    out.append(_probe(e, "pickle", "pickle round trip", ""))
    out.append(_probe(e, "threads", "4 threads == serial", ""))
    out.append(_probe(e, "mutation", "methods leave the fitted model unchanged", ""))
    if "random_state" in r.make(data).get_params():
        out.append(_probe(e, "determinism", "clone/refit with random_state",
                          "random_state"))
    for p in r.max_iter:
        out.append(_probe(e, "max_iter", f"{p}=1 warns", p))
    # score is not per row: map_rows must refuse it (or the results differ).
    for method in (*r.map_methods, *(("score",) if "score" in r.methods else ())):
        out.append(_probe(e, "map_rows", f"map_rows(.., {method!r})", method))
    return out


def _method_arg_name(r, method):
    import inspect

    cls = type(r.make(r.data()))
    params = [p for p in inspect.signature(getattr(cls, method)).parameters
              if p != "self"]
    return params[0] if params else "X"


def _fit_arg_name(r):
    return _method_arg_name(r, "fit")


# --------------------------------------------------------------- running


class _Checked(Exception):
    """Carries an outcome decided inside a probe."""

    def __init__(self, outcome, message):
        super().__init__(message)
        self.outcome = outcome
        self.message = message


_CACHE = {}
# Repeated calls (unpickled, cloned, refitted) must agree to rounding: a
# parallel reduction may add its partial sums in another order.
_REPEAT_RTOL = 1e-10


def run_probe(probe):
    """Run one probe in this process: ``(outcome, message)``."""
    from .recipes import RECIPES

    recipe = RECIPES[probe.entry]
    needs = tuple(recipe.requires) + (("dask",) if probe.category == "map_rows" else ())
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        return "unavailable", f"needs {', '.join(missing)} (not installed)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _CACHE["warnings"] = caught
        try:
            if isinstance(recipe, Est):
                return _run_est(recipe, probe)
            return _run_fn(recipe, probe)
        except _Checked as checked:
            return checked.outcome, checked.message


def _expect_accept(out, recipe, names, ref=None, law=0, s=1.0, compare=True,
                   complex_in=False, kwargs=None):
    arrays = flatten(out)
    if not getattr(recipe, "nan_out_ok", False) and nonfinite(arrays):
        return "silent", "NaN/inf in the output, no error"
    if complex_in and not recipe.complex_real_ok and not any(
        a.dtype.kind == "c" for a in arrays
    ):
        return "silent", "complex input accepted, output real (imaginary part dropped)"
    if compare and ref is not None:
        why = differ(arrays, ref, recipe.rtol, law, s)
        if why:
            return "silent", f"differs from the reference call: {why}"
    if kwargs is not None:
        return _verify(recipe, kwargs, out)
    return "ok", "accepted"


def _verify(recipe, inputs, out):
    """The recipe's independent check of an accepted call, if it has one."""
    if getattr(recipe, "verify", None) is None:
        return "ok", "accepted"
    why = _reference(lambda: recipe.verify(inputs, out))
    if not why:
        return "ok", "accepted"
    from sklearn.exceptions import ConvergenceWarning

    if any(issubclass(w.category, ConvergenceWarning)
           for w in _CACHE.get("warnings", ())):
        return "ok", f"not converged, and a ConvergenceWarning said so ({why})"
    return "silent", f"wrong result: {why}"


def _outcome(call, names, expect, check=None, single_array=False):
    """Run ``call``; classify a raise, or pass the result to ``check``."""
    try:
        out = call()
    except _Checked:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure is classified
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return classify_exception(exc, names, single_array)
    if expect == "reject":
        return "silent", "invalid input accepted (no error)"
    return check(out) if check else ("ok", "accepted")


def _fn_call(r, kwargs):
    out = r.call(**kwargs)
    return r.post(out) if r.post else out


def _snapshot(value):
    if sp.issparse(value):
        return ("sparse", value.copy())
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, list) and value and all(
            isinstance(v, np.ndarray) for v in value):
        return ("list", [v.copy() for v in value])
    return None


def _mutated(before, after):
    kind, old = before
    if kind == "sparse":
        return (old != after).nnz > 0 if old.shape == after.shape else True
    if kind == "list":
        return len(old) != len(after) or any(
            not np.array_equal(a, b, equal_nan=True)
            for a, b in zip(old, after, strict=True))
    return not np.array_equal(old, after, equal_nan=old.dtype.kind in "fc")


def _fn_baseline(r):
    key = ("fn", r.entry)
    if key not in _CACHE:
        _CACHE[key] = flatten(_fn_call(r, r.kwargs()))
    return _CACHE[key]


def _run_fn(r, probe):
    kind, name = probe.category, probe.name
    names = (probe.arg,) + tuple(r.arrays.get(probe.arg, Arg()).aliases)
    extra = next((x for x in r.extra if x.name == name), None)
    if extra is not None:
        kwargs = r.kwargs()
        if callable(extra.override):
            extra.override(kwargs)
        else:
            kwargs.update(extra.override)
            # A message may name the offending value (a path) instead.
            names += tuple(v for v in extra.override.values() if isinstance(v, str))
        return _outcome(lambda: _fn_call(r, kwargs), names, extra.expect,
                        lambda out: _expect_accept(out, r, names, kwargs=kwargs))
    if kind == "baseline":
        kwargs = r.kwargs()
        snaps = {k: _snapshot(v) for k, v in kwargs.items()}

        def check(out):
            for k, snap in snaps.items():
                if snap is not None and _mutated(snap, kwargs[k]):
                    return "silent", f"input {k} mutated"
            return _expect_accept(out, r, names, kwargs=kwargs)

        return _outcome(lambda: _fn_call(r, kwargs), names, "accept", check)
    if kind == "pickle":
        def call():
            obj = r.call(**r.kwargs())
            again = pickle.loads(pickle.dumps(obj))
            a = flatten(r.post(obj) if r.post else obj)
            b = flatten(r.post(again) if r.post else again)
            why = differ(b, a, _REPEAT_RTOL)
            if why:
                raise _Checked("silent", f"unpickled result differs: {why}")
            return obj
        return _outcome(call, names, "accept")
    if kind == "threads":
        return _threads(lambda: flatten(_fn_call(r, r.kwargs())), r.rtol, names)
    if kind == "determinism":
        def call():
            a = flatten(_fn_call(r, r.kwargs()))
            b = flatten(_fn_call(r, r.kwargs()))
            why = differ(b, a, 0.0)
            if why:
                raise _Checked("silent", f"second call differs: {why}")
        return _outcome(call, names, "accept")
    if kind == "max_iter":
        kwargs = r.kwargs()
        kwargs[probe.arg] = 1
        kwargs.update(r.max_iter[probe.arg])
        return _convergence(lambda: _fn_call(r, kwargs), probe.arg)
    if kind == "hyper":
        p, label = name.split("=", 1)
        value, expect = next((v, x) for lab, v, x in HYPER[r.params[p]] if lab == label)
        kwargs = r.kwargs()
        kwargs[p] = value
        return _outcome(lambda: _fn_call(r, kwargs), names, expect,
                        lambda out: _expect_accept(out, r, names, kwargs=kwargs))
    if kind == "type":
        kwargs = r.kwargs()
        kwargs[probe.arg] = 3.5  # neither an estimator, a class nor a path
        return _outcome(lambda: _fn_call(r, kwargs), names, "reject")
    # An array attack.
    arg, cat = name.split(": ", 1)
    s = float(cat.split(":")[1]) if cat.startswith("scale:") else None
    cat = cat.split(":")[0]
    kwargs = r.kwargs()
    if arg == "all arrays":
        for k, v in kwargs.items():
            if (isinstance(v, np.ndarray) or sp.issparse(v)) and v.dtype.kind == "f":
                kwargs[k] = s * v
        return _outcome(lambda: _fn_call(r, kwargs), names, "accept",
                        lambda out: _expect_accept(out, r, names, _fn_baseline(r),
                                                   r.joint_scale, s, kwargs=kwargs))
    if cat == "hypothesis":
        s = float(name.rsplit(":", 1)[1])
    spec = r.arrays[arg]
    expect = ("accept" if cat in ACCEPT + ("scale", "hypothesis") or spec.allow == "all"
              or cat in spec.allow else "reject")
    kwargs[arg] = _apply(kwargs[arg], spec, cat, s)
    ref, law, compare = None, 0, False
    if cat in EQUAL_TO_BASELINE or (cat == "sparse" and spec.sparse_equal):
        ref, compare = _fn_baseline(r), True
    elif cat == "scale" and spec.scale is not None:
        ref, law, compare = _fn_baseline(r), spec.scale, True
    elif cat == "int":
        base = r.kwargs()
        base[arg] = _apply(base[arg], spec, "int", None)
        base[arg] = ([*base[arg][:-1], base[arg][-1].astype(float)] if spec.list_of
                     else base[arg].astype(float))
        ref = _reference(lambda: flatten(_fn_call(r, base)))
        compare = ref is not None
    snaps = {k: _snapshot(v) for k, v in kwargs.items()}

    def check(out):
        # The attacked input in its new form (Fortran, int, scaled...) must
        # not be modified either.
        for k, snap in snaps.items():
            if snap is not None and _mutated(snap, kwargs[k]):
                return "silent", f"input {k} mutated"
        return _expect_accept(out, r, names, ref, law, s or 1.0, compare,
                              cat == "complex", kwargs)

    return _outcome(lambda: _fn_call(r, kwargs), names, expect, check)


def _reference(compute):
    """A reference result, or None when the reference call itself fails (the
    probe then only checks that the output is finite)."""
    try:
        return compute()
    except Exception:  # noqa: BLE001
        return None


def _threads(compute, rtol, names):
    def call():
        serial = compute()
        results = [None] * 4
        errors = []

        def work(i):
            try:
                results[i] = compute()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        for got in results:
            why = differ(got, serial, rtol)
            if why:
                raise _Checked("silent",
                               f"a thread's result differs from serial: {why}")
    return _outcome(call, names, "accept")


def _convergence(call, param):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except BaseException as exc:  # noqa: BLE001
            return classify_exception(exc, (param,))
    found = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if not found:
        return "silent", f"no ConvergenceWarning at {param}=1"
    if not any(_names(str(w.message), (param,)) for w in found):
        return "unnamed", (f"ConvergenceWarning does not name {param}: "
                           f"{found[0].message}")
    return "ok", "warned"


# ------------------------------------------------------------ estimators


def _est_run(r, data, params=None, est=None, fit=True):
    """Fit (unless ``est`` is given fitted) and call every method."""
    if est is None:
        est = r.make(data, **(params or {}))
    if fit:
        est.fit(*[data[k] for k in r.fit], **r.fit_kwargs)
    return est, {m: getattr(est, m)(*[data[k] for k in keys])
                 for m, keys in r.methods.items()}


def _fit_only(r, data, params=None):
    """Invalid data or parameters must be refused by ``fit`` itself, as in
    scikit-learn (an error from a later method does not count)."""
    est = r.make(data, **(params or {}))
    return est.fit(*[data[k] for k in r.fit], **r.fit_kwargs)


def _est_baseline(r):
    key = ("est", r.entry)
    if key not in _CACHE:
        est, outs = _est_run(r, r.data())
        _CACHE[key] = (est, {m: flatten(o) for m, o in outs.items()})
    return _CACHE[key]


def _run_est(r, probe):
    kind, name = probe.category, probe.name
    # scikit-learn's validation calls the data argument of every method "X".
    first = name.split(" ")[0]
    data_probe = first in ("fit", *r.methods)
    names = (probe.arg, "X") if data_probe else (probe.arg,)
    if first in r.method_args:
        names += tuple(r.method_args[first].aliases)

    def check_all(outs, ref=None, laws=None, s=1.0, complex_in=False, est=None,
                  data=None):
        for m, o in outs.items():
            law = (laws or {}).get(m, 0)
            res = _expect_accept(o, r, names, None if ref is None else ref[m],
                                 law, s, ref is not None and law is not None)
            if res[0] != "ok":
                return res[0], f"{m}: {res[1]}"
        if complex_in and not r.complex_real_ok:
            # Complex data accepted: the fitted model or an output that is
            # not real by nature (not a score, a label...) must be complex.
            kept = [a for m, o in outs.items() if m not in r.real_methods
                    for a in flatten(o)]
            if est is not None:
                # Fitted attributes only: the parameters hold the input.
                kept += [v for k, v in vars(est).items()
                         if k.endswith("_") and isinstance(v, np.ndarray)]
            if not any(a.dtype.kind == "c" for a in kept):
                return "silent", ("complex input accepted, model and outputs real "
                                  "(imaginary part dropped)")
        if data is not None:
            return _verify(r, data, outs)
        return "ok", "accepted"

    extra = next((x for x in r.extra if x.name == name), None)
    if extra is not None:
        data = r.data()
        params = {}
        extra.override(data, params)
        if extra.expect == "reject" and extra.phase == "fit":
            return _outcome(lambda: _fit_only(r, data, params), names, "reject")
        return _outcome(lambda: _est_run(r, data, params), names, extra.expect,
                        lambda res: check_all(res[1], est=res[0], data=data))
    if kind == "baseline":
        data = r.data()
        snaps = {k: _snapshot(v) for k, v in data.items()}

        def call():
            return _est_run(r, data)[1]

        def check(outs):
            for k, snap in snaps.items():
                if snap is not None and _mutated(snap, data[k]):
                    return "silent", f"input {k} mutated"
            return check_all(outs, data=data)
        return _outcome(call, names, "accept", check)
    if kind == "pickle":
        def call():
            est, outs = _est_baseline(r)
            again = pickle.loads(pickle.dumps(est))
            _, outs2 = _est_run(r, r.data(), est=again, fit=False)
            for m in outs:
                why = differ(flatten(outs2[m]), outs[m], _REPEAT_RTOL)
                if why:
                    raise _Checked("silent", f"{m} after unpickling differs: {why}")
        return _outcome(call, names, "accept")
    if kind == "mutation":
        def call():
            est, _ = _est_run(r, r.data())
            before = {k: copy.deepcopy(v) for k, v in vars(est).items()}
            _est_run(r, r.data(), est=est, fit=False)
            after = vars(est)
            if set(after) != set(before):
                raise _Checked("silent", "a method added or removed attributes: "
                               f"{sorted(set(after) ^ set(before))}")
            for k, v in before.items():
                if isinstance(v, np.ndarray) and not np.array_equal(
                        v, after[k], equal_nan=v.dtype.kind in "fc"):
                    raise _Checked("silent", f"a method changed the fitted {k}")
        return _outcome(call, names, "accept")
    if kind == "threads":
        def compute():
            est, _ = _est_baseline(r)
            _, outs = _est_run(r, r.data(), est=est, fit=False)
            return [a for m in sorted(outs) for a in flatten(outs[m])]
        return _threads(compute, r.rtol, names)
    if kind == "determinism":
        from sklearn.base import clone

        def call():
            data = r.data()
            est, a = _est_run(r, data, {"random_state": 0})
            _, b = _est_run(r, data, est=clone(est))
            _, c = _est_run(r, data, est=est)  # refit the same instance
            for m in a:
                for other, label in ((b, "clone"), (c, "refit")):
                    why = differ(flatten(other[m]), flatten(a[m]),
                                 _REPEAT_RTOL)
                    if why:
                        raise _Checked("silent", f"{label} {m} differs: {why}")
        return _outcome(call, names, "accept")
    if kind == "max_iter":
        data = r.hard_data() if r.hard_data else r.data()
        params = {probe.arg: 1, **r.max_iter[probe.arg]}
        return _convergence(lambda: _est_run(r, data, params), probe.arg)
    if kind == "map_rows":
        return _map_rows(r, probe.arg)
    if kind == "hyper":
        p, label = name.split("=", 1)
        value, expect = next((v, x) for lab, v, x in HYPER[est_params(r)[p]]
                             if lab == label)
        if expect == "reject":
            return _outcome(lambda: _fit_only(r, r.data(), {p: value}), names,
                            "reject")
        data = r.data()
        return _outcome(lambda: _est_run(r, data, {p: value})[1], names,
                        expect, lambda outs: check_all(outs, data=data))
    where, cat = name.split(": ", 1)
    s = float(cat.split(":")[1]) if cat.startswith("scale:") else None
    cat = cat.split(":")[0]
    data = r.data()
    if where.startswith("param "):
        p = where.split(" ", 1)[1]
        key, spec = r.ctor_arrays[p]
        expect = ("accept" if cat in ACCEPT or cat == "scale" or cat in spec.allow
                  else "reject")
        data[key] = _apply(data[key], spec, cat, s)
        if expect == "reject":
            return _outcome(lambda: _fit_only(r, data), names, "reject")
        return _outcome(lambda: _est_run(r, data), names, expect,
                        lambda res: check_all(res[1], complex_in=cat == "complex",
                                              est=res[0], data=data))
    if where.startswith("fit "):
        spec = r.fit_arg
        if cat == "hypothesis":
            s = float(name.rsplit(":", 1)[1])
        expect = ("accept" if cat in ACCEPT + ("scale", "hypothesis")
                  or cat in spec.allow else "reject")
        consistent = expect == "accept"
        keys = (r.fit[0],) + (tuple(r.xlike) if consistent else ())
        for k in keys:
            data[k] = _apply(data[k], spec, cat, s)
        if expect == "reject":
            return _outcome(lambda: _fit_only(r, data), names, "reject",
                            single_array=True)
        ref, laws = None, None
        if cat in EQUAL_TO_BASELINE or (cat == "sparse" and spec.sparse_equal):
            ref = _est_baseline(r)[1]
        elif cat == "scale" and r.fit_scale:
            ref, laws = _est_baseline(r)[1], r.fit_scale
            laws = {m: laws.get(m) for m in r.methods}
        elif cat == "int":
            base = r.data()
            for k in keys:
                base[k] = transform(base[k], "int").astype(float)
            ref = _reference(lambda: {m: flatten(o)
                                      for m, o in _est_run(r, base)[1].items()})
        return _outcome(lambda: _est_run(r, data), names, "accept",
                        lambda res: check_all(res[1], ref, laws, s or 1.0,
                                              cat == "complex", res[0], data),
                        single_array=True)
    # A method input attack on a fitted estimator.
    method, arg = where.split(" ", 1)
    keys = r.methods[method]
    spec = r.method_args.get(method, Arg())
    expect = ("accept" if cat in ACCEPT or cat in spec.allow else "reject")
    est, base = _est_baseline(r)
    est = copy.deepcopy(est)
    value = _apply(data[keys[0]], spec, cat)
    args = [value] + [data[k] for k in keys[1:]]
    ref = None
    if cat in EQUAL_TO_BASELINE or (cat == "sparse" and spec.sparse_equal):
        ref = base[method]
    elif cat == "int":
        ref = _reference(lambda: flatten(getattr(est, method)(
            transform(data[keys[0]], "int").astype(float), *args[1:])))
    complex_in = cat == "complex" and method not in r.real_methods
    return _outcome(lambda: getattr(est, method)(*args), names, expect,
                    lambda out: _expect_accept(out, r, names, ref, 0, 1.0,
                                               ref is not None, complex_in),
                    single_array=method != "predict_entries")


def _map_rows(r, method):
    from sparsesolve.distributed import map_rows

    def call():
        import dask.array as da

        est, _ = _est_baseline(r)
        data = r.data()
        keys = r.methods[method]
        X = data[keys[0]]
        # The in-memory call with X alone (score may need y: then map_rows
        # must refuse too).
        expected = _reference(lambda: flatten(getattr(est, method)(X)))
        lazy = map_rows(est, da.from_array(X, chunks=(max(1, len(X) // 3), -1)),
                        method)
        got = flatten(np.asarray(lazy.compute()))
        if expected is None:
            raise _Checked("silent", f"map_rows accepted {method}, which fails "
                           "in memory on the same X")
        why = differ(got, expected, r.rtol)
        if why:
            raise _Checked("silent", f"map_rows result differs from in-memory: {why}")
    return _outcome(call, (method, type(r.make(r.data())).__name__, "row"), "accept")
