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
