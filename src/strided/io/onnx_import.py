"""Import an ONNX model as a runnable strided module (``import_onnx``).

The result, an :class:`OnnxModel`, is an ``nn.Module`` like any other: it takes
**channels-last** input (NHWC, as every strided model), its convolutions,
dense and batch-norm layers are real ``nn.Conv2d`` / ``nn.Linear`` /
``nn.BatchNorm2d`` sub-modules (``state_dict``, ``summary``, freezing and
fine-tuning work), and its ``forward`` runs the ONNX graph node by node with
strided's differentiable ops.

**Layouts.**  ONNX graphs are channels-first (NCHW, OIHW).  Weights are converted
once (OIHW -> HWIO, Gemm's ``(out, in)`` -> ``(in, out)``).  Activations stay
channels-last inside: each value is a strided tensor ``s`` with a permutation
``P`` such that the ONNX tensor is ``s.transpose(P)``.  ``Conv``, pooling and
``BatchNormalization`` want ``P = (0, 3, 1, 2)`` (``s`` is NHWC), elementwise ops
keep whatever ``P`` they get, an ONNX ``Transpose`` only changes ``P`` (no data
moves), attribute axes are mapped through ``P`` (``Concat`` on axis 1 joins the
channels, strided's last axis), and ``Flatten`` / ``Reshape`` first bring the
tensor back to ONNX's own order, so the flatten order is ONNX's (NCHW).
A graph written by :func:`strided.io.export_onnx` (metadata
``strided.input_layout = NHWC``) already takes NHWC input and is read as such:
its input and flatten transposes cancel out and nothing is moved.

Graph inputs of rank >= 3 are taken as channels-first in ONNX (``N, C, ...``)
unless the file says NHWC or ``input_layout="NHWC"`` is given; the module then
takes them channels-last and gives outputs of rank >= 3 back channels-last.

Shape computations (``Shape -> Gather -> Concat -> Reshape``, as PyTorch writes
``x.view(x.size(0), -1)``) run on NumPy integers; nodes that depend only on
constants are computed once, at import.

Bad files (missing, empty, truncated, corrupt, invalid graph) raise
:class:`~strided.io.ModelFileError` naming the file; operators outside
:data:`SUPPORTED_OPS` raise :class:`UnsupportedOnnxError` listing every one.

>>> import strided.io as sio
>>> model = sio.import_onnx("resnet18.onnx")       # NCHW graph
>>> logits = model(images_nhwc)
"""
from __future__ import annotations

import numbers
import os
import re
from collections import namedtuple

import numpy as np

from .. import functional as F
from .. import nn
from ..functional.pool import pool_output_size
from ..functional.utils import same_padding
from ..nn.module import Parameter
from ..tensor import Tensor, as_tensor
from ..tensor import concat as _concat
from .errors import ModelFileError
from .onnx_export import INPUT_LAYOUT_KEY

__all__ = ["import_onnx", "OnnxModel", "UnsupportedOnnxError", "SUPPORTED_OPS"]


class UnsupportedOnnxError(ModelFileError, NotImplementedError):
    """The ONNX graph uses operators (or attributes) that strided cannot run."""


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX import needs the 'onnx' package: pip install onnx") from error
    return onnx, numpy_helper


# ------------------------------------------------------------------------------------ layouts
_Dyn = namedtuple("_Dyn", "t perm")       # the ONNX tensor is t.transpose(perm)


def _identity(n):
    return tuple(range(n))


def _channels_first(n):
    return (0, n - 1) + tuple(range(1, n - 1)) if n >= 3 else _identity(n)


def _to(d: _Dyn, perm) -> Tensor:
    """The tensor ``s`` with ``onnx = s.transpose(perm)``."""
    perm = tuple(perm)
    axes = tuple(d.perm[i] for i in np.argsort(perm))
    return d.t if axes == _identity(len(axes)) else d.t.transpose(axes)


def _plain(d: _Dyn) -> Tensor:
    """The tensor in ONNX's own axis order."""
    return _to(d, _identity(d.t.ndim))


def _const_like(c: np.ndarray, d: _Dyn) -> Tensor:
    """Static ``c`` (ONNX order, broadcasting against ``d``) as a strided constant in ``d``'s layout."""
    n = d.t.ndim
    c = np.asarray(c, dtype=d.t.dtype)
    full = c.reshape((1,) * (n - c.ndim) + c.shape)
    return Tensor(np.array(np.transpose(full, np.argsort(d.perm)), order="C"))


def _is_static(v):
    return isinstance(v, np.ndarray)


def _axis(axis, n):
    axis = int(axis)
    if not -n <= axis < n:
        raise ValueError(f"axis {axis} is out of range for a {n}-D tensor")
    return axis % n


# ------------------------------------------------------------------------------------ the module
_Node = namedtuple("_Node", "op name inputs outputs attrs layer")


class OnnxModel(nn.Module):
    """An ONNX graph run with strided ops; channels-last inputs and outputs (see the module doc).

    Attributes: ``source`` (the file), ``input_names``, ``output_names``, ``input_shapes``
    (ONNX's, ``None`` for symbolic dims), ``onnx_input_layout`` (``"NCHW"`` or ``"NHWC"``).
    """

    def __init__(self, proto, arrays: dict, source: str, input_layout: str):
        super().__init__()
        self.source = source
        graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.onnx_input_layout = input_layout
        self._static = dict(arrays)
        initializer_names = set(arrays)
        self.input_names, self.input_shapes, self.input_types = [], [], []
        for value in graph.input:
            if value.name in initializer_names:
                continue
            tensor_type = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
            self.input_names.append(value.name)
            self.input_shapes.append(tuple(dims))
            self.input_types.append(tensor_type.elem_type)
        self.output_names = [v.name for v in graph.output]
        self._nodes = []
        used = set()
        for i, node in enumerate(graph.node):
            attrs = {a.name: _attribute(a) for a in node.attribute}
            rec = _Node(node.op_type, node.name or f"{node.op_type}_{i}", list(node.input), list(node.output), attrs,
                        None)
            try:
                _validate(rec)
                if all(not name or name in self._static for name in rec.inputs) and node.op_type not in _LAYER_OPS:
                    # depends on constants only: compute once, now
                    outs = _run(self, rec, [self._static[n] if n else None for n in rec.inputs])
                    if all(_is_static(o) or o is None for o in outs):
                        for name, value in zip(rec.outputs, outs):
                            if name and value is not None:
                                self._static[name] = value
                        continue
                if rec.op in _LAYER_OPS:
                    layer = _LAYER_OPS[rec.op](self, rec)
                    if layer is not None:
                        name = self._layer_name(rec, layer, used)
                        setattr(self, name, layer)
                        rec = rec._replace(layer=name)
            except UnsupportedOnnxError:
                raise
            except (ValueError, TypeError, KeyError, IndexError) as error:
                raise ModelFileError(f"{source}: node {rec.name!r} ({rec.op}): {error}") from None
            self._nodes.append(rec)
        self.eval()

    # ----- naming layers after their weights: "features.0.weight" -> "features.0"
    def _layer_name(self, rec, layer, used):
        weight = rec.inputs[1] if len(rec.inputs) > 1 else ""
        base = ""
        for suffix in (".weight", ".gamma", ".scale", ".kernel"):
            if weight.endswith(suffix):
                base = weight[: -len(suffix)]
                break
        if not base or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*", base):
            base = re.sub(r"[^A-Za-z0-9_]+", "_", rec.name).strip("_") or rec.op.lower()
            if base[0].isdigit():
                base = f"{rec.op.lower()}_{base}"
        name, k = base, 1
        while name in used or hasattr(self, name):
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    # ----- running
    def forward(self, *xs):
        if len(xs) != len(self.input_names):
            raise ValueError(f"{self.source} takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}), "
                             f"received {len(xs)}")
        env = dict(self._static)
        for name, dims, x in zip(self.input_names, self.input_shapes, xs):
            env[name] = self._input(name, dims, x)
        for rec in self._nodes:
            args = [env[n] if n else None for n in rec.inputs]
            try:
                outs = _run(self, rec, args)
            except UnsupportedOnnxError:
                raise
            except (ValueError, TypeError, IndexError, KeyError) as error:
                raise ValueError(f"{self.source}: node {rec.name!r} ({rec.op}) failed: {error}") from error
            for name, value in zip(rec.outputs, outs):
                if name:
                    env[name] = value
        results = [self._output(env[name]) for name in self.output_names]
        return results[0] if len(results) == 1 else tuple(results)

    def _perm_in(self, n):
        return _channels_first(n) if self.onnx_input_layout == "NCHW" else _identity(n)

    def _input(self, name, dims, x) -> _Dyn:
        x = as_tensor(x)
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        n = len(dims)
        perm = self._perm_in(n)
        expected = [None] * n
        for i, d in enumerate(dims):
            expected[perm[i]] = d
        if x.ndim != n or any(e is not None and e != s for e, s in zip(expected, x.shape)):
            shown = ", ".join("N" if e is None and i == 0 else ("?" if e is None else str(e))
                              for i, e in enumerate(expected))
            raise ValueError(f"{self.source} expects input {name!r} of shape ({shown})"
                             f"{' (channels last)' if n >= 3 else ''}, received shape {tuple(x.shape)}")
        return _Dyn(x, perm)

    def _output(self, value):
        if value is None:
            return None
        if _is_static(value):
            return Tensor(np.asarray(value, dtype=np.float32)) if value.dtype.kind == "f" else value
        return _to(value, self._perm_in(value.t.ndim))

    def extra_repr(self):
        counts = {}
        for rec in self._nodes:
            counts[rec.op] = counts.get(rec.op, 0) + 1
        ops = ", ".join(f"{op} x{k}" if k > 1 else op for op, k in counts.items())
        return f"source={os.path.basename(self.source)!r}, {len(self._nodes)} nodes: {ops}"

    def _layer(self, rec):
        return getattr(self, rec.layer)


def _validate(rec):
    """Attribute checks that onnx.checker leaves to run time."""
    perm = rec.attrs.get("perm") if rec.op == "Transpose" else None
    if perm is not None and sorted(perm) != list(range(len(perm))):
        raise ValueError(f"perm {list(perm)} is not a permutation")
    kernel = rec.attrs.get("kernel_shape")
    if kernel is not None and (not len(kernel) or min(kernel) < 1):
        raise ValueError(f"kernel_shape {list(kernel)} must be positive")
    for name in ("strides", "dilations"):
        if min(rec.attrs.get(name, [1]) or [1]) < 1:
            raise ValueError(f"{name} {list(rec.attrs[name])} must be positive")
    if min(rec.attrs.get("pads", [0]) or [0]) < 0 and rec.op != "Pad":
        raise ValueError(f"pads {list(rec.attrs['pads'])} must be >= 0")
    if rec.op in ("Conv", "Gemm", "MatMul", "BatchNormalization") and len(rec.inputs) < 2:
        raise ValueError(f"{rec.op} needs at least 2 inputs, received {len(rec.inputs)}")


def _run(model, rec, args):
    """One node; constant results are always ndarrays (NumPy turns 0-d results into scalars)."""
    return [np.asarray(o) if isinstance(o, (np.generic, numbers.Number)) else o for o in _OPS[rec.op](model, rec, args)]


def _attribute(attr):
    onnx, numpy_helper = _onnx()
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value


# ------------------------------------------------------------------------------------ layers
def _static_input(model, rec, i, what):
    name = rec.inputs[i] if len(rec.inputs) > i else ""
    if not name:
        return None
    if name not in model._static:
        raise UnsupportedOnnxError(f"{model.source}: node {rec.name!r} ({rec.op}) has a computed {what} "
                                   f"({name!r}); only constant {what}s (initializers) are supported")
    return model._static[name]


def _f32(a):
    return np.array(a, dtype=np.float32, order="C")


def _conv_layer(model, rec):
    w = _static_input(model, rec, 1, "weight")
    b = _static_input(model, rec, 2, "bias")
    nsp = w.ndim - 2
    if nsp not in (1, 2, 3):
        raise UnsupportedOnnxError(f"{model.source}: node {rec.name!r}: Conv with {nsp} spatial axes")
    group = int(rec.attrs.get("group", 1))
    out_channels, Cg = w.shape[0], w.shape[1]
    kernel = tuple(int(k) for k in rec.attrs.get("kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise ValueError(f"kernel_shape {kernel} does not match the weight shape {w.shape}")
    stride = tuple(rec.attrs.get("strides", (1,) * nsp))
    dilation = tuple(rec.attrs.get("dilations", (1,) * nsp))
    pads = list(rec.attrs.get("pads", (0,) * (2 * nsp)))
    auto = rec.attrs.get("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        padding = "same"
    elif auto == "VALID":
        padding = 0
    else:   # NOTSET (explicit) or SAME_LOWER (computed per call)
        padding = tuple((int(pads[i]), int(pads[i + nsp])) for i in range(nsp))
    stride, dilation, padding = _compact(stride), _compact(dilation), _compact_padding(padding)
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nsp]
    layer = cls(None, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, groups=group,
                bias=b is not None)
    layer.in_channels = Cg * group
    layer.weight = Parameter(_f32(np.transpose(w, tuple(range(2, 2 + nsp)) + (1, 0))))   # OI.. -> ..IO
    if b is not None:
        layer.bias = Parameter(_f32(b.reshape(out_channels)))
    return layer


def _compact(values):
    """``(2, 2)`` -> ``2``: the module's repr then reads like a hand-written one."""
    values = tuple(int(v) for v in values)
    return values[0] if len(set(values)) == 1 else values


def _compact_padding(padding):
    if isinstance(padding, (str, int)):
        return padding
    if all(b == a for b, a in padding):
        return _compact([b for b, _ in padding])
    return padding


def _gemm_layer(model, rec):
    if len(rec.inputs) < 2 or rec.inputs[1] not in model._static:
        return None   # computed B: a matmul at run time
    B = model._static[rec.inputs[1]]
    if B.ndim != 2:
        raise ValueError(f"Gemm needs a 2-D B, received shape {B.shape}")
    W = B.T if rec.attrs.get("transB", 0) else B
    W = W * float(rec.attrs.get("alpha", 1.0))
    out = W.shape[1]
    bias = None
    if len(rec.inputs) > 2 and rec.inputs[2] in model._static:
        c = model._static[rec.inputs[2]] * float(rec.attrs.get("beta", 1.0))
        if c.size == out and (c.ndim <= 1 or c.shape == (1, out)):
            bias = c.reshape(out)
        elif c.size == 1:
            bias = np.full(out, float(c.reshape(())))
    layer = nn.Linear(None, out, bias=bias is not None)
    layer.in_features = W.shape[0]
    layer.weight = Parameter(_f32(W))
    if bias is not None:
        layer.bias = Parameter(_f32(bias))
    object.__setattr__(layer, "onnx_bias_folded", bias is not None)
    return layer


def _matmul_layer(model, rec):
    if len(rec.inputs) < 2 or rec.inputs[1] not in model._static or model._static[rec.inputs[1]].ndim != 2:
        return None
    W = model._static[rec.inputs[1]]
    layer = nn.Linear(None, W.shape[1], bias=False)
    layer.in_features = W.shape[0]
    layer.weight = Parameter(_f32(W))
    return layer


def _bn_layer(model, rec):
    scale, bias, mean, var = (_static_input(model, rec, i, what)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    if any(v is None for v in (scale, bias, mean, var)):
        raise ValueError("BatchNormalization needs scale, B, mean and var")
    C = scale.size
    momentum = float(rec.attrs.get("momentum", 0.9))
    layer = nn.BatchNorm2d(C, momentum=min(max(1.0 - momentum, 0.0), 1.0), eps=float(rec.attrs.get("epsilon", 1e-5)))
    layer.gamma.data[...] = _f32(scale).reshape(C)
    layer.beta.data[...] = _f32(bias).reshape(C)
    layer.running_mean[...] = _f32(mean).reshape(C)
    layer.running_var[...] = _f32(var).reshape(C)
    return layer


_LAYER_OPS = {"Conv": _conv_layer, "Gemm": _gemm_layer, "MatMul": _matmul_layer, "BatchNormalization": _bn_layer}


# ------------------------------------------------------------------------------------ op handlers
_OPS: dict = {}


def _op(*names):
    def wrap(fn):
        for name in names:
            _OPS[name] = fn
        return fn
    return wrap


def _need_dyn(rec, v, what="input"):
    if not isinstance(v, _Dyn):
        raise ValueError(f"{what} must be a computed tensor")
    return v


@_op("Identity")
def _identity_op(m, rec, args):
    return [args[0]]


@_op("Dropout")
def _dropout(m, rec, args):
    x = args[0]
    ratio = rec.attrs.get("ratio", 0.5)
    if len(args) > 1 and args[1] is not None:
        ratio = float(np.asarray(args[1]))
    if isinstance(x, _Dyn) and m.training and ratio > 0:
        x = _Dyn(F.dropout(x.t, float(ratio), True), x.perm)
    return [x, None]


@_op("Constant")
def _constant(m, rec, args):
    a = rec.attrs
    if "value" in a:
        value = np.asarray(a["value"])
    elif "value_float" in a:
        value = np.array(a["value_float"], np.float32)
    elif "value_floats" in a:
        value = np.array(a["value_floats"], np.float32)
    elif "value_int" in a:
        value = np.array(a["value_int"], np.int64)
    elif "value_ints" in a:
        value = np.array(a["value_ints"], np.int64)
    else:
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: Constant with {sorted(a)} is not supported")
    if value.dtype.kind == "f":
        value = value.astype(np.float32)
    return [value]


@_op("Conv")
def _conv(m, rec, args):
    x = _need_dyn(rec, args[0])
    n = x.t.ndim
    layer = m._layer(rec)
    t = _to(x, _channels_first(n))
    if rec.attrs.get("auto_pad") == "SAME_LOWER":
        stride, dilation = _tuple(layer.stride, n - 2), _tuple(layer.dilation, n - 2)
        pads = tuple(tuple(reversed(same_padding(s, k, st, d)))
                     for s, k, st, d in zip(t.shape[1:-1], layer.kernel_size, stride, dilation))
        y = F.conv(t, layer.weight, layer.bias, layer.stride, pads, layer.dilation, layer.groups,
                   spatial_dims=n - 2)
    else:
        y = layer(t)
    return [_Dyn(y, _channels_first(n))]


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


@_op("Gemm")
def _gemm(m, rec, args):
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    alpha, beta = float(rec.attrs.get("alpha", 1.0)), float(rec.attrs.get("beta", 1.0))
    if _is_static(a) and _is_static(b):
        A = a.T if rec.attrs.get("transA", 0) else a
        B = b.T if rec.attrs.get("transB", 0) else b
        y = alpha * (A @ B)
        return [y + beta * c if c is not None else y]
    A = _plain(a) if isinstance(a, _Dyn) else Tensor(_f32(a))
    if rec.attrs.get("transA", 0):
        A = A.T
    if rec.layer is not None:
        layer = m._layer(rec)
        y = layer(A)
        if c is not None and not layer.onnx_bias_folded:
            y = y + (Tensor(_f32(beta * c)) if _is_static(c) else _plain(c) * beta)
        return [_Dyn(y, (0, 1))]
    B = _plain(b) if isinstance(b, _Dyn) else Tensor(_f32(b))
    if rec.attrs.get("transB", 0):
        B = B.T
    y = (A @ B) * alpha if alpha != 1.0 else A @ B
    if c is not None:
        y = y + (Tensor(_f32(beta * c)) if _is_static(c) else _plain(c) * beta)
    return [_Dyn(y, (0, 1))]


@_op("MatMul")
def _matmul(m, rec, args):
    a, b = args
    if _is_static(a) and _is_static(b):
        return [np.matmul(a, b)]
    if rec.layer is not None and isinstance(a, _Dyn):
        y = m._layer(rec)(_plain(a))
        return [_Dyn(y, _identity(y.ndim))]
    A = _plain(a) if isinstance(a, _Dyn) else Tensor(_f32(a))
    B = _plain(b) if isinstance(b, _Dyn) else Tensor(_f32(b))
    y = A @ B
    return [_Dyn(y, _identity(y.ndim))]


@_op("BatchNormalization")
def _batch_norm(m, rec, args):
    x = _need_dyn(rec, args[0])
    perm = _channels_first(x.t.ndim)
    y = m._layer(rec)(_to(x, perm))
    return [_Dyn(y, perm), None, None]


def _pool_geometry(m, rec, t):
    """kernel, stride, ((before, after), ...) and the ceil-mode extra for an NHWC tensor ``t``."""
    if t.ndim != 4:
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: {rec.op} on a {t.ndim}-D tensor "
                                   f"(only 2-D pooling is supported)")
    a = rec.attrs
    kernel = tuple(int(k) for k in a["kernel_shape"])
    stride = tuple(int(s) for s in a.get("strides", (1, 1)))
    if any(d != 1 for d in a.get("dilations", (1, 1))):
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: {rec.op} with dilations "
                                   f"{list(a['dilations'])} is not supported")
    spatial = t.shape[1:3]
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [same_padding(s, k, st) for s, k, st in zip(spatial, kernel, stride)]
        pads = [tuple(reversed(p)) for p in pads] if auto == "SAME_LOWER" else pads
    elif auto == "VALID":
        pads = [(0, 0), (0, 0)]
    else:
        p = [int(v) for v in a.get("pads", (0, 0, 0, 0))]
        pads = [(p[0], p[2]), (p[1], p[3])]
    extra = [0, 0]
    if a.get("ceil_mode", 0):
        for i, (s, k, st, (pb, pa)) in enumerate(zip(spatial, kernel, stride, pads)):
            out = pool_output_size(s, k, st, pb, pa, ceil_mode=True)
            extra[i] = max(0, (out - 1) * st + k - (s + pb + pa))
    return kernel, stride, pads, extra


@_op("MaxPool")
def _max_pool(m, rec, args):
    x = _need_dyn(rec, args[0])
    if len(rec.outputs) > 1 and rec.outputs[1]:
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: MaxPool's Indices output is not supported")
    t = _to(x, _channels_first(4)) if x.t.ndim == 4 else x.t
    kernel, stride, pads, extra = _pool_geometry(m, rec, t)
    pads = [(pb, pa + e) for (pb, pa), e in zip(pads, extra)]
    if any(max(p) > k // 2 for p, k in zip(pads, kernel)):   # pad with -inf ourselves: it never wins
        t = F.pad(t, ((0, 0),) + tuple(pads) + ((0, 0),), value=-np.inf)
        pads = [(0, 0), (0, 0)]
    return [_Dyn(F.max_pool2d(t, kernel, stride, tuple(pads)), _channels_first(4))]


@_op("AveragePool")
def _avg_pool(m, rec, args):
    x = _need_dyn(rec, args[0])
    t = _to(x, _channels_first(4)) if x.t.ndim == 4 else x.t
    kernel, stride, pads, extra = _pool_geometry(m, rec, t)
    if rec.attrs.get("count_include_pad", 0) and any(b or a for b, a in pads):
        if any(extra):
            raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: AveragePool with count_include_pad=1 "
                                       f"and ceil_mode=1 is not supported")
        t = F.pad(t, ((0, 0),) + tuple(pads) + ((0, 0),))     # zeros that count
        pads = [(0, 0), (0, 0)]
    pads = [(pb, pa + e) for (pb, pa), e in zip(pads, extra)]
    if any(max(p) > k // 2 for p, k in zip(pads, kernel)):
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: AveragePool padding {pads} larger than "
                                   f"half the kernel {kernel} is not supported")
    return [_Dyn(F.avg_pool2d(t, kernel, stride, tuple(pads)), _channels_first(4))]


@_op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(m, rec, args):
    x = _need_dyn(rec, args[0])
    n = x.t.ndim
    t = _to(x, _channels_first(n))
    spatial = tuple(range(1, n - 1))
    if rec.op == "GlobalMaxPool":
        y = t.max(axis=spatial, keepdims=True)
    elif n == 4:
        y = F.global_avg_pool2d(t, keepdims=True)
    else:
        y = t.mean(axis=spatial, keepdims=True)
    return [_Dyn(y, _channels_first(n))]


def _elementwise(strided_fn, numpy_fn):
    def handler(m, rec, args):
        x = args[0]
        if _is_static(x):
            return [numpy_fn(x, rec)]
        return [_Dyn(strided_fn(x.t, rec), x.perm)]
    return handler


def _sigmoid_np(x):
    return 1.0 / (1.0 + np.exp(-x))


def _clip_bounds(rec, args):
    low = rec.attrs.get("min")
    high = rec.attrs.get("max")
    if len(args) > 1 and args[1] is not None:
        low = float(np.asarray(args[1]))
    if len(args) > 2 and args[2] is not None:
        high = float(np.asarray(args[2]))
    return low, high


def _clip(t, low, high):
    if low == 0 and high == 6:
        return F.relu6(t)
    if low == 0 and high is None:
        return F.relu(t)
    if low is None and high is None:
        return t
    return F.clip(t, low, high)


@_op("Clip")
def _clip_op(m, rec, args):
    x = args[0]
    low, high = _clip_bounds(rec, args)
    if _is_static(x):
        return [np.clip(x, low, high)]
    return [_Dyn(_clip(x.t, low, high), x.perm)]


def _hard_sigmoid(t, alpha, beta):
    return F.clip(t * alpha + beta, 0.0, 1.0)


_OPS["Relu"] = _elementwise(lambda t, r: F.relu(t), lambda x, r: np.maximum(x, 0))
_OPS["LeakyRelu"] = _elementwise(lambda t, r: F.leaky_relu(t, float(r.attrs.get("alpha", 0.01))),
                                 lambda x, r: np.where(x > 0, x, x * float(r.attrs.get("alpha", 0.01))))
_OPS["Sigmoid"] = _elementwise(lambda t, r: F.sigmoid(t), lambda x, r: _sigmoid_np(x))
_OPS["Tanh"] = _elementwise(lambda t, r: F.tanh(t), lambda x, r: np.tanh(x))
_OPS["Exp"] = _elementwise(lambda t, r: t.exp(), lambda x, r: np.exp(x))
_OPS["Log"] = _elementwise(lambda t, r: t.log(), lambda x, r: np.log(x))
_OPS["Sqrt"] = _elementwise(lambda t, r: t.sqrt(), lambda x, r: np.sqrt(x))
_OPS["Neg"] = _elementwise(lambda t, r: -t, lambda x, r: -x)
_OPS["Abs"] = _elementwise(lambda t, r: t.abs(), lambda x, r: np.abs(x))
_OPS["HardSigmoid"] = _elementwise(
    lambda t, r: _hard_sigmoid(t, float(r.attrs.get("alpha", 0.2)), float(r.attrs.get("beta", 0.5))),
    lambda x, r: np.clip(x * float(r.attrs.get("alpha", 0.2)) + float(r.attrs.get("beta", 0.5)), 0, 1))
_OPS["HardSwish"] = _elementwise(lambda t, r: t * _hard_sigmoid(t, 1 / 6, 0.5),
                                 lambda x, r: x * np.clip(x / 6 + 0.5, 0, 1))


@_op("Softmax", "LogSoftmax")
def _softmax(m, rec, args):
    x = args[0]
    fn = F.softmax if rec.op == "Softmax" else F.log_softmax
    n = x.ndim if _is_static(x) else x.t.ndim
    axis = _axis(rec.attrs.get("axis", -1 if m.opset >= 13 else 1), n)
    if _is_static(x):
        return [fn(Tensor(_f32(x)), axis).data if axis == n - 1 or m.opset >= 13 else
                fn(Tensor(_f32(x.reshape(int(np.prod(x.shape[:axis])), -1))), -1).data.reshape(x.shape)]
    if m.opset >= 13 or axis == n - 1:
        return [_Dyn(fn(x.t, x.perm[axis]), x.perm)]
    t = _plain(x)   # opset < 13: softmax over the flattened axes [axis, n)
    y = fn(t.reshape(int(np.prod(t.shape[:axis])), -1), -1).reshape(t.shape)
    return [_Dyn(y, _identity(n))]


_NUMPY_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power}


def _numpy_div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return (np.trunc(a / b)).astype(np.result_type(a, b))
    return a / b


@_op("Add", "Sub", "Mul", "Div", "Pow")
def _binary(m, rec, args):
    a, b = args
    op = rec.op
    if _is_static(a) and _is_static(b):
        return [(_numpy_div if op == "Div" else _NUMPY_BINARY[op])(a, b)]
    if op == "Pow":
        if not _is_static(b) or b.size != 1:
            raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: Pow needs a constant scalar exponent")
        return [_Dyn(a.t ** float(b.reshape(())), a.perm)]
    if isinstance(a, _Dyn) and isinstance(b, _Dyn):
        if a.t.ndim == b.t.ndim:
            ta, tb, perm = a.t, _to(b, a.perm), a.perm
        else:
            ta, tb = _plain(a), _plain(b)
            perm = _identity(max(ta.ndim, tb.ndim))
    else:
        d, c = (a, b) if isinstance(a, _Dyn) else (b, a)
        if c.ndim > d.t.ndim:
            ta, tb = _plain(d), Tensor(_f32(c))
            perm = _identity(c.ndim)
        else:
            ta, tb, perm = d.t, _const_like(c, d), d.perm
        if d is b:
            ta, tb = tb, ta
    y = {"Add": lambda: ta + tb, "Sub": lambda: ta - tb, "Mul": lambda: ta * tb, "Div": lambda: ta / tb}[op]()
    return [_Dyn(y, perm)]


@_op("Concat")
def _concat_op(m, rec, args):
    if all(_is_static(v) for v in args):
        return [np.concatenate(args, axis=int(rec.attrs["axis"]))]
    first = next(v for v in args if isinstance(v, _Dyn))
    n = first.t.ndim
    axis = _axis(rec.attrs["axis"], n)
    parts = [_to(v, first.perm) if isinstance(v, _Dyn) else _const_like(v, first) for v in args]
    return [_Dyn(_concat(parts, axis=first.perm[axis]), first.perm)]


@_op("Flatten")
def _flatten(m, rec, args):
    x = args[0]
    shape = x.shape if _is_static(x) else tuple(x.t.shape[p] for p in x.perm)
    axis = _axis(rec.attrs.get("axis", 1), len(shape) + 1) if len(shape) else 0
    target = (int(np.prod(shape[:axis])), -1)
    if _is_static(x):
        return [x.reshape(target)]
    return [_Dyn(_plain(x).reshape(target), (0, 1))]


@_op("Reshape")
def _reshape(m, rec, args):
    x, shape = args[0], args[1]
    if not _is_static(shape):
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: Reshape to a shape computed from float data")
    t = x if _is_static(x) else _plain(x)
    shape = [int(s) for s in np.asarray(shape).reshape(-1)]
    if not rec.attrs.get("allowzero", 0):
        shape = [t.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    if _is_static(x):
        return [x.reshape(shape)]
    y = t.reshape(tuple(shape))
    return [_Dyn(y, _identity(y.ndim))]


@_op("Transpose")
def _transpose(m, rec, args):
    x = args[0]
    n = x.ndim if _is_static(x) else x.t.ndim
    perm = tuple(int(p) for p in rec.attrs.get("perm", reversed(range(n))))
    if _is_static(x):
        return [np.transpose(x, perm)]
    return [_Dyn(x.t, tuple(x.perm[p] for p in perm))]     # no data moves


@_op("Pad")
def _pad_op(m, rec, args):
    x = args[0]
    mode = rec.attrs.get("mode", "constant")
    if mode != "constant":
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: Pad mode {mode!r} (only 'constant')")
    n = x.ndim if _is_static(x) else x.t.ndim
    if m.opset >= 11:
        pads = np.asarray(args[1]).reshape(-1) if len(args) > 1 and args[1] is not None else np.zeros(2 * n, np.int64)
        value = float(np.asarray(args[2]).reshape(())) if len(args) > 2 and args[2] is not None else 0.0
        axes = np.asarray(args[3]).reshape(-1) if len(args) > 3 and args[3] is not None else np.arange(n)
    else:
        pads = np.asarray(rec.attrs.get("pads"))
        value = float(rec.attrs.get("value", 0.0))
        axes = np.arange(n)
    axes = [_axis(a, n) for a in axes]
    k = len(axes)
    width = [[0, 0] for _ in range(n)]     # ONNX order
    for j, a in enumerate(axes):
        width[a] = [int(pads[j]), int(pads[j + k])]
    if _is_static(x):
        grown = np.pad(x, [(max(b, 0), max(e, 0)) for b, e in width], constant_values=value)
        return [grown[tuple(slice(-b if b < 0 else 0, e if e < 0 else None) for b, e in width)]]
    strided_width = [None] * n
    for i in range(n):
        strided_width[x.perm[i]] = width[i]
    y = x.t
    if any(b > 0 or e > 0 for b, e in strided_width):
        y = F.pad(y, tuple((max(b, 0), max(e, 0)) for b, e in strided_width), value)
    if any(b < 0 or e < 0 for b, e in strided_width):
        y = y[tuple(slice(-b if b < 0 else 0, e if e < 0 else None) for b, e in strided_width)]
    return [_Dyn(y, x.perm)]


@_op("Shape")
def _shape(m, rec, args):
    x = args[0]
    shape = np.array(x.shape if _is_static(x) else [x.t.shape[p] for p in x.perm], dtype=np.int64)
    start, end = rec.attrs.get("start", 0), rec.attrs.get("end", None)
    return [shape[start:end]]


@_op("Gather")
def _gather(m, rec, args):
    x, index = args
    if not _is_static(index):
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: Gather with computed indices")
    n = x.ndim if _is_static(x) else x.t.ndim
    axis = _axis(rec.attrs.get("axis", 0), n)
    size = x.shape[axis] if _is_static(x) else x.t.shape[x.perm[axis]]
    index = np.where(index < 0, index + size, index).astype(np.int64)
    if _is_static(x):
        return [np.take(x, index, axis=axis)]
    t = _plain(x)
    y = t[(slice(None),) * axis + ((int(index),) if index.ndim == 0 else (index,))]
    return [_Dyn(y, _identity(y.ndim))]


def _axes_arg(m, rec, args, since):
    if m.opset >= since:
        return None if len(args) < 2 or args[1] is None else [int(a) for a in np.asarray(args[1]).reshape(-1)]
    axes = rec.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


@_op("Unsqueeze")
def _unsqueeze(m, rec, args):
    x = args[0]
    axes = _axes_arg(m, rec, args, 13)
    shape = list(x.shape if _is_static(x) else (x.t.shape[p] for p in x.perm))
    n = len(shape) + len(axes)
    for a in sorted(_axis(a, n) for a in axes):
        shape.insert(a, 1)
    if _is_static(x):
        return [x.reshape(shape)]
    return [_Dyn(_plain(x).reshape(tuple(shape)), _identity(n))]


@_op("Squeeze")
def _squeeze(m, rec, args):
    x = args[0]
    axes = _axes_arg(m, rec, args, 13)
    shape = list(x.shape if _is_static(x) else (x.t.shape[p] for p in x.perm))
    axes = [i for i, s in enumerate(shape) if s == 1] if axes is None else [_axis(a, len(shape)) for a in axes]
    new = [s for i, s in enumerate(shape) if i not in axes]
    if _is_static(x):
        return [x.reshape(new)]
    return [_Dyn(_plain(x).reshape(tuple(new)), _identity(len(new)))]


@_op("Slice")
def _slice(m, rec, args):
    x = args[0]
    n = x.ndim if _is_static(x) else x.t.ndim
    if m.opset >= 10:
        starts, ends = np.asarray(args[1]).reshape(-1), np.asarray(args[2]).reshape(-1)
        axes = np.asarray(args[3]).reshape(-1) if len(args) > 3 and args[3] is not None else np.arange(len(starts))
        steps = np.asarray(args[4]).reshape(-1) if len(args) > 4 and args[4] is not None else np.ones(len(starts))
    else:
        starts, ends = np.asarray(rec.attrs["starts"]), np.asarray(rec.attrs["ends"])
        axes = np.asarray(rec.attrs.get("axes", range(len(starts))))
        steps = np.ones(len(starts))
    index = [slice(None)] * n
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _axis(a, n)
        index[a if _is_static(x) else x.perm[a]] = slice(int(s), int(e), int(st))
    if _is_static(x):
        return [x[tuple(index)]]
    return [_Dyn(x.t[tuple(index)], x.perm)]


@_op("Cast")
def _cast(m, rec, args):
    onnx, _ = _onnx()
    x = args[0]
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(rec.attrs["to"])))
    if _is_static(x):
        return [x.astype(dtype)]
    if dtype.kind != "f":
        raise UnsupportedOnnxError(f"{m.source}: node {rec.name!r}: Cast of a computed tensor to {dtype}")
    return [x]      # floats stay float32 inside


@_op("ConstantOfShape")
def _constant_of_shape(m, rec, args):
    value = np.asarray(rec.attrs.get("value", np.zeros(1, np.float32))).reshape(-1)[0]
    return [np.full(tuple(int(s) for s in np.asarray(args[0]).reshape(-1)), value)]


@_op("ReduceMean", "ReduceSum", "ReduceMax")
def _reduce(m, rec, args):
    x = args[0]
    since = 13 if rec.op == "ReduceSum" else 18
    axes = _axes_arg(m, rec, args, since)
    keep = bool(rec.attrs.get("keepdims", 1))
    n = x.ndim if _is_static(x) else x.t.ndim
    if not axes:
        if rec.attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(n))
    axes = sorted({_axis(a, n) for a in axes})
    if _is_static(x):
        fn = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max}[rec.op]
        return [fn(x, axis=tuple(axes), keepdims=keep)]
    axes_s = tuple(sorted(x.perm[a] for a in axes))
    t = x.t
    y = {"ReduceMean": t.mean, "ReduceSum": t.sum, "ReduceMax": t.max}[rec.op](axis=axes_s, keepdims=keep)
    if keep:
        return [_Dyn(y, x.perm)]
    kept = [a for a in range(n) if a not in axes_s]
    return [_Dyn(y, tuple(kept.index(x.perm[i]) for i in range(n) if i not in axes))]


SUPPORTED_OPS = tuple(sorted(_OPS))


# ------------------------------------------------------------------------------------ reading
def _read(path, onnx):
    """``onnx.ModelProto`` from a file, with every failure a ModelFileError naming it."""
    if isinstance(path, onnx.ModelProto):
        return path, "<onnx.ModelProto>"
    if isinstance(path, (bytes, bytearray)):
        data, source, folder = bytes(path), "<bytes>", None
    else:
        source = os.fspath(path)
        if not os.path.exists(source):
            raise ModelFileError(f"{source}: no such file")
        if os.path.isdir(source):
            raise ModelFileError(f"{source}: is a folder, not an ONNX file")
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as error:
            raise ModelFileError(f"{source}: cannot be read ({error.strerror or error})") from None
        folder = os.path.dirname(os.path.abspath(source))
    if not data:
        raise ModelFileError(f"{source}: empty file, not an ONNX model")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as error:   # protobuf's DecodeError and friends
        raise ModelFileError(f"{source}: not a valid ONNX file, it may be truncated or corrupt "
                             f"(protobuf: {error})") from None
    if not proto.HasField("graph") or not proto.graph.node or not proto.graph.output:
        raise ModelFileError(f"{source}: holds no ONNX graph (not an ONNX model, or truncated)")
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        if folder is None:
            raise ModelFileError(f"{source}: weights are in external files, give the model's path")
        for t in external:
            location = next((e.value for e in t.external_data if e.key == "location"), "")
            target = os.path.abspath(os.path.join(folder, location))
            if not location or os.path.commonpath([folder, target]) != folder:
                raise ModelFileError(f"{source}: initializer {t.name!r} points outside the model's folder "
                                     f"({location!r}); refused")
            if not os.path.isfile(target):
                raise ModelFileError(f"{source}: initializer {t.name!r} is stored in {location!r}, which is missing")
        try:
            from onnx.external_data_helper import load_external_data_for_model
            load_external_data_for_model(proto, folder)
        except Exception as error:
            raise ModelFileError(f"{source}: cannot read the external weights ({error})") from None
    try:
        onnx.checker.check_model(proto)
    except Exception as error:   # onnx.checker.ValidationError, or a C++ error for a malformed proto
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(f"{source}: invalid ONNX model, it may be truncated or corrupt ({first})") from None
    return proto, source


def _arrays(proto, source, numpy_helper):
    arrays = {}
    for init in proto.graph.initializer:
        try:
            a = numpy_helper.to_array(init)
        except Exception as error:
            raise ModelFileError(f"{source}: initializer {init.name!r} is corrupt ({error})") from None
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        arrays[init.name] = a
    return arrays


def _layout(proto, input_layout):
    if input_layout is not None:
        layout = str(input_layout).upper()
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"input_layout must be 'NCHW', 'NHWC' or None, received input_layout={input_layout!r}")
        return layout
    meta = {p.key: p.value for p in proto.metadata_props}
    return "NHWC" if meta.get(INPUT_LAYOUT_KEY, "").upper() == "NHWC" else "NCHW"


def import_onnx(path, input_layout: str | None = None) -> OnnxModel:
    """Read the ONNX model at ``path`` into a strided module (eval mode) taking channels-last input.

    ``input_layout``: what the ONNX graph's inputs are, ``"NCHW"`` (the ONNX convention:
    the module transposes at the boundary) or ``"NHWC"``; by default NHWC for a file
    written by :func:`strided.io.export_onnx`, NCHW otherwise.  ``path`` may also be an
    ``onnx.ModelProto`` or the file's bytes.

    Raises :class:`~strided.io.ModelFileError` for a missing, empty, truncated or corrupt
    file and :class:`UnsupportedOnnxError` (a ModelFileError) listing operators that
    strided cannot run.
    """
    onnx, numpy_helper = _onnx()
    proto, source = _read(path, onnx)
    layout = _layout(proto, input_layout)
    other_domains = sorted({n.domain for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    unsupported = sorted({n.op_type for n in proto.graph.node
                          if n.op_type not in _OPS or n.domain not in ("", "ai.onnx")})
    if unsupported:
        extra = f" (custom domains: {', '.join(other_domains)})" if other_domains else ""
        raise UnsupportedOnnxError(f"{source}: uses ONNX operators strided cannot import: {', '.join(unsupported)}"
                                   f"{extra}. Supported: {', '.join(SUPPORTED_OPS)}")
    arrays = _arrays(proto, source, numpy_helper)
    return OnnxModel(proto, arrays, source, layout)
