"""Fold eval-mode batch norm (and a following ReLU / ReLU6) into the convolution before it.

In eval mode batch norm is a fixed per-channel affine map of the convolution's output::

    bn(z) = gamma * (z - mean) / sqrt(var + eps) + beta = scale * z + shift
    scale = gamma / sqrt(var + eps),   shift = beta - mean * scale

and a convolution is linear in its weight, so ``bn(conv(x, W, b)) = conv(x, W', b')`` with::

    W'[..., o] = W[..., o] * scale[o]          (the output-channel axis, last in HWIO)
    b'[o]      = b[o] * scale[o] + shift[o]    (b = 0 when the convolution has no bias)

The batch norm then disappears, and so does one pass over the feature map.  A ReLU or ReLU6
that reads only the batch norm's output is applied by the convolution itself while each
output block is still in cache (``conv.activation``).

Which layers go together is found by running the model once (an example input of
``input_shape``, zeros) and reading the autograd graph: a convolution is folded with a batch
norm only when the batch norm's input *is* the convolution's output and nothing else reads
that output; the same for the activation.  Modules called more than once in the pass (a
shared ReLU, as in ResNet's blocks) or carrying forward hooks are left alone.  So any model
works, also one whose ``forward`` is custom code, and nothing is folded that would change
the result.

>>> fast = nn.fuse(model)         # a fused copy in eval mode; ``model`` is untouched
>>> with sd.no_grad(): logits = fast(x)

(A function, not a ``Module`` method: it knows the layer classes, and ``nn.module`` sits below
``nn.layers``.  PyTorch's equivalents are functions too: ``torch.ao.quantization.fuse_modules``.)
"""
from __future__ import annotations

import copy

import numpy as np

from ..tensor import Tensor, enable_grad, topological_order
from .layers import BatchNorm2d, ConvNd, Identity, ReLU, ReLU6
from .module import Module, Parameter

__all__ = ["fuse", "fold_batch_norm", "fold_affine"]

_ACTIVATIONS = {ReLU: "relu", ReLU6: "relu6"}


def fold_affine(weight: np.ndarray, bias: np.ndarray | None, scale, shift) -> tuple:
    """``(W', b')`` with ``conv(x, W', b') = conv(x, W, b) * scale + shift`` for a per-output-channel
    affine map (``scale``, ``shift`` of shape ``(C_out,)``; the output-channel axis is the last
    of ``W``): ``W' = W * scale``, ``b' = b * scale + shift``.  Computed in float64, returned in
    the weight's dtype.  Eval-mode batch norm is one such map (:func:`fold_batch_norm`)."""
    b = np.zeros(weight.shape[-1]) if bias is None else np.asarray(bias, np.float64)
    scale, shift = np.asarray(scale, np.float64), np.asarray(shift, np.float64)
    new_weight = (np.asarray(weight, np.float64) * scale).astype(weight.dtype)
    new_bias = (b * scale + shift).astype(weight.dtype)
    return new_weight, new_bias


def fold_batch_norm(weight: np.ndarray, bias: np.ndarray | None, bn: BatchNorm2d) -> tuple:
    """``(W', b')`` with ``conv(x, W', b') = bn_eval(conv(x, W, b))`` (formulas in the module
    docstring); computed in float64, returned in the weight's dtype."""
    scale = np.asarray(bn.gamma.data, np.float64) / np.sqrt(np.asarray(bn.running_var, np.float64) + bn.eps)
    shift = np.asarray(bn.beta.data, np.float64) - np.asarray(bn.running_mean, np.float64) * scale
    return fold_affine(weight, bias, scale, shift)


def _trace(model: Module, input_shape: tuple, dtype) -> tuple:
    """Run ``model`` once in eval mode with the graph recorded; returns the calls
    ``[(module, input tensor, output tensor)]`` of the candidate layers, how many times each
    module was called, and how many ops (plus the model's output) read each tensor."""
    calls, counts = [], {}

    def record(module, inputs, output):
        counts[id(module)] = counts.get(id(module), 0) + 1
        calls.append((module, inputs[0] if inputs else None, output))

    candidates = [m for m in model.modules() if isinstance(m, (ConvNd, BatchNorm2d, ReLU, ReLU6))]
    hooked = {id(m) for m in candidates if m._forward_hooks or m._forward_pre_hooks}
    handles = [m.register_forward_hook(record) for m in candidates]
    try:
        with model.evaluating(), enable_grad():
            output = model(Tensor(np.zeros(input_shape, dtype), requires_grad=True))
    finally:
        for handle in handles:
            handle.remove()
    readers = {}
    outputs = output if isinstance(output, (tuple, list)) else [output]
    for out in outputs:
        if isinstance(out, Tensor):
            readers[id(out)] = readers.get(id(out), 0) + 1
            for node in topological_order(out, follow=lambda t: True):
                if node.grad_fn is not None:
                    for parent in node.grad_fn.inputs:
                        readers[id(parent)] = readers.get(id(parent), 0) + 1
    return calls, counts, readers, hooked


def _parents(model: Module) -> dict:
    """``id(module) -> (parent, attribute name)`` for every sub-module."""
    found = {}
    for _, parent in model.named_modules():
        for name, child in parent.named_children():
            found.setdefault(id(child), (parent, name))
    return found


def fuse(model: Module, input_shape: tuple | None = None, inplace: bool = False) -> Module:
    """Fold every eval-mode batch norm that follows a convolution into it, and a ReLU / ReLU6
    after it into the convolution's output pass.

    Returns a fused copy in eval mode (``inplace=True`` fuses ``model`` itself instead); the
    copy computes what ``model`` computes in eval mode, up to float rounding.  Folded batch
    norms and activations become :class:`Identity`; the convolutions get a bias.  The fused
    model is for inference: training it would train the folded weights, with no batch norm.

    ``input_shape`` (batch included, e.g. ``(1, 224, 224, 3)``) is the example input used to
    find which layers feed which; it defaults to ``(1, *model.default_input_size)``.
    """
    if input_shape is None:
        default = getattr(model, "default_input_size", None)
        if default is None:
            raise ValueError(f"fuse needs input_shape (batch included, e.g. (1, 224, 224, 3)) for a "
                             f"{type(model).__name__}, which has no default_input_size")
        input_shape = (1,) + tuple(default)
    target = model if inplace else copy.deepcopy(model)
    params = target.parameters()
    dtype = params[0].dtype if params else np.float32
    calls, counts, readers, hooked = _trace(target, tuple(input_shape), dtype)
    by_input = {}
    for module, x, y in calls:
        if x is not None:
            by_input.setdefault(id(x), []).append((module, y))

    def only_reader(tensor, kinds):
        """The one candidate call that reads ``tensor`` if nothing else does, else None."""
        if readers.get(id(tensor), 0) != 1 or len(by_input.get(id(tensor), [])) != 1:
            return None
        module, out = by_input[id(tensor)][0]
        ok = isinstance(module, kinds) and counts[id(module)] == 1 and id(module) not in hooked
        return (module, out) if ok else None

    parents = _parents(target)
    for module, _, y in calls:
        if not isinstance(module, ConvNd) or counts[id(module)] != 1 or id(module) in hooked:
            continue
        if module.activation is not None:
            continue
        found = only_reader(y, BatchNorm2d)
        if found is None:
            continue
        bn, bn_out = found
        weight, bias = fold_batch_norm(module.weight.data, None if module.bias is None else module.bias.data, bn)
        module.weight = Parameter(weight, requires_grad=module.weight.requires_grad)
        module.bias = Parameter(bias, requires_grad=module.weight.requires_grad)
        module.use_bias = True
        parent, name = parents[id(bn)]
        setattr(parent, name, Identity())
        act = only_reader(bn_out, tuple(_ACTIVATIONS))
        if act is not None:
            module.activation = next(v for k, v in _ACTIVATIONS.items() if isinstance(act[0], k))
            parent, name = parents[id(act[0])]
            setattr(parent, name, Identity())
    return target.eval()
