"""nn.Module: registration of parameters / sub-modules / buffers, names and order,
train() / eval() recursion, zero_grad, Sequential access and repr."""
from collections import OrderedDict

import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided import nn


def nested():
    """Sequential with a named nested block: names '0.*', 'block.0.*', 'block.1.*', 'head.*'."""
    return nn.Sequential(OrderedDict([
        ("0", nn.Conv2d(3, 4, 3)),
        ("block", nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))),
        ("flat", nn.Flatten()),
        ("head", nn.Linear(4, 2)),
    ]))


def x_batch(shape=(2, 3, 3, 3), seed=0, dtype=np.float32):
    return sd.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# --------------------------------------------------------------------------- names and order
def test_named_parameters_names_in_nested_sequential():
    model = nested()
    names = [n for n, _ in model.named_parameters()]
    assert sorted(names) == sorted(["0.weight", "0.bias", "block.0.weight", "block.0.bias",
                                    "block.1.gamma", "block.1.beta", "head.weight", "head.bias"])
    assert len(names) == len(set(names))
    # modules are visited in registration order (depth first)
    owners = [n.rsplit(".", 1)[0] for n in names]
    assert list(dict.fromkeys(owners)) == ["0", "block.0", "block.1", "head"]
    # gamma comes before beta (assigned in that order)
    assert names.index("block.1.gamma") < names.index("block.1.beta")


def test_named_parameters_are_the_layer_objects():
    model = nested()
    named = dict(model.named_parameters())
    assert named["0.weight"] is model[0].weight
    assert named["block.1.gamma"] is model["block"][1].gamma
    assert named["head.bias"] is model.head.bias
    params = model.parameters()
    assert [id(p) for p in params] == [id(p) for _, p in model.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)


def test_weight_is_registered_before_bias():
    assert [n for n, _ in nn.Conv2d(3, 4, 3).named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in nn.Linear(3, 4).named_parameters()] == ["weight", "bias"]
    lazy32, lazy64 = nn.Conv2d(None, 4, 3), nn.Conv2d(None, 4, 3)
    lazy32(x_batch(dtype=np.float32))
    lazy64(x_batch(dtype=np.float64))
    assert [n for n, _ in lazy32.named_parameters()] == [n for n, _ in lazy64.named_parameters()]


def test_buffers_are_in_state_dict_but_not_parameters():
    model = nested()
    state = model.state_dict()
    params = dict(model.named_parameters())
    assert "block.1.running_mean" in state and "block.1.running_var" in state
    assert "block.1.running_mean" not in params and "block.1.running_var" not in params
    assert set(state) == set(params) | {"block.1.running_mean", "block.1.running_var"}
    assert dict(model.named_buffers()).keys() == {"block.1.running_mean", "block.1.running_var"}
    bn = model["block"][1]
    assert state["block.1.running_var"] is bn.running_var  # documented: not copies
    assert state["block.1.gamma"] is bn.gamma.data
    np.testing.assert_array_equal(state["block.1.running_var"], np.ones(4))
    # the parameter count does not include the running statistics
    assert model.num_parameters(trainable_only=False) == sum(p.data.size for p in params.values())


def test_plain_attributes_are_not_registered():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = 3
            self.table = np.zeros(3)      # an ndarray not declared as a buffer
            self.layer = nn.Linear(2, 2)
            self.extra = nn.Parameter(np.ones(2))

        def forward(self, x):
            return self.layer(x) * self.extra

    m = M()
    assert {n for n, _ in m.named_parameters()} == {"layer.weight", "layer.bias", "extra"}
    assert set(m.state_dict()) == {"layer.weight", "layer.bias", "extra"}
    assert m.children() == [m.layer]
    # re-assigning a registered name to a plain value unregisters it
    m.extra = None
    assert {n for n, _ in m.named_parameters()} == {"layer.weight", "layer.bias"}


def test_register_buffer():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("stats", np.arange(3.0))

    m = M()
    assert list(m.state_dict()) == ["stats"] and m.parameters() == []
    m.stats = np.zeros(3)  # re-assignment keeps it a buffer
    assert m.state_dict()["stats"] is m.stats


def test_missing_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match="super"):
        Bad()


# --------------------------------------------------------------------------- modes and gradients
def test_train_eval_recursion():
    model = nested()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert len(model.modules()) == 9
    assert not any(m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not model["block"][3].training


def test_eval_turns_off_nested_dropout_and_uses_running_stats():
    sd.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Dropout(0.5)))
    x = x_batch((4, 8))
    model.eval()
    np.testing.assert_array_equal(model(x).data, x.data)
    model.train()
    assert np.any(model(x).data != x.data)


def test_zero_grad_and_accumulation():
    model = nested()
    model.eval()  # deterministic (no dropout)
    x = x_batch((2, 3, 3, 3))
    model(x).sum().backward()
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    assert all(np.any(g != 0) for g in grads.values())
    model(x).sum().backward()  # gradients accumulate (PyTorch semantics)
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * grads[n], rtol=1e-5, atol=1e-6)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------- Sequential
def test_sequential_access():
    layers = [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2] and model["1"] is layers[1]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head) == layers[1:]
    assert [n for n, _ in head.named_parameters()] == [n for n, _ in model.named_parameters() if n.startswith("2.")]
    model.append(nn.Sigmoid())
    assert len(model) == 4 and isinstance(model[3], nn.Sigmoid)
    x = x_batch((5, 3))
    ref = F.sigmoid(layers[2](layers[1](layers[0](x))))
    np.testing.assert_array_equal(model(x).data, ref.data)
    with pytest.raises(TypeError, match="Linear|function|int"):
        nn.Sequential(nn.ReLU(), 3)


# --------------------------------------------------------------------------- repr
def test_repr_shows_only_non_default_arguments():
    assert repr(nn.Conv2d(3, 8, 3)) == "Conv2d(3, 8, kernel_size=(3, 3))"
    r = repr(nn.Conv2d(3, 8, 3, stride=2, padding="same", bias=False))
    assert r == "Conv2d(3, 8, kernel_size=(3, 3), stride=2, padding='same', bias=False)"
    r = repr(nn.Conv2d(4, 8, (3, 1), dilation=2, groups=2))
    assert r == "Conv2d(4, 8, kernel_size=(3, 1), dilation=2, groups=2)"
    assert repr(nn.Linear(3, 4)) == "Linear(3, 4)"
    assert repr(nn.Linear(3, 4, bias=False)) == "Linear(3, 4, bias=False)"
    assert repr(nn.BatchNorm2d(4)) == "BatchNorm2d(4)"
    assert repr(nn.BatchNorm2d(4, momentum=0.01)) == "BatchNorm2d(4, momentum=0.01)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(2)"
    assert repr(nn.MaxPool2d(3, stride=2, padding=1)) == "MaxPool2d(3, stride=2, padding=1)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(2)"
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


def test_repr_defaults_hidden_and_non_defaults_shown():
    assert repr(nn.Dropout()) == "Dropout()"
    assert repr(nn.LeakyReLU()) == "LeakyReLU()"
    assert "eps=0.001" in repr(nn.BatchNorm2d(4, eps=1e-3))


def test_sequential_repr_nests_children():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)),
                                       ("block", nn.Sequential(nn.ReLU(), nn.Linear(2, 3)))]))
    assert repr(model) == ("Sequential(\n"
                           "  (conv): Conv2d(1, 2, kernel_size=(3, 3))\n"
                           "  (block): Sequential(\n"
                           "    (0): ReLU()\n"
                           "    (1): Linear(2, 3)\n"
                           "  )\n"
                           ")")


def test_named_children_and_own_parameters():
    model = nested()
    assert [n for n, _ in model.named_children()] == ["0", "block", "flat", "head"]
    assert model.named_children()[1][1] is model["block"]
    assert model.own_parameters() == [] and model["block"].own_parameters() == []
    assert model.head.own_parameters() == [model.head.weight, model.head.bias]
