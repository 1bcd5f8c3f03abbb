"""Freezing by name prefix: requires_grad, gradients, parameter counts, errors."""
from collections import OrderedDict

import numpy as np
import pytest

import strided as sd
from strided import nn


def model():
    sd.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("a", nn.Conv2d(3, 4, 3)),             # 3*3*3*4 + 4 = 112
        ("ab", nn.Conv2d(4, 4, 1)),            # 16 + 4 = 20  (shares the prefix "a" as a string only)
        ("block", nn.Sequential(nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))),  # 8 + 2, 2 + 2
        ("flat", nn.Flatten()),
        ("head", nn.Linear(2, 3)),             # 6 + 3
    ]))


SIZES = {"a": 112, "ab": 20, "block.0": 10, "block.1": 4, "head": 9}
TOTAL = sum(SIZES.values())


def x_batch():
    return sd.tensor(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32))


def loss(m):
    """A random weighting of the outputs (a plain sum would give batch norm a zero gradient)."""
    y = m(x_batch())
    return (y * np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)).sum()


def test_num_parameters():
    m = model()
    assert m.num_parameters(trainable_only=False) == TOTAL == 155
    assert m.num_parameters() == m.num_parameters(trainable_only=True) == TOTAL


def test_freeze_by_prefix_is_per_name_component():
    m = model()
    frozen = m.freeze("a")
    assert sorted(frozen) == ["a.bias", "a.weight"]  # not "ab.*"
    assert not m.a.weight.requires_grad and not m.a.bias.requires_grad
    assert m.ab.weight.requires_grad
    assert m.num_parameters(trainable_only=True) == TOTAL - SIZES["a"]
    assert m.num_parameters(trainable_only=False) == TOTAL
    assert len(m.parameters(trainable_only=True)) == 8 and len(m.parameters()) == 10
    assert sorted(m.freeze("block.1")) == ["block.1.beta", "block.1.gamma"]
    assert sorted(m.freeze("block.")) == sorted(["block.0.weight", "block.0.bias", "block.1.gamma", "block.1.beta"])
    assert m.num_parameters() == SIZES["ab"] + SIZES["head"]
    assert m.freeze("head.weight") == ["head.weight"]
    assert m.num_parameters() == SIZES["ab"] + 3


def test_frozen_parameters_get_no_gradient():
    m = model()
    m.freeze("a")
    m.freeze("block.0")
    loss(m).backward()
    for name, p in m.named_parameters():
        if name.startswith("a.") or name.startswith("block.0."):
            assert p.grad is None, name
        else:
            assert p.grad is not None and np.any(p.grad != 0), name


def test_unfreeze_and_freeze_all():
    m = model()
    assert len(m.freeze()) == 10
    assert m.num_parameters() == 0 and m.parameters(trainable_only=True) == []
    assert sorted(m.unfreeze("head")) == ["head.bias", "head.weight"]
    assert m.num_parameters() == SIZES["head"]
    m.unfreeze()
    assert m.num_parameters() == TOTAL
    loss(m).backward()
    assert all(p.grad is not None for p in m.parameters())


def test_unknown_prefix_names_top_level_names():
    m = model()
    with pytest.raises(ValueError) as err:
        m.freeze("backbone")
    msg = str(err.value)
    assert "'backbone'" in msg
    for top in ("a", "ab", "block", "head"):
        assert f"'{top}'" in msg
    with pytest.raises(ValueError, match="'blo'"):
        m.unfreeze("blo")  # a partial component is not a prefix
    assert m.num_parameters() == TOTAL  # nothing changed


def test_optimizer_over_trainable_parameters_only_moves_them():
    m = model()
    m.freeze("a")
    opt = sd.optim.SGD(m.parameters(trainable_only=True), lr=0.1)
    before = {n: p.data.copy() for n, p in m.named_parameters()}
    loss(m).backward()
    opt.step()
    for name, p in m.named_parameters():
        if name.startswith("a."):
            np.testing.assert_array_equal(p.data, before[name])
        else:
            assert np.any(p.data != before[name]), name
