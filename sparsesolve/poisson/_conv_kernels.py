"""Numba CPU kernels of the direction network's forward pass (channel-last).

The 3x3x3 convolution is written as a register-blocked micro-kernel, the
layout high-performance GEMM uses (Goto and van de Geijn, "Anatomy of
high-performance matrix multiplication", ACM TOMS 34(3), 2008): a block of
``width`` consecutive x positions times 16 output channels is held in
``width`` vector registers for the whole reduction over the 27 taps and the
input channels; each step loads one vector of 16 weights, broadcasts one
input value per x position and issues ``width`` independent fused
multiply-adds. The independent accumulators keep both FMA pipes busy (an FMA
has a latency of about 4 cycles), and the input and output are touched once
per block instead of once per multiply-add. Because the padded volume is
channel-last, the input channels of the three x taps ``dx`` of one
(``dz``, ``dy``) row are contiguous, so the reduction runs over
``9`` rows of ``3 * C_in`` values each with no im2col copy.

LLVM does not find this schedule by itself from scalar Python loops: with
``fastmath`` it vectorises the reduction over input channels instead (many
partial sums and a horizontal reduction per output), and without it the 16
independent output-channel chains stay scalar. The micro-kernel is therefore
emitted as LLVM vector IR (:func:`sparsesolve._backend.cpu_intrinsic`), once
per block width; everything around it is a plain loop compiled by
:func:`sparsesolve._backend.cpu_kernel`.

Output channels are processed in groups of 16 (one AVX-512 register of
float32; on AVX2 machines LLVM splits it into two), the packed weights and
bias are zero-padded to a multiple of 16 and the tail group is stored lane by
lane, so any channel count works. The other kernels (pooling, upsampling, the
1x1x1 output projection) are memory bound and fused with the additions and
the crop that follow them, so that the forward pass moves each activation as
few times as possible.
"""

from __future__ import annotations

import numpy as np

from .._backend import cpu_has_feature, cpu_intrinsic, cpu_kernel, prange

__all__ = [
    "LANES",
    "avgpool2_into",
    "conv3x3x3",
    "conv3x3x3_into",
    "pack_conv_weights",
    "project_channels",
    "upsample2_add_into",
]

# float32 lanes of one AVX-512 register: the output-channel group size.
LANES = 16

# x positions per register block, widest first. With AVX-512 there are 32
# vector registers: 16 accumulators, the weight vector and broadcasts fit.
# With AVX2, each 16-lane accumulator takes two of the 16 registers.
_HAS_AVX512 = cpu_has_feature("avx512f")
_WIDTHS = (16, 8, 4, 1) if _HAS_AVX512 else (6, 4, 2, 1)


def _register_block(width):
    """Intrinsic: one block of ``width`` x positions, one 16-channel group.

    Signature ``(padded, weight, bias, out, residual, z, y, x0, group,
    margin, apply_relu, add_residual)``: ``padded`` (nz+2, ny+2, nx+2, C_in),
    ``weight`` (27, C_in, G*16) from :func:`pack_conv_weights`, ``bias``
    (G*16,), ``out`` and ``residual`` (nz+2m, ny+2m, nx+2m, C_out) with
    margin ``m``; every array C-contiguous float32 (checked by the callers).
    Computes output voxels ``(z, y, x0 .. x0+width-1)``, channels ``16*group``
    onwards, then ReLU (if asked) and the residual addition (if asked).
    """

    def register_block(llvm, context, builder, sig, args):
        ir, cgutils = llvm.ir, llvm.cgutils
        arrays = [context.make_array(t)(context, builder, a)
                  for t, a in zip(sig.args[:5], args[:5], strict=True)]
        p_arr, w_arr, b_arr, o_arr, r_arr = arrays
        z, y, x0, group, margin, apply_relu, add_residual = args[5:]
        index = ir.IntType(64)
        vector = ir.VectorType(ir.FloatType(), LANES)
        vector_pointer = vector.as_pointer()
        # fmuladd: one FMA instruction where the CPU has them, a multiply
        # and an add where it does not (llvm.fma would call libm).
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [vector] * 3),
            f"llvm.fmuladd.v{LANES}f32")

        def const(value):
            return ir.Constant(index, value)

        def load_vector(data, offset):
            pointer = builder.bitcast(builder.gep(data, [offset]), vector_pointer)
            return builder.load(pointer, align=4)

        _, p_ny, p_nx, c_in = cgutils.unpack_tuple(builder, p_arr.shape, 4)
        c_padded = cgutils.unpack_tuple(builder, w_arr.shape, 3)[2]
        _, o_ny, o_nx, c_out = cgutils.unpack_tuple(builder, o_arr.shape, 4)
        first_channel = builder.mul(group, const(LANES))
        start = load_vector(b_arr.data, first_channel)
        # Allocas of whole vectors, promoted to registers by mem2reg.
        slots = [cgutils.alloca_once(builder, vector) for _ in range(width)]
        for slot in slots:
            builder.store(start, slot)
        row_length = builder.mul(const(3), c_in)
        undefined = ir.Constant(vector, ir.Undefined)
        splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        lane0 = ir.Constant(ir.IntType(32), 0)
        with cgutils.for_range(builder, const(9)) as tap_row:
            dz = builder.udiv(tap_row.index, const(3))
            dy = builder.urem(tap_row.index, const(3))
            row = builder.add(builder.mul(builder.add(z, dz), p_ny),
                              builder.add(y, dy))
            source = builder.mul(builder.add(builder.mul(row, p_nx), x0), c_in)
            weights = builder.mul(tap_row.index, row_length)
            with cgutils.for_range(builder, row_length) as step:
                # Weights of (tap, input channel) for the whole group.
                w_offset = builder.add(
                    builder.mul(builder.add(weights, step.index), c_padded),
                    first_channel)
                w_vector = load_vector(w_arr.data, w_offset)
                base = builder.add(source, step.index)
                for k, slot in enumerate(slots):
                    offset = builder.add(base, builder.mul(const(k), c_in))
                    value = builder.load(builder.gep(p_arr.data, [offset]))
                    broadcast = builder.shuffle_vector(
                        builder.insert_element(undefined, value, lane0),
                        undefined, splat_mask)
                    total = builder.call(
                        fma, [broadcast, w_vector, builder.load(slot)])
                    builder.store(total, slot)
        zero = ir.Constant(vector, [0.0] * LANES)
        relu_flag = builder.trunc(apply_relu, ir.IntType(1))
        residual_flag = builder.trunc(add_residual, ir.IntType(1))
        remaining = builder.sub(c_out, first_channel)
        whole_group = builder.icmp_signed(">=", remaining, const(LANES))
        out_row = builder.add(builder.mul(builder.add(z, margin), o_ny),
                              builder.add(y, margin))
        for k, slot in enumerate(slots):
            result = builder.load(slot)
            clipped = builder.select(
                builder.fcmp_ordered("<", result, zero), zero, result)
            result = builder.select(relu_flag, clipped, result)
            voxel = builder.add(builder.mul(out_row, o_nx),
                                builder.add(builder.add(x0, const(k)), margin))
            offset = builder.add(builder.mul(voxel, c_out), first_channel)
            with builder.if_else(whole_group) as (full, partial):
                with full:
                    # out itself stands in for a missing residual, so the
                    # load is always in bounds.
                    added = builder.fadd(result, load_vector(r_arr.data, offset))
                    total = builder.select(residual_flag, added, result)
                    pointer = builder.bitcast(builder.gep(o_arr.data, [offset]),
                                              vector_pointer)
                    builder.store(total, pointer, align=4)
                with partial, cgutils.for_range(builder, remaining) as lane:
                    element = builder.extract_element(result, lane.index)
                    where = builder.add(offset, lane.index)
                    extra = builder.load(builder.gep(r_arr.data, [where]))
                    element = builder.select(
                        residual_flag, builder.fadd(element, extra), element)
                    builder.store(element, builder.gep(o_arr.data, [where]))

    register_block.__qualname__ = f"register_block_{width}"
    return cpu_intrinsic(register_block, (
        "padded", "weight", "bias", "out", "residual", "z", "y", "x0", "group",
        "margin", "apply_relu", "add_residual"))


_WIDE, _MIDDLE, _NARROW, _ONE = _WIDTHS
_BLOCK_WIDE, _BLOCK_MIDDLE, _BLOCK_NARROW, _BLOCK_ONE = (
    _register_block(width) for width in _WIDTHS)


def _conv_rows(padded, weight, bias, out, residual, margin, apply_relu,
               add_residual):
    nz, ny, nx = padded.shape[0] - 2, padded.shape[1] - 2, padded.shape[2] - 2
    n_groups = weight.shape[2] // LANES
    # One (z, y) row per task: 16^3 already gives 256 tasks, and a row's
    # input (3 x 3 rows of the padded volume) stays in L1/L2 for all groups.
    for row in prange(nz * ny):
        z = row // ny
        y = row - z * ny
        for group in range(n_groups):
            x = 0
            while x + _WIDE <= nx:
                _BLOCK_WIDE(padded, weight, bias, out, residual, z, y, x, group,
                            margin, apply_relu, add_residual)
                x += _WIDE
            if x + _MIDDLE <= nx:
                _BLOCK_MIDDLE(padded, weight, bias, out, residual, z, y, x, group,
                              margin, apply_relu, add_residual)
                x += _MIDDLE
            if x + _NARROW <= nx:
                _BLOCK_NARROW(padded, weight, bias, out, residual, z, y, x, group,
                              margin, apply_relu, add_residual)
                x += _NARROW
            while x < nx:
                _BLOCK_ONE(padded, weight, bias, out, residual, z, y, x, group,
                           margin, apply_relu, add_residual)
                x += 1


def _avgpool2_rows(fine, coarse, fine_margin, coarse_margin):
    cz, cy, cx = (coarse.shape[0] - 2 * coarse_margin,
                  coarse.shape[1] - 2 * coarse_margin,
                  coarse.shape[2] - 2 * coarse_margin)
    channels = coarse.shape[3]
    for row in prange(cz * cy):
        z = row // cy
        y = row - z * cy
        fz, fy = 2 * z + fine_margin, 2 * y + fine_margin
        for x in range(cx):
            fx = 2 * x + fine_margin
            for c in range(channels):
                total = (fine[fz, fy, fx, c] + fine[fz, fy, fx + 1, c]
                         + fine[fz, fy + 1, fx, c] + fine[fz, fy + 1, fx + 1, c]
                         + fine[fz + 1, fy, fx, c] + fine[fz + 1, fy, fx + 1, c]
                         + fine[fz + 1, fy + 1, fx, c]
                         + fine[fz + 1, fy + 1, fx + 1, c])
                coarse[z + coarse_margin, y + coarse_margin, x + coarse_margin, c] = (
                    total * np.float32(0.125))


def _upsample2_add_rows(coarse, fine, coarse_margin, fine_margin):
    fz_n, fy_n, fx_n = (fine.shape[0] - 2 * fine_margin,
                        fine.shape[1] - 2 * fine_margin,
                        fine.shape[2] - 2 * fine_margin)
    channels = fine.shape[3]
    for row in prange(fz_n * fy_n):
        z = row // fy_n
        y = row - z * fy_n
        cz, cy = z // 2 + coarse_margin, y // 2 + coarse_margin
        for x in range(fx_n):
            cx = x // 2 + coarse_margin
            for c in range(channels):
                fine[z + fine_margin, y + fine_margin, x + fine_margin, c] += (
                    coarse[cz, cy, cx, c])


def _project_rows(features, weight, bias, margin, out):
    nz, ny, nx = out.shape
    channels = features.shape[3]
    for row in prange(nz * ny):
        z = row // ny
        y = row - z * ny
        for x in range(nx):
            total = bias
            for c in range(channels):
                total += features[z + margin, y + margin, x + margin, c] * weight[c]
            out[z, y, x] = total


# Multiply-adds below which a convolution runs serially: an 8^3 grid with
# 16 channels (3.5 M multiply-adds, ~20 us at this kernel's speed).
_SERIAL_CONV_WORK = 8 * 8 * 8 * 27 * 16 * 16
# Voxels below which the memory-bound kernels run serially.
_SERIAL_VOXELS = 16**3


def _conv_work(padded, weight, bias, out, residual, margin, apply_relu,
               add_residual):
    interior = (padded.shape[0] - 2) * (padded.shape[1] - 2) * (padded.shape[2] - 2)
    return interior * 27 * padded.shape[3] * out.shape[3]


def _pool_work(fine, coarse, fine_margin, coarse_margin):
    return ((coarse.shape[0] - 2 * coarse_margin)
            * (coarse.shape[1] - 2 * coarse_margin) * 64)


def _upsample_work(coarse, fine, coarse_margin, fine_margin):
    return (fine.shape[0] - 2 * fine_margin) * (fine.shape[1] - 2 * fine_margin) * 8


def _project_work(features, weight, bias, margin, out):
    return out.shape[0] * out.shape[1] * 16


# Serial and parallel compilations of each body (waking numba's thread pool
# costs more than the work on tiny volumes, and on a loaded machine much
# more): small calls run on the calling thread.
_conv = cpu_kernel(_conv_rows, parallel=True, serial_below=_SERIAL_CONV_WORK,
                   work=_conv_work)
_pool = cpu_kernel(_avgpool2_rows, parallel=True, serial_below=_SERIAL_VOXELS,
                   work=_pool_work)
_upsample = cpu_kernel(_upsample2_add_rows, parallel=True,
                       serial_below=_SERIAL_VOXELS, work=_upsample_work)
_project = cpu_kernel(_project_rows, parallel=True, serial_below=_SERIAL_VOXELS,
                      work=_project_work)


def pack_conv_weights(weight, bias):
    """Weights of a 3x3x3 convolution in the kernel's layout.

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in, 3, 3, 3)
        PyTorch layout (``Conv3d.weight``).
    bias : ndarray of shape (C_out,)
        The bias.

    Returns
    -------
    packed_weight : ndarray of shape (27, C_in, G * 16), float32
        Tap-major (``dz, dy, dx``), then input channel; output channels
        zero-padded to ``G = ceil(C_out / 16)`` groups of 16.
    packed_bias : ndarray of shape (G * 16,), float32
        The bias, zero-padded likewise.

    Examples
    --------
    >>> import numpy as np
    >>> w, b = pack_conv_weights(np.ones((3, 2, 3, 3, 3)), np.ones(3))
    >>> w.shape, b.shape
    ((27, 2, 16), (16,))
    """
    weight = np.asarray(weight, dtype=np.float32)
    c_out, c_in = weight.shape[:2]
    padded_channels = -(-c_out // LANES) * LANES
    packed = np.zeros((27, c_in, padded_channels), dtype=np.float32)
    taps = np.transpose(weight, (2, 3, 4, 1, 0)).reshape(27, c_in, c_out)
    packed[:, :, :c_out] = taps
    packed_bias = np.zeros(padded_channels, dtype=np.float32)
    packed_bias[:c_out] = np.asarray(bias, dtype=np.float32)
    return packed, packed_bias


def _require_float32_c(name, array, ndim):
    if (not isinstance(array, np.ndarray) or array.dtype != np.float32
            or array.ndim != ndim or not array.flags.c_contiguous):
        raise TypeError(f"{name} must be a C-contiguous float32 ndarray with "
                        f"{ndim} dimensions.")


def conv3x3x3_into(padded, weight, bias, out, *, apply_relu=False, residual=None):
    """``out[interior] = relu?(conv(padded)) + residual[interior]``, in place.

    Parameters
    ----------
    padded : ndarray of shape (nz + 2, ny + 2, nx + 2, C_in), float32
        Input with a zero border of one voxel (zero padding, as ``Conv3d``
        with ``padding=1``).
    weight, bias : ndarray
        From :func:`pack_conv_weights`.
    out : ndarray of shape (nz + 2m, ny + 2m, nx + 2m, C_out), float32
        Written in its interior (margin ``m`` of 0 or 1 deduced from the
        shape; a margin of 1 lets the result feed the next convolution with
        no padding copy, its border is left untouched).
    apply_relu : bool, default=False
        Apply ``max(., 0)`` before the residual addition.
    residual : ndarray shaped like ``out``, optional
        Added after the ReLU; may be ``out`` itself (each voxel is read before
        it is written, and ``padded`` must then be a different array).
    """
    _require_float32_c("padded", padded, 4)
    _require_float32_c("weight", weight, 3)
    _require_float32_c("bias", bias, 1)
    _require_float32_c("out", out, 4)
    nz, ny, nx, c_in = (padded.shape[0] - 2, padded.shape[1] - 2,
                        padded.shape[2] - 2, padded.shape[3])
    c_out = out.shape[3]
    if (weight.shape[0] != 27 or weight.shape[1] != c_in
            or weight.shape[2] % LANES or weight.shape[2] < c_out
            or bias.shape[0] != weight.shape[2]):
        raise ValueError("weight and bias must come from pack_conv_weights and "
                         "match the input and output channels.")
    margin = (out.shape[0] - nz) // 2
    if margin not in (0, 1) or out.shape[:3] != (nz + 2 * margin, ny + 2 * margin,
                                                 nx + 2 * margin):
        raise ValueError(f"out must have shape {(nz, ny, nx, c_out)} or the same "
                         f"with a one-voxel border; got {out.shape}.")
    if residual is None:
        add_residual, residual = False, out
    else:
        _require_float32_c("residual", residual, 4)
        if residual.shape != out.shape:
            raise ValueError("residual must have the shape of out.")
        add_residual = True
    if nz <= 0 or ny <= 0 or nx <= 0:
        return out
    _conv(padded, weight, bias, out, residual, margin, bool(apply_relu),
          add_residual)
    return out


def conv3x3x3(padded, weight, bias, out, apply_relu):
    """Direct 3x3x3 convolution, channel-last, into ``out`` (CPU).

    Parameters
    ----------
    padded : ndarray of shape (nz + 2, ny + 2, nx + 2, C_in), float32
        Input with a zero border.
    weight : ndarray of shape (3, 3, 3, C_in, C_out)
        Taps ``weight[dz, dy, dx, i, o]`` (cross-correlation, as torch).
    bias : ndarray of shape (C_out,)
        The bias.
    out : ndarray of shape (nz, ny, nx, C_out), float32
        Receives the result.
    apply_relu : bool
        Apply ``max(., 0)``.

    Examples
    --------
    >>> import numpy as np
    >>> padded = np.zeros((4, 4, 4, 1), np.float32); padded[1:-1, 1:-1, 1:-1] = 1
    >>> out = np.empty((2, 2, 2, 1), np.float32)
    >>> _ = conv3x3x3(padded, np.ones((3, 3, 3, 1, 1)), np.zeros(1), out, False)
    >>> float(out[0, 0, 0, 0])  # the 2x2x2 ones inside the window
    8.0
    """
    weight = np.asarray(weight, dtype=np.float32)
    packed, packed_bias = pack_conv_weights(np.transpose(weight, (4, 3, 0, 1, 2)),
                                            bias)
    return conv3x3x3_into(np.ascontiguousarray(padded, dtype=np.float32), packed,
                          packed_bias, out, apply_relu=apply_relu)


def avgpool2_into(fine, coarse, fine_margin=1, coarse_margin=1):
    """Average 2x2x2 blocks of ``fine``'s interior into ``coarse``'s interior.

    Both arrays are channel-last float32 with borders of ``*_margin`` voxels;
    the coarse interior is half the fine interior in every axis.
    """
    _pool(fine, coarse, fine_margin, coarse_margin)
    return coarse


def upsample2_add_into(coarse, fine, coarse_margin=1, fine_margin=1):
    """``fine[interior] += nearest-neighbour 2x upsampling of coarse[interior]``."""
    _upsample(coarse, fine, coarse_margin, fine_margin)
    return fine


def project_channels(features, weight, bias, margin, out):
    """1x1x1 convolution to one channel: ``out = features[interior] @ weight + bias``.

    ``features`` has a border of ``margin`` voxels; ``out`` of shape
    (nz, ny, nx) may be smaller than the interior (the rest is cropped).
    """
    _project(features, np.ascontiguousarray(weight, dtype=np.float32),
             np.float32(bias), margin, out)
    return out
