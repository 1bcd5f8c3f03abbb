"""Constructor and call-time validation: ValueError quoting the received value."""
import numpy as np
import pytest

import strided as sd
from strided import nn


def x(shape, dtype=np.float32):
    return sd.tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("make, pattern", [
    (lambda: nn.Conv2d(3, 0, 3), r"out_channels=0"),
    (lambda: nn.Conv2d(3, -2, 3), r"out_channels=-2"),
    (lambda: nn.Conv2d(0, 4, 3), r"in_channels=0"),
    (lambda: nn.Conv2d(3, 4.0, 3), r"out_channels=4.0"),
    (lambda: nn.Conv2d(3, 4, 0), r"kernel_size=0"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), r"groups=4.*6|6.*groups=4"),
    (lambda: nn.Conv2d(3, 6, 3, groups=2), r"groups=2.*\(3\)|3.*groups=2"),
    (lambda: nn.Conv2d(3, 6, 3, groups=0), r"groups=0"),
    (lambda: nn.Conv3d(2, 0, 3), r"out_channels=0"),
    (lambda: nn.Linear(0, 3), r"in_features=0"),
    (lambda: nn.Linear(3, 0), r"out_features=0"),
    (lambda: nn.Dropout(p=1.0), r"p=1\.0"),
    (lambda: nn.Dropout(p=-0.1), r"p=-0\.1"),
    (lambda: nn.BatchNorm2d(4, momentum=2), r"momentum=2"),
    (lambda: nn.BatchNorm2d(4, momentum=-0.5), r"momentum=-0\.5"),
    (lambda: nn.BatchNorm2d(0), r"num_features=0"),
])
def test_constructor_errors_quote_the_value(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize("layer, shape, pattern", [
    (lambda: nn.Conv2d(3, 4, 3), (1, 5, 5, 5), r"5 channels.*expects 3"),
    (lambda: nn.Conv3d(2, 4, 2), (1, 3, 3, 3, 3), r"3 channels.*expects 2"),
    (lambda: nn.Linear(3, 4), (2, 5), r"5 features.*expects 3"),
    (lambda: nn.BatchNorm2d(4), (2, 3, 3, 3), r"4 channels.*\(2, 3, 3, 3\)"),
    (lambda: nn.Conv2d(3, 4, 3), (5, 5, 3), r"\(5, 5, 3\)"),  # missing batch axis
    (lambda: nn.Conv2d(3, 4, 5), (1, 3, 3, 3), r"kernel of size 5"),
])
def test_call_time_mismatch_names_the_shapes(layer, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer()(x(shape))


def test_lazy_layer_rejects_a_different_channel_count_after_build():
    conv = nn.Conv2d(None, 4, 3)
    conv(x((1, 5, 5, 3)))
    with pytest.raises(ValueError, match="2 channels"):
        conv(x((1, 5, 5, 2)))
    bn = nn.BatchNorm2d()
    bn(x((2, 2, 2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 5\)"):
        bn(x((2, 2, 2, 5)))


# Arguments are checked when a layer is built (not at its first call), and the message names the
# layer, the argument and the received value.
@pytest.mark.parametrize("make, pattern", [
    (lambda: nn.Conv2d(3, 4, 3, padding="foo"), r"^Conv2d: padding .*received padding='foo'"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), r"^Conv2d: padding .*received padding=-1"),
    (lambda: nn.Conv2d(3, 4, 3, padding=(1, 2, 3)), r"^Conv2d: padding .*received padding=\(1, 2, 3\)"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), r"^Conv2d: stride must be a positive int or pair, received stride=0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=(1, 0)), r"^Conv2d: stride .*received stride=\(1, 0\)"),
    (lambda: nn.Conv2d(3, 4, 3, stride=1.5), r"^Conv2d: stride .*received stride=1\.5"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=0), r"^Conv2d: dilation .*received dilation=0"),
    (lambda: nn.Conv2d(3, 4, (3, 0)), r"^Conv2d: kernel_size .*received kernel_size=\(3, 0\)"),
    (lambda: nn.Conv2d(-3, 4, 3), r"^Conv2d: in_channels must be a positive int or None, received in_channels=-3"),
    (lambda: nn.Conv2d(3, 0, 3), r"^Conv2d: out_channels .*received out_channels=0"),
    (lambda: nn.Conv2d(3, True, 3), r"^Conv2d: out_channels .*received out_channels=True"),
    (lambda: nn.Conv1d(3, 4, 3, stride=(1, 1)), r"^Conv1d: stride must be a positive int, received stride=\(1, 1\)"),
    (lambda: nn.Conv3d(2, 4, 3, stride=0), r"^Conv3d: stride must be a positive int or triple, received stride=0"),
    (lambda: nn.DepthwiseConv2d(4, 3, stride=0), r"^DepthwiseConv2d: stride .*received stride=0"),
    (lambda: nn.DepthwiseConv2d(4, 3, padding="full"), r"^DepthwiseConv2d: padding .*received padding='full'"),
    (lambda: nn.DepthwiseConv2d(0), r"^DepthwiseConv2d: channels .*received channels=0"),
    (lambda: nn.DepthwiseConv2d(4, depth_multiplier=0), r"^DepthwiseConv2d: depth_multiplier .*=0"),
    (lambda: nn.MaxPool2d(0), r"^MaxPool2d: kernel_size must be a positive int or pair, received kernel_size=0"),
    (lambda: nn.MaxPool2d(2, stride=0), r"^MaxPool2d: stride .*received stride=0"),
    (lambda: nn.MaxPool2d(2, padding="foo"), r"^MaxPool2d: padding .*received padding='foo'"),
    (lambda: nn.MaxPool2d(3, padding=2), r"^MaxPool2d: padding must be at most half the kernel size.*padding=2"),
    (lambda: nn.MaxPool2d(2, ceil_mode="yes"), r"^MaxPool2d: ceil_mode .*received ceil_mode='yes'"),
    (lambda: nn.AvgPool2d(-2), r"^AvgPool2d: kernel_size .*received kernel_size=-2"),
    (lambda: nn.AdaptiveAvgPool2d(0), r"^AdaptiveAvgPool2d: output_size .*received output_size=0"),
    (lambda: nn.Dropout(p=1.5), r"^Dropout: p must be in \[0\.0, 1\.0\), received p=1\.5"),
    (lambda: nn.Dropout(p="0.5"), r"^Dropout: p .*received p='0\.5'"),
    (lambda: nn.BatchNorm2d(4, eps=0), r"^BatchNorm2d: eps must be a number > 0, received eps=0"),
    (lambda: nn.BatchNorm2d(4, eps=-1e-5), r"^BatchNorm2d: eps .*received eps=-1e-05"),
    (lambda: nn.BatchNorm2d(4, momentum=1.5), r"^BatchNorm2d: momentum must be in \[0\.0, 1\.0\], received momentum=1\.5"),
    (lambda: nn.Linear(-1, 3), r"^Linear: in_features .*received in_features=-1"),
    (lambda: nn.Linear(3, None), r"^Linear: out_features must be a positive int, received out_features=None"),
    (lambda: nn.LeakyReLU("0.1"), r"^LeakyReLU: negative_slope .*received negative_slope='0\.1'"),
    (lambda: nn.Softmax(axis=1.0), r"^Softmax: axis must be an int, received axis=1\.0"),
])
def test_layers_check_their_arguments_when_built(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize("make", [
    lambda: nn.Conv2d(3, 4, 3, stride=(2, 1), padding=((0, 1), (1, 0)), dilation=2),
    lambda: nn.Conv2d(3, 4, 3, padding="SAME"), lambda: nn.Conv2d(None, 4, 1, padding="valid"),
    lambda: nn.Conv1d(2, 4, 3, padding=(1,)), lambda: nn.Conv3d(2, 4, (1, 2, 3), stride=(1, 1, 2)),
    lambda: nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True),
    lambda: nn.AvgPool2d(2, padding="same"), lambda: nn.Dropout(0.0), lambda: nn.BatchNorm2d(4, eps=1e-3),
    lambda: nn.AdaptiveAvgPool2d((6, 7)), lambda: nn.DepthwiseConv2d(None, 3, stride=2, padding="same"),
])
def test_valid_arguments_are_accepted(make):
    make()
