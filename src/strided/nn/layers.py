"""Layers: each owns its parameters and calls one function of ``strided.functional``.

Shapes are channels-last (NHWC).  Layers given ``in_channels=None`` /
``in_features=None`` / ``num_features=None`` create their weights on the first
call, from the input's last axis.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional.utils import ntuple
from ..random import get_rng
from . import init as initializers
from .module import Module, Parameter

__all__ = ["Conv2d", "Conv3d", "DepthwiseConv2d", "Linear", "BatchNorm2d", "BatchNorm1d", "MaxPool2d",
           "AvgPool2d", "GlobalAvgPool2d", "Dropout", "Flatten", "Identity", "ReLU", "ReLU6", "LeakyReLU",
           "Sigmoid", "Tanh", "Swish", "Softmax"]


def _check_count(value, name, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, received {name}={value!r}")
    return int(value)


def _repr_args(**kw):
    """Only the arguments that differ from their defaults, PyTorch style."""
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


class _ConvNd(Module):
    spatial_dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, init="he"):
        super().__init__()
        n = self.spatial_dims
        self.in_channels = _check_count(in_channels, "in_channels")
        self.out_channels = _check_count(out_channels, "out_channels", allow_none=False)
        self.kernel_size = ntuple(kernel_size, n, "kernel_size")
        if any(k < 1 for k in self.kernel_size):
            raise ValueError(f"kernel_size must be >= 1, received kernel_size={kernel_size!r}")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups = _check_count(groups, "groups", allow_none=False)
        if self.out_channels % self.groups:
            raise ValueError(f"groups={groups} must divide out_channels={out_channels}")
        self.use_bias, self.init = bool(bias), initializers.get(init)
        self.weight = self.bias = None
        if self.in_channels is not None:
            self._build(self.in_channels)

    def _build(self, in_channels, dtype=np.float32):
        if in_channels % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels ({in_channels})")
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
                      spatial_dims=self.spatial_dims)

    def extra_repr(self):
        parts = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"]
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        if not self.use_bias:
            parts.append("bias=False")
        return ", ".join(parts)


class Conv2d(_ConvNd):
    """2-D convolution: ``(N, H, W, in_channels) -> (N, OH, OW, out_channels)``.

    Weight ``(KH, KW, in_channels // groups, out_channels)`` (HWIO), bias ``(out_channels,)``.
    ``in_channels=None`` builds the weight from the first input.

    >>> conv = Conv2d(3, 16, 3, padding="same")
    """
    spatial_dims = 2


class Conv3d(_ConvNd):
    """3-D convolution: ``(N, D, H, W, C) -> (N, OD, OH, OW, out_channels)``, weight DHWIO."""
    spatial_dims = 3


class DepthwiseConv2d(_ConvNd):
    """Depthwise convolution: each channel convolved with its own ``depth_multiplier`` filters.

    Weight ``(KH, KW, 1, channels * depth_multiplier)``; ``groups = channels``.
    Parameters: ``KH*KW*channels*depth_multiplier`` (+ bias) instead of ``KH*KW*C*O``.
    """

    def __init__(self, channels=None, kernel_size=3, stride=1, padding=0, dilation=1, depth_multiplier=1,
                 bias=True, init="he"):
        Module.__init__(self)
        self.depth_multiplier = _check_count(depth_multiplier, "depth_multiplier", allow_none=False)
        self.channels = _check_count(channels, "channels")
        self.kernel_size = ntuple(kernel_size, 2, "kernel_size")
        self.stride, self.padding, self.dilation = stride, padding, dilation
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
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("depth_multiplier", 1)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        return ", ".join(parts)


class Linear(Module):
    """Fully connected: ``(..., in_features) -> (..., out_features)``; weight ``(in, out)``."""

    def __init__(self, in_features, out_features, bias=True, init="glorot"):
        super().__init__()
        self.in_features = _check_count(in_features, "in_features")
        self.out_features = _check_count(out_features, "out_features", allow_none=False)
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
        self.num_features = _check_count(num_features, "num_features")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], received momentum={momentum!r}")
        self.momentum, self.eps = momentum, eps
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
    """Max pooling ``(N, H, W, C) -> (N, OH, OW, C)``; stride defaults to the kernel size."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"{self.kernel_size}" + (f", stride={self.stride}" if self.stride is not None else "") + (
            f", padding={self.padding!r}" if self.padding != 0 else "")


class AvgPool2d(MaxPool2d):
    """Average pooling (padding excluded from the count)."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """Mean over H and W: ``(N, H, W, C) -> (N, C)``."""

    def forward(self, x):
        return F.global_avg_pool2d(x)


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training; identity in eval."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), received p={p!r}")
        self.p = p

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
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return "" if self.negative_slope == 0.01 else f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)
