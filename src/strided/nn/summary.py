"""``model.summary(input_shape)``: every layer's output shape and parameter count.

Runs one forward pass on zeros (no graph, eval mode) and records what each
leaf layer (one without children) returns, with forward hooks
(:func:`strided.nn.capture_outputs`).  Totals split trainable and
non-trainable (frozen weights); batch-norm running statistics are buffers, not
parameters, as in PyTorch.  Keras counts them as non-trainable parameters.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, no_grad
from .hooks import capture_outputs

__all__ = ["summarize"]


def _shape(value):
    if isinstance(value, Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shape(v) for v in value]
    return None


def summarize(model, input_shape=None) -> str:
    leaves = [(name, m) for name, m in model.named_modules() if not m.children() and name]
    if not leaves:
        leaves = [("", model)]
    shapes = {}
    if input_shape is not None:
        with capture_outputs(model, [name for name, _ in leaves]) as outputs, model.evaluating(), no_grad():
            model(Tensor(np.zeros(tuple(input_shape), dtype=np.float32)))
            shapes = {name: _shape(out) for name, out in outputs.items()}
    rows = [("Layer", "Type", "Output shape", "Params")]
    for name, module in leaves:
        count = sum(p.data.size for p in module.own_parameters())
        shape = shapes.get(name, "-" if input_shape is not None else "")
        rows.append((name or type(model).__name__, type(module).__name__, str(shape), f"{count:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "-" * (sum(widths) + 6)
    text = [f"{type(model).__name__}" + (f" (input {tuple(input_shape)})" if input_shape is not None else ""), line]
    for i, row in enumerate(rows):
        text.append("  ".join(cell.ljust(w) if j < 3 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            text.append(line)
    total = model.num_parameters(trainable_only=False)
    trainable = model.num_parameters(trainable_only=True)
    text += [line, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
             f"Non-trainable params: {total - trainable:,}"]
    return "\n".join(text)
