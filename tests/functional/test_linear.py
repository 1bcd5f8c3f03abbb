"""linear (Keras weight layout (in, out)) and inverted dropout."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SHAPES = {"2d": (4, 5), "3d": (2, 3, 5), "4d": (2, 2, 3, 5), "1d": (5,)}


def arrays(x_shape, out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape), rng.standard_normal((x_shape[-1], out)), rng.standard_normal(out)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_linear_gradcheck(name, bias):
    x, w, b = arrays(SHAPES[name], seed=1)
    if bias:
        y = gradcheck(F.linear, x, w, b)
        assert_close(y.data, x @ w + b, 1e-14, 1e-13, "forward")
    else:
        y = gradcheck(F.linear, x, w)
        assert_close(y.data, x @ w, 1e-14, 1e-13, "forward")
    assert y.shape == SHAPES[name][:-1] + (3,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_linear_torch_parity(name, dtype):
    x, w, b = arrays(SHAPES[name], out=7, seed=2)
    torch_parity(F.linear, TF.linear, [x, w, b], [None, "io", None], dtype=dtype)  # torch weight = w.T
    torch_parity(lambda x, w: F.linear(x, w), lambda x, w: TF.linear(x, w), [x, w], [None, "io"], dtype=dtype)


def test_linear_constant_input_only_weight_grads():
    x, w, b = arrays((4, 5), seed=3)
    wt, bt = sd.tensor(w, requires_grad=True), sd.tensor(b, requires_grad=True)
    xt = sd.tensor(x)
    F.linear(xt, wt, bt).backward(np.ones((4, 3)))
    assert xt.grad is None
    assert_close(wt.grad, x.T @ np.ones((4, 3)), 1e-14, 1e-14, "w grad")
    assert_close(bt.grad, np.full(3, 4.0), 0, 0, "b grad")


# --------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_dropout_training_statistics(p):
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(200, 500))  # no zeros in x
    y = F.dropout(x, p=p, training=True, rng=np.random.default_rng(1)).data
    dropped = y == 0
    # 100k Bernoulli(p) draws: the fraction is within 5 standard deviations of p
    sd_frac = np.sqrt(p * (1 - p) / x.size)
    assert abs(dropped.mean() - p) < 5 * sd_frac, dropped.mean()
    assert_close(y[~dropped], x[~dropped] / (1 - p), 1e-15, 1e-15, "kept values scaled by 1/(1-p)")


def test_dropout_mean_preserved():
    x = np.ones((400, 500))
    y = F.dropout(x, p=0.4, rng=np.random.default_rng(2)).data
    assert abs(y.mean() - 1.0) < 0.01


def test_dropout_seeded_rng_is_reproducible():
    x = np.ones((10, 10))
    a = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    b = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    c = F.dropout(x, 0.5, rng=np.random.default_rng(8)).data
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_dropout_eval_is_identity(p):
    x = np.random.default_rng(3).standard_normal((4, 5))
    t = sd.tensor(x.copy(), requires_grad=True)
    y = F.dropout(t, p=p, training=False)
    assert_close(y.data, x, 0, 0, "eval output")
    (y * 1.0).backward(np.full((4, 5), 2.0))
    assert_close(t.grad, np.full((4, 5), 2.0), 0, 0, "eval gradient")


def test_dropout_p_zero_training_is_identity():
    x = np.random.default_rng(3).standard_normal((4, 5))
    assert_close(F.dropout(x, p=0.0, training=True).data, x, 0, 0, "p = 0")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_gradient_is_mask_over_keep_probability(dtype):
    p = 0.3
    x = np.random.default_rng(4).uniform(1.0, 2.0, size=(30, 40)).astype(dtype)
    t = sd.tensor(x, requires_grad=True)
    y = F.dropout(t, p=p, rng=np.random.default_rng(5))
    assert y.dtype == dtype
    gy = np.random.default_rng(6).standard_normal(x.shape).astype(dtype)
    y.backward(gy)
    mask = (y.data != 0).astype(np.float64)
    assert 0 < mask.mean() < 1
    tol = 1e-15 if dtype == np.float64 else 1e-6
    assert_close(t.grad, gy * mask / (1 - p), tol, tol, "grad = gy * mask / (1 - p)")
    # the gradient is the derivative of the (linear) forward: numerical check with the same mask
    eps = 1e-3
    bumped = F.dropout(x + eps, p=p, rng=np.random.default_rng(5)).data
    assert_close((bumped - y.data) / eps, mask / (1 - p), 1e-3, 1e-3, "forward slope")
