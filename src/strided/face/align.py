"""From a face box to 68 landmarks, and from landmarks to the aligned crop, exactly as face-api.

face-api 1.7.15's ``detectAllFaces(img).withFaceLandmarks().withFaceDescriptors()`` for an
image tensor, step by step (``src/globalApi/DetectFaceLandmarksTasks.ts``,
``src/dom/extractFaceTensors.ts``, ``src/classes/{Box,FaceLandmarks}.ts``,
``src/factories/WithFaceLandmarks.ts``, ``src/globalApi/ComputeFaceDescriptorsTasks.ts``):

1. **Landmark crop** (:func:`crop_rect`): the detection box ``(x, y, w, h)`` is clipped at the
   image borders (``x' = max(x, 0)``, ``w' = min(x + w - x', W - x')``, y alike) and every
   number is floored (``Box.clipAtImageBorders``); the crop is ``image[y':y'+h', x':x'+w']``.
2. **Landmarks** (:mod:`strided.models.face_landmarks`): the net gives points relative to
   the crop; in the image they are ``rel * (w', h') + (x, y)`` (:func:`landmarks_to_image`):
   scaled by the *clipped, floored* crop size but shifted by the *unclipped, unfloored* box
   corner, as face-api does (for a face inside the image the two corners differ by < 1 px).
3. **Aligned box** (:func:`align_box`, ``FaceLandmarks.alignDlib``, dlib's alignment): the
   centres of the left eye (points 36-41), right eye (42-47) and mouth (48-67); ``d`` = the
   mean distance from the two eye centres to the mouth centre; ``size = floor(d / 0.45)``;
   ``c`` = the mean of the three centres; ``x = floor(max(0, c_x - 0.5 size))``, ``y =
   floor(max(0, c_y - 0.43 size))``, width ``min(size, w' + x)``, height ``min(size, h' + y)``
   (face-api bounds it by the landmark crop's size, which in practice leaves ``size``).
4. **Descriptor crop**: that box clipped and floored as in step 1 (:func:`crop_face`), then
   the recognition net (:mod:`strided.models.face_recognition`).

face-api also reports ``alignedRect``: the landmarks' bounding box padded by 20 % of its width
and height (:func:`landmark_box`); it is not what the descriptor uses.  Boxes here are
``[x1, y1, x2, y2]`` in image pixels; points ``(68, 2)`` ``(x, y)`` float64.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import StridedError

__all__ = ["LEFT_EYE", "RIGHT_EYE", "MOUTH", "ALIGN_REL_X", "ALIGN_REL_Y", "ALIGN_REL_SCALE", "crop_rect",
           "crop_face", "extract_faces", "landmarks_to_image", "align_box", "landmark_box"]

# the 68-point layout (iBUG 300-W): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
LEFT_EYE, RIGHT_EYE, MOUTH = slice(36, 42), slice(42, 48), slice(48, 68)
# face-api's FaceLandmarks.ts: where the reference point sits in the aligned box, and its size
ALIGN_REL_X, ALIGN_REL_Y, ALIGN_REL_SCALE = 0.5, 0.43, 0.45


def _check_box(box) -> np.ndarray:
    box = np.asarray(box, np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] < box[0] or box[3] < box[1]:
        raise StridedError(f"a box must be 4 finite numbers [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, "
                           f"received {np.asarray(box).tolist()!r}")
    return box


def crop_rect(box, image_shape) -> tuple:
    """``(x, y, w, h)`` ints of face-api's crop of ``box`` ``[x1, y1, x2, y2]`` from an image of
    ``image_shape`` ``(H, W, ...)``: clipped at the borders, each number floored
    (``Box.clipAtImageBorders``).  ``w`` or ``h`` is ``<= 0`` when the box misses the image."""
    x1, y1, x2, y2 = _check_box(box)
    height, width = image_shape[:2]
    x, y = max(x1, 0.0), max(y1, 0.0)
    w, h = min(x2 - x, width - x), min(y2 - y, height - y)
    return math.floor(x), math.floor(y), math.floor(w), math.floor(h)


def crop_face(image, box) -> tuple:
    """``(crop, (x, y, w, h))``: the pixels face-api's ``extractFaceTensors`` takes for ``box``
    (``[x1, y1, x2, y2]``, see :func:`crop_rect`), a view of ``image`` ``(H, W, C)``.  Raises
    :class:`~strided.errors.StridedError` when nothing of the box is inside the image."""
    image = np.asarray(image)
    x, y, w, h = crop_rect(box, image.shape)
    if w <= 0 or h <= 0:
        raise StridedError(f"the box {np.asarray(box, np.float64).round(2).tolist()} has no pixel inside the "
                           f"image of shape {image.shape[:2]} (crop {w} x {h})")
    return image[y:y + h, x:x + w], (x, y, w, h)


def extract_faces(image, boxes) -> list:
    """The crops of several boxes (face-api's ``extractFaceTensors``), skipping boxes with no
    pixel in the image, as face-api does."""
    crops = []
    for box in boxes:
        x, y, w, h = crop_rect(box, np.shape(image))
        if w > 0 and h > 0:
            crops.append(np.asarray(image)[y:y + h, x:x + w])
    return crops


def landmarks_to_image(relative, crop_size, origin) -> np.ndarray:
    """Points relative to a crop (``(68, 2)``, 0..1) -> image pixels: ``rel * (w, h) + origin``.

    ``crop_size``: ``(w, h)`` of the crop the net saw; ``origin``: ``(x, y)`` of the detection
    box (face-api shifts by the unclipped box corner, see the module docstring)."""
    relative = np.asarray(relative, np.float64)
    return relative * np.asarray(crop_size, np.float64) + np.asarray(origin, np.float64)


def _points(landmarks) -> np.ndarray:
    points = np.asarray(landmarks, np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise StridedError(f"landmarks must be 68 finite (x, y) points, received an array of shape {points.shape}")
    return points


def align_box(landmarks, crop_size=None) -> list:
    """face-api's dlib alignment (``FaceLandmarks.alignDlib``): 68 landmarks -> the box the
    descriptor is computed on, ``[x1, y1, x2, y2]`` (integers, as floats).

    ``size = floor(mean(|mouth - left eye|, |mouth - right eye|) / 0.45)`` (centres of the
    points), the box's corner ``floor(max(0, c - (0.5, 0.43) * size))`` with ``c`` the mean of
    the three centres.  ``crop_size``: ``(w, h)`` of the landmark crop; face-api caps the width
    at ``w + x`` and the height at ``h + y`` (no cap when ``None``)."""
    points = _points(landmarks)
    centres = np.stack([points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0), points[MOUTH].mean(0)])
    left_eye, right_eye, mouth = centres
    eye_to_mouth = (math.hypot(*(mouth - left_eye)) + math.hypot(*(mouth - right_eye))) / 2
    size = math.floor(eye_to_mouth / ALIGN_REL_SCALE)
    ref = centres.mean(0)
    x = math.floor(max(0.0, ref[0] - ALIGN_REL_X * size))
    y = math.floor(max(0.0, ref[1] - ALIGN_REL_Y * size))
    w, h = size, size
    if crop_size is not None:
        w, h = min(size, crop_size[0] + x), min(size, crop_size[1] + y)
    return [float(x), float(y), float(x + w), float(y + h)]


def landmark_box(landmarks, padding: float = 0.2) -> list:
    """face-api's ``alignedRect`` (``FaceLandmarks.alignMinBbox``): the landmarks' bounding box
    grown by ``padding`` times its width and height (half on each side), ``[x1, y1, x2, y2]``."""
    points = _points(landmarks)
    (x1, y1), (x2, y2) = points.min(0), np.maximum(points.max(0), 0.0)    # face-api's minBbox starts max at 0
    pad_x, pad_y = (x2 - x1) * padding, (y2 - y1) * padding
    return [float(x1 - pad_x / 2), float(y1 - pad_y / 2), float(x2 + pad_x / 2), float(y2 + pad_y / 2)]
