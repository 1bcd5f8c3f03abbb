"""Layers: each owns its parameters and calls one function of ``strided.functional``.

Shapes are channels-last (NHWC).  Layers given ``in_channels=None`` /
``in_features=None`` / ``num_features=None`` create their weights on the first
call, from the input's last axis.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from ..functional.utils import resolve_padding
from ..random import get_rng
from . import init as initializers
from .module import Module, Parameter

__all__ = ["ConvNd", "Conv1d", "Conv2d", "Conv3d", "DepthwiseConv2d", "Linear", "BatchNorm2d", "BatchNorm1d",
           "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "AdaptiveAvgPool2d", "Dropout", "Flatten", "Identity",
           "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Swish", "Softmax"]


# --------------------------------------------------------------------------- argument checks
# Every layer checks its arguments when it is built, so a bad value fails at once, with the
# layer's name and the value: "Conv2d: stride must be a positive int or pair, received stride=0".

def check_count(layer, name, value, allow_none=True):
    """A positive int (channels, features, groups), or ``None`` (built lazily) if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int{' or None' if allow_none else ''}, "
                         f"received {name}={value!r}")
    return int(value)


def check_sizes(layer, name, value, n, minimum=1):
    """An int >= ``minimum`` or ``n`` of them (kernel size, stride, dilation) -> n-tuple."""
    what = {1: "int", 2: "int or pair", 3: "int or triple"}.get(n, f"int or {n} ints")
    adjective = "positive" if minimum == 1 else f">= {minimum}"
    values = (value,) * n if isinstance(value, numbers.Integral) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if (len(values) != n or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in values)
            or any(v < minimum for v in values)):
        raise ValueError(f"{layer}: {name} must be a {adjective} {what}, received {name}={value!r}")
    return tuple(int(v) for v in values)


def check_padding(layer, padding, n):
    """Anything ``resolve_padding`` accepts for ``n`` spatial axes (int, tuple, 'valid', 'same')."""
    try:
        resolve_padding(padding, (1,) * n, (1,) * n, (1,) * n, (1,) * n)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: padding must be an int >= 0, one per spatial axis, (before, after) pairs, "
                         f"'valid' or 'same'; received padding={padding!r}") from None
    return padding


def check_number(layer, name, value, integral=False, positive=False):
    """A real number (an int with ``integral``; > 0 with ``positive``)."""
    kind = numbers.Integral if integral else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or (positive and not 0 < value < float("inf")):
        what = ("an int" if integral else "a number") + (" > 0" if positive else "")
        raise ValueError(f"{layer}: {name} must be {what}, received {name}={value!r}")
    return value


def check_fraction(layer, name, value, low, high, high_open=False):
    """A real number in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value and (
        value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{layer}: {name} must be in [{low}, {high}{')' if high_open else ']'}, "
                         f"received {name}={value!r}")
    return float(value)


class ConvNd(Module):
    """Convolution over ``spatial_dims`` axes, channels last; :class:`Conv1d`, :class:`Conv2d`
    and :class:`Conv3d` set ``spatial_dims`` to 1, 2, 3.

    ``activation`` (``None``, ``"relu"`` or ``"relu6"``) is applied to the output in the same
    pass; :func:`strided.nn.fuse` sets it when it folds a following ReLU into the convolution.
    """
    spatial_dims = 2
    activation = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, init="he"):
        super().__init__()
        n, layer = self.spatial_dims, type(self).__name__
        self.in_channels = check_count(layer, "in_channels", in_channels)
        self.out_channels = check_count(layer, "out_channels", out_channels, allow_none=False)
        self.kernel_size = check_sizes(layer, "kernel_size", kernel_size, n)
        check_sizes(layer, "stride", stride, n)
        check_sizes(layer, "dilation", dilation, n)
        self.stride, self.padding, self.dilation = stride, check_padding(layer, padding, n), dilation
        self.groups = check_count(layer, "groups", groups, allow_none=False)
        if self.out_channels % self.groups:
            raise ValueError(f"{layer}: groups={groups} must divide out_channels={out_channels}")
        self.use_bias, self.init = bool(bias), initializers.get(init)
        self.weight = self.bias = None
        if self.in_channels is not None:
            self._build(self.in_channels)

    def _build(self, in_channels, dtype=np.float32):
        if in_channels % self.groups:
            raise ValueError(f"{type(self).__name__}: groups={self.groups} must divide the input channels "
                             f"({in_channels})")
        self.in_channels = in_channels
        shape = self.kernel_size + (in_channels // self.groups, self.out_channels)
        self.weight = Parameter(self.init(shape, dtype=dtype, groups=self.groups))
        if self.use_bias:
            self.bias = Parameter(np.zeros(self.out_channels, dtype))

    def _build_from_state(self, state, prefix):
        key = f"{prefix}.weight" if prefix else "weight"
        if self.weight is None and key in state:
            self._build(int(np.shape(state[key])[-2]) * self.groups)

    def forward(self, x):
        if self.weight is None:
            self._build(x.shape[-1], dtype=x.dtype if x.dtype == np.float64 else np.float32)
        return F.conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                      spatial_dims=self.spatial_dims, activation=self.activation)

    def extra_repr(self):
        parts = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"]
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        if not self.use_bias:
            parts.append("bias=False")
        if self.activation is not None:
            parts.append(f"activation={self.activation!r}")
        return ", ".join(parts)


class Conv1d(ConvNd):
    """1-D convolution: ``(N, W, in_channels) -> (N, OW, out_channels)``; weight ``(KW, in // groups, out)``."""
    spatial_dims = 1


class Conv2d(ConvNd):
    """2-D convolution: ``(N, H, W, in_channels) -> (N, OH, OW, out_channels)``.

    Weight ``(KH, KW, in_channels // groups, out_channels)`` (HWIO), bias ``(out_channels,)``.
    ``in_channels=None`` builds the weight from the first input.

    >>> conv = Conv2d(3, 16, 3, padding="same")
    """
    spatial_dims = 2


class Conv3d(ConvNd):
    """3-D convolution: ``(N, D, H, W, C) -> (N, OD, OH, OW, out_channels)``, weight DHWIO."""
    spatial_dims = 3


class DepthwiseConv2d(ConvNd):
    """Depthwise convolution: each channel convolved with its own ``depth_multiplier`` filters.

    Weight ``(KH, KW, 1, channels * depth_multiplier)``; ``groups = channels``.
    Parameters: ``KH*KW*channels*depth_multiplier`` (+ bias) instead of ``KH*KW*C*O``.
    """

    def __init__(self, channels=None, kernel_size=3, stride=1, padding=0, dilation=1, depth_multiplier=1,
                 bias=True, init="he"):
        Module.__init__(self)
        layer = type(self).__name__
        self.depth_multiplier = check_count(layer, "depth_multiplier", depth_multiplier, allow_none=False)
        self.channels = check_count(layer, "channels", channels)
        self.kernel_size = check_sizes(layer, "kernel_size", kernel_size, 2)
        check_sizes(layer, "stride", stride, 2)
        check_sizes(layer, "dilation", dilation, 2)
        self.stride, self.padding, self.dilation = stride, check_padding(layer, padding, 2), dilation
        self.use_bias, self.init = bool(bias), initializers.get(init)
        self.weight = self.bias = None
        self.in_channels = self.out_channels = None
        self.groups = 1
        if channels is not None:
            self._build(channels)

    def _build(self, in_channels, dtype=np.float32):
        self.channels = self.in_channels = self.groups = in_channels
        self.out_channels = in_channels * self.depth_multiplier
        self.weight = Parameter(self.init(self.kernel_size + (1, self.out_channels), dtype=dtype,
                                          groups=in_channels))
        if self.use_bias:
            self.bias = Parameter(np.zeros(self.out_channels, dtype))

    def _build_from_state(self, state, prefix):
        key = f"{prefix}.weight" if prefix else "weight"
        if self.weight is None and key in state:
            self._build(int(np.shape(state[key])[-1]) // self.depth_multiplier)

    def extra_repr(self):
        parts = [f"{self.channels}, kernel_size={self.kernel_size}"]
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("depth_multiplier", 1),
                              ("activation", None)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        return ", ".join(parts)


class Linear(Module):
    """Fully connected: ``(..., in_features) -> (..., out_features)``; weight ``(in, out)``."""

    def __init__(self, in_features, out_features, bias=True, init="glorot"):
        super().__init__()
        self.in_features = check_count("Linear", "in_features", in_features)
        self.out_features = check_count("Linear", "out_features", out_features, allow_none=False)
        self.init, self.use_bias = initializers.get(init), bool(bias)
        self.weight = self.bias = None
        if self.in_features is not None:
            self._build(self.in_features)

    def _build(self, in_features, dtype=np.float32):
        self.in_features = in_features
        self.weight = Parameter(self.init((in_features, self.out_features), dtype=dtype))
        if self.use_bias:
            self.bias = Parameter(np.zeros(self.out_features, dtype))

    def _build_from_state(self, state, prefix):
        key = f"{prefix}.weight" if prefix else "weight"
        if self.weight is None and key in state:
            self._build(int(np.shape(state[key])[0]))

    def forward(self, x):
        if self.weight is None:
            self._build(x.shape[-1], dtype=x.dtype if x.dtype == np.float64 else np.float32)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.use_bias else ", bias=False")


class BatchNorm2d(Module):
    """Batch normalisation per channel (last axis) with learnable ``gamma``/``beta``
    and running statistics (buffers ``running_mean``, ``running_var``).

    Training uses batch statistics and updates the running ones; ``eval()``
    uses the running ones.  A *frozen* layer (``gamma`` and ``beta`` not
    trainable) also uses the running statistics, so fine-tuning a frozen base
    does not disturb it.
    """

    def __init__(self, num_features=None, momentum=0.1, eps=1e-5):
        super().__init__()
        layer = type(self).__name__
        self.num_features = check_count(layer, "num_features", num_features)
        check_fraction(layer, "momentum", momentum, 0.0, 1.0)
        self.momentum, self.eps = momentum, check_number(layer, "eps", eps, positive=True)
        self.gamma = self.beta = None
        if self.num_features is not None:
            self._build(self.num_features)

    def _build(self, C, dtype=np.float32):
        self.num_features = C
        self.gamma = Parameter(np.ones(C, dtype))
        self.beta = Parameter(np.zeros(C, dtype))
        self.register_buffer("running_mean", np.zeros(C, np.float32 if dtype == np.float32 else dtype))
        self.register_buffer("running_var", np.ones(C, np.float32 if dtype == np.float32 else dtype))

    def _build_from_state(self, state, prefix):
        key = f"{prefix}.gamma" if prefix else "gamma"
        if self.gamma is None and key in state:
            self._build(int(np.shape(state[key])[0]))

    @property
    def frozen(self) -> bool:
        return self.gamma is not None and not self.gamma.requires_grad and not self.beta.requires_grad

    def forward(self, x):
        if self.gamma is None:
            self._build(x.shape[-1], dtype=x.dtype if x.dtype == np.float64 else np.float32)
        if x.shape[-1] != self.num_features:
            raise ValueError(f"BatchNorm expects {self.num_features} channels (last axis), "
                             f"received input shape {tuple(x.shape)}")
        return F.batch_norm(x, self.running_mean, self.running_var, self.gamma, self.beta,
                            training=self.training and not self.frozen, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}" + (f", momentum={self.momentum}" if self.momentum != 0.1 else "") + (
            f", eps={self.eps}" if self.eps != 1e-5 else "")


BatchNorm1d = BatchNorm2d  # same computation: per feature over every other axis


class MaxPool2d(Module):
    """Max pooling ``(N, H, W, C) -> (N, OH, OW, C)``; stride defaults to the kernel size.

    ``ceil_mode=True`` rounds the output size up (PyTorch's rule, see ``F.max_pool2d``).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        layer = type(self).__name__
        kernel = check_sizes(layer, "kernel_size", kernel_size, 2)
        if stride is not None:
            check_sizes(layer, "stride", stride, 2)
        check_padding(layer, padding, 2)
        if not isinstance(padding, str):
            pads = resolve_padding(padding, (1, 1), kernel, (1, 1), (1, 1))
            if any(max(p) > k // 2 for p, k in zip(pads, kernel)):
                raise ValueError(f"{layer}: padding must be at most half the kernel size, received "
                                 f"padding={padding!r} for kernel_size={kernel_size!r}")
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise ValueError(f"{layer}: ceil_mode must be True or False, received ceil_mode={ceil_mode!r}")
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, bool(ceil_mode)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return f"{self.kernel_size}" + (f", stride={self.stride}" if self.stride is not None else "") + (
            f", padding={self.padding!r}" if self.padding != 0 else "") + (
            ", ceil_mode=True" if self.ceil_mode else "")


class AvgPool2d(MaxPool2d):
    """Average pooling (padding excluded from the count); ``ceil_mode`` as :class:`MaxPool2d`."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)


class GlobalAvgPool2d(Module):
    """Mean over H and W: ``(N, H, W, C) -> (N, C)``."""

    def forward(self, x):
        return F.global_avg_pool2d(x)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed grid ``output_size``: ``(N, H, W, C) -> (N, OH, OW, C)`` for any
    H, W (PyTorch's windows; see ``F.adaptive_avg_pool2d``)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = check_sizes("AdaptiveAvgPool2d", "output_size", output_size, 2)

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training; identity in eval."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = check_fraction("Dropout", "p", p, 0.0, 1.0, high_open=True)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, rng=get_rng())

    def extra_repr(self):
        return "" if self.p == 0.5 else f"p={self.p}"


class Flatten(Module):
    """``(N, ...) -> (N, prod(...))`` (NHWC order: channels fastest)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class Identity(Module):
    def forward(self, x):
        return x


def _activation(name, fn, doc):
    cls = type(name, (Module,), {"forward": lambda self, x: fn(x), "__doc__": doc})
    return cls


ReLU = _activation("ReLU", F.relu, "max(x, 0)")
ReLU6 = _activation("ReLU6", F.relu6, "min(max(x, 0), 6)")
Sigmoid = _activation("Sigmoid", F.sigmoid, "1 / (1 + exp(-x))")
Tanh = _activation("Tanh", F.tanh, "tanh(x)")
Swish = _activation("Swish", F.swish, "x * sigmoid(x)")


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return "" if self.negative_slope == 0.01 else f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = check_number("Softmax", "axis", axis, integral=True)

    def forward(self, x):
        return F.softmax(x, self.axis)
