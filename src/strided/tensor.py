"""Tensor and the define-by-run autograd graph.

A :class:`Tensor` wraps a NumPy array (``.data``) and, when it takes part in a
computation that needs gradients, remembers the :class:`Function` that made it
(``._ctx``).  ``y.backward()`` walks that graph in reverse topological order
(iteratively, so graphs thousands of ops deep work) and calls each function's
``backward(gy)``, which returns the gradient for every input.

Every op is a small subclass of :class:`Function` whose ``forward`` and
``backward`` sit side by side::

    class Exp(Function):
        def forward(self, x):
            self.y = np.exp(x)
            return self.y
        def backward(self, gy):
            return gy * self.y          # d/dx exp(x) = exp(x)

Gradients accumulate in ``.grad`` across ``backward()`` calls until
``zero_grad()`` (PyTorch semantics).  Buffers saved by the functions are
released after ``backward()`` unless ``retain_graph=True``.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

__all__ = ["Tensor", "Function", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
           "as_tensor", "as_array", "concat", "stack", "pad", "where", "topological_order"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- grad mode
class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """True unless inside ``with no_grad():``."""
    return _GradMode.enabled


@contextlib.contextmanager
def no_grad():
    """Context manager: ops inside it record no graph (inference, optimiser steps)."""
    previous, _GradMode.enabled = _GradMode.enabled, False
    try:
        yield
    finally:
        _GradMode.enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Context manager: turn graph recording back on inside ``no_grad``."""
    previous, _GradMode.enabled = _GradMode.enabled, True
    try:
        yield
    finally:
        _GradMode.enabled = previous


# --------------------------------------------------------------------------- conversion
def _to_float_array(data, dtype=None) -> np.ndarray:
    """float32/float64 arrays stay as they are; other numbers become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, received dtype={dtype}")
        return np.asarray(data, dtype=dtype)
    array = np.asarray(data)
    if array.dtype in _FLOAT_DTYPES:
        return array
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype.kind in "biuf":
        return array.astype(np.float32)
    raise TypeError(f"cannot make a tensor from an array of dtype {array.dtype}; "
                    "expected numbers (bool, int or float)")


def as_array(x) -> np.ndarray:
    """The ndarray behind ``x`` (a Tensor, an ndarray or a number)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def as_tensor(x, like: "Tensor | None" = None) -> "Tensor":
    """``x`` if it is a Tensor, else a constant tensor (dtype of ``like`` for scalars)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and (isinstance(x, numbers.Number) or np.ndim(x) == 0):
        return Tensor(np.asarray(x, dtype=like.dtype))
    if like is not None and isinstance(x, np.ndarray) and x.dtype.kind in "biu":
        return Tensor(x.astype(like.dtype))
    return Tensor(x)


def tensor(data, requires_grad: bool = False, dtype=None) -> "Tensor":
    """Make a tensor.  float32/float64 arrays are kept as they are (no copy);
    other numbers become float32.  ``dtype`` may force float32 or float64."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient ``g`` back down to ``shape`` (undo broadcasting)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True)
    if lead:
        g = g.reshape(g.shape[lead:])
    return g


# --------------------------------------------------------------------------- Tensor
class Tensor:
    """An n-dimensional array with an optional gradient.

    Attributes: ``data`` (ndarray), ``grad`` (ndarray or None), ``requires_grad``,
    ``shape``, ``dtype``, ``ndim``.  Arithmetic broadcasts like NumPy.
    """

    __array_priority__ = 1000  # ndarray <op> Tensor -> Tensor.__rop__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self._set(_to_float_array(data, dtype), bool(requires_grad), None, name)

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx: "Function | None") -> "Tensor":
        """An op's output: ``data`` as it is (no conversion), made by ``ctx`` when recording."""
        out = cls.__new__(cls)
        out._set(data, ctx is not None, ctx, None)
        return out

    def _set(self, data, requires_grad, ctx, name):
        """The one place a tensor's fields are set (by ``__init__`` and for op outputs)."""
        self.data = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._ctx: Function | None = ctx
        self.name = name

    # ----- basic properties
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx, doc="The Function that made this tensor (None for a leaf).")

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, threshold=8, edgeitems=2, prefix="tensor(")
        extra = ""
        if self.dtype != np.float32:
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={type(self._ctx).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """A tensor sharing the data but cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype) -> "Tensor":
        return Cast(np.dtype(dtype))(self)

    def zero_grad(self):
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    # ----- autograd
    def backward(self, grad=None, retain_graph: bool = False):
        """Back-propagate from this tensor.

        ``grad`` is dL/dself; for a one-element tensor it defaults to 1.
        Leaf tensors with ``requires_grad`` accumulate into ``.grad``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad "
                               "(no input had requires_grad=True, or it was made under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without grad needs a one-element tensor, "
                                 f"received shape {self.shape}; pass grad= of that shape")
            g = np.ones_like(self.data)
        else:
            g = np.asarray(as_array(grad), dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(f"grad has shape {g.shape}, expected {self.shape}")

        order = topological_order(self, lambda t: t.requires_grad)
        grads = {id(self): g}
        stored = set()  # arrays already handed to a leaf's .grad (copy if seen again)
        while order:
            # popping the node drops this loop's reference to it: once its consumers and its own
            # function have released their buffers, an intermediate's data is freed here, during
            # backward, instead of living until the whole backward ends (peak memory)
            node = order.pop()
            gy = grads.pop(id(node), None)
            if gy is None:
                continue
            ctx = node._ctx
            if ctx is None:  # leaf: accumulate
                if node.grad is None:
                    shared = id(gy) in stored or gy is g or not (gy.flags.owndata and gy.flags.writeable)
                    node.grad = np.array(gy) if shared else gy
                    stored.add(id(node.grad))
                else:
                    node.grad = node.grad + gy
                continue
            if ctx.released:
                raise RuntimeError("trying to backward through a part of the graph that an earlier backward() "
                                   "already freed; pass retain_graph=True to the first backward()")
            if node._retain:
                node.grad = gy if node.grad is None else node.grad + gy
                stored.add(id(node.grad))
            gxs = ctx.backward(gy)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for parent, gx in zip(ctx.inputs, gxs):
                if gx is None or not parent.requires_grad:
                    continue
                if gx.shape != parent.shape:
                    gx = sum_to(gx, parent.shape)
                if gx.dtype != parent.dtype:
                    gx = gx.astype(parent.dtype)
                key = id(parent)
                grads[key] = gx if key not in grads else grads[key] + gx
            if not retain_graph:
                ctx.release()

    _retain = False

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retain = True

    # ----- arithmetic
    def __add__(self, other): return Add()(self, as_tensor(other, self))
    def __radd__(self, other): return Add()(as_tensor(other, self), self)
    def __sub__(self, other): return Sub()(self, as_tensor(other, self))
    def __rsub__(self, other): return Sub()(as_tensor(other, self), self)
    def __mul__(self, other): return Mul()(self, as_tensor(other, self))
    def __rmul__(self, other): return Mul()(as_tensor(other, self), self)
    def __truediv__(self, other): return Div()(self, as_tensor(other, self))
    def __rtruediv__(self, other): return Div()(as_tensor(other, self), self)
    def __matmul__(self, other): return MatMul()(self, as_tensor(other, self))
    def __rmatmul__(self, other): return MatMul()(as_tensor(other, self), self)
    def __neg__(self): return Neg()(self)
    def __pos__(self): return self

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("tensor ** tensor is not supported; the exponent must be a number")
        return Pow(float(exponent))(self)

    # comparisons give plain boolean arrays (no gradient)
    def __lt__(self, other): return self.data < as_array(other)
    def __le__(self, other): return self.data <= as_array(other)
    def __gt__(self, other): return self.data > as_array(other)
    def __ge__(self, other): return self.data >= as_array(other)

    # ----- elementwise math
    def exp(self): return Exp()(self)
    def log(self): return Log()(self)
    def sqrt(self): return Pow(0.5)(self)
    def abs(self): return Abs()(self)

    # ----- reductions
    def sum(self, axis=None, keepdims=False): return Sum(axis, keepdims)(self)

    def mean(self, axis=None, keepdims=False):
        n = self.data.size if axis is None else int(np.prod([self.shape[a] for a in _axes(axis)]))
        return Sum(axis, keepdims)(self) * (1.0 / n)

    def max(self, axis=None, keepdims=False): return Max(axis, keepdims)(self)

    # ----- shape
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(shape)(self)

    def flatten(self, start_dim: int = 1):
        return self.reshape(self.shape[:start_dim] + (-1,))

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return Transpose(axes or None)(self)

    @property
    def T(self):
        return Transpose(None)(self)

    def __getitem__(self, index): return GetItem(index)(self)


def topological_order(output: Tensor, follow=lambda t: t.grad_fn is not None) -> list:
    """The tensors ``output`` depends on (itself included), each after all of its inputs.

    Walks ``t._ctx.inputs`` from ``output`` by an explicit-stack depth-first search (graphs
    thousands of ops deep work), entering only tensors for which ``follow(t)`` is true
    (``output`` itself always).  Inputs are visited first to last, so the order is
    deterministic.  Used by ``backward`` (``follow``: requires_grad) and the ONNX exporter
    (the default: the non-leaf tensors).
    """
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in reversed(node._ctx.inputs):
                if id(parent) not in seen and follow(parent):
                    stack.append((parent, False))
    return order


def _axes(axis):
    return (axis,) if isinstance(axis, int) else tuple(axis)


# --------------------------------------------------------------------------- Function
class Function:
    """Base class of every differentiable op.

    Subclasses implement ``forward(*arrays) -> array`` and
    ``backward(gy) -> grad or tuple of grads`` (one per input, ``None`` allowed).
    ``self.needs_grad[i]`` tells whether input ``i`` needs a gradient, so
    ``backward`` can skip work.
    """

    inputs: tuple = ()
    needs_grad: tuple = ()
    released = False

    def __call__(self, *inputs):
        inputs = tuple(x if isinstance(x, Tensor) else Tensor(x) for x in inputs)
        record = _GradMode.enabled and any(x.requires_grad for x in inputs)
        self.needs_grad = tuple(x.requires_grad for x in inputs)
        self.recording = record
        y = self.forward(*(x.data for x in inputs))
        if record:
            self.inputs = inputs
        return Tensor._from_op(y, self if record else None)

    def forward(self, *xs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, gy):  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self):
        """Drop saved buffers and inputs once backward has used them."""
        self.__dict__.clear()
        self.released = True

    def __repr__(self):
        return f"<{type(self).__name__}>"


# --------------------------------------------------------------------------- arithmetic ops
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, -gy


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        return (gy * self.b if self.needs_grad[0] else None,
                gy * self.a if self.needs_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = gy / self.b
        gb = -ga * self.a / self.b if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x ** p for a constant exponent p;  dy/dx = p x^(p-1)."""

    def __init__(self, exponent: float):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x ** self.exponent

    def backward(self, gy):
        p = self.exponent
        if p == 0:
            return np.zeros_like(self.x)
        return gy * (p * self.x ** (p - 1))


class Exp(Function):
    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, gy):
        return gy / self.x


class Abs(Function):
    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, gy):
        return gy * self.sign


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.src)


class MatMul(Function):
    """y = a @ b (NumPy matmul rules: 1-D operands, batched leading axes).

    1-D operands are promoted to matrices ``(1, K)`` / ``(K, 1)`` so one rule serves all:
    ga = gy @ b^T, gb = a^T @ gy (broadcast batch axes are summed away by the engine).
    """

    def forward(self, a, b):
        self.a_vec, self.b_vec = a.ndim == 1, b.ndim == 1
        self.a = a[None, :] if self.a_vec else a
        self.b = b[:, None] if self.b_vec else b
        y = self.a @ self.b
        if self.b_vec:
            y = y[..., 0]
        if self.a_vec:
            y = y[..., 0, :] if not self.b_vec else y[..., 0]
        return y

    def backward(self, gy):
        if self.b_vec:
            gy = gy[..., None]
        if self.a_vec:
            gy = gy[..., None, :]
        ga = gy @ np.swapaxes(self.b, -1, -2) if self.needs_grad[0] else None
        gb = np.swapaxes(self.a, -1, -2) @ gy if self.needs_grad[1] else None
        if gb is not None and self.b_vec:
            gb = gb[..., 0]
        if ga is not None and self.a_vec:
            ga = ga[..., 0, :]
        return ga, gb


# --------------------------------------------------------------------------- reductions
class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        return np.asarray(x.sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, gy):
        if self.axis is not None and not self.keepdims:
            gy = np.expand_dims(gy, tuple(a % len(self.shape) for a in _axes(self.axis)))
        return np.broadcast_to(gy, self.shape)


class Max(Function):
    """Maximum over axes.  Ties share the gradient equally (like PyTorch's amax)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        self.y = np.asarray(x.max(axis=self.axis, keepdims=True))
        return self.y if self.keepdims else np.asarray(np.squeeze(self.y, axis=self.axis) if self.axis is not None else self.y.reshape(()))

    def backward(self, gy):
        if not self.keepdims:
            gy = gy.reshape(self.y.shape)
        mask = self.x == self.y
        return mask * (gy / mask.sum(axis=self.axis, keepdims=True))


# --------------------------------------------------------------------------- shape ops
class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        return np.transpose(x, self.axes)

    def backward(self, gy):
        if self.axes is None:
            return np.transpose(gy)
        return np.transpose(gy, np.argsort(self.axes))


class GetItem(Function):
    def __init__(self, index):
        self.index = index.data if isinstance(index, Tensor) else index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        gx = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(gx, self.index, gy)
        return gx


class Concat(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return np.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        cuts = np.cumsum(self.sizes)[:-1]
        return tuple(np.split(gy, cuts, axis=self.axis))


class Stack(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        return np.stack(xs, axis=self.axis)

    def backward(self, gy):
        return tuple(np.moveaxis(gy, self.axis, 0))


class Pad(Function):
    """Constant padding; ``pad_width`` as in ``np.pad`` ((before, after) per axis)."""

    def __init__(self, pad_width, value=0.0):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        return np.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, gy):
        index = tuple(slice(b, gy.shape[i] - a) for i, (b, a) in enumerate(self.pad_width))
        return gy[index]


class Where(Function):
    def __init__(self, condition):
        self.condition = np.asarray(condition, dtype=bool)

    def forward(self, a, b):
        return np.where(self.condition, a, b)

    def backward(self, gy):
        zero = np.zeros((), dtype=gy.dtype)
        return np.where(self.condition, gy, zero), np.where(self.condition, zero, gy)


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (NHWC channels: ``axis=-1``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat needs at least one tensor, received an empty sequence")
    return Concat(axis)(*[as_tensor(t) for t in tensors])


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    return Stack(axis)(*[as_tensor(t) for t in tensors])


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant-pad ``x``; ``pad_width`` is one ``(before, after)`` pair per axis."""
    x = as_tensor(x)
    pad_width = tuple((int(b), int(a)) for b, a in pad_width)
    if len(pad_width) != x.ndim:
        raise ValueError(f"pad_width needs one (before, after) pair per axis ({x.ndim}), "
                         f"received {len(pad_width)} pairs")
    return Pad(pad_width, value)(x)


def where(condition, a, b) -> Tensor:
    """Elementwise ``a`` where ``condition`` else ``b``."""
    a = as_tensor(a)
    return Where(as_array(condition))(a, as_tensor(b, a))
