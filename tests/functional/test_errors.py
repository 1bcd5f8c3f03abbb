"""Bad input raises ValueError / TypeError whose message quotes the received value."""
import re

import numpy as np
import pytest

import strided as sd
import strided.functional as F

X = np.zeros((2, 6, 6, 3), np.float32)
W = np.zeros((3, 3, 3, 4), np.float32)
B = np.zeros(4, np.float32)


def esc(text):
    return re.escape(str(text))


# --------------------------------------------------------------------------- conv2d
@pytest.mark.parametrize("shape", [(6, 6, 3), (2, 1, 6, 6, 3), (3,)], ids=["3d", "5d", "1d"])
def test_conv2d_wrong_input_rank(shape):
    with pytest.raises(ValueError, match=esc(shape)):
        F.conv2d(np.zeros(shape, np.float32), W)


def test_conv2d_wrong_weight_rank():
    with pytest.raises(ValueError, match=esc((3, 3, 4))):
        F.conv2d(X, np.zeros((3, 3, 4), np.float32))


def test_conv3d_wrong_input_rank():
    with pytest.raises(ValueError, match=esc((2, 6, 6, 3))):
        F.conv3d(X, np.zeros((2, 2, 2, 3, 1), np.float32))


def test_conv2d_channel_mismatch():
    w = np.zeros((3, 3, 5, 4), np.float32)
    with pytest.raises(ValueError, match=r"3 channels.*5") as info:
        F.conv2d(X, w)
    assert "(3, 3, 5, 4)" in str(info.value)


@pytest.mark.parametrize("padding, shape", [(0, (5, 5)), ((1, 0), (1, 2)), ("valid", (4, 2))],
                         ids=["pad0", "pad(1,0)", "valid"])
def test_conv2d_kernel_larger_than_padded_input(padding, shape):
    x = np.zeros((1,) + shape + (3,), np.float32)
    with pytest.raises(ValueError, match="larger than the padded input") as info:
        F.conv2d(x, np.zeros((6, 6, 3, 1), np.float32) if shape == (5, 5) else W, padding=padding)
    assert str((1,) + shape + (3,)) in str(info.value)


def test_conv2d_dilated_kernel_larger_than_input():
    with pytest.raises(ValueError, match=r"dilation 3"):
        F.conv2d(X, W, dilation=3)  # 3*(3-1)+1 = 7 > 6


@pytest.mark.parametrize("name, value", [("stride", 0), ("stride", (1, 0)), ("stride", -2),
                                         ("dilation", 0), ("dilation", (0, 1))],
                         ids=["stride0", "stride(1,0)", "stride-2", "dilation0", "dilation(0,1)"])
def test_conv2d_stride_dilation_must_be_positive(name, value):
    with pytest.raises(ValueError, match=f"{name}.*{esc(value)}"):
        F.conv2d(X, W, **{name: value})


@pytest.mark.parametrize("value", [(1, 2, 3), (1.5, 1)], ids=["3-tuple", "float"])
def test_conv2d_stride_malformed(value):
    with pytest.raises(ValueError, match=esc(value)):
        F.conv2d(X, W, stride=value)


def test_conv2d_groups_not_dividing_channels():
    x = np.zeros((1, 5, 5, 4), np.float32)
    with pytest.raises(ValueError, match=r"groups=3"):
        F.conv2d(x, np.zeros((3, 3, 1, 3), np.float32), groups=3)
    with pytest.raises(ValueError, match=r"groups=2.*\(3\)"):
        F.conv2d(x, np.zeros((3, 3, 2, 3), np.float32), groups=2)  # 3 output channels


@pytest.mark.parametrize("groups", [0, -1], ids=["zero", "negative"])
def test_conv2d_groups_positive(groups):
    with pytest.raises(ValueError, match=f"groups={groups}"):
        F.conv2d(X, W, groups=groups)


def test_conv2d_weight_dtype_mismatch():
    with pytest.raises(TypeError, match=r"float64.*float32"):
        F.conv2d(X, W.astype(np.float64))


def test_conv2d_bias_dtype_and_shape():
    with pytest.raises(TypeError, match="float64"):
        F.conv2d(X, W, B.astype(np.float64))
    with pytest.raises(ValueError, match=esc((5,))):
        F.conv2d(X, W, np.zeros(5, np.float32))


@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.uint8])
def test_conv2d_tensor_with_integer_data(int_dtype):
    """sd.tensor turns ints into float32 by design; a Tensor whose .data was swapped
    for an integer array must still be refused, naming the dtype."""
    t = sd.tensor(X)
    t.data = np.zeros(X.shape, int_dtype)
    with pytest.raises(TypeError, match=np.dtype(int_dtype).name):
        F.conv2d(t, W)
    w = sd.tensor(W)
    w.data = np.zeros(W.shape, int_dtype)
    with pytest.raises(TypeError, match=np.dtype(int_dtype).name):
        F.conv2d(X, w)


@pytest.mark.parametrize("padding", ["sam", "SAME-ish", "full"])
def test_bad_padding_string(padding):
    with pytest.raises(ValueError, match=esc(repr(padding))):
        F.conv2d(X, W, padding=padding)


@pytest.mark.parametrize("padding", [-1, (0, -1), ((0, 1), (-2, 0))], ids=["int", "pair", "pairs"])
def test_negative_padding(padding):
    with pytest.raises(ValueError, match=esc(padding)):
        F.conv2d(X, W, padding=padding)


@pytest.mark.parametrize("padding", [(1, 2, 3), ((1, 2, 3), (0, 0))], ids=["3-entries", "3-tuple-entry"])
def test_malformed_padding(padding):
    with pytest.raises(ValueError, match=esc(padding)):
        F.conv2d(X, W, padding=padding)


def test_padding_of_wrong_type():
    with pytest.raises(TypeError, match="1.5"):
        F.conv2d(X, W, padding=1.5)


# --------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("fn", [F.max_pool2d, F.avg_pool2d, F.global_avg_pool2d],
                         ids=["max", "avg", "global"])
def test_pool_wrong_rank(fn):
    with pytest.raises(ValueError, match=esc((6, 6, 3))):
        fn(np.zeros((6, 6, 3), np.float32), *([2] if fn is not F.global_avg_pool2d else []))


@pytest.mark.parametrize("fn", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
def test_pool_bad_arguments(fn):
    with pytest.raises(ValueError, match="kernel_size=0"):
        fn(X, 0)
    with pytest.raises(ValueError, match="stride=0"):
        fn(X, 2, 0)
    with pytest.raises(ValueError, match="'sam'"):
        fn(X, 2, padding="sam")
    with pytest.raises(ValueError, match="larger than the padded input"):
        fn(X, 7)
    with pytest.raises(ValueError, match="padding=2"):
        fn(X, 3, padding=2)  # more than half the window


def test_pool_integer_data():
    t = sd.tensor(X)
    t.data = np.zeros(X.shape, np.int64)
    with pytest.raises(TypeError, match="int64"):
        F.max_pool2d(t, 2)


# --------------------------------------------------------------------------- cross_entropy
def test_cross_entropy_label_out_of_range():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"label 4"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"label -1"):
        F.cross_entropy(logits, np.array([0, -1, 1]))


def test_cross_entropy_float_labels():
    with pytest.raises(TypeError, match="float64"):
        F.cross_entropy(np.zeros((3, 4), np.float32), np.array([0.0, 1.0, 2.0]))


def test_cross_entropy_shapes():
    with pytest.raises(ValueError, match=esc((2,))):
        F.cross_entropy(np.zeros((3, 4), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match=esc((3, 4, 1))):
        F.cross_entropy(np.zeros((3, 4, 1), np.float32), np.array([0, 1, 2]))


# --------------------------------------------------------------------------- batch_norm
@pytest.mark.parametrize("which", ["running_mean", "running_var"])
def test_batch_norm_running_stat_wrong_shape(which):
    stats = {"running_mean": np.zeros(3), "running_var": np.ones(3)}
    stats[which] = np.zeros(4)
    with pytest.raises(ValueError, match=rf"{which}.*\(4,\)"):
        F.batch_norm(X, stats["running_mean"], stats["running_var"])


def test_batch_norm_running_stat_not_ndarray():
    with pytest.raises(TypeError, match="list"):
        F.batch_norm(X, [0.0, 0.0, 0.0], np.ones(3))


def test_batch_norm_gamma_wrong_shape():
    with pytest.raises(ValueError, match=r"gamma.*\(2,\)"):
        F.batch_norm(X, None, None, np.ones(2))


def test_batch_norm_eval_without_stats():
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(X, None, None, training=False)


def test_batch_norm_single_value_per_channel():
    with pytest.raises(ValueError, match=esc((1, 3))):
        F.batch_norm(np.zeros((1, 3), np.float32))


# --------------------------------------------------------------------------- others
def test_linear_feature_mismatch():
    with pytest.raises(ValueError, match=r"\(4, 6\)"):
        F.linear(np.zeros((4, 6), np.float32), np.zeros((5, 2), np.float32))


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_dropout_probability(p):
    with pytest.raises(ValueError, match=f"p={p}"):
        F.dropout(np.zeros(3, np.float32), p=p)


def test_loss_shape_mismatch():
    with pytest.raises(ValueError, match=esc((3,))):
        F.mse_loss(np.zeros(2, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=esc((3,))):
        F.binary_cross_entropy_with_logits(np.zeros(2, np.float32), np.zeros(3, np.float32))


def test_tensor_from_strings_refused():
    with pytest.raises(TypeError, match="<U"):
        sd.tensor(np.array(["a", "b"]))


def test_concat_empty():
    with pytest.raises(ValueError, match="empty"):
        sd.concat([])
