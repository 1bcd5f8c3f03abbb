"""upsample and reorg: finite differences, PyTorch parity for upsample (F.interpolate
nearest), and for reorg a plain loop port of darknet's ``reorg_cpu`` (the oracle)."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
from strided.functional.resample import reorg, upsample  # noqa: E402

torch = pytest.importorskip("torch")


def darknet_reorg_loop(x_nchw, stride):
    """Loop port of darknet's ``reorg_cpu(x, w, h, c, batch, stride, forward=0, out)`` as
    ``forward_reorg_layer`` calls it, on a flat NCHW buffer; the result is read as
    ``(N, C*s*s, H/s, W/s)`` like the next darknet layer does."""
    N, C, H, W = x_nchw.shape
    x = x_nchw.reshape(-1)
    out = np.zeros_like(x)
    out_c = C // (stride * stride)
    for b in range(N):
        for k in range(C):
            for j in range(H):
                for i in range(W):
                    in_index = i + W * (j + H * (k + C * b))
                    c2 = k % out_c
                    offset = k // out_c
                    w2 = i * stride + offset % stride
                    h2 = j * stride + offset // stride
                    out_index = w2 + W * stride * (h2 + H * stride * (c2 + out_c * b))
                    out[in_index] = x[out_index]
    return out.reshape(N, C * stride * stride, H // stride, W // stride)


@pytest.mark.parametrize("shape,stride", [((2, 4, 6, 8), 2), ((1, 6, 6, 9), 3), ((1, 2, 4, 4), 2), ((1, 4, 4, 1), 1)])
def test_reorg_matches_darknet_loop(shape, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = darknet_reorg_loop(x.transpose(0, 3, 1, 2).copy(), stride).transpose(0, 2, 3, 1)
    y = reorg(x, stride)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.data, expected)


def test_reorg_is_a_permutation_and_gradients():
    x = np.arange(2 * 4 * 4 * 8, dtype=np.float64).reshape(2, 4, 4, 8)
    y = reorg(x, 2).data
    assert sorted(y.ravel().tolist()) == sorted(x.ravel().tolist())
    gradcheck(lambda t: reorg(t, 2), np.random.default_rng(0).standard_normal((2, 4, 6, 8)))


def test_reorg_backward_is_inverse_permutation_of_loop():
    # the gradient of a permutation sends each output gradient back to the input it came from
    rng = np.random.default_rng(2)
    x = sd.tensor(rng.standard_normal((1, 4, 4, 8)), requires_grad=True)
    y = reorg(x, 2)
    ids = np.arange(x.data.size, dtype=np.float64).reshape(x.shape)
    moved = darknet_reorg_loop(ids.transpose(0, 3, 1, 2).copy(), 2).transpose(0, 2, 3, 1)  # input id per output slot
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    expected = np.zeros(x.data.size)
    expected[moved.ravel().astype(int)] = gy.ravel()
    np.testing.assert_array_equal(x.grad, expected.reshape(x.shape))


def test_reorg_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        reorg(np.zeros((1, 5, 4, 4), np.float32), 2)
    with pytest.raises(ValueError, match="divisible"):
        reorg(np.zeros((1, 4, 4, 6), np.float32), 2)
    with pytest.raises(ValueError, match="stride"):
        reorg(np.zeros((1, 4, 4, 4), np.float32), 0)
    with pytest.raises(ValueError, match="4-D"):
        reorg(np.zeros((4, 4, 4), np.float32), 2)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_upsample_matches_torch(stride):
    x = np.random.default_rng(stride).standard_normal((2, 3, 5, 4))
    torch_parity(lambda t: upsample(t, stride),
                 lambda t: torch.nn.functional.interpolate(t, scale_factor=stride, mode="nearest"),
                 [x], ["nhwc"])


def test_upsample_scale_and_gradients():
    x = np.random.default_rng(0).standard_normal((1, 3, 2, 2))
    y = upsample(x, 2, scale=0.5).data
    np.testing.assert_array_equal(y[0, 5, 3], 0.5 * x[0, 2, 1])
    gradcheck(lambda t: upsample(t, 2, scale=0.5), x)
    gradcheck(lambda t: upsample(t, 3), x)
    assert upsample(x.astype(np.float32), 2).dtype == np.float32


def test_upsample_rejects_bad_input():
    with pytest.raises(ValueError, match="stride=0"):
        upsample(np.zeros((1, 2, 2, 1), np.float32), 0)
    with pytest.raises(ValueError, match="4-D"):
        upsample(np.zeros((2, 2, 1), np.float32), 2)
