"""The layer plan of the search-direction CNN, written once for every engine.

The network (Kaneda et al., "A deep conjugate direction method for iteratively
solving linear systems", ICML 2023, section 3.3; their "64-model") maps a
residual ``r`` on an ``(nz, ny, nx)`` grid to a search direction ``q`` on the
same grid::

    x  = conv_in(r)                                  1 -> C channels, linear
    la = relu(c0(x)); lb = relu(c1(la))
    la = relu(c2(lb)) + la; lb = relu(c3(la))        full resolution
    a  = avgpool2(lb)
    3x: t = relu(c(a)); a = relu(c(t)) + a           half resolution
    u  = upsample2(a) + lb
    2x: v = relu(c(u)); u = relu(c(v)) + u           full resolution
    q  = conv_out(u)                                 1x1x1, C -> 1

Every ``c`` is a 3x3x3 convolution with zero padding and a bias.
:data:`LAYER_PLAN` spells this out as a sequence of steps over named
activations; the NumPy/CuPy forward passes of
:class:`~sparsesolve.poisson._network.DirectionNetwork` and the PyTorch module
used for training (:mod:`~sparsesolve.poisson._training`) both walk it, so
the network they run is the same by construction. Weight names are the
``state_dict`` names of that PyTorch module.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "INPUT",
    "LAYER_PLAN",
    "N_INNER_CONVS",
    "Conv",
    "Pool",
    "Upsample",
    "last_reads",
    "weight_shapes",
]

#: Name of the network's input activation (the residual, one channel).
INPUT = "r"


class Conv(NamedTuple):
    """``out = relu?(conv(source)) + add``: a 3x3x3 or 1x1x1 convolution.

    ``weight`` names the layer (``{weight}.weight``, ``{weight}.bias``);
    ``add`` is an activation added after the ReLU, or None.
    """

    weight: str
    source: str
    out: str
    relu: bool = True
    add: str | None = None
    kernel_size: int = 3


class Pool(NamedTuple):
    """``out = 2x2x2 average pooling of source`` (half resolution)."""

    source: str
    out: str


class Upsample(NamedTuple):
    """``out = nearest-neighbour 2x upsampling of source + add``."""

    source: str
    out: str
    add: str


def _plan():
    steps = [
        Conv("conv_in", INPUT, "x", relu=False),
        Conv("convs.0", "x", "la"),
        Conv("convs.1", "la", "lb"),
        Conv("convs.2", "lb", "la", add="la"),
        Conv("convs.3", "la", "lb"),
        Pool("lb", "a"),
    ]
    layer = 4
    for _ in range(3):
        steps += [Conv(f"convs.{layer}", "a", "t"),
                  Conv(f"convs.{layer + 1}", "t", "a", add="a")]
        layer += 2
    steps.append(Upsample("a", "u", add="lb"))
    for _ in range(2):
        steps += [Conv(f"convs.{layer}", "u", "v"),
                  Conv(f"convs.{layer + 1}", "v", "u", add="u")]
        layer += 2
    steps.append(Conv("conv_out", "u", "q", relu=False, kernel_size=1))
    return tuple(steps)


#: The forward pass, step by step; the last step's ``out`` is the output.
LAYER_PLAN = _plan()

#: Convolutions between ``conv_in`` and ``conv_out`` (4 at full resolution,
#: 6 at half resolution, 4 after the skip connection).
N_INNER_CONVS = sum(1 for step in LAYER_PLAN
                    if isinstance(step, Conv) and step.weight.startswith("convs."))


def weight_shapes(channels):
    """Shape of every weight and bias of the plan with ``channels`` features.

    Parameters
    ----------
    channels : int
        Feature channels of every hidden activation.

    Returns
    -------
    shapes : dict of str to tuple of int
        ``{name}.weight`` of shape (C_out, C_in, k, k, k) and ``{name}.bias``
        of shape (C_out,), in the order of the plan; the input and the output
        have one channel.

    Examples
    --------
    >>> shapes = weight_shapes(16)
    >>> shapes["conv_in.weight"], shapes["conv_out.weight"]
    ((16, 1, 3, 3, 3), (1, 16, 1, 1, 1))
    >>> len(shapes)
    32
    """
    output = LAYER_PLAN[-1].out
    shapes = {}
    for step in LAYER_PLAN:
        if not isinstance(step, Conv):
            continue
        c_in = 1 if step.source == INPUT else channels
        c_out = 1 if step.out == output else channels
        k = step.kernel_size
        shapes[f"{step.weight}.weight"] = (c_out, c_in, k, k, k)
        shapes[f"{step.weight}.bias"] = (c_out,)
    return shapes


def last_reads():
    """Index of the last step that reads each activation.

    An engine that keeps activations in preallocated buffers can hand a
    buffer to a new activation once the step that reads it last is done.
    """
    last = {}
    for index, step in enumerate(LAYER_PLAN):
        last[step.source] = index
        if getattr(step, "add", None) is not None:
            last[step.add] = index
    return last
