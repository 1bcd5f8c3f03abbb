"""Forward hooks and pre-hooks, removable handles, StopForward, evaluating() and capture_outputs."""
from collections import OrderedDict

import numpy as np
import pytest

import strided as sd
from strided import nn


def net():
    sd.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(1, 2, 3, padding=1)),
        ("block", nn.Sequential(nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout(0.5))),
        ("flat", nn.Flatten()),
        ("head", nn.Linear(2 * 4 * 4, 3)),
    ]))


def x_batch(n=2, seed=0):
    return sd.tensor(np.random.default_rng(seed).standard_normal((n, 4, 4, 1)).astype(np.float32))


# --------------------------------------------------------------------------- hooks
def test_hooks_run_in_registration_order_around_forward():
    model = net()
    events = []
    model.conv.register_forward_pre_hook(lambda m, inputs: events.append(("pre1", m)))
    model.conv.register_forward_pre_hook(lambda m, inputs: events.append(("pre2", m)))
    model.conv.register_forward_hook(lambda m, inputs, out: events.append(("post1", out.shape)))
    model.head.register_forward_hook(lambda m, inputs, out: events.append(("head", out.shape)))
    model.conv.register_forward_hook(lambda m, inputs, out: events.append(("post2", out.shape)))
    model(x_batch())
    assert events == [("pre1", model.conv), ("pre2", model.conv), ("post1", (2, 4, 4, 2)), ("post2", (2, 4, 4, 2)),
                      ("head", (2, 3))]


def test_hook_receives_the_inputs_and_output_and_may_replace_the_output():
    model = net().eval()
    x = x_batch()
    seen = {}

    def double(module, inputs, output):
        seen["inputs"], seen["output"] = inputs, output
        return output * 2

    with sd.no_grad():
        expected_conv = model.conv(x).data
        reference = model.head(model.flat(model.block(model.conv(x) * 2))).data
    handle = model.conv.register_forward_hook(double)
    with sd.no_grad():
        out = model(x)
    assert isinstance(seen["inputs"], tuple) and seen["inputs"][0] is x
    np.testing.assert_array_equal(seen["output"].data, expected_conv)
    np.testing.assert_allclose(out.data, reference, rtol=1e-6)
    handle.remove()
    with sd.no_grad():
        np.testing.assert_allclose(model(x).data, model.head(model.flat(model.block(model.conv(x)))).data)


def test_later_hooks_see_the_replacement():
    layer = nn.ReLU()
    layer.register_forward_hook(lambda m, i, out: out + 1)
    seen = []
    layer.register_forward_hook(lambda m, i, out: seen.append(out.data.copy()))
    out = layer(sd.tensor(np.array([-1.0, 2.0], np.float32)))
    np.testing.assert_array_equal(seen[0], [1.0, 3.0])
    np.testing.assert_array_equal(out.data, [1.0, 3.0])


def test_pre_hook_modifies_the_input():
    layer = nn.Linear(2, 1)
    layer.weight.data[...] = 1.0
    layer.bias.data[...] = 0.0
    x = sd.tensor(np.array([[1.0, 2.0]], np.float32))
    layer.register_forward_pre_hook(lambda m, inputs: inputs[0] * 10)          # a single value
    assert layer(x).item() == pytest.approx(30.0)
    layer.register_forward_pre_hook(lambda m, inputs: (inputs[0] + 1,))         # a tuple
    assert layer(x).item() == pytest.approx(32.0)                               # (x*10 + 1) summed


def test_handle_remove_and_context_manager():
    layer = nn.ReLU()
    calls = []
    handle = layer.register_forward_hook(lambda m, i, o: calls.append("a"))
    assert handle.active
    layer(sd.tensor(np.ones(2, np.float32)))
    handle.remove()
    handle.remove()                                   # twice: harmless
    assert not handle.active
    layer(sd.tensor(np.ones(2, np.float32)))
    assert calls == ["a"]
    with layer.register_forward_pre_hook(lambda m, i: calls.append("pre")) as h:
        layer(sd.tensor(np.ones(2, np.float32)))
    assert not h.active and calls == ["a", "pre"]
    layer(sd.tensor(np.ones(2, np.float32)))
    assert calls == ["a", "pre"]
    # removing one hook leaves the others
    keep = layer.register_forward_hook(lambda m, i, o: calls.append("keep"))
    drop = layer.register_forward_hook(lambda m, i, o: calls.append("drop"))
    drop.remove()
    layer(sd.tensor(np.ones(2, np.float32)))
    assert calls[-1] == "keep" and keep.active


def test_a_hook_may_remove_itself_while_running():
    layer = nn.ReLU()
    calls = []
    handles = []

    def once(m, i, o):
        calls.append(1)
        handles[0].remove()

    handles.append(layer.register_forward_hook(once))
    layer.register_forward_hook(lambda m, i, o: calls.append(2))
    layer(sd.tensor(np.ones(1, np.float32)))
    layer(sd.tensor(np.ones(1, np.float32)))
    assert calls == [1, 2, 2]


def test_hooks_must_be_callable():
    with pytest.raises(TypeError, match="forward hook must be callable"):
        nn.ReLU().register_forward_hook("not a function")
    with pytest.raises(TypeError, match="pre-hook must be callable"):
        nn.ReLU().register_forward_pre_hook(None)


def test_an_exception_in_a_hooked_forward_removes_nothing():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = nn.Sequential(nn.ReLU(), Boom())
    calls = []
    handle = model[0].register_forward_hook(lambda m, i, o: calls.append(1))
    with pytest.raises(RuntimeError, match="boom"):
        model(sd.tensor(np.ones(2, np.float32)))
    assert handle.active and calls == [1]
    # a hook that raises propagates its error and also stays registered
    bad = model[0].register_forward_pre_hook(lambda m, i: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        model(sd.tensor(np.ones(2, np.float32)))
    assert bad.active and handle.active
    bad.remove()
    # capture_outputs removes its own hooks after the exception and leaves the user's in place
    with pytest.raises(RuntimeError, match="boom"):
        with nn.capture_outputs(model, ["0", "1"]):
            model(sd.tensor(np.ones(2, np.float32)))
    assert handle.active
    assert [len(m._forward_hooks) for m in model.modules()] == [0, 1, 0]
    assert [len(m._forward_pre_hooks) for m in model.modules()] == [0, 0, 0]
    # after the exception StopForward still ends the next pass at the outermost call
    with nn.capture_outputs(model, ["0"], stop=True) as taps:
        assert model(sd.tensor(np.ones(2, np.float32))) is None
    assert taps.stopped and "0" in taps


# --------------------------------------------------------------------------- StopForward
def test_stop_forward_skips_the_rest_and_the_outermost_call_returns_its_value():
    model = net()
    ran = []
    model.head.register_forward_pre_hook(lambda m, i: ran.append("head"))

    def stop(module, inputs, output):
        raise nn.StopForward(("stopped", output.shape))

    handle = model.block.register_forward_hook(stop)
    assert model(x_batch()) == ("stopped", (2, 4, 4, 2))
    assert ran == []
    handle.remove()
    assert model(x_batch()).shape == (2, 3) and ran == ["head"]


# --------------------------------------------------------------------------- evaluating()
def test_evaluating_restores_each_modules_own_flag():
    model = net()
    model.train()
    model.block.eval()                               # a mixed model: a frozen block in eval mode
    model.block[1].train()
    before = [m.training for m in model.modules()]
    assert True in before and False in before
    with model.evaluating() as same:
        assert same is model
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before
    with pytest.raises(RuntimeError, match="inside"):
        with model.evaluating():
            raise RuntimeError("inside")
    assert [m.training for m in model.modules()] == before


def test_evaluating_uses_running_statistics():
    model = net()
    bn = model.block[0]
    model.train()
    with model.evaluating(), sd.no_grad():
        model(x_batch(8))
    np.testing.assert_array_equal(bn.running_mean, 0)      # eval: running statistics untouched
    model(x_batch(8))
    assert np.any(bn.running_mean != 0)


# --------------------------------------------------------------------------- capture_outputs
def test_capture_outputs_records_named_layers_per_pass():
    model = net().eval()
    x1, x2 = x_batch(seed=1), x_batch(seed=2)
    with nn.capture_outputs(model, ["conv", "block.1", "head"]) as taps:
        out = model(x1)
        assert set(taps) == {"conv", "block.1", "head"} and taps["head"] is out
        with sd.no_grad():
            np.testing.assert_array_equal(taps["conv"].data, model.conv(x1).data)
        model(x2)                                     # a new pass replaces the old outputs
        with sd.no_grad():
            np.testing.assert_array_equal(taps["conv"].data, model.conv(x2).data)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_capture_outputs_keeps_the_graph_for_style_transfer_taps():
    model = net().eval()
    x = sd.tensor(np.random.default_rng(0).standard_normal((1, 4, 4, 1)).astype(np.float32), requires_grad=True)
    with nn.capture_outputs(model, "block.1") as taps:
        model(x)
    (taps["block.1"] * taps["block.1"]).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_capture_outputs_first_call_of_a_shared_module():
    relu = nn.ReLU()

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = relu

        def forward(self, x):
            return self.relu(self.relu(x) - 1)

    model = Twice()
    x = sd.tensor(np.array([2.0, 0.5], np.float32))
    with nn.capture_outputs(model, ["relu"]) as taps:
        out = model(x)
    np.testing.assert_array_equal(taps["relu"].data, [2.0, 0.5])    # first call
    np.testing.assert_array_equal(out.data, [1.0, 0.0])


def test_capture_outputs_stop_skips_later_layers():
    model = net()
    ran = []
    model.head.register_forward_pre_hook(lambda m, i: ran.append(1))
    with nn.capture_outputs(model, ["conv", "block"], stop=True) as taps:
        assert model(x_batch()) is None
    assert taps.stopped and set(taps) == {"conv", "block"} and ran == []
    with nn.capture_outputs(model, ["head"], stop=True) as taps:   # the last layer: the pass ends there anyway
        assert model(x_batch()) is None
    assert ran == [1]


def test_capture_outputs_unknown_name():
    with pytest.raises(KeyError, match=r"no sub-module named 'nope'.*conv"):
        with nn.capture_outputs(net(), ["conv", "nope"]):
            pass
