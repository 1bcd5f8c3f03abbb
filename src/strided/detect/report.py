"""A trained detector's numbers and pictures: mAP on a scenes set, a validation metric for the
Trainer, training curves and a grid of predictions.

>>> result = evaluate_detector(model, test_scenes)            # COCO mAP of a YOLO model on a SceneSet
>>> result["map50"], result["map50_95"], result["per_class"]
>>> Trainer(model, opt, loss_fn=YoloLoss(model.anchors, 10), metrics={"mAP50": ValidationMAP(model.anchors, 10)},
...         monitor=Monitor("val_mAP50", "max"))

Numbers are COCO's (:func:`strided.detect.metrics.evaluate`, equal to pycocotools): AP is the
101-point interpolated precision, averaged over the classes that have ground truth; ``mAP50`` at
IoU 0.5, ``mAP50-95`` averaged over IoU 0.50:0.05:0.95; at most ``max_det`` detections per image.
"""
from __future__ import annotations

import math

import numpy as np

from ..train import Metric
from .training import DetectionMAP, predict_boxes

__all__ = ["ValidationMAP", "evaluate_detector", "coco_predictions", "plot_detection_curves",
           "plot_detections_grid", "EVAL_CONF"]

EVAL_CONF = 0.001        # score threshold of mAP evaluations (as COCO evaluations use): the whole PR curve


class ValidationMAP(Metric):
    """:class:`~strided.detect.training.DetectionMAP` (mAP50) as a :class:`~strided.train.Metric`,
    measured on **validation** batches only (``on_training = False``: logged as ``val_mAP50``).

    On training batches a mAP would cost a decode and an NMS per batch and measure a model that
    changes while it is measured, so the Trainer does not feed it those.  ``key``: which number
    :meth:`compute` returns (``"mAP50"`` or ``"mAP50-95"``; both are in :attr:`last`); NaN (``null``
    in metrics.json) when it saw no image.
    """

    on_training = False

    def __init__(self, anchors, num_classes: int, key: str = "mAP50", **options):
        if key not in ("mAP50", "mAP50-95"):
            raise ValueError(f"key must be 'mAP50' or 'mAP50-95', received key={key!r}")
        self.inner = DetectionMAP(anchors, num_classes, **options)
        self.key = key
        self.last: dict = {}
        super().__init__()

    def reset(self) -> None:
        self.inner.reset()
        self.last = {}

    def update(self, outputs, targets) -> None:
        self.inner.update(outputs, targets)

    def compute(self) -> float:
        if not self.inner.ground_truth:
            return math.nan
        self.last = self.inner.compute()
        return float(self.last[self.key])

    def __repr__(self):
        return f"ValidationMAP({self.key}, {self.inner!r})"


def coco_predictions(detections_per_image) -> list:
    """COCO-style prediction records (``image_id`` = index, ``bbox`` ``[x, y, w, h]``) from one list
    of ``{"box": [x1, y1, x2, y2], "score", "class"}`` per image."""
    rows = []
    for image_id, dets in enumerate(detections_per_image):
        for d in dets:
            x1, y1, x2, y2 = d["box"]
            rows.append({"image_id": image_id, "category_id": int(d["class"]), "score": float(d["score"]),
                         "bbox": [x1, y1, x2 - x1, y2 - y1]})
    return rows


def evaluate_detector(model, scenes, conf: float = EVAL_CONF, iou: float = 0.45, max_det: int = 100,
                      confusion_conf: float = 0.25, batch_size: int = 64, sizes=None, flip: bool = False,
                      merge: str = "nms") -> dict:
    """COCO mAP of a YOLO ``model`` on a :class:`~strided.data.scenes.SceneSet` (eval mode, no gradients).

    Every image is predicted with :func:`~strided.detect.training.predict_boxes` (``conf``, ``iou``,
    ``max_det``; ``sizes``, ``flip`` and ``merge``: the network's side(s), mirrored views and how the views
    become one answer, as there; boxes
    in pixels of the scene) and scored against the scene's boxes with
    :func:`strided.detect.metrics.evaluate` (all classes and images of the set count).  Returns its
    dict plus ``detections`` (per image), ``predictions`` / ``ground_truth`` (the COCO lists) and
    ``confusion``: :func:`strided.detect.plots.detection_confusion_matrix` at IoU 0.5 of the
    predictions scoring at least ``confusion_conf``.
    """
    from .metrics import evaluate
    from .plots import detection_confusion_matrix

    detections = predict_boxes(model, scenes.images, conf, iou, max_det, batch_size=batch_size, sizes=sizes,
                               flip=flip, merge=merge)
    predictions = coco_predictions(detections)
    ground_truth = scenes.coco_ground_truth()
    num_classes = len(scenes.classes)
    result = evaluate(predictions, ground_truth, max_detections=max_det, image_ids=list(range(len(scenes))),
                      category_ids=list(range(num_classes)))
    result.update(detections=detections, predictions=predictions, ground_truth=ground_truth,
                  confusion=detection_confusion_matrix(predictions, ground_truth, num_classes, 0.5,
                                                       conf=confusion_conf))
    return result


def plot_detection_curves(history: list, path):
    """Loss (train and validation) and validation mAP50 per epoch -> a PNG at ``path``."""
    from ..report import pyplot, save_figure

    plt = pyplot()
    epochs = [h["epoch"] for h in history]

    def values(key):
        return [np.nan if h.get(key) is None else h[key] for h in history]

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(epochs, values("loss"), "o-", label="train")
    if any(h.get("val_loss") is not None for h in history):
        axes[0].plot(epochs, values("val_loss"), "o-", label="validation")
    axes[0].set_title("YOLO loss")
    for key, label in (("val_mAP50", "validation mAP50"),):
        if any(h.get(key) is not None for h in history):
            axes[1].plot(epochs, values(key), "o-", label=label)
    axes[1].set_ylim(0, 1)
    axes[1].set_title("mAP50 (COCO, 101-point)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_detections_grid(images, detections, classes, path, ground_truth=None, columns: int = 4,
                         min_score: float = 0.25):
    """A grid of scenes with their predicted boxes (class name and score), ground-truth boxes
    dashed white when ``ground_truth`` (one ``(boxes (k, 4), labels (k,))`` per image) is given.
    Only predictions scoring at least ``min_score`` are drawn.  Returns the PNG's path."""
    from matplotlib.patches import Rectangle

    from ..data.image import to_float
    from ..report import image_grid, save_figure
    from .draw import PALETTE

    n = len(images)
    fig, axes = image_grid(n, columns, tile=(2.6, 2.7))
    for i in range(n):
        ax = axes[i // columns][i % columns]
        ax.imshow(to_float(np.asarray(images[i])).clip(0, 1), interpolation="nearest")
        if ground_truth is not None:
            for x1, y1, x2, y2 in np.asarray(ground_truth[i][0], dtype=float).reshape(-1, 4):
                ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="white", lw=0.8,
                                       ls="--"))
        for d in detections[i]:
            if d["score"] < min_score:
                continue
            x1, y1, x2, y2 = d["box"]
            colour = np.array(PALETTE[int(d["class"]) % len(PALETTE)]) / 255
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.3))
            ax.text(x1 - 0.5, y1 - 1, f"{classes[int(d['class'])]} {d['score']:.2f}", color="white", fontsize=6,
                    va="bottom", bbox=dict(fc=colour, ec="none", pad=0.5))
    fig.suptitle(f"predictions (score >= {min_score:g}){'; dashed: ground truth' if ground_truth else ''}",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
