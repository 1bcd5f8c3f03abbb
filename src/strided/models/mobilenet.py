"""MobileNet v1 (Howard et al., 2017) and MobileNet v2 (Sandler et al., 2018).

**Depthwise separable convolution** (v1).  A normal KxK convolution from C to
C' channels costs ``K*K*C*C'`` weights and that many multiplications per
output pixel.  MobileNet splits it in two:

* *depthwise*: one KxK filter per input channel (``groups = C``), ``K*K*C`` weights;
* *pointwise*: a 1x1 convolution mixing the channels, ``C*C'`` weights.

For K = 3 that is ``1/C' + 1/9`` of the cost, 8 to 9 times cheaper.

``mobilenet_v1`` follows Keras' ``MobileNet`` (the course's reference): conv
3x3 stride 2, then 13 depthwise separable blocks, each ``depthwise 3x3 -> BN ->
ReLU6 -> pointwise 1x1 -> BN -> ReLU6``; global average pool, dropout 0.001,
dense.  The **width multiplier** ``alpha`` thins every layer to ``int(alpha *
filters)`` channels (cost ~ alpha^2); the resolution multiplier is simply a
smaller input.  Stride-2 layers pad one row/column at the bottom/right, as
Keras (``ZeroPadding2D(((0, 1), (0, 1)))``, then "valid"); the others pad 1.
BatchNorm eps 1e-3, momentum 0.01 (Keras' 0.99 in PyTorch's convention).
Trainable parameters at 1000 classes: 4,231,976 (alpha 1.0), 2,585,560
(0.75), 1,331,592 (0.5), 470,072 (0.25); Keras' totals (4,253,864,
2,601,976, 1,342,536, 475,544) also count the BN running statistics.

**Inverted residual with linear bottleneck** (v2).  Each block goes
*narrow -> wide -> narrow*, the reverse of ResNet's bottleneck::

    expansion:  1x1 conv, C -> t*C, BN, ReLU6       (skipped when t = 1)
    depthwise:  3x3 depthwise conv (stride s), BN, ReLU6
    projection: 1x1 conv, t*C -> C', BN             (linear: no activation)
    + x when s = 1 and C = C' (the residual connects the narrow bottlenecks)

``mobilenet_v2`` follows torchvision: stem conv 3x3/2, 32 -> 17 inverted
residual blocks (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
(6,96,3,1) (6,160,3,2) (6,320,1,1) -> conv 1x1, 1280 -> global average pool ->
dropout 0.2 -> dense.  Channels under a width multiplier are rounded to
multiples of 8 (:func:`strided.models.blocks.make_divisible`); padding is symmetric ``(k-1)//2``;
BatchNorm eps 1e-5, momentum 0.1.  3,504,872 parameters at width 1.0 and
1000 classes.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .blocks import conv_bn_act, make_divisible
from .registry import register

__all__ = ["DepthwiseSeparable", "MobileNetV1", "InvertedResidual", "MobileNetV2", "mobilenet_v1", "mobilenet_v2"]


# ---------------------------------------------------------------------------------------------- v1
V1_BN_EPS, V1_BN_MOMENTUM = 1e-3, 0.01
# (pointwise filters, stride of the depthwise conv) of the 13 depthwise separable blocks
V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
_KERAS_STRIDE2_PAD = ((0, 1), (0, 1))


class DepthwiseSeparable(nn.Module):
    """depthwise 3x3 (stride s) -> BN -> ReLU6 -> pointwise 1x1 -> BN -> ReLU6."""

    def __init__(self, in_channels, out_channels, stride=1, depth_multiplier=1):
        super().__init__()
        padding = 1 if stride == 1 else _KERAS_STRIDE2_PAD
        self.depthwise = nn.DepthwiseConv2d(in_channels, 3, stride=stride, padding=padding,
                                            depth_multiplier=depth_multiplier, bias=False)
        mid = in_channels * depth_multiplier
        self.bn1 = nn.BatchNorm2d(mid, momentum=V1_BN_MOMENTUM, eps=V1_BN_EPS)
        self.relu1 = nn.ReLU6()
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=V1_BN_MOMENTUM, eps=V1_BN_EPS)
        self.relu2 = nn.ReLU6()

    def forward(self, x):
        x = self.relu1(self.bn1(self.depthwise(x)))
        return self.relu2(self.bn2(self.pointwise(x)))


class MobileNetV1(nn.Module):
    """MobileNet v1 (Keras layout) with width multiplier ``alpha``; logits out, NHWC in, input 224x224."""

    def __init__(self, num_classes=1000, in_channels=3, alpha=1.0, depth_multiplier=1, dropout=1e-3,
                 input_size=224):
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"the width multiplier must be > 0, received alpha={alpha!r}")
        self.alpha, self.depth_multiplier = alpha, depth_multiplier
        self.bn_eps, self.bn_momentum = V1_BN_EPS, V1_BN_MOMENTUM
        self.default_input_size = (input_size, input_size, in_channels)
        c = int(32 * alpha)
        self.stem = conv_bn_act(in_channels, c, 3, stride=2, padding=_KERAS_STRIDE2_PAD,
                                bn_eps=V1_BN_EPS, bn_momentum=V1_BN_MOMENTUM)
        blocks = []
        for filters, stride in V1_BLOCKS:
            out = int(filters * alpha)
            blocks.append(DepthwiseSeparable(c, out, stride, depth_multiplier))
            c = out
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.GlobalAvgPool2d()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(self.avgpool(self.features(self.stem(x)))))


# ---------------------------------------------------------------------------------------------- v2
V2_BN_EPS, V2_BN_MOMENTUM = 1e-5, 0.1
# t (expansion factor), c (output channels), n (repeats), s (stride of the first)
V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    """Expansion (1x1, ReLU6) -> depthwise (3x3, ReLU6) -> projection (1x1, linear), + x when shapes match."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, received stride={stride!r}")
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = OrderedDict()
        if expand_ratio != 1:
            layers["expand"] = conv_bn_act(in_channels, hidden, 1)
        layers["depthwise"] = conv_bn_act(hidden, hidden, 3, stride=stride, depthwise=True)
        layers["project"] = conv_bn_act(hidden, out_channels, 1, activation=None)
        self.conv = nn.Sequential(layers)

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_residual else y

    def extra_repr(self):
        return "residual" if self.use_residual else ""


class MobileNetV2(nn.Module):
    """MobileNet v2 (torchvision layout) with width multiplier ``width_mult``; logits out, NHWC in."""

    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, dropout=0.2, round_nearest=8):
        super().__init__()
        self.width_mult = width_mult
        self.bn_eps, self.bn_momentum = V2_BN_EPS, V2_BN_MOMENTUM
        self.default_input_size = (224, 224, in_channels)
        c = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features = [conv_bn_act(in_channels, c, 3, stride=2)]
        for t, channels, n, s in V2_SETTINGS:
            out = make_divisible(channels * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        features.append(conv_bn_act(c, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.GlobalAvgPool2d()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


@register("mobilenet_v1")
def mobilenet_v1(num_classes=1000, in_channels=3, alpha=1.0, **kw):
    """MobileNet v1, width multiplier ``alpha`` (4,231,976 parameters at alpha 1.0, 1000 classes)."""
    return MobileNetV1(num_classes, in_channels, alpha, **kw)


@register("mobilenet_v2")
def mobilenet_v2(num_classes=1000, in_channels=3, width_mult=1.0, **kw):
    """MobileNet v2, inverted residuals and ReLU6 (3,504,872 parameters at width 1.0, 1000 classes)."""
    return MobileNetV2(num_classes, in_channels, width_mult, **kw)
