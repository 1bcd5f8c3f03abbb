"""Classic architectures: exact trainable parameter counts, one test per model.

Expected numbers are the reference implementations' own: torchvision's
``num_params`` (AlexNet, VGG, ResNet, GoogLeNet without aux heads, MobileNet v2,
EfficientNet B0-B7), Keras' MobileNet (trainable part: its totals also count
the BN running statistics), the CIFAR ResNets of He et al. (0.27M / 0.85M) and
EfficientNet-Lite0's 4.652M (TF lite / its PyTorch port).  Each model is built
once, counted, and run on one tiny image (eval mode, no graph) to check that
the whole graph connects and gives ``(1, num_classes)``.
"""
import gc

import numpy as np
import pytest

import strided as sd
from strided import models

COUNTS = [
    ("lenet5", {}, 61_706),
    ("alexnet", {}, 61_100_840),
    ("vgg16", {}, 138_357_544),
    ("vgg19", {}, 143_667_240),
    ("vgg16_bn", {}, 138_365_992),
    ("vgg19_bn", {}, 143_678_248),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    ("resnet101", {}, 44_549_160),
    ("resnet152", {}, 60_192_808),
    ("resnet20", {}, 269_722),                     # option A (zero-padding shortcuts), 10 classes
    ("resnet56", {}, 853_018),
    ("resnet20", {"shortcut": "B"}, 272_474),      # option B (1x1 projections)
    ("resnet56", {"shortcut": "B"}, 855_770),
    ("googlenet", {}, 6_624_904),
    ("mobilenet_v1", {}, 4_231_976),
    ("mobilenet_v1", {"alpha": 0.75}, 2_585_560),
    ("mobilenet_v1", {"alpha": 0.5}, 1_331_592),
    ("mobilenet_v1", {"alpha": 0.25}, 470_072),
    ("mobilenet_v2", {}, 3_504_872),
    ("efficientnet_b0", {}, 5_288_548),
    ("efficientnet_b1", {}, 7_794_184),
    ("efficientnet_b2", {}, 9_109_994),
    ("efficientnet_b3", {}, 12_233_232),
    ("efficientnet_b4", {}, 19_341_616),
    ("efficientnet_b5", {}, 30_389_784),
    ("efficientnet_b6", {}, 43_040_704),
    ("efficientnet_b7", {}, 66_347_960),
    ("efficientnet_lite0", {}, 4_652_008),
]

DEFAULT_SIZES = {"resnet20": 32, "resnet56": 32, "efficientnet_b1": 240, "efficientnet_b2": 260,
                 "efficientnet_b3": 300, "efficientnet_b4": 380, "efficientnet_b5": 456, "efficientnet_b6": 528,
                 "efficientnet_b7": 600}

# Keras' MobileNet totals = trainable + 2 x (BN channels) running statistics
KERAS_MOBILENET_TOTALS = {1.0: 4_253_864, 0.75: 2_601_976, 0.5: 1_342_536, 0.25: 475_544}


def _bn_channels(model):
    return sum(m.num_features for _, m in model.named_modules() if isinstance(m, sd.nn.BatchNorm2d))


@pytest.mark.parametrize("name,kw,expected", COUNTS,
                         ids=[n + "".join(f"-{k}{v}" for k, v in kw.items()) for n, kw, _ in COUNTS])
def test_parameter_count_and_tiny_forward(name, kw, expected):
    model = models.create(name, **kw)
    try:
        assert model.num_parameters() == expected
        if name.startswith("mobilenet_v1"):
            alpha = kw.get("alpha", 1.0)
            assert model.num_parameters() + 2 * _bn_channels(model) == KERAS_MOBILENET_TOTALS[alpha]
        if name == "lenet5":
            return
        H, W, C = model.default_input_size
        assert (H, W, C) == (DEFAULT_SIZES.get(name, 224),) * 2 + (3,)
        num_classes = 10 if name in ("resnet20", "resnet56") else 1000
        size = 64 if name == "alexnet" else 32   # alexnet needs >= 63 pixels
        y = model.build((1, size, size, C))
        assert y.shape == (1, num_classes)
        assert np.all(np.isfinite(y.data))
    finally:
        del model
        gc.collect()


def test_every_listed_model_is_registered():
    names = set(models.list_models())
    assert {n for n, _, _ in COUNTS} <= names


def test_efficientnet_batch_norm_settings():
    # torchvision: default BatchNorm2d (eps 1e-5, momentum 0.1) for B0-B4, eps 1e-3 / momentum 0.01 for B5-B7;
    # the Lite port: eps 1e-3, momentum 0.01 (TF's 0.99).  eps and momentum carry no parameter.
    for name, eps, momentum in (("efficientnet_b0", 1e-5, 0.1), ("efficientnet_lite0", 1e-3, 0.01)):
        model = models.create(name)
        assert (model.bn_eps, model.bn_momentum) == (eps, momentum)
        bns = [m for _, m in model.named_modules() if isinstance(m, sd.nn.BatchNorm2d)]
        assert {(m.eps, m.momentum) for m in bns} == {(eps, momentum)}
    b5 = models.efficientnet._efficientnet("b5", 10, 3)   # small head: the blocks are what is checked
    assert {(m.eps, m.momentum) for _, m in b5.named_modules() if isinstance(m, sd.nn.BatchNorm2d)} == {(1e-3, 0.01)}


def test_batch_norm_settings_of_the_others():
    cases = {"resnet18": (1e-5, 0.1), "googlenet": (1e-3, 0.1), "mobilenet_v1": (1e-3, 0.01),
             "mobilenet_v2": (1e-5, 0.1), "resnet20": (1e-5, 0.1)}
    for name, (eps, momentum) in cases.items():
        model = models.create(name)
        got = {(m.eps, m.momentum) for _, m in model.named_modules() if isinstance(m, sd.nn.BatchNorm2d)}
        assert got == {(eps, momentum)}, name


def test_compound_scaling():
    d, w, r = models.efficientnet.compound_scaling(1)
    assert (d, w, r) == pytest.approx((1.2, 1.1, 1.15))
    d, w, r = models.efficientnet.compound_scaling(3)
    assert (d, w, r) == pytest.approx((1.2 ** 3, 1.1 ** 3, 1.15 ** 3))
    # the paper's constraint: alpha * beta^2 * gamma^2 ~ 2, so FLOPs ~ 2^phi
    d, w, r = models.efficientnet.compound_scaling(1)
    assert d * w ** 2 * r ** 2 == pytest.approx(1.92, abs=0.01)
    assert models.efficientnet.compound_scaling(0) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        models.efficientnet.compound_scaling(1, alpha=0.9)


def test_make_divisible():
    from strided.models.blocks import make_divisible
    assert make_divisible(32 * 1.1) == 32      # 35.2 -> 32 (within 10%)
    assert make_divisible(16 * 1.4) == 24      # 22.4 -> 24
    assert make_divisible(320 * 1.8) == 576
    assert make_divisible(3) == 8              # at least the divisor
    assert make_divisible(12 * 0.9, 8) == 16   # 10.8 -> 8 would lose > 10%: 16


def test_resnet_block_kinds():
    model = models.create("resnet50")
    kinds = [block.kind for block in model.layer2]
    assert kinds == ["convolutional block", "identity block", "identity block", "identity block"]
    first = model.layer2[0]
    assert first.conv2.stride == 2 and first.conv1.stride == 1      # v1.5: stride on the 3x3
    assert first.downsample[0].kernel_size == (1, 1)
    assert model.layer1[0].kind == "convolutional block"            # 64 -> 256 channels, stride 1


def test_cifar_option_a_shortcut_pads_channels_with_zeros():
    shortcut = models.resnet.ZeroPadShortcut(2, 8)
    x = np.arange(2 * 4 * 4 * 16, dtype=np.float32).reshape(2, 4, 4, 16)
    y = shortcut(sd.tensor(x)).data
    assert y.shape == (2, 2, 2, 32)
    np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
    assert not y[..., :8].any() and not y[..., 24:].any()
    with pytest.raises(ValueError, match="shortcut"):
        models.create("resnet20", shortcut="C")
