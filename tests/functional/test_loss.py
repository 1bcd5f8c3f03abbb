"""Losses: cross_entropy (integer labels, batch mean), binary_cross_entropy_with_logits,
mse_loss -- finite differences, PyTorch parity, finiteness for logits of +-1e4."""
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

EXTREME = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4], [-1e4, 5.0, -1e4]])
EXTREME_LABELS = np.array([1, 2, 2, 0])  # includes confidently wrong predictions (loss ~ 2e4)


# --------------------------------------------------------------------------- cross_entropy
@pytest.mark.parametrize("N, K", [(1, 2), (4, 3), (6, 10)], ids=["N1K2", "N4K3", "N6K10"])
def test_cross_entropy_gradcheck(N, K):
    rng = np.random.default_rng(N * K)
    logits, labels = rng.standard_normal((N, K)) * 2, rng.integers(0, K, N)
    y = gradcheck(lambda z: F.cross_entropy(z, labels), logits)
    assert y.shape == ()
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert_close(y.data, -log_p[np.arange(N), labels].mean(), 1e-14, 1e-13, "forward")


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cross_entropy_torch_parity(dtype, label_dtype):
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((8, 5)) * 3, rng.integers(0, 5, 8).astype(label_dtype)
    torch_parity(lambda z: F.cross_entropy(z, labels),
                 lambda z: TF.cross_entropy(z, torch.tensor(labels.astype(np.int64))), [logits], dtype=dtype)


def test_cross_entropy_accepts_label_tensor_and_list():
    logits = np.random.default_rng(2).standard_normal((3, 4))
    ref = F.cross_entropy(logits, np.array([0, 3, 1])).data
    assert_close(F.cross_entropy(logits, [0, 3, 1]).data, ref, 0, 0, "list labels")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cross_entropy_extreme_logits(dtype):
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        out, _ = torch_parity(lambda z: F.cross_entropy(z, EXTREME_LABELS),
                              lambda z: TF.cross_entropy(z, torch.tensor(EXTREME_LABELS)), [EXTREME], dtype=dtype)
    assert np.isfinite(out) and out > 1e3


# --------------------------------------------------------------------------- BCE with logits
def test_bce_with_logits_gradcheck():
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    y = gradcheck(F.binary_cross_entropy_with_logits, x, t)  # w.r.t. logits and targets
    s = 1 / (1 + np.exp(-x))
    assert_close(y.data, np.mean(-t * np.log(s) - (1 - t) * np.log(1 - s)), 1e-14, 1e-12, "forward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_bce_with_logits_torch_parity(dtype):
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((5, 2, 3)) * 3, (rng.uniform(0, 1, (5, 2, 3)) > 0.5).astype(np.float64)
    torch_parity(F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, [x, t], dtype=dtype)
    torch_parity(F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, [x, t], dtype=dtype,
                 requires_grad=[True, False])


def test_bce_targets_as_ndarray_constant():
    x = np.random.default_rng(5).standard_normal((3, 2))
    t = np.array([[1, 0], [0, 0], [1, 1]])  # integer targets become the logits' dtype
    y = gradcheck(lambda z: F.binary_cross_entropy_with_logits(z, t), x)
    ref = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t, dtype=torch.float64))
    assert_close(y.data, ref.numpy(), 1e-14, 1e-12, "forward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_bce_with_logits_extreme(dtype):
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        out, _ = torch_parity(F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                              [EXTREME, t], dtype=dtype)
    assert np.isfinite(out) and out > 1e3


# --------------------------------------------------------------------------- MSE
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2, 2)], ids=str)
def test_mse_gradcheck(shape):
    rng = np.random.default_rng(6)
    p, t = rng.standard_normal(shape), rng.standard_normal(shape)
    y = gradcheck(F.mse_loss, p, t)
    assert_close(y.data, np.mean((p - t) ** 2), 1e-14, 1e-13, "forward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_mse_torch_parity(dtype):
    rng = np.random.default_rng(7)
    p, t = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal((4, 3, 3, 2))
    torch_parity(F.mse_loss, TF.mse_loss, [p, t], dtype=dtype)
    torch_parity(F.mse_loss, TF.mse_loss, [p, t], dtype=dtype, requires_grad=[True, False])


def test_losses_are_scalars_and_backward_without_grad():
    rng = np.random.default_rng(8)
    z = sd.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    for loss in (F.cross_entropy(z, [1, 2, 3]), F.binary_cross_entropy_with_logits(z, np.ones((3, 4))),
                 F.mse_loss(z, np.zeros((3, 4)))):
        assert loss.shape == ()
        loss.backward()
    assert z.grad.shape == (3, 4)
