"""Faces in a photo with face-api's Tiny Face Detector, exactly as face-api finds them.

The pipeline of ``faceapi.detectAllFaces(image, new TinyFaceDetectorOptions({inputSize,
scoreThreshold}))`` (``TinyYolov2Base.detect`` / ``extractBoxes``), step by step:

1. **Input** (:func:`preprocess`): the ``(H, W, 3)`` uint8 photo is padded to a square with
   zeros at the bottom or right (not centred), resized to ``input_size`` x ``input_size`` with
   ``tf.image.resizeBilinear``'s legacy mapping (:func:`strided.models.faceapi.resize_bilinear`),
   then ``x = (pixels - [117.001, 114.697, 97.404]) / 255`` (float32).
2. **Network** (:class:`strided.models.tiny_face_detector.TinyFaceDetectorNet`):
   ``(1, S, S, 25)`` raw outputs, ``S = input_size / 32``, 5 anchors x ``(tx, ty, tw, th, to)``.
3. **Decoding** (:func:`decode`), per cell (row, col) and anchor ``a`` (in grid cells)::

       score = sigmoid(to)                               (one class: no class softmax)
       cx = (col + sigmoid(tx)) / S * fx,   w = anchor_w[a] * exp(tw) / S * fx
       cy = (row + sigmoid(ty)) / S * fy,   h = anchor_h[a] * exp(th) / S * fy

   with ``fx = input_size / round(W * input_size / max(H, W))`` (``fy`` with H): the box,
   relative to the padded square, is stretched back to the unpadded image (face-api's
   ``computeReshapedDimensions`` rounding included), so ``[cx - w/2, cx + w/2] * W`` are the
   photo's pixels.  Kept: ``score > score_threshold`` (strictly).
4. **NMS** (:func:`strided.detect.suppression.nms`): greedy, highest score first, a box is dropped when
   its IoU with a kept box is **> 0.4** (face-api's ``nonMaxSuppression`` keeps ``<= 0.4``).
   Only for exactly equal scores do the two differ (face-api keeps the later box first).
5. **Boxes** ``[x1, y1, x2, y2]`` in the photo's pixels, **not clipped** (face-api does not
   clip either: a face at the border may have x1 < 0), highest score first.

Differences from face-api are float rounding only (TF.js accumulates its convolutions in a
different order): on face-api's demo photos, the astronaut and Grace Hopper, boxes agree to
4e-5 px and scores to 3e-7 (tested at 0.01 px and 1e-5, ``tests/detect/test_tiny_face.py``).
"""
from __future__ import annotations

import numbers

import numpy as np

from strided.detect.decode import decode_region
from strided.detect.suppression import nms
from strided.errors import ImageError, StridedError
from strided.models.faceapi import reshaped_dimensions, to_net_input
from strided.models.tiny_face_detector import (TINY_FACE_ANCHORS, TINY_FACE_IOU_THRESHOLD, TINY_FACE_MEAN_RGB,
                                               TinyFaceDetectorNet, load_tiny_face_detector)
from strided.tensor import Tensor, no_grad

__all__ = ["TinyFaceError", "DEFAULT_INPUT_SIZE", "DEFAULT_SCORE_THRESHOLD", "check_options", "preprocess", "decode",
           "TinyFaceDetector", "detect_faces"]

DEFAULT_INPUT_SIZE = 416
DEFAULT_SCORE_THRESHOLD = 0.5


class TinyFaceError(StridedError, ValueError):
    """A bad option (input size, threshold) or a head of the wrong shape."""


def check_options(input_size, score_threshold, iou_threshold=TINY_FACE_IOU_THRESHOLD) -> tuple:
    """Validate as face-api's ``TinyYolov2Options``: ``input_size`` a positive multiple of 32,
    ``score_threshold`` in (0, 1), ``iou_threshold`` in [0, 1]."""
    if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral) or input_size <= 0 \
            or input_size % 32:
        raise TinyFaceError(f"input_size must be a positive multiple of 32 (e.g. 128, 160, 224, 320, 416, 512, "
                           f"608), received input_size={input_size!r}")
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, numbers.Real) \
            or not 0 < score_threshold < 1:
        raise TinyFaceError(f"score_threshold must be a number in (0, 1), received score_threshold={score_threshold!r}")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real) \
            or not 0 <= iou_threshold <= 1:
        raise TinyFaceError(f"iou_threshold must be in [0, 1], received iou_threshold={iou_threshold!r}")
    return int(input_size), float(score_threshold), float(iou_threshold)


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"the Tiny Face Detector needs an RGB image (H, W, 3), received shape {image.shape}")
    if image.dtype != np.uint8:
        raise ImageError(f"the Tiny Face Detector needs uint8 pixels 0..255 (see strided.data.image.to_uint8), "
                         f"received dtype {image.dtype}")
    return image


def preprocess(image, input_size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> the network's float32 input ``(1, input_size, input_size, 3)``:
    pad bottom/right with zeros to a square, resize (legacy bilinear), subtract the mean RGB,
    divide by 255 (each step in float32, as TF.js)."""
    image = _check_image(image)
    x = to_net_input(image, input_size, center=False)       # a new array: normalised in place
    x -= np.asarray(TINY_FACE_MEAN_RGB, np.float32)
    x /= np.float32(255)
    return x


def decode(raw, image_shape, input_size: int = DEFAULT_INPUT_SIZE,
           score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> tuple:
    """Raw head ``(S, S, 25)`` (or ``(1, S, S, 25)``) -> ``(boxes, scores)`` above the threshold.

    ``boxes`` ``(K, 4)`` xyxy in the pixels of an image of ``image_shape`` ``(H, W, ...)``,
    ``scores`` ``(K,)``, in grid order (row, column, anchor), before NMS; float64, as face-api
    computes them in JavaScript doubles (module docstring, step 3).  The grid decoding is
    darknet's region decoding (:func:`strided.detect.decode.decode_region`, no classes);
    face-api then stretches x by ``fx`` and y by ``fy`` and scales to the photo.
    """
    raw = np.asarray(raw.data if isinstance(raw, Tensor) else raw, np.float64)
    if raw.ndim == 4 and raw.shape[0] == 1:
        raw = raw[0]
    num_anchors = len(TINY_FACE_ANCHORS)
    if raw.ndim != 3 or raw.shape[0] != raw.shape[1] or raw.shape[2] != num_anchors * 5:
        raise TinyFaceError(f"the Tiny Face Detector's head must be (S, S, {num_anchors * 5}), "
                           f"received shape {raw.shape}")
    boxes, objectness, _ = decode_region(raw, TINY_FACE_ANCHORS, num_classes=0, softmax=False)
    boxes, objectness = boxes[0], objectness[0]                 # (S, S, A, 4) xyxy of the square, (S, S, A)
    keep = objectness > score_threshold
    height, width = image_shape[:2]
    reshaped_w, reshaped_h = reshaped_dimensions(height, width, input_size)
    fx, fy = input_size / reshaped_w, input_size / reshaped_h
    return boxes[keep] * np.array([fx * width, fy * height] * 2), objectness[keep]


class TinyFaceDetector:
    """face-api's Tiny Face Detector on strided's engine.

    >>> detector = TinyFaceDetector()                 # weights found by find_faceapi_models()
    >>> detector.detect(read_image("astronaut.png"))  # doctest: +SKIP
    [{'box': [163.3, 75.7, 279.3, 186.6], 'score': 0.976, 'class': 0, 'name': 'face'}]

    ``weights``: a ``tiny_face_detector_model-weights_manifest.json``, face-api's ``model/``
    folder, ``None`` to look it up (:func:`strided.models.faceapi.find_faceapi_models`), or a
    :class:`~strided.models.tiny_face_detector.TinyFaceDetectorNet` already built.
    ``input_size`` (multiple of 32; larger finds smaller faces, slower), ``score_threshold``
    (keep ``score > threshold``) and ``iou_threshold`` (NMS drops IoU ``>`` it) are defaults
    that :meth:`detect` can override.
    """

    def __init__(self, weights=None, input_size: int = DEFAULT_INPUT_SIZE,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, iou_threshold: float = TINY_FACE_IOU_THRESHOLD):
        self.input_size, self.score_threshold, self.iou_threshold = check_options(
            input_size, score_threshold, iou_threshold)
        self.net = weights if isinstance(weights, TinyFaceDetectorNet) else load_tiny_face_detector(weights)

    def __repr__(self):
        return (f"TinyFaceDetector(input_size={self.input_size}, score_threshold={self.score_threshold}, "
                f"iou_threshold={self.iou_threshold})")

    def forward(self, image, input_size: int | None = None) -> np.ndarray:
        """The raw head ``(1, S, S, 25)`` (float32) for one uint8 photo."""
        size, _, _ = check_options(self.input_size if input_size is None else input_size, self.score_threshold)
        with no_grad():
            return self.net(Tensor(preprocess(image, size))).data

    def detect(self, image, input_size: int | None = None, score_threshold: float | None = None,
               iou_threshold: float | None = None) -> list:
        """Faces in one ``(H, W, 3)`` uint8 photo: a list of ``{"box": [x1, y1, x2, y2], "score",
        "class": 0, "name": "face"}`` (photo pixels, not clipped), highest score first."""
        size, threshold, iou_t = check_options(
            self.input_size if input_size is None else input_size,
            self.score_threshold if score_threshold is None else score_threshold,
            self.iou_threshold if iou_threshold is None else iou_threshold)
        image = _check_image(image)
        boxes, scores = decode(self.forward(image, size), image.shape, size, threshold)
        # face-api runs NMS on the boxes relative to the unpadded image times input_size
        scale = np.array([image.shape[1], image.shape[0]] * 2, np.float64)
        kept = nms(boxes / scale * size, scores, iou_t)
        return [{"box": [float(v) for v in boxes[i]], "score": float(scores[i]), "class": 0, "name": "face"}
                for i in kept]


_DEFAULT_DETECTOR: list = []


def detect_faces(image, input_size: int = DEFAULT_INPUT_SIZE, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 iou_threshold: float = TINY_FACE_IOU_THRESHOLD) -> list:
    """:meth:`TinyFaceDetector.detect` with the installed face-api weights (loaded once)."""
    if not _DEFAULT_DETECTOR:
        _DEFAULT_DETECTOR.append(TinyFaceDetector())
    return _DEFAULT_DETECTOR[0].detect(image, input_size, score_threshold, iou_threshold)
