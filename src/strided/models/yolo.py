"""A small Tiny-YOLOv2-like detector for CPU training on small generated scenes.

``yolo_tiny``: five blocks of ``conv 3x3 -> batch norm -> leaky ReLU (0.1) -> max pool 2``
(widths 16, 32, 64, 128, with the pool after the first four), then two more 3x3 blocks of
256 channels and a 1x1 convolution (with bias) to the YOLOv2 head::

    (N, H, W, 3) -> (N, H/16, W/16, A * (5 + C))

The total stride is 16 (Tiny-YOLOv2 has 32): on 96x96 scenes the grid is 6x6 cells of 16
pixels, so objects of 17-38 pixels span one to two and a half cells.  The head's layout
is the one :mod:`strided.detect.yolo` decodes (per anchor ``tx, ty, tw, th, to, c_1..c_C``).
The head's objectness biases start at ``log(0.01 / 0.99)`` (every slot begins at P(object)
= 0.01, as in RetinaNet / YOLOv5), the other biases at 0.

The model carries what decoding needs: ``model.anchors`` ``(A, 2)`` in grid cells,
``model.num_classes``, ``model.stride`` (16) and ``model.input_size``.

Parameters with the defaults (10 classes, 5 anchors): 1,002,715 (all trainable; plus the
batch norms' running statistics, 1,504 numbers).  On 96x96 inputs a forward pass is about
0.07 GMAC (multiply-adds) per image.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from .blocks import conv_bn_act
from .registry import register

__all__ = ["YoloTiny", "yolo_tiny", "DEFAULT_ANCHORS", "OBJECTNESS_PRIOR"]

# k-means (1 - IoU, k=5, seed 0) on the boxes of 1000 digit + 1000 fashion scenes of 96x96
# pixels (strided.data.scenes.make_scenes(..., seed=0)), in cells of 16 pixels; mean IoU 0.79.
DEFAULT_ANCHORS = ((1.50, 0.93), (0.98, 1.49), (1.45, 1.94), (1.99, 1.44), (2.08, 2.30))
OBJECTNESS_PRIOR = 0.01      # initial sigmoid(to) of every slot (bias of the objectness channels)


def conv_bn_leaky(in_channels, out_channels, kernel_size=3):
    """conv (no bias, 'same' padding) -> batch norm -> leaky ReLU(0.1): darknet's block."""
    return conv_bn_act(in_channels, out_channels, kernel_size, activation=lambda: nn.LeakyReLU(0.1))


class YoloTiny(nn.Module):
    """See the module docstring.  ``forward(x (N, H, W, 3)) -> raw head (N, H/16, W/16, A*(5+C))``;
    H and W must be multiples of 16."""

    stride = 16

    def __init__(self, num_classes=10, anchors=DEFAULT_ANCHORS, input_size=96, in_channels=3,
                 widths=(16, 32, 64, 128, 256)):
        super().__init__()
        anchors = np.asarray(anchors, dtype=np.float64)
        if anchors.ndim != 2 or anchors.shape[1] != 2 or len(anchors) == 0 or np.any(anchors <= 0):
            raise ValueError(f"anchors must be (A, 2) positive (width, height) pairs in grid cells, "
                             f"received {anchors.tolist()}")
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, received num_classes={num_classes!r}")
        if not isinstance(input_size, (int, np.integer)) or input_size < 16 or input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16 (the network's stride), "
                             f"received input_size={input_size!r}")
        self.num_classes, self.anchors, self.input_size = int(num_classes), anchors, int(input_size)
        self.default_input_size = (self.input_size, self.input_size, in_channels)
        layers, c = [], in_channels
        for w in widths[:4]:
            layers += [conv_bn_leaky(c, w), nn.MaxPool2d(2)]
            c = w
        layers += [conv_bn_leaky(c, widths[4]), conv_bn_leaky(widths[4], widths[4])]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[4], len(anchors) * (5 + self.num_classes), 1)
        # objectness prior: start every slot at P(object) = 0.01 (the head bias of channel
        # ``to``), so the first steps are not spent silencing ~180 empty slots per image
        objectness = np.arange(len(anchors)) * (5 + self.num_classes) + 4
        self.head.bias.data[objectness] = np.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))

    def forward(self, x):
        return self.head(self.features(x))

    def extra_repr(self):
        return f"num_classes={self.num_classes}, anchors={len(self.anchors)}, input_size={self.input_size}"


@register("yolo_tiny")
def yolo_tiny(num_classes=10, anchors=DEFAULT_ANCHORS, input_size=96, **kw) -> YoloTiny:
    """A Tiny-YOLOv2-like detector (see the module docstring); ``input_size`` 96 or 128
    (any multiple of 16) gives a 6x6 or 8x8 grid.  Anchors in grid cells (of 16 pixels).

    Parameters with the defaults (10 classes, 5 anchors): 1,002,715.
    """
    return YoloTiny(num_classes, anchors, input_size, **kw)
