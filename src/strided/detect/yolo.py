"""The YOLOv2 head: grid, anchors, target assignment, encode/decode and the loss.

A YOLOv2 head predicts, for every cell ``(row, col)`` of an ``S_h x S_w`` grid and every
anchor ``a`` (``A`` anchors of size ``(p_w, p_h)`` in *grid cells*), ``5 + C`` numbers
laid out on the last axis of the raw output ``(N, S_h, S_w, A * (5 + C))`` (NHWC; anchor
``a`` owns channels ``a*(5+C) ... a*(5+C) + 4 + C``, darknet's ``[region]`` order)::

    tx, ty, tw, th, to, c_1 ... c_C

Decoding (boxes normalised to [0, 1] of the image; the same as
``strided.detect.decode.decode_region``)::

    cx = (col + sigmoid(tx)) / S_w          w = p_w * exp(tw) / S_w
    cy = (row + sigmoid(ty)) / S_h          h = p_h * exp(th) / S_h
    objectness = sigmoid(to)                class probabilities = softmax(c)

Target assignment: a ground-truth box goes to the cell containing its centre
(``col = floor(cx * S_w)``, a centre on a cell border belongs to the cell on its right /
below; a centre at 1.0 to the last cell) and to the anchor of best *shape* IoU
(:func:`strided.detect.anchors.shape_iou`, boxes compared centred; ties go to the lower
anchor index).  If two boxes claim the same (cell, anchor), the later one in the list
wins (darknet's rule).  Boxes of zero width or height are skipped.

The loss (:func:`yolo_loss`), summed over the batch and divided by ``N``::

    coord  = sum_resp (2 - w*h) * [(sigmoid(tx) - ox)^2 + (sigmoid(ty) - oy)^2
                                   + (tw - log(w*S_w / p_w))^2 + (th - log(h*S_h / p_h))^2]
    obj    = sum_resp  BCE(to, 1)
    noobj  = sum_{not resp, best IoU of the decoded box with the image's ground truths <= ignore_thresh}
                       BCE(to, 0)
    cls    = sum_resp  -log softmax(c)[class]
    loss   = (lambda_coord coord + lambda_obj obj + lambda_noobj noobj + lambda_cls cls) / N

``resp`` are the (cell, anchor) slots that own a ground truth; ``ox, oy`` the box centre's
offsets inside its cell (what ``sigmoid(tx)`` should become); BCE is the binary
cross-entropy on the objectness *logit* (``BCE(x, 1) = softplus(-x)``, ``BCE(x, 0) =
softplus(x)``, computed stably).  The weight ``2 - w*h`` (``w, h`` normalised) gives small
boxes more say, as in YOLOv3.  Defaults follow darknet's ``yolov2-voc.cfg`` region layer:
``lambda_obj = 5``, the other lambdas 1, ``ignore_thresh = 0.6``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..errors import StridedError
from ..tensor import Tensor, as_tensor
from .anchors import check_anchors, shape_iou
from .boxes import iou
from .decode import decode_region

__all__ = ["YoloTargetError", "YoloTargets", "grid_cells", "encode", "decode", "assign_targets", "yolo_loss",
           "ignore_mask"]

_EPS = 1e-7  # offsets are clipped to [EPS, 1 - EPS] before the logit in encode


class YoloTargetError(StridedError, ValueError):
    """Ground-truth boxes, classes or a raw head output of the wrong shape or range."""


def _check_grid(grid) -> tuple:
    try:
        S_h, S_w = (int(grid), int(grid)) if np.ndim(grid) == 0 else (int(grid[0]), int(grid[1]))
    except (TypeError, ValueError, IndexError):
        raise YoloTargetError(f"grid must be an int S or a pair (S_h, S_w), received grid={grid!r}") from None
    if S_h < 1 or S_w < 1:
        raise YoloTargetError(f"grid sizes must be >= 1, received grid={grid!r}")
    return S_h, S_w


def _check_boxes(boxes, name="boxes") -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise YoloTargetError(f"{name} must be (K, 4) rows of [x1, y1, x2, y2], received shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise YoloTargetError(f"{name} must be finite, received {b.tolist()}")
    return b


def grid_cells(boxes, grid) -> tuple:
    """Cell ``(row, col)`` and in-cell offsets ``(oy, ox)`` of each box centre.

    ``boxes`` ``(K, 4)`` xyxy normalised to [0, 1].  ``col = floor(cx * S_w)`` clipped to
    ``[0, S_w - 1]``, ``ox = cx * S_w - col`` (in [0, 1]); the same for rows.
    Returns ``(rows, cols, oy, ox)``.
    """
    S_h, S_w = _check_grid(grid)
    b = _check_boxes(boxes)
    cx = (b[:, 0] + b[:, 2]) / 2 * S_w
    cy = (b[:, 1] + b[:, 3]) / 2 * S_h
    cols = np.clip(np.floor(cx), 0, S_w - 1).astype(np.int64)
    rows = np.clip(np.floor(cy), 0, S_h - 1).astype(np.int64)
    return rows, cols, cy - rows, cx - cols


def _best_anchor(boxes: np.ndarray, anchors: np.ndarray, grid: tuple) -> np.ndarray:
    S_h, S_w = grid
    wh = np.stack([(boxes[:, 2] - boxes[:, 0]) * S_w, (boxes[:, 3] - boxes[:, 1]) * S_h], axis=1)
    return np.argmax(shape_iou(wh, anchors), axis=1) if len(boxes) else np.zeros(0, np.int64)


def encode(boxes, anchors, grid) -> tuple:
    """Raw head values that decode to ``boxes``: ``(t, rows, cols, anchor_index)``.

    ``boxes`` ``(K, 4)`` xyxy normalised to [0, 1] with ``w, h > 0``; ``anchors`` ``(A, 2)``
    in grid cells.  Each box gets its cell and best-shape anchor (as in
    :func:`assign_targets`), then ``t = (tx, ty, tw, th)`` ``(K, 4)`` with
    ``sigmoid(tx) = ox`` (the logit of the offset, offsets clipped to ``[1e-7, 1 - 1e-7]``
    so a centre on a cell border stays finite) and ``tw = log(w * S_w / p_w)``.
    """
    anchors = check_anchors(anchors)
    S_h, S_w = _check_grid(grid)
    b = _check_boxes(boxes)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if np.any(w <= 0) or np.any(h <= 0):
        raise YoloTargetError(f"encode needs boxes with x2 > x1 and y2 > y1, received {b[(w <= 0) | (h <= 0)].tolist()}")
    rows, cols, oy, ox = grid_cells(b, (S_h, S_w))
    best = _best_anchor(b, anchors, (S_h, S_w))
    ox, oy = np.clip(ox, _EPS, 1 - _EPS), np.clip(oy, _EPS, 1 - _EPS)
    t = np.stack([np.log(ox / (1 - ox)), np.log(oy / (1 - oy)),
                  np.log(w * S_w / anchors[best, 0]), np.log(h * S_h / anchors[best, 1])], axis=1)
    return t, rows, cols, best


def decode(raw, anchors, num_classes: int) -> tuple:
    """Boxes, objectness and class probabilities of a raw head (NumPy, no gradient).

    ``raw`` ``(N, S_h, S_w, A*(5+C))``.  Returns ``boxes`` ``(N, S_h, S_w, A, 4)`` xyxy
    normalised to [0, 1] (not clipped), ``objectness`` ``(N, S_h, S_w, A)`` and
    ``class_probs`` ``(N, S_h, S_w, A, C)`` (softmax): the formulas of the module docstring,
    computed by :func:`strided.detect.decode.decode_region` (darknet's ``[region]`` head).
    """
    return decode_region(raw, check_anchors(anchors), num_classes)


@dataclass
class YoloTargets:
    """Training targets of a batch, one entry per (image, row, col, anchor) slot.

    ``responsible`` bool ``(N, S_h, S_w, A)``: the slot owns a ground truth;
    ``offsets`` ``(N, S_h, S_w, A, 2)``: ``(ox, oy)`` the centre's place in its cell;
    ``log_wh`` ``(N, S_h, S_w, A, 2)``: ``(log(w S_w / p_w), log(h S_h / p_h))``;
    ``classes`` int64 ``(N, S_h, S_w, A)`` (-1 where not responsible);
    ``weight`` ``(N, S_h, S_w, A)``: ``2 - w*h`` (0 where not responsible);
    ``boxes``: per image the ``(K, 4)`` xyxy normalised ground truths (for the ignore rule).
    """
    responsible: np.ndarray
    offsets: np.ndarray
    log_wh: np.ndarray
    classes: np.ndarray
    weight: np.ndarray
    boxes: list

    @property
    def num_assigned(self) -> int:
        return int(self.responsible.sum())


def assign_targets(targets, anchors, grid, num_classes: int | None = None) -> YoloTargets:
    """Give each ground truth its (cell, anchor) slot; see the module docstring for the rules.

    ``targets``: one ``(boxes, classes)`` pair per image, ``boxes`` ``(K, 4)`` xyxy
    normalised to [0, 1], ``classes`` ``(K,)`` ints in ``[0, num_classes)``.
    ``anchors`` ``(A, 2)`` in grid cells; ``grid`` ``S`` or ``(S_h, S_w)``.
    """
    anchors = check_anchors(anchors)
    S_h, S_w = _check_grid(grid)
    N, A = len(targets), len(anchors)
    responsible = np.zeros((N, S_h, S_w, A), bool)
    offsets = np.zeros((N, S_h, S_w, A, 2))
    log_wh = np.zeros((N, S_h, S_w, A, 2))
    classes = np.full((N, S_h, S_w, A), -1, np.int64)
    weight = np.zeros((N, S_h, S_w, A))
    all_boxes = []
    for n, target in enumerate(targets):
        try:
            boxes, labels = target
        except (TypeError, ValueError):
            raise YoloTargetError(f"each target must be a (boxes, classes) pair, received {type(target).__name__} "
                                  f"for image {n}") from None
        b = _check_boxes(boxes, f"boxes of image {n}")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(b):
            raise YoloTargetError(f"image {n} has {len(b)} boxes but {len(labels)} classes")
        if labels.size and (labels.dtype.kind not in "iu" and not np.all(labels == np.round(labels))):
            raise YoloTargetError(f"classes must be integers, received {labels.tolist()} for image {n}")
        labels = labels.astype(np.int64)
        if labels.size and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
            raise YoloTargetError(f"classes must be in [0, {num_classes}), received {labels.tolist()} for image {n}")
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        keep = (w > 0) & (h > 0)
        b, labels, w, h = b[keep], labels[keep], w[keep], h[keep]
        all_boxes.append(b)
        if not len(b):
            continue
        rows, cols, oy, ox = grid_cells(b, (S_h, S_w))
        best = _best_anchor(b, anchors, (S_h, S_w))
        # fancy-index assignment keeps the LAST write for repeated slots: darknet's rule
        slot = (n, rows, cols, best)
        responsible[slot] = True
        offsets[slot] = np.stack([ox, oy], axis=1)
        log_wh[slot] = np.stack([np.log(w * S_w / anchors[best, 0]), np.log(h * S_h / anchors[best, 1])], axis=1)
        classes[slot] = labels
        weight[slot] = 2.0 - w * h
    return YoloTargets(responsible, offsets, log_wh, classes, weight, all_boxes)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) = relu(x) + log(1 + exp(-|x|)), finite for any x."""
    return F.relu(x) + ((-x.abs()).exp() + 1.0).log()


def ignore_mask(raw, targets: YoloTargets, anchors, num_classes: int, ignore_thresh: float) -> np.ndarray:
    """Slots whose decoded box has IoU > ``ignore_thresh`` with a ground truth of its image
    (bool ``(N, S_h, S_w, A)``; computed without gradient)."""
    boxes, _, _ = decode(raw, anchors, num_classes)
    N = boxes.shape[0]
    mask = np.zeros(boxes.shape[:-1], bool)
    for n in range(N):
        gt = targets.boxes[n]
        if len(gt):
            best = iou(boxes[n].reshape(-1, 4).astype(np.float64), gt).max(axis=1)
            mask[n] = (best > ignore_thresh).reshape(mask.shape[1:])
    return mask


def yolo_loss(raw, targets: YoloTargets, anchors, num_classes: int, lambda_coord: float = 1.0,
              lambda_obj: float = 5.0, lambda_noobj: float = 1.0, lambda_cls: float = 1.0,
              ignore_thresh: float = 0.6) -> tuple:
    """The YOLOv2 loss of a raw head ``(N, S_h, S_w, A*(5+C))`` (a Tensor; differentiable).

    ``targets`` from :func:`assign_targets` on the same grid.  Returns ``(loss, parts)``:
    the scalar Tensor of the module docstring and a dict of floats ``coord``, ``obj``,
    ``noobj``, ``cls`` (each term's sum divided by N, *before* its lambda) and
    ``loss`` (the weighted total).  Objectness uses binary cross-entropy on the logit.
    ``ignore_thresh`` in [0, 1]; ``ignore_thresh >= 1`` never ignores.
    """
    raw = as_tensor(raw)
    anchors = check_anchors(anchors)
    if not 0.0 <= ignore_thresh:
        raise YoloTargetError(f"ignore_thresh must be >= 0, received ignore_thresh={ignore_thresh}")
    A = len(anchors)
    if raw.ndim != 4 or raw.shape[-1] != A * (5 + num_classes):
        raise YoloTargetError(f"a YOLO head with {A} anchors and {num_classes} classes must be "
                              f"(N, S_h, S_w, {A * (5 + num_classes)}), received shape {tuple(raw.shape)}")
    p = raw.reshape(raw.shape[:3] + (A, 5 + num_classes))   # (N, S_h, S_w, A, 5+C)
    N = p.shape[0]
    if targets.responsible.shape != p.shape[:4]:
        raise YoloTargetError(f"targets were assigned for slots {targets.responsible.shape}, but the head "
                              f"has {p.shape[:4]} (grid or anchors differ)")
    dtype = raw.dtype
    resp = targets.responsible
    ignored = ignore_mask(raw, targets, anchors, num_classes, ignore_thresh) & ~resp
    noobj_mask = (~resp & ~ignored).astype(dtype)

    obj_logit = p[..., 4]                                   # (N, S_h, S_w, A)
    obj_bce = _softplus(obj_logit) - obj_logit * resp.astype(dtype)   # BCE(x, t) = softplus(x) - x t
    obj = (obj_bce * resp.astype(dtype)).sum()
    noobj = (obj_bce * noobj_mask).sum()

    index = np.nonzero(resp)
    chosen = p[index]                                       # (M, 5+C), M = number of assigned boxes
    w = targets.weight[index].astype(dtype)[:, None]
    d_xy = F.sigmoid(chosen[:, 0:2]) - targets.offsets[index].astype(dtype)
    d_wh = chosen[:, 2:4] - targets.log_wh[index].astype(dtype)
    coord = ((d_xy * d_xy + d_wh * d_wh) * w).sum()
    onehot = np.zeros((len(index[0]), num_classes), dtype)
    onehot[np.arange(len(index[0])), targets.classes[index]] = 1.0
    cls = -(F.log_softmax(chosen[:, 5:], axis=-1) * onehot).sum()

    loss = (coord * lambda_coord + obj * lambda_obj + noobj * lambda_noobj + cls * lambda_cls) * (1.0 / N)
    parts = {"coord": float(coord.item()) / N, "obj": float(obj.item()) / N, "noobj": float(noobj.item()) / N,
             "cls": float(cls.item()) / N, "loss": float(loss.item())}
    return loss, parts
