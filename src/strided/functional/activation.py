"""Activations and softmax, each forward next to its derivative.

relu        y = max(x, 0)                       dy/dx = 1[x > 0]
add_relu    y = max(a + b, 0)                   dy/da = dy/db = 1[y > 0]   (a residual join, one op)
leaky_relu  y = x if x > 0 else slope*x          dy/dx = 1 or slope
sigmoid     y = 1 / (1 + exp(-x))                dy/dx = y (1 - y)
tanh        y = tanh(x)                          dy/dx = 1 - y^2
softmax     y = exp(x - max) / sum(exp(x - max))  gx = y * (gy - sum(gy * y))
log_softmax y = x - max - log(sum(exp(x - max)))  gx = gy - softmax * sum(gy)
clip        y = min(max(x, low), high)            dy/dx = 1[low <= x <= high]  (as torch.clamp)

Subtracting the maximum keeps softmax and log_softmax finite for logits of +-1e4;
sigmoid is evaluated on -|x| so exp never overflows.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor, as_tensor
from .parallel import blockwise
from .utils import float_tensor

__all__ = ["relu", "add_relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "swish", "relu6", "clip"]


class ReLU(Function):
    def forward(self, x):
        y = np.maximum(x, 0)
        self.y = y
        return y

    def backward(self, gy):
        g = np.empty_like(gy)
        blockwise(lambda gyb, yb, gb: np.multiply(gyb, yb > 0, out=gb), gy, self.y, g)
        return g


class AddReLU(Function):
    """y = max(a + b, 0) in one pass: the join of a residual block.  The sum is computed in the
    output buffer, so the graph keeps one array (the output, which the mask is read from)
    where ``relu(a + b)`` keeps two (the sum, held as ReLU's input, and the output)."""

    def forward(self, a, b):
        y = np.add(a, b)
        np.maximum(y, 0, out=y)
        self.y = y
        return y

    def backward(self, gy):
        g = gy * (self.y > 0)
        return g, g


class LeakyReLU(Function):
    """Both directions in cache-sized blocks (:func:`blockwise`), without NumPy's masked selection
    (``np.where`` with a random mask is ~10x slower than arithmetic).  For ``0 <= slope <= 1``::

        y = max(x, slope * x)          gx = gy * max(1[x > 0], slope)

    exact in floating point; other slopes use ``slope + (1 - slope) * 1[x > 0]``.  Backward reads
    the sign from the input, which the graph keeps anyway."""

    def __init__(self, slope):
        self.slope = slope

    def _factor(self, xb, out):
        """``out = 1`` where ``xb > 0``, else ``slope``."""
        s = out.dtype.type(self.slope)
        if 0 <= self.slope <= 1:
            np.maximum(xb > 0, s, out=out)
        else:
            np.multiply(xb > 0, out.dtype.type(1 - self.slope), out=out)
            out += s

    def forward(self, x):
        y, s = np.empty_like(x), x.dtype.type(self.slope)

        def block(xb, yb):
            if 0 <= self.slope <= 1:
                np.multiply(xb, s, out=yb)
                np.maximum(xb, yb, out=yb)
            else:
                self._factor(xb, yb)
                yb *= xb
        blockwise(block, x, y)
        return y

    def backward(self, gy):
        g = np.empty_like(gy)

        def block(gyb, xb, gb):
            self._factor(xb, gb)
            gb *= gyb
        blockwise(block, gy, self.inputs[0].data, g)
        return g


class ReLU6(Function):
    def forward(self, x):
        if self.recording:  # the mask is only needed by backward
            self.inside = (x > 0) & (x < 6)
        return np.clip(x, 0, 6)

    def backward(self, gy):
        return gy * self.inside


class Clip(Function):
    """y = min(max(x, low), high) (a missing bound is not applied).

    The gradient passes where ``low <= x <= high``, bounds included, as ``torch.clamp``;
    with ``low > high`` every output is ``high`` (as NumPy and PyTorch).
    """

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def forward(self, x):
        y, inside = x, np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
            y = np.maximum(y, x.dtype.type(self.low))
        if self.high is not None:
            inside &= x <= self.high
            y = np.minimum(y, x.dtype.type(self.high))
        self.inside = inside
        return y

    def backward(self, gy):
        return gy * self.inside


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: uses exp(-|x|) <= 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    def forward(self, x):
        self.y = stable_sigmoid(x)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Softmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        shifted = x - x.max(axis=self.axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))
        self.y = y
        return y

    def backward(self, gy):
        return gy - np.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def relu(x) -> Tensor:
    """max(x, 0) elementwise."""
    return ReLU()(float_tensor(x))


def add_relu(a, b) -> Tensor:
    """max(a + b, 0) elementwise, as ``relu(a + b)`` but in one op that keeps only its output
    (a residual block's join: less memory in training)."""
    a = float_tensor(a)
    return AddReLU()(a, as_tensor(b, a))


def relu6(x) -> Tensor:
    """min(max(x, 0), 6) elementwise (MobileNet)."""
    return ReLU6()(float_tensor(x))


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return LeakyReLU(float(negative_slope))(float_tensor(x))


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)), finite for any x."""
    return Sigmoid()(float_tensor(x))


def tanh(x) -> Tensor:
    return Tanh()(float_tensor(x))


def swish(x) -> Tensor:
    """x * sigmoid(x) (also called SiLU; EfficientNet)."""
    x = float_tensor(x)
    return x * sigmoid(x)


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``; finite for logits of +-1e4."""
    return Softmax(axis)(float_tensor(x))


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) computed stably along ``axis``."""
    return LogSoftmax(axis)(float_tensor(x))


def clip(x, low: float | None = None, high: float | None = None) -> Tensor:
    """``min(max(x, low), high)`` elementwise; ``None`` leaves that side open.

    The gradient is ``1`` where ``low <= x <= high`` and ``0`` outside (``torch.clamp``).

    >>> clip(x, 0.0, 1.0)          # pixels into [0, 1]
    """
    if low is None and high is None:
        raise ValueError("clip needs low or high (or both), received low=None, high=None")
    for name, value in (("low", low), ("high", high)):
        if value is not None and np.isnan(float(value)):
            raise ValueError(f"clip bounds must be numbers or None, received {name}={value!r}")
    return Clip(None if low is None else float(low), None if high is None else float(high))(float_tensor(x))
