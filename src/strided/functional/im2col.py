"""im2col and col2im, block by block: the engine room of convolution.

Every window of a padded channels-last input ``xp`` ``(N, *S, C)`` is a strided
*view* ``(N, *OS, *K, C)`` (no copy).  Laying the windows out as rows gives the
``cols`` matrix ``(N*prod(OS), prod(K)*C)``, and convolution is one GEMM::

    y(M, O) = cols(M, K*C) @ w(K*C, O)        forward
    gw      = cols.T @ gy                     weight gradient
    gcols   = gy @ w.T, added back per window input gradient (col2im)

Materialising the whole ``cols`` matrix means writing and re-reading tens of
megabytes.  Instead the rows are produced in *blocks* small enough to stay in
the CPU cache (``BLOCK_BYTES``): copy a block of windows, multiply it at once,
move on.  Blocks are spread over the cores (one single-threaded GEMM per
core), and the weight gradient recomputes the blocks rather than keeping them.

A block ``(n0, n1, o0, o1)`` covers whole images ``n0:n1`` or a run ``o0:o1``
of one image's first output axis, so its outputs are the contiguous slice
``y[n0:n1, o0:o1]``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .parallel import blas_single_threaded, parallel_for

import os
BLOCK_BYTES = int(os.environ.get("STRIDED_BLOCK", 1 << 20))  # cols bytes per block: about one L2 cache


def windows(xp: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, out_spatial: tuple) -> np.ndarray:
    """Strided view ``(N, *OS, *K, C)`` of every window of a padded input (no copy)."""
    sN, *sS, sC = xp.strides
    shape = (xp.shape[0],) + tuple(out_spatial) + tuple(kernel) + (xp.shape[-1],)
    strides = ((sN,) + tuple(s * st for s, st in zip(sS, stride))
               + tuple(s * d for s, d in zip(sS, dilation)) + (sC,))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def row_blocks(N: int, out_spatial: tuple, row_bytes: int, budget: int = BLOCK_BYTES) -> list:
    """Blocks ``(n0, n1, o0, o1)`` of output rows whose cols take about ``budget`` bytes:
    several whole images when an image is small, else a run of one image's first axis."""
    OS0 = out_spatial[0]
    line = int(np.prod(out_spatial[1:])) * row_bytes  # bytes per index of the first output axis
    images = budget // max(1, line * OS0)
    if images >= 1:
        return [(n, min(n + images, N), 0, OS0) for n in range(0, N, images)]
    step = max(1, budget // max(1, line))
    return [(n, n + 1, o0, min(o0 + step, OS0)) for n in range(N) for o0 in range(0, OS0, step)]


class Im2col:
    """The ``cols`` matrix of a padded input, served block by block.

    ``cols(block, buffer)`` returns the ``(rows, prod(K)*C)`` rows of one block.
    With one input channel a window's innermost run is a single number and a
    row-by-row copy is slow, so those blocks are built tap by tap as the
    transpose ``(prod(K), rows)`` and returned as a transposed view (the same
    matrix to ``@`` and BLAS).
    """

    def __init__(self, xp: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, out_spatial: tuple):
        self.view = windows(xp, kernel, stride, dilation, out_spatial)
        self.nsp = len(kernel)
        self.taps = list(np.ndindex(*kernel))
        self.kc = len(self.taps) * xp.shape[-1]
        self.inner = int(np.prod(out_spatial[1:]))
        self.dtype = xp.dtype
        self.tap_major = xp.shape[-1] == 1
        self.blocks = row_blocks(xp.shape[0], out_spatial, self.kc * xp.itemsize)
        self.max_rows = max((n1 - n0) * (o1 - o0) for n0, n1, o0, o1 in self.blocks) * self.inner

    def buffer(self) -> np.ndarray:
        return np.empty(self.max_rows * self.kc, dtype=self.dtype)

    def cols(self, block: tuple, buffer: np.ndarray) -> np.ndarray:
        n0, n1, o0, o1 = block
        src = self.view[n0:n1, o0:o1]  # (images, o1-o0, *OS[1:], *K, C)
        rows = (n1 - n0) * (o1 - o0) * self.inner
        if self.tap_major:
            dst = buffer[:rows * self.kc].reshape((len(self.taps),) + src.shape[:self.nsp + 1])
            for k, tap in enumerate(self.taps):
                np.copyto(dst[k], src[(Ellipsis,) + tap + (0,)])
            return dst.reshape(len(self.taps), rows).T
        dst = buffer[:rows * self.kc].reshape(src.shape)
        np.copyto(dst, src)
        return dst.reshape(rows, self.kc)


def _group_cols(cols: np.ndarray, taps: int, groups: int) -> np.ndarray:
    """``(rows, K*C)`` -> ``(G, rows, K*C/G)``: each group's channels of every tap."""
    rows = cols.shape[0]
    return cols.reshape(rows, taps, groups, -1).transpose(2, 0, 1, 3).reshape(groups, rows, -1)


def apply_activation(out: np.ndarray, activation: str | None) -> None:
    """In place: ``relu`` = max(out, 0), ``relu6`` = min(max(out, 0), 6), ``None`` = nothing."""
    if activation == "relu":
        np.maximum(out, 0, out=out)
    elif activation == "relu6":
        np.clip(out, 0, 6, out=out)


def conv_gemm(im: Im2col, w2: np.ndarray, y: np.ndarray, b: np.ndarray | None = None,
              activation: str | None = None) -> None:
    """``y = act(cols @ w2 + b)`` block by block, written into ``y`` ``(N, *OS, O)``.

    ``w2`` is ``(K*C, O)``, or ``(G, K*C/G, O/G)`` for a grouped convolution.  The bias
    and the activation (see :func:`apply_activation`) are applied while the block is in cache.
    """
    O = y.shape[-1]
    grouped = w2.ndim == 3

    def work(lo, hi):
        buffer = im.buffer()
        for block in im.blocks[lo:hi]:
            n0, n1, o0, o1 = block
            cols = im.cols(block, buffer)
            out = y[n0:n1, o0:o1].reshape(-1, O)
            if grouped:
                G = w2.shape[0]
                part = _group_cols(cols, len(im.taps), G) @ w2  # (G, rows, O/G)
                out.reshape(-1, G, O // G)[...] = part.transpose(1, 0, 2)
            else:
                np.matmul(cols, w2, out=out)
            if b is not None:
                out += b  # while the block is still in cache
            apply_activation(out, activation)

    with blas_single_threaded():
        parallel_for(len(im.blocks), work, work_bytes=y.nbytes * im.kc // 8)  # ~ the GEMM's cost in bytes of copying


def conv_grad_weight(im: Im2col, gy: np.ndarray, groups: int) -> np.ndarray:
    """``gw = cols.T @ gy``: ``(K*C, O)``, or ``(G, K*C/G, O/G)`` when grouped."""
    O = gy.shape[-1]
    partials = []  # one accumulator per thread, summed at the end

    def work(lo, hi):
        buffer = im.buffer()
        if groups == 1:
            acc, tmp = np.zeros((im.kc, O), gy.dtype), np.empty((im.kc, O), gy.dtype)
        else:
            acc = np.zeros((groups, im.kc // groups, O // groups), gy.dtype)
        for block in im.blocks[lo:hi]:
            n0, n1, o0, o1 = block
            cols = im.cols(block, buffer)
            g = gy[n0:n1, o0:o1].reshape(-1, O)
            if groups == 1:
                np.matmul(cols.T, g, out=tmp)
                acc += tmp
            else:
                gg = g.reshape(-1, groups, O // groups).transpose(1, 0, 2)
                acc += _group_cols(cols, len(im.taps), groups).transpose(0, 2, 1) @ gg
        partials.append(acc)

    with blas_single_threaded():
        parallel_for(len(im.blocks), work, work_bytes=gy.nbytes * im.kc // 8)
    return np.sum(partials, axis=0) if len(partials) > 1 else partials[0]


def col2im_grad_input(gy: np.ndarray, w2: np.ndarray, padded_shape: tuple, kernel: tuple, stride: tuple,
                      dilation: tuple) -> np.ndarray:
    """Input gradient by col2im: ``gcols = gy @ w2.T`` per block, each window's
    share added back into the padded input gradient.  Blocks are split over the
    threads by their first image (the windows of one image overlap, so all
    blocks of an image stay on one thread)."""
    N, C = padded_shape[0], padded_shape[-1]
    out_spatial, O = gy.shape[1:-1], gy.shape[-1]
    taps = list(np.ndindex(*kernel))
    blocks = row_blocks(N, out_spatial, len(taps) * C * gy.itemsize)
    gxp = np.zeros(padded_shape, dtype=gy.dtype)
    grouped = w2.ndim == 3
    if grouped:
        G = w2.shape[0]
        wt = np.swapaxes(w2, -1, -2)  # (G, O/G, K*C/G)
    else:
        # tap-major weights (K, O, C): each tap's gcols come out contiguous, so
        # adding them into gx runs over whole rows, not C numbers at a time
        wt = np.ascontiguousarray(w2.reshape(len(taps), C, O).transpose(0, 2, 1))

    def work(lo, hi):
        for n0, n1, o0, o1 in blocks:
            if not lo <= n0 < hi:
                continue
            g = gy[n0:n1, o0:o1].reshape(-1, O)
            block_shape = (n1 - n0, o1 - o0) + tuple(out_spatial[1:]) + (C,)
            if grouped:
                gcols = (g.reshape(-1, G, O // G).transpose(1, 0, 2) @ wt)  # (G, rows, K*C/G)
                gcols = gcols.reshape(G, -1, len(taps), C // G).transpose(2, 1, 0, 3)  # (K, rows, G, C/G)
            else:
                gcols = g @ wt  # (K, rows, C)
            for k, tap in enumerate(taps):
                first = slice(o0 * stride[0] + tap[0] * dilation[0],
                              (o1 - 1) * stride[0] + tap[0] * dilation[0] + 1, stride[0])
                rest = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                             for t, d, o, s in zip(tap[1:], dilation[1:], out_spatial[1:], stride[1:]))
                gxp[(slice(n0, n1), first) + rest] += gcols[k].reshape(block_shape)

    with blas_single_threaded():
        parallel_for(N, work, work_bytes=gy.nbytes * len(taps) * C // 8)
    return gxp
