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
from .conv import kernel_tap, crop_spatial, pad_spatial
from .parallel import parallel_blocks, parallel_for
from .utils import check_positive, check_rank, float_tensor, get_conv_outsize, pair, resolve_padding

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d", "adaptive_avg_pool2d", "pool_output_size"]


def pool_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     ceil_mode: bool = False) -> int:
    """Output length of a pooling window along one axis.

    ``floor((n + pad_before + pad_after - k) / stride) + 1``, or with ``ceil_mode`` (PyTorch's rule)
    ``ceil(...) + 1``, less one when the last window would start past the input and the
    left padding (``(out - 1) * stride >= n + pad_before``).
    """
    if not ceil_mode:
        return get_conv_outsize(size, kernel, stride, pad_before, pad_after)
    out = -(-(size + pad_before + pad_after - kernel) // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def _pool_args(x, kernel_size, stride, padding, name, ceil_mode=False):
    """Checked ``(x, kernel, stride, pads, out)``.  With ``ceil_mode`` the windows that the
    rounding up adds reach past the input: ``pads`` then has that many more pixels after
    (bottom/right), which max pooling fills with -inf and average pooling leaves out of the count."""
    x = float_tensor(x, "input")
    check_rank(x, 4, "NHWC", f"{name} input")
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
    out = tuple(pool_output_size(s, k, st, pb, pa, ceil_mode)
                for s, k, st, (pb, pa) in zip(x.shape[1:3], kernel, stride_t, pads))
    if ceil_mode:   # the extra pixels the last window reads past the padded input
        pads = tuple((pb, pa + max(0, (o - 1) * st + k - (s + pb + pa)))
                     for s, k, st, (pb, pa), o in zip(x.shape[1:3], kernel, stride_t, pads, out))
    return x, kernel, stride_t, pads, out


# A pixel whose C numbers fill this many bytes gives a kernel tap's strided view
# runs long enough for fast ufuncs (see MaxPool2d).
_LONG_PIXEL_BYTES = 128


class MaxPool2d(Function):
    """y[n, i, j, c] = max over the window of x_pad (padding = -inf).

    Two code paths, same results:

    * **tiled** (``stride == kernel``: the windows tile the input without
      overlap, the common 2x2 / stride 2 case).  NHWC keeps the ``KH`` rows of
      a window as contiguous runs of ``OW*KW*C`` numbers, so the reduction is
      done row stage first, then column stage, on contiguous buffers with long
      inner loops (see :func:`_max_over_rows`, :func:`_max_over_columns`).
      It keeps each winner's flat index (int64, as PyTorch does): forward reads
      ``y`` there, backward is one scatter of ``gy`` (:func:`_scatter`).
    * **general** (any kernel, stride and padding, overlapping windows): one
      strided view per kernel tap, the winning tap tracked for backward.  Also
      used for a values-only forward (no_grad) of tiled windows when a pixel's
      ``C`` numbers fill >= 128 bytes: the taps' runs are then long enough, and
      a running maximum over them does less work.

    Both send the gradient to the first maximum of the window in row-major order
    and, when recording, return that maximum's own bits (NaN included).
    """

    def __init__(self, kernel, stride, pads, out_spatial):
        self.kernel, self.stride, self.pads, self.out = kernel, stride, pads, out_spatial
        self.tiled = tuple(stride) == tuple(kernel)

    def forward(self, x):
        xp = pad_spatial(x, self.pads, value=-np.inf)
        self.padded_shape = xp.shape
        if self.tiled and (self.recording or x.shape[-1] * x.itemsize < _LONG_PIXEL_BYTES):
            y, self.index = _tiled_max_pool(np.ascontiguousarray(xp), self.kernel, self.out, self.recording)
            return y
        return self._forward_general(xp)

    def backward(self, gy):
        if self.tiled:
            gxp = np.zeros(self.padded_shape, dtype=gy.dtype)
            _scatter(gxp, self.index, gy)
            return crop_spatial(gxp, self.pads)
        return self._backward_general(gy)

    # ----- general path: one strided view per kernel tap
    def _forward_general(self, xp):
        N, C = xp.shape[0], xp.shape[-1]
        y = np.empty((N,) + self.out + (C,), dtype=xp.dtype)
        offsets = list(np.ndindex(*self.kernel))
        # winner[k] = index of the first maximal tap, kept for backward
        winner = np.zeros(y.shape, dtype=np.min_scalar_type(len(offsets))) if self.recording else None

        def work(lo, hi):
            part = xp[lo:hi]
            acc = y[lo:hi]
            if winner is None:
                np.copyto(acc, kernel_tap(part, offsets[0], self.stride, (1, 1), self.out))
                for offset in offsets[1:]:
                    np.maximum(acc, kernel_tap(part, offset, self.stride, (1, 1), self.out), out=acc)
                return
            _first_max_over_taps(part, self.kernel, self.stride, self.out, acc, winner[lo:hi])

        parallel_for(N, work, work_bytes=xp.nbytes + len(offsets) * y.nbytes)
        self.winner = winner
        return y

    def _backward_general(self, gy):
        offsets = list(np.ndindex(*self.kernel))
        gxp = np.zeros(self.padded_shape, dtype=gy.dtype)
        overlap = any(k > s for k, s in zip(self.kernel, self.stride))

        def work(lo, hi):
            part = gxp[lo:hi]
            win, g = self.winner[lo:hi], gy[lo:hi]
            for k, offset in enumerate(offsets):
                target = kernel_tap(part, offset, self.stride, (1, 1), self.out)
                if overlap:
                    target += np.where(win == k, g, 0)
                else:
                    np.copyto(target, g, where=(win == k))

        parallel_for(gy.shape[0], work, work_bytes=2 * gy.nbytes * int(np.prod(self.kernel)))
        return crop_spatial(gxp, self.pads)


def _first_max_over_taps(part, kernel, stride, out, acc, win):
    """The general path's max: ``acc`` = max over each window of ``part``, one
    strided view per kernel tap, and ``win`` (zeros on entry) = index ``k`` of the
    first maximal tap in row-major order (strict ``>``: an earlier tap keeps a tie;
    a NaN wins only as the first tap)."""
    offsets = list(np.ndindex(*kernel))
    np.copyto(acc, kernel_tap(part, offsets[0], stride, (1, 1), out))
    better = np.empty(acc.shape, dtype=bool)
    for k, offset in enumerate(offsets[1:], start=1):
        tap = kernel_tap(part, offset, stride, (1, 1), out)
        np.greater(tap, acc, out=better)
        np.copyto(acc, tap, where=better)
        np.copyto(win, k, where=better)


# --------------------------------------------------------------------------- tiled max pooling
# When stride == kernel the windows tile the (floor-cropped) input.  In NHWC the
# window (oh, ow) covers rows oh*KH .. oh*KH+KH-1 and, in each of them, the run
# of KW*C numbers starting at ow*KW*C.  Viewing the input as (N, OH, KH, L) with
# L = OW*KW*C, the KH rows of every window are contiguous runs of L numbers.
#
# NumPy ufuncs are fast on long contiguous runs, ~10x slower on strided views
# whose inner run is only C numbers (a kernel tap of a stride-2 pool), and a
# masked copy (np.where, copyto(where=)) with an irregular mask is slower still.
# So the tiled path uses only contiguous, branch-free ops:
#
# 1. rows:    max over the KH rows of each window (runs of L numbers);
# 2. columns: max over the KW columns, comparing position p of the row-reduced
#             buffer with p + j*C over the whole flattened buffer (twice the work
#             needed, but long inner loops); one strided copy then keeps the
#             window starts;
# 3. the winner's flat index in the input (window start + tap) is kept: forward
#    reads y from it (exactly the winning number), backward scatters gy to it.
#
# Images holding a NaN (rare) get their winners from the general path's tap loop,
# whose NaN rule the two stages cannot reproduce (see _winner_by_taps).
#
# The winner of a window is tracked as `tap = (i*Wp + j)*C` (row i, column j of
# the window; Wp the padded width): the offset of the winning number from the
# window's first number.  Row-major order is tap order, so the tie rule "first
# maximum in row-major order" is "smallest tap among the maximal values".

def _tiled_max_pool(xp, kernel, out, record):
    """Forward of the tiled path on a contiguous padded input ``(N, Hp, Wp, C)``.

    Returns ``y`` ``(N, OH, OW, C)`` and, when ``record``, ``index``: the flat
    index in ``xp`` of each output's winner (``None`` otherwise).
    """
    N, Hp, Wp, C = xp.shape
    (KH, KW), (OH, OW) = kernel, out
    y = np.empty((N, OH, OW, C), dtype=xp.dtype)
    tap_dtype = np.min_scalar_type(((KH - 1) * Wp + KW - 1) * C) if record else None
    index = np.empty(y.shape, dtype=np.intp) if record else None
    flat = xp.reshape(-1)

    def work(lo, hi):
        n = hi - lo
        # (n, OH, KH, OW*KW*C): a view (floor mode: rows and columns past the last window dropped)
        rows = xp[lo:hi, :OH * KH, :OW * KW].reshape(n, OH, KH, OW * KW * C)
        best, tap = _max_over_rows(rows, Wp * C, tap_dtype)
        if record and np.isnan(best.min()):  # a NaN among these images (the row maxima propagate it)
            winner = _winner_by_taps(xp[lo:hi], kernel, out, tap_dtype)
        else:
            best, tap = _max_over_columns(best, tap, KW, C)
            if not record:
                _copy_pixels(y[lo:hi], _window_starts(best, OW, KW, C))
                return
            winner = np.empty((n, OH, OW * C), dtype=tap_dtype)
            _copy_pixels(winner, _window_starts(tap, OW, KW, C))
        _winner_index(winner, lo, xp.shape, kernel, out=index[lo:hi].reshape(n, OH, OW * C))
        y[lo:hi] = np.take(flat, index[lo:hi])  # the winning numbers themselves, bit for bit

    parallel_blocks(N, Hp * Wp * C * xp.itemsize, work, budget=1 << 22)
    return y, index


def _max_over_rows(rows, row_step, tap_dtype):
    """Max over axis 2 of ``rows`` ``(n, OH, KH, L)`` -> ``best`` ``(n, OH, L)``, contiguous.

    With ``tap_dtype``, also ``tap = i * row_step`` for the first row ``i`` that
    reaches the max (strict ``>``: an earlier row keeps a tie).  Rows are visited
    in increasing order, so a row that beats the best so far has the largest tap
    yet: ``tap = max(tap, better * i * row_step)``, no masked copy.
    """
    n, OH, KH, L = rows.shape
    best = np.empty((n, OH, L), dtype=rows.dtype)
    np.copyto(best, rows[:, :, 0])
    if tap_dtype is None:  # values only
        for i in range(1, KH):
            np.maximum(rows[:, :, i], best, out=best)
        return best, None
    tap = np.zeros(best.shape, dtype=tap_dtype)
    row = np.empty_like(best)  # a contiguous copy: ufuncs run faster on it than on the strided view
    better = np.empty(best.shape, dtype=bool)
    for i in range(1, KH):
        np.copyto(row, rows[:, :, i])
        np.greater(row, best, out=better)
        np.maximum(tap, better * tap_dtype.type(i * row_step), out=tap)
        np.maximum(row, best, out=best)
    return best, tap


def _max_over_columns(row_max, row_tap, KW, C):
    """Max over the ``KW`` columns of each window of the row-reduced ``row_max`` ``(n, OH, OW*KW*C)``.

    Flattened, column ``j`` of the window starting at position ``p`` sits at
    ``p + j*C``, so comparing the whole buffer with itself shifted by ``j*C``
    reduces every window at once (non-start positions get meaningless results,
    never read).  Returns flat buffers whose window-start positions hold the max
    and, with ``row_tap``, the winning tap: a later column wins if it is greater,
    or equal with a smaller tap (it won its column in an earlier row).
    """
    flat = row_max.reshape(-1)
    flat_tap = row_tap.reshape(-1) if row_tap is not None else None
    if KW == 1:
        return flat, flat_tap
    span = flat.size - (KW - 1) * C  # every window start lies below span
    best_out = np.empty_like(flat)
    tap_out = np.empty_like(flat_tap) if row_tap is not None else None
    best, tap = flat[:span], (flat_tap[:span] if row_tap is not None else None)
    for j in range(1, KW):
        cand = flat[j * C:j * C + span]
        if row_tap is not None:
            cand_tap = flat_tap[j * C:j * C + span] + row_tap.dtype.type(j * C)
            wins = np.greater(cand, best)
            wins |= np.equal(cand, best) & np.less(cand_tap, tap)
            # tap = where(wins, cand_tap, tap) without a masked copy (unsigned wrap-around is exact)
            cand_tap -= tap
            cand_tap *= wins
            tap = np.add(tap, cand_tap, out=tap_out[:span])
        best = np.maximum(cand, best, out=best_out[:span])
    return best_out, tap_out


def _winner_by_taps(part, kernel, out, tap_dtype):
    """Winning taps ``(n, OH, OW*C)`` by the general path's rule (:func:`_first_max_over_taps`),
    for images holding a NaN: the two stages would let a NaN, which loses every
    comparison, hide the other rows of its column, where the general rule skips it."""
    n, _, Wp, C = part.shape
    (OH, OW) = out
    k = np.zeros((n, OH, OW, C), dtype=np.min_scalar_type(np.prod(kernel) - 1))
    _first_max_over_taps(part, kernel, kernel, out, np.empty(k.shape, dtype=part.dtype), k)
    taps = np.array([(i * Wp + j) * C for i, j in np.ndindex(*kernel)], dtype=tap_dtype)
    return taps[k].reshape(n, OH, OW * C)


def _window_starts(flat, OW, KW, C):
    """View ``(n*OH, OW, C)`` of the window-start positions of a flat row-reduced buffer."""
    return flat.reshape(-1, OW, KW, C)[:, :, 0, :]


def _copy_pixels(dst, src):
    """``dst[...] = src`` for a contiguous ``dst`` of ``src``'s size and a ``src``
    ``(..., C)`` whose last axis is contiguous, moving each pixel's ``C`` numbers as
    one opaque item: NumPy's copy loop then steps over pixels instead of running a
    loop of ``C`` numbers per pixel (much faster when ``src`` is strided, ``C`` small)."""
    item = np.dtype((np.void, src.shape[-1] * src.itemsize))
    np.copyto(dst.reshape(src.shape).view(item), src.view(item))  # reshape: a view, dst is contiguous


def _winner_index(winner, lo, padded_shape, kernel, out):
    """Flat index in the padded input of the winners of images ``lo, lo+1, ...``:
    the window's first number ``((n*Hp + oh*KH)*Wp + ow*KW)*C + c`` plus the
    winner's tap.  ``winner`` and ``out`` are ``(n, OH, OW*C)``."""
    _, Hp, Wp, C = padded_shape
    KH, KW = kernel
    n, OH, OWC = winner.shape
    row = (np.arange(lo, lo + n, dtype=np.intp)[:, None] * Hp + np.arange(OH) * KH) * (Wp * C)
    column = np.arange(OWC, dtype=np.intp) // C * (KW * C) + np.arange(OWC) % C
    np.add(winner, column, out=out)
    out += row[:, :, None]


def _scatter(gxp, index, gy):
    """``gxp.flat[index] = gy`` (``gxp`` contiguous), image blocks shared over the threads."""
    flat = gxp.reshape(-1)

    def work(lo, hi):
        flat[index[lo:hi].reshape(-1)] = gy[lo:hi].reshape(-1)

    N, Hp, Wp, C = gxp.shape
    parallel_blocks(N, Hp * Wp * C * gxp.itemsize, work, budget=1 << 22)


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
            total += kernel_tap(ones, offset, self.stride, (1, 1), self.out)
        return total

    def forward(self, x):
        xp = pad_spatial(x, self.pads, value=0.0)
        N, C = x.shape[0], x.shape[-1]
        y = np.empty((N,) + self.out + (C,), dtype=x.dtype)
        offsets = list(np.ndindex(*self.kernel))

        def work(lo, hi):
            part, acc = xp[lo:hi], y[lo:hi]
            np.copyto(acc, kernel_tap(part, offsets[0], self.stride, (1, 1), self.out))
            for offset in offsets[1:]:
                acc += kernel_tap(part, offset, self.stride, (1, 1), self.out)

        parallel_for(N, work, work_bytes=xp.nbytes + len(offsets) * y.nbytes)
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
                kernel_tap(part, offset, self.stride, (1, 1), self.out)[...] += g[lo:hi]

        parallel_for(gy.shape[0], work, work_bytes=2 * gy.nbytes * int(np.prod(self.kernel)))
        return crop_spatial(gxp, self.pads)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """Max pooling.  x ``(N, H, W, C)`` -> ``(N, OH, OW, C)``; ``stride`` defaults to the kernel size.

    ``OH = floor((H + pad_top + pad_bottom - KH) / stride) + 1``; ``ceil_mode=True`` rounds up
    instead (PyTorch's ``ceil_mode``: the last window may reach past the input, never start
    past it), e.g. 112 -> 56 with a 3x3 window and stride 2 where floor gives 55.

    >>> y = max_pool2d(x, 2)                 # halves H and W
    """
    x, kernel, stride_t, pads, out = _pool_args(x, kernel_size, stride, padding, "max_pool2d", ceil_mode)
    return MaxPool2d(kernel, stride_t, pads, out)(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """Average pooling (padding excluded from the count).  x ``(N, H, W, C)`` -> ``(N, OH, OW, C)``.

    ``ceil_mode`` as in :func:`max_pool2d`; a window reaching past the input averages the
    pixels it covers (PyTorch with ``count_include_pad=False``)."""
    x, kernel, stride_t, pads, out = _pool_args(x, kernel_size, stride, padding, "avg_pool2d", ceil_mode)
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
    check_rank(x, 4, "NHWC", "global_avg_pool2d input")
    y = GlobalAvgPool()(x)
    return y.reshape(x.shape[0], 1, 1, x.shape[-1]) if keepdims else y


def adaptive_windows(size: int, out: int) -> list:
    """PyTorch's adaptive pooling windows along one axis: cell ``i`` covers
    ``floor(i * size / out) .. ceil((i + 1) * size / out) - 1`` (windows may overlap)."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class AdaptiveAvgPool(Function):
    """y[n, i, j, c] = mean of x[n, rows_i, cols_j, c] over PyTorch's adaptive windows
    (:func:`adaptive_windows`); backward spreads ``gy / window size`` over each window."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        self.shape = x.shape
        self.rows = adaptive_windows(x.shape[1], self.output_size[0])
        self.cols = adaptive_windows(x.shape[2], self.output_size[1])
        y = np.empty((x.shape[0],) + tuple(self.output_size) + (x.shape[-1],), dtype=x.dtype)
        for i, (h0, h1) in enumerate(self.rows):
            band = x[:, h0:h1].sum(axis=1)                     # (N, W, C)
            for j, (w0, w1) in enumerate(self.cols):
                y[:, i, j] = band[:, w0:w1].sum(axis=1) * (1.0 / ((h1 - h0) * (w1 - w0)))
        return y

    def backward(self, gy):
        gx = np.zeros(self.shape, dtype=gy.dtype)
        for i, (h0, h1) in enumerate(self.rows):
            for j, (w0, w1) in enumerate(self.cols):
                gx[:, h0:h1, w0:w1] += (gy[:, i, j] * (1.0 / ((h1 - h0) * (w1 - w0))))[:, None, None, :]
        return gx


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """Average pooling to a fixed grid: ``(N, H, W, C) -> (N, OH, OW, C)`` for any H, W.

    PyTorch's rule: output cell ``(i, j)`` is the mean of rows
    ``floor(i*H/OH) .. ceil((i+1)*H/OH) - 1`` and the columns alike (windows may overlap,
    or repeat a pixel when ``H < OH``).  An input already ``OH x OW`` is returned as is;
    when ``H`` and ``W`` are multiples of the output it is :func:`avg_pool2d`.

    >>> adaptive_avg_pool2d(x, 6).shape      # (N, 6, 6, C) for x (N, 13, 13, C)
    """
    x = float_tensor(x, "input")
    check_rank(x, 4, "NHWC", "adaptive_avg_pool2d input")
    OH, OW = pair(output_size, "output_size")
    check_positive((OH, OW), "output_size", output_size)
    H, W = x.shape[1], x.shape[2]
    if (H, W) == (OH, OW):
        return x
    if H % OH == 0 and W % OW == 0:
        return avg_pool2d(x, (H // OH, W // OW))
    return AdaptiveAvgPool((OH, OW))(x)
