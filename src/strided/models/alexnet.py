"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), torchvision's single-tower variant.

The original network was split over two GPUs (two "towers" of 48 + 48 filters,
joined only at some layers) and used local response normalisation.  Like
torchvision (after Krizhevsky's "one weird trick" paper) this is one tower,
without LRN, with 64 filters in the first layer::

    input 224x224x3
    conv 11x11, 64, stride 4, pad 2  -> 55x55x64   -> ReLU -> max pool 3, stride 2 -> 27x27x64
    conv 5x5, 192, pad 2             -> 27x27x192  -> ReLU -> max pool 3, stride 2 -> 13x13x192
    conv 3x3, 384, pad 1             -> 13x13x384  -> ReLU
    conv 3x3, 256, pad 1             -> 13x13x256  -> ReLU
    conv 3x3, 256, pad 1             -> 13x13x256  -> ReLU -> max pool 3, stride 2 -> 6x6x256
    adaptive average pool to 6x6 (the identity at 224x224 input)
    flatten 9216 -> dropout -> dense 4096 -> ReLU -> dropout -> dense 4096 -> ReLU -> dense num_classes

61,100,840 parameters for 1000 classes (58 million of them in the three dense layers).

The flatten is NHWC (channels fastest): the rows of ``classifier.1.weight``
are ordered ``(h, w, c)``, where torchvision's columns are ``(c, h, w)``;
a weight converter must permute them.  At 224x224 the features are already
6x6 and the adaptive pooling does nothing; other input sizes (>= 63) work
through :class:`strided.nn.AdaptiveAvgPool2d` (PyTorch's rule), so the dense layers
always see 6x6x256.
"""
from __future__ import annotations

from .. import nn
from .registry import register

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """AlexNet, single tower (torchvision layout); logits out, NHWC in."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.default_input_size = (224, 224, in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register("alexnet")
def alexnet(num_classes: int = 1000, in_channels: int = 3, **kw):
    """AlexNet (61,100,840 parameters at 1000 classes), input 224x224."""
    return AlexNet(num_classes, in_channels, **kw)
