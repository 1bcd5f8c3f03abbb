"""Batch normalisation over every axis but the last (channels-last layout).

Training (batch statistics, biased variance over the ``M = N*H*W`` values of
each channel)::

    mean = x.mean(0);  var = ((x - mean)**2).mean(0);  xhat = (x - mean) / sqrt(var + eps)
    y = gamma * xhat + beta
    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   # unbiased

Backward (the classic closed form, a = gamma / sqrt(var + eps))::

    gx = a * (gy - mean(gy) - xhat * mean(gy * xhat))
    ggamma = sum(gy * xhat);  gbeta = sum(gy)

Eval uses the running statistics: ``y = x * a + (beta - running_mean * a)``.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor, as_tensor
from .parallel import parallel_for
from .utils import float_tensor

__all__ = ["batch_norm"]


def _rows(n: int) -> int:
    return max(n // 65536, 1)  # parallel chunks only for large arrays


class BatchNorm(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, gamma, beta):
        C = x.shape[-1]
        x2 = x.reshape(-1, C)
        M = x2.shape[0]
        if self.training:
            mean = x2.mean(axis=0)
            xc = np.empty_like(x2)
            parallel_for(M, lambda lo, hi: np.subtract(x2[lo:hi], mean, out=xc[lo:hi]), min_chunk=65536 // C + 1)
            var = np.einsum("ij,ij->j", xc, xc) / M
            inv_std = 1.0 / np.sqrt(var + self.eps)
            if self.running_mean is not None:
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean
            if self.running_var is not None:
                m = self.momentum
                self.running_var *= 1 - m
                self.running_var += m * var * (M / max(M - 1, 1))
        else:
            if self.running_mean is None or self.running_var is None:
                raise ValueError("batch_norm with training=False needs running_mean and running_var")
            mean = self.running_mean.astype(x.dtype, copy=False)
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).astype(x.dtype, copy=False)
            xc = None
        scale = (gamma * inv_std).astype(x.dtype, copy=False)
        shift = beta - mean * scale
        y = np.empty_like(x2)

        def work(lo, hi):
            np.multiply(x2[lo:hi], scale, out=y[lo:hi])
            y[lo:hi] += shift

        parallel_for(M, work, min_chunk=65536 // C + 1)
        if self.recording:
            self.inv_std, self.scale = inv_std.astype(x.dtype, copy=False), scale
            if self.training:
                # keep xhat = xc * inv_std for the backward pass (in place: no new buffer)
                parallel_for(M, lambda lo, hi: np.multiply(xc[lo:hi], self.inv_std, out=xc[lo:hi]),
                             min_chunk=65536 // C + 1)
                self.xhat = xc
            else:
                self.xhat = (x2 - mean) * self.inv_std if self.needs_grad[1] else None
        return y.reshape(x.shape)

    def backward(self, gy):
        C = gy.shape[-1]
        g2 = gy.reshape(-1, C)
        M = g2.shape[0]
        xhat = self.xhat
        sum_gy = g2.sum(axis=0)
        need_gamma = self.needs_grad[1]
        sum_gy_xhat = np.einsum("ij,ij->j", g2, xhat) if (xhat is not None and (self.training or need_gamma)) else None
        gx = None
        if self.needs_grad[0]:
            a = self.scale
            gx = np.empty_like(g2)
            if self.training:
                b = -a * sum_gy_xhat / M
                c = -a * sum_gy / M

                def work(lo, hi):
                    out = gx[lo:hi]
                    np.multiply(g2[lo:hi], a, out=out)
                    out += xhat[lo:hi] * b
                    out += c
            else:
                def work(lo, hi):
                    np.multiply(g2[lo:hi], a, out=gx[lo:hi])
            parallel_for(M, work, min_chunk=65536 // C + 1)
            gx = gx.reshape(gy.shape)
        ggamma = sum_gy_xhat if need_gamma else None
        gbeta = sum_gy if self.needs_grad[2] else None
        return gx, ggamma, gbeta


def batch_norm(x, running_mean=None, running_var=None, gamma=None, beta=None, training: bool = True,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation of ``x`` ``(N, ..., C)`` per channel (the last axis).

    ``running_mean`` / ``running_var`` are ndarrays of shape ``(C,)`` updated in
    place in training (PyTorch's rule; unbiased variance).  ``gamma`` / ``beta``
    (``(C,)`` tensors) are the learnable scale and shift.
    """
    x = float_tensor(x, "input")
    if x.ndim < 2:
        raise ValueError(f"batch_norm input must have a batch and a channel axis, received shape {tuple(x.shape)}")
    C = x.shape[-1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is not None:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{name} must be an ndarray (updated in place), received {type(value).__name__}")
            if value.shape != (C,):
                raise ValueError(f"{name} must have shape ({C},) for {C} channels, received shape {value.shape}")
    if training and x.data.size // C < 2:
        raise ValueError(f"batch_norm in training needs more than one value per channel, "
                         f"received input shape {tuple(x.shape)}")
    affine = []
    for name, value, default in (("gamma", gamma, 1.0), ("beta", beta, 0.0)):
        value = Tensor(np.full(C, default, x.dtype)) if value is None else as_tensor(value, x)
        if value.shape != (C,):
            raise ValueError(f"{name} must have shape ({C},), received shape {tuple(value.shape)}")
        affine.append(value)
    return BatchNorm(running_mean, running_var, training, momentum, eps)(x, *affine)
