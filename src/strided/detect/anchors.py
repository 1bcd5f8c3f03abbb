"""Anchor boxes from the training boxes: k-means with the ``1 - IoU`` distance (YOLOv2).

Boxes are compared by *shape* only: both are centred on the same point, so the IoU of
two shapes ``(w1, h1)`` and ``(w2, h2)`` is::

    inter = min(w1, w2) * min(h1, h2)
    shape_iou = inter / (w1 * h1 + w2 * h2 - inter)

Euclidean k-means on ``(w, h)`` would let big boxes dominate the error; ``1 - IoU`` is
scale-free, which is why YOLOv2 uses it (Redmon & Farhadi 2016, section "Dimension
Clusters").

>>> anchors, mean_iou = kmeans_anchors(train_wh, k=5)      # anchors (5, 2), smallest first

Units are whatever ``wh`` is given in; for a YOLO head give the widths and heights in
grid cells (``w * S_w``, ``h * S_h`` of boxes normalised to [0, 1]).
"""
from __future__ import annotations

import numpy as np

from ..errors import StridedError

__all__ = ["AnchorError", "shape_iou", "kmeans_anchors", "check_anchors"]


class AnchorError(StridedError, ValueError):
    """Anchors or box shapes of the wrong shape or with invalid sizes (also a ValueError)."""


def _check_wh(wh, name: str) -> np.ndarray:
    wh = np.asarray(wh, dtype=np.float64)
    if wh.ndim != 2 or wh.shape[1] != 2:
        raise AnchorError(f"{name} must be an array of (width, height) rows, shape (N, 2); "
                         f"received shape {wh.shape}")
    if wh.size and (not np.all(np.isfinite(wh)) or np.any(wh < 0)):
        raise AnchorError(f"{name} must hold finite widths and heights >= 0, received min={wh.min()}")
    return wh


def shape_iou(wh_a, wh_b) -> np.ndarray:
    """IoU of box shapes placed on a common centre: ``(N, 2)`` x ``(M, 2)`` -> ``(N, M)``.

    ``inter = min(w_a, w_b) * min(h_a, h_b)``, ``iou = inter / (area_a + area_b - inter)``.
    Two zero-area shapes give 0 (never NaN).
    """
    a = _check_wh(wh_a, "wh_a")
    b = _check_wh(wh_b, "wh_b")
    inter = np.minimum(a[:, None, 0], b[None, :, 0]) * np.minimum(a[:, None, 1], b[None, :, 1])
    union = (a[:, 0] * a[:, 1])[:, None] + (b[:, 0] * b[:, 1])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def kmeans_anchors(wh, k: int, iters: int = 300, seed: int = 0):
    """Cluster box shapes ``wh`` ``(N, 2)`` into ``k`` anchors with the ``1 - IoU`` distance.

    Lloyd's algorithm:

    1. start from ``k`` distinct shapes of ``wh`` chosen by k-means++ seeding with
       ``rng = np.random.default_rng(seed)`` over the unique rows ``U`` (sorted): the first
       is ``U[rng.integers(len(U))]``, each next one is ``U[rng.choice(len(U), p=d**2 / sum(d**2))]``
       where ``d = 1 - (best shape IoU with the anchors chosen so far)``;
    2. assign each box to the anchor of highest :func:`shape_iou` (smallest ``1 - IoU``;
       ties go to the lower index);
    3. move each anchor to the mean ``(w, h)`` of its boxes; an anchor left without boxes
       jumps to the box worst served by the current anchors (lowest best IoU);
    4. repeat 2-3 until no assignment changes, or ``iters`` times.

    Returns ``(anchors, mean_iou)``: anchors ``(k, 2)`` sorted by area (smallest first), and
    the mean over the boxes of their best IoU with an anchor (the number the YOLOv2 paper
    reports, 0.61 for k=5 on VOC).  Raises :class:`AnchorError` (a ValueError) when ``k`` is not in
    ``[1, number of distinct shapes]``.
    """
    wh = _check_wh(wh, "wh")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise AnchorError(f"k must be a positive int, received k={k!r}")
    if not isinstance(iters, (int, np.integer)) or iters < 1:
        raise AnchorError(f"iters must be a positive int, received iters={iters!r}")
    keep = np.all(wh > 0, axis=1)
    wh = wh[keep]
    unique = np.unique(wh, axis=0)
    if k > len(unique):
        raise AnchorError(f"k={k} anchors need at least {k} distinct box shapes with w, h > 0, "
                         f"received {len(unique)}")
    rng = np.random.default_rng(seed)
    anchors = [unique[rng.integers(len(unique))]]
    for _ in range(1, k):
        d = 1.0 - shape_iou(unique, np.array(anchors)).max(axis=1)
        anchors.append(unique[rng.choice(len(unique), p=d ** 2 / np.sum(d ** 2))])
    anchors = np.array(anchors)
    assignment = None
    for _ in range(int(iters)):
        iou = shape_iou(wh, anchors)                          # (N, k)
        new = np.argmax(iou, axis=1)
        if assignment is not None and np.array_equal(new, assignment):
            break
        assignment = new
        counts = np.bincount(assignment, minlength=k)
        sums = np.zeros((k, 2))
        np.add.at(sums, assignment, wh)
        filled = counts > 0
        anchors[filled] = sums[filled] / counts[filled, None]
        for j in np.flatnonzero(~filled):                     # empty cluster: take the worst-served box
            best = shape_iou(wh, anchors).max(axis=1)
            anchors[j] = wh[np.argmin(best)]
    mean_iou = float(shape_iou(wh, anchors).max(axis=1).mean())
    order = np.argsort(anchors[:, 0] * anchors[:, 1], kind="stable")
    return anchors[order], mean_iou


def check_anchors(anchors) -> np.ndarray:
    """``anchors`` as a float64 ``(A, 2)`` array of positive (width, height); else AnchorError."""
    a = np.asarray(anchors, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0:
        raise AnchorError(f"anchors must be (A, 2) rows of (width, height) with A >= 1, received shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise AnchorError(f"anchors must have finite widths and heights > 0, received {a.tolist()}")
    return a
