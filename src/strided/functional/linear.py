"""Fully connected layer and dropout.

linear:  y = x @ w + b,  x ``(..., in)``, w ``(in, out)``, b ``(out,)``
         gx = gy @ w.T,  gw = x.T @ gy,  gb = sum(gy)
dropout: y = x * mask / (1 - p) in training (inverted dropout), y = x in eval.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor, as_tensor
from .utils import check_rank, float_tensor

__all__ = ["linear", "dropout"]


class Linear(Function):
    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        x2 = x.reshape(-1, x.shape[-1])
        y = x2 @ w
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (w.shape[1],))

    def backward(self, gy):
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = (g2 @ self.w.T).reshape(self.x.shape) if self.needs_grad[0] else None
        gw = self.x.reshape(-1, self.x.shape[-1]).T @ g2 if self.needs_grad[1] else None
        gb = g2.sum(axis=0) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return gx, gw, gb


def linear(x, w, b=None) -> Tensor:
    """``x @ w + b`` with x ``(..., in)``, w ``(in, out)`` (Keras layout), b ``(out,)``."""
    x, w = float_tensor(x, "input"), float_tensor(w, "weight")
    check_rank(w, 2, "(in_features, out_features)", "weight")
    if x.ndim < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"input has {x.shape[-1] if x.ndim else 0} features (shape {tuple(x.shape)}) "
                         f"but the weight expects {w.shape[0]} (weight shape {tuple(w.shape)})")
    if b is None:
        return Linear()(x, w)
    b = as_tensor(b, x)
    if b.shape != (w.shape[1],):
        raise ValueError(f"bias must have shape ({w.shape[1]},), received shape {tuple(b.shape)}")
    return Linear()(x, w, b)


class Dropout(Function):
    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def dropout(x, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each value with probability ``p``, scale the rest by 1/(1-p)."""
    x = float_tensor(x, "input")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), received p={p!r}")
    if not training or p == 0.0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout(mask)(x)
