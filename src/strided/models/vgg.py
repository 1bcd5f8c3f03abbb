"""VGG-16 and VGG-19 (Simonyan and Zisserman, 2014), torchvision layout.

One idea repeated: 3x3 convolutions ("same" padding, stride 1) stacked in
blocks, each block followed by a 2x2 max pool that halves H and W while the
number of filters doubles, 64 -> 128 -> 256 -> 512 -> 512::

    VGG-16 (configuration D):  [64]x2 M [128]x2 M [256]x3 M [512]x3 M [512]x3 M   (13 conv layers)
    VGG-19 (configuration E):  [64]x2 M [128]x2 M [256]x4 M [512]x4 M [512]x4 M   (16 conv layers)

    224x224x3 -> ... -> 7x7x512 -> adaptive average pool to 7x7 (the identity at 224)
    -> flatten 25088 -> dense 4096 -> ReLU -> dropout -> dense 4096 -> ReLU -> dropout -> dense num_classes

The ``_bn`` variants put a batch normalisation (eps 1e-5, momentum 0.1, as
PyTorch) between each convolution and its ReLU; like torchvision they keep the
convolution biases.

Parameters at 1000 classes: vgg16 138,357,544; vgg19 143,667,240;
vgg16_bn 138,365,992; vgg19_bn 143,678,248 (about 124 million are in the dense
layers).  The flatten is NHWC: rows of ``classifier.0.weight`` are ordered
``(h, w, c)`` (torchvision: ``(c, h, w)``).
"""
from __future__ import annotations

from .. import nn
from .registry import register

__all__ = ["VGG", "CONFIGS", "vgg16", "vgg19", "vgg16_bn", "vgg19_bn"]

# "M" is a 2x2 max pool; a number is a 3x3 convolution with that many filters
CONFIGS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(config, in_channels=3, batch_norm=False, bn_eps=1e-5, bn_momentum=0.1):
    """The convolutional part: conv3x3 (+ BN) + ReLU for each number, max pool 2 for each "M"."""
    layers, c = [], in_channels
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v, momentum=bn_momentum, eps=bn_eps))
        layers.append(nn.ReLU())
        c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG with the configuration ``CONFIGS[depth]``; logits out, NHWC in, input 224x224."""

    def __init__(self, depth: int = 16, num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
                 dropout: float = 0.5):
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(CONFIGS)}, received depth={depth!r}")
        self.depth, self.batch_norm = depth, batch_norm
        self.bn_eps, self.bn_momentum = 1e-5, 0.1
        self.default_input_size = (224, 224, in_channels)
        self.features = make_features(CONFIGS[depth], in_channels, batch_norm, self.bn_eps, self.bn_momentum)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register("vgg16")
def vgg16(num_classes: int = 1000, in_channels: int = 3, **kw):
    """VGG-16 (138,357,544 parameters at 1000 classes)."""
    return VGG(16, num_classes, in_channels, batch_norm=False, **kw)


@register("vgg19")
def vgg19(num_classes: int = 1000, in_channels: int = 3, **kw):
    """VGG-19 (143,667,240 parameters at 1000 classes)."""
    return VGG(19, num_classes, in_channels, batch_norm=False, **kw)


@register("vgg16_bn")
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, **kw):
    """VGG-16 with batch normalisation (138,365,992 parameters at 1000 classes)."""
    return VGG(16, num_classes, in_channels, batch_norm=True, **kw)


@register("vgg19_bn")
def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, **kw):
    """VGG-19 with batch normalisation (143,678,248 parameters at 1000 classes)."""
    return VGG(19, num_classes, in_channels, batch_norm=True, **kw)
