"""yolo_tiny: output shape, parameter count by hand, forward equal to a PyTorch twin with the
same weights, errors."""
import numpy as np
import pytest
import torch

import strided as sd
from strided.models.yolo import DEFAULT_ANCHORS, yolo_tiny


def expected_params(C=10, A=5, widths=(16, 32, 64, 128, 256)):
    convs = [(3, widths[0])] + list(zip(widths[:4], widths[1:])) + [(widths[4], widths[4])]
    n = sum(9 * i * o + 2 * o for i, o in convs)          # conv weights + BN gamma, beta
    return n + widths[4] * A * (5 + C) + A * (5 + C)


@pytest.mark.parametrize("size,grid", [(96, 6), (128, 8)])
def test_output_shape_and_attributes(size, grid):
    model = yolo_tiny(num_classes=3, input_size=size)
    with sd.no_grad():
        y = model(sd.tensor(np.zeros((2, size, size, 3), np.float32)))
    assert y.shape == (2, grid, grid, len(DEFAULT_ANCHORS) * 8)
    assert model.anchors.shape == (5, 2) and model.num_classes == 3 and model.stride == 16


def test_parameter_count_matches_docstring_and_hand_count():
    model = yolo_tiny()
    assert model.num_parameters() == expected_params() == 1_002_715
    assert "1,002,715" in yolo_tiny.__doc__


def test_objectness_prior_in_head_bias():
    model = yolo_tiny(num_classes=2, anchors=[[1, 1], [2, 1]])
    bias = model.head.bias.data
    np.testing.assert_allclose(bias[[4, 11]], np.log(0.01 / 0.99), rtol=1e-6)
    assert np.all(np.delete(bias, [4, 11]) == 0)
    with sd.no_grad():
        raw = model(sd.tensor(np.zeros((1, 32, 32, 3), np.float32))).data
    obj = 1 / (1 + np.exp(-raw.reshape(1, 2, 2, 2, 7)[..., 4]))
    assert np.all(np.abs(obj - 0.01) < 0.005)     # BN (batch statistics) zeroes a constant input


def torch_twin(model):
    """The same network in PyTorch (NCHW), weights copied from the strided model."""
    layers, state = [], model.state_dict()
    convs = sorted({k.rsplit(".", 2)[0] for k in state if k.startswith("features.") and k.endswith(".0.weight")},
                   key=lambda k: int(k.split(".")[1]))
    for prefix in convs:
        w = state[f"{prefix}.0.weight"]
        conv = torch.nn.Conv2d(w.shape[2], w.shape[3], 3, padding=1, bias=False)
        conv.weight.data = torch.tensor(np.transpose(w, (3, 2, 0, 1)).copy())
        bn = torch.nn.BatchNorm2d(w.shape[3])
        bn.weight.data = torch.tensor(state[f"{prefix}.1.gamma"])
        bn.bias.data = torch.tensor(state[f"{prefix}.1.beta"])
        bn.running_mean.data = torch.tensor(state[f"{prefix}.1.running_mean"])
        bn.running_var.data = torch.tensor(state[f"{prefix}.1.running_var"])
        layers += [conv, bn, torch.nn.LeakyReLU(0.1)]
        if int(prefix.split(".")[1]) < 8:
            layers.append(torch.nn.MaxPool2d(2))
    w = state["head.weight"]
    head = torch.nn.Conv2d(w.shape[2], w.shape[3], 1)
    head.weight.data = torch.tensor(np.transpose(w, (3, 2, 0, 1)).copy())
    head.bias.data = torch.tensor(state["head.bias"])
    return torch.nn.Sequential(*layers, head)


def test_forward_equals_pytorch_twin_train_and_eval():
    model = yolo_tiny(num_classes=2, anchors=[[1, 1], [2, 1]])
    rng = np.random.default_rng(0)
    twin = torch_twin(model)
    x = rng.random((2, 96, 96, 3)).astype(np.float32)
    for train in (True, False):
        model.train(train)
        twin.train(train)
        y = model(sd.tensor(x)).data
        with torch.no_grad():
            ref = twin(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_errors():
    with pytest.raises(ValueError, match=r"input_size must be a multiple of 16.*received input_size=100"):
        yolo_tiny(input_size=100)
    with pytest.raises(ValueError, match=r"anchors must be \(A, 2\) positive"):
        yolo_tiny(anchors=[[1, 0]])
    with pytest.raises(ValueError, match=r"num_classes must be a positive int, received num_classes=0"):
        yolo_tiny(num_classes=0)
