"""face-api's face recognition network: dlib's ResNet-34-like face descriptor, 128-d.

Ported from face-api 1.7.15 (``src/faceRecognitionNet/{FaceRecognitionNet,residualLayer,
convLayer,scaleLayer}.ts``), itself a port of dlib's ``dlib_face_recognition_resnet_model_v1``
(29 conv layers; LFW accuracy 99.38 % in dlib's report).  NHWC, input 150 x 150::

    input          aligned face crop padded to a centred square, resized to 150,
                   (pixels - FACE_MEAN_RGB) / 255
    conv32_down    conv 7x7/2 'valid' 3->32 (+bias), scale, relu          150 -> 72
    maxpool        3x3 stride 2 'valid'                                     72 -> 35
    conv32_1..3    residual 32                                              35
    conv64_down    residual down 32 -> 64                                   35 -> 17
    conv64_1..3    residual 64
    conv128_down   residual down 64 -> 128                                  17 -> 8
    conv128_1..2   residual 128
    conv256_down   residual down 128 -> 256                                  8 -> 4 (3, zero-padded)
    conv256_1..2   residual 256
    conv256_down_out  residual down 256 -> 256                               4 -> 1 ... 2 -> 1
    mean over H, W; fc 256 -> 128 (no bias)                  -> the face descriptor

Each conv is ``conv + bias``, then a *scale layer* ``x * weights + biases`` per channel (the
affine of dlib's frozen batch norm, kept separate as face-api keeps it), then relu except the
second conv of a residual block (:class:`ConvScale`)::

    residual(x)      = relu(conv2(conv1(x)) + x)                       (3x3 'same', stride 1)
    residual_down(x) = relu(conv2(conv1(x)) + pad(avgpool2x2/2(x)))    conv1: 3x3/2 'valid'

In ``residual_down`` the shortcut is a 2x2/2 average pool; when the channels double, zeros
are appended on the channel axis; when the pooled map is larger than the convolution's
(8 -> 3 vs 4), the convolution's output gets one row and one column of zeros at the
bottom/right first (face-api's ``isAdjustShape``).

Descriptors of the same person lie within Euclidean distance 0.6 of each other (dlib's
threshold).  5,614,592 parameters (``face_recognition_model.bin``, mostly uint8-quantised).
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ModelFileError
from .face_landmarks import face_net_input
from .faceapi import load_faceapi_net

__all__ = ["RECOGNITION_INPUT_SIZE", "DESCRIPTOR_SIZE", "ScaleLayer", "ConvScale", "ResidualBlock",
           "FaceRecognitionNet", "fuse_recognition_net", "preprocess", "recognition_tfjs_to_state_dict",
           "load_face_recognition_net"]

RECOGNITION_INPUT_SIZE = 150
DESCRIPTOR_SIZE = 128
# (face-api's name, in channels, out channels, downsampling?) of the residual blocks, in order
RESIDUAL_BLOCKS = (("conv32_1", 32, 32, False), ("conv32_2", 32, 32, False), ("conv32_3", 32, 32, False),
                   ("conv64_down", 32, 64, True), ("conv64_1", 64, 64, False), ("conv64_2", 64, 64, False),
                   ("conv64_3", 64, 64, False),
                   ("conv128_down", 64, 128, True), ("conv128_1", 128, 128, False), ("conv128_2", 128, 128, False),
                   ("conv256_down", 128, 256, True), ("conv256_1", 256, 256, False), ("conv256_2", 256, 256, False),
                   ("conv256_down_out", 256, 256, True))


def preprocess(crop) -> np.ndarray:
    """The recognition net's input ``(1, 150, 150, 3)`` for one aligned face crop
    (``NetInput.toBatchTensor(150, true)``: centred square, legacy bilinear, mean, / 255)."""
    return face_net_input(crop, RECOGNITION_INPUT_SIZE)


class ScaleLayer(nn.Module):
    """Per-channel affine ``x * weight + bias`` (dlib's ``affine`` layer): ``(..., C) -> (..., C)``."""

    def __init__(self, channels):
        super().__init__()
        self.channels = int(channels)
        self.weight = nn.Parameter(np.ones(self.channels, np.float32))
        self.bias = nn.Parameter(np.zeros(self.channels, np.float32))

    def extra_repr(self):
        return str(self.channels)

    def forward(self, x):
        return x * self.weight + self.bias


class ConvScale(nn.Module):
    """face-api's ``convLayer``: ``conv(x) + bias``, :class:`ScaleLayer`, then relu if ``relu``.

    ``stride=2`` is face-api's ``convDown`` (``'valid'`` padding), ``stride=1`` its ``conv`` /
    ``convNoRelu`` (``'same'``)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding="valid" if stride > 1 else "same", bias=True)
        self.scale = ScaleLayer(out_channels)
        self.relu = bool(relu)

    def extra_repr(self):
        return "" if self.relu else "relu=False"

    def forward(self, x):
        out = self.scale(self.conv(x))
        # after fuse_recognition_net the scale is folded in and the conv applies the relu itself
        return F.relu(out) if self.relu and self.conv.activation is None else out


class ResidualBlock(nn.Module):
    """face-api's ``residual`` (``down=False``) / ``residualDown`` (``down=True``), see the module
    docstring.  ``(N, H, W, C_in) -> (N, H', W', C_out)`` with ``H' = H``, or ``floor(H / 2)``
    (the pooled size) when ``down``."""

    def __init__(self, in_channels, out_channels, down=False):
        super().__init__()
        if not down and in_channels != out_channels:
            raise ValueError(f"a residual block without downsampling keeps the channels, received "
                             f"in_channels={in_channels}, out_channels={out_channels}")
        self.down = bool(down)
        self.conv1 = ConvScale(in_channels, out_channels, 3, stride=2 if down else 1, relu=True)
        self.conv2 = ConvScale(out_channels, out_channels, 3, stride=1, relu=False)
        self.pool = nn.AvgPool2d(2, stride=2, padding="valid") if down else None

    def extra_repr(self):
        return "down=True" if self.down else ""

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        shortcut = self.pool(x)
        grow_h, grow_w = shortcut.shape[1] - out.shape[1], shortcut.shape[2] - out.shape[2]
        if grow_h or grow_w:        # face-api appends one zero row and one zero column to out
            out = F.pad(out, ((0, 0), (0, 1), (0, 1), (0, 0)))
        extra = out.shape[3] - shortcut.shape[3]
        if extra:                   # channels double: the shortcut gets zero channels
            shortcut = F.pad(shortcut, ((0, 0), (0, 0), (0, 0), (0, extra)))
        return F.relu(shortcut + out)


class FaceRecognitionNet(nn.Module):
    """The descriptor network: normalised ``(N, 150, 150, 3)`` -> ``(N, 128)`` face descriptors.

    Submodules carry face-api's names (``conv32_down``, ``conv32_1`` ... ``conv256_down_out``,
    ``fc``).  Build the input with :func:`preprocess`."""

    def __init__(self):
        super().__init__()
        self.conv32_down = ConvScale(3, 32, 7, stride=2, relu=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding="valid")
        for name, c_in, c_out, down in RESIDUAL_BLOCKS:
            setattr(self, name, ResidualBlock(c_in, c_out, down))
        self.fc = nn.Linear(256, DESCRIPTOR_SIZE, bias=False)

    def forward(self, x):
        x = self.pool(self.conv32_down(x))
        for name, *_ in RESIDUAL_BLOCKS:
            x = getattr(self, name)(x)
        return self.fc(x.mean(axis=(1, 2)))


def fuse_recognition_net(net: FaceRecognitionNet) -> FaceRecognitionNet:
    """A copy of ``net`` for inference with every scale layer folded into its convolution
    (:func:`strided.nn.fold_affine`: ``W' = W * s``, ``b' = b * s + t``) and the relu that follows
    applied by the convolution in the same pass: two passes over each feature map fewer, the same
    descriptors up to float32 rounding.  ``net`` is untouched (its weights still name the model,
    :attr:`strided.face.FaceModels.embedding_id`)."""
    fused = copy.deepcopy(net).eval()
    for module in fused.modules():
        if not isinstance(module, ConvScale) or isinstance(module.scale, nn.Identity):
            continue
        conv = module.conv
        weight, bias = nn.fold_affine(conv.weight.data, None if conv.bias is None else conv.bias.data,
                                      module.scale.weight.data, module.scale.bias.data)
        conv.weight = nn.Parameter(weight, requires_grad=False)
        conv.bias = nn.Parameter(bias, requires_grad=False)
        conv.use_bias = True
        module.scale = nn.Identity()
        if module.relu:
            conv.activation = "relu"
    return fused


def recognition_tfjs_to_state_dict(weights: dict) -> "OrderedDict[str, np.ndarray]":
    """face-api's weight map (``conv32_down/conv/filters``, ``conv32_1/conv1/scale/weights``, ...,
    ``fc``) -> a state dict of :class:`FaceRecognitionNet` (``conv/filters`` -> ``conv.weight``,
    ``conv/bias`` -> ``conv.bias``, ``scale/weights`` -> ``scale.weight``, ``scale/biases`` ->
    ``scale.bias``; layouts are the same)."""
    parts = {"conv/filters": "conv.weight", "conv/bias": "conv.bias", "scale/weights": "scale.weight",
             "scale/biases": "scale.bias"}
    prefixes = ["conv32_down"] + [f"{name}/{conv}" for name, *_ in RESIDUAL_BLOCKS for conv in ("conv1", "conv2")]
    mapping = {f"{p}/{part}": f"{p.replace('/', '.')}.{key}" for p in prefixes for part, key in parts.items()}
    mapping["fc"] = "fc.weight"
    missing, unexpected = sorted(set(mapping) - set(weights)), sorted(set(weights) - set(mapping))
    if missing or unexpected:
        raise ModelFileError(f"not face-api's face recognition weights: missing {missing[:6]}, "
                             f"unexpected {unexpected[:6]}")
    return OrderedDict((mapping[name], np.asarray(weights[name], np.float32)) for name in mapping)


def load_face_recognition_net(path=None) -> FaceRecognitionNet:
    """The recognition network with face-api's pretrained weights, in eval mode.

    ``path``: a ``face_recognition_model-weights_manifest.json`` or face-api's ``model/``
    folder; default: found by :func:`strided.models.faceapi.find_faceapi_models`.
    """
    return load_faceapi_net(FaceRecognitionNet, "face_recognition_model", recognition_tfjs_to_state_dict, path,
                            "face-api's face recognition weights")
