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
