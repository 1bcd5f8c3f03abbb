"""Optimizer base: a list of parameters, a learning rate and per-parameter state.

``step()`` updates every parameter that has a gradient, in place on ``.data``;
``zero_grad()`` clears gradients.  After each update the parameter and its
state buffers are flushed of subnormal numbers (``0 < |x| < finfo.tiny``,
1.2e-38 in float32): weight decay shrinks a weight that gets no gradient, and
its moment buffers, by a constant factor each step until they land there, and
the CPU computes with subnormals many times slower -- a long training run
slowed 3x that way.  Such a number becomes 0, which it is within float
rounding anyway (one extra pass over each array, small beside the gradients).
The state (moment buffers, step count, learning rate) round-trips through
``state_dict()`` / ``load_state_dict()`` as plain arrays and numbers, so a
checkpoint can resume training exactly.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Optimizer", "clip_grad_norm", "flush_subnormals"]


class Optimizer:
    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("optimizer received an empty parameter list (is everything frozen?)")
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, received lr={lr!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, received weight_decay={weight_decay!r}")
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.steps = 0
        self.state: list[dict] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        for p, state in zip(self.params, self.state):
            if p.grad is None or not p.requires_grad:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"gradient shape {p.grad.shape} does not match parameter shape {p.data.shape}")
            self.update(p.data, p.grad.astype(p.data.dtype, copy=False), state)
            flush_subnormals(p.data)
            for value in state.values():
                if isinstance(value, np.ndarray):
                    flush_subnormals(value)

    def update(self, w: np.ndarray, g: np.ndarray, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ----- checkpointing
    def state_dict(self) -> dict:
        """``{"lr", "steps", "hyper", "buffers": {"i.name": ndarray}, "counters": {"i.name": int}}``:
        arrays the size of their parameter (moments) and per-parameter counts (Adam's step)."""
        buffers, counters = {}, {}
        for i, state in enumerate(self.state):
            for name, value in state.items():
                if isinstance(value, np.ndarray):
                    buffers[f"{i}.{name}"] = value
                else:
                    counters[f"{i}.{name}"] = int(value)
        return {"type": type(self).__name__, "lr": self.lr, "steps": self.steps, "hyper": self.hyper(),
                "buffers": buffers, "counters": counters}

    def load_state_dict(self, state: dict) -> None:
        if state.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"optimizer state is for {state['type']}, this optimizer is {type(self).__name__}")
        self.lr, self.steps = float(state["lr"]), int(state["steps"])
        self.state = [{} for _ in self.params]
        entries = list(state["buffers"].items()) + list(state.get("counters", {}).items())
        for key, value in entries:
            index, name = key.split(".", 1)
            i = int(index)
            if i >= len(self.params):
                raise ValueError(f"optimizer buffer {key!r} is for parameter {i}, there are {len(self.params)}")
            if not isinstance(value, np.ndarray):  # a per-parameter counter such as Adam's step
                self.state[i][name] = int(value)
                continue
            if np.shape(value) != self.params[i].data.shape:
                raise ValueError(f"optimizer buffer {key!r} of shape {np.shape(value)} does not fit parameter {i}")
            self.state[i][name] = np.array(value, dtype=self.params[i].data.dtype)

    def hyper(self) -> dict:
        return {"weight_decay": self.weight_decay}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in {"lr": self.lr, **self.hyper()}.items())
        return f"{type(self).__name__}({args})"


def flush_subnormals(array: np.ndarray) -> np.ndarray:
    """Set the subnormal entries of a float array (``0 < |x| < np.finfo(dtype).tiny``) to 0, in place.

    Returns the array.  Arrays that are not floating point are left alone.
    """
    if array.dtype.kind == "f":
        tiny = np.finfo(array.dtype).tiny
        small = np.abs(array) < tiny
        if small.any():
            array[small] = 0
    return array


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients so their joint L2 norm is at most ``max_norm``; returns the norm before."""
    params = list(params)
    grads = [p.grad for p in params if p.grad is not None]
    total = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    if total > max_norm > 0:
        scale = max_norm / (total + 1e-6)
        for p in params:
            if p.grad is not None:
                p.grad = p.grad * scale
    return total
