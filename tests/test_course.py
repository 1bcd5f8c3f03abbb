"""strided.course: the course's worked examples, its tie rule, bad input (the loop reference
is compared with the fast engine and PyTorch in tests/functional)."""
import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided import course, filters

IMAGE_6x6 = np.array([[3, 0, 1, 2, 7, 4],
                      [1, 5, 8, 9, 3, 1],
                      [2, 7, 2, 5, 1, 3],
                      [0, 1, 3, 1, 7, 8],
                      [4, 2, 1, 6, 2, 8],
                      [2, 4, 5, 2, 3, 9]], dtype=np.float64)
VERTICAL_RESULT = np.array([[-5, -4, 0, 8],
                            [-10, -2, 2, 3],
                            [0, -2, -4, -7],
                            [-3, -2, -3, -16]], dtype=np.float64)


def as_batch(image):
    return image.reshape(1, *image.shape, 1)


def vertical_weight():
    return filters.vertical.astype(np.float64).reshape(3, 3, 1, 1)


def test_six_by_six_with_the_vertical_filter():
    Z, _ = course.conv_forward(as_batch(IMAGE_6x6), vertical_weight(), np.zeros((1, 1, 1, 1)),
                               {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(Z[0, :, :, 0], VERTICAL_RESULT)
    assert list(Z[0, 0, :, 0]) == [-5, -4, 0, 8]
    fast = F.conv2d(sd.tensor(as_batch(IMAGE_6x6)), sd.tensor(vertical_weight()))
    np.testing.assert_array_equal(fast.data[0, :, :, 0], VERTICAL_RESULT)


def test_bright_left_dark_right_gives_a_thick_edge():
    image = np.tile(np.array([10, 10, 10, 0, 0, 0], np.float64), (6, 1))
    Z, _ = course.conv_forward(as_batch(image), vertical_weight(), np.zeros(1), {"stride": 1, "pad": 0})
    for row in Z[0, :, :, 0]:
        assert list(row) == [0, 30, 30, 0]
    # the dark-to-bright image gives the opposite sign, and the horizontal filter sees nothing
    Z_flip, _ = course.conv_forward(as_batch(image[:, ::-1].copy()), vertical_weight(), np.zeros(1),
                                    {"stride": 1, "pad": 0})
    assert list(Z_flip[0, 0, :, 0]) == [0, -30, -30, 0]
    horizontal = filters.horizontal.astype(np.float64).reshape(3, 3, 1, 1)
    Z_h, _ = course.conv_forward(as_batch(image), horizontal, np.zeros(1), {"stride": 1, "pad": 0})
    assert not Z_h.any()


def test_ten_three_by_three_by_three_filters_have_280_parameters():
    W, b = np.zeros((3, 3, 3, 10)), np.zeros((1, 1, 1, 10))
    assert W.size + b.size == 280
    Z, _ = course.conv_forward(np.ones((1, 6, 6, 3)), W + 1, b, {"stride": 1, "pad": 0})
    assert Z.shape == (1, 4, 4, 10) and np.all(Z == 27)


def test_output_size_formula_with_padding_and_stride():
    Z, _ = course.conv_forward(np.random.default_rng(0).random((2, 7, 9, 3)), np.ones((3, 3, 3, 4)),
                               np.zeros(4), {"stride": 2, "pad": 1})
    assert Z.shape == (2, (7 + 2 - 3) // 2 + 1, (9 + 2 - 3) // 2 + 1, 4)


def test_zero_pad_and_single_step():
    X = np.arange(2 * 3 * 3 * 2, dtype=float).reshape(2, 3, 3, 2)
    P = course.zero_pad(X, 2)
    assert P.shape == (2, 7, 7, 2)
    np.testing.assert_array_equal(P[:, 2:5, 2:5], X)
    assert P[:, :2].sum() == 0 and P[:, :, -2:].sum() == 0
    a, W = np.full((3, 3, 2), 2.0), np.full((3, 3, 2), 0.5)
    assert course.conv_single_step(a, W, np.array([[[-1.0]]])) == pytest.approx(17.0)


def test_tie_rule_first_maximum_in_row_major_order():
    window = np.array([[1.0, 5.0], [5.0, 2.0]])
    mask = course.create_mask_from_window(window)
    np.testing.assert_array_equal(mask, [[False, True], [False, False]])
    dA = np.ones((1, 1, 1, 1))
    A_prev = window.reshape(1, 2, 2, 1)
    _, cache = course.pool_forward(A_prev, {"f": 2, "stride": 2}, mode="max")
    dA_prev = course.pool_backward(dA, cache, mode="max")
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], [[0, 1], [0, 0]])
    # the fast engine follows the same rule
    x = sd.tensor(A_prev, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[0, 1], [0, 0]])


def test_distribute_value_spreads_evenly():
    np.testing.assert_allclose(course.distribute_value(2.0, (2, 2)), np.full((2, 2), 0.5))


@pytest.mark.parametrize("call, message", [
    (lambda: course.conv_forward(np.zeros((5, 5, 3)), np.zeros((3, 3, 3, 1)), np.zeros(1), {"stride": 1, "pad": 0}),
     r"\(5, 5, 3\)"),
    (lambda: course.conv_forward(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 2, 1)), np.zeros(1), {"stride": 1, "pad": 0}),
     r"n_C_prev=2 .* A_prev has 3"),
    (lambda: course.conv_forward(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 1)), np.zeros(1), {"stride": 0, "pad": 0}),
     "received stride=0"),
    (lambda: course.pool_forward(np.zeros((1, 4, 4, 1)), {"f": 2, "stride": 2}, mode="median"), "median"),
])
def test_bad_input_names_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- against PyTorch
# The loop reference is checked directly against torch.nn.functional (float64, NHWC <-> NCHW,
# HWIO <-> OIHW), forward and every gradient.
torch = pytest.importorskip("torch")
TF = torch.nn.functional


def nchw(a):
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), dtype=torch.float64,
                        requires_grad=True)


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("b_shape", ["course", "flat"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("f", [2, 3])
def test_conv_forward_and_backward_match_torch(f, pad, stride, b_shape):
    rng = np.random.default_rng(100 * f + 10 * pad + stride)
    A = rng.standard_normal((2, 7, 6, 3))                 # H != W catches transposed axes
    W = rng.standard_normal((f, f, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4) if b_shape == "course" else (4,))
    hp = {"stride": stride, "pad": pad}
    Z, cache = course.conv_forward(A, W, b, hp)

    x, w = nchw(A), torch.tensor(W.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bt = torch.tensor(b.reshape(4), requires_grad=True)
    y = TF.conv2d(x, w, bt, stride=stride, padding=pad)
    np.testing.assert_allclose(Z, nhwc(y), rtol=1e-12, atol=1e-12)

    dZ = rng.standard_normal(Z.shape)
    (y * torch.tensor(dZ.transpose(0, 3, 1, 2))).sum().backward()
    dA_prev, dW, db = course.conv_backward(dZ, cache)
    assert dA_prev.shape == A.shape and dW.shape == W.shape and db.shape == b.shape
    np.testing.assert_allclose(dA_prev, nhwc(x.grad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, w.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db.reshape(4), bt.grad.numpy(), rtol=1e-12, atol=1e-12)


def distinct_values(rng, shape):
    """A random permutation of 0..n-1: no two entries equal, so no max-pool ties."""
    return rng.permutation(int(np.prod(shape))).astype(np.float64).reshape(shape)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride", [(2, 2), (2, 1), (3, 1), (3, 2)])
def test_pool_forward_and_backward_match_torch(mode, f, stride):
    rng = np.random.default_rng(10 * f + stride)
    A = distinct_values(rng, (2, 7, 8, 3))
    hp = {"f": f, "stride": stride}
    Z, cache = course.pool_forward(A, hp, mode=mode)

    x = nchw(A)
    pool = TF.max_pool2d if mode == "max" else TF.avg_pool2d
    y = pool(x, f, stride)
    np.testing.assert_allclose(Z, nhwc(y), rtol=1e-13, atol=1e-13)

    dA = rng.standard_normal(Z.shape)
    (y * torch.tensor(dA.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_allclose(course.pool_backward(dA, cache, mode=mode), nhwc(x.grad),
                               rtol=1e-13, atol=1e-13)


def test_max_pool_ties_route_the_gradient_like_torch():
    """Overlapping windows full of ties: every window sends its gradient to its first maximum."""
    rng = np.random.default_rng(7)
    A = rng.integers(0, 3, size=(1, 6, 6, 2)).astype(np.float64)      # many ties
    Z, cache = course.pool_forward(A, {"f": 3, "stride": 1}, mode="max")
    dA = rng.standard_normal(Z.shape)
    x = nchw(A)
    (TF.max_pool2d(x, 3, 1) * torch.tensor(dA.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_array_equal(course.pool_backward(dA, cache, mode="max"), nhwc(x.grad))


# --------------------------------------------------------------------------- finite differences
def numerical_grad(loss, x, eps=1e-6):
    """Central differences of the scalar loss() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = loss()
        x[idx] = old - eps
        down = loss()
        x[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 1), (1, 2)])
def test_conv_backward_gradient_check(stride, pad):
    rng = np.random.default_rng(stride + 3 * pad)
    A = rng.standard_normal((2, 5, 4, 2))
    W = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad}
    Z, cache = course.conv_forward(A, W, b, hp)
    G = rng.standard_normal(Z.shape)                      # loss = sum(G * Z), so dZ = G

    def loss():
        return float(np.sum(G * course.conv_forward(A, W, b, hp)[0]))

    dA_prev, dW, db = course.conv_backward(G, cache)
    np.testing.assert_allclose(dA_prev, numerical_grad(loss, A), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dW, numerical_grad(loss, W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride", [(2, 2), (3, 1)])
def test_pool_backward_gradient_check(mode, f, stride):
    rng = np.random.default_rng(f * stride)
    A = distinct_values(rng, (1, 5, 6, 2))   # values 1 apart: eps = 1e-6 never changes the argmax
    hp = {"f": f, "stride": stride}
    Z, cache = course.pool_forward(A, hp, mode=mode)
    G = rng.standard_normal(Z.shape)

    def loss():
        return float(np.sum(G * course.pool_forward(A, hp, mode=mode)[0]))

    np.testing.assert_allclose(course.pool_backward(G, cache, mode=mode), numerical_grad(loss, A),
                               rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- more of the rules
def test_tie_rule_marks_only_the_first_of_many_equal_maxima():
    np.testing.assert_array_equal(course.create_mask_from_window(np.full((3, 3), 4.0)),
                                  np.eye(1, 9, 0, dtype=bool).reshape(3, 3))
    mask = course.create_mask_from_window(np.array([[0.0, 1.0, 2.0], [2.0, 2.0, 1.0]]))
    np.testing.assert_array_equal(mask, [[False, False, True], [False, False, False]])
    assert mask.dtype == np.bool_


def test_distribute_value_divides_by_the_window_area():
    np.testing.assert_allclose(course.distribute_value(6.0, (2, 3)), np.ones((2, 3)))
    assert course.distribute_value(1.0, (4, 4)).shape == (4, 4)


def test_conv_backward_is_right_for_pad_zero():
    """The course's crop da_prev_pad[pad:-pad] is empty for pad=0; ours keeps every pixel."""
    A, W = np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1))
    Z, cache = course.conv_forward(A, W, np.zeros(1), {"stride": 1, "pad": 0})
    dA_prev, dW, db = course.conv_backward(np.ones_like(Z), cache)
    np.testing.assert_array_equal(dA_prev, np.ones((1, 3, 3, 1)))
    np.testing.assert_array_equal(dW, np.ones((3, 3, 1, 1)))
    assert db.tolist() == [1.0]


@pytest.mark.parametrize("call, message", [
    (lambda: course.zero_pad(np.zeros((3, 3)), 1), r"received X with shape \(3, 3\)"),
    (lambda: course.zero_pad(np.zeros((1, 3, 3, 1)), -1), "received pad=-1"),
    (lambda: course.conv_single_step(np.zeros((3, 3, 2)), np.zeros((3, 3, 3)), 0.0),
     r"a_slice_prev.shape=\(3, 3, 2\), W.shape=\(3, 3, 3\)"),
    (lambda: course.conv_forward(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), np.zeros(3),
                                 {"stride": 1, "pad": 0}), r"received b with shape \(3,\)"),
    (lambda: course.conv_forward(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 1)), np.zeros(1),
                                 {"stride": 1}), r"'pad'.*\{'stride': 1\}"),
    (lambda: course.conv_forward(np.zeros((1, 2, 2, 1)), np.zeros((3, 3, 1, 1)), np.zeros(1),
                                 {"stride": 1, "pad": 0}), "n_H_prev=2"),
    (lambda: course.conv_backward(np.zeros((1, 2, 2, 1)),
                                  course.conv_forward(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 1)),
                                                      np.zeros(1), {"stride": 1, "pad": 0})[1]),
     r"received dZ with shape \(1, 2, 2, 1\)"),
    (lambda: course.pool_forward(np.zeros((4, 4, 1)), {"f": 2, "stride": 2}), r"\(4, 4, 1\)"),
    (lambda: course.pool_forward(np.zeros((1, 4, 4, 1)), {"f": 0, "stride": 2}), "received f=0"),
    (lambda: course.pool_backward(np.zeros((1, 2, 2, 1)), (np.zeros((1, 4, 4, 1)), {"f": 2, "stride": 2}),
                                  mode="avg"), "mode='avg'"),
    (lambda: course.pool_backward(np.zeros((1, 3, 3, 1)), (np.zeros((1, 4, 4, 1)), {"f": 2, "stride": 2})),
     r"received dA with shape \(1, 3, 3, 1\)"),
    (lambda: course.distribute_value(1.0, (2, 0)), "received n_W=0"),
    (lambda: course.distribute_value(1.0, 4), "received shape=4"),
])
def test_more_bad_input_names_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rectangular_window_matches_torch():
    """f_h != f_w: catches height and width of the window being swapped."""
    rng = np.random.default_rng(5)
    A, W, b = rng.standard_normal((1, 6, 7, 2)), rng.standard_normal((2, 3, 2, 3)), rng.standard_normal(3)
    Z, cache = course.conv_forward(A, W, b, {"stride": 1, "pad": 1})
    x, w = nchw(A), torch.tensor(W.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    y = TF.conv2d(x, w, torch.tensor(b), padding=1)
    np.testing.assert_allclose(Z, nhwc(y), rtol=1e-12, atol=1e-12)
    dZ = rng.standard_normal(Z.shape)
    (y * torch.tensor(dZ.transpose(0, 3, 1, 2))).sum().backward()
    dA_prev, dW, _ = course.conv_backward(dZ, cache)
    np.testing.assert_allclose(dA_prev, nhwc(x.grad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, w.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-12)
