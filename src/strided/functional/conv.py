"""Convolution (2-D and 3-D, strided, padded, dilated, grouped, depthwise).

Layout: input ``(N, *S, C)`` (NHWC / NDHWC), weight ``(*K, C // groups, O)``
(HWIO / DHWIO), bias ``(O,)``, output ``(N, *OS, O)`` with, per spatial axis,

    OS = floor((S + pad_before + pad_after - dilation*(K-1) - 1) / stride) + 1

As in every deep-learning library, "convolution" is cross-correlation::

    y[n, o1, o2, co] = b[co] + sum_{i, j, c} x_pad[n, o1*s1 + i*d1, o2*s2 + j*d2, c] * w[i, j, c, co]

How it is computed (one mechanism for every number of spatial axes):

* **forward**: a strided *view* of the padded input exposes every window as
  ``(N, *OS, *K, C)`` without copying; one copy turns it into the ``cols``
  matrix ``(N*prod(OS), prod(K)*C)`` ("im2col"), and one GEMM with the
  weight matrix ``(prod(K)*C, O)`` gives the output.  With few output channels, ``r``
  adjacent windows per row (:mod:`.banded`); 3x3 stride 1 with many channels, Winograd's
  F(2x2, 3x3) (:mod:`.winograd`: 2.25x fewer multiplications).
* **weight gradient**: ``gw = cols.T @ gy`` (the cols recomputed block by block); with few
  output channels ``r`` adjacent windows per row (:mod:`.banded`); Winograd's adjoint where the
  forward uses Winograd.
* **input gradient**: with few input channels (LeNet's 5x5 on 6 channels) banded GEMMs
  over image rows (:mod:`.banded`).  Else, for stride 1 it *is* a convolution: ``gy`` padded by
  ``dilation*(K-1)`` convolved with the flipped kernel whose in/out channels
  are swapped.  For stride > 1 ``gcols = gy @ w.T`` is added back window by
  window ("col2im").
* **groups**: the same matrices, one batched GEMM per group;
  **depthwise** (``groups == C``, one input channel per group) skips the GEMM:
  ``prod(K)`` multiply-adds of shifted views.

Buffers are allocated with NumPy and reused by the allocator (see
``strided._runtime``); large copies are split across threads (``parallel``).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor
from .banded import banded_grad_input, banded_pays, grouped_forward, grouped_grad_weight, window_group
from .im2col import Im2col, apply_activation, col2im_grad_input, conv_gemm, conv_grad_weight, row_blocks
from .parallel import blas_single_threaded, parallel_for
from .utils import check_positive, check_rank, float_tensor, get_conv_outsize, ntuple, resolve_padding
from .winograd import winograd_conv, winograd_grad_weight, winograd_pays

__all__ = ["conv2d", "conv3d", "conv", "conv_output_shape", "ACTIVATIONS"]

ACTIVATIONS = (None, "relu", "relu6")  # what a convolution can apply to its output while it is in cache


# --------------------------------------------------------------------------- window helpers
def pad_spatial(x: np.ndarray, pads: tuple, value=0.0) -> np.ndarray:
    """Pad the spatial axes (1 .. ndim-2) of a channels-last array.

    A negative amount crops instead (used by the input gradient).  The copy is
    split over the threads by image.
    """
    if not any(b or a for b, a in pads):
        return x
    if any(b < 0 or a < 0 for b, a in pads):
        crop = (slice(None),) + tuple(slice(max(-b, 0), s - max(-a, 0)) for s, (b, a) in zip(x.shape[1:-1], pads))
        x = x[crop]
        pads = tuple((max(b, 0), max(a, 0)) for b, a in pads)
    shape = (x.shape[0],) + tuple(s + b + a for s, (b, a) in zip(x.shape[1:-1], pads)) + (x.shape[-1],)
    out = np.empty(shape, dtype=x.dtype)
    inner = tuple(slice(b, b + s) for s, (b, _) in zip(x.shape[1:-1], pads))

    def work(lo, hi):
        part = out[lo:hi]
        # fill only the border, then copy the interior (no full memset)
        for axis, (b, a) in enumerate(pads, start=1):
            for edge in ((slice(0, b) if b else None), (slice(part.shape[axis] - a, None) if a else None)):
                if edge is not None:
                    index = [slice(None)] * part.ndim
                    index[axis] = edge
                    part[tuple(index)] = value
        part[(slice(None),) + inner] = x[lo:hi]

    parallel_for(x.shape[0], work, work_bytes=2 * x.nbytes)
    return out


def add_channels(y2: np.ndarray, b: np.ndarray) -> None:
    """``y2 += b`` for ``y2`` of shape ``(M, C)``, fast also for few channels.

    NumPy's broadcast add loops over rows of only ``C`` numbers; viewing the
    contiguous buffer as rows of ``r*C`` numbers and adding ``b`` tiled ``r``
    times does the same work in long runs.
    """
    M, C = y2.shape
    r = max(1, 1024 // C)
    if C >= 256 or M < 2 * r or not y2.flags.c_contiguous:
        y2 += b
        return
    body = (M // r) * r
    y2[:body].reshape(-1, r * C).__iadd__(np.tile(b, r))
    if body < M:
        y2[body:] += b


def sum_channels(g2: np.ndarray) -> np.ndarray:
    """``g2.sum(axis=0)`` for ``(M, C)``, as a BLAS matrix-vector product (fast for few channels).

    As in :func:`add_channels`, a contiguous ``g2`` with few channels is viewed as rows of
    ``r*C`` numbers (``r`` a power of two dividing ``M``): the product then runs over long rows,
    and the ``r`` partial sums of each channel are added at the end (3x faster for C = 6).
    """
    M, C = g2.shape
    r = max(1, 512 // C) if g2.flags.c_contiguous else 1
    while r > 1 and M % r:
        r //= 2
    if r == 1:
        return np.ones(M, dtype=g2.dtype) @ g2
    return (np.ones(M // r, dtype=g2.dtype) @ g2.reshape(M // r, r * C)).reshape(r, C).sum(axis=0)


def crop_spatial(xp: np.ndarray, pads: tuple) -> np.ndarray:
    if not any(b or a for b, a in pads):
        return xp
    index = (slice(None),) + tuple(slice(b, xp.shape[i + 1] - a) for i, (b, a) in enumerate(pads)) + (slice(None),)
    return xp[index]


# --------------------------------------------------------------------------- the op
class Conv(Function):
    """N-d convolution, channels last.  See the module docstring for the math."""

    def __init__(self, stride: tuple, pads: tuple, dilation: tuple, groups: int, activation: str | None = None):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.activation = activation

    def _weight_matrix(self, w: np.ndarray) -> np.ndarray:
        """HWIO weight as the GEMM's right-hand side: ``(K*C, O)``, or ``(G, K*C/G, O/G)``."""
        G, O = self.groups, w.shape[-1]
        if G == 1:
            return w.reshape(-1, O)
        Cg = w.shape[-2]
        return w.reshape(-1, Cg, G, O // G).transpose(2, 0, 1, 3).reshape(G, -1, O // G)

    # ----- forward
    def forward(self, x, w, b=None):
        nsp = x.ndim - 2
        kernel = w.shape[:nsp]
        N, C, O = x.shape[0], x.shape[-1], w.shape[-1]
        out_spatial = tuple(get_conv_outsize(s, k, st, pb, pa, d) for s, k, st, (pb, pa), d
                            in zip(x.shape[1:-1], kernel, self.stride, self.pads, self.dilation))
        self.x_shape, self.kernel, self.out_spatial = x.shape, kernel, out_spatial
        xp = pad_spatial(x, self.pads)
        self.padded_shape = xp.shape
        self.depthwise = self.groups > 1 and self.groups == C and w.shape[-2] == 1
        if self.depthwise:
            y = depthwise_forward(xp, w, self.stride, self.dilation, out_spatial, b, self.activation)
        elif winograd_pays(x.shape, w.shape, out_spatial, self.stride, self.dilation, self.groups):
            y = winograd_conv(xp, w, b, self.activation)                    # many channels, 3x3
        elif (r := window_group(w.shape, out_spatial, self.stride, self.dilation, self.groups)) > 1:
            y = grouped_forward(xp, w, out_spatial, r, b, self.activation)   # few output channels
        else:
            y = np.empty((N,) + out_spatial + (O,), dtype=x.dtype)
            conv_gemm(Im2col(xp, kernel, self.stride, self.dilation, out_spatial), self._weight_matrix(w), y, b,
                      self.activation)
        # the weight gradient reads the input again: a padded copy is made again in backward rather
        # than kept (the unpadded input stays alive anyway, as this op's input tensor)
        self.xp = xp if (self.needs_grad[1] and xp is x) else None
        self.w = w
        if self.activation is not None and self.recording:
            self.y = y  # the activation's gradient mask is read from the output
        return y

    # ----- backward
    def backward(self, gy):
        gx = gw = gb = None
        if self.activation == "relu":       # d relu(z)/dz = [z > 0] = [y > 0]
            gy = gy * (self.y > 0)
        elif self.activation == "relu6":    # [0 < z < 6] = [0 < y < 6]
            gy = gy * ((self.y > 0) & (self.y < 6))
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            gb = sum_channels(gy.reshape(-1, gy.shape[-1]))
        if self.needs_grad[1] and self.xp is None:
            self.xp = pad_spatial(self.inputs[0].data, self.pads)
        if self.depthwise:
            if self.needs_grad[1]:
                gw = depthwise_grad_weight(self.xp, gy, self.w.shape, self.stride, self.dilation)
            if self.needs_grad[0]:
                if all(s == 1 for s in self.stride) and self.w.shape[-1] == self.x_shape[-1]:
                    gx = self._grad_input_as_conv(gy)  # a depthwise convolution again: no col2im adds, no crop
                else:
                    gxp = depthwise_grad_input(gy, self.w, self.padded_shape, self.stride, self.dilation)
                    gx = crop_spatial(gxp, self.pads)
            return gx, gw, gb

        w, G = self.w, self.groups
        r = window_group(w.shape, self.out_spatial, self.stride, self.dilation, G) if self.needs_grad[1] else 1
        if self.needs_grad[1] and winograd_pays(self.x_shape, w.shape, self.out_spatial, self.stride,
                                                self.dilation, G):
            gw = winograd_grad_weight(self.xp, gy)
        elif r > 1:
            gw = grouped_grad_weight(self.xp, gy, self.kernel, r)
        elif self.needs_grad[1]:
            im = Im2col(self.xp, self.kernel, self.stride, self.dilation, self.out_spatial)
            gw2 = conv_grad_weight(im, gy, G)
            if G == 1:
                gw = gw2.reshape(w.shape)
            else:  # (G, K*Cg, Og) -> (K, Cg, G, Og): output channel o = g*Og + j
                Cg, Og = w.shape[-2], w.shape[-1] // G
                gw = gw2.reshape((G,) + self.kernel + (Cg, Og))
                gw = np.moveaxis(gw, 0, -2).reshape(w.shape)
        if self.needs_grad[0]:
            if banded_pays(self.x_shape, w.shape, self.padded_shape, self.out_spatial, self.stride, G):
                gx = crop_spatial(banded_grad_input(gy, w, self.padded_shape, self.dilation), self.pads)
            elif all(s == 1 for s in self.stride) and self._conv_is_cheaper(gy.shape[-1]):
                gx = self._grad_input_as_conv(gy)
            else:
                gxp = col2im_grad_input(gy, self._weight_matrix(w), self.padded_shape, self.kernel,
                                        self.stride, self.dilation)
                gx = crop_spatial(gxp, self.pads)
        return gx, gw, gb

    def _conv_is_cheaper(self, O: int) -> bool:
        """Compare the work outside the GEMM: the transposed convolution copies
        windows of gy for every input pixel (``prod(S) * K * O`` numbers); col2im
        adds ``prod(OS) * K * C`` numbers back into gx, each a read-modify-write."""
        C = self.x_shape[-1]
        return np.prod(self.x_shape[1:-1]) * O < 3 * np.prod(self.out_spatial) * C

    def _grad_input_as_conv(self, gy):
        """Stride-1 input gradient as a convolution of gy with the flipped kernel.

        gx[h] = sum_i gy[h + pad_before - i*d] w[i]: pad gy by ``d*(K-1) - pad_before``
        before and ``S - OS + pad_before`` after (negative = crop) and convolve
        with the kernel flipped and its in/out channels swapped; the output is
        exactly gx, no padding computed and thrown away.
        """
        nsp = gy.ndim - 2
        k, d = self.kernel, self.dilation
        around = tuple((dd * (kk - 1) - pb, S - o + pb)
                       for kk, dd, (pb, _), S, o in zip(k, d, self.pads, self.x_shape[1:-1], self.out_spatial))
        G, w = self.groups, self.w
        flip = (slice(None, None, -1),) * nsp
        Cg, O = w.shape[-2], w.shape[-1]
        Og = O // G
        # (K, Cg, G, Og) -> (K, Og, G, Cg): a grouped conv from O channels to C channels
        wt = w[flip].reshape(k + (Cg, G, Og)).swapaxes(nsp, nsp + 2).reshape(k + (Og, G * Cg))
        sub = Conv((1,) * nsp, ((0, 0),) * nsp, d, G)
        sub.needs_grad = (False, False)
        return sub.forward(pad_spatial(gy, around), np.ascontiguousarray(wt))


# --------------------------------------------------------------------------- depthwise path
def kernel_tap(xp, offset, stride, dilation, out_spatial):
    """View of the padded input seen by kernel tap ``offset`` for every output pixel."""
    index = (slice(None),) + tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                                   for k, d, o, s in zip(offset, dilation, out_spatial, stride))
    return xp[index]


def _rows(view: np.ndarray) -> np.ndarray:
    """View ``(n, *OS, C)`` as ``(n, *OS[:-1], OW*C)`` when the last two axes are
    contiguous together (stride-1 taps), so a broadcast multiply by a weight
    tiled ``OW`` times runs over long rows instead of ``C`` numbers at a time."""
    if view.strides[-2] == view.shape[-1] * view.strides[-1]:
        return view.reshape(view.shape[:-2] + (view.shape[-2] * view.shape[-1],))
    return view


DEPTHWISE_BLOCK_BYTES = 1 << 19  # output bytes per block (measured: smaller blocks lose more to Python overhead)


def depthwise_blocks(N: int, out_spatial: tuple, pixel_bytes: int) -> list:
    """Blocks ``(n0, n1, o0, o1)`` of the output (whole images, or runs of one image's first
    output axis) of about ``DEPTHWISE_BLOCK_BYTES``, the same shapes as im2col's blocks."""
    return row_blocks(N, out_spatial, pixel_bytes, DEPTHWISE_BLOCK_BYTES)


def block_input(xp, block, kernel, stride, dilation):
    """The rows of the padded input that the output block ``(n0, n1, o0, o1)`` reads, and the
    block's output spatial shape."""
    n0, n1, o0, o1 = block
    start, stop = o0 * stride[0], (o1 - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    return xp[n0:n1, start:stop], (o1 - o0,)


def depthwise_forward(xp, w, stride, dilation, out_spatial, b=None, activation=None):
    """y[..., c*m + j] = act(b[c*m + j] + sum_k x_tap_k[..., c] * w[k, 0, c*m + j])  (m = channel multiplier).

    ``prod(K)`` multiply-adds of shifted views, done block by block (:func:`depthwise_blocks`)
    so that the accumulator, the temporary and the input rows stay in cache; the bias and the
    activation are applied to the block there too.
    """
    nsp = xp.ndim - 2
    kernel = w.shape[:nsp]
    N, C, O = xp.shape[0], xp.shape[-1], w.shape[-1]
    m = O // C
    OW = out_spatial[-1]
    if m == 1:
        wk = w.reshape(kernel + (C,))
        wide = np.tile(wk, (1,) * nsp + (OW,))  # each tap's weights repeated along the row
    else:
        wk = w.reshape(kernel + (C, m))
    y = np.empty((N,) + tuple(out_spatial) + ((C,) if m == 1 else (C, m)), dtype=xp.dtype)
    offsets = list(np.ndindex(*kernel))
    blocks = depthwise_blocks(N, out_spatial, O * xp.itemsize)

    def multiply(part, offset, block_spatial, out):
        t = kernel_tap(part, offset, stride, dilation, block_spatial)
        if m > 1:
            np.multiply(t[..., None], wk[offset], out=out)
            return
        rows = _rows(t)
        np.multiply(rows, wide[offset] if rows.ndim == t.ndim - 1 else wk[offset], out=out.reshape(rows.shape))

    def work(lo, hi):
        for block in blocks[lo:hi]:
            n0, n1, o0, o1 = block
            part, first = block_input(xp, block, kernel, stride, dilation)
            block_spatial = first + tuple(out_spatial[1:])
            acc = y[n0:n1, o0:o1]
            tmp = np.empty_like(acc)
            multiply(part, offsets[0], block_spatial, acc)
            for offset in offsets[1:]:
                multiply(part, offset, block_spatial, tmp)
                acc += tmp
            if b is not None:
                add_channels(acc.reshape(-1, O), b)
            apply_activation(acc, activation)

    parallel_for(len(blocks), work, work_bytes=len(offsets) * 2 * y.nbytes)
    return y.reshape((N,) + tuple(out_spatial) + (O,))


def depthwise_grad_weight(xp, gy, w_shape, stride, dilation):
    """gw[k, 0, c*m + j] = sum_{n, pixels} x_tap_k[..., c] * gy[..., c*m + j]  (block by block)."""
    nsp = xp.ndim - 2
    kernel = w_shape[:nsp]
    C = xp.shape[-1]
    m = w_shape[-1] // C
    out_spatial = gy.shape[1:-1]
    g = gy.reshape(gy.shape[:-1] + (C, m))
    offsets = list(np.ndindex(*kernel))
    partials = []  # one accumulator per thread, summed at the end
    blocks = depthwise_blocks(xp.shape[0], out_spatial, gy.shape[-1] * gy.itemsize)

    def work(lo, hi):
        acc = np.zeros(kernel + (C, m), dtype=gy.dtype)
        for block in blocks[lo:hi]:
            n0, n1, o0, o1 = block
            part, first = block_input(xp, block, kernel, stride, dilation)
            block_spatial = first + tuple(out_spatial[1:])
            gb = g[n0:n1, o0:o1]
            rows = int(np.prod(gb.shape[:-2]))
            prod = np.empty((rows, C), dtype=gy.dtype)
            ones = np.ones(rows, dtype=gy.dtype)
            for offset in offsets:
                t = kernel_tap(part, offset, stride, dilation, block_spatial)
                for j in range(m):
                    np.multiply(t, gb[..., j], out=prod.reshape(t.shape))
                    acc[offset + (slice(None), j)] += ones @ prod  # column sums by BLAS
        partials.append(acc)

    with blas_single_threaded():
        parallel_for(len(blocks), work, work_bytes=len(offsets) * 2 * gy.nbytes)
    return np.sum(partials, axis=0).reshape(w_shape)


def depthwise_grad_input(gy, w, padded_shape, stride, dilation):
    """gx_pad[tap_k] += sum_j gy[..., c*m + j] * w[k, 0, c*m + j]  (block by block; the blocks of
    one image overlap in gx, so an image's blocks all run on one thread)."""
    nsp = gy.ndim - 2
    kernel = w.shape[:nsp]
    N, C = padded_shape[0], padded_shape[-1]
    m = w.shape[-1] // C
    wk = w.reshape(kernel + (C, m))
    g = gy.reshape(gy.shape[:-1] + (C, m))
    out_spatial = gy.shape[1:-1]
    wide = np.tile(wk[..., 0], (1,) * nsp + (out_spatial[-1],)) if m == 1 else None
    gxp = np.zeros(padded_shape, dtype=gy.dtype)
    blocks = depthwise_blocks(N, out_spatial, gy.shape[-1] * gy.itemsize)

    def work(lo, hi):
        for block in blocks:
            n0, n1, o0, o1 = block
            if not lo <= n0 < hi:
                continue
            part, first = block_input(gxp, block, kernel, stride, dilation)
            block_spatial = first + tuple(out_spatial[1:])
            gb = g[n0:n1, o0:o1]
            tmp = np.empty(gb.shape[:-1], dtype=gy.dtype)
            for offset in np.ndindex(*kernel):
                if m == 1:
                    rows = _rows(gb[..., 0])
                    np.multiply(rows, wide[offset] if rows.ndim == tmp.ndim - 1 else wk[offset][:, 0],
                                out=tmp.reshape(rows.shape))
                else:
                    np.einsum("...cj,cj->...c", gb, wk[offset], out=tmp)
                kernel_tap(part, offset, stride, dilation, block_spatial)[...] += tmp

    parallel_for(N, work, work_bytes=wk[..., 0].size // C * 2 * gy.nbytes)
    return gxp


# --------------------------------------------------------------------------- public functions
def conv_output_shape(x_shape, w_shape, stride=1, padding=0, dilation=1) -> tuple:
    """Output shape of :func:`conv` for these input and weight shapes."""
    nsp = len(x_shape) - 2
    stride_t, dilation_t = ntuple(stride, nsp, "stride"), ntuple(dilation, nsp, "dilation")
    kernel = tuple(w_shape[:nsp])
    pads = resolve_padding(padding, tuple(x_shape[1:-1]), kernel, stride_t, dilation_t)
    return (x_shape[0],) + tuple(get_conv_outsize(s, k, st, pb, pa, d) for s, k, st, (pb, pa), d
                                 in zip(x_shape[1:-1], kernel, stride_t, pads, dilation_t)) + (w_shape[-1],)


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, spatial_dims: int = 2,
         activation: str | None = None) -> Tensor:
    """Convolution over ``spatial_dims`` axes, channels last (used by conv2d and conv3d).

    ``activation`` (``None``, ``"relu"`` or ``"relu6"``) is applied to the output while each
    block is still in cache: ``conv(..., activation="relu")`` equals ``relu(conv(...))``, one
    pass over memory fewer (used by fused models, see ``strided.nn.fuse``).
    """
    layout = {1: "NWC", 2: "NHWC", 3: "NDHWC"}.get(spatial_dims, f"N{'S' * spatial_dims}C")
    wlayout = {1: "WIO", 2: "HWIO", 3: "DHWIO"}.get(spatial_dims, "kernel..IO")
    x, w = float_tensor(x, "input"), float_tensor(w, "weight")
    check_rank(x, spatial_dims + 2, layout, "input")
    check_rank(w, spatial_dims + 2, wlayout, "weight")
    if w.dtype != x.dtype:
        raise TypeError(f"weight dtype {w.dtype} does not match input dtype {x.dtype}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, received activation={activation!r}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, received groups={groups!r}")
    C, O = x.shape[-1], w.shape[-1]
    if C % groups or O % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({C}) and the output channels ({O})")
    if w.shape[-2] * groups != C:
        raise ValueError(f"input has {C} channels but the weight expects {w.shape[-2] * groups} "
                         f"(weight shape {tuple(w.shape)}, groups={groups}; {wlayout} layout)")
    stride_t = ntuple(stride, spatial_dims, "stride")
    dilation_t = ntuple(dilation, spatial_dims, "dilation")
    check_positive(stride_t, "stride", stride)
    check_positive(dilation_t, "dilation", dilation)
    kernel = tuple(w.shape[:spatial_dims])
    if any(k < 1 for k in kernel):
        raise ValueError(f"kernel size must be >= 1, received weight shape {tuple(w.shape)}")
    pads = resolve_padding(padding, tuple(x.shape[1:-1]), kernel, stride_t, dilation_t)
    for axis, (s, k, (pb, pa), d) in enumerate(zip(x.shape[1:-1], kernel, pads, dilation_t)):
        if s + pb + pa < d * (k - 1) + 1:
            raise ValueError(f"kernel of size {k} (dilation {d}) is larger than the padded input "
                             f"({s} + {pb} + {pa} = {s + pb + pa}) along spatial axis {axis}; "
                             f"input shape {tuple(x.shape)}, weight shape {tuple(w.shape)}")
    inputs = (x, w)
    if b is not None:
        b = float_tensor(b, "bias")
        if b.shape != (O,):
            raise ValueError(f"bias must have shape ({O},), received shape {tuple(b.shape)}")
        if b.dtype != x.dtype:
            raise TypeError(f"bias dtype {b.dtype} does not match input dtype {x.dtype}")
        inputs = (x, w, b)
    return Conv(stride_t, pads, dilation_t, int(groups), activation)(*inputs)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None) -> Tensor:
    """2-D convolution.  x ``(N, H, W, C)``, w ``(KH, KW, C // groups, O)``, b ``(O,)``.

    Returns ``(N, OH, OW, O)`` with ``OH = floor((H + pt + pb - d*(KH-1) - 1)/stride) + 1``.
    ``padding``: int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``'valid'`` or
    ``'same'``.  ``groups=C`` with ``w.shape[2] == 1`` is a depthwise convolution.
    ``activation="relu"`` / ``"relu6"`` applies it in the same pass (see :func:`conv`).

    >>> y = conv2d(x, w, b, stride=2, padding="same")
    """
    return conv(x, w, b, stride, padding, dilation, groups, spatial_dims=2, activation=activation)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-D convolution.  x ``(N, D, H, W, C)``, w ``(KD, KH, KW, C // groups, O)``, b ``(O,)``."""
    return conv(x, w, b, stride, padding, dilation, groups, spatial_dims=3)
