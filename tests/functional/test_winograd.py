"""Winograd F(2x2, 3x3): the transforms against their matrix definition, the convolution against
the im2col path and PyTorch (odd and even sides, bias, activations, many blocks, threads), the
rule that picks it, and gradients through F.conv2d on the Winograd path (finite differences)."""
import importlib
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided.functional as F  # noqa: E402
from strided.functional import parallel  # noqa: E402
from strided.functional import winograd  # noqa: E402
from strided.functional.conv import pad_spatial  # noqa: E402
from strided.functional.im2col import Im2col, conv_gemm, conv_grad_weight  # noqa: E402

torch = pytest.importorskip("torch")
conv_module = importlib.import_module("strided.functional.conv")   # the module (F.conv is the function)

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def plain_conv(xp, w, b=None, activation=None):
    """The im2col path on the same padded input."""
    N, Hp, Wp, _ = xp.shape
    y = np.empty((N, Hp - 2, Wp - 2, w.shape[-1]), xp.dtype)
    conv_gemm(Im2col(xp, (3, 3), (1, 1), (1, 1), (Hp - 2, Wp - 2)), w.reshape(-1, w.shape[-1]), y, b, activation)
    return y


def test_weight_transform_is_g_g_gt():
    rng = np.random.default_rng(0)
    for shape in [(3, 3, 5, 7), (3, 3, 300, 40), (3, 3, 2, 5000)]:   # the last two: several channel passes
        w = rng.standard_normal(shape)
        expected = np.einsum("ai,ijco,bj->abco", winograd.G_MATRIX, w, winograd.G_MATRIX)
        assert_close(winograd.winograd_weights(w), expected.reshape(16, shape[2], shape[3]), 1e-14, 1e-14)


def test_one_tile_by_the_textbook_formula():
    """y = A^T [(G g G^T) * (B^T d B)] A for a single 4x4 tile and one channel pair, written out."""
    rng = np.random.default_rng(1)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    expected = A_T @ ((winograd.G_MATRIX @ g @ winograd.G_MATRIX.T) * (B_T @ d @ B_T.T)) @ A_T.T
    direct = np.array([[np.sum(d[r:r + 3, c:c + 3] * g) for c in range(2)] for r in range(2)])
    assert_close(expected, direct, 1e-13, 1e-13)        # the identity itself
    y = winograd.winograd_conv(d[None, :, :, None], g[:, :, None, None])
    assert_close(y[0, :, :, 0], direct, 1e-13, 1e-13)


@pytest.mark.parametrize("N, H, W, C, O", [(2, 8, 8, 3, 5), (1, 7, 9, 4, 2), (3, 5, 6, 2, 3), (1, 1, 1, 3, 4),
                                           (2, 12, 10, 16, 8)])
@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_the_im2col_path(N, H, W, C, O, activation, dtype):
    rng = np.random.default_rng(2)
    xp = pad_spatial(rng.standard_normal((N, H, W, C)).astype(dtype) * 3, ((1, 1), (1, 1)))
    w, b = rng.standard_normal((3, 3, C, O)).astype(dtype), rng.standard_normal(O).astype(dtype)
    y = winograd.winograd_conv(xp, w, b, activation)
    assert y.shape == (N, H, W, O) and y.dtype == dtype and y.flags.c_contiguous
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert_close(y, plain_conv(xp, w, b, activation), tol, tol)


@pytest.fixture
def small_blocks_on_threads(monkeypatch, request):
    """Blocks of 5 tiles (partial tile rows) and every loop split over ``request.param`` threads."""
    monkeypatch.setattr(winograd, "BLOCK_TILE_BYTES", 16 * 6 * 8 * 5)
    old = parallel.get_num_threads(), parallel.get_parallel_threshold()
    parallel.set_num_threads(request.param)
    parallel.set_parallel_threshold(0)
    yield
    parallel.set_num_threads(old[0])
    parallel.set_parallel_threshold(old[1])


@pytest.mark.parametrize("small_blocks_on_threads", [1, 2], indirect=True)
def test_many_blocks_and_threads_give_the_same_numbers(small_blocks_on_threads):
    """Blocks of a few tile rows (and of whole images) split over threads: same output as one block."""
    rng = np.random.default_rng(3)
    xp = pad_spatial(rng.standard_normal((3, 14, 10, 6)), ((1, 1), (1, 1)))
    w = rng.standard_normal((3, 3, 6, 4))
    split = winograd.winograd_conv(xp, w)
    assert_close(split, plain_conv(xp, w), 1e-12, 1e-12)
    assert_close(split, plain_conv(xp, w), 1e-12, 1e-12)


@pytest.mark.parametrize("N, H, W, C, O", [(2, 8, 8, 3, 5), (1, 7, 9, 4, 2), (3, 5, 6, 2, 3), (1, 1, 1, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weight_gradient_equals_the_im2col_path(N, H, W, C, O, dtype):
    rng = np.random.default_rng(7)
    xp = pad_spatial(rng.standard_normal((N, H, W, C)).astype(dtype), ((1, 1), (1, 1)))
    gy = rng.standard_normal((N, H, W, O)).astype(dtype)
    expected = conv_grad_weight(Im2col(xp, (3, 3), (1, 1), (1, 1), (H, W)), gy, 1).reshape(3, 3, C, O)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert_close(winograd.winograd_grad_weight(xp, gy), expected, tol, tol)


@pytest.mark.parametrize("small_blocks_on_threads", [1, 2], indirect=True)
def test_weight_gradient_blocks_and_threads(small_blocks_on_threads):
    rng = np.random.default_rng(8)
    xp = pad_spatial(rng.standard_normal((3, 14, 10, 6)), ((1, 1), (1, 1)))
    gy = rng.standard_normal((3, 14, 10, 4))
    expected = conv_grad_weight(Im2col(xp, (3, 3), (1, 1), (1, 1), (14, 10)), gy, 1).reshape(3, 3, 6, 4)
    assert_close(winograd.winograd_grad_weight(xp, gy), expected, 1e-12, 1e-12)


def test_matches_torch_in_float32_at_network_sizes():
    """A VGG-like layer (128 -> 128 channels, 28x28, batch 2): error of float32 rounding only."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 28, 28, 128)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 128, 128)) / 34).astype(np.float32)
    y = winograd.winograd_conv(pad_spatial(x, ((1, 1), (1, 1))), w)
    t = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(w).permute(3, 2, 0, 1),
                                   padding=1).permute(0, 2, 3, 1).numpy()
    assert np.abs(y - t).max() / np.abs(t).max() < 1e-5


def test_the_rule():
    pays = winograd.winograd_pays
    assert pays((8, 28, 28, 128), (3, 3, 128, 128), (28, 28), (1, 1), (1, 1), 1)
    assert pays((1, 56, 56, 256), (3, 3, 256, 512), (56, 56), (1, 1), (1, 1), 1)
    assert not pays((8, 28, 28, 64), (3, 3, 64, 128), (28, 28), (1, 1), (1, 1), 1)      # too few channels
    assert not pays((8, 28, 28, 128), (3, 3, 128, 64), (28, 28), (1, 1), (1, 1), 1)
    assert not pays((1, 14, 14, 512), (3, 3, 512, 512), (14, 14), (1, 1), (1, 1), 1)    # 49 tiles
    assert not pays((8, 28, 28, 128), (3, 3, 128, 128), (14, 14), (2, 2), (1, 1), 1)    # strided
    assert not pays((8, 28, 28, 128), (3, 3, 128, 128), (24, 24), (1, 1), (2, 2), 1)    # dilated
    assert not pays((8, 28, 28, 128), (3, 3, 64, 128), (28, 28), (1, 1), (1, 1), 2)     # grouped
    assert not pays((8, 28, 28, 128), (5, 5, 128, 128), (24, 24), (1, 1), (1, 1), 1)    # 5x5
    assert not pays((8, 28, 28, 28, 128), (3, 3, 3, 128, 128), (28, 28, 28), (1,) * 3, (1,) * 3, 1)   # 3-D


@pytest.fixture
def winograd_calls(monkeypatch):
    """Send small convolutions to the Winograd path, and count the calls."""
    calls, grads = [], []
    real, real_gw = winograd.winograd_conv, winograd.winograd_grad_weight
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd, "MIN_TILES", 1)
    monkeypatch.setattr(conv_module, "winograd_conv", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    monkeypatch.setattr(conv_module, "winograd_grad_weight",
                        lambda *a, **k: grads.append(a[0].shape) or real_gw(*a, **k))
    return calls, grads


@pytest.mark.parametrize("padding", [0, 1, ((2, 0), (1, 1))])
def test_conv2d_gradients_on_the_winograd_path(winograd_calls, padding):
    """Through F.conv2d: the forward and the input gradient (a 3x3 stride-1 convolution itself) take
    the Winograd path, the weight gradient its adjoint; finite differences in float64 and PyTorch agree."""
    forward_calls, weight_grads = winograd_calls
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=padding), x, w, b)
    assert len(forward_calls) >= 2     # forward and input gradient
    assert weight_grads
    pads = {0: ((0, 0), (0, 0)), 1: ((1, 1), (1, 1))}.get(padding, padding)

    def torch_conv(x_, w_, b_):
        xp = torch.nn.functional.pad(x_, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        return torch.nn.functional.conv2d(xp, w_, b_)
    torch_parity(lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=padding), torch_conv,
                 [x, w, b], ["nhwc", "hwio", None])


def test_conv2d_with_activation_on_the_winograd_path(winograd_calls):
    forward_calls, weight_grads = winograd_calls
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 6, 6, 3)), rng.standard_normal((3, 3, 3, 5)), rng.standard_normal(5)
    gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=1, activation="relu"), x, w, b)
    assert forward_calls and weight_grads
