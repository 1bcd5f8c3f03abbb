"""Export a strided model to ONNX (``export_onnx``).

**Tracing.**  The model is run once, in eval mode, on zeros of ``input_shape``
with ``requires_grad=True`` on the input: the autograd graph that the engine
records anyway (every output tensor keeps the :class:`~strided.tensor.Function`
that made it, with its inputs and its hyper-parameters: stride, pads, axis,
...) *is* the trace.  Nothing is patched or wrapped; any model built from the
engine's ops exports, whatever Python control flow its ``forward`` uses
(residual ``+``, squeeze-excite ``*``, ``concat``, slicing, ``F.pad``, ...),
as long as each op it runs is in :data:`SUPPORTED_FUNCTIONS`.  The walk goes
from the output back to the input (iteratively), and the ops are written in
topological order.

**Layouts.**  strided is channels-last (NHWC, HWIO), ONNX channels-first
(NCHW, OIHW).  The exported graph takes the same NHWC input as the strided
model and returns the same output.  Each strided tensor is held in ONNX under
one or more *layouts* (an axis permutation ``P`` with ``onnx = strided.transpose(P)``):
convolution, pooling and batch norm want channels-first (``P = (0, 3, 1, 2)``),
elementwise ops take whatever their input has, reshapes (``Flatten``) want
strided's own order (``P`` = identity, so NHWC flatten order is kept), strided
``transpose`` only changes ``P``.  A ``Transpose`` node is written only where an
op needs a layout that its input does not have yet (once per tensor and layout):
a conv net gets one at the input and one before its ``Flatten``.
Weights are converted once: HWIO -> OIHW, dense ``(in, out)`` stays (``Gemm``
with ``transB=0``), constants of elementwise ops are permuted like the tensor
they meet.

The batch axis is symbolic (``N``) unless a reshape mixes it with other axes.
Initializers are named after the model's ``state_dict`` (``features.0.weight``),
so :func:`strided.io.import_onnx` gives back a model with the same names.

>>> import strided.io as sio
>>> sio.export_onnx(model, "lenet5.onnx", (1, 32, 32, 1))
"""
from __future__ import annotations

import importlib
import numbers
import os

import numpy as np

from ..tensor import Tensor, enable_grad, topological_order
from ..errors import StridedError

# the op modules (``strided.functional`` re-exports functions under some of these names)
T = importlib.import_module("strided.tensor")
A, C, L, NORM, P = (importlib.import_module(f"strided.functional.{m}")
                    for m in ("activation", "conv", "linear", "norm", "pool"))

__all__ = ["export_onnx", "SUPPORTED_FUNCTIONS", "OPSET", "INPUT_LAYOUT_KEY"]

OPSET = 17
IR_VERSION = 8                        # what opset 17 came with; every onnxruntime >= 1.13 reads it
INPUT_LAYOUT_KEY = "strided.input_layout"   # metadata: the graph's input is NHWC (read by import_onnx)
_INT64_MIN = -(2 ** 63)


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX export needs the 'onnx' package: pip install onnx") from error
    return onnx, helper, numpy_helper


# ------------------------------------------------------------------------------------ permutations
def _identity(n: int) -> tuple:
    return tuple(range(n))


def _channels_first(n: int) -> tuple:
    """``onnx = strided.transpose(P)`` for channels-last -> channels-first: ``(0, n-1, 1, ..., n-2)``."""
    return (0, n - 1) + tuple(range(1, n - 1)) if n >= 3 else _identity(n)


def _compose(p_from: tuple, p_to: tuple) -> tuple:
    """The ``Transpose`` perm that turns a tensor held as ``p_from`` into one held as ``p_to``."""
    return tuple(p_from.index(a) for a in p_to)


def _norm_axis(axis: int, n: int) -> int:
    if not -n <= axis < n:
        raise ValueError(f"axis {axis} out of range for a {n}-D tensor")
    return axis % n


class _Value:
    """One strided tensor in the ONNX graph: ``reps[perm] = onnx name``; ``lazy`` makes the first rep."""

    def __init__(self, shape, reps=None, lazy=None):
        self.shape = tuple(shape)
        self.reps = dict(reps or {})
        self.lazy = lazy
        self.pooled = None   # GlobalAvgPool: name of the (N, C, 1, 1) output, for a keepdims reshape




class ExportError(StridedError, ValueError):
    """A model that cannot be written as ONNX (an op with no ONNX counterpart, a bad argument)."""


# ------------------------------------------------------------------------------------ the exporter
class _Exporter:
    def __init__(self, model, input_tensor, dtype=np.float32):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers = [], []
        self.values = {}           # id(Tensor) -> _Value
        self.consts = {}           # (id(array), transform key) -> initializer name
        self.used_names = set()
        self.counts = {}
        self.input = input_tensor
        self.dynamic_batch = True
        # parameters and buffers by id -> state_dict name (initializer names)
        self.names = {}
        for name, p in model.named_parameters():
            self.names.setdefault(id(p), name)
            self.names.setdefault(id(p.data), name)
        for name, b in model.named_buffers():
            self.names.setdefault(id(b), name)
        self._keep_alive = []

    # ----- names
    def unique(self, base: str) -> str:
        base = base or "value"
        name, k = base, 1
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def fresh(self, op: str) -> str:
        self.counts[op] = self.counts.get(op, 0) + 1
        return self.unique(f"{op}_{self.counts[op]}")

    def node(self, op, inputs, name_hint=None, **attrs):
        out = self.fresh(op) if name_hint is None else self.unique(name_hint)
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    # ----- constants
    def const(self, array, hint="const", key=None, convert=True) -> str:
        """An initializer holding ``array`` (cast to the export dtype when floating); ``key``
        deduplicates (the same source array and transform give the same initializer)."""
        array = np.asarray(array)
        if key is not None and key in self.consts:
            return self.consts[key]
        if convert and array.dtype.kind == "f":
            array = array.astype(self.dtype)
        name = self.unique(hint)
        self.initializers.append(self.numpy_helper.from_array(np.array(array, order="C"), name))
        if key is not None:
            self.consts[key] = name
        return name

    def ints(self, values, hint="shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint, convert=False)

    def leaf_name(self, t) -> str:
        data = t.data if isinstance(t, Tensor) else t
        return self.names.get(id(t), self.names.get(id(data), "const"))

    # ----- tensors in a layout
    def get(self, t: Tensor, perm=None) -> str:
        """ONNX name of strided tensor ``t`` held as ``onnx = t.transpose(perm)`` (identity if None)."""
        n = t.ndim
        perm = _identity(n) if perm is None else tuple(perm)
        value = self.values.get(id(t))
        if value is None:
            if t is self.input or t.grad_fn is not None:
                raise ExportError("internal error: a tensor was used before it was computed")
            # a leaf: a parameter or a constant made by the model's forward
            self._keep_alive.append(t)
            data = t.data
            return self.const(np.transpose(data, perm) if n > 1 else data, self.leaf_name(t), key=(id(data), perm))
        if perm in value.reps:
            return value.reps[perm]
        if not value.reps:
            value.reps[_identity(n)] = value.lazy()
            if perm in value.reps:
                return value.reps[perm]
        src_perm, src = next(iter(value.reps.items()))
        name = self.node("Transpose", [src], perm=list(_compose(src_perm, perm)))
        value.reps[perm] = name
        return name

    def any_rep(self, t: Tensor):
        """(name, perm) of ``t`` in a layout it already has (no Transpose written)."""
        value = self.values.get(id(t))
        if value is None or (not value.reps and value.lazy is None):
            perm = _identity(t.ndim)
            return self.get(t, perm), perm
        if not value.reps:
            self.get(t)
        perm, name = next(iter(value.reps.items()))
        return name, perm

    def is_dynamic(self, t: Tensor) -> bool:
        return id(t) in self.values

    def put(self, t: Tensor, name: str, perm=None):
        value = _Value(t.shape, {tuple(perm) if perm is not None else _identity(t.ndim): name})
        self.values[id(t)] = value
        return value

    # ----- the walk
    def run(self, output: Tensor):
        order = [t for t in topological_order(output) if t.grad_fn is not None]
        missing = sorted({type(t.grad_fn).__name__ for t in order if type(t.grad_fn) not in _HANDLERS})
        if missing:
            raise ExportError(f"cannot export to ONNX: the model uses {', '.join(missing)}, which have no ONNX "
                              f"translation here (supported: {', '.join(sorted(c.__name__ for c in _HANDLERS))})")
        for t in order:
            _HANDLERS[type(t.grad_fn)](self, t.grad_fn, t)


# ------------------------------------------------------------------------------------ op handlers
_HANDLERS: dict = {}


def _handles(*classes):
    def wrap(fn):
        for cls in classes:
            _HANDLERS[cls] = fn
        return fn
    return wrap


def _param_hint(ex, t, fallback):
    """Node name from a parameter name: ``features.0.weight`` -> ``features.0``."""
    name = ex.names.get(id(t)) or ex.names.get(id(t.data))
    return name.rsplit(".", 1)[0] if name and "." in name else fallback


@_handles(C.Conv)
def _conv(ex, fn, out):
    x, w = fn.inputs[0], fn.inputs[1]
    n = x.ndim
    nsp = n - 2
    cf = _channels_first(n)
    # HWIO (k..., I, O) -> OIHW (O, I, k...): onnx_w = w.transpose(n-1, n-2, 0, ..)
    w_perm = (n - 1, n - 2) + tuple(range(nsp))
    inputs = [ex.get(x, cf), ex.get(w, w_perm)]
    if len(fn.inputs) > 2:
        inputs.append(ex.get(fn.inputs[2]))
    pads = [b for b, _ in fn.pads] + [a for _, a in fn.pads]
    name = ex.node("Conv", inputs, name_hint=_param_hint(ex, w, None), kernel_shape=list(w.shape[:nsp]),
                   strides=list(fn.stride), pads=pads, dilations=list(fn.dilation), group=int(fn.groups))
    ex.put(out, name, cf)


@_handles(L.Linear)
def _linear(ex, fn, out):
    x, w = fn.inputs[0], fn.inputs[1]
    hint = _param_hint(ex, w, None)
    if x.ndim == 2:
        inputs = [ex.get(x), ex.get(w)] + ([ex.get(fn.inputs[2])] if len(fn.inputs) > 2 else [])
        ex.put(out, ex.node("Gemm", inputs, name_hint=hint, transB=0))
        return
    y = ex.node("MatMul", [ex.get(x), ex.get(w)], name_hint=hint)
    if len(fn.inputs) > 2:
        y = ex.node("Add", [y, ex.get(fn.inputs[2])])
    ex.put(out, y)


@_handles(NORM.BatchNorm)
def _batch_norm(ex, fn, out):
    x, gamma, beta = fn.inputs
    if fn.training:
        raise ExportError("cannot export a batch norm in training mode (batch statistics); call model.eval()")
    perm = _channels_first(x.ndim)
    hint = _param_hint(ex, gamma, None)
    mean = ex.const(fn.running_mean, ex.names.get(id(fn.running_mean), "running_mean"),
                    key=(id(fn.running_mean), ()))
    var = ex.const(fn.running_var, ex.names.get(id(fn.running_var), "running_var"), key=(id(fn.running_var), ()))
    name = ex.node("BatchNormalization", [ex.get(x, perm), ex.get(gamma), ex.get(beta), mean, var],
                   name_hint=hint, epsilon=float(fn.eps))
    ex.put(out, name, perm)


def _pool(op, **extra):
    def handler(ex, fn, out):
        x = fn.inputs[0]
        cf = _channels_first(x.ndim)
        pads = [b for b, _ in fn.pads] + [a for _, a in fn.pads]
        name = ex.node(op, [ex.get(x, cf)], kernel_shape=list(fn.kernel), strides=list(fn.stride), pads=pads,
                       **extra)
        ex.put(out, name, cf)
    return handler


_HANDLERS[P.MaxPool2d] = _pool("MaxPool")
_HANDLERS[P.AvgPool2d] = _pool("AveragePool", count_include_pad=0)


@_handles(P.GlobalAvgPool)
def _global_avg_pool(ex, fn, out):
    x = fn.inputs[0]
    pooled = ex.node("GlobalAveragePool", [ex.get(x, _channels_first(x.ndim))])   # (N, C, 1, ...)
    value = _Value(out.shape, lazy=lambda: ex.node("Flatten", [pooled], axis=1))
    value.pooled = pooled
    ex.values[id(out)] = value


def _unary(op, **attrs):
    def handler(ex, fn, out):
        name, perm = ex.any_rep(fn.inputs[0])
        ex.put(out, ex.node(op, [name], **attrs), perm)
    return handler


for _cls, _op in ((A.ReLU, "Relu"), (A.Sigmoid, "Sigmoid"), (A.Tanh, "Tanh"), (T.Neg, "Neg"), (T.Exp, "Exp"),
                  (T.Log, "Log"), (T.Abs, "Abs")):
    _HANDLERS[_cls] = _unary(_op)


@_handles(A.LeakyReLU)
def _leaky_relu(ex, fn, out):
    name, perm = ex.any_rep(fn.inputs[0])
    ex.put(out, ex.node("LeakyRelu", [name], alpha=float(fn.slope)), perm)


@_handles(A.ReLU6)
def _relu6(ex, fn, out):
    name, perm = ex.any_rep(fn.inputs[0])
    low = ex.const(np.array(0.0, np.float32), "zero", key=("scalar", 0.0))
    high = ex.const(np.array(6.0, np.float32), "six", key=("scalar", 6.0))
    ex.put(out, ex.node("Clip", [name, low, high]), perm)


@_handles(A.Softmax, A.LogSoftmax)
def _softmax(ex, fn, out):
    x = fn.inputs[0]
    name, perm = ex.any_rep(x)
    axis = perm.index(_norm_axis(fn.axis, x.ndim))
    op = "Softmax" if isinstance(fn, A.Softmax) else "LogSoftmax"
    ex.put(out, ex.node(op, [name], axis=axis), perm)


@_handles(L.Dropout)
def _dropout(ex, fn, out):
    raise ExportError("cannot export dropout in training mode (a random mask); call model.eval()")


@_handles(T.Cast)
def _cast(ex, fn, out):   # every float is exported as one dtype
    name, perm = ex.any_rep(fn.inputs[0])
    ex.put(out, name, perm)


@_handles(T.Pow)
def _pow(ex, fn, out):
    name, perm = ex.any_rep(fn.inputs[0])
    if fn.exponent == 0.5:
        y = ex.node("Sqrt", [name])
    else:
        y = ex.node("Pow", [name, ex.const(np.array(fn.exponent, np.float32), "exponent")])
    ex.put(out, y, perm)


@_handles(T.Add, T.Sub, T.Mul, T.Div)
def _binary(ex, fn, out):
    names, perm = _binary_inputs(ex, fn, out)
    ex.put(out, ex.node(type(fn).__name__, names), perm)


@_handles(A.AddReLU)
def _add_relu(ex, fn, out):
    names, perm = _binary_inputs(ex, fn, out)
    ex.put(out, ex.node("Relu", [ex.node("Add", names)]), perm)


def _binary_inputs(ex, fn, out):
    """The ONNX names of a two-input elementwise op's inputs, in one layout, and that layout."""
    a, b = fn.inputs
    n = out.ndim
    dyn = [t for t in (a, b) if ex.is_dynamic(t)]
    if dyn and all(t.ndim == n for t in dyn):
        _, perm = ex.any_rep(dyn[0])
    else:
        perm = _identity(n)
    names = []
    for t in (a, b):
        if ex.is_dynamic(t):
            names.append(ex.get(t, perm) if t.ndim == n else ex.get(t))
        else:   # a constant: broadcast to n dims, then hold it in the same layout
            data = np.asarray(t.data)
            if data.ndim == 0:
                names.append(ex.const(data, ex.leaf_name(t), key=(id(t.data), "scalar")))
            else:
                full = data.reshape((1,) * (n - data.ndim) + data.shape)
                names.append(ex.const(np.transpose(full, perm), ex.leaf_name(t), key=(id(t.data), perm, n)))
    return names, perm


@_handles(T.MatMul)
def _matmul(ex, fn, out):
    a, b = fn.inputs
    ex.put(out, ex.node("MatMul", [ex.get(a), ex.get(b)], name_hint=_param_hint(ex, b, None)))


def _reduce_perm(perm: tuple, axes_s: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return perm
    kept = [a for a in sorted(perm) if a not in axes_s]
    return tuple(kept.index(perm[i]) for i in range(len(perm)) if perm[i] not in axes_s)


def _reduce(op):
    def handler(ex, fn, out):
        x = fn.inputs[0]
        name, perm = ex.any_rep(x)
        axes_s = tuple(range(x.ndim)) if fn.axis is None else tuple(sorted(_norm_axis(a, x.ndim)
                                                                           for a in T._axes(fn.axis)))
        axes_o = sorted(perm.index(a) for a in axes_s)
        keep = int(bool(fn.keepdims))
        if op == "ReduceSum":
            y = ex.node(op, [name, ex.ints(axes_o, "axes")], keepdims=keep)
        else:
            y = ex.node(op, [name], axes=axes_o, keepdims=keep)
        ex.put(out, y, _reduce_perm(perm, axes_s, bool(fn.keepdims)))
    return handler


_HANDLERS[T.Sum] = _reduce("ReduceSum")
_HANDLERS[T.Max] = _reduce("ReduceMax")


@_handles(T.Reshape)
def _reshape(ex, fn, out):
    x = fn.inputs[0]
    value = ex.values.get(id(x))
    # GlobalAvgPool (N, C) reshaped to (N, 1, 1, C): ONNX's pooled (N, C, 1, 1) is that tensor, channels-first
    if value is not None and value.pooled is not None and out.shape == (x.shape[0], 1, 1, x.shape[1]):
        ex.put(out, value.pooled, _channels_first(4))
        return
    if x.ndim >= 2 and out.ndim == 2 and out.shape[0] == x.shape[0]:   # (N, ...) -> (N, -1), strided's order
        ex.put(out, ex.node("Flatten", [ex.get(x)], axis=1))
        return
    shape = list(out.shape)
    if x.ndim and out.ndim and out.shape[0] == x.shape[0]:
        shape[0] = 0     # keep the (symbolic) batch axis
    else:
        ex.dynamic_batch = False
    ex.put(out, ex.node("Reshape", [ex.get(x), ex.ints(shape)]))


@_handles(T.Transpose)
def _transpose(ex, fn, out):
    x = fn.inputs[0]
    n = x.ndim
    axes = tuple(reversed(range(n))) if fn.axes is None else tuple(_norm_axis(a, n) for a in fn.axes)
    inverse = tuple(int(i) for i in np.argsort(axes))
    value = ex.values[id(x)]
    if not value.reps:
        ex.get(x)
    new = _Value(out.shape, {tuple(inverse[p] for p in perm): name for perm, name in value.reps.items()})
    ex.values[id(out)] = new


@_handles(T.Concat)
def _concat(ex, fn, out):
    xs = fn.inputs
    n = out.ndim
    first = next((t for t in xs if ex.is_dynamic(t)), xs[0])
    _, perm = ex.any_rep(first)
    names = [ex.get(t, perm) for t in xs]
    ex.put(out, ex.node("Concat", names, axis=perm.index(_norm_axis(fn.axis, n))), perm)


@_handles(T.Stack)
def _stack(ex, fn, out):
    axis = _norm_axis(fn.axis, out.ndim)
    axes = ex.ints([axis], "axes")
    parts = [ex.node("Unsqueeze", [ex.get(t), axes]) for t in fn.inputs]
    ex.put(out, ex.node("Concat", parts, axis=axis))


@_handles(T.Pad)
def _pad(ex, fn, out):
    x = fn.inputs[0]
    name, perm = ex.any_rep(x)
    begins = [fn.pad_width[perm[i]][0] for i in range(x.ndim)]
    ends = [fn.pad_width[perm[i]][1] for i in range(x.ndim)]
    value = ex.const(np.array(fn.value, np.float32), "pad_value", key=("scalar", float(fn.value)))
    ex.put(out, ex.node("Pad", [name, ex.ints(begins + ends, "pads"), value], mode="constant"), perm)


@_handles(T.GetItem)
def _getitem(ex, fn, out):
    x = fn.inputs[0]
    n = x.ndim
    index = fn.index if isinstance(fn.index, tuple) else (fn.index,)
    if any(i is Ellipsis for i in index):
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (n - len(index) + 1) + index[k + 1:]
    bad = [i for i in index if not isinstance(i, (slice, numbers.Integral))]
    if bad or len(index) > n:
        raise ExportError(f"cannot export indexing with {fn.index!r}: only slices and integers are supported")
    squeeze = [a for a, i in enumerate(index) if isinstance(i, numbers.Integral)]
    name, perm = ex.any_rep(x) if not squeeze else (ex.get(x), _identity(n))
    starts, ends, axes, steps = [], [], [], []
    for a, i in enumerate(index):
        size = x.shape[a]
        if isinstance(i, numbers.Integral):
            i = int(i) % size
            i = slice(i, i + 1, 1)
        start, stop, step = i.indices(size)
        if (start, stop, step) == (0, size, 1):
            continue
        if step < 0 and stop < 0:
            stop = _INT64_MIN
        starts.append(start)
        ends.append(stop)
        axes.append(perm.index(a))
        steps.append(step)
    y = name
    if axes:
        y = ex.node("Slice", [name, ex.ints(starts, "starts"), ex.ints(ends, "ends"), ex.ints(axes, "axes"),
                              ex.ints(steps, "steps")])
    if squeeze:
        y = ex.node("Squeeze", [y, ex.ints(squeeze, "axes")])
    ex.put(out, y, perm if not squeeze else None)      # a slice that keeps everything is the same tensor


@_handles(T.Where)
def _where(ex, fn, out):
    a, b = fn.inputs
    cond = ex.const(np.broadcast_to(fn.condition, out.shape).copy(), "condition", convert=False)
    ex.put(out, ex.node("Where", [cond, ex.get(a), ex.get(b)]))


SUPPORTED_FUNCTIONS = tuple(sorted({cls.__name__ for cls in _HANDLERS}))


# ------------------------------------------------------------------------------------ public
def _check_shape(input_shape) -> tuple:
    message = (f"input_shape must be a tuple of positive ints with the batch first, e.g. (1, 32, 32, 3) "
               f"(NHWC); received input_shape={input_shape!r}")
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise ValueError(message)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
        raise ValueError(message)
    return tuple(int(s) for s in shape)


def _model_dtype(model):
    for p in model.parameters():
        return p.dtype
    return np.dtype(np.float32)


def build_onnx(model, input_shape, *, opset: int = OPSET, graph_name: str | None = None):
    """The ``onnx.ModelProto`` of ``model`` traced on zeros of ``input_shape`` (NHWC, batch first).

    The graph's input ``input`` is NHWC like the model's; ``output`` is the model's output.
    """
    onnx, helper, _ = _onnx()
    shape = _check_shape(input_shape)
    mode = model.training
    model.eval()
    try:
        x = Tensor(np.zeros(shape, dtype=_model_dtype(model)), requires_grad=True)
        with enable_grad():
            y = model(x)
    finally:
        model.train(mode)
    if isinstance(y, (tuple, list)) or not isinstance(y, Tensor):
        raise ExportError(f"export_onnx needs a model that returns one tensor, received {type(y).__name__}")
    if y.grad_fn is None:
        raise ExportError("the model's output does not depend on its input through strided ops "
                          "(was it computed with NumPy outside the engine, or under no_grad?)")
    ex = _Exporter(model, x)
    ex.put(x, "input")
    ex.used_names.update({"input", "output"})
    ex.run(y)
    result = ex.get(y)
    if result not in {o for node in ex.nodes for o in node.output}:   # the input or a constant
        result = ex.node("Identity", [result])
    for node in ex.nodes:    # the final tensor is called "output"
        node.output[:] = ["output" if o == result else o for o in node.output]
        node.input[:] = ["output" if i == result else i for i in node.input]
    batch = "N" if ex.dynamic_batch else shape[0]
    inputs = [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [batch] + list(shape[1:]))]
    out_shape = list(y.shape)
    if out_shape and ex.dynamic_batch and out_shape[0] == shape[0]:
        out_shape[0] = "N"
    outputs = [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, out_shape)]
    graph = helper.make_graph(ex.nodes, graph_name or type(model).__name__, inputs, outputs, ex.initializers)
    onnx_model = helper.make_model(graph, producer_name="strided", opset_imports=[helper.make_opsetid("", opset)])
    onnx_model.ir_version = IR_VERSION
    onnx_model.doc_string = f"Exported by strided from {type(model).__name__}; input NHWC {tuple(shape)}."
    helper.set_model_props(onnx_model, {INPUT_LAYOUT_KEY: "NHWC"})
    onnx.checker.check_model(onnx_model)
    return onnx_model


def export_onnx(model, path, input_shape, *, opset: int = OPSET) -> str:
    """Write ``model`` as an ONNX file at ``path``, traced on zeros of ``input_shape`` (NHWC).

    The ONNX graph takes NHWC input (``input``, batch axis symbolic) and gives the
    model's output (``output``); weights are float32, convolutions in ONNX's NCHW/OIHW
    (the layout conversions are inside the graph).  The file is written atomically.
    Returns the path.

    >>> export_onnx(models.create("lenet5"), "lenet5.onnx", (1, 32, 32, 1))
    """
    from pathlib import Path

    from ..fileio import atomic_write

    proto = build_onnx(model, input_shape, opset=opset)
    path = os.fspath(path)
    data = proto.SerializeToString()
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))
    return path
