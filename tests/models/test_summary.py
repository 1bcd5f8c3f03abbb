"""model.summary() on registered architectures at small inputs, and one training step through the blocks."""
import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided import models


@pytest.mark.parametrize("name,kw,input_shape,total,last_rows", [
    ("lenet5", {}, (1, 32, 32, 1), 61_706, [("classifier.5", "Linear", "(1, 10)", "850")]),
    ("resnet18", {}, (1, 64, 64, 3), 11_689_512,
     [("avgpool", "GlobalAvgPool2d", "(1, 512)", "0"), ("fc", "Linear", "(1, 1000)", "513,000")]),
    ("mobilenet_v2", {}, (1, 64, 64, 3), 3_504_872,
     [("avgpool", "GlobalAvgPool2d", "(1, 1280)", "0"), ("classifier.1", "Linear", "(1, 1000)", "1,281,000")]),
])
def test_summary_runs(name, kw, input_shape, total, last_rows):
    model = models.create(name, **kw)
    text = model.summary(input_shape, print_fn=None)
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total:,}" in text
    rows = [line.split() for line in text.splitlines()]
    for expected in last_rows:
        name_, type_, shape, count = expected
        assert any(r[:2] == [name_, type_] and " ".join(r[2:-1]) == shape and r[-1] == count for r in rows), expected


def test_resnet18_summary_shapes_follow_the_stages():
    text = models.create("resnet18").summary((1, 64, 64, 3), print_fn=None)
    shapes = {line.split()[0]: " ".join(line.split()[2:-1]) for line in text.splitlines() if line.startswith("layer")}
    assert shapes["layer1.0.bn2"] == "(1, 16, 16, 64)"
    assert shapes["layer2.0.downsample.1"] == "(1, 8, 8, 128)"
    assert shapes["layer4.1.relu"] == "(1, 2, 2, 512)"


@pytest.mark.parametrize("name,kw,size", [("resnet20", {}, 32), ("mobilenet_v2", {"width_mult": 0.35}, 32),
                                          ("efficientnet_lite0", {}, 32)])
def test_one_training_step_reaches_every_parameter(name, kw, size):
    sd.manual_seed(0)
    model = models.create(name, num_classes=5, **kw)
    model.train()
    x = sd.tensor(np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32))
    loss = F.cross_entropy(model(x), np.array([1, 3]))
    loss.backward()
    assert np.isfinite(loss.item())
    missing = [n for n, p in model.named_parameters() if p.grad is None or not np.all(np.isfinite(p.grad))]
    assert not missing
    # training mode used batch statistics and updated the running ones
    bn = next(m for _, m in model.named_modules() if isinstance(m, sd.nn.BatchNorm2d))
    assert not np.allclose(bn.running_mean, 0)
