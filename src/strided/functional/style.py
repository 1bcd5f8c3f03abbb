"""Ops of neural style transfer: the Gram matrix of a feature map and the total variation of an image.

gram_matrix(x (N, H, W, C)) -> (N, C, C)            unnormalised, as in the course
    F = x.reshape(N, H*W, C)                         one row per position, one column per channel
    G[n] = F[n]^T F[n]        G[n, c, d] = sum_{h,w} x[n, h, w, c] x[n, h, w, d]
    gF[n] = F[n] (gy[n] + gy[n]^T)                   (G is symmetric in F)

total_variation(x (N, H, W, C)) -> scalar            sum over the batch
    squared (default, smooth: good for L-BFGS):
        TV = sum (x[:, i+1, j] - x[:, i, j])^2 + sum (x[:, i, j+1] - x[:, i, j])^2
    squared=False: the same with |.| (TensorFlow's ``tf.image.total_variation``, summed over the batch)
    gx: each difference d = x[b] - x[a] sends +g'(d) to x[b] and -g'(d) to x[a], g'(d) = 2d or sign(d).

The course writes the Gram matrix of ``A`` ``(n_C, n_H*n_W)`` as ``A A^T``: the same numbers as
``gram_matrix`` here on NHWC activations (see :func:`strided.course.gram_matrix`).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor
from .utils import check_rank, float_tensor

__all__ = ["gram_matrix", "total_variation"]


class Gram(Function):
    def forward(self, x):
        N, H, W, C = x.shape
        self.shape = x.shape
        self.F = np.ascontiguousarray(x).reshape(N, H * W, C)
        return np.matmul(self.F.transpose(0, 2, 1), self.F)

    def backward(self, gy):
        gF = np.matmul(self.F, gy + gy.transpose(0, 2, 1))
        return gF.reshape(self.shape)


def gram_matrix(x) -> Tensor:
    """Gram matrices ``(N, C, C)`` of NHWC feature maps ``x`` ``(N, H, W, C)``: ``G[n] = F^T F``, F = x[n]
    as ``(H*W, C)``.  Unnormalised (divide by ``H*W`` or ``C*H*W`` yourself; see :mod:`strided.style.costs`).

    >>> gram_matrix(sd.tensor(np.ones((1, 2, 2, 3)))).shape      # (1, 3, 3), every entry 4
    """
    x = float_tensor(x, "x")
    check_rank(x, 4, "(N, H, W, C)", "x")
    return Gram()(x)


class TotalVariation(Function):
    def __init__(self, squared: bool):
        self.squared = squared

    def forward(self, x):
        self.dh = x[:, 1:] - x[:, :-1]          # (N, H-1, W, C) vertical differences
        self.dw = x[:, :, 1:] - x[:, :, :-1]    # (N, H, W-1, C) horizontal differences
        self.shape = x.shape
        if self.squared:
            total = np.vdot(self.dh, self.dh) + np.vdot(self.dw, self.dw)
        else:
            total = np.abs(self.dh).sum() + np.abs(self.dw).sum()
        return np.asarray(total, dtype=x.dtype)

    def backward(self, gy):
        if self.squared:
            gh, gw = (2 * gy) * self.dh, (2 * gy) * self.dw
        else:
            gh, gw = gy * np.sign(self.dh), gy * np.sign(self.dw)
        gx = np.zeros(self.shape, dtype=gh.dtype)
        gx[:, 1:] += gh
        gx[:, :-1] -= gh
        gx[:, :, 1:] += gw
        gx[:, :, :-1] -= gw
        return gx


def total_variation(x, squared: bool = True) -> Tensor:
    """Total variation of NHWC images ``x`` ``(N, H, W, C)``, a scalar summed over the batch.

    ``squared=True``: sum of squared differences of vertical and horizontal neighbours (smooth;
    neural-style's TV term is this times ``tv_weight / 2``); ``squared=False``: sum of absolute
    differences (TensorFlow's ``tf.image.total_variation``, summed over the batch).
    """
    x = float_tensor(x, "x")
    check_rank(x, 4, "(N, H, W, C)", "x")
    return TotalVariation(bool(squared))(x)
