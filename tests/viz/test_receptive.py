"""receptive_field: hand arithmetic, published values, and the gradient support of a unit."""
import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided import models, nn
from strided.viz import ReceptiveField, VizError, receptive_field, receptive_fields


def test_lenet5_second_conv_sees_14x14():
    # conv 5 (pad 2): size 5, jump 1, start -2; max pool 2: size 5 + 1*1 = 6, jump 2;
    # conv 5: size 6 + 4*2 = 14, jump 2
    model = models.create("lenet5", input_size=28)
    rf1 = receptive_field(model, "features.0")
    assert (rf1.size, rf1.jump, rf1.start, rf1.exact) == ((5, 5), (1, 1), (-2, -2), True)
    assert receptive_field(model, "features.2").size == (6, 6)
    rf = receptive_field(model, "features.3")
    assert (rf.size, rf.jump, rf.start, rf.exact) == ((14, 14), (2, 2), (-2, -2), True)
    assert rf.box(0, 0) == (-2, -2, 12, 12) and rf.box(9, 3) == (16, 4, 30, 18)
    # 32x32 LeNet-5 has no padding: unit (0, 0) starts at the corner
    assert receptive_field(models.create("lenet5"), "features.3").start == (0, 0)


def test_stride_padding_dilation_and_same_padding_compose():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(),
                          nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(2, 2, 3, dilation=2),
                          nn.Conv2d(2, 2, (1, 3), stride=(1, 2), padding="same"))
    # conv3/2 p1: 3, jump 2, start -1; pool3/2 p1: 3 + 2*2 = 7, jump 4, start -3; conv3 d2 (span 5): 7 + 4*4 = 23
    rf = receptive_field(model, "3", input_shape=(32, 32, 1))
    assert (rf.size, rf.jump, rf.start) == ((23, 23), (4, 4), (-3, -3))
    # 1x3 conv, stride (1, 2), 'same' on a 4x4 map: columns pad (0, 1) -> size 23 + 2*4, start unchanged
    rf = receptive_field(model, "4", input_shape=(32, 32, 1))
    assert (rf.size, rf.jump, rf.start) == ((23, 31), (4, 8), (-3, -3))
    # a container is the field of its output
    assert receptive_fields(model, ["0", "3"], input_shape=(32, 32, 1))["3"].size == (23, 23)


@pytest.mark.parametrize("name,layer,size", [("resnet18", "layer4.1.conv2", 435), ("resnet20", "layer3.2.conv2", 81),
                                             ("googlenet", "conv3.conv", 19)])
def test_published_receptive_fields(name, layer, size):
    rf = receptive_field(models.create(name), layer, input_shape=(64, 64, 3) if name != "resnet20" else None)
    assert rf.size == (size, size) and rf.exact, rf


def test_squeeze_excitation_is_a_documented_approximation():
    model = models.create("efficientnet_b0")
    rfs = receptive_fields(model, ["features.1.0.block.depthwise.0", "features.1.0.block.project.0"],
                           input_shape=(64, 64, 3))
    assert rfs["features.1.0.block.depthwise.0"].exact
    after = rfs["features.1.0.block.project.0"]
    assert not after.exact and any("squeeze-and-excitation" in n for n in after.notes)
    assert after.size == (7, 7)          # the local field: stem 3x3/2, then depthwise 3x3 at jump 2


def test_unknown_ops_are_approximated_from_shapes():
    class FunctionalPool(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2)

    model = nn.Sequential(nn.Conv2d(1, 2, 3), FunctionalPool(), nn.Conv2d(2, 2, 3))
    rf = receptive_field(model, "2", input_shape=(12, 12, 1))
    assert rf.size == (8, 8) and rf.jump == (2, 2) and not rf.exact
    assert "treated as a 2x2 window, stride 2x2" in rf.notes[0]
    # strided slicing and spatial padding outside modules are exact
    class Slice(nn.Module):
        def forward(self, x):
            return F.pad(x[:, 1::2, 1::2, :], 1)

    rf = receptive_field(nn.Sequential(Slice(), nn.Conv2d(1, 1, 3)), "1", input_shape=(12, 12, 1))
    assert (rf.size, rf.jump, rf.start, rf.exact) == ((5, 5), (2, 2), (-1, -1), True)


def test_untraceable_models_fall_back_to_the_registered_chain():
    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3)
            self.b = nn.MaxPool2d(2)
            self.c = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            if not x.data.any():
                raise ValueError("an all-zero image")
            return self.c(self.b(self.a(x)))

    rf = receptive_field(Picky(), "c", input_shape=(16, 16, 1))
    assert rf.size == (8, 8) and not rf.exact and "could not be traced" in rf.notes[0]


def test_errors():
    model = models.create("lenet5", input_size=28)
    with pytest.raises(VizError, match="features.0, features.3"):
        receptive_field(model, "features.7")
    with pytest.raises(VizError, match="not a spatial map"):
        receptive_field(model, "classifier.1")
    with pytest.raises(VizError, match="input_shape"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3)), "0")


def _gradient_support(prefix, image, i, j):
    x = sd.tensor(image[None], requires_grad=True)
    out = prefix(x)
    grad = np.zeros(out.shape, dtype=np.float64)
    grad[0, i, j, :] = 1.0
    out.backward(grad.astype(out.dtype))
    return np.abs(x.grad[0]).sum(axis=-1) > 0


def _box_mask(rf, i, j, shape):
    top, left, bottom, right = rf.box(i, j)
    mask = np.zeros(shape, dtype=bool)
    mask[max(top, 0):bottom, max(left, 0):right] = True
    return mask


def test_the_field_is_exactly_the_gradient_support_of_a_linear_chain():
    sd.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 5, padding=2), nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, stride=2, padding=1),
                          nn.Conv2d(4, 2, 3, dilation=2))
    model.eval()
    image = np.random.default_rng(0).random((30, 30, 1)).astype(np.float64) + 0.5
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    rf = receptive_field(model, "3", input_shape=(30, 30, 1))
    for i, j in [(0, 0), (1, 2), (3, 3)]:
        support = _gradient_support(model, image, i, j)
        np.testing.assert_array_equal(support, _box_mask(rf, i, j, (30, 30)), err_msg=f"unit {(i, j)}")


def test_a_residual_unit_sees_only_inside_its_field():
    sd.manual_seed(1)
    model = models.create("resnet_small")
    model.eval()
    layer = "stages.2.conv2"
    rf = receptive_field(model, layer)
    prefix_out = {}

    def forward(x):
        return prefix_out.setdefault("y", model.stages[2].conv2.__class__.forward(model.stages[2].conv2, x))

    image = np.random.default_rng(1).random((28, 28, 1)).astype(np.float32)
    object.__setattr__(model.stages[2].conv2, "forward", forward)
    try:
        x = sd.tensor(image[None], requires_grad=True)
        model(x)
    finally:
        del model.stages[2].conv2.__dict__["forward"]
    y = prefix_out["y"]
    i, j = 3, 4
    grad = np.zeros(y.shape, dtype=y.dtype)
    grad[0, i, j, :] = 1
    y.backward(grad)
    support = np.abs(x.grad[0]).sum(axis=-1) > 0
    assert support.any()
    assert not (support & ~_box_mask(rf, i, j, (28, 28))).any()


def test_receptive_field_str_and_center():
    rf = ReceptiveField((14, 14), (2, 2), (-2, -2))
    assert str(rf).startswith("14x14") and rf.center(0, 0) == (4.5, 4.5)
