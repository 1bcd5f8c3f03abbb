"""max_pool2d, avg_pool2d, global_avg_pool2d: finite differences on tie-free inputs,
PyTorch parity (explicit -inf / count-excluding padding for 'same'), the tie rule,
and the loop-based course reference."""
import math
import os
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, distinct, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def tf_same(n, k, s):
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def resolved(padding, spatial, kernel, stride):
    if padding == "same":
        return tuple(tf_same(n, k, s) for n, k, s in zip(spatial, kernel, stride))
    return ((padding, padding),) * 2


def torch_pool(kind, kernel, stride, pads):
    """PyTorch pooling on explicitly padded input: -inf for max; for average the
    window sum divided by the number of real pixels (a padded mask of ones)."""
    flat = [pads[1][0], pads[1][1], pads[0][0], pads[0][1]]

    def fn(x):
        if kind == "max":
            return TF.max_pool2d(TF.pad(x, flat, value=-math.inf), kernel, stride)
        ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
        total = TF.avg_pool2d(TF.pad(x, flat), kernel, stride)
        count = TF.avg_pool2d(TF.pad(ones, flat), kernel, stride)
        return total / count

    return fn


CASES = []
for k in (1, 2, 3):
    for s in (None, 1, 2, 3):
        for p in (0, 1, "same"):
            if p == 1 and k < 2:
                continue  # padding must be at most half the kernel
            CASES.append(pytest.param(k, s, p, id=f"k{k}-s{s or 'k'}-p{p}"))
CASES.append(pytest.param((2, 3), (1, 2), "same", id="k2x3-s1x2-same"))
CASES.append(pytest.param((3, 2), (2, 1), (1, 0), id="k3x2-s2x1-p1x0"))


def _args(kernel, stride, padding):
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = k if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    return k, s


@pytest.mark.parametrize("kernel, stride, padding", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gradcheck(kind, kernel, stride, padding):
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    x = distinct((2, 7, 6, 2), seed=zlib.crc32(f"{kind}{kernel}{stride}{padding}".encode()) % 1000)
    y = gradcheck(lambda t: fn(t, kernel, stride, padding), x)
    k, s = _args(kernel, stride, padding)
    pads = resolved(padding, (7, 6), k, s) if not isinstance(padding, tuple) else tuple((p, p) for p in padding)
    assert y.shape[1:3] == tuple((n + pb + pa - kk) // ss + 1 for n, kk, ss, (pb, pa) in zip((7, 6), k, s, pads))


@pytest.mark.parametrize("kernel, stride, padding", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_torch_parity(kind, kernel, stride, padding):
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    k, s = _args(kernel, stride, padding)
    pads = resolved(padding, (8, 7), k, s) if not isinstance(padding, tuple) else tuple((p, p) for p in padding)
    x = distinct((2, 8, 7, 3), seed=5)
    for dtype in (np.float64, np.float32):
        torch_parity(lambda t: fn(t, kernel, stride, padding), torch_pool(kind, k, s, pads), [x], ["nhwc"],
                     dtype=dtype)


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 1), (3, 1, 1), (3, 2, 1), (2, 1, 0), (3, 3, 0)],
                         ids=["k2-p1", "k3-s1-p1", "k3-s2-p1", "k2-s1", "k3"])
def test_avg_pool_matches_torch_count_include_pad_false(kernel, stride, padding):
    """Symmetric padding: torch's own count_include_pad=False path."""
    x = distinct((2, 7, 7, 2), seed=1)
    torch_parity(lambda t: F.avg_pool2d(t, kernel, stride, padding),
                 lambda t: TF.avg_pool2d(t, kernel, stride, padding, count_include_pad=False), [x], ["nhwc"])


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 1), (3, 1, 1), (3, 2, 1), (2, 1, 0)],
                         ids=["k2-p1", "k3-s1-p1", "k3-s2-p1", "k2-s1"])
def test_max_pool_matches_torch_padding(kernel, stride, padding):
    x = distinct((2, 7, 7, 2), seed=2) - 100.0  # all negative: zero padding would win, -inf must not
    torch_parity(lambda t: F.max_pool2d(t, kernel, stride, padding),
                 lambda t: TF.max_pool2d(t, kernel, stride, padding), [x], ["nhwc"])


def test_avg_pool_padding_excluded_from_count():
    x = np.ones((1, 4, 4, 1))
    y = F.avg_pool2d(x, 3, 1, 1)
    assert_close(y.data, np.ones((1, 4, 4, 1)), 0, 1e-15, "mean of ones is one everywhere")


def test_max_pool_tie_goes_to_first_in_row_major_order():
    # window [[1, 5], [5, 0]] (first max at (0, 1)); window [[5, 5], [5, 5]] (first at (0, 0))
    x = np.array([[1.0, 5.0, 5.0, 5.0],
                  [5.0, 0.0, 5.0, 5.0]]).reshape(1, 2, 4, 1)
    t = sd.tensor(x.copy(), requires_grad=True)
    y = F.max_pool2d(t, 2)
    y.backward(np.array([[[[3.0], [7.0]]]]))
    expected = np.zeros((1, 2, 4, 1))
    expected[0, 0, 1, 0] = 3.0
    expected[0, 0, 2, 0] = 7.0
    assert_close(t.grad, expected, 0, 0, "tie rule")
    tt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    TF.max_pool2d(tt, 2).backward(torch.tensor([[[[3.0, 7.0]]]], dtype=torch.float64))
    assert_close(t.grad, tt.grad.numpy().transpose(0, 2, 3, 1), 0, 0, "torch")


@pytest.mark.parametrize("stride", [1, 2], ids=["overlap", "no-overlap"])
def test_max_pool_ties_match_torch(stride):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(2, 6, 6, 3)).astype(np.float64)  # many ties
    torch_parity(lambda t: F.max_pool2d(t, 2, stride), lambda t: TF.max_pool2d(t, 2, stride), [x], ["nhwc"])


def test_max_pool_large_window():
    x = distinct((1, 20, 20, 2), seed=4)
    torch_parity(lambda t: F.max_pool2d(t, 20), lambda t: TF.max_pool2d(t, 20), [x], ["nhwc"])


def test_max_pool_16x16_window():
    x = distinct((1, 16, 16, 2), seed=4)
    torch_parity(lambda t: F.max_pool2d(t, 16), lambda t: TF.max_pool2d(t, 16), [x], ["nhwc"])


def test_pool_dtype_and_no_grad():
    x = distinct((1, 4, 4, 2)).astype(np.float32)
    for fn in (F.max_pool2d, F.avg_pool2d):
        t = sd.tensor(x, requires_grad=True)
        assert fn(t, 2).dtype == np.float32
        with sd.no_grad():
            y = fn(t, 2)
        assert not y.requires_grad
        assert_close(y.data, fn(x, 2).data, 0, 0, "no_grad forward equals recorded forward")


# --------------------------------------------------------------------------- tiled max pooling (stride == kernel)
def _ties_and_signed_zeros(shape, dtype, seed=0):
    """Values in {-1, -0, +0, 1, 2}: ties everywhere, and zeros of both signs."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 3, size=shape).astype(dtype)
    zeros = x == 0
    x[zeros] *= rng.choice(np.array([-1.0, 1.0], dtype=dtype), size=int(zeros.sum()))
    return x


def _both_max_pool_paths(x, kernel, padding=0):
    """(y, dL/dx) from MaxPool2d's tiled path and from its general path, same upstream gradient."""
    from strided.functional.pool import MaxPool2d, _pool_args

    results = []
    for tiled in (True, False):
        t = sd.tensor(x.copy(), requires_grad=True)
        _, k, s, pads, out = _pool_args(t, kernel, None, padding, "max_pool2d")
        op = MaxPool2d(k, s, pads, out)
        assert op.tiled, "stride == kernel must take the tiled path"
        op.tiled = tiled
        y = op(t)
        y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype))
        results.append((y.data, t.grad))
    return results


TILED = [
    pytest.param(2, (2, 7, 7, 3), 0, id="k2-7x7-odd"),
    pytest.param(2, (3, 8, 6, 6), 0, id="k2-8x6"),
    pytest.param(3, (2, 8, 7, 2), 0, id="k3-8x7"),
    pytest.param(3, (2, 9, 9, 1), 0, id="k3-9x9-C1"),
    pytest.param((2, 3), (2, 7, 8, 5), 0, id="k2x3"),
    pytest.param((3, 1), (1, 6, 5, 4), 0, id="k3x1"),
    pytest.param(1, (2, 3, 4, 2), 0, id="k1"),
    pytest.param(2, (2, 7, 7, 3), 1, id="k2-p1"),
    pytest.param(2, (2, 7, 6, 3), "same", id="k2-same"),
    pytest.param(2, (1, 6, 40, 8), 0, id="k2-wide-uint16-taps"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kernel, shape, padding", TILED)
def test_tiled_max_pool_equals_general_path_bit_for_bit(kernel, shape, padding, dtype):
    """Ties everywhere: same winners (so the same gradient) and the same output bits, -0.0 included."""
    x = _ties_and_signed_zeros(shape, dtype, seed=sum(shape))
    (y_fast, g_fast), (y_ref, g_ref) = _both_max_pool_paths(x, kernel, padding)
    assert y_fast.dtype == y_ref.dtype == dtype and g_fast.dtype == dtype
    assert np.array_equal(y_fast, y_ref) and np.array_equal(np.signbit(y_fast), np.signbit(y_ref))
    assert np.array_equal(g_fast, g_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kernel, shape, padding", [TILED[0], TILED[2], TILED[4], TILED[7]])
def test_tiled_max_pool_equals_general_path_with_nan(kernel, shape, padding, dtype):
    """NaN follows the general path's rule too: kept as a window's first number, skipped elsewhere."""
    x = _ties_and_signed_zeros(shape, dtype, seed=3)
    x[np.random.default_rng(5).random(shape) < 0.1] = np.nan
    (y_fast, g_fast), (y_ref, g_ref) = _both_max_pool_paths(x, kernel, padding)
    assert np.isnan(y_ref).any() and not np.isnan(y_ref).all()
    assert np.array_equal(y_fast, y_ref, equal_nan=True) and np.array_equal(np.signbit(y_fast), np.signbit(y_ref))
    assert np.array_equal(g_fast, g_ref)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kernel, shape", [(2, (2, 7, 7, 3)), (3, (2, 8, 7, 2)), ((2, 3), (2, 7, 8, 5))],
                         ids=["k2-7x7", "k3-8x7", "k2x3"])
def test_tiled_max_pool_ties_match_torch(kernel, shape, dtype):
    x = np.random.default_rng(4).integers(0, 3, size=shape).astype(np.float64)
    torch_parity(lambda t: F.max_pool2d(t, kernel), lambda t: TF.max_pool2d(t, kernel), [x], ["nhwc"],
                 dtype=dtype)


def test_tiled_max_pool_many_blocks_and_strided_input():
    """Large enough to be split into several blocks over the threads; a non-contiguous input."""
    x = _ties_and_signed_zeros((24, 64, 64, 32), np.float32, seed=9)
    x[5, 10, 11, 3] = np.nan  # one block takes the NaN-safe way, the others not
    (y_fast, g_fast), (y_ref, g_ref) = _both_max_pool_paths(x, 2)
    assert np.array_equal(y_fast, y_ref, equal_nan=True) and np.array_equal(g_fast, g_ref)
    x[5, 10, 11, 3] = 0.0

    strided_x = np.ascontiguousarray(x[:4].transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # W-major memory
    assert not strided_x.flags.c_contiguous
    results = []
    for data in (strided_x, np.ascontiguousarray(strided_x)):
        t = sd.tensor(data, requires_grad=True)
        y = F.max_pool2d(t, 2)
        y.backward(np.random.default_rng(0).standard_normal(y.shape).astype(np.float32))
        results.append((y.data, t.grad))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])


def test_tiled_max_pool_no_grad_equals_recorded():
    x = _ties_and_signed_zeros((3, 9, 10, 4), np.float64, seed=2)
    with sd.no_grad():
        y0 = F.max_pool2d(x, 3).data
    assert_close(y0, F.max_pool2d(sd.tensor(x, requires_grad=True), 3).data, 0, 0, "no_grad forward")


# --------------------------------------------------------------------------- global average pooling
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_avg_pool_gradcheck(keepdims):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 3))
    y = gradcheck(lambda t: F.global_avg_pool2d(t, keepdims=keepdims), x)
    assert y.shape == ((2, 1, 1, 3) if keepdims else (2, 3))
    assert_close(y.data.reshape(2, 3), x.mean(axis=(1, 2)), 1e-15, 1e-14, "forward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_global_avg_pool_torch(dtype):
    x = np.random.default_rng(1).standard_normal((3, 5, 4, 6))
    torch_parity(lambda t: F.global_avg_pool2d(t), lambda t: t.mean(dim=(2, 3)), [x], ["nhwc"],
                 out_layout=None, dtype=dtype)
    torch_parity(lambda t: F.global_avg_pool2d(t, keepdims=True),
                 lambda t: TF.adaptive_avg_pool2d(t, 1), [x], ["nhwc"], dtype=dtype)


# --------------------------------------------------------------------------- course reference
@pytest.mark.parametrize("f, stride", [(2, 2), (3, 1), (3, 2), (2, 1)], ids=["f2s2", "f3s1", "f3s2", "f2s1"])
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pool_matches_course(mode, f, stride):
    course = pytest.importorskip("strided.course")
    A = distinct((2, 5, 7, 3), seed=f * 10 + stride)
    hp = {"f": f, "stride": stride}
    Z, cache = course.pool_forward(A, hp, mode=mode)
    fn = F.max_pool2d if mode == "max" else F.avg_pool2d
    t = sd.tensor(A.copy(), requires_grad=True)
    y = fn(t, f, stride)
    assert_close(y.data, Z, 1e-14, 1e-14, "forward vs course.pool_forward")
    dA = np.random.default_rng(0).standard_normal(Z.shape)
    y.backward(dA)
    assert_close(t.grad, course.pool_backward(dA, cache, mode=mode), 1e-14, 1e-14, "course.pool_backward")


def test_max_pool_ties_match_course():
    course = pytest.importorskip("strided.course")
    A = np.random.default_rng(7).integers(0, 2, size=(2, 4, 6, 2)).astype(np.float64)
    Z, cache = course.pool_forward(A, {"f": 2, "stride": 1}, mode="max")
    t = sd.tensor(A.copy(), requires_grad=True)
    y = F.max_pool2d(t, 2, 1)
    dA = np.random.default_rng(1).standard_normal(Z.shape)
    y.backward(dA)
    assert_close(t.grad, course.pool_backward(dA, cache, mode="max"), 1e-14, 1e-14, "ties")


# --------------------------------------------------------------------------- ceil_mode
CEIL_CASES = [((7, 8), 3, 2, 0), ((112, 113), 3, 2, 0), ((14, 15), 2, 2, 0), ((9, 10), 3, 2, 1),
              ((10, 11), 3, 3, 1), ((6, 5), 2, 3, 0), ((8, 9), 3, 1, 1), ((5, 6), (3, 2), (2, 3), (1, 0))]


@pytest.mark.parametrize("size, kernel, stride, padding", CEIL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_ceil_mode_matches_torch(kind, size, kernel, stride, padding):
    x = distinct((2,) + size + (3,), seed=len(CEIL_CASES))
    ours = F.max_pool2d if kind == "max" else F.avg_pool2d

    def theirs(t):
        if kind == "max":
            return TF.max_pool2d(t, kernel, stride, padding, ceil_mode=True)
        return TF.avg_pool2d(t, kernel, stride, padding, ceil_mode=True, count_include_pad=False)

    torch_parity(lambda t: ours(t, kernel, stride, padding, ceil_mode=True), theirs, [x], ["nhwc"])


def test_ceil_mode_rounds_up_only_when_a_window_starts_inside():
    x = sd.tensor(np.zeros((1, 112, 6, 1)))
    assert F.max_pool2d(x, 3, 2).shape[1] == 55
    assert F.max_pool2d(x, 3, 2, ceil_mode=True).shape[1] == 56
    # 6 + 1 + 1 - 2 = 6: ceil(6 / 3) + 1 = 3 windows; the third starts at 6 < 6 + 1 (inside): kept
    assert F.avg_pool2d(sd.tensor(np.zeros((1, 6, 6, 1))), 2, 3, 1, ceil_mode=True).shape[1:3] == (3, 3)
    # 5 + 2 - 2 = 5: ceil(5 / 4) + 1 = 3, but window 3 starts at 8 >= 5 + 1: dropped (PyTorch's rule)
    assert F.max_pool2d(sd.tensor(np.zeros((1, 5, 5, 1))), 2, 4, 1, ceil_mode=True).shape[1:3] == (2, 2)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_ceil_mode_gradcheck(kind):
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    gradcheck(lambda t: fn(t, 3, 2, 1, ceil_mode=True), distinct((1, 6, 7, 2), seed=3))


# --------------------------------------------------------------------------- adaptive_avg_pool2d
@pytest.mark.parametrize("in_size, out_size", [((13, 10), 6), ((5, 4), 3), ((3, 5), (7, 2)), ((1, 1), 4),
                                               ((12, 18), 6), ((6, 6), 6)])
def test_adaptive_avg_pool2d_matches_torch(in_size, out_size):
    x = distinct((2,) + in_size + (3,), seed=5)
    torch_parity(lambda t: F.adaptive_avg_pool2d(t, out_size), lambda t: TF.adaptive_avg_pool2d(t, out_size),
                 [x], ["nhwc"])


@pytest.mark.parametrize("in_size, out_size", [((5, 4), 3), ((3, 5), (7, 2)), ((7, 7), 2)])
def test_adaptive_avg_pool2d_gradcheck(in_size, out_size):
    gradcheck(lambda t: F.adaptive_avg_pool2d(t, out_size), distinct((2,) + in_size + (2,), seed=7))


@pytest.mark.parametrize("output_size", [0, (3, -1), "6"])
def test_adaptive_avg_pool2d_rejects_bad_sizes(output_size):
    with pytest.raises((ValueError, TypeError), match="output_size"):
        F.adaptive_avg_pool2d(sd.tensor(np.zeros((1, 4, 4, 1))), output_size)


def test_adaptive_avg_pool2d_needs_nhwc():
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d input must be a 4-D NHWC array.*\(4, 4\)"):
        F.adaptive_avg_pool2d(sd.tensor(np.zeros((4, 4))), 2)
