"""The direction CNN's forward pass: numba kernel, matrix-product path, torch."""

import numpy as np
import pytest
from scipy import ndimage

from sparsesolve.poisson import DirectionNetwork
from sparsesolve.poisson._kernels import conv3x3x3
from sparsesolve.poisson._network import N_INNER_CONVS, default_model_path


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


@pytest.mark.parametrize("shape", [(8, 8, 8), (6, 10, 4), (5, 7, 3)])
def test_kernel_and_matmul_engines_agree(shape):
    net = DirectionNetwork.random(channels=4, random_state=0)
    r = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    direct = net(r)
    matmul = net(r, engine="matmul")
    assert direct.shape == shape
    assert direct.dtype == np.float32
    # float32 sums in a different order: agree to a few ulps of the scale.
    np.testing.assert_allclose(direct, matmul, rtol=0,
                               atol=1e-5 * np.abs(matmul).max())


def test_matmul_engine_is_array_api_generic():
    # The CuPy path: the same code on array-api-strict arrays.
    array_api_strict = pytest.importorskip("array_api_strict")
    net = DirectionNetwork.random(channels=3, random_state=2)
    r = np.random.default_rng(3).standard_normal((4, 6, 4)).astype(np.float32)
    strict = net(array_api_strict.asarray(r))
    np.testing.assert_allclose(np.asarray(strict), net(r), rtol=0,
                               atol=1e-5 * np.abs(net(r)).max())


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
