"""Forward pass of the search-direction CNN, written once for NumPy and CuPy.

The network (Kaneda et al. 2023, section 3.3 of the paper; "64-model") maps a
residual on an ``(nz, ny, nx)`` grid to a search direction on the same grid::

    x  = conv_in(r)                                  1 -> C channels, linear
    la = relu(c0(x)); lb = relu(c1(la))
    la = relu(c2(lb)) + la; lb = relu(c3(la))        full resolution
    a  = avgpool2(lb)
    3x: t = relu(c(a)); a = relu(c(t)) + a           half resolution
    u  = upsample2(a) + lb
    2x: t = relu(c(u)); u = relu(c(t)) + u           full resolution
    q  = conv_out(u)                                 1x1x1, C -> 1

Every ``c`` is a 3x3x3 convolution with zero padding and a bias. A 3x3x3
convolution is one matrix product of the 27 stacked taps, shape
(27 * C_out, C_in), with the zero-padded, flattened volume, followed by 27
shifted additions: a shift of the grid by ``(dz, dy, dx)`` is a fixed offset
in the flat index, so BLAS (or cuBLAS through CuPy) does the arithmetic with
no im2col copy. Long volumes are processed in chunks to bound memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._backend import get_namespace, is_numpy_namespace, to_namespace
from ._kernels import conv3x3x3

__all__ = ["DirectionNetwork", "N_INNER_CONVS", "default_model_path"]

# 4 convolutions at full resolution, 6 at half resolution, 4 after the skip.
N_INNER_CONVS = 14
_N_FULL, _N_HALF = 4, 6


def default_model_path():
    """Path of the model that ships with the package (16^3, then 32^3 box)."""
    return Path(__file__).resolve().parent / "default_model.npz"


# Output positions handled per matrix product: bounds the temporary
# (chunk, 27 * C_out) block to about 60 MB at C = 16 in float32.
_CHUNK = 32768


def _stack_taps(weight):
    """(C_out, C_in, 3, 3, 3) -> contiguous (C_in, 27 * C_out), tap-major."""
    c_in = weight.shape[1]
    return np.ascontiguousarray(
        np.transpose(weight, (1, 2, 3, 4, 0)).reshape(c_in, -1))


def _conv3d(xp, x, taps, bias):
    """3x3x3 (or 1x1x1) cross-correlation with zero padding, like torch.

    ``x`` is channel-last, shape (nz, ny, nx, C_in); ``taps`` is the weight
    from :func:`_stack_taps`, shape (C_in, 27 * C_out) (or (C_in, C_out) for
    a 1x1x1 convolution). Channel-last keeps every window of the flattened
    volume contiguous, which BLAS needs to run at full speed.
    """
    nz, ny, nx, c_in = x.shape
    if taps.shape[1] == bias.shape[0]:  # 1x1x1
        out = xp.reshape(x, (nz * ny * nx, c_in)) @ taps
        return xp.reshape(out + bias, (nz, ny, nx, taps.shape[1]))
    c_out = taps.shape[1] // 27
    pz, py, px = nz + 2, ny + 2, nx + 2
    padded = xp.zeros((pz, py, px, c_in), dtype=x.dtype)
    padded[1:-1, 1:-1, 1:-1, :] = x
    flat = xp.reshape(padded, (pz * py * px, c_in))
    # Output for padded flat positions [margin, total - margin), where the
    # largest tap offset is `margin`; pad positions get garbage, cropped below.
    margin = py * px + px + 1
    length = pz * py * px - 2 * margin
    offsets = [(kz - 1) * py * px + (ky - 1) * px + (kx - 1)
               for kz in range(3) for ky in range(3) for kx in range(3)]
    full = xp.zeros((pz * py * px, c_out), dtype=x.dtype)
    for first in range(0, length, _CHUNK):
        size = min(_CHUNK, length - first)
        # All 27 taps in one product over the window the chunk reads, then
        # each tap's block is added at its own shift.
        products = flat[first:first + size + 2 * margin, :] @ taps
        chunk = xp.zeros((size, c_out), dtype=x.dtype)
        for tap, offset in enumerate(offsets):
            start = margin + offset
            chunk = chunk + products[start:start + size,
                                     tap * c_out:(tap + 1) * c_out]
        full[margin + first:margin + first + size, :] = chunk
    full = xp.reshape(full, (pz, py, px, c_out))[1:-1, 1:-1, 1:-1, :]
    return full + bias


def _conv3d_cpu(x, taps, bias, apply_relu):
    """NumPy twin of :func:`_conv3d` through the numba direct kernel.

    ``taps`` has shape (3, 3, 3, C_in, C_out) here.
    """
    nz, ny, nx, c_in = x.shape
    padded = np.zeros((nz + 2, ny + 2, nx + 2, c_in), dtype=np.float32)
    padded[1:-1, 1:-1, 1:-1, :] = x
    out = np.empty((nz, ny, nx, taps.shape[4]), dtype=np.float32)
    conv3x3x3(padded, taps, bias, out, apply_relu)
    return out


def _relu(xp, x):
    return xp.maximum(x, xp.zeros((), dtype=x.dtype))


def _avgpool2(xp, x):
    nz, ny, nx, c = x.shape
    blocks = xp.reshape(x, (nz // 2, 2, ny // 2, 2, nx // 2, 2, c))
    return xp.mean(blocks, axis=(1, 3, 5))


def _upsample2(xp, x):
    nz, ny, nx, c = x.shape
    expanded = xp.broadcast_to(
        xp.reshape(x, (nz, 1, ny, 1, nx, 1, c)), (nz, 2, ny, 2, nx, 2, c)
    )
    return xp.reshape(expanded, (2 * nz, 2 * ny, 2 * nx, c))


class DirectionNetwork:
    """Weights of the direction CNN and its forward pass on NumPy or CuPy.

    Parameters
    ----------
    weights : dict of str to ndarray
        ``conv_in.weight`` (C, 1, 3, 3, 3), ``conv_in.bias`` (C,),
        ``convs.{i}.weight`` (C, C, 3, 3, 3) and ``convs.{i}.bias`` for
        ``i < 14``, ``conv_out.weight`` (1, C, 1, 1, 1), ``conv_out.bias``
        (1,): the ``state_dict`` names of the training module.
    metadata : dict, optional
        Free-form description (training grid, boundary, epochs...).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson._network import DirectionNetwork
    >>> net = DirectionNetwork.random(channels=2, random_state=0)
    >>> net(np.ones((4, 4, 4), dtype=np.float32)).shape
    (4, 4, 4)
    """

    def __init__(self, weights, metadata=None):
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.metadata = dict(metadata or {})
        self._check()
        self._device_weights = {}

    def _check(self):
        names = ["conv_in.weight", "conv_in.bias", "conv_out.weight", "conv_out.bias"]
        names += [f"convs.{i}.{p}" for i in range(N_INNER_CONVS)
                  for p in ("weight", "bias")]
        missing = [name for name in names if name not in self.weights]
        if missing:
            raise ValueError(f"model weights are missing {missing}.")
        channels = self.weights["conv_in.weight"].shape[0]
        if self.weights["conv_in.weight"].shape != (channels, 1, 3, 3, 3):
            raise ValueError("conv_in.weight must have shape (C, 1, 3, 3, 3).")
        for i in range(N_INNER_CONVS):
            if self.weights[f"convs.{i}.weight"].shape != (channels, channels, 3, 3, 3):
                raise ValueError(
                    f"convs.{i}.weight must have shape ({channels}, {channels}, "
                    "3, 3, 3)."
                )
        self.channels = channels

    @classmethod
    def load(cls, path):
        """Read weights and metadata from an ``.npz`` written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file.

        Returns
        -------
        network : DirectionNetwork
            The loaded network.
        """
        with np.load(path, allow_pickle=False) as data:
            weights = {k: data[k] for k in data.files if not k.startswith("meta.")}
            metadata = {k[5:]: data[k].item() for k in data.files
                        if k.startswith("meta.")}
        return cls(weights, metadata)

    def save(self, path):
        """Write weights (float32) and scalar metadata to an ``.npz`` file.

        Parameters
        ----------
        path : str or os.PathLike
            Destination (compressed ``.npz``).
        """
        meta = {f"meta.{k}": np.asarray(v) for k, v in self.metadata.items()}
        np.savez_compressed(path, **self.weights, **meta)

    @classmethod
    def random(cls, channels=16, random_state=None):
        """A network with random (He-scaled) weights, for tests and examples.

        Parameters
        ----------
        channels : int, default=16
            Feature channels of every convolution.
        random_state : int, numpy.random.Generator or None, default=None
            Seed of the weights.

        Returns
        -------
        network : DirectionNetwork
            An untrained network.
        """
        rng = np.random.default_rng(random_state)

        def conv(c_out, c_in, k):
            scale = np.sqrt(2.0 / (c_in * k**3))
            return (rng.standard_normal((c_out, c_in, k, k, k)) * scale,
                    rng.standard_normal(c_out) * 0.01)

        weights = {}
        weights["conv_in.weight"], weights["conv_in.bias"] = conv(channels, 1, 3)
        for i in range(N_INNER_CONVS):
            weights[f"convs.{i}.weight"], weights[f"convs.{i}.bias"] = conv(
                channels, channels, 3)
        weights["conv_out.weight"], weights["conv_out.bias"] = conv(1, channels, 1)
        return cls(weights, {"origin": "random"})

    @property
    def n_parameters(self):
        """Number of trainable parameters."""
        return int(sum(w.size for w in self.weights.values()))

    def _weights_in(self, xp, like, use_kernel):
        """Weights laid out for one engine, moved to ``like``'s device once."""
        key = ("kernel:" if use_kernel else "matmul:") + xp.__name__
        if key not in self._device_weights:
            prepared = {}
            for name, value in self.weights.items():
                if value.ndim == 5 and value.shape[2] == 1:
                    value = np.ascontiguousarray(value[:, :, 0, 0, 0].T)
                elif value.ndim == 5 and use_kernel:
                    value = np.ascontiguousarray(np.transpose(value, (2, 3, 4, 1, 0)))
                elif value.ndim == 5:
                    value = _stack_taps(value)
                prepared[name] = to_namespace(value, xp, like=like)
            self._device_weights[key] = prepared
        return self._device_weights[key]

    def __call__(self, residual, engine="auto"):
        """Apply the network to one residual grid of shape (nz, ny, nx).

        Odd grid sizes are zero-padded to even ones for the pooling level and
        cropped back. Computation is float32; the result is float32.
        ``engine="auto"`` uses the numba direct-convolution kernel for NumPy
        input and matrix products for any other namespace (CuPy);
        ``engine="matmul"`` forces the matrix-product path (tests compare the
        two on NumPy).
        """
        xp = get_namespace(residual)
        if residual.ndim != 3:
            raise ValueError(
                f"the network takes a 3D grid; got an array of shape "
                f"{tuple(residual.shape)}."
            )
        if engine not in ("auto", "matmul"):
            raise ValueError(f"engine must be 'auto' or 'matmul'; got {engine!r}.")
        use_kernel = engine == "auto" and is_numpy_namespace(xp)
        w = self._weights_in(xp, residual, use_kernel)
        nz, ny, nx = residual.shape
        ez, ey, ex = nz + nz % 2, ny + ny % 2, nx + nx % 2
        x = xp.zeros((ez, ey, ex, 1), dtype=xp.float32)
        x[:nz, :ny, :nx, 0] = xp.astype(residual, xp.float32)

        def conv(i, inp, relu=True, name=None):
            name = name or f"convs.{i}"
            if use_kernel:
                return _conv3d_cpu(inp, w[f"{name}.weight"], w[f"{name}.bias"], relu)
            out = _conv3d(xp, inp, w[f"{name}.weight"], w[f"{name}.bias"])
            return _relu(xp, out) if relu else out

        x = conv(None, x, relu=False, name="conv_in")
        la = conv(0, x)
        lb = conv(1, la)
        la = conv(2, lb) + la
        lb = conv(3, la)
        a = _avgpool2(xp, lb)
        layer = _N_FULL
        for _ in range(_N_HALF // 2):
            t = conv(layer, a)
            a = conv(layer + 1, t) + a
            layer += 2
        u = _upsample2(xp, a) + lb
        while layer < N_INNER_CONVS:
            t = conv(layer, u)
            u = conv(layer + 1, t) + u
            layer += 2
        out = _conv3d(xp, u, w["conv_out.weight"], w["conv_out.bias"])
        return out[:nz, :ny, :nx, 0]
