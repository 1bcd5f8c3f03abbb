"""Few-channel convolutions: the banded (Toeplitz-over-rows) input gradient and the grouped-windows
weight gradient, each against the plain path (col2im, cols.T @ gy), finite differences and PyTorch,
and the rules that pick them."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided.functional as F  # noqa: E402
from strided.functional.banded import (band_matrices, banded_grad_input, banded_pays, grouped_forward,  # noqa: E402
                                       grouped_grad_weight, window_group)
from strided.functional.im2col import Im2col, col2im_grad_input, conv_gemm, conv_grad_weight  # noqa: E402

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("N, Hp, Wp, C, KH, KW, O, dilation", [
    (4, 14, 14, 6, 5, 5, 16, (1, 1)),     # LeNet-5's second convolution
    (3, 9, 11, 1, 3, 5, 4, (1, 1)),       # one channel, non-square kernel and image
    (2, 12, 10, 3, 3, 2, 5, (2, 3)),      # dilated
    (1, 5, 5, 2, 5, 5, 3, (1, 1)),        # a 1x1 output
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_banded_grad_input_equals_the_col2im_path(N, Hp, Wp, C, KH, KW, O, dilation, dtype):
    rng = np.random.default_rng(0)
    Ho, Wo = Hp - dilation[0] * (KH - 1), Wp - dilation[1] * (KW - 1)
    gy = rng.standard_normal((N, Ho, Wo, O)).astype(dtype)
    w = rng.standard_normal((KH, KW, C, O)).astype(dtype)
    plain = col2im_grad_input(gy, w.reshape(-1, O), (N, Hp, Wp, C), (KH, KW), (1, 1), dilation)
    banded = banded_grad_input(gy, w, (N, Hp, Wp, C), dilation)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert banded.dtype == dtype
    assert_close(banded, plain, tol, tol, "banded input gradient")


def test_band_matrix_entries_follow_the_formula():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3, 2, 4))
    Wp, Wo, dw = 8, 4, 2
    T = band_matrices(w, Wp, Wo, dw).reshape(2, Wo, 4, Wp, 2)
    expected = np.zeros_like(T)
    for i in range(2):
        for x in range(Wo):
            for j in range(3):
                expected[i, x, :, x + j * dw, :] = w[i, j].T
    assert np.array_equal(T, expected)


def test_the_rule_picks_lenets_second_convolution_and_not_wide_or_strided_ones():
    assert banded_pays((128, 14, 14, 6), (5, 5, 6, 16), (128, 14, 14, 6), (10, 10), (1, 1), 1)
    assert not banded_pays((8, 56, 56, 64), (3, 3, 64, 64), (8, 58, 58, 64), (56, 56), (1, 1), 1)   # many channels
    assert not banded_pays((8, 224, 224, 3), (7, 7, 3, 64), (8, 230, 230, 3), (112, 112), (2, 2), 1)  # stride 2
    assert not banded_pays((2, 64, 64, 3), (3, 3, 3, 8), (2, 66, 66, 3), (64, 64), (1, 1), 1)  # 22x the work
    assert not banded_pays((2, 8, 8, 4), (3, 3, 2, 4), (2, 10, 10, 4), (8, 8), (1, 1), 2)      # grouped


@pytest.mark.parametrize("N, Hp, Wp, C, KH, KW, O, r", [
    (3, 32, 32, 1, 5, 5, 6, 4),      # LeNet-5's first convolution
    (2, 14, 14, 6, 5, 5, 16, 2),     # and its second
    (2, 9, 12, 2, 3, 2, 3, 11),      # non-square kernel, r = the whole output width (11)
    (1, 6, 10, 3, 3, 3, 2, 8),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grouped_grad_weight_equals_the_plain_path(N, Hp, Wp, C, KH, KW, O, r, dtype):
    rng = np.random.default_rng(5)
    Ho, Wo = Hp - KH + 1, Wp - KW + 1
    if Wo % r:
        r = next(d for d in range(r, 0, -1) if Wo % d == 0)
    xp = rng.standard_normal((N, Hp, Wp, C)).astype(dtype)
    gy = rng.standard_normal((N, Ho, Wo, O)).astype(dtype)
    plain = conv_grad_weight(Im2col(xp, (KH, KW), (1, 1), (1, 1), (Ho, Wo)), gy, 1).reshape(KH, KW, C, O)
    grouped = grouped_grad_weight(xp, gy, (KH, KW), r)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert grouped.shape == (KH, KW, C, O) and grouped.dtype == dtype
    assert_close(grouped, plain, tol, tol, f"weight gradient, r={r}")


@pytest.mark.parametrize("shape, O, r, activation", [((3, 32, 32, 1), 6, 4, None), ((2, 14, 14, 6), 16, 2, "relu"),
                                                      ((2, 9, 12, 2), 3, 8, "relu6")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grouped_forward_equals_the_plain_path_with_bias_and_activation(shape, O, r, activation, dtype):
    rng = np.random.default_rng(6)
    xp = (rng.standard_normal(shape) * 3).astype(dtype)
    w = rng.standard_normal((5, 5, shape[-1], O)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    out = (shape[1] - 4, shape[2] - 4)
    plain = np.empty((shape[0],) + out + (O,), dtype)
    conv_gemm(Im2col(xp, (5, 5), (1, 1), (1, 1), out), w.reshape(-1, O), plain, b, activation)
    grouped = grouped_forward(xp, w, out, r, b, activation)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert grouped.shape == plain.shape and grouped.dtype == dtype
    assert_close(grouped, plain, tol, tol, f"forward, r={r}")


def test_window_group_rule():
    assert window_group((5, 5, 1, 6), (28, 28), (1, 1), (1, 1), 1) == 4      # LeNet conv1: 4 * 6 = 24 columns
    assert window_group((5, 5, 6, 16), (10, 10), (1, 1), (1, 1), 1) == 2     # LeNet conv2: 2 * 16
    assert window_group((3, 3, 4, 32), (32, 32), (1, 1), (1, 1), 1) == 1     # enough output channels already
    assert window_group((3, 3, 16, 16), (32, 32), (1, 1), (1, 1), 1) == 1    # enough input channels
    assert window_group((3, 3, 1, 6), (11, 11), (1, 1), (1, 1), 1) == 1      # 11 has no divisor 2..8
    assert window_group((5, 5, 1, 6), (28, 28), (2, 2), (1, 1), 1) == 1      # strided
    assert window_group((5, 5, 1, 6), (28, 28), (1, 1), (2, 2), 1) == 1      # dilated
    assert window_group((5, 5, 1, 6), (28, 28), (1, 1), (1, 1), 2) == 1      # grouped


@pytest.mark.parametrize("padding, dilation", [(0, 1), (1, 1), (((1, 0), (2, 1)), 1), ("same", 2)])
def test_conv2d_gradients_on_the_banded_path(padding, dilation):
    """Through F.conv2d on shapes the rule sends to the banded path: finite differences and torch."""
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 12, 8, 3)), rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    pads = {0: ((0, 0), (0, 0)), 1: ((1, 1), (1, 1)), "same": ((2, 2), (2, 2))}.get(padding, padding)
    Hp, Wp = 12 + sum(pads[0]), 8 + sum(pads[1])
    out = (Hp - dilation * 2, Wp - dilation * 2)
    assert banded_pays(x.shape, w.shape, (2, Hp, Wp, 3), out, (1, 1), 1)
    if padding in (0, 1):   # output widths 6 and 8: the weight gradient takes r windows per row
        assert window_group(w.shape, out, (1, 1), (1, 1), 1) > 1
    gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=padding, dilation=dilation), x, w, b)

    def torch_conv(x_, w_, b_):
        xp = torch.nn.functional.pad(x_, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        return torch.nn.functional.conv2d(xp, w_, b_, dilation=dilation)
    torch_parity(lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=padding, dilation=dilation), torch_conv,
                 [x, w, b], ["nhwc", "hwio", None])
