"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

    g = grad + weight_decay * w
    v = momentum * v + g                      (momentum buffer, PyTorch's form)
    w -= lr * (g + momentum * v)   if nesterov
    w -= lr * v                    otherwise
"""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, received momentum={momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, w, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            v = state.get("velocity")
            if v is None:
                v = state["velocity"] = np.array(g, copy=True)
            else:
                v *= self.momentum
                v += g
            step = g + self.momentum * v if self.nesterov else v
        else:
            step = g
        w -= self.lr * step

    def hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}
