"""batch_norm: finite differences (training and eval) and PyTorch parity, including the
in-place running-statistics update (unbiased variance) over several steps."""
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

SHAPES = {"nhwc": (2, 3, 3, 3), "nc": (5, 3), "nhwc-N1": (1, 2, 3, 2), "nwc": (3, 4, 2)}
LAYOUT = {"nhwc": "nhwc", "nc": None, "nhwc-N1": "nhwc", "nwc": "nwc"}


def arrays(shape, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[-1]
    x = rng.standard_normal(shape) * 2.0 + rng.standard_normal(C)  # non-zero channel means
    gamma = rng.uniform(0.5, 1.5, C)
    beta = rng.standard_normal(C)
    return x, gamma, beta


@pytest.mark.parametrize("name", list(SHAPES))
def test_batch_norm_training_gradcheck(name):
    x, g, b = arrays(SHAPES[name], seed=1)
    y = gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), x, g, b,
                  atol=1e-6, rtol=1e-5)
    # forward from the definition
    axes = tuple(range(x.ndim - 1))
    ref = (x - x.mean(axes)) / np.sqrt(x.var(axes) + 1e-5) * g + b
    assert_close(y.data, ref, 1e-12, 1e-12, "forward")


@pytest.mark.parametrize("name", ["nhwc", "nc"])
def test_batch_norm_eval_gradcheck(name):
    x, g, b = arrays(SHAPES[name], seed=2)
    C = x.shape[-1]
    rng = np.random.default_rng(3)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    y = gradcheck(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False), x, g, b)
    assert_close(y.data, (x - rm) / np.sqrt(rv + 1e-5) * g + b, 1e-12, 1e-12, "forward")


def test_batch_norm_eval_does_not_touch_running_stats():
    x, g, b = arrays((2, 3, 3, 3))
    rm, rv = np.zeros(3), np.ones(3)
    F.batch_norm(x, rm, rv, g, b, training=False)
    assert np.all(rm == 0) and np.all(rv == 1)


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_batch_norm_eps(eps):
    x, g, b = arrays((4, 3), seed=4)
    gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, eps=eps), x, g, b)
    torch_parity(lambda x, g, b: F.batch_norm(x, None, None, g, b, eps=eps),
                 lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True, eps=eps), [x, g, b])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("name", ["nhwc", "nc"])
def test_batch_norm_training_matches_torch_over_steps(name, momentum, dtype):
    shape, layout = SHAPES[name], LAYOUT[name]
    C = shape[-1]
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    trm, trv = torch.zeros(C, dtype=torch.from_numpy(rm).dtype), torch.ones(C, dtype=torch.from_numpy(rv).dtype)
    tol = dict(atol=1e-10, rtol=1e-10) if dtype == np.float64 else dict(atol=1e-5, rtol=1e-4)
    for step in range(3):
        x, g, b = arrays(shape, seed=10 + step)
        torch_parity(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=True, momentum=momentum),
                     lambda x, g, b: TF.batch_norm(x, trm, trv, g, b, training=True, momentum=momentum),
                     [x, g, b], [layout, None, None], dtype=dtype, seed=step, **tol)
        assert rm.dtype == dtype and rv.dtype == dtype
        assert_close(rm, trm.numpy(), tol["atol"], tol["rtol"], f"running_mean after step {step}")
        assert_close(rv, trv.numpy(), tol["atol"], tol["rtol"], f"running_var after step {step}")
    # eval with the accumulated statistics
    x, g, b = arrays(shape, seed=99)
    torch_parity(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False),
                 lambda x, g, b: TF.batch_norm(x, trm, trv, g, b, training=False),
                 [x, g, b], [layout, None, None], dtype=dtype, **tol)


def test_running_stats_formula():
    """One step written out: (1 - m) * running + m * batch, unbiased variance."""
    x, g, b = arrays((2, 3, 2, 4), seed=5)
    rm, rv = np.full(4, 0.5), np.full(4, 2.0)
    F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.3)
    flat = x.reshape(-1, 4)
    assert_close(rm, 0.7 * 0.5 + 0.3 * flat.mean(0), 1e-14, 1e-14, "running_mean")
    assert_close(rv, 0.7 * 2.0 + 0.3 * flat.var(0, ddof=1), 1e-14, 1e-14, "running_var")


def test_running_stats_updated_in_place():
    x, g, b = arrays((4, 3), seed=6)
    rm, rv = np.zeros(3), np.ones(3)
    ids = (id(rm), id(rv))
    F.batch_norm(x, rm, rv, g, b)
    assert (id(rm), id(rv)) == ids
    assert not np.allclose(rm, 0)


def test_batch_norm_default_affine_matches_torch():
    x = arrays((2, 3, 3, 3), seed=7)[0]
    torch_parity(lambda x: F.batch_norm(x), lambda x: TF.batch_norm(x, None, None, training=True),
                 [x], ["nhwc"])


def test_batch_norm_input_only_or_params_only():
    x, g, b = arrays((3, 2, 2, 3), seed=8)
    gy = np.random.default_rng(0).standard_normal(x.shape)
    full = [sd.tensor(a.copy(), requires_grad=True) for a in (x, g, b)]
    F.batch_norm(full[0], None, None, full[1], full[2]).backward(gy)
    xt = sd.tensor(x.copy(), requires_grad=True)
    F.batch_norm(xt, None, None, g, b).backward(gy)
    assert_close(xt.grad, full[0].grad, 1e-14, 1e-14, "x only")
    gt, bt = sd.tensor(g.copy(), requires_grad=True), sd.tensor(b.copy(), requires_grad=True)
    F.batch_norm(x, None, None, gt, bt).backward(gy)
    assert_close(gt.grad, full[1].grad, 1e-14, 1e-14, "gamma only")
    assert_close(bt.grad, full[2].grad, 1e-14, 1e-14, "beta only")
    gt = sd.tensor(g.copy(), requires_grad=True)
    F.batch_norm(x, np.zeros(3), np.ones(3), gt, b, training=False).backward(gy)
    assert_close(gt.grad, (gy * x / np.sqrt(1 + 1e-5)).reshape(-1, 3).sum(0), 1e-12, 1e-12, "eval gamma only")


def test_one_pass_moments_match_two_pass_and_stay_stable():
    """The block-wise one-pass mean/M2 (Chan et al.'s combination) against NumPy's two-pass
    float64 statistics, on data whose mean is 1000x its spread (where E[x^2] - E[x]^2 fails)."""
    from strided.functional.norm import column_moments
    rng = np.random.default_rng(0)
    x = (1000.0 + rng.standard_normal((3000, 48))).astype(np.float32)
    mean, m2 = column_moments(x, x[0].nbytes)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=0), rtol=1e-6)     # float32 block sums
    np.testing.assert_allclose(m2 / len(x), ref.var(axis=0), rtol=1e-3)
    # through the op: running_var gets the unbiased batch variance
    rv = np.ones(48, np.float32)
    F.batch_norm(x, np.zeros(48, np.float32), rv, training=True, momentum=1.0)
    np.testing.assert_allclose(rv, ref.var(axis=0, ddof=1), rtol=1e-3)
