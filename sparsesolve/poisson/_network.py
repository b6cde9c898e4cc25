"""Forward pass of the search-direction CNN, written once for NumPy and CuPy.

The network (Kaneda et al. 2023, section 3.3 of the paper; "64-model") maps a
residual on an ``(nz, ny, nx)`` grid to a search direction on the same grid;
its layers are listed once, in :mod:`._architecture`, and every engine below
walks that list.

A 3x3x3 convolution is one matrix product of the 27 stacked taps, shape
(27 * C_out, C_in), with the zero-padded, flattened volume, followed by 27
shifted additions: a shift of the grid by ``(dz, dy, dx)`` is a fixed offset
in the flat index, so BLAS (or cuBLAS through CuPy) does the arithmetic with
no im2col copy. Long volumes are processed in chunks to bound memory.

Three engines run the same weights:

* ``"numba"`` (NumPy input; the default there): register-blocked direct
  convolutions (:mod:`._conv_kernels`) writing into zero-bordered buffers, with
  ReLU, the residual additions, pooling and upsampling fused, so no padding
  copy or temporary is made between layers;
* ``"matmul"`` (any array namespace; the default for CuPy): the matrix-product
  formulation above, written once against the array API;
* ``"torch"`` (needs PyTorch, the ``train`` extra): oneDNN on the CPU through a
  frozen TorchScript module per grid shape, cuDNN on CuPy arrays (shared with
  PyTorch through DLPack, no copy).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import array_api_compat
import numpy as np

from .._backend import (
    get_namespace,
    kernel_target,
    numba_thread_count,
    to_namespace,
)
from ._architecture import (
    INPUT,
    LAYER_PLAN,
    N_INNER_CONVS,
    Conv,
    Pool,
    Upsample,
    last_reads,
    weight_shapes,
)
from ._conv_kernels import (
    avgpool2_into,
    conv3x3x3_into,
    pack_conv_weights,
    project_channels,
    upsample2_add_into,
)

__all__ = ["DirectionNetwork", "N_INNER_CONVS", "default_model_path"]

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
    device = array_api_compat.device(x)
    pz, py, px = nz + 2, ny + 2, nx + 2
    padded = xp.zeros((pz, py, px, c_in), dtype=x.dtype, device=device)
    padded[1:-1, 1:-1, 1:-1, :] = x
    flat = xp.reshape(padded, (pz * py * px, c_in))
    # Output for padded flat positions [margin, total - margin), where the
    # largest tap offset is `margin`; pad positions get garbage, cropped below.
    margin = py * px + px + 1
    length = pz * py * px - 2 * margin
    offsets = [(kz - 1) * py * px + (ky - 1) * px + (kx - 1)
               for kz in range(3) for ky in range(3) for kx in range(3)]
    full = xp.zeros((pz * py * px, c_out), dtype=x.dtype, device=device)
    for first in range(0, length, _CHUNK):
        size = min(_CHUNK, length - first)
        # All 27 taps in one product over the window the chunk reads, then
        # each tap's block is added at its own shift.
        products = flat[first:first + size + 2 * margin, :] @ taps
        chunk = xp.zeros((size, c_out), dtype=x.dtype, device=device)
        for tap, offset in enumerate(offsets):
            start = margin + offset
            chunk = chunk + products[start:start + size,
                                     tap * c_out:(tap + 1) * c_out]
        full[margin + first:margin + first + size, :] = chunk
    full = xp.reshape(full, (pz, py, px, c_out))[1:-1, 1:-1, 1:-1, :]
    return full + bias


def _relu(xp, x):
    return xp.maximum(x, xp.zeros((), dtype=x.dtype,
                                  device=array_api_compat.device(x)))


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


# Largest input magnitude the float32 network accepts: far above the unit
# residuals it was trained on, far below the float32 overflow its layers
# would reach (products of weights and activations grow layer by layer).
_LARGEST_INPUT = 1e15


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
    engine : {"auto", "numba", "matmul", "torch"}, default="auto"
        Engine used when a call does not name one (see :meth:`__call__`);
        change it later with :meth:`set_engine`.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsesolve.poisson._network import DirectionNetwork
    >>> net = DirectionNetwork.random(channels=2, random_state=0)
    >>> net(np.ones((4, 4, 4), dtype=np.float32)).shape
    (4, 4, 4)
    """

    def __init__(self, weights, metadata=None, engine="auto"):
        if not hasattr(weights, "items"):
            raise TypeError(f"weights must be a mapping of names to arrays; got "
                            f"{type(weights).__name__}.")
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.metadata = dict(metadata or {})
        self._check()
        self.engine = _check_engine(engine)
        self._reset_caches()

    def _reset_caches(self):
        # Weights laid out per engine and device, and compiled torch modules
        # per grid shape: built on first use, never part of the model.
        self._device_weights = {}
        self._torch_modules = {}
        self._torch_lock = threading.Lock()

    def __getstate__(self):
        # Caches hold device arrays, a lock and TorchScript modules, none of
        # which pickle; they are rebuilt on first use.
        return {"weights": self.weights, "metadata": self.metadata,
                "engine": self.engine}

    def __setstate__(self, state):
        self.weights = state["weights"]
        self.metadata = state["metadata"]
        self.engine = state.get("engine", "auto")
        self.channels = self.weights["conv_in.weight"].shape[0]
        self._reset_caches()

    def set_engine(self, engine):
        """Choose the engine used by calls that do not name one.

        Parameters
        ----------
        engine : {"auto", "numba", "matmul", "torch"}
            See :meth:`__call__`.

        Returns
        -------
        self : DirectionNetwork
            The network itself, for chaining.

        Examples
        --------
        >>> net = DirectionNetwork.random(channels=2, random_state=0)
        >>> net.set_engine("matmul").engine
        'matmul'
        """
        self.engine = _check_engine(engine)
        return self

    def _check(self):
        if "conv_in.weight" not in self.weights:
            raise ValueError("model weights are missing ['conv_in.weight'].")
        channels = self.weights["conv_in.weight"].shape[0]
        expected = weight_shapes(channels)
        missing = [name for name in expected if name not in self.weights]
        if missing:
            raise ValueError(f"model weights are missing {missing}.")
        for name, shape in expected.items():
            if self.weights[name].shape != shape:
                raise ValueError(
                    f"{name} must have shape {shape} for {channels} channels; "
                    f"got {self.weights[name].shape}."
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
        from numbers import Integral

        from .._validation import check_allocation

        if not isinstance(channels, Integral) or isinstance(channels, bool) \
                or channels < 1:
            raise ValueError(f"channels must be a positive int; got {channels!r}.")
        shapes = weight_shapes(int(channels))
        # Float64 draws, then the float32 copy the network keeps.
        check_allocation(12.0 * sum(float(np.prod(s, dtype=float))
                                    for s in shapes.values()),
                         "channels", what=f"the weights of {channels} channels")
        rng = np.random.default_rng(random_state)

        weights = {}
        for name, shape in shapes.items():
            if name.endswith(".weight"):
                c_in, k = shape[1], shape[2]
                scale = np.sqrt(2.0 / (c_in * k**3))
                weights[name] = rng.standard_normal(shape) * scale
            else:
                weights[name] = rng.standard_normal(shape) * 0.01
        return cls(weights, {"origin": "random"})

    @property
    def n_parameters(self):
        """Number of trainable parameters."""
        return int(sum(w.size for w in self.weights.values()))

    def _weights_in(self, xp, like):
        """Weights of the matmul engine, moved to ``like``'s device once."""
        key = "matmul:" + xp.__name__
        if key not in self._device_weights:
            prepared = {}
            for name, value in self.weights.items():
                if value.ndim == 5 and value.shape[2] == 1:
                    value = np.ascontiguousarray(value[:, :, 0, 0, 0].T)
                elif value.ndim == 5:
                    value = _stack_taps(value)
                prepared[name] = to_namespace(value, xp, like=like)
            self._device_weights[key] = prepared
        return self._device_weights[key]

    def _packed_weights(self):
        """Weights of the numba engine (see :func:`pack_conv_weights`)."""
        if "numba" not in self._device_weights:
            packed = {}
            for step in LAYER_PLAN:
                if not isinstance(step, Conv):
                    continue
                weight = self.weights[f"{step.weight}.weight"]
                bias = self.weights[f"{step.weight}.bias"]
                if step.kernel_size == 1:
                    packed[step.weight] = (
                        np.ascontiguousarray(weight[0, :, 0, 0, 0]), float(bias[0]))
                else:
                    packed[step.weight] = pack_conv_weights(weight, bias)
            self._device_weights["numba"] = packed
        return self._device_weights["numba"]

    def __call__(self, residual, engine=None):
        """Apply the network to one residual grid of shape (nz, ny, nx).

        Odd grid sizes are zero-padded to even ones for the pooling level and
        cropped back. Computation is float32; the result is float32, in the
        namespace (and on the device) of ``residual``.

        Parameters
        ----------
        residual : array of shape (nz, ny, nx)
            NumPy, CuPy or any array-API array.
        engine : {"auto", "numba", "matmul", "torch"} or None, default=None
            ``None`` uses :attr:`engine` (set at construction or with
            :meth:`set_engine`). ``"auto"`` runs the numba kernels on NumPy
            input and matrix products on any other namespace (CuPy), so
            solving never needs a deep-learning framework. ``"numba"``
            forces the numba kernels (NumPy only), ``"matmul"`` the
            array-API matrix products, and ``"torch"`` PyTorch: oneDNN on the
            CPU for NumPy input, cuDNN for CuPy input (zero-copy through
            DLPack). The numba and torch engines use numba's thread count
            (``numba.set_num_threads``, which ``n_jobs`` sets).

        Returns
        -------
        direction : array of shape (nz, ny, nx), float32
            The network's output.
        """
        from .._validation import check_finite, check_real

        if not hasattr(residual, "ndim"):
            residual = np.asarray(residual)
        xp = get_namespace(residual)
        if residual.ndim != 3 or min(residual.shape) < 1:
            raise ValueError(
                f"residual must be a non-empty 3D grid; got an array of shape "
                f"{tuple(residual.shape)}."
            )
        check_real(residual, "residual", xp,
                   reason="the network's weights and output are real (float32);")
        check_finite(residual, "residual", xp)
        if float(xp.max(xp.abs(residual))) > _LARGEST_INPUT:
            # The network computes in float32 and is not scale-equivariant
            # (biases); inputs this large overflow it.
            raise ValueError(
                f"residual holds values up to {float(xp.max(xp.abs(residual))):.3g}, "
                f"beyond what the float32 network takes ({_LARGEST_INPUT:g}); pass "
                "the normalised residual r / ||r|| as the DCDM solver does.")
        engine = self.engine if engine is None else _check_engine(engine)
        if engine == "auto":
            engine = "numba" if kernel_target(xp) == "cpu" else "matmul"
        if engine == "numba":
            if kernel_target(xp) != "cpu":
                raise TypeError(
                    "engine='numba' runs on NumPy arrays; use engine='auto', "
                    "'matmul' or 'torch' for arrays of another library.")
            return self._forward_numba(residual)
        if engine == "torch":
            return self._forward_torch(xp, residual)
        return self._forward_matmul(xp, residual)

    def _forward_numba(self, residual):
        w = self._packed_weights()
        nz, ny, nx = residual.shape
        ez, ey, ex = nz + nz % 2, ny + ny % 2, nx + nx % 2
        # Zero-bordered buffers: each convolution writes the interior of the
        # next one's input, so padding is never copied, and borders stay zero
        # because no kernel writes them. A buffer goes back to the pool once
        # the step that reads its activation last is done, so the whole pass
        # needs three full-resolution and two half-resolution buffers.
        grids = [(ez + 2, ey + 2, ex + 2), (ez // 2 + 2, ey // 2 + 2, ex // 2 + 2)]
        source = np.zeros(grids[0] + (1,), dtype=np.float32)
        source[1:nz + 1, 1:ny + 1, 1:nx + 1, 0] = residual
        buffers, level = {INPUT: source}, {INPUT: 0}
        pool = {}
        last = last_reads()
        output = np.empty((nz, ny, nx), dtype=np.float32)

        def claim(name, grid, avoid):
            """The buffer that will hold activation ``name``."""
            current = buffers.get(name)
            if current is not None and current is not avoid:
                return current  # overwritten or updated in place
            shape = grids[grid] + (self.channels,)
            free = pool.get(shape)
            buffer = free.pop() if free else np.zeros(shape, dtype=np.float32)
            buffers[name], level[name] = buffer, grid
            return buffer

        for index, step in enumerate(LAYER_PLAN):
            inp = buffers[step.source]
            if isinstance(step, Conv) and step.kernel_size == 1:
                weight, bias = w[step.weight]
                project_channels(inp, weight, bias, 1, output)
            elif isinstance(step, Conv):
                weight, bias = w[step.weight]
                out = claim(step.out, level[step.source], avoid=inp)
                conv3x3x3_into(inp, weight, bias, out, apply_relu=step.relu,
                               residual=None if step.add is None else buffers[step.add])
            elif isinstance(step, Pool):
                avgpool2_into(inp, claim(step.out, level[step.source] + 1, avoid=inp))
            elif isinstance(step, Upsample):
                if last[step.add] == index and step.out not in buffers:
                    # The skip activation is not read again: add in place.
                    buffers[step.out] = buffers.pop(step.add)
                    level[step.out] = level.pop(step.add)
                else:
                    out = claim(step.out, level[step.source] - 1, avoid=inp)
                    out[...] = buffers[step.add]
                upsample2_add_into(inp, buffers[step.out])
            for name in {step.source, getattr(step, "add", None)}:
                if last.get(name) == index and name in buffers and name != step.out:
                    buffer = buffers.pop(name)
                    pool.setdefault(buffer.shape, []).append(buffer)
        return output

    def _forward_matmul(self, xp, residual):
        w = self._weights_in(xp, residual)
        nz, ny, nx = residual.shape
        ez, ey, ex = nz + nz % 2, ny + ny % 2, nx + nx % 2
        x = xp.zeros((ez, ey, ex, 1), dtype=xp.float32,
                     device=array_api_compat.device(residual))
        x[:nz, :ny, :nx, 0] = xp.astype(residual, xp.float32)
        values = {INPUT: x}
        for step in LAYER_PLAN:
            inp = values[step.source]
            if isinstance(step, Conv):
                out = _conv3d(xp, inp, w[f"{step.weight}.weight"],
                              w[f"{step.weight}.bias"])
                if step.relu:
                    out = _relu(xp, out)
            elif isinstance(step, Pool):
                out = _avgpool2(xp, inp)
            else:
                out = _upsample2(xp, inp)
            if getattr(step, "add", None) is not None:
                out = out + values[step.add]
            values[step.out] = out
        return values[LAYER_PLAN[-1].out][:nz, :ny, :nx, 0]

    def _torch_module(self, torch, device, shape):
        """The network in PyTorch for one device and (even) grid shape."""
        key = (str(device), shape)
        with self._torch_lock:
            module = self._torch_modules.get(key)
            if module is not None:
                return module
            from ._training import _torch_network

            model = _torch_network(torch, self.channels)
            model.load_state_dict({k: torch.from_numpy(v.copy())
                                   for k, v in self.weights.items()})
            model = model.eval().to(device)
            module = model
            if device.type == "cpu":
                module = _freeze_for_cpu(torch, model, shape) or model
            else:
                module = model.to(memory_format=torch.channels_last_3d)
            self._torch_modules[key] = module
            return module

    def _forward_torch(self, xp, residual):
        torch = _require_torch()
        nz, ny, nx = residual.shape
        shape = (nz + nz % 2, ny + ny % 2, nx + nx % 2)
        if kernel_target(xp) == "host":
            raise TypeError(
                "engine='torch' takes NumPy or CuPy arrays; got "
                f"{type(residual).__name__}.")
        grid = xp.zeros(shape, dtype=xp.float32,
                        device=array_api_compat.device(residual))
        grid[:nz, :ny, :nx] = residual
        # DLPack: PyTorch reads the array's memory where it lives (host or
        # GPU, stream-ordered, no copy).
        tensor = torch.from_dlpack(grid)
        device = tensor.device
        if device.type == "cpu" and torch.get_num_threads() != numba_thread_count():
            # numba_threads(n_jobs) governs this engine too.
            torch.set_num_threads(numba_thread_count())
        module = self._torch_module(torch, device, shape)
        with torch.inference_mode():
            result = module(tensor[None, None])[0, 0, :nz, :ny, :nx].contiguous()
        if device.type == "cpu":
            return result.numpy()
        return xp.from_dlpack(result)


_ENGINES = ("auto", "numba", "matmul", "torch")


def _check_engine(engine):
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {_ENGINES}; got {engine!r}.")
    return engine


def _require_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "engine='torch' needs PyTorch: pip install 'sparsesolve[train]' "
            "(engine='auto' needs no deep-learning framework)."
        ) from exc
    return torch


def _freeze_for_cpu(torch, model, shape):
    """TorchScript module frozen for oneDNN, or None where it is unavailable.

    Tracing, freezing and ``optimize_for_inference`` fold the weights into
    oneDNN convolutions with fused ReLU and additions (the fastest fp32 CPU
    path of PyTorch measured here); TorchScript is deprecated in recent
    PyTorch, so the eager module stands in where it is missing.
    """
    example = torch.zeros((1, 1, *shape), dtype=torch.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with torch.no_grad():
                traced = torch.jit.trace(model, example, check_trace=False)
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                frozen(example)
    except (AttributeError, RuntimeError):  # pragma: no cover - torch version
        return None
    return frozen
