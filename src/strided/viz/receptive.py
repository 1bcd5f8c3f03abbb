"""Receptive fields: which input pixels one unit of a layer can see.

Along one axis a stack of windowed layers is summarised by three numbers
(Araujo et al., "Computing receptive fields of convolutional neural networks",
Distill 2019):

* ``size``  -- input pixels one unit sees;
* ``jump``  -- input pixels between two neighbouring units (product of strides);
* ``start`` -- input coordinate of the first pixel seen by unit 0 (negative
  when it lies in the padding).

A layer with kernel ``k``, stride ``s``, dilation ``d`` and ``p`` pixels of
padding before the input updates them as::

    size  += (d*(k - 1)) * jump
    start -= p * jump
    jump  *= s

so unit ``i`` sees input pixels ``start + i*jump ... start + i*jump + size - 1``.
LeNet-5's second convolution (28x28 input: conv 5 pad 2, max pool 2, conv 5):
size 5 -> 6 -> 14, jump 1 -> 2 -> 2, start -2: a 14x14 field.

**How the layers are found.** :func:`receptive_field` runs the model once on
zeros (graph recording on) and records, with forward hooks, which tensor went
into every leaf module call and which came out.  Walking back from the layer's output:

* a tensor made by a ``Conv2d`` / ``DepthwiseConv2d`` or a pooling module
  (``MaxPool2d``, ``AvgPool2d``, any ``*Pool*`` module with ``kernel_size``,
  ``stride``, ``padding``) composes that layer's rule, exactly, padding
  resolved at the actual input size (``"same"`` included);
* a tensor made by any other leaf module that keeps H and W (batch norm,
  activations, dropout) passes the field through unchanged;
* a tensor made outside modules (``y + shortcut``, ``concat`` of Inception
  branches) gets the **bounding box of the union** of its inputs' fields --
  exact as a box, so residual networks and Inception modules are handled.

This covers every model of :mod:`strided.models` exactly, with two documented
approximations (``exact=False``, the reason in ``notes``):

1. A 1x1 input broadcast over a larger map (squeeze-and-excitation's channel
   gate in EfficientNet: ``x * sigmoid(s)``) is ignored.  Strictly it makes
   every later unit see the whole image; the local field is the useful one.
2. An unknown op or module that changes H or W (``ZeroPadShortcut``'s
   ``x[:, ::2, ::2]``, adaptive pooling) is treated as a window of stride
   ``s = H_in // H_out`` and size ``H_in - (H_out - 1)*s`` without padding.

If the model cannot be run on zeros, the fallback composes every conv and
pooling layer registered before the layer, in ``named_modules()`` order
(``exact=False``): right for plain chains, an over-estimate for branches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..functional.utils import get_conv_outsize, pair, resolve_padding
from ..nn.layers import MaxPool2d
from ..nn.hooks import capture_outputs
from ..tensor import Tensor, enable_grad
from .capture import VizError, conv_layers, get_layer, is_conv2d

__all__ = ["ReceptiveField", "receptive_field", "receptive_fields"]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, per axis ``(rows, columns)``.

    ``box(i, j)`` is the input window ``(top, left, bottom, right)`` (bottom and
    right exclusive) seen by the unit at output position ``(i, j)``; it may
    extend past the image (padding).  ``exact`` is False where an approximation
    was used; ``notes`` says which.
    """

    size: tuple = (1, 1)
    jump: tuple = (1, 1)
    start: tuple = (0, 0)
    exact: bool = True
    notes: tuple = field(default=())

    def box(self, i: int, j: int) -> tuple:
        top = self.start[0] + int(i) * self.jump[0]
        left = self.start[1] + int(j) * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]

    def center(self, i: int, j: int) -> tuple:
        top, left, bottom, right = self.box(i, j)
        return (top + bottom - 1) / 2, (left + right - 1) / 2

    def __str__(self):
        text = f"{self.size[0]}x{self.size[1]} (jump {self.jump[0]}x{self.jump[1]}, start {self.start})"
        return text if self.exact else text + " approximate"

    # ----- composition
    def then(self, kernel, stride, pads, dilation=(1, 1)) -> ReceptiveField:
        """The field after one more layer with ``kernel``, ``stride``, ``dilation`` (pairs) and
        ``pads = ((top, bottom), (left, right))``."""
        size = tuple(s + d * (k - 1) * j for s, k, d, j in zip(self.size, kernel, dilation, self.jump))
        start = tuple(st - p[0] * j for st, p, j in zip(self.start, pads, self.jump))
        jump = tuple(j * s for j, s in zip(self.jump, stride))
        return ReceptiveField(size, jump, start, self.exact, self.notes)

    def noted(self, note: str) -> ReceptiveField:
        notes = self.notes if note in self.notes else self.notes + (note,)
        return ReceptiveField(self.size, self.jump, self.start, False, notes)


def _union(fields: list) -> ReceptiveField:
    """Bounding box of the union of fields that index the same output grid."""
    if len(fields) == 1:
        return fields[0]
    start = tuple(min(f.start[a] for f in fields) for a in range(2))
    end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in range(2))
    jump = tuple(max(f.jump[a] for f in fields) for a in range(2))
    notes = tuple(dict.fromkeys(n for f in fields for n in f.notes))
    out = ReceptiveField(tuple(e - s for s, e in zip(start, end)), jump, start,
                         all(f.exact for f in fields), notes)
    if any(f.jump != jump for f in fields):
        out = out.noted("inputs with different strides were merged (largest stride kept)")
    return out


# --------------------------------------------------------------------------- layer rules
def _is_pool(module) -> bool:
    if isinstance(module, MaxPool2d):
        return True
    return "Pool" in type(module).__name__ and all(hasattr(module, a) for a in ("kernel_size", "stride", "padding"))


def _window(module):
    """``(kernel, stride, dilation, padding)`` of a conv or pooling module (pairs; padding as given)."""
    kernel = pair(module.kernel_size, "kernel_size")
    stride = kernel if module.stride is None else pair(module.stride, "stride")
    dilation = pair(getattr(module, "dilation", 1) or 1, "dilation")
    return kernel, stride, dilation, module.padding


def _apply_known(rf, module, in_hw) -> ReceptiveField:
    kernel, stride, dilation, padding = _window(module)
    pads = resolve_padding(padding if padding is not None else 0, tuple(in_hw), kernel, stride, dilation)
    return rf.then(kernel, stride, pads, dilation)


def _apply_approx(rf, what, in_hw, out_hw) -> ReceptiveField:
    if tuple(in_hw) == tuple(out_hw):
        return rf
    stride, kernel = [], []
    for n_in, n_out in zip(in_hw, out_hw):
        s = max(1, n_in // max(n_out, 1)) if n_out < n_in else 1
        stride.append(s)
        kernel.append(max(1, n_in - (n_out - 1) * s) if n_out < n_in else 1)
    rf = rf.then(tuple(kernel), tuple(stride), ((0, 0), (0, 0)))
    return rf.noted(f"{what} changes {in_hw[0]}x{in_hw[1]} to {out_hw[0]}x{out_hw[1]}: treated as a "
                    f"{kernel[0]}x{kernel[1]} window, stride {stride[0]}x{stride[1]}, no padding")


def _op_rule(ctx, parent, rf):
    """Exact rules for the ops that move pixels outside modules: spatial padding (``Pad``) and
    strided slicing (``GetItem``, e.g. ``x[:, ::2, ::2, :]``).  None for any other op."""
    if len(parent.shape) != 4:
        return None
    kind = type(ctx).__name__
    if kind == "Pad" and len(getattr(ctx, "pad_width", ())) == 4:
        pads = tuple(tuple(int(v) for v in ctx.pad_width[a]) for a in (1, 2))
        return rf.then((1, 1), (1, 1), pads)
    if kind == "GetItem":
        index = ctx.index if isinstance(ctx.index, tuple) else (ctx.index,)
        if not all(isinstance(i, slice) for i in index) or len(index) > 4:
            return None
        index = index + (slice(None),) * (4 - len(index))
        starts, steps = [], []
        for axis in (1, 2):
            start, _, step = index[axis].indices(parent.shape[axis])
            if step < 1:
                return None
            starts.append(start)
            steps.append(step)
        return rf.then((1, 1), tuple(steps), ((-starts[0], 0), (-starts[1], 0)))
    return None


def _hw(t) -> tuple:
    """Spatial size of an activation (NHWC); a non-spatial one counts as 1x1."""
    shape = t.shape
    return tuple(shape[1:3]) if len(shape) == 4 else (1, 1)


# --------------------------------------------------------------------------- tracing
def _input_shape(model, input_shape):
    if input_shape is None:
        input_shape = getattr(model, "default_input_size", None)
    if input_shape is None:
        raise VizError(f"{type(model).__name__} has no default_input_size; pass input_shape=(H, W, C)")
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) == 4:
        input_shape = input_shape[1:]
    if len(input_shape) != 3:
        raise VizError(f"input_shape must be (H, W, C), received {input_shape}")
    return input_shape


def _trace(model, targets: dict, input_shape, stop_after_all: bool):
    """Run ``model`` on zeros, graph on; record leaf calls and each target's first output.

    Returns ``(x, produced, outputs)``: the input tensor, ``id(output) -> (name,
    module, input, output)`` for every leaf call, and ``name -> output`` of the targets.
    """
    x = Tensor(np.zeros((1,) + input_shape, dtype=np.float32), requires_grad=True)
    produced = {}
    leaves = [(n, m) for n, m in model.named_modules() if n and not m.children()]

    def recorder(name):
        def record(module, inputs, out):
            if inputs and isinstance(inputs[0], Tensor) and isinstance(out, Tensor) and out is not inputs[0]:
                produced.setdefault(id(out), (name, module, inputs[0], out))
        return record

    handles = [module.register_forward_hook(recorder(name)) for name, module in leaves]
    try:
        # the recorders were registered first, so they run before the capturing hooks
        with capture_outputs(model, list(targets), stop=stop_after_all) as outputs, model.evaluating(), \
                enable_grad():
            model(x)
            outputs = dict(outputs)
    finally:
        for handle in handles:
            handle.remove()
    return x, produced, outputs


def _field_of(tensor, x, produced) -> ReceptiveField | None:
    """Receptive field of ``tensor`` in the input ``x`` (None if it does not depend on ``x``)."""
    memo = {id(x): ReceptiveField()}

    def known(record):
        return record is not None and (is_conv2d(record[1]) or _is_pool(record[1]))

    def deps(node):
        record = produced.get(id(node))
        if known(record):
            return [record[2]]
        ctx = node._ctx
        if ctx is not None and not ctx.released:   # walk through other modules op by op
            return [p for p in ctx.inputs if p.requires_grad]
        return [record[2]] if record is not None else []

    stack = [tensor]
    while stack:
        node = stack[-1]
        if id(node) in memo:
            stack.pop()
            continue
        parents = deps(node)
        missing = [p for p in parents if id(p) not in memo]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        record = produced.get(id(node))
        if record is not None and (known(record) or node._ctx is None or node._ctx.released):
            name, module, inp, _ = record
            rf = memo[id(inp)]
            if rf is not None:
                if is_conv2d(module) or _is_pool(module):
                    rf = _apply_known(rf, module, _hw(inp))
                else:
                    rf = _apply_approx(rf, f"layer {name!r} ({type(module).__name__})", _hw(inp), _hw(node))
            memo[id(node)] = rf
            continue
        out_hw = _hw(node)
        what = type(node._ctx).__name__ if node._ctx is not None else "?"
        live = [p for p in parents if memo[id(p)] is not None]
        if not live:
            memo[id(node)] = None
            continue
        local = [p for p in live if not (_hw(p) == (1, 1) and out_hw != (1, 1))]
        rf = _union([memo[id(p)] for p in (local or live)])
        if local and len(local) < len(live):
            rf = rf.noted(f"the 1x1 input of {what} broadcast over {out_hw[0]}x{out_hw[1]} "
                          f"(e.g. squeeze-and-excitation) was ignored")
        first = (local or live)[0]
        in_hw = _hw(first)
        exact = _op_rule(node._ctx, first, rf) if len(live) == 1 else None
        if exact is not None:
            rf = exact
        elif in_hw != out_hw:
            rf = _apply_approx(rf, f"op {what}", in_hw, out_hw)
        memo[id(node)] = rf
    return memo[id(tensor)]


def _static_field(model, layer, input_shape, reason) -> ReceptiveField:
    """Fallback: compose every conv / pooling layer registered before ``layer`` (and itself)."""
    rf, hw, reached = ReceptiveField(), tuple(input_shape[:2]), False
    for name, module in model.named_modules():
        inside = name == layer or name.startswith(layer + ".")
        if reached and not inside:
            break
        reached = reached or inside
        if name and not module.children() and (is_conv2d(module) or _is_pool(module)):
            kernel, stride, dilation, padding = _window(module)
            pads = resolve_padding(padding if padding is not None else 0, hw, kernel, stride, dilation)
            rf = rf.then(kernel, stride, pads, dilation)
            hw = tuple(max(1, get_conv_outsize(n, k, s, p[0], p[1], d))
                       for n, k, s, p, d in zip(hw, kernel, stride, pads, dilation))
    return rf.noted(f"the model could not be traced ({reason}); composed every conv and pooling layer "
                    f"registered up to {layer!r} in order (an over-estimate for branching models)")


def receptive_fields(model, layers=None, input_shape=None) -> dict:
    """Receptive fields of several layers (default: every conv layer) from one traced forward pass.

    Returns ``{name: ReceptiveField}``; see :func:`receptive_field`.
    """
    input_shape = _input_shape(model, input_shape)
    names = conv_layers(model) if layers is None else list(layers)
    targets = {name: get_layer(model, name) for name in names}
    if not targets:
        return {}
    try:
        x, produced, outputs = _trace(model, targets, input_shape, stop_after_all=True)
    except VizError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the model on zeros: fall back
        reason = f"{type(exc).__name__}: {exc}"
        return {name: _static_field(model, name, input_shape, reason) for name in names}
    result = {}
    for name in names:
        if name not in outputs:
            raise VizError(f"layer {name!r} is not used by {type(model).__name__}.forward")
        out = outputs[name]
        if not isinstance(out, Tensor) or out.ndim != 4:
            shape = getattr(out, "shape", None)
            raise VizError(f"layer {name!r} outputs shape {shape}, not a spatial map (N, H, W, C); "
                           f"receptive fields are for conv and pooling layers")
        rf = _field_of(out, x, produced)
        if rf is None:
            raise VizError(f"the output of layer {name!r} does not depend on the input")
        result[name] = rf
    return result


def receptive_field(model, layer: str, input_shape=None) -> ReceptiveField:
    """Receptive field of the units of ``layer`` (a ``named_modules()`` name) in the input image.

    ``input_shape`` is ``(H, W, C)`` (default ``model.default_input_size``); it
    matters for ``"same"`` padding.  See the module docs for the method and its
    approximations.

    >>> rf = receptive_field(models.create("lenet5", input_size=28), "features.3")
    >>> rf.size, rf.jump, rf.start
    ((14, 14), (2, 2), (-2, -2))
    """
    return receptive_fields(model, [layer], input_shape)[layer]
