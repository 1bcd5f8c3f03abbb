"""Resampling ops of detection networks: nearest ``upsample`` and darknet's ``reorg``.

upsample  y[n, i, j, c] = scale * x[n, i // s, j // s, c]      (N, H*s, W*s, C)
          gx[n, a, b, c] = scale * sum of gy over the s x s block it was copied to
reorg     darknet's space-to-depth of YOLOv2 (the "passthrough" layer):
          (N, H, W, C) -> (N, H/s, W/s, C*s*s), a pure permutation of the numbers,
          so its backward is the inverse permutation of the gradient.

darknet's reorg (``reorg_cpu`` called with ``forward=0`` by ``forward_reorg_layer``)
is *not* the tidy space-to-depth of TensorFlow: it reads its input buffer (CHW) as
if it were an image of ``C / s^2`` channels and size ``(H*s, W*s)``, and writes
channel ``k = (dy*s + dx) * C/s^2 + c2`` at ``(j, i)`` from that image's pixel
``(c2, j*s + dy, i*s + dx)``; the ``(C, H, W)`` result is then read by the next layer as
``(C*s^2, H/s, W/s)``.  Real YOLOv2 weights were trained with this order (OpenCV
reproduces it), so :func:`reorg` follows it exactly; ``tests/functional/test_resample.py``
checks it against a loop port of ``reorg_cpu``.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor
from .utils import float_tensor

__all__ = ["upsample", "reorg"]


def _check_nhwc(x: Tensor, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} input must be a 4-D NHWC array, received shape {tuple(x.shape)}")


def _check_stride(stride, name: str) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"{name} stride must be a positive integer, received stride={stride!r}")
    return int(stride)


class Upsample(Function):
    """Nearest-neighbour upsampling by an integer factor, times ``scale``."""

    def __init__(self, stride: int, scale: float):
        self.stride, self.scale = stride, scale

    def forward(self, x):
        N, H, W, C = x.shape
        s = self.stride
        # broadcast each pixel over an s x s block, then merge (H, s) and (W, s)
        y = np.broadcast_to(x[:, :, None, :, None, :], (N, H, s, W, s, C)).reshape(N, H * s, W * s, C)
        return y * self.scale if self.scale != 1 else y.copy()

    def backward(self, gy):
        N, HS, WS, C = gy.shape
        s = self.stride
        gx = gy.reshape(N, HS // s, s, WS // s, s, C).sum(axis=(2, 4))
        return gx * self.scale if self.scale != 1 else gx


def upsample(x, stride: int = 2, scale: float = 1.0) -> Tensor:
    """Nearest upsampling of NHWC ``x`` by ``stride``: ``(N, H, W, C) -> (N, H*s, W*s, C)``.

    ``y[n, i, j, c] = scale * x[n, i // s, j // s, c]`` (darknet's ``[upsample]`` with its
    ``scale``; PyTorch's ``F.interpolate(mode="nearest", scale_factor=s)`` when scale is 1).
    """
    x = float_tensor(x, "input")
    _check_nhwc(x, "upsample")
    stride = _check_stride(stride, "upsample")
    return Upsample(stride, float(scale))(x)


class Reorg(Function):
    """darknet's reorg (see the module docstring): a fixed permutation of the numbers."""

    def __init__(self, stride: int):
        self.stride = stride

    def forward(self, x):
        N, H, W, C = x.shape
        s = self.stride
        self.in_shape = x.shape
        C2 = C // (s * s)
        chw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        # the CHW buffer read as (C2, H*s, W*s) = (C2, H, s, W, s) [c2, j, dy, i, dx]
        image = chw.reshape(N, C2, H, s, W, s)
        out = image.transpose(0, 3, 5, 1, 2, 4)          # (N, dy, dx, c2, j, i) -> channel (dy*s+dx)*C2+c2
        out = np.ascontiguousarray(out).reshape(N, C * s * s, H // s, W // s)  # read as the next layer does
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1))

    def backward(self, gy):
        N, H, W, C = self.in_shape
        s = self.stride
        C2 = C // (s * s)
        g = np.ascontiguousarray(gy.transpose(0, 3, 1, 2)).reshape(N, s, s, C2, H, W)  # (N, dy, dx, c2, j, i)
        g = g.transpose(0, 3, 4, 1, 5, 2)                 # (N, c2, j, dy, i, dx)
        chw = np.ascontiguousarray(g).reshape(N, C, H, W)
        return np.ascontiguousarray(chw.transpose(0, 2, 3, 1))


def reorg(x, stride: int = 2) -> Tensor:
    """darknet's ``[reorg]``: ``(N, H, W, C) -> (N, H/s, W/s, C*s*s)`` in darknet's own order.

    Needs ``C % s^2 == 0`` and ``H % s == W % s == 0`` (as darknet's buffer reading does).
    """
    x = float_tensor(x, "input")
    _check_nhwc(x, "reorg")
    s = _check_stride(stride, "reorg")
    N, H, W, C = x.shape
    if C % (s * s) or H % s or W % s:
        raise ValueError(f"reorg with stride={s} needs channels divisible by {s * s} and height and width "
                         f"divisible by {s}, received input shape {tuple(x.shape)} (NHWC)")
    return Reorg(s)(x)
