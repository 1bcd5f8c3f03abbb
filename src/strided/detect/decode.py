"""Decoding YOLO heads into boxes, the way darknet does (``region_layer.c``, ``yolo_layer.c``).

A head's raw output is NHWC ``(N, S_h, S_w, A*(5+C))``: for each cell ``(row, col)`` and
anchor ``a``, channels ``a*(5+C) .. a*(5+C)+4+C`` hold ``tx, ty, tw, th, to`` and ``C``
class logits.  With ``sigmoid(t) = 1 / (1 + exp(-t))``:

YOLOv2 ``[region]`` (anchors ``(p_w, p_h)`` in **grid cells**)::

    cx = (col + sigmoid(tx)) / S_w          w = p_w * exp(tw) / S_w
    cy = (row + sigmoid(ty)) / S_h          h = p_h * exp(th) / S_h
    objectness = sigmoid(to)                class_probs = softmax(logits)
                                            (sigmoid per class when softmax=False)

YOLOv3 ``[yolo]`` (anchors in **pixels of the network input** ``(in_w, in_h)``, the head
uses the anchors its ``mask`` picks)::

    cx, cy as above                         w = p_w * exp(tw) / in_w,  h = p_h * exp(th) / in_h
    objectness = sigmoid(to)                class_probs = sigmoid(logits)

Boxes come back as **xyxy in [0, 1] of the network input** (``x1 = cx - w/2`` ...; not
clipped), shape ``(N, S_h, S_w, A, 4)``; ``objectness`` ``(N, S_h, S_w, A)``;
``class_probs`` ``(N, S_h, S_w, A, C)``.  The score of a class is ``objectness *
class_prob`` (darknet's ``prob``).

From scores to detections (:func:`detections_from_head`), as darknet's ``test_detector``:
keep every (box, class) pair whose score is **strictly greater** than ``conf`` (a box can
carry several classes), per-class NMS (suppress IoU > ``iou``,
:func:`strided.detect.suppression.batched_nms`), then map to original-image pixels
(:func:`boxes_to_image`): darknet 2018 (Debian's version) letterboxes the image for both
YOLOv2 and YOLOv3 (``letterbox_image`` + ``correct_region_boxes`` / ``correct_yolo_boxes``),
so ``letterbox=True`` is the default; ``letterbox=False`` is a plain stretch resize.
Boxes are clipped to the image at the end.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .suppression import batched_nms

__all__ = ["decode_region", "decode_yolo", "decode_head", "boxes_to_image", "detections_from_head", "detection_records",
           "letterbox_size", "split_head", "sigmoid", "check_thresholds"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _array(raw) -> np.ndarray:
    return np.asarray(raw.data if isinstance(raw, Tensor) else raw)


def split_head(raw, num_anchors: int, num_classes: int) -> np.ndarray:
    """View a raw head ``(N, S_h, S_w, A*(5+C))`` (or one image ``(S_h, S_w, ...)``) as
    ``(N, S_h, S_w, A, 5+C)``; checks the channel count."""
    raw = _array(raw)
    if raw.ndim == 3:
        raw = raw[None]
    if raw.ndim != 4 or raw.shape[-1] != num_anchors * (5 + num_classes):
        raise ValueError(f"a head with {num_anchors} anchors and {num_classes} classes must be "
                         f"(N, S_h, S_w, {num_anchors * (5 + num_classes)}), received shape {raw.shape}")
    return raw.reshape(raw.shape[:3] + (num_anchors, 5 + num_classes))


def _anchors(anchors) -> np.ndarray:
    a = np.asarray(anchors, dtype=np.float64)
    if a.ndim == 1 and a.size % 2 == 0:
        a = a.reshape(-1, 2)
    if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0 or not np.all(a > 0):
        raise ValueError(f"anchors must be (A, 2) positive (w, h) pairs, received {np.asarray(anchors).tolist()}")
    return a


def _decode(p, anchor_wh, class_fn):
    """Shared by both heads: ``anchor_wh`` already divided by what makes sizes relative."""
    N, S_h, S_w, A, _ = p.shape
    cols = np.arange(S_w).reshape(1, 1, S_w, 1)
    rows = np.arange(S_h).reshape(1, S_h, 1, 1)
    cx = (cols + sigmoid(p[..., 0])) / S_w
    cy = (rows + sigmoid(p[..., 1])) / S_h
    w = anchor_wh[:, 0] * np.exp(p[..., 2])
    h = anchor_wh[:, 1] * np.exp(p[..., 3])
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).astype(p.dtype, copy=False)
    return boxes, sigmoid(p[..., 4]), class_fn(p[..., 5:])


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def decode_region(raw, anchors, num_classes: int, softmax: bool = True) -> tuple:
    """Decode a YOLOv2 ``[region]`` head (anchors in grid cells): see the module docstring.

    Returns ``(boxes xyxy in [0, 1], objectness, class_probs)``; ``softmax=False`` gives
    independent sigmoids per class (darknet's region without ``softmax=1``).
    """
    anchors = _anchors(anchors)
    p = split_head(raw, len(anchors), num_classes)
    S_h, S_w = p.shape[1:3]
    scale = np.array([S_w, S_h], dtype=np.float64)
    return _decode(p, anchors / scale, _softmax if softmax else sigmoid)


def decode_yolo(raw, anchors, mask, num_classes: int, input_size) -> tuple:
    """Decode a YOLOv3 ``[yolo]`` head: anchors (all of them, ``(total, 2)``) in pixels of the
    network input, ``mask`` the indices this head uses (``None``: all), ``input_size``
    ``(width, height)`` of the network input (an int for square).  Class scores are sigmoids.
    Returns ``(boxes xyxy in [0, 1], objectness, class_probs)``.
    """
    anchors = _anchors(anchors)
    if mask is not None:
        mask = [int(m) for m in mask]
        if not mask or min(mask) < 0 or max(mask) >= len(anchors):
            raise ValueError(f"mask must pick anchors among the {len(anchors)} given, received mask={mask}")
        anchors = anchors[mask]
    in_w, in_h = (input_size, input_size) if np.ndim(input_size) == 0 else input_size
    if in_w <= 0 or in_h <= 0:
        raise ValueError(f"input_size must be positive (width, height), received input_size={input_size!r}")
    p = split_head(raw, len(anchors), num_classes)
    return _decode(p, anchors / np.array([in_w, in_h], dtype=np.float64), sigmoid)


def decode_head(raw, head, input_size=None) -> tuple:
    """Decode with a :class:`strided.io.darknet.DarknetHead` (region or yolo) description.

    ``input_size`` ``(width, height)`` of the network input actually used (default: the cfg's).
    """
    if head.type == "region":
        return decode_region(raw, head.head_anchors, head.classes, softmax=head.softmax)
    return decode_yolo(raw, head.anchors, head.mask, head.classes, input_size or head.input_size)


def letterbox_size(image_size, input_size) -> tuple:
    """darknet's letterbox: the ``(new_w, new_h)`` an image ``(w, h)`` is resized to inside the
    network input ``(net_w, net_h)`` (aspect kept, integer arithmetic as darknet)."""
    w, h = (int(v) for v in image_size)
    net_w, net_h = (int(v) for v in input_size)
    if net_w / w < net_h / h:
        return net_w, (h * net_w) // w
    return (w * net_h) // h, net_h


def boxes_to_image(boxes, image_size, input_size, letterbox: bool = True, clip: bool = True) -> np.ndarray:
    """Boxes xyxy in [0, 1] of the network input -> pixels of the original image.

    ``image_size`` ``(width, height)`` of the original image, ``input_size`` of the network
    input.  With ``letterbox`` (darknet's ``correct_*_boxes``): ``x' = (x - (net_w - new_w) /
    2 / net_w) * net_w / new_w`` (same for y), then times the image size; without, just
    times the image size.  ``clip`` limits the result to ``[0, width] x [0, height]``.
    """
    b = np.array(boxes, dtype=np.float64, copy=True)
    w, h = (float(v) for v in image_size)
    if letterbox:
        net_w, net_h = (float(v) for v in input_size)
        new_w, new_h = letterbox_size(image_size, input_size)
        for axis, (net, new) in ((0, (net_w, new_w)), (1, (net_h, new_h))):
            b[..., axis::2] = (b[..., axis::2] - (net - new) / 2.0 / net) * (net / new)
    b[..., 0::2] *= w
    b[..., 1::2] *= h
    if clip:
        b[..., 0::2] = np.clip(b[..., 0::2], 0.0, w)
        b[..., 1::2] = np.clip(b[..., 1::2], 0.0, h)
    return b


def check_thresholds(conf, iou, max_det) -> None:
    """Raise ValueError unless conf and iou are in [0, 1] and max_det a positive integer or None."""
    if not 0.0 <= float(conf) <= 1.0:
        raise ValueError(f"conf must be in [0, 1], received conf={conf!r}")
    if not 0.0 <= float(iou) <= 1.0:
        raise ValueError(f"iou must be in [0, 1], received iou={iou!r}")
    if max_det is not None and (isinstance(max_det, bool) or int(max_det) != max_det or max_det < 1):
        raise ValueError(f"max_det must be a positive integer or None, received max_det={max_det!r}")


def detections_from_head(boxes, objectness, class_probs, image_size, input_size, conf: float = 0.5,
                         iou: float = 0.45, max_det: int | None = 100, letterbox: bool = True,
                         names=None) -> list:
    """The detections of ONE image from decoded head(s).

    ``boxes`` ``(..., 4)`` xyxy in [0, 1] of the network input, ``objectness`` ``(...)``,
    ``class_probs`` ``(..., C)`` (any leading shape, e.g. one head's ``(S_h, S_w, A)``, or
    several heads concatenated to ``(K,)``).  Every (box, class) with ``objectness *
    class_prob > conf`` (strict, as darknet) is a candidate; per-class NMS suppresses a box
    whose IoU with a kept, higher-scoring box of its class is ``> iou``; at most ``max_det``
    are kept, best first.  Boxes are mapped to pixels of the original image ``image_size``
    ``(width, height)`` (:func:`boxes_to_image`, clipped).  Returns a list of dicts
    ``{"box": [x1, y1, x2, y2], "score": s, "class": k, "name": names[k] or str(k)}``.
    """
    check_thresholds(conf, iou, max_det)
    class_probs = np.asarray(class_probs, dtype=np.float64)
    C = class_probs.shape[-1]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = (np.asarray(objectness, dtype=np.float64).reshape(-1, 1) * class_probs.reshape(-1, C))
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"boxes ({boxes.shape[0]}) and scores ({scores.shape[0]}) describe different numbers of boxes")
    box_idx, cls = np.nonzero(scores > conf)
    if box_idx.size == 0:
        return []
    s = scores[box_idx, cls]
    pixel = boxes_to_image(boxes[box_idx], image_size, input_size, letterbox, clip=False)
    kept = batched_nms(pixel, s, cls, iou, max_boxes=max_det)
    out_boxes = boxes_to_image(boxes[box_idx[kept]], image_size, input_size, letterbox, clip=True)
    return detection_records(out_boxes, s[kept], cls[kept], names)


def detection_records(boxes, scores, classes, names=None) -> list:
    """The detections users get: one ``{"box": [x1, y1, x2, y2], "score": s, "class": k, "name":
    names[k] or str(k)}`` per row of ``boxes`` ``(M, 4)``, ``scores`` ``(M,)``, ``classes`` ``(M,)``."""
    records = []
    for b, score, k in zip(boxes, scores, classes):
        k = int(k)
        name = names[k] if names is not None and k < len(names) else str(k)
        records.append({"box": [float(v) for v in b], "score": float(score), "class": k, "name": name})
    return records
