"""The direction CNN's forward pass: numba kernel, matrix-product path, torch."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from sparsesolve.poisson import DirectionNetwork
from sparsesolve.poisson._conv_kernels import (
    avgpool2_into,
    conv3x3x3,
    conv3x3x3_into,
    pack_conv_weights,
    project_channels,
    upsample2_add_into,
)
from sparsesolve.poisson._network import (
    N_INNER_CONVS,
    _conv3d,
    _stack_taps,
    default_model_path,
)


def _reference_conv(x, weight, bias):
    """Zero-padded 3x3x3 cross-correlation in float64, one tap at a time."""
    nz, ny, nx, _ = x.shape
    padded = np.pad(x.astype(np.float64), ((1, 1), (1, 1), (1, 1), (0, 0)))
    out = np.broadcast_to(bias.astype(np.float64), (nz, ny, nx, bias.size)).copy()
    for dz in range(3):
        for dy in range(3):
            for dx in range(3):
                window = padded[dz:dz + nz, dy:dy + ny, dx:dx + nx]
                out += window @ weight[:, :, dz, dy, dx].T.astype(np.float64)
    return out


def _conv_case(seed, shape, c_in, c_out):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*shape, c_in)).astype(np.float32)
    weight = (rng.standard_normal((c_out, c_in, 3, 3, 3))
              / np.sqrt(27 * c_in)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    padded = np.zeros(tuple(n + 2 for n in shape) + (c_in,), np.float32)
    padded[1:-1, 1:-1, 1:-1] = x
    return x, weight, bias, padded


# Channel counts: the shipped 16 -> 16, the input layer 1 -> 16, fewer than one
# 16-lane group, a partial second group and three groups. x lengths exercise
# every register-block width (16, 8, 4 and single positions; 6/4/2/1 on AVX2).
_CONV_CASES = [
    ((5, 4, 31), 16, 16),
    ((3, 5, 16), 1, 16),
    ((4, 3, 7), 3, 5),
    ((2, 3, 21), 16, 20),
    ((3, 2, 13), 8, 33),
    ((1, 1, 1), 2, 3),
    ((6, 7, 5), 16, 16),
]


@pytest.mark.parametrize(("shape", "c_in", "c_out"), _CONV_CASES)
@pytest.mark.parametrize("apply_relu", [False, True])
def test_conv_kernel_matches_numpy_reference(shape, c_in, c_out, apply_relu):
    x, weight, bias, padded = _conv_case(0, shape, c_in, c_out)
    packed, packed_bias = pack_conv_weights(weight, bias)
    out = np.full((*shape, c_out), np.nan, np.float32)
    conv3x3x3_into(padded, packed, packed_bias, out, apply_relu=apply_relu)
    expected = _reference_conv(x, weight, bias)
    if apply_relu:
        expected = np.maximum(expected, 0)
    # float32 sums of 27 * C_in products of unit-scale terms: a few ulps of
    # the largest output, far below any indexing mistake (O(1) errors).
    np.testing.assert_allclose(out, expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize(("shape", "c_in", "c_out"), _CONV_CASES[:5])
@pytest.mark.parametrize("apply_relu", [False, True])
def test_conv_kernel_matches_matmul_engine(shape, c_in, c_out, apply_relu):
    x, weight, bias, padded = _conv_case(1, shape, c_in, c_out)
    packed, packed_bias = pack_conv_weights(weight, bias)
    out = np.empty((*shape, c_out), np.float32)
    conv3x3x3_into(padded, packed, packed_bias, out, apply_relu=apply_relu)
    expected = _conv3d(np, x, _stack_taps(weight), bias)
    if apply_relu:
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(out, expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("nx", [15, 17])
def test_conv_driver_with_avx2_block_widths(nx):
    # Hosts without AVX-512 use blocks of 6, 4, 2 and 1 x positions: compile
    # that configuration of the same driver here and check it too.
    import types

    import numba

    from sparsesolve.poisson import _conv_kernels

    namespace = dict(_conv_kernels._conv_rows.__globals__)
    namespace.update(_WIDE=6, _MIDDLE=4, _NARROW=2, _ONE=1)
    for name, width in (("_BLOCK_WIDE", 6), ("_BLOCK_MIDDLE", 4),
                        ("_BLOCK_NARROW", 2), ("_BLOCK_ONE", 1)):
        namespace[name] = _conv_kernels._register_block(width)
    driver = numba.njit(types.FunctionType(_conv_kernels._conv_rows.__code__,
                                           namespace))
    x, weight, bias, padded = _conv_case(7, (2, 3, nx), 16, 20)
    packed, packed_bias = pack_conv_weights(weight, bias)
    out = np.full((2, 3, nx, 20), np.nan, np.float32)
    driver(padded, packed, packed_bias, out, out, 0, True, False)
    expected = np.maximum(_reference_conv(x, weight, bias), 0)
    np.testing.assert_allclose(out, expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


def test_conv_kernel_bordered_output_and_in_place_residual():
    # The network writes each result into the interior of the next layer's
    # zero-bordered input, and adds residuals in place.
    x, weight, bias, padded = _conv_case(2, (4, 6, 19), 16, 16)
    packed, packed_bias = pack_conv_weights(weight, bias)
    rng = np.random.default_rng(3)
    residual = np.zeros((6, 8, 21, 16), np.float32)
    residual[1:-1, 1:-1, 1:-1] = rng.standard_normal((4, 6, 19, 16))
    before = residual.copy()
    conv3x3x3_into(padded, packed, packed_bias, residual, apply_relu=True,
                   residual=residual)
    expected = (np.maximum(_reference_conv(x, weight, bias), 0)
                + before[1:-1, 1:-1, 1:-1])
    np.testing.assert_allclose(residual[1:-1, 1:-1, 1:-1], expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())
    border = np.ones(residual.shape, bool)
    border[1:-1, 1:-1, 1:-1] = False
    assert np.all(residual[border] == 0)


def test_conv_kernel_rejects_bad_arrays():
    _, weight, bias, padded = _conv_case(0, (4, 4, 4), 2, 3)
    packed, packed_bias = pack_conv_weights(weight, bias)
    out = np.empty((4, 4, 4, 3), np.float32)
    with pytest.raises(TypeError, match="padded"):
        conv3x3x3_into(padded.astype(np.float64), packed, packed_bias, out)
    with pytest.raises(ValueError, match="out must have shape"):
        conv3x3x3_into(padded, packed, packed_bias,
                       np.empty((3, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="pack_conv_weights"):
        conv3x3x3_into(padded, np.ascontiguousarray(packed[:, :1]), packed_bias, out)


def test_pooling_upsampling_and_projection_kernels():
    rng = np.random.default_rng(4)
    fine = np.zeros((8, 6, 10, 3), np.float32)
    fine[1:-1, 1:-1, 1:-1] = rng.standard_normal((6, 4, 8, 3))
    coarse = np.zeros((5, 4, 6, 3), np.float32)
    avgpool2_into(fine, coarse)
    blocks = fine[1:-1, 1:-1, 1:-1].reshape(3, 2, 2, 2, 4, 2, 3)
    np.testing.assert_allclose(coarse[1:-1, 1:-1, 1:-1],
                               blocks.mean(axis=(1, 3, 5)), rtol=1e-6)
    before = fine.copy()
    upsample2_add_into(coarse, fine)
    up = coarse[1:-1, 1:-1, 1:-1]
    up = np.repeat(np.repeat(np.repeat(up, 2, 0), 2, 1), 2, 2)
    np.testing.assert_allclose(fine[1:-1, 1:-1, 1:-1],
                               before[1:-1, 1:-1, 1:-1] + up, rtol=1e-6)
    out = np.empty((5, 3, 7), np.float32)
    weight = rng.standard_normal(3).astype(np.float32)
    project_channels(fine, weight, 0.5, 1, out)
    np.testing.assert_allclose(out, fine[1:6, 1:4, 1:8] @ weight + 0.5,
                               rtol=1e-5, atol=1e-6)


def test_conv_kernel_matches_scipy_correlate():
    rng = np.random.default_rng(0)
    c_in, c_out, shape = 3, 2, (5, 6, 4)
    x = rng.standard_normal((*shape, c_in)).astype(np.float32)
    weight = rng.standard_normal((c_out, c_in, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    padded = np.zeros((7, 8, 6, c_in), np.float32)
    padded[1:-1, 1:-1, 1:-1] = x
    out = np.empty((*shape, c_out), np.float32)
    conv3x3x3(padded, np.ascontiguousarray(weight.transpose(2, 3, 4, 1, 0)),
              bias, out, False)
    for o in range(c_out):
        expected = bias[o] + sum(
            ndimage.correlate(x[..., i].astype(np.float64), weight[o, i].astype(
                np.float64), mode="constant", cval=0.0)
            for i in range(c_in))
        np.testing.assert_allclose(out[..., o], expected, rtol=1e-5, atol=1e-5)
    relu = np.empty_like(out)
    conv3x3x3(padded, np.ascontiguousarray(weight.transpose(2, 3, 4, 1, 0)),
              bias, relu, True)
    np.testing.assert_array_equal(relu, np.maximum(out, 0))


@pytest.mark.parametrize("channels", [4, 16, 19])
@pytest.mark.parametrize("shape", [(8, 8, 8), (6, 10, 4), (5, 7, 3), (2, 2, 34)])
def test_kernel_and_matmul_engines_agree(shape, channels):
    net = DirectionNetwork.random(channels=channels, random_state=0)
    r = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    r_before = r.copy()
    direct = net(r)
    matmul = net(r, engine="matmul")
    assert direct.shape == shape
    assert direct.dtype == np.float32
    np.testing.assert_array_equal(r, r_before)
    np.testing.assert_array_equal(net(r, engine="numba"), direct)
    # float32 sums in a different order: agree to a few ulps of the scale.
    np.testing.assert_allclose(direct, matmul, rtol=0,
                               atol=1e-5 * np.abs(matmul).max())


def test_matmul_engine_is_array_api_generic(foreign_namespace):
    # The CuPy path (engine="auto" runs the matrix products off NumPy):
    # array-api-strict catches NumPy-only calls, CuPy runs it on the GPU.
    ns = foreign_namespace
    net = DirectionNetwork.random(channels=3, random_state=2)
    r = np.random.default_rng(3).standard_normal((4, 6, 4)).astype(np.float32)
    out = net(ns.asarray(r))
    assert ns.is_own(out)
    expected = net(r)
    np.testing.assert_allclose(ns.to_numpy(out), expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


def _paper_forward(weights, r):
    """The 64-model of Kaneda et al. (2023, sec. 3.3) written out by hand.

    Independent of the layer plan the engines share, so a wrong plan (a
    missing skip, a swapped layer) fails here even though every engine
    would agree with every other.
    """
    def conv(name, x, relu=True):
        out = _reference_conv(x, weights[f"{name}.weight"], weights[f"{name}.bias"])
        return np.maximum(out, 0) if relu else out

    def pool(x):
        nz, ny, nx, c = x.shape
        return x.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2, c).mean(axis=(1, 3, 5))

    def upsample(x):
        return x.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)

    x = conv("conv_in", r[..., None], relu=False)
    la = conv("convs.0", x)
    lb = conv("convs.1", la)
    la = conv("convs.2", lb) + la
    lb = conv("convs.3", la)
    a = pool(lb)
    for layer in (4, 6, 8):
        a = conv(f"convs.{layer + 1}", conv(f"convs.{layer}", a)) + a
    u = upsample(a) + lb
    for layer in (10, 12):
        u = conv(f"convs.{layer + 1}", conv(f"convs.{layer}", u)) + u
    projection = weights["conv_out.weight"][0, :, 0, 0, 0].astype(np.float64)
    return u @ projection + weights["conv_out.bias"][0]


@pytest.mark.parametrize("engine", ["numba", "matmul"])
def test_engines_follow_the_published_architecture(engine):
    net = DirectionNetwork.random(channels=3, random_state=4)
    r = np.random.default_rng(7).standard_normal((6, 4, 8)).astype(np.float32)
    expected = _paper_forward(net.weights, r.astype(np.float64))
    # float32 engines against a float64 reference through 16 layers.
    np.testing.assert_allclose(net(r, engine=engine), expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("shape", [(8, 8, 8), (4, 6, 10)])
def test_forward_matches_torch(shape):
    torch = pytest.importorskip("torch")
    from sparsesolve.poisson._training import _torch_network

    net = DirectionNetwork.load(default_model_path())
    model = _torch_network(torch, net.channels)
    model.load_state_dict({k: torch.tensor(v) for k, v in net.weights.items()})
    r = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.tensor(r)[None, None]).numpy()[0, 0]
    scale = np.abs(expected).max()
    np.testing.assert_allclose(net(r), expected, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(net(r, engine="matmul"), expected, rtol=0,
                               atol=1e-5 * scale)


@pytest.mark.parametrize("shape", [(16, 16, 16), (9, 12, 7)])
def test_torch_and_numba_engines_agree(shape):
    pytest.importorskip("torch")
    net = DirectionNetwork.load(default_model_path())
    r = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    r_before = r.copy()
    numba_out = net(r)
    torch_out = net(r, engine="torch")
    assert isinstance(torch_out, np.ndarray)
    assert torch_out.dtype == np.float32
    assert torch_out.shape == shape
    np.testing.assert_array_equal(r, r_before)
    # oneDNN and the numba kernel sum 432-term float32 dot products in
    # different orders through 16 layers: 1e-5 relative is float32 rounding
    # (about 1e-7 measured), a wrong layer would be O(1).
    error = np.linalg.norm(torch_out - numba_out) / np.linalg.norm(numba_out)
    assert error < 1e-5
    # The module compiled for this shape is reused, and set_engine selects it.
    net.set_engine("torch")
    np.testing.assert_array_equal(net(r), torch_out)
    assert len(net._torch_modules) == 1
    # Caches (TorchScript modules, a lock) are not pickled.
    again = pickle.loads(pickle.dumps(net))
    assert again.engine == "torch"
    np.testing.assert_allclose(again(r), torch_out, rtol=0,
                               atol=1e-6 * np.abs(torch_out).max())


def test_torch_engine_without_torch_names_the_extra(monkeypatch):
    # A None entry in sys.modules makes `import torch` raise ImportError.
    monkeypatch.setitem(sys.modules, "torch", None)
    net = DirectionNetwork.random(channels=2, random_state=0)
    with pytest.raises(ImportError, match=r"sparsesolve\[train\]"):
        net(np.ones((4, 4, 4), np.float32), engine="torch")
    # Solving needs no deep-learning framework: auto stays on numba.
    assert net(np.ones((4, 4, 4), np.float32)).shape == (4, 4, 4)


def test_numba_forward_does_not_import_torch():
    # Solving needs no deep-learning framework: importing the package and
    # running the default engine must not load torch.
    code = (
        "import sys, numpy as np; "
        "from sparsesolve.poisson import DirectionNetwork; "
        "net = DirectionNetwork.random(channels=2, random_state=0); "
        "net(np.ones((4, 4, 4), np.float32)); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_torch_engine_on_cupy_matches_numba():
    cupy = pytest.importorskip("cupy")
    pytest.importorskip("torch")
    net = DirectionNetwork.load(default_model_path())
    r = np.random.default_rng(6).standard_normal((16, 16, 12)).astype(np.float32)
    out = net(cupy.asarray(r), engine="torch")
    assert isinstance(out, cupy.ndarray)
    expected = net(r)
    # cuDNN may use TF32 or other reduced-precision algorithms by default.
    error = np.linalg.norm(cupy.asnumpy(out) - expected) / np.linalg.norm(expected)
    assert error < 1e-2


def test_shipped_model_is_small_and_complete(tmp_path):
    path = default_model_path()
    assert path.stat().st_size < 1_000_000
    net = DirectionNetwork.load(path)
    # 1->16 input conv, 14 inner 16->16 convs, 16->1 output conv.
    assert net.n_parameters == 16 * 27 + 16 + N_INNER_CONVS * (16 * 16 * 27 + 16) + 17
    # Trained on a 16^3 box, then fine-tuned on a 32^3 box (user guide).
    assert net.metadata["stage1_grid_shape"] == "16x16x16"
    assert net.metadata["grid_shape"] == "32x32x32"
    net.save(tmp_path / "copy.npz")
    again = DirectionNetwork.load(tmp_path / "copy.npz")
    assert again.metadata == net.metadata
    for name, value in net.weights.items():
        np.testing.assert_array_equal(again.weights[name], value)


def test_bad_weights_and_input():
    weights = DirectionNetwork.random(channels=2, random_state=0).weights
    del weights["convs.3.bias"]
    with pytest.raises(ValueError, match=r"convs\.3\.bias"):
        DirectionNetwork(weights)
    net = DirectionNetwork.random(channels=2, random_state=0)
    with pytest.raises(ValueError, match="3D grid"):
        net(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="engine"):
        net(np.zeros((4, 4, 4), np.float32), engine="fft")
    with pytest.raises(ValueError, match="engine"):
        net.set_engine("cudnn")
    with pytest.raises(ValueError, match="engine"):
        DirectionNetwork(net.weights, engine="fft")
    array_api_strict = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="engine='numba'"):
        net(array_api_strict.zeros((4, 4, 4)), engine="numba")
