"""Constant padding of any axes, or of H and W as conv2d's ``padding`` (one rule for both)."""
from __future__ import annotations

from ..tensor import Tensor, as_tensor
from ..tensor import pad as pad_axes
from .utils import resolve_padding

__all__ = ["pad"]


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding.  ``pad_width``: one ``(before, after)`` pair per axis (as ``np.pad``),
    or, for a 4-D NHWC input, anything conv2d accepts as ``padding`` (applied to H and W).

    >>> pad(x, 1).shape                              # (N, H + 2, W + 2, C)
    >>> pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), value=-np.inf)
    """
    x = as_tensor(x)
    try:
        pairs = tuple(tuple(p) for p in pad_width)
        if len(pairs) == x.ndim and all(len(p) == 2 for p in pairs):
            return pad_axes(x, pairs, value)
    except TypeError:
        pass
    if x.ndim != 4:
        raise ValueError(f"pad_width must give one (before, after) pair per axis ({x.ndim}), "
                         f"received pad_width={pad_width!r}")
    pads = resolve_padding(pad_width, x.shape[1:3], (1, 1), (1, 1), (1, 1))
    return pad_axes(x, ((0, 0),) + pads + ((0, 0),), value)
