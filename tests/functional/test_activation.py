"""Activations and softmax: finite differences away from kinks, PyTorch parity, and
finiteness for logits of +-1e4."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, away_from, distinct, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# name: (strided fn, torch fn, kinks to avoid, NumPy reference)
ACTIVATIONS = {
    "relu": (F.relu, TF.relu, (0.0,), lambda x: np.maximum(x, 0)),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu, (0.0,), lambda x: np.where(x > 0, x, 0.01 * x)),
    "leaky_relu-0.2": (lambda t: F.leaky_relu(t, 0.2), lambda t: TF.leaky_relu(t, 0.2), (0.0,),
                       lambda x: np.where(x > 0, x, 0.2 * x)),
    "relu6": (F.relu6, TF.relu6, (0.0, 6.0), lambda x: np.clip(x, 0, 6)),
    "sigmoid": (F.sigmoid, torch.sigmoid, (), lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, torch.tanh, (), np.tanh),
    "swish": (F.swish, TF.silu, (), lambda x: x / (1 + np.exp(-x))),
    "softmax": (F.softmax, lambda t: torch.softmax(t, -1), (),
                lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "log_softmax": (F.log_softmax, lambda t: torch.log_softmax(t, -1), (),
                    lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    "softmax-axis1": (lambda t: F.softmax(t, axis=1), lambda t: torch.softmax(t, 1), (),
                      lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    "log_softmax-axis0": (lambda t: F.log_softmax(t, axis=0), lambda t: torch.log_softmax(t, 0), (),
                          lambda x: x - np.log(np.exp(x).sum(0, keepdims=True))),
}


def inputs(name, seed=0, shape=(2, 3, 5)):
    x = np.random.default_rng(seed).uniform(-8, 8, size=shape) if name == "relu6" else \
        np.random.default_rng(seed).standard_normal(shape) * 2
    return away_from(x, ACTIVATIONS[name][2], margin=0.05)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_gradcheck(name):
    fn, _, _, ref = ACTIVATIONS[name]
    x = inputs(name, seed=1)
    y = gradcheck(fn, x)
    assert_close(y.data, ref(x), 1e-14, 1e-12, "forward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_torch_parity(name, dtype):
    fn, tfn, _, _ = ACTIVATIONS[name]
    torch_parity(fn, tfn, [inputs(name, seed=2, shape=(4, 6, 7))], dtype=dtype)


def test_relu6_input_covers_every_region():
    x = inputs("relu6", seed=2, shape=(4, 6, 7))
    assert (x < 0).any() and ((x > 0) & (x < 6)).any() and (x > 6).any()


EXTREME = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4 + 1], [1e4, 1e4, -5.0, 1e4 - 0.5]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sigmoid", "tanh", "swish"])
def test_extreme_logits_finite_and_equal_to_torch(name, dtype):
    fn, tfn, _, _ = ACTIVATIONS[name]
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):  # no overflow / NaN
        out, _ = torch_parity(fn, tfn, [EXTREME], dtype=dtype)
    assert np.all(np.isfinite(out))


def test_sigmoid_extremes_exact():
    y = F.sigmoid(np.array([1e4, -1e4, 800.0, -800.0]))
    assert_close(y.data, np.array([1.0, 0.0, 1.0, 0.0]), 0, 0, "saturated")
    assert y.data[1] >= 0 and y.data[3] >= 0


def test_softmax_rows_sum_to_one_and_shift_invariant():
    x = np.random.default_rng(3).standard_normal((4, 5))
    y = F.softmax(x).data
    assert_close(y.sum(-1), np.ones(4), 1e-15, 1e-15, "row sums")
    assert_close(F.softmax(x + 1000.0).data, y, 1e-14, 1e-12, "shift invariance")
    assert_close(np.exp(F.log_softmax(x).data), y, 1e-15, 1e-14, "exp(log_softmax) == softmax")


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "tanh"])
def test_activation_keeps_float32(name):
    x = sd.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = ACTIVATIONS[name][0](x)
    assert y.dtype == np.float32
    y.backward(np.ones((2, 3), np.float32))
    assert x.grad.dtype == np.float32


def test_relu_gradient_at_zero_is_zero_like_torch():
    x = np.array([-1.0, 0.0, 2.0])
    torch_parity(F.relu, TF.relu, [x])


# --------------------------------------------------------------------------- add_relu
def test_add_relu_gradcheck_and_torch_parity():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 3, 4, 5))
    b = rng.standard_normal((2, 3, 4, 5))
    b = np.where(np.abs(a + b) < 0.05, b + 0.2, b)          # away from the kink of relu(a + b)
    gradcheck(F.add_relu, a, b)
    torch_parity(F.add_relu, lambda x, y: TF.relu(x + y), [a, b])


def test_add_relu_equals_relu_of_the_sum_with_broadcasting_and_float32():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    ta, tb = sd.tensor(a, requires_grad=True), sd.tensor(b, requires_grad=True)
    y = F.add_relu(ta, tb)
    assert y.dtype == np.float32 and np.array_equal(y.data, np.maximum(a + b, 0))
    gy = rng.standard_normal((3, 4)).astype(np.float32)
    y.backward(gy)
    mask = (a + b) > 0
    assert np.array_equal(ta.grad, gy * mask) and np.allclose(tb.grad, (gy * mask).sum(0), atol=1e-6)


def test_add_relu_keeps_one_array_where_relu_of_a_sum_keeps_two():
    """The memory point of the op: after the forward, only the output is alive (relu(a + b)
    also keeps the sum, as the ReLU's input)."""
    import gc
    import weakref
    a = sd.tensor(np.ones((4, 4)), requires_grad=True)
    s = a + a
    ref = weakref.ref(s.data)
    y = F.relu(s)
    del s
    gc.collect()
    assert ref() is not None                  # relu(a + b): the sum lives as long as the graph
    y2 = F.add_relu(a, a)
    assert set(map(id, [v for v in vars(y2._ctx).values() if isinstance(v, np.ndarray)])) == {id(y2.data)}
    del y


# --------------------------------------------------------------------------- clip
@pytest.mark.parametrize("low, high", [(-0.3, 0.4), (None, 0.2), (-0.1, None), (0.5, 0.5)])
def test_clip_gradcheck(low, high):
    x = away_from(distinct((3, 4, 5), seed=11, spacing=0.013), points=[v for v in (low, high) if v is not None],
                  margin=0.01)
    gradcheck(lambda t: F.clip(t, low, high), x)


@pytest.mark.parametrize("low, high", [(-0.3, 0.4), (None, 0.2), (-0.1, None), (0.3, -0.3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_matches_torch_clamp(low, high, dtype):
    x = distinct((4, 6), seed=2, spacing=0.05)
    torch_parity(lambda t: F.clip(t, low, high), lambda t: torch.clamp(t, low, high), [x], dtype=dtype)


def test_clip_passes_the_gradient_at_the_bounds_as_torch():
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    torch_parity(lambda t: F.clip(t, -0.5, 0.5), lambda t: torch.clamp(t, -0.5, 0.5), [x])


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="low=None, high=None"):
        F.clip(sd.tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="low=nan"):
        F.clip(sd.tensor(np.zeros(3)), float("nan"), 1.0)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.10000000149011612, 0.5, 1.0, 1.5, -0.2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_without_graph_equals_the_recorded_forward_bit_for_bit(slope, dtype):
    x = np.random.default_rng(3).normal(size=(4, 5, 6)).astype(dtype) * 10
    x[0, 0, :4] = [0.0, -0.0, np.nan, -np.inf]
    with np.errstate(invalid="ignore"):                  # -inf * 0 is nan on both paths
        recorded = F.leaky_relu(sd.tensor(x, requires_grad=True), slope).data
        with sd.no_grad():
            fast = F.leaky_relu(sd.tensor(x), slope).data
    np.testing.assert_array_equal(fast, recorded)
    assert fast.dtype == dtype and np.array_equal(np.signbit(fast), np.signbit(recorded))
    np.testing.assert_array_equal(recorded[1:], np.where(x[1:] > 0, x[1:], x[1:] * dtype(slope)))
