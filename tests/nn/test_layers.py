"""Layers: each equals its functional op with the same weights, and equals the
matching torch.nn layer (weights copied across layouts) in the forward output,
the input gradient and every parameter gradient (float64, tight tolerance)."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, away_from, from_torch_layout, to_torch_layout  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402
from strided import nn  # noqa: E402

torch = pytest.importorskip("torch")
TOL = dict(atol=1e-10, rtol=1e-10)


def rand(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def to64(module):
    """Turn a module's parameters and buffers into float64 (random non-zero biases too)."""
    rng = np.random.default_rng(123)
    for name, p in module.named_parameters():
        p.data = p.data.astype(np.float64)
        if name.endswith("bias") or name.endswith("beta"):
            p.data = rng.standard_normal(p.shape)
        if name.endswith("gamma"):
            p.data = rng.uniform(0.5, 1.5, p.shape)
    for m in module.modules():
        for bname, b in list(m._buffers.items()):
            setattr(m, bname, b.astype(np.float64))
    return module


def copy_to_torch(sd_module, t_module, mapping):
    """mapping: {strided name: (torch name, layout)}; copies strided -> torch."""
    t_params = dict(t_module.named_parameters())
    s_params = dict(sd_module.named_parameters())
    assert set(mapping) == set(s_params), f"strided parameters {sorted(s_params)}"
    with torch.no_grad():
        for s_name, (t_name, layout) in mapping.items():
            value = torch.tensor(to_torch_layout(s_params[s_name].data, layout))
            assert tuple(t_params[t_name].shape) == tuple(value.shape), (s_name, t_name)
            t_params[t_name].copy_(value)


def module_parity(sd_module, t_module, x, x_layout, mapping=None, out_layout="same", seed=1):
    """Forward, input gradient and every parameter gradient against torch (float64)."""
    mapping = mapping or {}
    copy_to_torch(sd_module, t_module, mapping)
    out_layout = x_layout if out_layout == "same" else out_layout
    xs = sd.tensor(np.array(x, dtype=np.float64), requires_grad=True)
    xt = torch.tensor(to_torch_layout(np.array(x, dtype=np.float64), x_layout), requires_grad=True)
    ys = sd_module(xs)
    yt = t_module(xt)
    assert ys.dtype == np.float64
    assert_close(ys.data, from_torch_layout(yt.detach().numpy(), out_layout), what="forward", **TOL)
    gy = rand(ys.shape, seed)
    ys.backward(gy)
    yt.backward(torch.tensor(to_torch_layout(gy, out_layout)))
    assert_close(xs.grad, from_torch_layout(xt.grad.numpy(), x_layout), what="input gradient", **TOL)
    t_params = dict(t_module.named_parameters())
    for s_name, p in sd_module.named_parameters():
        t_name, layout = mapping[s_name]
        assert p.grad is not None, f"{s_name} got no gradient"
        assert_close(p.grad, from_torch_layout(t_params[t_name].grad.numpy(), layout),
                     what=f"gradient of {s_name}", **TOL)
    return ys


CONV_MAP = {"weight": ("weight", "hwio"), "bias": ("bias", None)}


# --------------------------------------------------------------------------- Conv2d
CONV2D_CASES = {
    "plain": (dict(in_channels=3, out_channels=5, kernel_size=3), (2, 6, 7, 3)),
    "stride-pad-groups": (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1, groups=2),
                          (2, 7, 6, 4)),
    "dilation-nobias": (dict(in_channels=3, out_channels=4, kernel_size=3, padding=2, dilation=2, bias=False),
                        (1, 6, 6, 3)),
    "rect-pad": (dict(in_channels=2, out_channels=3, kernel_size=3, stride=(1, 2), padding=(2, 1)), (2, 5, 7, 2)),
}


@pytest.mark.parametrize("case", list(CONV2D_CASES))
def test_conv2d_matches_torch(case):
    kw, shape = CONV2D_CASES[case]
    sd.manual_seed(0)
    layer = to64(nn.Conv2d(**kw))
    t = torch.nn.Conv2d(kw["in_channels"], kw["out_channels"], kw["kernel_size"], stride=kw.get("stride", 1),
                        padding=kw.get("padding", 0), dilation=kw.get("dilation", 1), groups=kw.get("groups", 1),
                        bias=kw.get("bias", True)).double()
    mapping = {k: v for k, v in CONV_MAP.items() if k in dict(layer.named_parameters())}
    module_parity(layer, t, rand(shape), "nhwc", mapping)


def test_conv2d_same_padding_matches_torch():
    layer = to64(nn.Conv2d(3, 4, 3, padding="same"))
    t = torch.nn.Conv2d(3, 4, 3, padding="same").double()
    y = module_parity(layer, t, rand((2, 5, 6, 3)), "nhwc", CONV_MAP)
    assert y.shape == (2, 5, 6, 4)


@pytest.mark.parametrize("case", list(CONV2D_CASES))
def test_conv2d_equals_functional(case):
    kw, shape = CONV2D_CASES[case]
    layer = nn.Conv2d(**kw)
    x = sd.tensor(rand(shape).astype(np.float32))
    y = layer(x)
    ref = F.conv2d(x, layer.weight, layer.bias, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                   kw.get("groups", 1))
    np.testing.assert_array_equal(y.data, ref.data)


def test_conv3d_matches_torch_and_functional():
    layer = to64(nn.Conv3d(2, 3, (2, 3, 2), stride=(1, 2, 1), padding=1))
    assert layer.weight.shape == (2, 3, 2, 2, 3)
    t = torch.nn.Conv3d(2, 3, (2, 3, 2), stride=(1, 2, 1), padding=1).double()
    x = rand((2, 3, 5, 4, 2))
    y = module_parity(layer, t, x, "ndhwc", {"weight": ("weight", "dhwio"), "bias": ("bias", None)})
    ref = F.conv3d(sd.tensor(x), layer.weight, layer.bias, (1, 2, 1), 1)
    np.testing.assert_array_equal(y.data, ref.data)


# --------------------------------------------------------------------------- DepthwiseConv2d


def test_depthwise_conv2d_matches_torch_and_functional():
    layer = nn.DepthwiseConv2d(3, kernel_size=3, padding=1, depth_multiplier=2)
    assert layer.weight.shape == (3, 3, 1, 6) and layer.bias.shape == (6,)
    assert layer.num_parameters() == 3 * 3 * 3 * 2 + 6
    to64(layer)
    t = torch.nn.Conv2d(3, 6, 3, padding=1, groups=3).double()
    x = rand((2, 5, 5, 3))
    y = module_parity(layer, t, x, "nhwc", CONV_MAP)
    ref = F.conv2d(sd.tensor(x), layer.weight, layer.bias, 1, 1, 1, 3)
    np.testing.assert_array_equal(y.data, ref.data)


def test_depthwise_conv2d_lazy_build():
    layer = nn.DepthwiseConv2d(kernel_size=3, stride=2)
    y = layer(sd.tensor(rand((1, 7, 7, 4)).astype(np.float32)))
    assert layer.weight.shape == (3, 3, 1, 4) and y.shape == (1, 3, 3, 4)


# --------------------------------------------------------------------------- Linear
LIN_MAP = {"weight": ("weight", "io"), "bias": ("bias", None)}


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6)])
def test_linear_matches_torch_and_functional(shape):
    layer = to64(nn.Linear(6, 3))
    assert layer.weight.shape == (6, 3)
    t = torch.nn.Linear(6, 3).double()
    x = rand(shape)
    y = module_parity(layer, t, x, None, LIN_MAP)
    np.testing.assert_array_equal(y.data, F.linear(sd.tensor(x), layer.weight, layer.bias).data)


def test_linear_without_bias_matches_torch():
    layer = to64(nn.Linear(5, 2, bias=False))
    module_parity(layer, torch.nn.Linear(5, 2, bias=False).double(), rand((3, 5)), None,
                  {"weight": ("weight", "io")})


def test_flatten_is_nhwc_order_and_matches_torch_after_permute():
    """Conv -> Flatten -> Linear equals torch's Conv -> permute(0, 2, 3, 1) -> flatten -> Linear."""
    sd.manual_seed(0)
    model = to64(nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 3 * 4, 4)))

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 3)
            self.fc = torch.nn.Linear(36, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).permute(0, 2, 3, 1).flatten(1))

    mapping = {"0.weight": ("conv.weight", "hwio"), "0.bias": ("conv.bias", None),
               "3.weight": ("fc.weight", "io"), "3.bias": ("fc.bias", None)}
    module_parity(model, TorchNet().double(), rand((2, 5, 6, 2)), "nhwc", mapping, out_layout=None)
    x = rand((2, 3, 4, 5))
    np.testing.assert_array_equal(nn.Flatten()(sd.tensor(x)).data, x.reshape(2, 60))


# --------------------------------------------------------------------------- pooling, dropout, activations
POOLS = {
    "max2": (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), lambda x: F.max_pool2d(x, 2)),
    "max3s2p1": (lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: torch.nn.MaxPool2d(3, 2, 1),
                 lambda x: F.max_pool2d(x, 3, 2, 1)),
    "avg2": (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), lambda x: F.avg_pool2d(x, 2)),
    "avg3s2p1": (lambda: nn.AvgPool2d(3, stride=2, padding=1),
                 lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), lambda x: F.avg_pool2d(x, 3, 2, 1)),
    "avg3s1": (lambda: nn.AvgPool2d(3, stride=1), lambda: torch.nn.AvgPool2d(3, 1), lambda x: F.avg_pool2d(x, 3, 1)),
}


@pytest.mark.parametrize("name", list(POOLS))
def test_pooling_matches_torch_and_functional(name):
    make, make_t, fn = POOLS[name]
    n = 2 * 7 * 6 * 3
    x = ((np.random.default_rng(0).permutation(n) - n / 2) * 0.1).reshape(2, 7, 6, 3)  # no ties
    y = module_parity(make(), make_t(), x, "nhwc")
    np.testing.assert_array_equal(y.data, fn(sd.tensor(x)).data)
    assert make().parameters() == []


def test_global_avg_pool_matches_mean():
    x = rand((2, 4, 5, 3))
    xs = sd.tensor(x, requires_grad=True)
    y = nn.GlobalAvgPool2d()(xs)
    assert y.shape == (2, 3)
    assert_close(y.data, x.mean(axis=(1, 2)), what="forward", **TOL)
    gy = rand((2, 3), 1)
    y.backward(gy)
    assert_close(xs.grad, np.broadcast_to(gy[:, None, None, :] / 20, x.shape), what="grad", **TOL)


ACTIVATIONS = {
    "relu": (nn.ReLU, (), torch.nn.ReLU(), F.relu),
    "relu6": (nn.ReLU6, (), torch.nn.ReLU6(), F.relu6),
    "leaky": (nn.LeakyReLU, (0.2,), torch.nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    "sigmoid": (nn.Sigmoid, (), torch.nn.Sigmoid(), F.sigmoid),
    "tanh": (nn.Tanh, (), torch.nn.Tanh(), F.tanh),
    "swish": (nn.Swish, (), torch.nn.SiLU(), F.swish),
    "softmax": (nn.Softmax, (), torch.nn.Softmax(dim=-1), F.softmax),
    "identity": (nn.Identity, (), torch.nn.Identity(), lambda x: x),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_torch_and_functional(name):
    cls, args, t, fn = ACTIVATIONS[name]
    x = away_from(rand((2, 3, 4, 5), scale=4.0), points=(0.0, 6.0))
    layer = cls(*args)
    # no layout change: element-wise (softmax over the last axis in both)
    y = module_parity(layer, t, x, None)
    np.testing.assert_array_equal(y.data, fn(sd.tensor(x)).data)


def test_dropout_train_matches_functional_with_same_seed_and_eval_is_identity():
    x = rand((4, 5, 6)) + 3.0
    layer = nn.Dropout(0.3)
    sd.manual_seed(7)
    xs = sd.tensor(x, requires_grad=True)
    y = layer(xs)
    ref = F.dropout(sd.tensor(x), 0.3, True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(y.data, ref.data)
    kept = y.data != 0
    assert 0.55 < kept.mean() < 0.85
    np.testing.assert_allclose(y.data[kept], x[kept] / 0.7, rtol=1e-12)
    y.backward(np.ones_like(x))
    np.testing.assert_allclose(xs.grad, kept / 0.7, rtol=1e-12)
    # same seed, same mask; another seed, another mask
    sd.manual_seed(7)
    np.testing.assert_array_equal(layer(sd.tensor(x)).data, y.data)
    sd.manual_seed(8)
    assert np.any(layer(sd.tensor(x)).data != y.data)
    layer.eval()
    np.testing.assert_array_equal(layer(sd.tensor(x)).data, x)


# --------------------------------------------------------------------------- BatchNorm2d
BN_MAP = {"gamma": ("weight", None), "beta": ("bias", None)}


def bn_input(seed, shape=(4, 3, 5, 3)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * rng.uniform(0.5, 3.0, shape[-1]) + rng.standard_normal(shape[-1]) * 2


@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batchnorm2d_training_and_running_stats_match_torch(momentum):
    layer = nn.BatchNorm2d(momentum=momentum)
    layer.build((1, 1, 1, 3), dtype=np.float64)
    to64(layer)
    t = torch.nn.BatchNorm2d(3, momentum=momentum).double()
    for step in range(3):
        layer.zero_grad()
        t.zero_grad()
        module_parity(layer, t, bn_input(step), "nhwc", BN_MAP, seed=step)
        assert_close(layer.running_mean, t.running_mean.numpy(), what=f"running_mean step {step}", **TOL)
        assert_close(layer.running_var, t.running_var.numpy(), what=f"running_var step {step}", **TOL)
    assert np.all(np.abs(layer.running_mean) > 1e-3)
    # eval: the running statistics normalise, and are not updated
    layer.eval()
    t.eval()
    layer.zero_grad()
    t.zero_grad()
    before = layer.running_mean.copy(), layer.running_var.copy()
    x = bn_input(9)
    y = module_parity(layer, t, x, "nhwc", BN_MAP)
    np.testing.assert_array_equal(layer.running_mean, before[0])
    np.testing.assert_array_equal(layer.running_var, before[1])
    ref = (x - before[0]) / np.sqrt(before[1] + 1e-5) * layer.gamma.data + layer.beta.data
    assert_close(y.data, ref, what="eval forward", **TOL)


def test_batchnorm2d_equals_functional():
    layer = nn.BatchNorm2d(3)
    x = sd.tensor(bn_input(0).astype(np.float32))
    y = layer(x)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    ref = F.batch_norm(x, rm, rv, layer.gamma, layer.beta, training=True, momentum=0.1)
    np.testing.assert_array_equal(y.data, ref.data)
    np.testing.assert_array_equal(layer.running_mean, rm)
    np.testing.assert_array_equal(layer.running_var, rv)


def test_frozen_batchnorm_uses_running_stats_in_train_mode():
    sd.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(None, 4, 3), nn.BatchNorm2d())
    model.build((1, 5, 5, 3), dtype=np.float64)
    to64(model)
    bn = model[1]
    for s in range(3):  # learn some running statistics
        model(sd.tensor(bn_input(s, (4, 5, 5, 3))))
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    assert np.all(var != 1.0)
    assert model.freeze("1") == ["1.gamma", "1.beta"]
    assert bn.frozen and model.training and bn.training
    x = sd.tensor(bn_input(5, (4, 5, 5, 3)))
    y = model(x)
    z = F.conv2d(x, model[0].weight, model[0].bias).data
    ref = (z - mean) / np.sqrt(var + bn.eps) * bn.gamma.data + bn.beta.data
    assert_close(y.data, ref, what="frozen forward", **TOL)
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)
    y.sum().backward()
    assert bn.gamma.grad is None and bn.beta.grad is None
    assert model[0].weight.grad is not None
    # unfrozen again: batch statistics in training, running statistics move
    model.unfreeze("1")
    model(x)
    assert np.any(bn.running_mean != mean)


# --------------------------------------------------------------------------- Conv1d, AdaptiveAvgPool2d, ceil mode
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2, groups=2, padding="same")])
def test_conv1d_matches_torch(kw):
    layer = to64(nn.Conv1d(4, 6, 3, **kw))
    t_kw = dict(kw, padding=kw["padding"]) if "padding" in kw else kw
    ref = torch.nn.Conv1d(4, 6, 3, **t_kw).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.weight.data.transpose(2, 1, 0)))     # (KW, I, O) -> (O, I, KW)
        ref.bias.copy_(torch.from_numpy(layer.bias.data))
    x = rand((2, 9, 4), seed=4)
    xs = sd.tensor(x, requires_grad=True)
    y = layer(xs)
    xt = torch.tensor(x.transpose(0, 2, 1), requires_grad=True)
    yt = ref(xt)
    assert_close(y.data, yt.detach().numpy().transpose(0, 2, 1), **TOL)
    gy = rand(y.shape, seed=5)
    y.backward(gy)
    yt.backward(torch.from_numpy(gy.transpose(0, 2, 1).copy()))
    assert_close(xs.grad, xt.grad.numpy().transpose(0, 2, 1), **TOL)
    assert_close(layer.weight.grad, ref.weight.grad.numpy().transpose(2, 1, 0), **TOL)
    assert layer.weight.shape == (3, 2 if kw.get("groups") else 4, 6)


def test_adaptive_avg_pool2d_layer_matches_torch_and_the_function():
    x = rand((2, 13, 10, 3), seed=6)
    ours = nn.AdaptiveAvgPool2d(6)(sd.tensor(x)).data
    theirs = torch.nn.AdaptiveAvgPool2d(6)(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert_close(ours, theirs, **TOL)
    assert_close(ours, F.adaptive_avg_pool2d(sd.tensor(x), (6, 6)).data, atol=0, rtol=0)
    assert repr(nn.AdaptiveAvgPool2d(6)) == "AdaptiveAvgPool2d(output_size=(6, 6))"


@pytest.mark.parametrize("layer, ref", [
    (lambda: nn.MaxPool2d(3, 2, ceil_mode=True), lambda: torch.nn.MaxPool2d(3, 2, ceil_mode=True)),
    (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
     lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
])
def test_ceil_mode_pool_layers_match_torch(layer, ref):
    x = rand((1, 10, 11, 2), seed=8)
    ours = layer()(sd.tensor(x)).data
    theirs = ref()(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    floor = layer()
    floor.ceil_mode = False
    assert ours.shape == theirs.shape and ours.shape[1] == floor(sd.tensor(x)).shape[1] + 1
    assert_close(ours, theirs, **TOL)
    assert "ceil_mode=True" in repr(layer())
