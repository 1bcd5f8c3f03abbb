"""Pictures of a detector's quality, drawn with matplotlib (Agg, files only, written atomically).

* :func:`plot_pr_curves` -- ``pr_curve.png``: precision against recall for every class
  and their mean, from the result of :func:`strided.detect.metrics.evaluate` (COCO's
  interpolated precision at its 101 recall points, IoU 0.5 by default).
* :func:`detection_confusion_matrix` -- counts of (true class, predicted class) over matched
  boxes, with a *background* row (detections that match no object: false positives) and a
  *background* column (objects no detection matched: missed).
* :func:`plot_detection_confusion` -- that matrix as a picture.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from ..report import pyplot, save_figure

__all__ = ["plot_pr_curves", "detection_confusion_matrix", "plot_detection_confusion"]


def _name(class_names, k, category_id) -> str:
    if class_names is None:
        return str(category_id)
    if isinstance(class_names, dict):
        return str(class_names.get(category_id, category_id))
    return str(class_names[k])


def plot_pr_curves(result: dict, path, class_names=None, iou_threshold: float = 0.5) -> Path:
    """Precision/recall curves of every class and their mean -> a PNG at ``path``.

    ``result``: what :func:`strided.detect.metrics.evaluate` returns; the curves are its
    ``precision[t, :, k, area "all", max_detections]`` against the 101 recall points, at
    IoU ``iou_threshold`` (one of ``result["iou_thresholds"]``).  Classes without ground
    truth are left out.  ``class_names``: a list in the order of
    ``result["category_ids"]`` or a dict ``{category_id: name}``.  The legend gives each
    class's AP at that IoU; beyond 20 classes the class curves are drawn thin and grey.
    Returns the path.
    """
    thresholds = np.asarray(result["iou_thresholds"])
    t = np.flatnonzero(np.isclose(thresholds, iou_threshold, rtol=0, atol=1e-12))
    if t.size == 0:
        raise ValueError(f"iou_threshold={iou_threshold} is not one of the evaluated thresholds "
                         f"{[round(float(x), 4) for x in thresholds]}")
    recall = np.asarray(result["recall_thresholds"])
    curves = result["precision"][t[0], :, :, 0, -1]                  # (R, K)
    valid = [k for k in range(curves.shape[1]) if (curves[:, k] > -1).all()]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    many = len(valid) > 20
    for k in valid:
        cat = result["category_ids"][k]
        ap = float(np.mean(curves[:, k]))
        if many:
            ax.plot(recall, curves[:, k], color="0.75", linewidth=0.6)
        else:
            ax.plot(recall, curves[:, k], linewidth=1.2, label=f"{_name(class_names, k, cat)}  {ap:.3f}")
    if valid:
        mean = curves[:, valid].mean(axis=1)
        ax.plot(recall, mean, color="black", linewidth=2.5,
                label=f"all classes  {float(np.mean(mean)):.3f} mAP@{iou_threshold:g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"precision-recall, IoU {iou_threshold:g} (COCO interpolation, 101 points)")
    ax.grid(alpha=0.3)
    if valid:
        ax.legend(loc="lower left", fontsize=8, title="class  AP")
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- confusion matrix
def _class_index(value, num_classes, what, i) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < num_classes:
        raise ValueError(f"{what}[{i}]['category_id'] must be an integer in [0, {num_classes}) "
                         f"(num_classes={num_classes}); received {value!r}")
    return int(value)


def detection_confusion_matrix(predictions, ground_truth, num_classes: int, iou_threshold: float = 0.5,
                               conf: float = 0.25) -> np.ndarray:
    """Confusion matrix of a detector, with background: ``(num_classes + 1, num_classes + 1)`` int64.

    ``predictions`` / ``ground_truth``: COCO-style lists as for
    :func:`strided.detect.metrics.evaluate` (``bbox`` = ``[x, y, w, h]``), with
    ``category_id`` in ``[0, num_classes)``.  Rows are the **true** class, columns the
    **predicted** class; index ``num_classes`` is *background*:

    * only predictions with ``score >= conf`` take part;
    * in each image, boxes are matched one to one, ignoring classes, greedily by IoU
      (highest first; ties in ground-truth then prediction order); a pair needs
      IoU **>=** ``iou_threshold``;
    * a matched pair adds 1 at ``[true class, predicted class]`` (the diagonal: right
      class; elsewhere: found but misclassified);
    * an unmatched object adds 1 at ``[true class, background]`` (missed);
    * an unmatched prediction adds 1 at ``[background, predicted class]`` (false alarm).

    ``[background, background]`` stays 0.
    """
    from strided.detect.boxes import iou, xywh_to_xyxy

    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1; received num_classes={num_classes!r}")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1]; received iou_threshold={iou_threshold!r}")
    background = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    per_image: dict = {}
    for i, g in enumerate(ground_truth):
        per_image.setdefault(g["image_id"], ([], []))[0].append(
            (_class_index(g["category_id"], num_classes, "ground_truth", i), g["bbox"]))
    for i, p in enumerate(predictions):
        cls = _class_index(p["category_id"], num_classes, "predictions", i)
        if p["score"] >= conf:
            per_image.setdefault(p["image_id"], ([], []))[1].append((cls, p["bbox"]))
    for gts, preds in per_image.values():
        g_cls = np.array([c for c, _ in gts], dtype=np.int64)
        p_cls = np.array([c for c, _ in preds], dtype=np.int64)
        g_used = np.zeros(len(gts), dtype=bool)
        p_used = np.zeros(len(preds), dtype=bool)
        if gts and preds:
            overlaps = iou(xywh_to_xyxy(np.array([b for _, b in gts], dtype=np.float64)),
                           xywh_to_xyxy(np.array([b for _, b in preds], dtype=np.float64)))
            order = np.argsort(-overlaps, axis=None, kind="stable")
            for flat in order[overlaps.ravel()[order] >= iou_threshold].tolist():
                gi, pi = divmod(flat, len(preds))
                if g_used[gi] or p_used[pi]:
                    continue
                g_used[gi] = p_used[pi] = True
                matrix[g_cls[gi], p_cls[pi]] += 1
        np.add.at(matrix, (g_cls[~g_used], background), 1)
        np.add.at(matrix, (background, p_cls[~p_used]), 1)
    return matrix


def plot_detection_confusion(matrix: np.ndarray, path, class_names=None, normalize: bool = False) -> Path:
    """Draw :func:`detection_confusion_matrix` (rows true, columns predicted, last = background).

    ``normalize=True`` divides each row by its sum (the share of each true class that
    went to each prediction).  Returns the path of the PNG.
    """
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != k or k < 2:
        raise ValueError(f"matrix must be square (num_classes + 1, num_classes + 1); received shape {matrix.shape}")
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k - 1)]
    if len(names) != k - 1:
        raise ValueError(f"class_names must have {k - 1} names for a {matrix.shape} matrix; received {len(names)}")
    names = names + ["background"]
    shown = matrix.astype(np.float64)
    if normalize:
        sums = shown.sum(axis=1, keepdims=True)
        shown = np.divide(shown, sums, out=np.zeros_like(shown), where=sums > 0)
    plt = pyplot()
    side = max(4.5, 1.2 + 0.55 * k)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = shown.max() / 2 if shown.size else 0
    if k <= 30:
        for i in range(k):
            for j in range(k):
                text = f"{shown[i, j]:.2f}" if normalize else str(int(matrix[i, j]))
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > threshold else "black")
    matched = matrix[:-1, :-1].sum()
    correct = np.trace(matrix[:-1, :-1])
    ax.set_title(f"detection confusion matrix\n{correct} of {matrix[:-1].sum()} objects found with the right "
                 f"class, {matched - correct} misclassified", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
