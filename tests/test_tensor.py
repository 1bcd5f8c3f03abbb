"""Tensor and the autograd graph: every op against finite differences, a few against
PyTorch, and the graph mechanics (iterative backward, accumulation, no_grad,
retain_graph, aliasing of leaf gradients)."""
import gc
import os
import sys
import weakref

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle import assert_close, gradcheck, numerical_grad, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402

torch = pytest.importorskip("torch")


def rnd(*shape, seed=0, low=None, high=None):
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, high, size=shape)
    return rng.standard_normal(shape)


def nonzero(*shape, seed=0):
    """Values in +-[0.5, 2]: safe denominators and away from |x|'s kink."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


# --------------------------------------------------------------------------- arithmetic
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
NUMPY_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 3, 4)),
    ((2, 1, 4), (3, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
]


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}".replace(" ", ""))
@pytest.mark.parametrize("op", list(BINARY))
def test_broadcasting_binary_gradcheck(op, shapes):
    a = rnd(*shapes[0], seed=1)
    b = nonzero(*shapes[1], seed=2)
    y = gradcheck(BINARY[op], a, b)
    assert_close(y.data, NUMPY_BINARY[op](a, b), 1e-14, 1e-14, "forward")


@pytest.mark.parametrize("op", list(BINARY))
def test_broadcasting_binary_torch(op):
    torch_ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    a, b = rnd(2, 3, 4, seed=3), nonzero(3, 1, seed=4)
    torch_parity(BINARY[op], torch_ops[op], [a, b])
    torch_parity(BINARY[op], torch_ops[op], [a, b], dtype=np.float32)


CONST = rnd(3, 4, seed=7)
POSITIVE = rnd(3, 4, seed=8, low=0.5, high=2.0)
SCALAR_CASES = {
    "scalar+x": (lambda x: 2.5 + x, lambda a: 2.5 + a),
    "x+scalar": (lambda x: x + 2.5, lambda a: a + 2.5),
    "int+x": (lambda x: 2 + x, lambda a: 2 + a),
    "ndarray+x": (lambda x: CONST + x, lambda a: CONST + a),
    "x+ndarray": (lambda x: x + CONST, lambda a: a + CONST),
    "scalar-x": (lambda x: 2.0 - x, lambda a: 2.0 - a),
    "x-scalar": (lambda x: x - 2, lambda a: a - 2),
    "ndarray-x": (lambda x: CONST - x, lambda a: CONST - a),
    "x-ndarray": (lambda x: x - CONST, lambda a: a - CONST),
    "scalar*x": (lambda x: 3 * x, lambda a: 3 * a),
    "x*ndarray": (lambda x: x * CONST, lambda a: a * CONST),
    "ndarray*x": (lambda x: CONST * x, lambda a: CONST * a),
    "scalar/x": (lambda x: 3.0 / x, lambda a: 3.0 / a),
    "x/scalar": (lambda x: x / 4, lambda a: a / 4),
    "ndarray/x": (lambda x: CONST / x, lambda a: CONST / a),
    "x/ndarray": (lambda x: x / POSITIVE, lambda a: a / POSITIVE),
    "neg": (lambda x: -x, lambda a: -a),
    "pos": (lambda x: +x, lambda a: +a),
    "x**3": (lambda x: x ** 3, lambda a: a ** 3),
    "x**2.5(abs)": (lambda x: x.abs() ** 2.5, lambda a: np.abs(a) ** 2.5),
    "x**-1": (lambda x: x ** -1, lambda a: a ** -1.0),
    "x@ndarray": (lambda x: x @ CONST.T, lambda a: a @ CONST.T),
    "ndarray@x": (lambda x: CONST.T @ x, lambda a: CONST.T @ a),
}


@pytest.mark.parametrize("case", list(SCALAR_CASES))
def test_scalar_and_ndarray_operands(case):
    fn, ref = SCALAR_CASES[case]
    x = nonzero(3, 4, seed=5)
    y = gradcheck(fn, x)
    assert isinstance(y, sd.Tensor)
    assert_close(y.data, ref(x), 1e-14, 1e-14, "forward")


def test_pow_torch():
    x = nonzero(3, 4, seed=6)
    torch_parity(lambda t: t ** 3, lambda t: t ** 3, [x])
    torch_parity(lambda t: t.abs() ** 1.5, lambda t: t.abs() ** 1.5, [x])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_pow_zero_exponent_at_zero():
    torch_parity(lambda t: t ** 0, lambda t: t ** 0, [np.array([0.0, 1.0, -2.0])])


def test_scalar_operand_keeps_float32():
    x = sd.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    for y in (x + 1.5, 2 * x, 1 - x, x / 3, 2.0 / x, x ** 2, -x, x + np.arange(2)):
        assert y.dtype == np.float32, y


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (4, 5)),
    ((4,), (4,)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}".replace(" ", ""))
def test_matmul_gradcheck(shapes):
    a, b = rnd(*shapes[0], seed=1), rnd(*shapes[1], seed=2)
    y = gradcheck(lambda p, q: p @ q, a, b)
    assert_close(y.data, a @ b, 1e-13, 1e-13, "forward")


MATMUL_VECTORS = [((3, 4), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5))]


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_VECTORS, ids=["matrix@vector", "batch@vector", "vector@batch"])
def test_matmul_vector_operands(shape_a, shape_b):
    a, b = rnd(*shape_a, seed=1), rnd(*shape_b, seed=2)
    y = gradcheck(lambda p, q: p @ q, a, b)
    assert_close(y.data, a @ b, 1e-13, 1e-13, "forward")


def test_matmul_torch():
    a, b = rnd(2, 3, 4, seed=1), rnd(2, 4, 5, seed=2)
    torch_parity(lambda p, q: p @ q, torch.matmul, [a, b])
    torch_parity(lambda p, q: p @ q, torch.matmul, [a, b], dtype=np.float32)


# --------------------------------------------------------------------------- reductions
AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keep"])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduction_gradcheck(name, axis, keepdims):
    x = np.random.default_rng(3).permutation(24).reshape(2, 3, 4) * 0.1  # no ties for max
    y = gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), x)
    assert_close(y.data, getattr(np, name if name != "max" else "amax")(x, axis=axis, keepdims=keepdims),
                 1e-14, 1e-14, "forward")


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
def test_max_ties_split_equally(axis):
    x = np.array([[1.0, 3.0, 3.0], [3.0, 2.0, 0.0]])
    t = sd.tensor(x, requires_grad=True)
    y = t.max(axis=axis)
    gy = np.arange(1.0, y.data.size + 1).reshape(y.shape)
    y.backward(gy)
    # reference: the gradient of each output shared by its k maxima, gy/k each
    full = np.amax(x, axis=axis, keepdims=True)
    mask = x == full
    expected = mask * (np.reshape(gy, full.shape) / mask.sum(axis=axis, keepdims=True))
    assert_close(t.grad, expected, 0, 1e-15, "tie gradient")
    # PyTorch's amax follows the same rule
    tt = torch.tensor(x, requires_grad=True)
    dims = tuple(range(x.ndim)) if axis is None else axis
    torch.amax(tt, dim=dims).backward(torch.tensor(gy).reshape(torch.amax(tt, dim=dims).shape))
    assert_close(t.grad, tt.grad.numpy(), 0, 1e-15, "torch amax")


def test_reduction_torch():
    x = rnd(2, 3, 4, seed=4)
    torch_parity(lambda t: t.sum(axis=1), lambda t: t.sum(dim=1), [x])
    torch_parity(lambda t: t.mean(axis=(0, 2), keepdims=True), lambda t: t.mean(dim=(0, 2), keepdim=True), [x])
    torch_parity(lambda t: t.max(axis=-1), lambda t: t.amax(dim=-1), [x])


# --------------------------------------------------------------------------- shape ops
SHAPE_OPS = {
    "reshape-tuple": lambda t: t.reshape((4, 6)),
    "reshape-varargs-1": lambda t: t.reshape(3, -1, 2),
    "flatten": lambda t: t.flatten(),
    "transpose-default": lambda t: t.transpose(),
    "transpose-axes": lambda t: t.transpose(1, 2, 0),
    "transpose-tuple": lambda t: t.transpose((2, 0, 1)),
    "T": lambda t: t.T,
    "int-index": lambda t: t[1],
    "slice": lambda t: t[:, 1:, ::2],
    "negative-step": lambda t: t[::-1, :, 1:3],
    "ellipsis": lambda t: t[..., 2],
    "newaxis": lambda t: t[:, None, 1:],
    "negative-int": lambda t: t[-1, -2],
    "fancy": lambda t: t[[1, 0, 1]],
    "fancy-repeated-2d": lambda t: t[np.array([0, 0, 1, 0]), np.array([2, 2, 2, 1])],
    "mixed-fancy": lambda t: t[:, [0, 2, 2], 1:],
    "bool-mask": lambda t: t[np.arange(24).reshape(2, 3, 4) % 3 == 0],
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_op_gradcheck(name):
    x = rnd(2, 3, 4, seed=6)
    y = gradcheck(SHAPE_OPS[name], x)
    ref = SHAPE_OPS[name](x.copy()) if name not in ("reshape-tuple", "reshape-varargs-1", "flatten",
                                                    "transpose-default", "transpose-axes",
                                                    "transpose-tuple", "T") else None
    if ref is not None:
        assert_close(y.data, ref, 0, 0, "forward")


def test_repeated_indices_accumulate():
    t = sd.tensor(np.zeros(5), requires_grad=True)
    t[[0, 2, 2, 2, 4, 0]].sum().backward()
    assert_close(t.grad, np.array([2.0, 0.0, 3.0, 0.0, 1.0]), 0, 0, "index counts")


def test_indexing_torch():
    x = rnd(4, 5, seed=2)
    idx = [3, 0, 3, 1]
    torch_parity(lambda t: t[idx, 1:4] * 2.0, lambda t: t[idx, 1:4] * 2.0, [x])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_gradcheck(axis):
    shapes = {0: [(1, 3, 2), (2, 3, 2), (3, 3, 2)], 1: [(2, 1, 2), (2, 4, 2), (2, 2, 2)],
              -1: [(2, 3, 1), (2, 3, 3), (2, 3, 2)]}[axis]
    arrays = [rnd(*s, seed=i) for i, s in enumerate(shapes)]
    for fn in (sd.concat, F.concat):
        y = gradcheck(lambda *ts, fn=fn: fn(list(ts), axis=axis), *arrays)
        assert_close(y.data, np.concatenate(arrays, axis=axis), 0, 0, "forward")


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_gradcheck(axis):
    arrays = [rnd(2, 3, seed=i) for i in range(3)]
    y = gradcheck(lambda *ts: sd.stack(ts, axis=axis), *arrays)
    assert_close(y.data, np.stack(arrays, axis=axis), 0, 0, "forward")


def test_concat_stack_torch():
    a, b = rnd(2, 3, seed=1), rnd(2, 2, seed=2)
    torch_parity(lambda p, q: sd.concat([p, q], axis=1) * 3.0, lambda p, q: torch.cat([p, q], 1) * 3.0, [a, b])
    c = rnd(2, 3, seed=3)
    torch_parity(lambda p, q: sd.stack([p, q], axis=1), lambda p, q: torch.stack([p, q], 1), [a, c])


@pytest.mark.parametrize("pads", [((1, 2), (0, 0), (3, 1)), ((0, 0), (2, 2), (0, 1))], ids=["p1", "p2"])
def test_pad_gradcheck(pads):
    x = rnd(2, 3, 2, seed=1)
    y = gradcheck(lambda t: sd.pad(t, pads, value=0.5), x)
    assert_close(y.data, np.pad(x, pads, constant_values=0.5), 0, 0, "forward")


def test_functional_pad_nhwc_padding_spec():
    x = rnd(1, 3, 4, 2, seed=1)
    y = gradcheck(lambda t: F.pad(t, ((1, 0), (2, 1))), x)
    assert_close(y.data, np.pad(x, ((0, 0), (1, 0), (2, 1), (0, 0))), 0, 0, "forward")
    y = gradcheck(lambda t: F.pad(t, 1), x)
    assert y.shape == (1, 5, 6, 2)


def test_where_gradcheck():
    cond = rnd(3, 4, seed=9) > 0
    a, b = rnd(3, 4, seed=1), rnd(3, 4, seed=2)
    y = gradcheck(lambda p, q: sd.where(cond, p, q), a, b)
    assert_close(y.data, np.where(cond, a, b), 0, 0, "forward")
    # broadcasting: condition (3, 1), b a row (4,)
    c2 = np.array([[True], [False], [True]])
    y = gradcheck(lambda p, q: sd.where(c2, p, q), a, rnd(4, seed=3))
    assert y.shape == (3, 4)
    # a scalar for the other branch
    t = sd.tensor(a.copy(), requires_grad=True)
    sd.where(cond, t, 0.0).sum().backward()
    assert_close(t.grad, cond.astype(float), 0, 0, "scalar branch")


def test_where_torch():
    cond = rnd(3, 4, seed=9) > 0
    torch_parity(lambda p, q: sd.where(cond, p, q), lambda p, q: torch.where(torch.tensor(cond), p, q),
                 [rnd(3, 4, seed=1), rnd(3, 4, seed=2)])


# --------------------------------------------------------------------------- elementwise math
UNARY = {
    "exp": (lambda t: t.exp(), np.exp, lambda x: x),
    "log": (lambda t: t.log(), np.log, lambda x: np.abs(x) + 0.5),
    "abs": (lambda t: t.abs(), np.abs, lambda x: x),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, lambda x: np.abs(x) + 0.5),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradcheck(name):
    fn, ref, domain = UNARY[name]
    x = domain(nonzero(3, 4, seed=4))
    y = gradcheck(fn, x)
    assert_close(y.data, ref(x), 1e-15, 1e-15, "forward")


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_torch(name):
    fn, _, domain = UNARY[name]
    x = domain(nonzero(3, 4, seed=4))
    torch_parity(fn, getattr(torch, name), [x])
    torch_parity(fn, getattr(torch, name), [x], dtype=np.float32)


def test_composite_expression_torch():
    x, w = rnd(4, 3, seed=1), rnd(3, 2, seed=2)

    def sd_fn(x, w):
        h = (x @ w).exp() / ((x @ w).exp().sum(axis=1, keepdims=True))
        return (h * h).mean() - (x ** 2).sum() * 0.1

    def t_fn(x, w):
        h = (x @ w).exp() / ((x @ w).exp().sum(dim=1, keepdim=True))
        return (h * h).mean() - (x ** 2).sum() * 0.1

    torch_parity(sd_fn, t_fn, [x, w])


# --------------------------------------------------------------------------- graph mechanics
def test_backward_is_iterative_on_deep_chains():
    x = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(min(limit, 1000))  # a recursive walk of 10000 nodes would fail
    try:
        y.sum().backward()
    finally:
        sys.setrecursionlimit(limit)
    assert_close(x.grad, np.full(2, 1.0001 ** 5000), 0, 1e-12, "deep chain")


def test_gradients_accumulate_until_zero_grad():
    x = sd.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    assert_close(x.grad, 2 * x.data, 0, 0, "first")
    (x * 3.0).sum().backward()
    assert_close(x.grad, 2 * x.data + 3.0, 0, 0, "accumulated")
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    assert_close(x.grad, np.full(3, 3.0), 0, 0, "after zero_grad")


def test_no_grad():
    x = sd.tensor(np.ones(3), requires_grad=True)
    assert sd.is_grad_enabled()
    with sd.no_grad():
        assert not sd.is_grad_enabled()
        y = (x * 2).exp().sum()
        z = F.relu(x)
        with sd.enable_grad():
            w = x * 2
    assert sd.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    assert not z.requires_grad
    assert w.requires_grad
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_restores_state_on_exception():
    with pytest.raises(KeyError), sd.no_grad():
        raise KeyError("boom")
    assert sd.is_grad_enabled()


def test_detach():
    x = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    d = h.detach()
    assert not d.requires_grad and d._ctx is None
    assert np.shares_memory(d.data, h.data)
    y = (d * x).sum()
    y.backward()
    assert_close(x.grad, h.data, 0, 0, "detached factor is a constant")


def test_requires_grad_propagation():
    a = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = sd.tensor(np.array([3.0, 4.0]))
    c = sd.tensor(np.array([5.0, 6.0]))
    assert (a * b).requires_grad
    assert not (b * c).requires_grad
    assert (b * c + a).requires_grad
    y = (a * b).sum()
    y.backward()
    assert b.grad is None and c.grad is None
    assert_close(a.grad, b.data, 0, 0, "grad")
    with pytest.raises(RuntimeError):
        (b * c).sum().backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tensor_keeps_float_dtype_without_copy(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    t = sd.tensor(a)
    assert t.dtype == dtype
    assert np.shares_memory(t.data, a)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6


@pytest.mark.parametrize("data", [np.arange(4), np.arange(4, dtype=np.int8), np.array([True, False]),
                                  [1, 2, 3], 5, np.arange(3, dtype=np.uint16)],
                         ids=["int64", "int8", "bool", "list", "scalar", "uint16"])
def test_tensor_turns_ints_and_bools_into_float32(data):
    t = sd.tensor(data)
    assert t.dtype == np.float32
    assert_close(t.data, np.asarray(data, dtype=np.float64), 0, 0, "values")


def test_tensor_dtype_argument():
    t = sd.tensor(np.arange(3), dtype=np.float64)
    assert t.dtype == np.float64
    with pytest.raises(TypeError, match="int32"):
        sd.tensor(np.arange(3), dtype=np.int32)


def test_retain_graph_false_releases_buffers():
    x = sd.tensor(rnd(50, seed=1), requires_grad=True)
    h = (x * 2).exp()
    ref = weakref.ref(h.data)
    y = h.sum()
    del h
    assert y._ctx is not None
    y.backward()
    assert y._ctx.released and not hasattr(y._ctx, "inputs_data")
    gc.collect()
    assert ref() is None, "the intermediate exp buffer is still alive after backward()"
    assert_close(x.grad, 2 * np.exp(2 * x.data), 0, 1e-14, "grad")


def test_backward_frees_an_intermediate_once_its_gradient_is_passed_on():
    """Peak memory: an intermediate's data dies during backward, as soon as the graph is done
    with it, not when the whole backward ends (checked from the backward of an earlier op)."""
    seen = {}

    class Probe(sd.Function):  # y = 2 x; its backward looks whether the later intermediate still lives
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            gc.collect()
            seen["alive"] = seen["ref"]() is not None
            return 2 * gy

    x = sd.tensor(rnd(50, seed=2), requires_grad=True)
    b = Probe()(x).exp()               # Probe's output -> exp -> b -> *3 -> sum
    seen["ref"] = weakref.ref(b.data)
    y = (b * 3).sum()
    del b
    y.backward()
    assert seen["alive"] is False, "exp's output was still alive when an earlier op ran its backward"
    assert_close(x.grad, 6 * np.exp(2 * x.data), 0, 1e-13, "grad")


def test_retain_graph_false_clears_non_leaf_ctx():
    x = sd.tensor(np.array([0.5, 1.5]), requires_grad=True)
    h = x.exp()
    y = (h * 2).sum()
    assert h._ctx is not None and not h._ctx.released
    y.backward()
    assert h._ctx.released and "inputs" not in vars(h._ctx)


def test_retain_graph_true_allows_second_backward():
    x = sd.tensor(np.array([0.5, 1.5]), requires_grad=True)
    h = x.exp()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    assert h._ctx is not None and not h._ctx.released
    y.backward()
    assert_close(x.grad, 2 * (2 * np.exp(2 * x.data)), 0, 1e-14, "two backward passes")


def test_backward_through_released_subgraph_is_not_silently_wrong():
    x = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2
    y1 = h.sum()
    y2 = (h * h).sum()
    y1.backward()
    x.zero_grad()
    try:
        y2.backward()
    except RuntimeError:
        return
    assert_close(x.grad, 8 * x.data, 0, 1e-14, "d/dx sum((2x)^2)")


def test_backward_non_scalar_needs_grad():
    x = sd.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\)"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 3), 0.5))
    assert_close(x.grad, np.ones((2, 3)), 0, 0, "explicit grad")


def test_one_element_backward_defaults_to_ones():
    x = sd.tensor(np.array([[3.0]]), requires_grad=True)
    (x * 4).backward()
    assert_close(x.grad, np.array([[4.0]]), 0, 0, "implicit ones")


def test_diamond_graph_sums_gradients():
    x = sd.tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True)
    a = x * 2
    b = x.exp()
    y = (a * b + a + x).sum()
    y.backward()
    xd = x.data
    expected = 2 * np.exp(xd) + 2 * xd * np.exp(xd) + 2 + 1
    assert_close(x.grad, expected, 0, 1e-14, "diamond")
    num = numerical_grad(lambda t: (t * 2 * t.exp() + t * 2 + t).sum(), [xd], 0, 1.0)
    assert_close(x.grad, num, 1e-7, 1e-6, "numerical")


def test_x_used_twice():
    x = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x + x).sum().backward()
    assert_close(x.grad, np.array([2.0, 2.0]), 0, 0, "x + x")
    x.zero_grad()
    (x * x * x).sum().backward()
    assert_close(x.grad, 3 * x.data ** 2, 0, 1e-15, "x * x * x")


@pytest.mark.parametrize("build", [
    lambda a, b: a + b,
    lambda a, b: (a + b) * 2.0,
    lambda a, b: (a - b).sum(),
    lambda a, b: (a + b).sum(),
    lambda a, b: sd.concat([a, b]) * 1.0,
    lambda a, b: (a + b).reshape(4).sum(),
], ids=["add-root", "add-then-mul", "sub-sum", "add-sum", "concat-mul", "add-reshape-sum"])
def test_leaf_grads_are_not_aliased(build):
    a = sd.tensor(np.ones((2, 2)), requires_grad=True)
    b = sd.tensor(np.ones((2, 2)), requires_grad=True)
    y = build(a, b)
    gy = np.full(y.shape, 1.0)
    y.backward(gy if y.data.size > 1 else None)
    before_b = b.grad.copy()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 100.0  # in-place edit (as an optimiser might do)
    assert_close(b.grad, before_b, 0, 0, "b.grad changed by editing a.grad")
    if y.data.size > 1:
        assert not np.shares_memory(a.grad, gy) and not np.shares_memory(b.grad, gy)


def test_leaf_grad_not_aliased_with_user_grad():
    x = sd.tensor(np.ones(3), requires_grad=True)
    gy = np.full(3, 2.0)
    (x + 0.0).backward(gy)
    x.grad[0] = 99.0
    assert gy[0] == 2.0


def test_float32_gradient_dtype_with_float64_constant():
    x = sd.tensor(np.ones(3, np.float32), requires_grad=True)
    y = (x * np.array([1.0, 2.0, 3.0])).sum()  # float64 constant upcasts the output
    y.backward()
    assert x.grad.dtype == np.float32
    assert_close(x.grad, np.array([1.0, 2.0, 3.0]), 0, 0, "grad")


def test_retain_grad_on_non_leaf():
    x = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert_close(h.grad, 2 * h.data, 0, 0, "non-leaf grad")
    assert_close(x.grad, 18 * x.data, 0, 0, "leaf grad")


def test_astype_gradient():
    x = sd.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float64
    assert_close(x.grad, np.full(2, 2.0), 0, 0, "cast grad")


def test_repr_and_item():
    t = sd.tensor(np.array([1.5]), requires_grad=True)
    assert "requires_grad=True" in repr(t) and "float64" in repr(t)
    assert "grad_fn=Mul" in repr(t * 2)
    assert (t * 2).item() == 3.0


def test_leaf_grad_not_aliased_with_retained_grad():
    a = sd.tensor(np.ones(3), requires_grad=True)
    b = sd.tensor(np.ones(3), requires_grad=True)
    h = a + b
    h.retain_grad()
    (h * 2.0).sum().backward()
    a.grad += 100.0
    assert_close(h.grad, np.full(3, 2.0), 0, 0, "h.grad changed by editing a.grad")


def test_retain_graph_through_a_small_network():
    """Two backward passes over conv -> batch_norm -> relu -> max_pool -> linear -> cross_entropy
    give exactly twice the gradient of one (no op mutates its saved buffers in backward)."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 6, 6, 2)), rng.standard_normal((3, 3, 2, 4)), rng.standard_normal(4),
              rng.uniform(0.5, 1.5, 4), rng.standard_normal(4), rng.standard_normal((16, 3))]
    labels = np.array([0, 2, 1])

    def net(x, w, b, g, be, wl):
        h = F.conv2d(x, w, b, padding="same")
        h = F.relu(F.batch_norm(h, None, None, g, be))
        h = F.max_pool2d(h, 2, 3)
        return F.cross_entropy(F.linear(h.reshape(3, -1), wl), labels)

    once = [sd.tensor(a.copy(), requires_grad=True) for a in arrays]
    net(*once).backward()
    twice = [sd.tensor(a.copy(), requires_grad=True) for a in arrays]
    loss = net(*twice)
    loss.backward(retain_graph=True)
    loss.backward()
    for i, (o, t) in enumerate(zip(once, twice)):
        assert_close(t.grad, 2 * o.grad, 1e-14, 1e-13, f"input {i}")
    gradcheck(net, *arrays)
