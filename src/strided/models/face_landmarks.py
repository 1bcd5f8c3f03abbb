"""face-api's 68-point face landmark networks (``face_landmark_68`` and its tiny variant).

Ported from face-api 1.7.15 (``src/faceLandmarkNet/FaceLandmark68NetBase.ts``,
``src/faceFeatureExtractor/{FaceFeatureExtractor,TinyFaceFeatureExtractor,denseBlock}.ts``,
``src/faceProcessor/FaceProcessor.ts``).  A face crop goes in, 68 ``(x, y)`` points come out.
NHWC, input 112 x 112::

    input   (crop padded to a square, centred; resized to 112; - FACE_MEAN_RGB; / 255)
    dense0  conv 3x3/2 'same' 3->32 (+bias), relu = out1         112 -> 56
            out2 = sep(out1); out3 = sep(relu(out1 + out2)); out4 = sep(relu(out1 + out2 + out3))
            relu(out1 + out2 + out3 + out4)
    dense1  the same with conv0 = sep. conv stride 2, 32 -> 64      56 -> 28
    dense2  64 -> 128                                               28 -> 14
    dense3  128 -> 256                                              14 -> 7
    avgpool 7x7 stride 2 'valid'                                     7 -> 1
    fc      256 -> 136 (+bias): (x0, y0, x1, y1, ...) relative to the 112 square

"sep" is ``tf.separableConv2d(x, depthwise 3x3, pointwise 1x1, stride, 'same')`` + bias
(:class:`SeparableConv2d`, no activation).  The tiny variant has three dense blocks of
three convolutions (out1 .. out3; 32, 64, 128 channels), a 14x14 average pool and a
128 -> 136 fc.  No batch normalisation (folded into the weights).  TF's 'same' padding
for stride 2 on an even size puts the one extra pixel at the bottom/right.

Input (:func:`preprocess`, face-api's ``NetInput.toBatchTensor(112, true)``): the crop
is padded with zeros to a square, **centred** (``round(diff / 2)`` after the image, the
rest before), resized with ``tf.image.resizeBilinear``'s legacy mapping
(:func:`strided.models.faceapi.to_net_input`), then ``(x - [122.782, 117.001, 104.298]) / 255``.

Output (:func:`postprocess`, ``FaceLandmark68NetBase.postProcess``): with ``s = 112 /
max(h, w)`` of the crop ``(h, w)``, ``x = (out_x * 112 - pad_x) / (w * s)`` where ``pad_x =
|w*s - h*s| / 2`` when the crop is taller than wide (else 0), ``y`` likewise: points relative
to the crop (0..1); times ``(w, h)`` they are crop pixels.  Sizes: 356,840 parameters
(tiny: 77,224), stored uint8-quantised.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ModelFileError
from .faceapi import load_faceapi_net, to_net_input

__all__ = ["FACE_MEAN_RGB", "LANDMARK_INPUT_SIZE", "NUM_LANDMARKS", "face_net_input", "SeparableConv2d",
           "DenseBlock", "FaceLandmark68Net", "preprocess", "postprocess", "landmarks_tfjs_to_state_dict",
           "load_face_landmark_net"]

FACE_MEAN_RGB = (122.782, 117.001, 104.298)   # face-api's landmark and recognition nets: (pixels - mean) / 255
LANDMARK_INPUT_SIZE = 112
NUM_LANDMARKS = 68
# (in, out) channels of the dense blocks
FULL_CHANNELS = ((3, 32), (32, 64), (64, 128), (128, 256))
TINY_CHANNELS = ((3, 32), (32, 64), (64, 128))


def face_net_input(crop, input_size: int) -> np.ndarray:
    """A face crop ``(h, w, 3)`` (uint8 or float 0..255) -> float32 ``(1, input_size, input_size, 3)``
    as face-api's landmark and recognition nets see it: padded to a centred square, resized
    (legacy bilinear, unless already ``input_size``), ``(x - FACE_MEAN_RGB) / 255`` in float32."""
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[-1] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
        raise ValueError(f"a face crop must be a non-empty (h, w, 3) image, received shape {crop.shape}")
    x = to_net_input(crop, input_size, center=True)         # a new array: normalised in place
    x -= np.asarray(FACE_MEAN_RGB, np.float32)
    x /= np.float32(255)
    return x


def preprocess(crop) -> np.ndarray:
    """The landmark net's input ``(1, 112, 112, 3)`` for one face crop (see the module docstring)."""
    return face_net_input(crop, LANDMARK_INPUT_SIZE)


def postprocess(output, crop_shape) -> np.ndarray:
    """The net's 136 outputs -> ``(68, 2)`` points relative to the crop (x / w, y / h), float64.

    ``crop_shape`` is ``(h, w, ...)`` of the crop given to :func:`preprocess`.  Exactly
    ``FaceLandmark68NetBase.postProcess`` (float64 here; TF.js computes it in float32, a
    difference below 1e-5 px for crops under 1000 px)."""
    out = np.asarray(getattr(output, "data", output), np.float64).reshape(NUM_LANDMARKS, 2)
    height, width = crop_shape[:2]
    scale = LANDMARK_INPUT_SIZE / max(height, width)
    w, h = width * scale, height * scale
    pad_x = abs(w - h) / 2 if w < h else 0.0
    pad_y = abs(w - h) / 2 if h < w else 0.0
    return (out * LANDMARK_INPUT_SIZE - np.array([pad_x, pad_y])) / np.array([w, h])


class SeparableConv2d(nn.Module):
    """``tf.separableConv2d(x, depthwise 3x3, pointwise 1x1, stride, 'same')`` + bias:
    ``(N, H, W, C_in) -> (N, ceil(H / stride), ceil(W / stride), C_out)``, no activation."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.depthwise = nn.DepthwiseConv2d(in_channels, 3, stride=stride, padding="same", bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class DenseBlock(nn.Module):
    """face-api's ``denseBlock4`` (``num_convs=4``) / ``denseBlock3`` (``num_convs=3``).

    ``out1 = relu(conv0(x))`` (conv0 stride 2: a plain 3x3 conv when ``first``, else
    separable), then each next ``out_k = conv_{k-1}(relu(out1 + ... + out_{k-1}))``
    (separable, stride 1) and the block returns ``relu(out1 + ... + out_n)``; the sums are
    taken right to left as face-api writes them (``out1 + (out2 + (out3 + out4))``).
    ``(N, H, W, C_in) -> (N, ceil(H/2), ceil(W/2), C_out)``.
    """

    def __init__(self, in_channels, out_channels, num_convs=4, first=False):
        super().__init__()
        if num_convs not in (3, 4):
            raise ValueError(f"num_convs must be 3 or 4, received num_convs={num_convs!r}")
        self.num_convs = num_convs
        self.conv0 = (nn.Conv2d(in_channels, out_channels, 3, stride=2, padding="same", bias=True) if first
                      else SeparableConv2d(in_channels, out_channels, stride=2))
        for k in range(1, num_convs):
            setattr(self, f"conv{k}", SeparableConv2d(out_channels, out_channels))

    def extra_repr(self):
        return "" if self.num_convs == 4 else f"num_convs={self.num_convs}"

    def forward(self, x):
        outs = [F.relu(self.conv0(x))]
        for k in range(1, self.num_convs):
            outs.append(getattr(self, f"conv{k}")(F.relu(_sum_right_to_left(outs)) if k > 1 else outs[0]))
        return F.relu(_sum_right_to_left(outs))


def _sum_right_to_left(terms):
    total = terms[-1]
    for term in reversed(terms[:-1]):
        total = term + total
    return total


class FaceLandmark68Net(nn.Module):
    """The landmark network: normalised ``(N, 112, 112, 3)`` -> ``(N, 136)`` raw outputs.

    ``tiny=False``: ``face_landmark_68_model`` (4 dense blocks of 4 convs, 256 features);
    ``tiny=True``: ``face_landmark_68_tiny_model`` (3 blocks of 3, 128 features).  Submodules
    carry face-api's names (``dense0.conv0`` ..., ``fc``).  Use :func:`preprocess` /
    :func:`postprocess` around it.
    """

    def __init__(self, tiny: bool = False):
        super().__init__()
        self.tiny = bool(tiny)
        channels = TINY_CHANNELS if self.tiny else FULL_CHANNELS
        for i, (c_in, c_out) in enumerate(channels):
            setattr(self, f"dense{i}", DenseBlock(c_in, c_out, 3 if self.tiny else 4, first=i == 0))
        self.num_blocks = len(channels)
        self.pool = nn.AvgPool2d(14 if self.tiny else 7, stride=2, padding="valid")
        self.fc = nn.Linear(channels[-1][1], 2 * NUM_LANDMARKS)

    def extra_repr(self):
        return "tiny=True" if self.tiny else ""

    def features(self, x):
        """The feature extractor alone: ``(N, 112, 112, 3) -> (N, 1, 1, 256)`` (tiny: 128)."""
        for i in range(self.num_blocks):
            x = getattr(self, f"dense{i}")(x)
        return self.pool(x)

    def forward(self, x):
        features = self.features(x)
        return self.fc(features.reshape(features.shape[0], -1))


def landmarks_tfjs_to_state_dict(weights: dict, tiny: bool = False) -> "OrderedDict[str, np.ndarray]":
    """face-api's weight map (``dense0/conv0/filters``, ``dense1/conv0/depthwise_filter``, ...,
    ``fc/weights``) -> a state dict of :class:`FaceLandmark68Net`.  A TF depthwise filter
    ``(3, 3, C, 1)`` becomes strided's ``(3, 3, 1, C)``; conv kernels are HWIO in both and
    ``fc/weights`` is ``(in, out)`` in both."""
    blocks, convs = (3, 3) if tiny else (4, 4)
    expected = {"fc/weights", "fc/bias", "dense0/conv0/filters", "dense0/conv0/bias"}
    for i in range(blocks):
        for k in range(convs):
            if i or k:
                expected |= {f"dense{i}/conv{k}/{part}" for part in ("depthwise_filter", "pointwise_filter", "bias")}
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ModelFileError(f"not face-api's {'tiny ' if tiny else ''}68-point landmark weights: "
                             f"missing {missing[:6]}, unexpected {unexpected[:6]}")
    state = OrderedDict()
    for name in weights:
        value = np.asarray(weights[name], np.float32)
        parts = name.split("/")
        if parts[0] == "fc":
            state[f"fc.{'weight' if parts[1] == 'weights' else 'bias'}"] = value
        elif parts[2] == "filters":
            state[f"{parts[0]}.{parts[1]}.weight"] = value
        elif parts[2] == "bias" and parts[1] == "conv0" and parts[0] == "dense0":
            state[f"{parts[0]}.{parts[1]}.bias"] = value
        elif parts[2] == "depthwise_filter":
            state[f"{parts[0]}.{parts[1]}.depthwise.weight"] = value.reshape(value.shape[0], value.shape[1], 1, -1)
        elif parts[2] == "pointwise_filter":
            state[f"{parts[0]}.{parts[1]}.pointwise.weight"] = value
        else:
            state[f"{parts[0]}.{parts[1]}.pointwise.bias"] = value
    return state


def load_face_landmark_net(path=None, tiny: bool = False) -> FaceLandmark68Net:
    """The landmark network with face-api's pretrained weights, in eval mode.

    ``path``: a ``face_landmark_68[_tiny]_model-weights_manifest.json`` or face-api's
    ``model/`` folder; default: found by :func:`strided.models.faceapi.find_faceapi_models`.
    """
    name = "face_landmark_68_tiny_model" if tiny else "face_landmark_68_model"
    return load_faceapi_net(lambda: FaceLandmark68Net(tiny=tiny), name,
                            lambda weights: landmarks_tfjs_to_state_dict(weights, tiny=tiny), path,
                            "face-api's landmark weights")
