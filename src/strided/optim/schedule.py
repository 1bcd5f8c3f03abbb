"""Learning-rate schedules: call ``step()`` once per epoch (or per batch for
one-cycle); each sets ``optimizer.lr`` from the base rate.

* StepLR:     lr = base * gamma ** (epoch // step_size)
* CosineLR:   lr = min_lr + (base - min_lr) * (1 + cos(pi * t / T)) / 2
* OneCycleLR: warm up from max_lr/div to max_lr over ``pct_start`` of the
  steps, then cosine-anneal to max_lr/(div*final_div)  (Smith's one-cycle)
"""
from __future__ import annotations

import math

__all__ = ["StepLR", "CosineLR", "OneCycleLR"]


class _Schedule:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.t = 0
        self.optimizer.lr = self.lr_at(0)

    def step(self) -> float:
        self.t += 1
        self.optimizer.lr = self.lr_at(self.t)
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"t": self.t, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.base_lr = int(state["t"]), float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.t)


class StepLR(_Schedule):
    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, received step_size={step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineLR(_Schedule):
    def __init__(self, optimizer, total_steps: int, min_lr: float = 0.0):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, received total_steps={total_steps!r}")
        self.total_steps, self.min_lr = int(total_steps), float(min_lr)
        super().__init__(optimizer)

    def lr_at(self, t):
        t = min(t, self.total_steps)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total_steps)) / 2


class OneCycleLR(_Schedule):
    def __init__(self, optimizer, total_steps: int, max_lr: float | None = None, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4):
        if total_steps < 2:
            raise ValueError(f"total_steps must be >= 2, received total_steps={total_steps!r}")
        self.total_steps = int(total_steps)
        self.max_lr = float(max_lr if max_lr is not None else optimizer.lr)
        self.pct_start, self.div, self.final_div = float(pct_start), float(div_factor), float(final_div_factor)
        super().__init__(optimizer)

    def lr_at(self, t):
        t = min(t, self.total_steps - 1)
        start, peak = self.max_lr / self.div, self.max_lr
        end = start / self.final_div
        warm = max(1, int(self.pct_start * (self.total_steps - 1)))
        if t <= warm:
            a, b, frac = start, peak, t / warm
        else:
            a, b, frac = peak, end, (t - warm) / max(1, self.total_steps - 1 - warm)
        return b + (a - b) * (1 + math.cos(math.pi * frac)) / 2
