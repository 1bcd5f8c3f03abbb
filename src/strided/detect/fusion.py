"""Weighted boxes fusion: one answer from the boxes of several views or models.

Test-time augmentation and ensembles give several answers for each object.  NMS keeps the
best-scoring box and throws the others away.  **Weighted boxes fusion** (WBF; Solovyev, Wang
and Gabruseva, "Weighted boxes fusion: ensembling boxes from different object detection
models", 2019) averages them instead, and lowers the score of an object that only some of
the views found.  The rule, per class, with ``T`` sources (views or models) of weights
``w_t`` (default 1)::

    candidates = every source's boxes with score >= skip_threshold (zero-area boxes dropped),
                 best score * weight first
    clusters = []
    for box in candidates:
        fused_j = the fused box of cluster j, as it stands now
        j = the cluster whose fused box overlaps box most
        if IoU(box, fused_j) > iou_threshold:  add box to cluster j
        else:                                  start a new cluster with box

    fused box   = sum(s_i * box_i) / sum(s_i)             (s_i = score_i * weight of its source)
    fused score = mean(s_i) * min(T, n) / sum(w)          (n = boxes in the cluster)

so an object every source found keeps its (mean) score, one that 1 of 3 equal sources found
gets a third of it, and its box is the score-weighted mean of the boxes, not one of them.
A cluster may hold several boxes of one source.

This is ZFTurbo's reference implementation (``ensemble_boxes.weighted_boxes_fusion``, its
default ``conf_type="avg"`` without overflow), checked against it in the tests; that one
clips boxes to [0, 1] (normalised coordinates), this one takes any units (e.g. pixels) and
leaves the boxes as they are.  Equal scores keep their input order here (a stable sort).
"""
from __future__ import annotations

import numpy as np

from .boxes import BoxShapeError, as_boxes, box_area, iou

__all__ = ["weighted_boxes_fusion"]


def weighted_boxes_fusion(boxes, scores, classes, sources, num_sources: int | None = None, weights=None,
                          iou_threshold: float = 0.55, skip_threshold: float = 0.0):
    """Fuse the boxes of ``T`` sources (module docstring).

    ``boxes`` ``(N, 4)`` xyxy (any units), ``scores`` ``(N,)``, ``classes`` ``(N,)`` ints, ``sources``
    ``(N,)`` ints in ``[0, T)``: which view or model gave each box.  ``num_sources``: ``T``
    (default ``max(sources) + 1``; give it when a source may have found nothing).
    ``weights``: ``(T,)`` positive source weights (default all 1).

    Returns ``(boxes (M, 4) float64, scores (M,), classes (M,) int64)``, best score first.
    """
    boxes = as_boxes(boxes, "boxes", ndim=2).astype(np.float64)
    n = boxes.shape[0]
    scores, classes, sources = (np.asarray(a) for a in (scores, classes, sources))
    for name, a in (("scores", scores), ("classes", classes), ("sources", sources)):
        if a.shape != (n,):
            raise BoxShapeError(f"{name} must have shape ({n},) to match boxes {boxes.shape}; received {a.shape}")
    sources = sources.astype(np.int64)
    T = int(sources.max()) + 1 if num_sources is None and n else int(num_sources or 1)
    if n and (sources.min() < 0 or sources.max() >= T):
        raise ValueError(f"sources must be in [0, {T}) (num_sources={T}); received values "
                         f"{int(sources.min())}..{int(sources.max())}")
    w = np.ones(T) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (T,) or not (w > 0).all():
        raise ValueError(f"weights must be {T} positive numbers (one per source); received {weights!r}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1]; received {iou_threshold!r}")

    weighted = scores.astype(np.float64) * w[sources] if n else np.zeros(0)
    keep = (scores >= skip_threshold) & (box_area(boxes) > 0) if n else np.zeros(0, bool)
    out_boxes, out_scores, out_classes = [], [], []
    for k in np.unique(classes[keep]):
        idx = np.flatnonzero(keep & (classes == k))
        idx = idx[np.argsort(-weighted[idx], kind="stable")]
        fused = np.zeros((len(idx), 4))          # the fused box of each cluster (first `count` rows)
        box_sum = np.zeros((len(idx), 4))        # sum of s_i * box_i
        score_sum = np.zeros(len(idx))           # sum of s_i
        members = np.zeros(len(idx), np.int64)
        count = 0
        for i in idx:
            j = -1
            if count:
                overlaps = iou(boxes[i:i + 1], fused[:count])[0]
                best = int(np.argmax(overlaps))
                if overlaps[best] > iou_threshold:
                    j = best
            if j < 0:
                j, count = count, count + 1
            box_sum[j] += weighted[i] * boxes[i]
            score_sum[j] += weighted[i]
            members[j] += 1
            fused[j] = box_sum[j] / score_sum[j]
        out_boxes.append(fused[:count])
        out_scores.append(score_sum[:count] / members[:count] * np.minimum(T, members[:count]) / w.sum())
        out_classes.append(np.full(count, k, np.int64))
    if not out_boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    fused_boxes, fused_scores, fused_classes = (np.concatenate(a) for a in (out_boxes, out_scores, out_classes))
    order = np.argsort(-fused_scores, kind="stable")
    return fused_boxes[order], fused_scores[order], fused_classes[order]
