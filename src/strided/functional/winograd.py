"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplications.

A 3x3 convolution computes each output pixel with 9 multiply-adds per (input, output)
channel pair.  Winograd (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2015) computes a 2x2 *tile* of outputs from the 4x4 input tile ``d`` under it with 16
multiplications instead of 36::

    y(2x2) = A^T [ (G g G^T)  *  (B^T d B) ] A          (* elementwise over the 4x4)

    B^T = [[1,  0, -1,  0],     G = [[1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],          [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [0,    0,   1]]

Summed over input channels, the elementwise product becomes 16 matrix products: with
``V[k]`` ``(tiles, C)`` the k-th entry of every transformed input tile and ``U[k]`` ``(C, O)``
the k-th entry of every transformed kernel, ``M[k] = V[k] @ U[k]`` and ``y = A^T M A`` tile
by tile.  The transforms are additions and subtractions of shifted strided views (no
multiplications by anything but 1/2 in ``G``), the GEMMs do ``16 * C * O`` multiply-adds per
2x2 tile where im2col does ``36 * C * O``.  It pays when the GEMMs dominate, i.e. with
many channels (:func:`winograd_pays`).  Output tiles past an odd output side read zeros and
are cropped.

Layout as everywhere: input ``xp`` ``(N, H + 2, W + 2, C)`` already padded (NHWC), weight
``(3, 3, C, O)`` (HWIO), output ``(N, H, W, O)``.  Work goes in blocks of tile rows sized for
the cache (:func:`~strided.functional.im2col.row_blocks`), shared out over the threads, one
single-threaded GEMM per thread.
"""
from __future__ import annotations

import numpy as np

from .im2col import apply_activation, row_blocks
from .parallel import blas_single_threaded, parallel_for

__all__ = ["winograd_pays", "winograd_weights", "winograd_conv", "winograd_grad_weight", "G_MATRIX", "BLOCK_TILE_BYTES"]

G_MATRIX = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])  # (tests)
BLOCK_TILE_BYTES = 1 << 21  # bytes of transformed input (16 numbers per tile and channel) per block
MIN_CHANNELS = 128          # fewer channels: the transforms cost what the thinner GEMMs save (measured)
MIN_TILES = 128             # fewer 2x2 output tiles: the weight transform is not repaid (measured)


def winograd_pays(x_shape: tuple, w_shape: tuple, out_spatial: tuple, stride: tuple, dilation: tuple,
                  groups: int) -> bool:
    """True for a 2-D 3x3, stride-1, undilated, ungrouped convolution with at least
    ``MIN_CHANNELS`` input and output channels and ``MIN_TILES`` output tiles.

    Measured on one core against im2col (float32, benchmarks/winograd.py): 0.6-0.75x the time with
    128-512 channels on 28x28-56x56 images, no gain with 64 channels (the GEMMs are then too
    thin to profit), a loss below ~100 tiles (the weight transform, ``16 C O`` numbers written
    per call, is then not repaid)."""
    if len(x_shape) != 4 or tuple(w_shape[:2]) != (3, 3) or groups != 1:
        return False
    if any(s != 1 for s in stride) or any(d != 1 for d in dilation):
        return False
    tiles = x_shape[0] * ((out_spatial[0] + 1) // 2) * ((out_spatial[1] + 1) // 2)
    return min(w_shape[2], w_shape[3]) >= MIN_CHANNELS and tiles >= MIN_TILES


def winograd_weights(w: np.ndarray) -> np.ndarray:
    """``U = G g G^T`` for every (input, output) channel pair: ``(3, 3, C, O)`` -> ``(16, C, O)``.

    ``G`` applied to three numbers ``(g0, g1, g2)`` gives ``(g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2)``:
    additions over whole ``(C, O)`` planes, first along the kernel's rows, then its columns."""
    C, O = w.shape[2], w.shape[3]
    U = np.empty((4, 4, C, O), w.dtype)
    step = max(1, (1 << 16) // (O * w.itemsize))  # input channels per pass: 64 KiB planes stay in cache
    rows = np.empty((4, 3, min(step, C), O), w.dtype)
    for c0 in range(0, C, step):
        c1 = min(c0 + step, C)
        part = rows[:, :, :c1 - c0]
        _apply_g(w[:, :, c0:c1], part)
        _apply_g(part.transpose(1, 0, 2, 3), U[:, :, c0:c1].transpose(1, 0, 2, 3))
    return U.reshape(16, C, O)


def _apply_g(g: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = sum_i G[k, i] g[i]`` along the first axis (3 -> 4), in place into ``out``."""
    np.copyto(out[0], g[0])
    np.copyto(out[3], g[2])
    np.add(g[0], g[2], out=out[2])
    np.add(out[2], g[1], out=out[1])
    out[2] -= g[1]
    out[1:3] *= 0.5


def _input_tiles(xb: np.ndarray, rows: int, cols: int, buffer: np.ndarray, V: np.ndarray) -> None:
    """``V[4*xi + nu] = (B^T d B)[xi, nu]`` for every 4x4 tile ``d`` of ``xb`` (stride 2).

    ``xb`` ``(n, 2*rows + 2, 2*cols + 2, C)``; ``V`` ``(4, 4, n, rows, cols, C)``.  Rows first
    (``buffer`` ``(4, n, rows, 2*cols + 2, C)`` holds ``B^T d``), then columns, each step four
    subtractions/additions of strided views, vectorised over the other index."""
    X = xb.reshape(xb.shape[0], rows + 1, 2, xb.shape[2], xb.shape[3])  # row 2t + i = X[:, t + i//2, i%2]
    r0, r1, r2, r3 = X[:, :rows, 0], X[:, :rows, 1], X[:, 1:, 0], X[:, 1:, 1]
    np.subtract(r0, r2, out=buffer[0])
    np.add(r1, r2, out=buffer[1])
    np.subtract(r2, r1, out=buffer[2])
    np.subtract(r1, r3, out=buffer[3])
    Y = buffer.reshape(buffer.shape[:3] + (cols + 1, 2, buffer.shape[-1]))  # column 2s + j
    c0, c1, c2, c3 = Y[:, :, :, :cols, 0], Y[:, :, :, :cols, 1], Y[:, :, :, 1:, 0], Y[:, :, :, 1:, 1]
    np.subtract(c0, c2, out=V[:, 0])
    np.add(c1, c2, out=V[:, 1])
    np.subtract(c2, c1, out=V[:, 2])
    np.subtract(c1, c3, out=V[:, 3])


def _block_input_tiles(xp: np.ndarray, n0: int, n1: int, t0: int, t1: int, tw: int) -> np.ndarray:
    """``V`` ``(16, tiles, C)`` of the tile rows ``t0:t1`` of images ``n0:n1`` (see :func:`_input_tiles`)."""
    n, rows, C = n1 - n0, t1 - t0, xp.shape[-1]
    V = np.empty((4, 4, n, rows, tw, C), xp.dtype)
    _input_tiles(xp[n0:n1, 2 * t0:2 * t1 + 2], rows, tw, np.empty((4, n, rows, 2 * tw + 2, C), xp.dtype), V)
    return V.reshape(16, n * rows * tw, C)


def _tile_entries(image_rows: np.ndarray) -> np.ndarray:
    """View ``(2, 2, n, rows, tw, O)`` of ``(n, 2*rows, 2*tw, O)``: pixel ``(2t + a, 2s + c)`` is
    tile ``(t, s)``'s entry ``(a, c)``."""
    n, H2, W2, O = image_rows.shape
    return image_rows.reshape(n, H2 // 2, 2, W2 // 2, 2, O).transpose(2, 4, 0, 1, 3, 5)


def _output_tiles(M: np.ndarray, P: np.ndarray, y: np.ndarray) -> None:
    """2x2 output tiles ``y = A^T M A``: ``M`` ``(4, 4, *tiles, O)``, ``P`` ``(2, 4, *tiles, O)``
    scratch, ``y`` ``(2, 2, *tiles, O)`` (any strides: a view of the output image)."""
    np.add(M[1], M[2], out=P[0])
    np.subtract(M[1], M[2], out=P[1])
    P[0] += M[0]                          # rows:    m0 + m1 + m2
    P[1] -= M[3]                          #          m1 - m2 - m3
    np.add(P[:, 1], P[:, 2], out=y[:, 0])
    y[:, 0] += P[:, 0]                    # columns: p0 + p1 + p2
    np.subtract(P[:, 1], P[:, 2], out=y[:, 1])
    y[:, 1] -= P[:, 3]                    #          p1 - p2 - p3


def _even_sides(a: np.ndarray, H: int, W: int) -> np.ndarray:
    """``a`` with one more zero row / column when the output side ``H`` / ``W`` is odd, so that
    every 2x2 output tile is whole (the extra outputs are cropped); ``a`` itself otherwise."""
    if H % 2 or W % 2:
        return np.pad(a, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))
    return a


def winograd_conv(xp: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                  activation: str | None = None) -> np.ndarray:
    """3x3 stride-1 convolution of the padded input ``xp`` ``(N, H+2, W+2, C)`` with ``w``
    ``(3, 3, C, O)``: ``act(conv + b)`` ``(N, H, W, O)``, computed as F(2x2, 3x3)."""
    N, Hp, Wp, C = xp.shape
    O = w.shape[-1]
    H, W = Hp - 2, Wp - 2
    th, tw = (H + 1) // 2, (W + 1) // 2
    xp = _even_sides(xp, H, W)
    U = winograd_weights(w)
    y = np.empty((N, 2 * th, 2 * tw, O), dtype=xp.dtype)
    blocks = row_blocks(N, (th, tw), 16 * max(C, O) * xp.itemsize, BLOCK_TILE_BYTES)

    def work(lo, hi):
        for n0, n1, t0, t1 in blocks[lo:hi]:
            n, rows = n1 - n0, t1 - t0
            M = np.matmul(_block_input_tiles(xp, n0, n1, t0, t1, tw), U).reshape(4, 4, n, rows, tw, O)
            block = y[n0:n1, 2 * t0:2 * t1]
            _output_tiles(M, np.empty((2, 4, n, rows, tw, O), xp.dtype), _tile_entries(block))
            if b is not None:
                block += b
            apply_activation(block, activation)

    with blas_single_threaded():
        parallel_for(len(blocks), work, work_bytes=y.nbytes * 16 * C // 32)
    return np.ascontiguousarray(y[:, :H, :W]) if (H % 2 or W % 2) else y


def _grad_tiles(gy: np.ndarray, Q: np.ndarray, gM: np.ndarray) -> None:
    """``gM = A gY A^T`` for every 2x2 tile ``gY`` of the output gradient (the adjoint of
    :func:`_output_tiles`): ``A`` sends ``(y0, y1)`` to ``(y0, y0 + y1, y0 - y1, -y1)``.
    ``gy`` ``(2, 2, *tiles, O)`` (a view), ``Q`` ``(4, 2, *tiles, O)`` scratch, ``gM`` ``(4, 4, *tiles, O)``."""
    np.copyto(Q[0], gy[0])
    np.add(gy[0], gy[1], out=Q[1])
    np.subtract(gy[0], gy[1], out=Q[2])
    np.negative(gy[1], out=Q[3])
    np.copyto(gM[:, 0], Q[:, 0])
    np.add(Q[:, 0], Q[:, 1], out=gM[:, 1])
    np.subtract(Q[:, 0], Q[:, 1], out=gM[:, 2])
    np.negative(Q[:, 1], out=gM[:, 3])


def _apply_g_transpose(u: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = sum_k G[k, i] u[k]`` along the first axis (4 -> 3): ``G^T`` sends
    ``(u0, u1, u2, u3)`` to ``(u0 + (u1+u2)/2, (u1-u2)/2, (u1+u2)/2 + u3)``."""
    np.add(u[1], u[2], out=out[2])
    np.subtract(u[1], u[2], out=out[1])
    out[1:] *= 0.5
    np.add(out[2], u[0], out=out[0])
    out[2] += u[3]


def winograd_grad_weight(xp: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Weight gradient of :func:`winograd_conv`: ``gw[i, j, c, o] = sum xp[n, h+i, w+j, c] gy[n, h, w, o]``
    ``(3, 3, C, O)``, as ``G^T (sum over tiles V[k]^T gM[k]) G`` with ``gM = A gY A^T``:
    16 GEMMs ``(C, tiles) @ (tiles, O)`` instead of ``(9C, pixels) @ (pixels, O)``."""
    N, Hp, Wp, C = xp.shape
    H, W, O = gy.shape[1], gy.shape[2], gy.shape[3]
    th, tw = (H + 1) // 2, (W + 1) // 2
    xp, gy = _even_sides(xp, H, W), _even_sides(gy, H, W)   # the extra outputs have zero gradient
    blocks = row_blocks(N, (th, tw), 16 * max(C, O) * xp.itemsize, BLOCK_TILE_BYTES)
    partials = []   # one (16, C, O) sum per thread

    def work(lo, hi):
        acc, tmp = np.zeros((16, C, O), xp.dtype), np.empty((16, C, O), xp.dtype)
        for n0, n1, t0, t1 in blocks[lo:hi]:
            n, rows = n1 - n0, t1 - t0
            V = _block_input_tiles(xp, n0, n1, t0, t1, tw)
            gM = np.empty((4, 4, n, rows, tw, O), xp.dtype)
            _grad_tiles(_tile_entries(gy[n0:n1, 2 * t0:2 * t1]), np.empty((4, 2, n, rows, tw, O), xp.dtype), gM)
            np.matmul(V.transpose(0, 2, 1), gM.reshape(16, -1, O), out=tmp)
            acc += tmp
        partials.append(acc)

    with blas_single_threaded():
        parallel_for(len(blocks), work, work_bytes=gy.nbytes * 16 * C // 32)
    gU = (np.sum(partials, axis=0) if len(partials) > 1 else partials[0]).reshape(4, 4, C, O)
    rows = np.empty((3, 4, C, O), xp.dtype)
    _apply_g_transpose(gU, rows)                                   # G^T gU: (3, 4, C, O)
    gw = np.empty((3, 3, C, O), xp.dtype)
    _apply_g_transpose(rows.transpose(1, 0, 2, 3), gw.transpose(1, 0, 2, 3))   # (G^T gU) G
    return gw

