"""Residual networks (He, Zhang, Ren and Sun, 2015): ImageNet ResNets (torchvision v1.5
layout) and the CIFAR ResNets of the paper's section 4.2.

A residual block learns ``F(x)`` and outputs ``relu(F(x) + shortcut(x))``: when
``F`` is not useful it can go to zero and the block passes ``x`` on, so very
deep networks still train.

**Basic block** (ResNet-18/34 and the CIFAR nets)::

    x -> conv 3x3 (stride s) -> BN -> ReLU -> conv 3x3 -> BN --(+)--> ReLU
    |______________________ shortcut(x) _______________________|

**Bottleneck block** (ResNet-50/101/152): a 1x1 convolution reduces the
channels, a 3x3 works on the reduced width, a 1x1 expands 4x::

    x -> conv 1x1, w -> BN -> ReLU -> conv 3x3, w (stride s) -> BN -> ReLU -> conv 1x1, 4w -> BN --(+)--> ReLU

The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5"; the
paper, and Keras' ResNet50, put it on the first 1x1).  The course's names:

* **identity block** -- input and output shapes match, the shortcut is ``x``
  itself (``downsample`` is ``None``);
* **convolutional block** -- the first block of a stage, where the stride
  halves H and W and/or the channels change: the shortcut is a 1x1
  convolution (with the block's stride) + BN, the *projection* shortcut
  (the paper's option B).

ImageNet layout (input 224x224)::

    conv 7x7, 64, stride 2, pad 3 -> BN -> ReLU -> max pool 3, stride 2, pad 1   (56x56x64)
    layer1 (56x56), layer2 (28x28), layer3 (14x14), layer4 (7x7): widths 64, 128, 256, 512
    global average pool -> dense num_classes

    resnet18  basic      [2, 2, 2, 2]   11,689,512 parameters (1000 classes)
    resnet34  basic      [3, 4, 6, 3]   21,797,672
    resnet50  bottleneck [3, 4, 6, 3]   25,557,032
    resnet101 bottleneck [3, 4, 23, 3]  44,549,160
    resnet152 bottleneck [3, 8, 36, 3]  60,192,808

CIFAR layout (input 32x32, ``resnet20`` and ``resnet56``, 6n+2 layers with
n = 3 and 9): conv 3x3, 16 -> BN -> ReLU, three stages of n basic blocks
(widths 16, 32, 64 at 32x32, 16x16, 8x8), global average pool, dense.  The
shortcut where the shape changes is the paper's **option A** by default, as in
its CIFAR experiments: subsample by 2 (``x[:, ::2, ::2, :]``) and pad the new
channels with zeros (half before, half after, as the widely used PyTorch
reproduction), which adds no parameter.  ``shortcut="B"`` uses 1x1 projections
instead.  Parameters at 10 classes: resnet20 269,722 (option A) / 272,474 (B);
resnet56 853,018 (A) / 855,770 (B).

BatchNorm everywhere: eps 1e-5, momentum 0.1 (PyTorch's defaults).
"""
from __future__ import annotations

from .. import functional as F
from .. import nn
from .blocks import conv_bn_act
from .registry import register

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "CifarResNet", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152", "resnet20", "resnet56"]

BN_EPS, BN_MOMENTUM = 1e-5, 0.1


def _bn(channels):
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM, eps=BN_EPS)


def projection(in_channels, out_channels, stride):
    """The convolutional block's shortcut: 1x1 conv (stride ``stride``, no bias) + BN."""
    return conv_bn_act(in_channels, out_channels, 1, stride=stride, activation=None, padding=0,
                       bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus the shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``downsample`` is the shortcut module when shapes change (a projection, or
    any module: the CIFAR option A passes one), ``None`` for the identity.
    """

    expansion = 1

    def __init__(self, in_channels, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _bn(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = _bn(planes)
        self.downsample = downsample

    @property
    def kind(self) -> str:
        return "identity block" if self.downsample is None else "convolutional block"

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.add_relu(y, shortcut)  # relu(y + shortcut), keeping one array, not two

    def extra_repr(self):
        return self.kind


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride here, v1.5) -> 1x1 expand (4x), each with BN, plus the shortcut.

    The course's *identity block* when ``downsample`` is ``None`` (shapes match),
    its *convolutional block* when ``downsample`` is the 1x1 projection.
    """

    expansion = 4

    def __init__(self, in_channels, planes, stride=1, downsample=None):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = _bn(out_channels)
        self.relu = nn.ReLU()
        self.downsample = downsample

    kind = BasicBlock.kind
    extra_repr = BasicBlock.extra_repr

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.add_relu(y, shortcut)  # relu(y + shortcut), keeping one array, not two


class ResNet(nn.Module):
    """ImageNet ResNet: stem, four stages (``layer1`` .. ``layer4``), global average pool, ``fc``.

    ``block`` is :class:`BasicBlock` or :class:`Bottleneck`; ``layers`` the
    number of blocks per stage.  Module names follow torchvision.
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3):
        super().__init__()
        self.bn_eps, self.bn_momentum = BN_EPS, BN_MOMENTUM
        self.default_input_size = (224, 224, in_channels)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = _bn(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.in_planes = 64
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_stage(self, block, planes, blocks, stride):
        """One stage: a convolutional block (if the shape changes) then identity blocks."""
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or self.in_planes != out_channels:
            downsample = projection(self.in_planes, out_channels, stride)
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = out_channels
        layers += [block(out_channels, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x))


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: ``x[:, ::stride, ::stride, :]`` with ``pad`` zero channels on each side
    (no parameters)."""

    def __init__(self, stride, pad):
        super().__init__()
        self.stride, self.pad = stride, pad

    def forward(self, x):
        s, p = self.stride, self.pad
        return F.pad(x[:, ::s, ::s, :], ((0, 0), (0, 0), (0, 0), (p, p)))

    def extra_repr(self):
        return f"stride={self.stride}, pad={self.pad}"


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images: 3x3 stem (16), stages of ``n`` basic blocks at 16/32/64 filters.

    ``shortcut``: ``"A"`` (zero padding, parameter-free, the paper's CIFAR
    choice) or ``"B"`` (1x1 projection + BN) where the shape changes.
    """

    def __init__(self, n, num_classes=10, in_channels=3, shortcut="A"):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), received shortcut={shortcut!r}")
        self.shortcut = shortcut
        self.bn_eps, self.bn_momentum = BN_EPS, BN_MOMENTUM
        self.default_input_size = (32, 32, in_channels)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = _bn(16)
        self.relu = nn.ReLU()
        self.in_planes = 16
        self.layer1 = self._make_stage(16, n, 1)
        self.layer2 = self._make_stage(32, n, 2)
        self.layer3 = self._make_stage(64, n, 2)
        self.avgpool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(64, num_classes)

    def _make_stage(self, planes, n, stride):
        downsample = None
        if stride != 1 or self.in_planes != planes:
            if self.shortcut == "A":
                downsample = ZeroPadShortcut(stride, (planes - self.in_planes) // 2)
            else:
                downsample = projection(self.in_planes, planes, stride)
        layers = [BasicBlock(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x))


@register("resnet18")
def resnet18(num_classes=1000, in_channels=3):
    """ResNet-18: basic blocks [2, 2, 2, 2] (11,689,512 parameters at 1000 classes)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


@register("resnet34")
def resnet34(num_classes=1000, in_channels=3):
    """ResNet-34: basic blocks [3, 4, 6, 3] (21,797,672 parameters at 1000 classes)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels)


@register("resnet50")
def resnet50(num_classes=1000, in_channels=3):
    """ResNet-50: bottleneck blocks [3, 4, 6, 3] (25,557,032 parameters at 1000 classes)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels)


@register("resnet101")
def resnet101(num_classes=1000, in_channels=3):
    """ResNet-101: bottleneck blocks [3, 4, 23, 3] (44,549,160 parameters at 1000 classes)."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels)


@register("resnet152")
def resnet152(num_classes=1000, in_channels=3):
    """ResNet-152: bottleneck blocks [3, 8, 36, 3] (60,192,808 parameters at 1000 classes)."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels)


@register("resnet20")
def resnet20(num_classes=10, in_channels=3, shortcut="A"):
    """CIFAR ResNet-20 (n=3), 32x32 input: 269,722 parameters (option A, 10 classes)."""
    return CifarResNet(3, num_classes, in_channels, shortcut)


@register("resnet56")
def resnet56(num_classes=10, in_channels=3, shortcut="A"):
    """CIFAR ResNet-56 (n=9), 32x32 input: 853,018 parameters (option A, 10 classes)."""
    return CifarResNet(9, num_classes, in_channels, shortcut)
