"""Shared helpers for the ops: argument checking, output sizes, padding rules.

Names follow DeZero: ``pair``, ``get_conv_outsize``.  Every check raises a
ValueError/TypeError whose message quotes the received value.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Tensor

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def ntuple(value, n: int, name: str) -> tuple:
    """``value`` as an n-tuple of ints (an int is repeated).  ``pair`` is n=2."""
    if isinstance(value, numbers.Integral):
        return (int(value),) * n
    try:
        values = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, received {name}={value!r}") from None
    if len(values) != n or not all(isinstance(v, numbers.Integral) for v in values):
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, received {name}={value!r}")
    return tuple(int(v) for v in values)


def pair(value, name: str = "value") -> tuple:
    return ntuple(value, 2, name)


def check_positive(values: tuple, name: str, original) -> None:
    if any(v < 1 for v in values):
        raise ValueError(f"{name} must be >= 1, received {name}={original!r}")


def get_conv_outsize(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis.

    ``floor((n + pad_before + pad_after - dilation*(f-1) - 1) / stride) + 1``
    """
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple:
    """TensorFlow's 'same' rule: output = ceil(n / stride); the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, spatial: tuple, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """Turn any accepted ``padding`` into ``((before, after), ...)`` per spatial axis.

    Accepted: an int, one int per axis ``(ph, pw)``, one pair per axis
    ``((top, bottom), (left, right))``, ``"valid"`` (no padding) or ``"same"``.
    """
    n = len(spatial)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * n
        if mode == "same":
            return tuple(same_padding(s, k, st, d) for s, k, st, d in zip(spatial, kernel, stride, dilation))
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', received padding={padding!r}")
    if isinstance(padding, numbers.Integral):
        pads = ((int(padding), int(padding)),) * n
    else:
        try:
            items = tuple(padding)
        except TypeError:
            raise TypeError(f"padding must be an int, a tuple, 'valid' or 'same', received padding={padding!r}") from None
        if len(items) != n:
            raise ValueError(f"padding needs {n} entries (one per spatial axis), received padding={padding!r}")
        pads = []
        for item in items:
            if isinstance(item, numbers.Integral):
                pads.append((int(item), int(item)))
            else:
                try:
                    before, after = item
                except (TypeError, ValueError):
                    raise ValueError(f"each padding entry must be an int or a (before, after) pair, "
                                     f"received padding={padding!r}") from None
                pads.append((int(before), int(after)))
        pads = tuple(pads)
    if any(b < 0 or a < 0 for b, a in pads):
        raise ValueError(f"padding must be >= 0, received padding={padding!r}")
    return pads


def check_float(x: Tensor, name: str = "input") -> None:
    """Ops need float32 or float64 data."""
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, received dtype={x.dtype}")


def float_tensor(x, name: str = "input") -> Tensor:
    """``x`` as a float32/float64 tensor for an op.

    Numbers and lists become float32 tensors, but an ndarray or tensor of another
    dtype (int, bool, float16) is refused: silently converting it would hide a bug.
    """
    if isinstance(x, Tensor):
        check_float(x, name)
        return x
    if isinstance(x, np.ndarray) and x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, received an array of dtype={x.dtype}; "
                        f"convert it first, e.g. x.astype(np.float32)")
    return Tensor(x)


def check_rank(x: Tensor, rank: int, layout: str, name: str = "input") -> None:
    """``x`` must have ``rank`` axes: "input must be a 4-D NHWC array, received shape (2, 3)"."""
    if x.ndim != rank:
        raise ValueError(f"{name} must be a {rank}-D {layout} array, received shape {tuple(x.shape)}")
