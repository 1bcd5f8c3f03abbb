"""Adam, AdamW and RMSprop.

Adam (L2 weight decay added to the gradient)::

    m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
    w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

AdamW decouples the decay: ``w -= lr * weight_decay * w`` before the Adam step.

RMSprop::  s = alpha s + (1 - alpha) g^2;  w -= lr g / (sqrt(s) + eps)   (+ momentum)
"""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer

__all__ = ["Adam", "AdamW", "RMSprop"]


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must be in [0, 1), received betas={betas!r}")
        self.betas, self.eps = (float(b1), float(b2)), float(eps)

    def update(self, w, g, state):
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                w *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * w
        m = state.setdefault("m", np.zeros_like(w))
        v = state.setdefault("v", np.zeros_like(w))
        state["step"] = t = int(state.get("step", 0)) + 1  # per parameter: bias correction counts its own updates
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        step_size = self.lr / (1 - b1 ** t)
        denom = np.sqrt(v / (1 - b2 ** t))
        denom += self.eps
        w -= step_size * (m / denom)

    def hyper(self):
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01)."""
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-3, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), received alpha={alpha!r}")
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, received momentum={momentum!r}")
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)

    def update(self, w, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * w
        s = state.setdefault("square_avg", np.zeros_like(w))
        s *= self.alpha
        s += (1 - self.alpha) * (g * g)
        step = g / (np.sqrt(s) + self.eps)
        if self.momentum:
            buf = state.setdefault("momentum_buffer", np.zeros_like(w))
            buf *= self.momentum
            buf += step
            step = buf
        w -= self.lr * step

    def hyper(self):
        return {"alpha": self.alpha, "eps": self.eps, "momentum": self.momentum, "weight_decay": self.weight_decay}
