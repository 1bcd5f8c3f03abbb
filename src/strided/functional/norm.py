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
from .parallel import blas_single_threaded, blocks, parallel_blocks, parallel_for
from .utils import float_tensor

__all__ = ["batch_norm"]


def _wide(x2: np.ndarray) -> tuple:
    """View ``(M, C)`` as ``(M/r, r*C)`` with rows of a few hundred numbers.

    Per-channel arithmetic on ``(M, C)`` broadcasts a ``(C,)`` vector and NumPy
    then loops ``C`` numbers at a time; on the wide view the same vector tiled
    ``r`` times makes every inner loop long.  Returns ``(view, r)``.
    """
    M, C = x2.shape
    r = 1
    while r * 2 * C <= 512 and M % (r * 2) == 0:
        r *= 2
    return x2.reshape(M // r, r * C), r


def _column_sums(work_rows, M: int, C: int, row_bytes: int, dtype, count: int = 1) -> list:
    """Sum ``count`` per-block quantities over all rows, block by block in parallel.

    ``work_rows(lo, hi)`` returns a tuple of ``count`` arrays ``(hi-lo, C)``
    (computed in cache); their column sums (a BLAS matrix-vector product each)
    are accumulated per thread and added up.
    """
    partials = []

    def work(lo, hi):
        acc = np.zeros((count, C), dtype=dtype)
        for b0, b1 in blocks(lo, hi, row_bytes):
            ones = np.ones(b1 - b0, dtype=dtype)
            for i, part in enumerate(work_rows(b0, b1)):
                acc[i] += ones @ part
        partials.append(acc)

    with blas_single_threaded():
        parallel_for(M, work, work_bytes=M * row_bytes * count)
    return list(np.sum(partials, axis=0))


def column_moments(x2: np.ndarray, row_bytes: int) -> tuple:
    """Per-column ``(mean, M2)`` of ``x2`` ``(R, L)`` (``M2`` = sum of squared deviations from
    the mean) in ONE pass over memory, float64.

    Each cache-sized block gives its own mean and centred ``M2`` (BLAS column sums while the
    block is in cache); blocks are combined by Chan, Golub and LeVeque's rule, exact and as
    stable as the two-pass formula::

        n = na + nb;  mean = mean_a + d * nb / n;  M2 = M2_a + M2_b + d**2 * na * nb / n   (d = mean_b - mean_a)
    """
    R, L = x2.shape
    partials = []

    def work(lo, hi):
        n_acc, mean_acc, m2_acc = 0, np.zeros(L), np.zeros(L)
        buffer = None
        for b0, b1 in blocks(lo, hi, row_bytes):
            part, n = x2[b0:b1], b1 - b0
            ones = np.ones(n, dtype=x2.dtype)
            mean_b = (ones @ part) / n
            if buffer is None or buffer.shape[0] < n:
                buffer = np.empty((n, L), dtype=x2.dtype)
            centred = np.subtract(part, mean_b.astype(x2.dtype), out=buffer[:n])
            m2_b = ones @ np.square(centred, out=centred)
            n_acc, mean_acc, m2_acc = _combine(n_acc, mean_acc, m2_acc, n, mean_b, m2_b)
        partials.append((n_acc, mean_acc, m2_acc))

    with blas_single_threaded():
        parallel_for(R, work, work_bytes=2 * x2.nbytes)
    n, mean, m2 = partials[0]
    for other in partials[1:]:
        n, mean, m2 = _combine(n, mean, m2, *other)
    return mean, m2


def _combine(na, mean_a, m2_a, nb, mean_b, m2_b) -> tuple:
    """Chan et al.'s pairwise update of (count, mean, M2)."""
    if na == 0:
        return nb, np.asarray(mean_b, np.float64), np.asarray(m2_b, np.float64)
    n = na + nb
    d = mean_b - mean_a
    return n, mean_a + d * (nb / n), m2_a + m2_b + d * d * (na * nb / n)


class BatchNorm(Function):
    """Everything is done in cache-sized blocks of rows spread over the cores;
    ``xhat`` is recomputed from ``x`` in backward instead of being stored."""

    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, gamma, beta):
        C = x.shape[-1]
        x2, r = _wide(x.reshape(-1, C))
        R, L, row_bytes = x2.shape[0], x2.shape[1], x2[0].nbytes
        M = R * r
        self.r = r
        if self.training:
            # the wide view's L = r*C columns are r interleaved copies of the C channels, R rows each
            col_mean, col_m2 = (v.reshape(r, C) for v in column_moments(x2, row_bytes))
            mean = col_mean.mean(axis=0)
            var = (col_m2.sum(axis=0) + R * np.square(col_mean - mean).sum(axis=0)) / M
            inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
            m = self.momentum
            if self.running_mean is not None:
                self.running_mean *= 1 - m
                self.running_mean += m * mean
            if self.running_var is not None:
                self.running_var *= 1 - m
                self.running_var += m * var * (M / max(M - 1, 1))
        else:
            if self.running_mean is None or self.running_var is None:
                raise ValueError("batch_norm with training=False needs running_mean and running_var")
            mean = self.running_mean.astype(x.dtype)
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).astype(x.dtype)
        scale = (gamma * inv_std).astype(x.dtype, copy=False)
        shift = (beta - mean * scale).astype(x.dtype, copy=False)
        scale_wide, shift_wide = np.tile(scale, r), np.tile(shift, r)
        y = np.empty_like(x2)

        def work(lo, hi):
            np.multiply(x2[lo:hi], scale_wide, out=y[lo:hi])
            y[lo:hi] += shift_wide

        parallel_blocks(R, row_bytes, work)
        if self.recording:
            self.x2, self.scale, self.mean, self.inv_std = x2, scale, mean.astype(x.dtype), inv_std
            self.mean_wide = np.tile(mean, r).astype(x.dtype)
        return y.reshape(x.shape)

    def backward(self, gy):
        C, r = gy.shape[-1], self.r
        g2 = gy.reshape(-1, r * C)
        R, L, row_bytes = g2.shape[0], g2.shape[1], g2[0].nbytes
        M = R * r
        x2, mean_wide = self.x2, self.mean_wide
        # sum(gy * xhat) = sum(gy * (x - mean)) * inv_std
        def gy_and_gy_xc(lo, hi):
            xc = np.subtract(x2[lo:hi], mean_wide)
            return g2[lo:hi], np.multiply(xc, g2[lo:hi], out=xc)

        sums = _column_sums(gy_and_gy_xc, R, L, row_bytes, gy.dtype, count=2)
        sum_gy, sum_gy_xc = (v.reshape(r, C).sum(axis=0) for v in sums)
        inv_std = self.inv_std
        sum_gy_xhat = sum_gy_xc * inv_std
        gx = None
        if self.needs_grad[0]:
            a = self.scale
            gx = np.empty_like(g2)
            if self.training:
                # gx = a*gy + b*xhat + c = a*gy + (b*inv_std)*x + (c - b*inv_std*mean)
                b = -a * sum_gy_xhat / M
                bx = b * inv_std
                c = -a * sum_gy / M - bx * self.mean
                a_w, bx_w, c_w = (np.tile(v, r).astype(gy.dtype) for v in (a, bx, c))

                def work(lo, hi):
                    out = gx[lo:hi]
                    np.multiply(g2[lo:hi], a_w, out=out)
                    out += x2[lo:hi] * bx_w
                    out += c_w
            else:
                a_w = np.tile(a, r)

                def work(lo, hi):
                    np.multiply(g2[lo:hi], a_w, out=gx[lo:hi])
            parallel_blocks(R, row_bytes, work)
            gx = gx.reshape(gy.shape)
        return gx, sum_gy_xhat if self.needs_grad[1] else None, sum_gy if self.needs_grad[2] else None


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
