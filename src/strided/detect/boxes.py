"""Boxes: format conversions, areas and intersection over union (NumPy, vectorised).

Three formats, all on arrays of shape ``(..., 4)`` (the last axis holds one box):

* ``xyxy``   ``[x1, y1, x2, y2]``: top-left and bottom-right corners (the format of
  every other function in :mod:`strided.detect`, and of boxes shown to users);
* ``xywh``   ``[x, y, w, h]``: top-left corner, width and height (COCO's ``bbox``);
* ``cxcywh`` ``[cx, cy, w, h]``: centre, width and height (YOLO's outputs).

Coordinates are continuous (no "+1 pixel" convention): a box ``[0, 0, 2, 2]`` has
width 2 and area 4, and two boxes that only share an edge do not intersect.

IoU (intersection over union) of boxes ``A`` and ``B``::

    inter = max(0, min(x2A, x2B) - max(x1A, x1B)) * max(0, min(y2A, y2B) - max(y1A, y1B))
    IoU   = inter / (area(A) + area(B) - inter)          (0 when the union is 0)

>>> iou(np.array([[2, 1, 4, 3]]), np.array([[1, 2, 3, 4]]))   # the course's example
array([[0.14285714]])
"""
from __future__ import annotations

import numpy as np

from strided.errors import StridedError

__all__ = ["BoxShapeError", "xyxy_to_xywh", "xywh_to_xyxy", "xyxy_to_cxcywh", "cxcywh_to_xyxy",
           "box_area", "iou", "paired_iou"]


class BoxShapeError(StridedError, ValueError):
    """An array of boxes whose shape is not ``(..., 4)`` (or not ``(N, 4)`` where a list is needed)."""


def as_boxes(boxes, name: str = "boxes", ndim: int | None = None) -> np.ndarray:
    """``boxes`` as a floating array of shape ``(..., 4)`` (``(N, 4)`` when ``ndim=2``).

    Floating inputs keep their dtype; integers become float64.  Raises
    :class:`BoxShapeError` naming the received shape otherwise.
    """
    arr = np.asarray(boxes)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise BoxShapeError(f"{name} must be a numeric array of boxes; received dtype {arr.dtype}")
    if ndim == 2 and arr.ndim == 2 and arr.shape[0] == 0 and arr.shape[1] in (0, 4):
        arr = arr.reshape(0, 4)       # np.zeros((0, 0)) and [] both mean "no boxes"
    elif ndim == 2 and arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim == 0 or arr.shape[-1] != 4 or (ndim is not None and arr.ndim != ndim):
        expected = "(N, 4)" if ndim == 2 else "(..., 4)"
        raise BoxShapeError(f"{name} must have shape {expected}; received shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


# --------------------------------------------------------------------------- conversions
def xyxy_to_xywh(boxes) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> ``[x1, y1, x2 - x1, y2 - y1]`` on ``(..., 4)``."""
    b = as_boxes(boxes)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(boxes) -> np.ndarray:
    """``[x, y, w, h]`` (top-left corner) -> ``[x, y, x + w, y + h]`` on ``(..., 4)``."""
    b = as_boxes(boxes)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_cxcywh(boxes) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> ``[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]`` on ``(..., 4)``."""
    b = as_boxes(boxes)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes) -> np.ndarray:
    """``[cx, cy, w, h]`` -> ``[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]`` on ``(..., 4)``."""
    b = as_boxes(boxes)
    half = b[..., 2:] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


# --------------------------------------------------------------------------- area and IoU
def box_area(boxes) -> np.ndarray:
    """Areas of ``xyxy`` boxes, shape ``(...)``: ``max(0, x2 - x1) * max(0, y2 - y1)``.

    A box with ``x2 <= x1`` or ``y2 <= y1`` (degenerate or inverted) has area 0.
    """
    b = as_boxes(boxes)
    return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of broadcastable ``xyxy`` arrays ``a`` and ``b`` (``(..., 4)``); the one formula."""
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = np.maximum(a[..., 2] - a[..., 0], 0) * np.maximum(a[..., 3] - a[..., 1], 0)
    area_b = np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)
    union = area_a + area_b - inter
    positive = union > 0
    return np.divide(inter, union, out=np.zeros_like(inter), where=positive)


def iou(a, b) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    ``a``: ``(N, 4)``, ``b``: ``(M, 4)``, both ``xyxy``.  Returns ``(N, M)`` with
    ``out[i, j] = IoU(a[i], b[j])`` in ``[0, 1]``, float32 when both inputs are float32,
    float64 otherwise.

    * Boxes that only touch (share an edge or a corner) have IoU 0.
    * Degenerate boxes (zero or negative width or height, i.e. zero area) have IoU 0
      with every box, themselves included: the result is never NaN (the division is
      skipped where the union is 0).
    """
    a = as_boxes(a, "a", ndim=2)
    b = as_boxes(b, "b", ndim=2)
    dtype = np.result_type(a.dtype, b.dtype)
    return _iou(a[:, None, :].astype(dtype, copy=False), b[None, :, :].astype(dtype, copy=False))


def paired_iou(a, b) -> np.ndarray:
    """IoU of matching rows: ``a`` and ``b`` of the same shape ``(..., 4)`` -> ``(...)``.

    ``paired_iou(a, b)[i] == iou(a, b)[i, i]``, without the ``(N, M)`` matrix.  Same rules
    as :func:`iou` (touching or degenerate boxes give 0, never NaN).
    """
    a = as_boxes(a, "a")
    b = as_boxes(b, "b")
    if a.shape != b.shape:
        raise BoxShapeError(f"paired_iou needs a and b of the same shape; received {a.shape} and {b.shape}")
    dtype = np.result_type(a.dtype, b.dtype)
    return _iou(a.astype(dtype, copy=False), b.astype(dtype, copy=False))
