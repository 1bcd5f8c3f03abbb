"""Detection metrics: COCO mAP exactly as pycocotools computes it, and Pascal VOC AP.

Inputs are COCO-style lists of dicts (boxes ``[x, y, w, h]``, top-left corner, pixels):

* predictions:  ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
* ground truth: ``{"image_id", "category_id", "bbox": [x, y, w, h]}``, optionally
  ``"iscrowd"`` (0/1, default 0) and ``"area"`` (default ``w * h``; COCO's own files give
  the segmentation area here).  :func:`evaluate_voc` also reads ``"difficult"``.

:func:`evaluate` -- **COCO** (``pycocotools.cocoeval.COCOeval``, iouType ``"bbox"``,
reproduced step by step and tested against it to 1e-6):

* IoU thresholds ``.50:.05:.95`` (10 values); a detection matches a ground-truth box when
  IoU >= threshold.  IoU from ``[x, y, w, h]`` without a "+1"; for a crowd box
  (``iscrowd=1``) the union is the detection's own area.
* Per image and category, detections sorted by score (stable), the best
  ``max_detections`` kept (per image *and category*, as COCOeval does), each matched
  greedily to the unmatched ground-truth box of highest IoU (ties: the later box);
  non-ignored boxes first, crowd boxes can absorb any number of detections, and a
  detection matched to an ignored box (crowd, or area outside the range) counts neither
  as true nor as false positive.  Unmatched detections outside the area range are ignored.
* AP of a category = mean over the 101 recall points ``0:.01:1`` of the interpolated
  precision (the precision envelope, sampled at the first detection reaching each
  recall; 0 past the highest recall).  mAP = mean over categories **that have ground
  truth** (COCO stores -1 for the others and leaves them out of the mean; with no
  ground truth at all the result is -1).
* Area ranges ``all`` (0..1e10), ``small`` (< 32**2), ``medium`` (32**2..96**2), ``large``.
* ``map50_95`` = COCO's "AP", ``map50`` = "AP50", ``map75`` = "AP75"; ``mar1``, ``mar10``,
  ``mar100`` = "AR@1/10/100" (mean recall over the thresholds, at most that many
  detections); ``stats`` = ``COCOeval.stats`` (12 numbers, same order; one deliberate
  difference: with ``max_detections`` other than 100, COCOeval's ``stats[0]`` is -1
  because its summary asks for maxDets=100 literally; here it is AP@[.5:.95] at
  ``max_detections``, like the other numbers).

:func:`evaluate_voc` / :func:`voc_ap` -- **Pascal VOC** (the ``voc_eval.py`` of the VOC
devkit's Python port, as in py-faster-rcnn): one IoU threshold, a detection is a true
positive when its best-IoU ground-truth box (first on ties) has IoU **>** the threshold, is
not "difficult" and is not yet detected; otherwise a false positive (detections matched to
difficult boxes count as neither).  AP is all-point (VOC2010+, area under the precision
envelope) or 11-point (VOC2007: mean of the envelope at recall 0, .1, ..., 1).  Boxes are
continuous (no "+1 pixel", unlike the original devkit).
"""
from __future__ import annotations

import numbers
from collections import defaultdict

import numpy as np

from strided.errors import StridedError

__all__ = ["evaluate", "evaluate_voc", "voc_ap", "format_summary", "COCO_IOU_THRESHOLDS",
           "COCO_RECALL_THRESHOLDS", "COCO_AREA_RANGES", "MetricsInputError"]

# the exact floating values COCOeval uses (np.linspace, so 0.75 compares equal as in its summary)
COCO_IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
COCO_RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
COCO_AREA_RANGES = {"all": (0 ** 2, 1e5 ** 2), "small": (0 ** 2, 32 ** 2),
                    "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, 1e5 ** 2)}


class MetricsInputError(StridedError, ValueError):
    """A prediction or ground-truth entry that is not a valid COCO-style dict."""


# --------------------------------------------------------------------------- input
def _records(items, what: str, need_score: bool):
    """Arrays out of a list of COCO-style dicts: image, category, bbox (n, 4), score, crowd, area."""
    if not isinstance(items, (list, tuple)):
        raise MetricsInputError(f"{what} must be a list of dicts; received {type(items).__name__}")
    n = len(items)
    image = np.empty(n, dtype=object)
    category = np.zeros(n, dtype=np.int64)
    bbox = np.zeros((n, 4), dtype=np.float64)
    score = np.zeros(n, dtype=np.float64)
    crowd = np.zeros(n, dtype=bool)
    area = np.zeros(n, dtype=np.float64)
    difficult = np.zeros(n, dtype=bool)
    keys = ("image_id", "category_id", "bbox") + (("score",) if need_score else ())
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MetricsInputError(f"{what}[{i}] must be a dict; received {type(item).__name__}")
        missing = [k for k in keys if k not in item]
        if missing:
            raise MetricsInputError(f"{what}[{i}] lacks {missing}; received keys {sorted(item)}")
        box = item["bbox"]
        if np.shape(box) != (4,):
            raise MetricsInputError(f"{what}[{i}]['bbox'] must be [x, y, w, h]; received {box!r}")
        box = np.asarray(box, dtype=np.float64)
        if not np.isfinite(box).all() or box[2] < 0 or box[3] < 0:
            raise MetricsInputError(f"{what}[{i}]['bbox'] must be finite with w, h >= 0; received {box.tolist()}")
        cat = item["category_id"]
        if isinstance(cat, bool) or not isinstance(cat, numbers.Integral):
            raise MetricsInputError(f"{what}[{i}]['category_id'] must be an integer; received {cat!r}")
        image[i], category[i], bbox[i] = item["image_id"], int(cat), box
        if need_score:
            s = item["score"]
            if isinstance(s, bool) or not isinstance(s, numbers.Real) or not np.isfinite(s):
                raise MetricsInputError(f"{what}[{i}]['score'] must be a finite number; received {s!r}")
            score[i] = float(s)
            area[i] = box[2] * box[3]                      # loadRes: area = w * h, never crowd
        else:
            crowd[i] = bool(item.get("iscrowd", 0))
            area[i] = float(item["area"]) if item.get("area") is not None else box[2] * box[3]
            difficult[i] = bool(item.get("difficult", 0)) or crowd[i]
    return {"image": image, "category": category, "bbox": bbox, "score": score, "crowd": crowd,
            "area": area, "difficult": difficult}


def _group(records, images, categories):
    """{(image, category): indices in input order} restricted to the given ids."""
    wanted_images, wanted_categories = set(images), set(categories)
    groups = defaultdict(list)
    for i, (img, cat) in enumerate(zip(records["image"], records["category"].tolist())):
        if img in wanted_images and cat in wanted_categories:
            groups[img, cat].append(i)
    return groups


def coco_box_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``maskUtils.iou`` for boxes: ``dt (D, 4)``, ``gt (G, 4)`` as ``[x, y, w, h]``
    -> ``(D, G)``; where ``crowd[g]`` the union is the detection's area."""
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    d, g = dt[:, None, :], gt[None, :, :]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    da, ga = d[..., 2] * d[..., 3], g[..., 2] * g[..., 3]
    union = np.where(crowd[None, :], da, da + ga - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


# --------------------------------------------------------------------------- COCO
def _match(ious, gt_ignore, crowd, thresholds):
    """COCOeval.evaluateImg's greedy matching for all thresholds at once.

    ``ious (D, G)`` with detections by score and ground truth non-ignored first.  Returns
    ``dt_matched (T, D)``, ``dt_ignored_by_match (T, D)`` (matched to an ignored box).
    """
    D, G = ious.shape
    T = len(thresholds)
    dt_matched = np.zeros((T, D), dtype=bool)
    dt_ignore = np.zeros((T, D), dtype=bool)
    if D == 0 or G == 0:
        return dt_matched, dt_ignore
    gt_taken = np.zeros((T, G), dtype=bool)
    thr = np.minimum(thresholds, 1 - 1e-10)[:, None]
    reverse = np.arange(G - 1, -1, -1)
    rows = np.arange(T)
    for d in range(D):
        row = ious[d][None, :]
        valid = (~gt_taken | crowd[None, :]) & (row >= thr)            # (T, G)
        choice = np.full(T, -1)
        for group in (~gt_ignore, gt_ignore):                        # regular boxes first
            ok = valid & group[None, :]
            found = ok.any(axis=1) & (choice < 0)
            if found.any():
                masked = np.where(ok, row, -np.inf)[:, reverse]
                last_best = G - 1 - np.argmax(masked, axis=1)        # ties: the later box
                choice = np.where(found, last_best, choice)
        hit = choice >= 0
        dt_matched[hit, d] = True
        dt_ignore[hit, d] = gt_ignore[choice[hit]]
        gt_taken[rows[hit], choice[hit]] = True
    return dt_matched, dt_ignore


def _max_detections(max_detections):
    if isinstance(max_detections, numbers.Integral) and not isinstance(max_detections, bool):
        dets = (1, 10, int(max_detections))
    else:
        dets = tuple(max_detections)
    if len(dets) != 3 or any(isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1 for m in dets):
        raise ValueError(f"max_detections must be an integer >= 1 or three of them (COCO's maxDets); "
                         f"received max_detections={max_detections!r}")
    return tuple(int(m) for m in dets)


def evaluate(predictions, ground_truth, iou_thresholds=None, max_detections=100, image_ids=None,
             category_ids=None, areas: bool = True) -> dict:
    """COCO bbox evaluation, equal to ``pycocotools.cocoeval.COCOeval`` (see the module doc).

    ``predictions``, ``ground_truth``: COCO-style lists (module doc).  ``iou_thresholds``:
    default COCO's ten ``.50:.05:.95``.  ``max_detections``: per image and category, COCO's
    ``maxDets[2]`` (``maxDets = (1, 10, max_detections)``, or give all three).
    ``image_ids`` / ``category_ids``: what COCOeval takes from the ground-truth file's
    ``images`` and ``categories``; default: every id seen in either list (a category with
    predictions but no ground truth gets AP -1, left out of the means; an image with
    predictions but no ground truth contributes false positives).  ``areas=False`` skips
    the small/medium/large ranges (their numbers are then -1).

    Returns a dict: ``map50_95``, ``map50``, ``map75``, ``map_small``, ``map_medium``,
    ``map_large``, ``mar1``, ``mar10``, ``mar100`` (named after ``max_detections``),
    ``mar_small``, ``mar_medium``, ``mar_large``, ``stats`` (COCOeval.stats, 12 floats),
    ``per_class`` ``{category_id: {"ap50_95", "ap50", "ap75", "num_gt", "num_predictions"}}``
    (-1 where a category has no ground truth), ``category_ids``, ``iou_thresholds``,
    ``recall_thresholds``, ``max_detections``, ``area_ranges`` (names), and the arrays of
    COCOeval.eval: ``precision`` ``(T, 101, K, A, M)`` (interpolated precision at each recall
    point: the precision/recall curves), ``recall`` ``(T, K, A, M)``, ``scores``.
    """
    dt = _records(predictions, "predictions", need_score=True)
    gt = _records(ground_truth, "ground_truth", need_score=False)
    thresholds = COCO_IOU_THRESHOLDS if iou_thresholds is None else np.asarray(iou_thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0 or ((thresholds < 0) | (thresholds > 1)).any():
        raise ValueError(f"iou_thresholds must be numbers in [0, 1]; received iou_thresholds={iou_thresholds!r}")
    max_dets = _max_detections(max_detections)
    if image_ids is None:
        image_ids = sorted(set(gt["image"].tolist()) | set(dt["image"].tolist()), key=_sort_key)
    if category_ids is None:
        category_ids = sorted(set(gt["category"].tolist()) | set(dt["category"].tolist()))
    image_ids, category_ids = list(image_ids), [int(c) for c in category_ids]
    area_names = list(COCO_AREA_RANGES) if areas else ["all"]
    area_ranges = [COCO_AREA_RANGES[a] for a in area_names]
    recall_thresholds = COCO_RECALL_THRESHOLDS

    gt_groups = _group(gt, image_ids, category_ids)
    dt_groups = _group(dt, image_ids, category_ids)
    T, R, K, A, M = len(thresholds), len(recall_thresholds), len(category_ids), len(area_ranges), len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores_at = -np.ones((T, R, K, A, M))

    for k, cat in enumerate(category_ids):
        per_area = [[] for _ in area_ranges]
        for img in image_ids:
            g_idx, d_idx = gt_groups.get((img, cat), []), dt_groups.get((img, cat), [])
            if not g_idx and not d_idx:
                continue                                              # COCOeval: None
            d_idx = np.asarray(d_idx, dtype=np.int64)
            d_idx = d_idx[np.argsort(-dt["score"][d_idx], kind="mergesort")][:max_dets[-1]]
            g_idx = np.asarray(g_idx, dtype=np.int64)
            crowd = gt["crowd"][g_idx]
            ious = coco_box_iou(dt["bbox"][d_idx], gt["bbox"][g_idx], crowd)
            d_score, d_area, g_area = dt["score"][d_idx], dt["area"][d_idx], gt["area"][g_idx]
            for a, (lo, hi) in enumerate(area_ranges):
                ignore = crowd | (g_area < lo) | (g_area > hi)
                order = np.argsort(ignore, kind="mergesort")          # ignored boxes last
                matched, matched_ignored = _match(ious[:, order], ignore[order], crowd[order], thresholds)
                outside = (d_area < lo) | (d_area > hi)
                d_ignore = matched_ignored | (~matched & outside[None, :])
                per_area[a].append((d_score, matched, d_ignore, ignore))
        for a in range(A):
            evals = per_area[a]
            if not evals:
                continue
            npig = sum(int(np.count_nonzero(~e[3])) for e in evals)
            if npig == 0:
                continue
            for m, max_det in enumerate(max_dets):
                d_scores = np.concatenate([e[0][:max_det] for e in evals])
                inds = np.argsort(-d_scores, kind="mergesort")
                sorted_scores = d_scores[inds]
                matched = np.concatenate([e[1][:, :max_det] for e in evals], axis=1)[:, inds]
                ignored = np.concatenate([e[2][:, :max_det] for e in evals], axis=1)[:, inds]
                tps = matched & ~ignored
                fps = ~matched & ~ignored
                tp_sum = np.cumsum(tps, axis=1).astype(float)
                fp_sum = np.cumsum(fps, axis=1).astype(float)
                nd = tp_sum.shape[1]
                rc = tp_sum / npig                                       # (T, nd)
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1] if nd else 0
                if nd == 0:
                    precision[:, :, k, a, m] = 0
                    scores_at[:, :, k, a, m] = 0
                    continue
                envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(T):
                    pi = np.searchsorted(rc[t], recall_thresholds, side="left")
                    inside = pi < nd
                    q = np.zeros(R)
                    ss = np.zeros(R)
                    # COCOeval fills points in order and stops at the first index past the end
                    q[inside] = envelope[t, pi[inside]]
                    ss[inside] = sorted_scores[pi[inside]]
                    precision[t, :, k, a, m] = q
                    scores_at[t, :, k, a, m] = ss

    return _summarize(precision, recall, scores_at, thresholds, recall_thresholds, category_ids, area_names,
                      max_dets, gt, dt)


def _sort_key(value):
    return (0, value, "") if isinstance(value, numbers.Real) else (1, 0, str(value))


def _mean_valid(s):
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0


def _summarize(precision, recall, scores_at, thresholds, recall_thresholds, category_ids, area_names,
               max_dets, gt, dt) -> dict:
    """COCOeval.summarize's twelve numbers, plus per-class APs."""
    def pick(ap, iou=None, area="all", max_det=max_dets[2]):
        if area not in area_names or max_det not in max_dets:
            return -1.0
        a, m = area_names.index(area), max_dets.index(max_det)
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == thresholds)[0]]
        return _mean_valid(s[..., a, m])

    stats = [pick(1), pick(1, iou=.5), pick(1, iou=.75), pick(1, area="small"), pick(1, area="medium"),
             pick(1, area="large"), pick(0, max_det=max_dets[0]), pick(0, max_det=max_dets[1]), pick(0),
             pick(0, area="small"), pick(0, area="medium"), pick(0, area="large")]
    t50, t75 = np.where(thresholds == .5)[0], np.where(thresholds == .75)[0]
    per_class = {}
    for k, cat in enumerate(category_ids):
        p = precision[:, :, k, 0, -1]
        per_class[cat] = {
            "ap50_95": _mean_valid(p),
            "ap50": _mean_valid(p[t50]),
            "ap75": _mean_valid(p[t75]),
            "num_gt": int(np.count_nonzero((gt["category"] == cat) & ~gt["crowd"])),
            "num_predictions": int(np.count_nonzero(dt["category"] == cat)),
        }
    keys = ["map50_95", "map50", "map75", "map_small", "map_medium", "map_large",
            f"mar{max_dets[0]}", f"mar{max_dets[1]}", f"mar{max_dets[2]}", "mar_small", "mar_medium", "mar_large"]
    result = dict(zip(keys, stats))
    result.update(stats=stats, per_class=per_class, category_ids=list(category_ids),
                  iou_thresholds=np.asarray(thresholds), recall_thresholds=np.asarray(recall_thresholds),
                  max_detections=tuple(max_dets), area_ranges=list(area_names),
                  precision=precision, recall=recall, scores=scores_at)
    return result


def format_summary(result: dict, class_names=None) -> str:
    """COCOeval.summarize's twelve lines, then one line per class (AP50-95, AP50)."""
    lines = []
    labels = [("Average Precision", "0.50:0.95", "all", 2), ("Average Precision", "0.50", "all", 2),
              ("Average Precision", "0.75", "all", 2), ("Average Precision", "0.50:0.95", "small", 2),
              ("Average Precision", "0.50:0.95", "medium", 2), ("Average Precision", "0.50:0.95", "large", 2),
              ("Average Recall", "0.50:0.95", "all", 0), ("Average Recall", "0.50:0.95", "all", 1),
              ("Average Recall", "0.50:0.95", "all", 2), ("Average Recall", "0.50:0.95", "small", 2),
              ("Average Recall", "0.50:0.95", "medium", 2), ("Average Recall", "0.50:0.95", "large", 2)]
    for (title, iou, area, m), value in zip(labels, result["stats"]):
        short = "(AP)" if title.startswith("Average P") else "(AR)"
        lines.append(f" {title:<18} {short} @[ IoU={iou:<9} | area={area:>6} | "
                     f"maxDets={result['max_detections'][m]:>3} ] = {value:0.3f}")
    for k, (cat, ap) in enumerate(result["per_class"].items()):
        name = class_names[k] if class_names is not None else str(cat)
        if ap["ap50_95"] < 0:
            lines.append(f" {name:<20} no ground truth ({ap['num_predictions']} predictions)")
        else:
            lines.append(f" {name:<20} AP50-95 {ap['ap50_95']:.3f}  AP50 {ap['ap50']:.3f}  ({ap['num_gt']} boxes)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- Pascal VOC
def voc_ap(recall, precision, use_11_point: bool = False) -> float:
    """Pascal VOC average precision from a precision/recall curve (detections by score).

    ``use_11_point=False`` (VOC2010 and later, "all-point"): the area under the
    precision envelope ``p_interp(r) = max(precision[recall >= r])``, summed over the
    recall values where the curve changes::

        AP = sum_i (r_i - r_{i-1}) * p_interp(r_i)

    ``use_11_point=True`` (VOC2007): ``AP = mean over r in {0, .1, ..., 1} of
    p_interp(r)`` (0 where no point reaches recall r; the 11 recall values are exactly
    k/10, so a recall of 3/10 counts at 0.3).
    """
    rec = np.asarray(recall, dtype=np.float64).ravel()
    prec = np.asarray(precision, dtype=np.float64).ravel()
    if rec.shape != prec.shape:
        raise ValueError(f"recall and precision must have the same length; received {rec.shape} and {prec.shape}")
    if use_11_point:
        ap = 0.0
        for t in np.arange(11) / 10:
            reached = rec >= t
            ap += (np.max(prec[reached]) if reached.any() else 0.0) / 11
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def evaluate_voc(predictions, ground_truth, iou_threshold: float = 0.5, use_11_point: bool = False,
                 category_ids=None) -> dict:
    """Pascal VOC detection AP per class and their mean (see the module doc for the rules).

    Same inputs as :func:`evaluate`; ground-truth boxes with ``"difficult": 1`` (or
    ``"iscrowd": 1``) are not counted and detections on them are neither true nor false
    positives.  A true positive needs IoU **> iou_threshold**.

    Returns ``{"map", "per_class": {category_id: ap}, "precision": {id: array},
    "recall": {id: array}, "use_11_point", "iou_threshold"}``; a class without
    (non-difficult) ground truth gets AP -1 and is left out of ``map`` (-1 when no class
    has any).
    """
    from strided.detect.boxes import iou, xywh_to_xyxy

    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real) \
            or not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be a number in [0, 1]; received iou_threshold={iou_threshold!r}")
    dt = _records(predictions, "predictions", need_score=True)
    gt = _records(ground_truth, "ground_truth", need_score=False)
    if category_ids is None:
        category_ids = sorted(set(gt["category"].tolist()) | set(dt["category"].tolist()))
    gt_xyxy, dt_xyxy = xywh_to_xyxy(gt["bbox"]), xywh_to_xyxy(dt["bbox"])
    per_class, precisions, recalls = {}, {}, {}
    for cat in (int(c) for c in category_ids):
        g_sel = np.flatnonzero(gt["category"] == cat)
        by_image = defaultdict(list)
        for i in g_sel.tolist():
            by_image[gt["image"][i]].append(i)
        by_image = {img: np.asarray(ids) for img, ids in by_image.items()}
        detected = {img: np.zeros(len(ids), dtype=bool) for img, ids in by_image.items()}
        npos = int(np.count_nonzero(~gt["difficult"][g_sel]))
        d_sel = np.flatnonzero(dt["category"] == cat)
        d_sel = d_sel[np.argsort(-dt["score"][d_sel], kind="stable")]
        tp = np.zeros(len(d_sel))
        fp = np.zeros(len(d_sel))
        for n, d in enumerate(d_sel.tolist()):
            ids = by_image.get(dt["image"][d])
            if ids is None:
                fp[n] = 1
                continue
            overlaps = iou(dt_xyxy[d:d + 1], gt_xyxy[ids])[0]
            j = int(np.argmax(overlaps))
            if overlaps[j] > iou_threshold:
                if not gt["difficult"][ids[j]]:
                    if not detected[dt["image"][d]][j]:
                        tp[n] = 1
                        detected[dt["image"][d]][j] = True
                    else:
                        fp[n] = 1
            else:
                fp[n] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        if npos == 0:
            per_class[cat] = -1.0
            recalls[cat], precisions[cat] = np.zeros(len(tp)), np.zeros(len(tp))
            continue
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        per_class[cat] = voc_ap(rec, prec, use_11_point)
        recalls[cat], precisions[cat] = rec, prec
    valid = [ap for ap in per_class.values() if ap > -1]
    return {"map": float(np.mean(valid)) if valid else -1.0, "per_class": per_class,
            "precision": precisions, "recall": recalls, "use_11_point": bool(use_11_point),
            "iou_threshold": float(iou_threshold)}
