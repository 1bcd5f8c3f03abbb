"""Weight initialisers (fan-in / fan-out from HWIO and (in, out) layouts) and
seeded reproducibility through strided.manual_seed."""
import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.nn import init


def test_fans_follow_hwio_and_dense_layouts():
    assert init.fans((3, 3, 64, 128)) == (3 * 3 * 64, 3 * 3 * 128)
    assert init.fans((5, 2, 7)) == (5 * 2, 5 * 7)
    assert init.fans((2, 3, 3, 4, 6)) == (2 * 3 * 3 * 4, 2 * 3 * 3 * 6)
    assert init.fans((100, 10)) == (100, 10)
    assert init.fans((3, 3, 1, 32), groups=32) == (9, 9)  # depthwise


def test_he_normal_std_on_a_large_conv_weight():
    sd.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3)  # default init: He normal
    w = conv.weight.data
    assert w.shape == (3, 3, 64, 128) and w.dtype == np.float32
    expected = np.sqrt(2.0 / (3 * 3 * 64))
    assert abs(w.std() / expected - 1) < 0.02  # 73,728 samples: relative sampling error ~0.3%
    assert abs(w.mean()) < 0.05 * expected
    np.testing.assert_array_equal(conv.bias.data, np.zeros(128))
    # normal, not uniform: some values beyond 3 std
    assert np.abs(w).max() > 3.5 * expected


def test_he_normal_function_and_grouped_conv():
    sd.manual_seed(1)
    w = init.he_normal((5, 5, 32, 64), dtype=np.float64)
    assert w.dtype == np.float64
    assert abs(w.std() / np.sqrt(2.0 / 800) - 1) < 0.02
    sd.manual_seed(2)
    w = nn.Conv2d(64, 128, 3, groups=4).weight.data  # fan_in = 3*3*16
    assert w.shape == (3, 3, 16, 128)
    assert abs(w.std() / np.sqrt(2.0 / 144) - 1) < 0.03


def test_glorot_uniform_bounds():
    sd.manual_seed(0)
    lin = nn.Linear(300, 200)  # default init: Glorot uniform
    w = lin.weight.data
    limit = np.sqrt(6.0 / 500)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert abs(w.std() / (limit / np.sqrt(3)) - 1) < 0.02  # uniform, not normal
    np.testing.assert_array_equal(lin.bias.data, np.zeros(200))
    sd.manual_seed(0)
    w = init.glorot_uniform((3, 3, 32, 64))
    limit = np.sqrt(6.0 / (9 * 32 + 9 * 64))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit


def test_other_initialisers_and_lookup():
    sd.manual_seed(0)
    w = init.he_uniform((3, 3, 16, 32))
    limit = np.sqrt(6.0 / 144)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    w = init.glorot_normal((400, 600))
    assert abs(w.std() / np.sqrt(2.0 / 1000) - 1) < 0.02
    assert init.get("he") is init.he_normal and init.get("xavier") is init.glorot_uniform
    np.testing.assert_array_equal(nn.Linear(3, 2, init="zeros").weight.data, np.zeros((3, 2)))
    np.testing.assert_array_equal(nn.Conv2d(2, 2, 1, init=lambda shape, dtype, groups: np.full(shape, 7, dtype))
                                  .weight.data, np.full((1, 1, 2, 2), 7))
    with pytest.raises(ValueError, match="'bogus'"):
        nn.Linear(3, 2, init="bogus")


def test_manual_seed_reproducibility():
    def weights():
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(None, 4))
        model.build((1, 5, 5, 3))
        return [p.data.copy() for p in model.parameters()]

    sd.manual_seed(42)
    a = weights()
    sd.manual_seed(42)
    b = weights()
    sd.manual_seed(43)
    c = weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    differing = [not np.array_equal(x, y) for x, y in zip(a, c) if np.any(x != 0)]
    assert differing and all(differing)
    # the generator advances: two layers created in a row differ
    sd.manual_seed(42)
    assert not np.array_equal(nn.Conv2d(3, 8, 3).weight.data, nn.Conv2d(3, 8, 3).weight.data)
