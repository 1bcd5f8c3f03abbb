"""GoogLeNet / Inception v1 (Szegedy et al., 2014), torchvision layout without the auxiliary heads.

An **Inception module** runs four branches side by side on the same input and
concatenates their outputs along the channels::

    branch1: conv 1x1
    branch2: conv 1x1 (reduce) -> conv 3x3
    branch3: conv 1x1 (reduce) -> conv 3x3   (5x5 in the paper; torchvision's weights use 3x3, kept here)
    branch4: max pool 3x3, stride 1, pad 1 -> conv 1x1 (pool projection)
    output channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

The 1x1 "bottleneck" convolutions before the 3x3 and 5x5 ones cut their
cost: in module 3a, 28x28x192 -> 1x1, 16 -> 5x5, 32 takes 28*28*(192*16 + 16*25*32)
= 12.4 million multiplications instead of 28*28*192*25*32 = 120 million, about a tenth.

Every convolution is torchvision's ``BasicConv2d``: conv (no bias) -> BN
(eps 0.001, momentum 0.1) -> ReLU.  Whole network, input 224x224::

    conv 7x7, 64, stride 2 -> max pool 3/2 -> conv 1x1, 64 -> conv 3x3, 192 -> max pool 3/2   (28x28x192)
    inception 3a (256), 3b (480) -> max pool 3/2                                             (14x14x480)
    inception 4a (512), 4b (512), 4c (512), 4d (528), 4e (832) -> max pool 2/2              (7x7x832)
    inception 5a (832), 5b (1024) -> global average pool -> dropout 0.2 -> dense num_classes

6,624,904 parameters at 1000 classes.  The stride-2 max pools round the
output size up (PyTorch's ``ceil_mode=True``: 112 -> 56, 56 -> 28, 28 -> 14,
14 -> 7): ``nn.MaxPool2d(..., ceil_mode=True)``.
"""
from __future__ import annotations

from .. import nn
from ..tensor import concat
from .registry import register

__all__ = ["BasicConv2d", "Inception", "GoogLeNet", "googlenet"]

BN_EPS, BN_MOMENTUM = 1e-3, 0.1


class BasicConv2d(nn.Module):
    """conv (no bias) -> BN (eps 0.001) -> ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Inception v1 module: four parallel branches concatenated on the channel axis (last, NHWC)."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), BasicConv2d(in_channels, pool_proj, 1))

    def forward(self, x):
        return concat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], axis=-1)


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1), no auxiliary classifiers; logits out, NHWC in, input 224x224."""

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.2):
        super().__init__()
        self.bn_eps, self.bn_momentum = BN_EPS, BN_MOMENTUM
        self.default_input_size = (224, 224, in_channels)
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.GlobalAvgPool2d()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        for layer in self._modules.values():   # registered in the order they apply
            x = layer(x)
        return x


@register("googlenet")
def googlenet(num_classes=1000, in_channels=3, **kw):
    """GoogLeNet / Inception v1 (6,624,904 parameters at 1000 classes)."""
    return GoogLeNet(num_classes, in_channels, **kw)
