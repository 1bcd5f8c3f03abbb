"""Small networks for 28x28 (or similar) images: a VGG-style stack and a ResNet.

``vgg_small``: [conv3x3-BN-ReLU]x2 -> max pool, for widths (32, 64, 128), then
global average pooling, dropout and one dense layer.

``resnet_small``: a 3x3 stem, three stages of two basic residual blocks
(widths 32, 64, 128; the first block of stages 2 and 3 halves H and W with a
stride-2 conv and a 1x1 projection shortcut), global average pooling, dense.
A basic block: ``y = relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.
"""
from __future__ import annotations

from .. import nn
from .registry import register


def conv_bn_relu(in_channels, out_channels, stride=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class VGGSmall(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, widths=(32, 64, 128), dropout=0.3):
        super().__init__()
        self.default_input_size = (28, 28, in_channels)
        layers, c = [], in_channels
        for w in widths:
            layers += [conv_bn_relu(c, w), conv_bn_relu(w, w), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.GlobalAvgPool2d(), nn.Dropout(dropout), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNetSmall(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, widths=(32, 64, 128), blocks=2):
        super().__init__()
        self.default_input_size = (28, 28, in_channels)
        self.stem = conv_bn_relu(in_channels, widths[0])
        stages, c = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                stages.append(BasicBlock(c, w, stride=2 if (i > 0 and j == 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.GlobalAvgPool2d(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


@register("vgg_small")
def vgg_small(num_classes=10, in_channels=1, **kw):
    return VGGSmall(num_classes, in_channels, **kw)


@register("resnet_small")
def resnet_small(num_classes=10, in_channels=1, **kw):
    return ResNetSmall(num_classes, in_channels, **kw)
