"""convert_torch_state: a PyTorch model's weights on a matching strided model give the same
outputs (NCHW in torch, NHWC in strided); order / name_map pairing; clear first-mismatch errors."""
from collections import OrderedDict

import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.io import convert_torch_state, read_torch

torch = pytest.importorskip("torch")


def torch_net():
    """conv -> BN -> ReLU -> depthwise conv (multiplier 2) -> BN -> ReLU -> maxpool -> flatten -> linear."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 8, 3, padding=1, groups=4), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for bn in (model[1], model[4]):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=g))
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.copy_(torch.randn(n, generator=g))
            bn.bias.copy_(torch.randn(n, generator=g))
    return model.eval()


def strided_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.DepthwiseConv2d(4, 3, padding=1, depth_multiplier=2), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).eval()


def outputs(torch_model, model):
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)  # NCHW
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    with sd.no_grad():
        actual = model(sd.tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))).data  # NHWC
    return actual, expected


def test_same_outputs_after_conversion_through_a_file(tmp_path):
    torch_model = torch_net()
    torch.save(torch_model.state_dict(), tmp_path / "net.pt")
    model = strided_net()
    state = convert_torch_state(read_torch(tmp_path / "net.pt"), model, flatten_chw={"8.weight": (8, 4, 4)})
    assert list(state) == list(model.state_dict())
    assert state["0.weight"].shape == (3, 3, 3, 4) and state["3.weight"].shape == (3, 3, 1, 8)
    assert state["8.weight"].shape == (128, 10) and state["1.gamma"].dtype == np.float32
    model.load_state_dict(state)
    actual, expected = outputs(torch_model, model)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_without_flatten_chw_the_linear_layer_is_wrong():
    """The (C, H, W) -> (H, W, C) reordering is needed: skipping it changes the outputs."""
    torch_model, model = torch_net(), strided_net()
    model.load_state_dict(convert_torch_state(torch_model.state_dict(), model))  # torch tensors accepted too
    actual, expected = outputs(torch_model, model)
    assert np.max(np.abs(actual - expected)) > 1e-2


def test_layouts_of_each_entry():
    torch_model, model = torch_net(), strided_net()
    torch_state = torch_model.state_dict()
    state = convert_torch_state(torch_state, model, flatten_chw={"8.weight": (8, 4, 4)})
    np.testing.assert_array_equal(state["0.weight"], torch_state["0.weight"].numpy().transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(state["3.weight"], torch_state["3.weight"].numpy().transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(state["1.gamma"], torch_state["1.weight"].numpy())
    np.testing.assert_array_equal(state["1.beta"], torch_state["1.bias"].numpy())
    np.testing.assert_array_equal(state["4.running_var"], torch_state["4.running_var"].numpy())
    assert not any("num_batches_tracked" in k for k in state)


def test_plain_linear_and_name_map():
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(5, 3), fc2=torch.nn.Linear(3, 2)))
    model = nn.Sequential(OrderedDict(head=nn.Linear(3, 2), body=nn.Linear(5, 3)))  # declared in another order
    name_map = {"body.weight": "fc1.weight", "body.bias": "fc1.bias",
                "head.weight": "fc2.weight", "head.bias": "fc2.bias"}
    state = convert_torch_state(torch_model.state_dict(), model, name_map=name_map)
    np.testing.assert_array_equal(state["body.weight"], torch_model.fc1.weight.detach().numpy().T)
    np.testing.assert_array_equal(state["head.bias"], torch_model.fc2.bias.detach().numpy())
    with pytest.raises(ValueError, match=r"entry #0: torch 'fc1.weight' \(3, 5\) -> strided 'head.weight' "
                                         r"\(3, 2\): after the layout change it has shape \(5, 3\)"):
        convert_torch_state(torch_model.state_dict(), model)  # by order the layers do not line up
    with pytest.raises(ValueError, match=r"does not cover 2 entries.*'body.weight', 'body.bias'"):
        convert_torch_state(torch_model.state_dict(), model, name_map={"head.weight": "fc2.weight",
                                                                       "head.bias": "fc2.bias"})
    with pytest.raises(ValueError, match="'fc3.weight', which is not in the torch state"):
        convert_torch_state(torch_model.state_dict(), model, name_map={**name_map, "head.weight": "fc3.weight"})


def test_architecture_mismatch_reports_first_bad_pair():
    torch_state = torch_net().state_dict()
    wider = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5))
    with pytest.raises(ValueError, match=r"first mismatch at entry #0: torch '0.weight' \(4, 3, 3, 3\) -> "
                                         r"strided '0.weight' \(3, 3, 3, 5\)"):
        convert_torch_state(torch_state, wider)
    shorter = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"torch state has 14 tensors .* model has 6; the first 6 fit; "
                                         r"first torch entry left over: '3.weight'"):
        convert_torch_state(torch_state, shorter)


def test_running_statistic_never_becomes_a_weight():
    """Same shapes, wrong roles: a conv without bias in strided shifts the pairing by one."""
    torch_model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    model = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="torch '0.bias' .* strided '1.gamma' .*a bias cannot become a weight"):
        convert_torch_state(torch_model.state_dict(), model)


def test_lazy_model_must_be_built_first():
    lazy = nn.Sequential(nn.Conv2d(None, 4, 3), nn.Flatten(), nn.Linear(None, 2))
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\) has no weights yet.*model.build"):
        convert_torch_state(torch_net().state_dict(), lazy)
