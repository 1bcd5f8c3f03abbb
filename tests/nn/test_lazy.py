"""Lazy layers (Keras-style build from the first input), build(), and
state_dict / load_state_dict (building unbuilt models, strict keys, shapes)."""
import numpy as np
import pytest

import strided as sd
from strided import nn


def batch(shape, seed=0, dtype=np.float32):
    return sd.tensor((np.random.default_rng(seed).standard_normal(shape) * 2 + 1).astype(dtype))


def lazy_net():
    return nn.Sequential(nn.Conv2d(None, 8, 3), nn.BatchNorm2d(), nn.ReLU(), nn.Flatten(), nn.Linear(None, 5))


def test_lazy_conv_builds_from_first_input():
    conv = nn.Conv2d(None, 8, 3)
    assert conv.weight is None and conv.in_channels is None
    assert [n for n, _ in conv.named_parameters()] == []  # weight and bias come with the first input
    y = conv(batch((2, 6, 6, 5)))
    assert conv.in_channels == 5
    assert conv.weight.shape == (3, 3, 5, 8) and conv.weight.dtype == np.float32
    assert y.shape == (2, 4, 4, 8)
    assert [n for n, _ in conv.named_parameters()] == ["weight", "bias"]
    w = conv.weight
    conv(batch((1, 6, 6, 5), seed=1))
    assert conv.weight is w  # built once


def test_lazy_grouped_conv_checks_groups_at_build():
    conv = nn.Conv2d(None, 8, 3, groups=2)
    conv(batch((1, 5, 5, 4)))
    assert conv.weight.shape == (3, 3, 2, 8)
    with pytest.raises(ValueError, match="groups=2"):
        nn.Conv2d(None, 8, 3, groups=2)(batch((1, 5, 5, 3)))


def test_lazy_float64_input_builds_float64_weights():
    conv, lin, bn = nn.Conv2d(None, 4, 3), nn.Linear(None, 5), nn.BatchNorm2d()
    x = batch((2, 5, 5, 3), dtype=np.float64)
    y = lin(nn.Flatten()(bn(conv(x))))
    assert y.dtype == np.float64
    for p in conv.parameters() + lin.parameters() + bn.parameters():
        assert p.dtype == np.float64
    assert bn.running_mean.dtype == np.float64 and bn.running_var.dtype == np.float64


def test_lazy_linear_and_batchnorm():
    lin = nn.Linear(None, 5)
    assert lin.weight is None
    assert lin(batch((3, 7))).shape == (3, 5)
    assert lin.weight.shape == (7, 5) and lin.bias.shape == (5,) and lin.in_features == 7
    bn = nn.BatchNorm2d()
    assert bn.gamma is None and bn.parameters() == []
    bn(batch((2, 3, 3, 6)))
    assert bn.num_features == 6 and bn.gamma.shape == (6,) and bn.beta.shape == (6,)
    assert bn.running_mean.shape == (6,) and set(bn.state_dict()) == {"gamma", "beta", "running_mean", "running_var"}


def test_build_creates_weights_without_touching_running_stats_or_mode():
    model = lazy_net()
    out = model.build((2, 6, 6, 3))
    assert out.shape == (2, 5)
    assert model[0].weight.shape == (3, 3, 3, 8) and model[4].weight.shape == (128, 5)
    bn = model[1]
    # A training-mode pass on zeros would move running_var towards 0 (0.9 after one step).
    np.testing.assert_array_equal(bn.running_mean, np.zeros(8))
    np.testing.assert_array_equal(bn.running_var, np.ones(8))
    assert all(m.training for m in model.modules())
    assert not out.requires_grad
    assert all(p.grad is None for p in model.parameters())
    # running statistics already learned are also left alone
    bn.running_mean[...] = 3.0
    model.build((4, 6, 6, 3))
    np.testing.assert_array_equal(bn.running_mean, np.full(8, 3.0))


def test_build_keeps_eval_mode():
    model = lazy_net().eval()
    model.build((1, 5, 5, 2))
    assert not any(m.training for m in model.modules())


# --------------------------------------------------------------------------- state_dict
def trained_source(seed=0):
    sd.manual_seed(seed)
    src = lazy_net()
    src(batch((4, 6, 6, 3), seed=seed))  # builds and moves the running statistics
    return src


def test_load_state_dict_builds_an_unbuilt_model():
    src = trained_source()
    state = {k: v.copy() for k, v in src.state_dict().items()}
    assert np.any(state["1.running_mean"] != 0)
    dst = lazy_net()
    assert dst[0].weight is None
    dst.load_state_dict(state)
    assert dst[0].weight.shape == (3, 3, 3, 8) and dst[4].weight.shape == (128, 5)
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    x = batch((2, 6, 6, 3), seed=5)
    src.eval()
    dst.eval()
    np.testing.assert_array_equal(dst(x).data, src(x).data)


def test_load_state_dict_copies_values():
    src = trained_source()
    dst = trained_source(seed=1)
    state = src.state_dict()
    dst.load_state_dict(state)
    w = dst[0].weight
    state["0.weight"][...] = 123.0  # changing the source afterwards does not reach dst
    assert not np.any(w.data == 123.0)
    assert dst[0].weight is w  # loaded in place into the same Parameter


def test_strict_load_names_missing_and_unexpected_keys():
    src = trained_source()
    state = dict(src.state_dict())
    del state["4.bias"]
    state["4.scale"] = np.ones(5, np.float32)
    dst = lazy_net()
    with pytest.raises(KeyError) as err:
        dst.load_state_dict(state)
    msg = str(err.value)
    assert "4.bias" in msg and "4.scale" in msg
    assert "missing" in msg and "unexpected" in msg
    # strict=False loads what matches and ignores the rest
    dst = lazy_net()
    dst.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(dst[4].weight.data, state["4.weight"])
    np.testing.assert_array_equal(dst[1].running_var, state["1.running_var"])
    np.testing.assert_array_equal(dst[4].bias.data, np.zeros(5))


def test_strict_load_missing_buffer_is_an_error():
    state = dict(trained_source().state_dict())
    del state["1.running_var"]
    with pytest.raises(KeyError, match="1.running_var"):
        lazy_net().load_state_dict(state)


def test_shape_mismatch_names_entry_and_both_shapes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(32, 5))
    state = dict(model.state_dict())
    state["2.weight"] = np.zeros((32, 6), np.float32)
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    msg = str(err.value)
    assert "2.weight" in msg and "(32, 6)" in msg and "(32, 5)" in msg


def test_transposed_weight_is_a_shape_mismatch():
    """Same number of values, other layout (e.g. a PyTorch (out, in) dense weight)."""
    model = nn.Sequential(nn.Linear(4, 3))
    state = {"0.weight": np.zeros((3, 4), np.float32), "0.bias": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match=r"'0\.weight'.*\(3, 4\).*\(4, 3\)"):
        model.load_state_dict(state)
