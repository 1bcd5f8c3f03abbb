"""face-api's Tiny Face Detector: a Tiny-YOLOv2 with depthwise separable convolutions.

Ported from face-api (``src/tinyYolov2/TinyYolov2Base.ts``, ``runMobilenet`` with the
``TinyFaceDetector`` config: ``withSeparableConvs``, ``isFirstLayerConv2d``, filter sizes
``[3, 16, 32, 64, 128, 256, 512]``, so its optional ``conv6``/``conv7`` are absent).
NHWC, for a 416x416 input (any multiple of 32 works; S = input / 32)::

    conv0   3x3 conv 3 -> 16, 'valid' (no padding: 416 -> 414), + bias, leaky 0.1
    maxpool 2x2 stride 2 'same'                                   414 -> 207
    conv1   sep. conv 16 -> 32   maxpool 2x2/2 'same'             207 -> 104
    conv2   sep. conv 32 -> 64   maxpool 2x2/2 'same'             104 -> 52
    conv3   sep. conv 64 -> 128  maxpool 2x2/2 'same'              52 -> 26
    conv4   sep. conv 128 -> 256 maxpool 2x2/2 'same'              26 -> 13
    conv5   sep. conv 256 -> 512 maxpool 2x2 stride 1 'same'       13 -> 13
    conv8   1x1 conv 512 -> 25 (+ bias, linear)    -> (N, 13, 13, 5 anchors x 5)

A "sep. conv" (``src/tinyYolov2/depthwiseSeparableConv.ts``) pads 1 pixel of zeros on
every side, applies a 3x3 depthwise filter (no bias), a 1x1 pointwise convolution, adds a
bias and applies leaky ReLU 0.1; there is no batch normalisation (it was folded into the
weights).  (strided applies each leaky ReLU after the max pool that follows it: the same
numbers, as the activation is non-decreasing, for a quarter of the work.)  TF's 'same' max
pooling pads the odd pixel at the bottom/right with -inf (for stride 1 too: 2x2 windows, one extra row and column).  face-api writes leaky as
``relu(x - 0.1x) + 0.1x``, equal to ``max(x, 0.1x)`` up to float rounding.

Each of the 5 anchors of each cell predicts ``(tx, ty, tw, th, to)``; decoding (sigmoid
offsets, anchors in grid cells, sigmoid score, no class scores for the single class
"face") is in :mod:`strided.detect.tiny_face`.  19 weight tensors, 193,321 parameters
(stored uint8-quantised, one byte each, in ``tiny_face_detector_model.bin``).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ModelFileError
from .faceapi import load_faceapi_net

__all__ = ["TINY_FACE_ANCHORS", "TINY_FACE_MEAN_RGB", "TINY_FACE_IOU_THRESHOLD", "LEAKY_SLOPE",
           "SeparableConvLeaky", "TinyFaceDetectorNet", "tfjs_to_state_dict", "load_tiny_face_detector"]

# src/tinyFaceDetector/const.ts: (width, height) of the 5 anchors, in grid cells
TINY_FACE_ANCHORS = np.array([[1.603231, 2.094468], [6.041143, 7.080126], [2.882459, 3.518061],
                              [4.266906, 5.178857], [9.041765, 10.66308]])
TINY_FACE_MEAN_RGB = (117.001, 114.697, 97.404)     # subtracted from 0..255 pixels, then / 255
TINY_FACE_IOU_THRESHOLD = 0.4
LEAKY_SLOPE = 0.10000000149011612                   # float32(0.1), as face-api's leaky()
FILTERS = (3, 16, 32, 64, 128, 256, 512)
NUM_ANCHORS, BOX_ENCODING = 5, 5                    # (tx, ty, tw, th, score); no class scores


class SeparableConvLeaky(nn.Module):
    """pad 1 -> depthwise 3x3 (no bias) -> pointwise 1x1 (+ bias) -> leaky 0.1:
    ``(N, H, W, C_in) -> (N, H, W, C_out)``."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.depthwise = nn.DepthwiseConv2d(in_channels, 3, padding=1, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)

    def linear(self, x):
        """The convolutions without the activation: ``pointwise(depthwise(x)) + bias``."""
        return self.pointwise(self.depthwise(x))

    def forward(self, x):
        return F.leaky_relu(self.linear(x), LEAKY_SLOPE)


class TinyFaceDetectorNet(nn.Module):
    """The network alone: normalised NHWC input ``(N, S*32, S*32, 3)`` -> raw head ``(N, S, S, 25)``.

    The input is ``(pixels - TINY_FACE_MEAN_RGB) / 255`` of the padded, resized image (see
    :func:`strided.detect.tiny_face.preprocess`).  Submodules carry face-api's names
    (``conv0`` ... ``conv5``, ``conv8``).
    """

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, FILTERS[1], 3, padding="valid", bias=True)
        for i in range(1, 6):
            setattr(self, f"conv{i}", SeparableConvLeaky(FILTERS[i], FILTERS[i + 1]))
        self.pool = nn.MaxPool2d(2, stride=2, padding="same")
        self.pool_stride1 = nn.MaxPool2d(2, stride=1, padding="same")
        self.conv8 = nn.Conv2d(FILTERS[-1], NUM_ANCHORS * BOX_ENCODING, 1, bias=True)

    def forward(self, x):
        # leaky ReLU is non-decreasing, so it commutes with max pooling: pool(leaky(z)) and
        # leaky(pool(z)) are the same numbers (and gradients); after the 2x2/2 pool it reads a
        # quarter of the values.  (face-api's order is leaky then pool, see forward_reference.)
        x = F.leaky_relu(self.pool(self.conv0(x)), LEAKY_SLOPE)
        for i in range(1, 5):
            x = F.leaky_relu(self.pool(getattr(self, f"conv{i}").linear(x)), LEAKY_SLOPE)
        x = self.pool_stride1(self.conv5(x))
        return self.conv8(x)

    def forward_reference(self, x):
        """:meth:`forward` in face-api's order (activation, then pool), the plain path it is tested against."""
        x = self.pool(F.leaky_relu(self.conv0(x), LEAKY_SLOPE))
        for i in range(1, 5):
            x = self.pool(getattr(self, f"conv{i}")(x))
        x = self.pool_stride1(self.conv5(x))
        return self.conv8(x)


def tfjs_to_state_dict(weights: dict) -> "OrderedDict[str, np.ndarray]":
    """face-api's weight map (``conv0/filters``, ``conv1/depthwise_filter`` ...) -> a state dict
    of :class:`TinyFaceDetectorNet`.  Kernels are HWIO in both; a TF depthwise filter
    ``(3, 3, C, 1)`` becomes strided's ``(3, 3, 1, C)``."""
    expected = {"conv0/filters", "conv0/bias", "conv8/filters", "conv8/bias"}
    expected |= {f"conv{i}/{part}" for i in range(1, 6) for part in ("depthwise_filter", "pointwise_filter", "bias")}
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ModelFileError(f"not the Tiny Face Detector's weights: missing {missing}, unexpected {unexpected}")

    def get(name):
        return np.asarray(weights[name], dtype=np.float32)

    state = OrderedDict()
    state["conv0.weight"], state["conv0.bias"] = get("conv0/filters"), get("conv0/bias")
    for i in range(1, 6):
        dw = get(f"conv{i}/depthwise_filter")                      # (3, 3, C, multiplier=1)
        state[f"conv{i}.depthwise.weight"] = dw.reshape(dw.shape[0], dw.shape[1], 1, -1)
        state[f"conv{i}.pointwise.weight"] = get(f"conv{i}/pointwise_filter")
        state[f"conv{i}.pointwise.bias"] = get(f"conv{i}/bias")
    state["conv8.weight"], state["conv8.bias"] = get("conv8/filters"), get("conv8/bias")
    return state


def load_tiny_face_detector(path=None) -> TinyFaceDetectorNet:
    """The network with face-api's pretrained weights, in eval mode.

    ``path``: a ``tiny_face_detector_model-weights_manifest.json`` (or face-api's ``model/``
    folder); default: found by :func:`strided.models.faceapi.find_faceapi_models`.
    """
    return load_faceapi_net(TinyFaceDetectorNet, "tiny_face_detector_model", tfjs_to_state_dict, path,
                            "the Tiny Face Detector's weights")
