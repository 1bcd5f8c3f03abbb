"""Pooling: max, average (2-D, NHWC) and global average.

Output size per axis, as for convolution (one shared helper)::

    OH = floor((H + pad_top + pad_bottom - KH) / stride) + 1

* max pooling pads with -inf, so padding never wins;
* average pooling divides by the number of *real* (non-padding) pixels in
  each window (PyTorch's ``count_include_pad=False``).

Both walk over the ``KH*KW`` kernel taps: each tap is a strided view of the
padded input with the output's shape, so a pass is one vectorised NumPy op.

Tie rule of max pooling: the gradient goes to the **first** maximum of the
window in row-major order (as ``strided.course.create_mask_from_window`` and
PyTorch do).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor
from .conv import _tap, crop_spatial, pad_spatial
from .parallel import parallel_for
from .utils import float_tensor, check_positive, get_conv_outsize, pair, resolve_padding

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d"]


def _pool_args(x, kernel_size, stride, padding, name):
    x = float_tensor(x, "input")
    if x.ndim != 4:
        raise ValueError(f"{name} input must be a 4-D NHWC array, received shape {tuple(x.shape)}")
    kernel = pair(kernel_size, "kernel_size")
    check_positive(kernel, "kernel_size", kernel_size)
    stride_t = kernel if stride is None else pair(stride, "stride")
    check_positive(stride_t, "stride", stride)
    pads = resolve_padding(padding, x.shape[1:3], kernel, stride_t, (1, 1))
    for axis, (s, k, (pb, pa)) in enumerate(zip(x.shape[1:3], kernel, pads)):
        if s + pb + pa < k:
            raise ValueError(f"pooling window {k} is larger than the padded input ({s} + {pb} + {pa}) "
                             f"along spatial axis {axis}; input shape {tuple(x.shape)}")
        if max(pb, pa) > k // 2 and not isinstance(padding, str):
            raise ValueError(f"padding must be at most half the kernel size, received padding={padding!r} "
                             f"for kernel_size={kernel_size!r}")
    out = tuple(get_conv_outsize(s, k, st, pb, pa) for s, k, st, (pb, pa) in zip(x.shape[1:3], kernel, stride_t, pads))
    return x, kernel, stride_t, pads, out


class MaxPool2d(Function):
    """y[n, i, j, c] = max over the window of x_pad (padding = -inf)."""

    def __init__(self, kernel, stride, pads, out_spatial):
        self.kernel, self.stride, self.pads, self.out = kernel, stride, pads, out_spatial

    def forward(self, x):
        xp = pad_spatial(x, self.pads, value=-np.inf)
        N, C = x.shape[0], x.shape[-1]
        y = np.empty((N,) + self.out + (C,), dtype=x.dtype)
        offsets = list(np.ndindex(*self.kernel))
        # winner[k] = index of the first maximal tap, kept for backward
        winner = np.zeros(y.shape, dtype=np.min_scalar_type(len(offsets))) if self.recording else None

        def work(lo, hi):
            part = xp[lo:hi]
            acc = y[lo:hi]
            np.copyto(acc, _tap(part, offsets[0], self.stride, (1, 1), self.out))
            if winner is None:
                for offset in offsets[1:]:
                    np.maximum(acc, _tap(part, offset, self.stride, (1, 1), self.out), out=acc)
                return
            win = winner[lo:hi]
            better = np.empty(acc.shape, dtype=bool)
            for k, offset in enumerate(offsets[1:], start=1):
                tap = _tap(part, offset, self.stride, (1, 1), self.out)
                np.greater(tap, acc, out=better)  # strict: earlier taps win ties
                np.copyto(acc, tap, where=better)
                np.copyto(win, k, where=better)

        parallel_for(N, work)
        self.winner, self.x_shape, self.padded_shape = winner, x.shape, xp.shape
        return y

    def backward(self, gy):
        offsets = list(np.ndindex(*self.kernel))
        gxp = np.zeros(self.padded_shape, dtype=gy.dtype)
        overlap = any(k > s for k, s in zip(self.kernel, self.stride))

        def work(lo, hi):
            part = gxp[lo:hi]
            win, g = self.winner[lo:hi], gy[lo:hi]
            for k, offset in enumerate(offsets):
                target = _tap(part, offset, self.stride, (1, 1), self.out)
                if overlap:
                    target += np.where(win == k, g, 0)
                else:
                    np.copyto(target, g, where=(win == k))

        parallel_for(gy.shape[0], work)
        return crop_spatial(gxp, self.pads)


class AvgPool2d(Function):
    """y = (sum of the real pixels in the window) / (their count)."""

    def __init__(self, kernel, stride, pads, out_spatial):
        self.kernel, self.stride, self.pads, self.out = kernel, stride, pads, out_spatial

    def _counts(self, spatial, dtype):
        """Real pixels per window, shape (1, OH, OW, 1); None when there is no padding."""
        if not any(b or a for b, a in self.pads):
            return None
        ones = pad_spatial(np.ones((1,) + spatial + (1,), dtype=dtype), self.pads, value=0.0)
        total = np.zeros((1,) + self.out + (1,), dtype=dtype)
        for offset in np.ndindex(*self.kernel):
            total += _tap(ones, offset, self.stride, (1, 1), self.out)
        return total

    def forward(self, x):
        xp = pad_spatial(x, self.pads, value=0.0)
        N, C = x.shape[0], x.shape[-1]
        y = np.empty((N,) + self.out + (C,), dtype=x.dtype)
        offsets = list(np.ndindex(*self.kernel))

        def work(lo, hi):
            part, acc = xp[lo:hi], y[lo:hi]
            np.copyto(acc, _tap(part, offsets[0], self.stride, (1, 1), self.out))
            for offset in offsets[1:]:
                acc += _tap(part, offset, self.stride, (1, 1), self.out)

        parallel_for(N, work)
        self.counts = self._counts(x.shape[1:3], x.dtype)
        self.padded_shape = xp.shape
        y *= (1.0 / np.prod(self.kernel)) if self.counts is None else (1.0 / self.counts)
        return y

    def backward(self, gy):
        g = gy * ((1.0 / np.prod(self.kernel)) if self.counts is None else (1.0 / self.counts))
        gxp = np.zeros(self.padded_shape, dtype=gy.dtype)

        def work(lo, hi):
            part = gxp[lo:hi]
            for offset in np.ndindex(*self.kernel):
                _tap(part, offset, self.stride, (1, 1), self.out)[...] += g[lo:hi]

        parallel_for(gy.shape[0], work)
        return crop_spatial(gxp, self.pads)


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Max pooling.  x ``(N, H, W, C)`` -> ``(N, OH, OW, C)``; ``stride`` defaults to the kernel size.

    >>> y = max_pool2d(x, 2)                 # halves H and W
    """
    x, kernel, stride_t, pads, out = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    return MaxPool2d(kernel, stride_t, pads, out)(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Average pooling (padding excluded from the count).  x ``(N, H, W, C)`` -> ``(N, OH, OW, C)``."""
    x, kernel, stride_t, pads, out = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    return AvgPool2d(kernel, stride_t, pads, out)(x)


class GlobalAvgPool(Function):
    """y[n, c] = mean over every spatial position of x[n, ..., c]."""

    def forward(self, x):
        self.shape = x.shape
        self.count = int(np.prod(x.shape[1:-1]))
        return x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)

    def backward(self, gy):
        g = (gy * (1.0 / self.count)).reshape((gy.shape[0],) + (1,) * (len(self.shape) - 2) + (gy.shape[1],))
        return np.broadcast_to(g, self.shape)


def global_avg_pool2d(x, keepdims: bool = False) -> Tensor:
    """Mean over H and W: ``(N, H, W, C) -> (N, C)`` (or ``(N, 1, 1, C)`` with keepdims)."""
    x = float_tensor(x, "input")
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d input must be a 4-D NHWC array, received shape {tuple(x.shape)}")
    y = GlobalAvgPool()(x)
    return y.reshape(x.shape[0], 1, 1, x.shape[-1]) if keepdims else y
