"""Few-channel convolutions: GEMMs of a better shape for the input and weight gradients.

**Input gradient: banded GEMMs over image rows.**

For a stride-1 2-D convolution the input gradient is, row by row of the padded input
(``xp`` ``(N, Hp, Wp, C)``, ``gy`` ``(N, Ho, Wo, O)``, weight ``w`` HWIO ``(KH, KW, C, O)``)::

    gxp[n, h + i*dh, :, :]  +=  gy[n, h, :, :] @ T_i          for every kernel row i

where a whole image row is one vector (``Wo*O`` numbers for gy, ``Wp*C`` for gxp) and
``T_i`` ``(Wo*O, Wp*C)`` is the *banded* (block Toeplitz) matrix of kernel row ``i``::

    T_i[w*O + o, (w + j*dw)*C + c] = w[i, j, c, o]            (zero elsewhere)

So the whole input gradient is ``KH`` GEMMs ``(N*Hp, Wo*O) @ (Wo*O, Wp*C)`` and ``KH`` shifted
adds of whole rows.  ``T_i`` is mostly zeros (``Wp/KW`` times more multiplications than the
col2im path), but with few channels the col2im path spends its time in NumPy adds whose
inner loops are only ``C`` numbers long, and in GEMMs with only ``C`` output columns; the
banded GEMMs have long rows on both sides.  :func:`banded_pays` decides when (LeNet-5's
second convolution, 14x14x6 -> 16, 5x5: about 3.5x faster than col2im in A/B runs).

**Weight gradient: r neighbouring windows per row.**  ``gw = cols.T @ gy`` with few output
channels is a GEMM ``(K*C, M) @ (M, O)`` with a long inner dimension and an output only ``O``
wide, which BLAS runs slowly.  Taking ``r`` horizontally adjacent output pixels as one row
makes it ``(KH*(KW+r-1)*C, M/r) @ (M/r, r*O)``: the window of ``r`` pixels is the im2col of a
``KH x (KW+r-1)`` kernel at horizontal stride ``r``, and ``gy`` is only reshaped.  The product
``P[(i, j', c), (q, o)]`` holds, for pixel ``q`` of the group, the tap ``j = j' - q``::

    gw[i, j, c, o] = sum_q P[(i, j + q, c), (q, o)]

(:func:`grouped_grad_weight`; LeNet-5's convolutions: 0.64-0.84x the time of the plain path.)
The forward uses the same rows: ``y`` of ``r`` adjacent pixels = ``cols_r @ W_r`` with ``W_r``
``(KH*(KW+r-1)*C, r*O)`` holding ``w`` shifted by ``q`` taps for pixel ``q`` (zeros elsewhere):
fewer numbers copied than plain im2col (``KW+r-1`` columns per ``r`` windows, not ``r*KW``), at
``(KW+r-1)/KW`` times the multiplications (:func:`grouped_forward`).
"""
from __future__ import annotations

import numpy as np

from numpy.lib.stride_tricks import as_strided

from .im2col import Im2col, conv_gemm, conv_grad_weight
from .parallel import blas_single_threaded, parallel_for

__all__ = ["band_matrices", "banded_grad_input", "banded_pays", "grouped_forward", "grouped_grad_weight",
           "grouped_weight_matrix", "window_group"]

MAX_BAND_BYTES = 4 << 20   # the T_i together; keeps them in cache and rules out wide images
MAX_CHANNELS = 8           # C: where col2im's per-window adds run C numbers at a time
MAX_EXTRA_WORK = 6.0       # multiplications of the banded GEMMs / those of col2im (Wp*Hp / (KW*Ho))


def band_matrices(w: np.ndarray, Wp: int, Wo: int, dw: int) -> np.ndarray:
    """``T`` ``(KH, Wo*O, Wp*C)`` with ``T[i, x*O + o, (x + j*dw)*C + c] = w[i, j, c, o]`` (see the module)."""
    KH, KW, C, O = w.shape
    T = np.zeros((KH, Wo, O, Wp, C), dtype=w.dtype)
    columns = np.arange(Wo)
    for j in range(KW):
        # advanced indices on axes 1 and 3 (x, x + j*dw) come first: the target is (Wo, KH, O, C)
        T[:, columns, :, columns + j * dw, :] = w[:, j].transpose(0, 2, 1)[None]
    return T.reshape(KH, Wo * O, Wp * C)


def banded_pays(x_shape: tuple, w_shape: tuple, padded_shape: tuple, out_spatial: tuple, stride: tuple,
                groups: int) -> bool:
    """True for a 2-D, stride-1, ungrouped convolution with few input channels whose band
    matrices are small and whose extra multiplications stay bounded (see the constants)."""
    if len(w_shape) != 4 or groups != 1 or any(s != 1 for s in stride):
        return False
    KH, KW, C, O = w_shape
    _, Hp, Wp, _ = padded_shape
    Ho, Wo = out_spatial
    band_bytes = KH * Wo * O * Wp * C * 4
    extra = (Wp * Hp) / (KW * Ho)
    return C <= MAX_CHANNELS and band_bytes <= MAX_BAND_BYTES and extra <= MAX_EXTRA_WORK


def banded_grad_input(gy: np.ndarray, w: np.ndarray, padded_shape: tuple, dilation: tuple = (1, 1)) -> np.ndarray:
    """Gradient with respect to the padded input ``(N, Hp, Wp, C)`` of a stride-1 convolution.

    ``gy`` ``(N, Ho, Wo, O)``, ``w`` HWIO.  Each image's ``gy`` rows are laid out in ``Hp`` rows
    (the last ``Hp - Ho`` zero), so that all images form one matrix and the shift by ``i*dh``
    rows never mixes images: rows shifted past an image's end are its zero rows.  Images are
    split over the threads (one single-threaded GEMM each).
    """
    N, Hp, Wp, C = padded_shape
    KH, O = w.shape[0], w.shape[-1]
    _, Ho, Wo, _ = gy.shape
    dh, dw = dilation
    T = band_matrices(w, Wp, Wo, dw)
    gxp = np.empty(padded_shape, dtype=gy.dtype)

    def work(lo, hi):
        n = hi - lo
        g = np.zeros((n, Hp, Wo * O), dtype=gy.dtype)
        g[:, :Ho] = gy[lo:hi].reshape(n, Ho, Wo * O)
        g = g.reshape(n * Hp, Wo * O)
        out = gxp[lo:hi].reshape(n * Hp, Wp * C)
        np.matmul(g, T[0], out=out)
        for i in range(1, KH):
            shift = i * dh
            out[shift:] += g[:n * Hp - shift] @ T[i]

    with blas_single_threaded():
        parallel_for(N, work, work_bytes=gy.nbytes * KH * Wp * C // 8)
    return gxp


GROUP_OUTPUTS = 24   # aim: r*O at least this wide (a GEMM output of a few dozen columns runs well)


def window_group(w_shape: tuple, out_spatial: tuple, stride: tuple, dilation: tuple, groups: int) -> int:
    """``r`` for :func:`grouped_forward` / :func:`grouped_grad_weight`: the smallest divisor
    ``r <= 8`` of the output width with ``r*O >= GROUP_OUTPUTS``, for a 2-D, stride-1, undilated,
    ungrouped convolution with few input channels (``C <= MAX_CHANNELS``: im2col rows are short
    and copying them dominates) and fewer than ``GROUP_OUTPUTS`` output channels; 1 (the plain
    path) otherwise."""
    if len(w_shape) != 4 or groups != 1 or any(s != 1 for s in stride) or any(d != 1 for d in dilation):
        return 1
    C, O, Wo = w_shape[-2], w_shape[-1], out_spatial[-1]
    if O >= GROUP_OUTPUTS or C > MAX_CHANNELS:
        return 1
    for r in range(2, 9):
        if Wo % r == 0 and r * O >= GROUP_OUTPUTS:
            return r
    return 1


def grouped_grad_weight(xp: np.ndarray, gy: np.ndarray, kernel: tuple, r: int) -> np.ndarray:
    """Weight gradient ``(KH, KW, C, O)`` of a stride-1 2-D convolution of the padded input ``xp``
    ``(N, Hp, Wp, C)`` with ``gy`` ``(N, Ho, Wo, O)``, ``r`` output pixels per GEMM row (``Wo % r == 0``)."""
    KH, KW = kernel
    N, Ho, Wo, O = gy.shape
    C = xp.shape[-1]
    im = Im2col(xp, (KH, KW + r - 1), (1, r), (1, 1), (Ho, Wo // r))
    P = conv_grad_weight(im, gy.reshape(N, Ho, Wo // r, r * O), 1).reshape(KH, KW + r - 1, C, r, O)
    s = P.strides
    # view[i, j, c, o, q] = P[i, j + q, c, q, o]
    view = as_strided(P, shape=(KH, KW, C, O, r), strides=(s[0], s[1], s[2], s[4], s[1] + s[3]), writeable=False)
    return view.sum(axis=-1)


def grouped_weight_matrix(w: np.ndarray, r: int) -> np.ndarray:
    """``W_r`` ``(KH*(KW+r-1)*C, r*O)``: ``W_r[(i, q + j, c), (q, o)] = w[i, j, c, o]``, zero elsewhere."""
    KH, KW, C, O = w.shape
    Wr = np.zeros((KH, KW + r - 1, C, r, O), dtype=w.dtype)
    for q in range(r):
        Wr[:, q:q + KW, :, q, :] = w
    return Wr.reshape(-1, r * O)


def grouped_forward(xp: np.ndarray, w: np.ndarray, out_spatial: tuple, r: int, b=None, activation=None) -> np.ndarray:
    """``act(conv(xp, w) + b)`` of a stride-1 2-D convolution, ``r`` output pixels per GEMM row
    (``Wo % r == 0``); ``xp`` is the padded input, the result ``(N, Ho, Wo, O)``."""
    KH, KW, _, O = w.shape
    Ho, Wo = out_spatial
    y = np.empty((xp.shape[0], Ho, Wo // r, r * O), dtype=xp.dtype)
    im = Im2col(xp, (KH, KW + r - 1), (1, r), (1, 1), (Ho, Wo // r))
    conv_gemm(im, grouped_weight_matrix(w, r), y, None if b is None else np.tile(b, r), activation)
    return y.reshape(xp.shape[0], Ho, Wo, O)
