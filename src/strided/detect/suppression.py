"""Non-maximum suppression (greedy, exact, vectorised).

Definition (the same as ``torchvision.ops.nms`` and ``tf.image.non_max_suppression``)::

    order = boxes sorted by score, highest first (equal scores keep their input order)
    kept  = []
    for box in order:
        if IoU(box, k) <= iou_threshold for every k in kept:   # suppressed when IoU > threshold
            kept.append(box)

So a box is suppressed only when its IoU with an already *kept*, higher-ranked box is
**strictly greater** than ``iou_threshold``; ``iou_threshold=1`` keeps every box and
``iou_threshold=0`` suppresses any positive overlap.  IoU is :func:`strided.detect.boxes.iou`
(continuous coordinates; degenerate boxes overlap nothing, so they are never suppressed
and never suppress).

How it is computed (the result is exactly the loop above):

1. *Candidate pairs.*  IoU > t >= 0 needs the two boxes to overlap along x (and y) by more
   than ``t`` times the width (height) of either box, and their centres to be closer than
   ``(1 - t) * max size`` along each axis.  So boxes are binned into strips that wide
   along one axis (only boxes in the same or neighbouring strips can interact) and, in
   each strip pair, sorted along the other axis, where a binary search finds for each box
   the later boxes whose left edge starts before ``x2 - t * w``.  Both orientations are
   counted and the one with fewer candidates is used.
2. *Their IoU*, in float64 and blocks of pairs, keeps the pairs with IoU > t: a graph
   "higher-ranked box -> lower-ranked box it would suppress".
3. *The greedy scan* walks the boxes in rank order over that graph (a short Python loop
   over boxes that have edges; each kept box marks its neighbours suppressed in one
   NumPy assignment).

When there are many candidate pairs per box (heavy overlap), the classic loop is often
cheaper, because most boxes are suppressed early: take the best remaining box, compute
its IoU row with the remaining boxes, drop those above the threshold, repeat.  It runs
for about the time the pairs would take; if boxes are still undecided then, greedy NMS
on them (by pairs, or by the loop when they still have too many candidates) continues
the result exactly.  With a small ``max_boxes`` (at most ``LOOP_MAX_BOXES``) the loop
alone runs.  Every path gives the same indices (tested against a plain Python loop).

:func:`batched_nms` runs NMS independently per class in the same pass: pairs of boxes of
different classes are never candidates (the sort is by class, then coordinate), so no
coordinate offset is added to the boxes and no precision is lost.
"""
from __future__ import annotations

import numbers

import numpy as np

from strided.detect.boxes import BoxShapeError, as_boxes
from strided.errors import StridedError

__all__ = ["nms", "batched_nms"]

# beyond this many candidate pairs the per-kept-box loop is used (memory and time bound)
PAIR_BUDGET = 2_000_000
# up to this many candidate pairs per box, the pair scan is used without trying the loop
PAIRS_PER_BOX_CHEAP = 64
# cost model, in units of "one box compared in the loop": a candidate pair, a loop step
PAIR_COST = 3
LOOP_STEP_COST = 700
_PAIR_BLOCK = 1 << 18
# with max_boxes at most this, the per-kept-box loop runs (at most max_boxes IoU rows)
LOOP_MAX_BOXES = 32
# relative slack on the pruning bound, so that rounding can never drop a pair whose IoU
# (computed in float64) is above the threshold
_SLACK = 1e-9


def _check_inputs(boxes, scores, iou_threshold, max_boxes, classes=None):
    boxes = as_boxes(boxes, "boxes", ndim=2)
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise BoxShapeError(f"scores must have shape ({boxes.shape[0]},) to match boxes {boxes.shape}; "
                            f"received shape {scores.shape}")
    if not (np.issubdtype(scores.dtype, np.number) or scores.dtype == bool):
        raise StridedError(f"scores must be numbers; received dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN (at index {int(np.flatnonzero(np.isnan(scores))[0])})")
    if not np.isfinite(boxes).all():
        bad = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise ValueError(f"boxes must be finite; received boxes[{bad}] = {boxes[bad].tolist()}")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real) \
            or not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be a number in [0, 1]; received iou_threshold={iou_threshold!r}")
    if max_boxes is not None and (isinstance(max_boxes, bool) or not isinstance(max_boxes, numbers.Integral)
                                  or max_boxes < 0):
        raise ValueError(f"max_boxes must be None or an integer >= 0; received max_boxes={max_boxes!r}")
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape != scores.shape:
            raise BoxShapeError(f"classes must have shape ({boxes.shape[0]},) to match boxes {boxes.shape}; "
                                f"received shape {classes.shape}")
        if classes.size and not (np.issubdtype(classes.dtype, np.integer) or classes.dtype == bool):
            raise TypeError(f"classes must be integers; received dtype {classes.dtype}")
    return boxes.astype(np.float64), scores, float(iou_threshold), max_boxes, classes


def _candidate_ranges(lo, hi, t, group):
    """Sweep along one axis: sort by (group, lo); for position p the candidates are the
    positions p+1 .. end[p]-1 (same group, left edge before ``hi - t * width``).

    Returns (order, end, count).
    """
    n = lo.shape[0]
    order = np.lexsort((lo, group))                       # by group, then left edge
    lo_s, hi_s, g_s = lo[order], hi[order], group[order]
    width = np.maximum(hi_s - lo_s, 0)
    bound = hi_s - t * width
    bound = bound + _SLACK * (np.abs(hi_s) + width)
    # within a group, lo_q < bound_p  <=>  rank(lo_q) < rank(bound_p) (ranks in the sorted
    # left edges of all boxes), so (group, rank) makes an exact integer key for one search
    lo_sorted = np.sort(lo_s)
    lo_rank = np.searchsorted(lo_sorted, lo_s, side="left")
    bound_rank = np.searchsorted(lo_sorted, bound, side="left")
    _, g_dense = np.unique(g_s, return_inverse=True)
    g_dense = g_dense.astype(np.int64) * (n + 1)
    end = np.searchsorted(g_dense + lo_rank, g_dense + bound_rank, side="left")
    end = np.maximum(end, np.arange(1, n + 1))
    count = int((end - np.arange(1, n + 1)).sum())
    return order, end, count


def _strips(centre, size, t):
    """Strip index of every box along one axis, strips ``(1 - t) * max(size)`` wide.

    IoU > t needs ``|centre_a - centre_b| < (1 - t) * max(size_a, size_b)``, so two boxes
    that can suppress each other lie in the same strip or in neighbouring strips.
    Returns None when strips would not help (everything in one strip).
    """
    width = (1.0 - t) * float(size.max()) * (1 + 1e-6)
    span = float(centre.max() - centre.min())
    if width <= 0 or span <= width:
        return None
    width = max(width, span / 1e6)          # wider strips stay valid; at most a million of them
    return np.floor((centre - centre.min()) / width).astype(np.int64)


def _sweep_pairs(b, group, t, axis):
    """Candidate pairs (rank indices, i < j not guaranteed) for a sweep along ``axis``
    (0: x, 1: y) inside strips along the other axis.  Returns (pairs_fn, count)."""
    n = b.shape[0]
    other = 1 - axis
    lo, hi = b[:, axis], b[:, axis + 2]
    strip = _strips((b[:, other] + b[:, other + 2]) / 2, np.maximum(b[:, other + 2] - b[:, other], 0), t)
    if strip is None:
        box_of = np.arange(n)
        grp = group
        home = None
    else:
        # every box joins the window of its strip k and of k - 1; window k holds strips k, k+1
        box_of = np.concatenate([np.arange(n), np.arange(n)])
        window = np.concatenate([strip, strip - 1])
        grp = group[box_of] * (int(strip.max()) + 3) + (window + 1)
        home = (strip, window)
    order, end, count = _candidate_ranges(lo[box_of], hi[box_of], t, grp)

    def pairs():
        m = order.shape[0]
        counts = end - np.arange(1, m + 1)
        p_all = np.repeat(np.arange(m), counts)
        q_all = p_all + 1 + (np.arange(count) - np.repeat(np.cumsum(counts) - counts, counts))
        for s in range(0, count, _PAIR_BLOCK):
            p, q = order[p_all[s:s + _PAIR_BLOCK]], order[q_all[s:s + _PAIR_BLOCK]]
            i, j = box_of[p], box_of[q]
            if home is not None:
                # window k holds strips k and k+1: a pair of two strip-(k+1) boxes belongs
                # to window k+1, so it is skipped here (each pair is seen once)
                strip_, window = home
                k = window[p]
                once = (strip_[i] == k) | (strip_[j] == k)
                i, j = i[once], j[once]
            yield i, j
    return pairs, count


def _candidates(b, group, t):
    """The cheaper of the two sweeps: (pairs generator, number of candidate pairs)."""
    return min((_sweep_pairs(b, group, t, axis) for axis in (0, 1)), key=lambda s: s[1])


def _edges(b, pairs, t):
    """Pairs (i, j), i < j in rank order, of the same group with IoU(b[i], b[j]) > t."""
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    src_parts, dst_parts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for i, j in pairs():
        # the formula of strided.detect.boxes.iou, on gathered columns
        iw = np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j])
        ih = np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j])
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        union = area[i] + area[j] - inter
        hit = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0) > t
        i, j = i[hit], j[hit]
        src_parts.append(np.minimum(i, j))
        dst_parts.append(np.maximum(i, j))
    return np.concatenate(src_parts), np.concatenate(dst_parts)


def _scan(n, src, dst):
    """Greedy pass over the suppression graph in rank order; returns the kept mask."""
    suppressed = np.zeros(n, dtype=bool)
    if src.size == 0:
        return ~suppressed
    by_src = np.argsort(src, kind="stable")
    src, dst = src[by_src], dst[by_src]
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
    ends = np.r_[starts[1:], src.size]
    for s, a, e in zip(src[starts].tolist(), starts.tolist(), ends.tolist()):
        if not suppressed[s]:
            suppressed[dst[a:e]] = True
    return ~suppressed


def _loop(b, group, t, max_boxes, budget=None):
    """The classic greedy loop, one IoU row per kept box (ranks in, kept ranks out).

    The coordinates of the boxes still alive are compacted after every kept box, so each
    step costs the number of boxes left.  Same IoU formula as :func:`paired_iou`.  With a
    ``budget`` (in units of one box compared; a step costs ``LOOP_STEP_COST`` more) the
    loop stops once it is spent and also returns the boxes still undecided, in rank
    order: greedy NMS on them continues the result exactly.  Returns (kept, undecided or None).
    """
    alive = np.arange(b.shape[0])
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    g = group.copy()
    kept = []
    limit = b.shape[0] if max_boxes is None else max_boxes
    spent = 0
    while alive.size and len(kept) < limit:
        if budget is not None and spent > budget:
            return np.asarray(kept, dtype=np.int64), alive
        spent += LOOP_STEP_COST + alive.size
        kept.append(alive[0])
        iw = np.minimum(x2[0], x2[1:]) - np.maximum(x1[0], x1[1:])
        ih = np.minimum(y2[0], y2[1:]) - np.maximum(y1[0], y1[1:])
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        union = area[0] + area[1:] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        stay = np.flatnonzero((overlap <= t) | (g[1:] != g[0])) + 1
        alive, x1, y1, x2, y2, area, g = (v[stay] for v in (alive, x1, y1, x2, y2, area, g))
    return np.asarray(kept, dtype=np.int64), None


def _by_pairs(b, g, t, pairs):
    return np.flatnonzero(_scan(b.shape[0], *_edges(b, pairs, t)))


def _nms_core(boxes, scores, group, t, max_boxes):
    """Kept indices; chooses between the candidate-pair scan and the loop (same result)."""
    n = boxes.shape[0]
    if n == 0 or max_boxes == 0:
        return np.zeros(0, dtype=np.int64)
    rank_to_index = np.argsort(-scores, kind="stable")     # ties keep input order
    if t >= 1.0:                                           # IoU > 1 never happens: keep all
        return rank_to_index[:max_boxes].astype(np.int64)
    group = np.unique(group, return_inverse=True)[1].reshape(-1)   # dense labels 0..G-1
    b, g = boxes[rank_to_index], group[rank_to_index]
    if max_boxes is not None and max_boxes <= LOOP_MAX_BOXES:      # a few IoU rows at most
        kept = _loop(b, g, t, max_boxes)[0]
    else:
        pairs, count = _candidates(b, g, t)
        if count <= PAIRS_PER_BOX_CHEAP * n:
            kept = _by_pairs(b, g, t, pairs)
        else:
            # many candidates (heavy overlap): the loop is often cheaper, as most boxes get
            # suppressed early.  Run it for about the time the pairs would take, then finish
            # the boxes still undecided with whichever way is cheaper for them.
            budget = PAIR_COST * count if count <= PAIR_BUDGET else None
            front, rest = _loop(b, g, t, max_boxes, budget)
            kept = front
            if rest is not None:
                pairs, count = _candidates(b[rest], g[rest], t)
                if count <= PAIR_BUDGET:
                    tail = _by_pairs(b[rest], g[rest], t, pairs)
                else:
                    tail = _loop(b[rest], g[rest], t, None if max_boxes is None else max_boxes - len(front))[0]
                kept = np.concatenate([front, rest[tail]])
    if max_boxes is not None:
        kept = kept[:max_boxes]
    return rank_to_index[kept].astype(np.int64)


def nms(boxes, scores, iou_threshold: float, max_boxes: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression.

    ``boxes``: ``(N, 4)`` ``xyxy``; ``scores``: ``(N,)``.  A box is suppressed when its IoU
    with a kept, higher-scoring box is **strictly greater** than ``iou_threshold`` (in
    ``[0, 1]``).  Equal scores keep their input order.  Returns the indices of the kept
    boxes (int64), highest score first, at most ``max_boxes`` of them (``None``: all).

    >>> nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]), np.array([.9, .8, .7]), 0.5)
    array([0, 2])
    """
    boxes, scores, t, max_boxes, _ = _check_inputs(boxes, scores, iou_threshold, max_boxes)
    return _nms_core(boxes, scores, np.zeros(boxes.shape[0], np.int64), t, max_boxes)


def batched_nms(boxes, scores, classes, iou_threshold: float, max_boxes: int | None = None) -> np.ndarray:
    """:func:`nms` run separately for each class: boxes of different classes never
    suppress each other.

    ``classes``: ``(N,)`` integers.  Returns the kept indices (int64) of all classes
    together, highest score first (equal scores in input order), at most ``max_boxes``.
    Exactly the union of ``nms`` on each class (no coordinate offsets are used: pairs of
    different classes are simply never compared).
    """
    boxes, scores, t, max_boxes, classes = _check_inputs(boxes, scores, iou_threshold, max_boxes, classes)
    return _nms_core(boxes, scores, classes.astype(np.int64), t, max_boxes)
