"""Training pieces for a YOLOv2 detector on the Trainer: collate, loss, mAP metric, predict.

>>> loader = DataLoader(scenes, batch_size=16, shuffle=True, collate_fn=collate_detection)
>>> loss_fn = YoloLoss(model.anchors, model.num_classes)           # loss_fn(raw, targets) -> Tensor
>>> metric = DetectionMAP(model.anchors, model.num_classes)        # update(raw, targets); compute()
>>> predict_boxes(model, images, conf=0.25, iou=0.45)              # list of detections per image

Targets between these pieces are a list with one ``(boxes, classes)`` pair per image:
``boxes`` ``(K, 4)`` float32 **xyxy normalised to [0, 1]** (divided by the image width and
height), ``classes`` ``(K,)`` int64.  Normalised boxes keep the loss independent of the
image size; :func:`predict_boxes` returns pixels.

Scores of a detection (YOLOv2, darknet): ``objectness * class probability``; every (box,
class) pair scoring strictly more than ``conf`` is a candidate, then non-maximum
suppression runs per class (a box is suppressed when its IoU with a kept, higher-scoring
box of the same class is strictly greater than ``iou``), then the ``max_det`` highest
scores are kept -- :func:`strided.detect.decode.detections_from_head`, shared with the
darknet detectors.
"""
from __future__ import annotations

import numpy as np

from ..data.box_augment import hflip_boxes
from ..data.image import to_float
from ..errors import StridedError
from ..tensor import as_tensor, no_grad
from .anchors import check_anchors
from .decode import check_thresholds, detection_records, detections_from_head
from .fusion import weighted_boxes_fusion
from .yolo import assign_targets, decode, yolo_loss

__all__ = ["collate_detection", "YoloLoss", "DetectionMAP", "decode_detections", "predict_boxes",
           "DetectionDataError", "resize_batch"]


class DetectionDataError(StridedError, ValueError):
    """A detection sample or batch in a shape the collate / metric cannot read."""


def _sample_parts(sample, index):
    """``(image, boxes, classes)`` from ``(image, {"boxes", "labels" or "classes"})`` or
    ``(image, boxes, classes)``."""
    if isinstance(sample, (tuple, list)) and len(sample) == 2 and isinstance(sample[1], dict):
        image, target = sample
        labels = target.get("labels", target.get("classes"))
        if "boxes" not in target or labels is None:
            raise DetectionDataError(f"sample {index}: the target dict needs 'boxes' and 'labels' (or 'classes'), "
                                     f"received keys {sorted(target)}")
        return image, target["boxes"], labels
    if isinstance(sample, (tuple, list)) and len(sample) == 3:
        return sample
    raise DetectionDataError(f"sample {index} must be (image, {{'boxes', 'labels'}}) or (image, boxes, classes), "
                             f"received {type(sample).__name__} of length {len(sample) if hasattr(sample, '__len__') else '?'}")


def collate_detection(samples) -> tuple:
    """Stack detection samples into ``(images, targets)``.

    Each sample is ``(image, {"boxes": (K, 4), "labels": (K,)})`` (as
    :class:`strided.data.scenes.SceneSet` gives) or ``(image, boxes, classes)``; ``image``
    ``(H, W, 3)`` uint8 (scaled to [0, 1] with :func:`strided.data.image.to_float`) or
    float in [0, 1]; ``boxes`` xyxy in **pixels** of that image.  All images must have
    the same size.  Returns ``images`` ``(N, H, W, 3)`` float32 and ``targets``: a list of
    ``(boxes (K, 4) float32 xyxy normalised to [0, 1], classes (K,) int64)``.
    """
    samples = list(samples)
    if not samples:
        raise DetectionDataError("collate_detection needs at least one sample, received an empty list")
    images, targets = [], []
    for i, sample in enumerate(samples):
        image, boxes, labels = _sample_parts(sample, i)
        image = np.asarray(image)
        if image.ndim != 3:
            raise DetectionDataError(f"sample {i}: image must be (H, W, C), received shape {image.shape}")
        if images and image.shape != images[0].shape:
            raise DetectionDataError(f"all images of a batch must have one size: sample 0 is {images[0].shape}, "
                                     f"sample {i} is {image.shape} (resize them first)")
        image = to_float(image)
        images.append(image)
        H, W = image.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        if len(labels) != len(boxes):
            raise DetectionDataError(f"sample {i} has {len(boxes)} boxes but {len(labels)} labels")
        scale = np.array([W, H, W, H], dtype=np.float32)
        targets.append((boxes / scale, labels))
    return np.ascontiguousarray(np.stack(images), dtype=np.float32), targets


class YoloLoss:
    """``loss_fn(raw, targets) -> scalar Tensor``: :func:`strided.detect.yolo.yolo_loss` after
    :func:`strided.detect.yolo.assign_targets` on the head's grid.

    ``raw`` ``(N, S_h, S_w, A*(5+C))`` from the model; ``targets`` as :func:`collate_detection`
    gives.  The last call's parts (``coord``, ``obj``, ``noobj``, ``cls``, ``loss``) are kept
    in ``self.last_parts`` for logging.
    """

    def __init__(self, anchors, num_classes: int, lambda_coord: float = 1.0, lambda_obj: float = 5.0,
                 lambda_noobj: float = 1.0, lambda_cls: float = 1.0, ignore_thresh: float = 0.6):
        self.anchors = check_anchors(anchors)
        self.num_classes = int(num_classes)
        self.weights = dict(lambda_coord=lambda_coord, lambda_obj=lambda_obj, lambda_noobj=lambda_noobj,
                            lambda_cls=lambda_cls, ignore_thresh=ignore_thresh)
        self.last_parts: dict = {}

    def __call__(self, outputs, targets):
        raw = as_tensor(outputs)
        if raw.ndim != 4:
            raise DetectionDataError(f"YoloLoss takes the raw head (N, S_h, S_w, A*(5+C)), "
                                     f"received shape {tuple(raw.shape)}")
        if len(targets) != raw.shape[0]:
            raise DetectionDataError(f"{raw.shape[0]} images in the output but {len(targets)} targets")
        assigned = assign_targets(targets, self.anchors, raw.shape[1:3], self.num_classes)
        loss, self.last_parts = yolo_loss(raw, assigned, self.anchors, self.num_classes, **self.weights)
        return loss

    def __repr__(self):
        args = ", ".join(f"{k}={v:g}" for k, v in self.weights.items())
        return f"YoloLoss(anchors={len(self.anchors)}, num_classes={self.num_classes}, {args})"


def decode_detections(raw, anchors, num_classes: int, conf: float = 0.25, iou: float = 0.45,
                      max_det: int | None = 100, image_size=None, names=None) -> list:
    """Detections of each image of a raw head ``(N, S_h, S_w, A*(5+C))``: one list per image
    of ``{"box": [x1, y1, x2, y2], "score", "class", "name"}``, best score first.

    Decoding by :func:`strided.detect.yolo.decode`, then
    :func:`strided.detect.decode.detections_from_head` per image (every (box, class) pair
    with ``objectness * class_prob > conf``, strict; per-class NMS at ``iou``; at most
    ``max_det``).  ``image_size`` ``(H, W)`` (or one int) gives boxes in pixels of images of
    that size (a plain resize, no letterbox), clipped to the image; ``None`` leaves them in
    [0, 1].
    """
    boxes, objectness, probs = decode(raw, anchors, num_classes)
    if image_size is None:
        H = W = 1.0
    else:
        H, W = (image_size, image_size) if np.ndim(image_size) == 0 else image_size
    return [detections_from_head(boxes[n], objectness[n], probs[n], (W, H), (W, H), conf, iou, max_det,
                                 letterbox=False, names=names) for n in range(boxes.shape[0])]


class DetectionMAP:
    """Mean average precision over a validation pass, the way COCO computes it.

    ``update(outputs, targets)`` decodes the raw head (score threshold ``conf``, per-class
    NMS at ``iou``, at most ``max_det`` per image) and keeps the detections and the ground
    truths; ``compute()`` runs :func:`strided.detect.metrics.evaluate` on all of them and
    returns ``{"mAP50": ..., "mAP50-95": ...}`` (COCO's 101-point AP averaged over classes,
    at IoU 0.5 and averaged over IoU 0.50:0.05:0.95; classes without ground truth are left
out of the mean, as COCOeval does).  The full result of ``evaluate`` (per-class AP,
precision/recall curves) stays in ``last_result``.  ``reset()`` starts over.

    ``image_size`` ``(H, W)`` puts the boxes in pixels (the mAP does not change: scaling both
    boxes of a pair scales their intersection and union alike); the default keeps them
    normalised.  A low ``conf`` (0.001 by default, as COCO evaluations use) lets the
    precision-recall curve reach high recall.
    """

    def __init__(self, anchors, num_classes: int, image_size=None, conf: float = 0.001, iou: float = 0.45,
                 max_det: int = 100):
        check_thresholds(conf, iou, max_det)
        self.anchors, self.num_classes = check_anchors(anchors), int(num_classes)
        self.image_size, self.conf, self.iou, self.max_det = image_size, conf, iou, max_det
        self.reset()

    def reset(self) -> None:
        self.predictions: list = []
        self.ground_truth: list = []
        self.images = 0
        self.last_result: dict | None = None

    def update(self, outputs, targets) -> None:
        raw = outputs.data if hasattr(outputs, "data") and not isinstance(outputs, np.ndarray) else outputs
        raw = np.asarray(raw)
        if len(targets) != raw.shape[0]:
            raise DetectionDataError(f"{raw.shape[0]} images in the output but {len(targets)} targets")
        dets = decode_detections(raw, self.anchors, self.num_classes, self.conf, self.iou, self.max_det,
                                 self.image_size)
        if self.image_size is None:
            scale = np.ones(4)
        else:
            H, W = (self.image_size,) * 2 if np.ndim(self.image_size) == 0 else self.image_size
            scale = np.array([W, H, W, H], dtype=np.float64)
        for det, (boxes, labels) in zip(dets, targets):
            image_id = self.images
            self.images += 1
            for d in det:
                x1, y1, x2, y2 = d["box"]
                self.predictions.append({"image_id": image_id, "category_id": d["class"], "score": d["score"],
                                         "bbox": [x1, y1, x2 - x1, y2 - y1]})
            for b, c in zip(np.asarray(boxes, np.float64).reshape(-1, 4) * scale, np.asarray(labels).reshape(-1)):
                self.ground_truth.append({"image_id": image_id, "category_id": int(c),
                                          "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})

    def compute(self) -> dict:
        from .metrics import evaluate
        if not self.ground_truth:
            raise DetectionDataError("DetectionMAP.compute() needs ground truth: update() was not called "
                                     "or every image was empty")
        result = evaluate(self.predictions, self.ground_truth, max_detections=self.max_det,
                          image_ids=list(range(self.images)), category_ids=list(range(self.num_classes)))
        self.last_result = result
        return {"mAP50": float(result["map50"]), "mAP50-95": float(result["map50_95"])}

    def __repr__(self):
        return (f"DetectionMAP(num_classes={self.num_classes}, conf={self.conf:g}, iou={self.iou:g}, "
                f"max_det={self.max_det}, images={self.images})")


def resize_batch(images, size: int) -> np.ndarray:
    """``(N, H, W, C)`` float images resized to ``(N, size, size, C)`` by
    :func:`strided.detect.darknet.darknet_resize` (a plain bilinear resize, corners aligned, as
    ``strided detect`` feeds a run's model); returned unchanged when already ``size x size``."""
    from .darknet import darknet_resize

    images = np.asarray(images)
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([darknet_resize(im, size, size) for im in images]) if len(images) else \
        np.zeros((0, size, size) + images.shape[3:], np.float32)


def _check_sizes(sizes) -> tuple:
    values = (sizes,) if np.ndim(sizes) == 0 else tuple(sizes)
    if not values or any(isinstance(s, bool) or int(s) != s or s < 1 for s in values):
        raise DetectionDataError(f"sizes must be a positive int or a non-empty sequence of them, received {sizes!r}")
    return tuple(int(s) for s in values)


def _decoded_views(model, x, sizes, flip: bool) -> list:
    """Decoded boxes (normalised xyxy), objectness and class probabilities of each view of the
    batch ``x``: a list with one ``((N, K, 4), (N, K), (N, K, C))`` per view."""
    views = []
    for size in sizes:
        view = x if size is None else resize_batch(x, size)
        for mirrored in ((False, True) if flip else (False,)):
            inp = view[:, :, ::-1] if mirrored else view
            raw = model(as_tensor(np.ascontiguousarray(inp))).data
            b, o, p = decode(raw, model.anchors, model.num_classes)
            n = b.shape[0]
            b = b.reshape(n, -1, 4)
            if mirrored:                       # x -> 1 - x: the mirrored view's boxes back in the image
                b = hflip_boxes(b.reshape(-1, 4), 1.0).reshape(b.shape)
            views.append((b, o.reshape(n, -1), p.reshape(n, -1, p.shape[-1])))
    return views


def _fused_detections(per_view, max_det: int, fuse_iou: float, names) -> list:
    """One image's detections from each view's own (thresholded, NMS'd) detections, by
    :func:`~strided.detect.fusion.weighted_boxes_fusion` (each view one source)."""
    found = [(d, t) for t, dets in enumerate(per_view) for d in dets]
    if not found:
        return []
    boxes, scores, classes = weighted_boxes_fusion(
        [d["box"] for d, _ in found], [d["score"] for d, _ in found], [d["class"] for d, _ in found],
        [t for _, t in found], num_sources=len(per_view), iou_threshold=fuse_iou)
    return detection_records(boxes[:max_det], scores[:max_det], classes[:max_det], names)


def predict_boxes(model, images, conf: float = 0.25, iou: float = 0.45, max_det: int = 100,
                  names=None, batch_size: int = 32, sizes=None, flip: bool = False, merge: str = "nms",
                  fuse_iou: float = 0.55) -> list:
    """Run a YOLO ``model`` (with ``.anchors`` and ``.num_classes``, e.g. ``yolo_tiny``) on
    ``images`` ``(N, H, W, 3)`` (uint8, or float in [0, 1]) in eval mode without gradients.

    Returns one list per image of ``{"box": [x1, y1, x2, y2], "score", "class", "name"}``
    with boxes in pixels of the given images, best score first (rules in the module
    docstring).  ``names`` (a sequence of class names) fills ``name``; otherwise the class
    number as a string.

    ``sizes``: the side(s) the network sees.  ``None``: the images as they are.  One int
    ``s``: each image is resized to ``s x s`` (:func:`resize_batch`; e.g. the model's own
    ``input_size`` when it was trained on upscaled scenes); the boxes come back in the given
    images' pixels.  Several ints, or ``flip=True`` (also each view's left-right mirror, boxes
    mirrored back): **test-time augmentation** -- every view's decoded boxes of an image are
    pooled *before* the score threshold and the per-class NMS, so overlapping answers of the
    views suppress each other and the best-scoring box of each object survives.

    ``model`` may also be a list or tuple of YOLO models with the same classes (an
    **ensemble**; anchors may differ): each model sees the same views and all their boxes are
    pooled the same way.  ``[m, m]`` gives exactly ``m``'s answer (each box's twin is
    suppressed, equal scores keep the first).

    ``merge``: how several views (and models) become one answer.  ``"nms"`` (default): pooled
    before the NMS, as above.  ``"wbf"``: each view of each model gives its own detections
    (``conf``, ``iou``, ``max_det`` as for one view), then
    :func:`~strided.detect.fusion.weighted_boxes_fusion` averages the boxes of one object
    (IoU > ``fuse_iou``) weighted by score and scales each score by the share of the views
    that found it; at most ``max_det`` are kept.  With one view and one model both give the
    same answer.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise DetectionDataError(f"images must be (N, H, W, 3) or one (H, W, 3), received shape {images.shape}")
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise DetectionDataError("predict_boxes received an empty list of models")
    for member in models:
        for attr in ("anchors", "num_classes"):
            if not hasattr(member, attr):
                raise DetectionDataError(f"predict_boxes needs a YOLO model with .anchors and .num_classes "
                                         f"(such as yolo_tiny); {type(member).__name__} has no .{attr}")
    classes = sorted({int(member.num_classes) for member in models})
    if len(classes) > 1:
        raise DetectionDataError(f"an ensemble's models must have the same number of classes, received {classes}")
    check_thresholds(conf, iou, max_det)
    if merge not in ("nms", "wbf"):
        raise DetectionDataError(f"merge must be 'nms' or 'wbf', received {merge!r}")
    if not 0.0 <= fuse_iou <= 1.0:
        raise DetectionDataError(f"fuse_iou must be in [0, 1], received {fuse_iou!r}")
    views = (None,) if sizes is None else _check_sizes(sizes)
    x = to_float(images)
    H, W = x.shape[1:3]
    was_training = [getattr(member, "training", False) for member in models]
    for member in models:
        member.eval()
    results = []
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                parts = [view for member in models
                         for view in _decoded_views(member, x[start:start + batch_size], views, bool(flip))]
                if merge == "wbf" and len(parts) > 1:
                    results += [_fused_detections([detections_from_head(b[n], o[n], p[n], (W, H), (W, H), conf, iou,
                                                                        max_det, letterbox=False) for b, o, p in parts],
                                                  max_det, fuse_iou, names)
                                for n in range(parts[0][0].shape[0])]
                else:
                    boxes, objectness, probs = (np.concatenate(arrays, 1) for arrays in zip(*parts))
                    results += [detections_from_head(boxes[n], objectness[n], probs[n], (W, H), (W, H), conf, iou,
                                                     max_det, letterbox=False, names=names)
                                for n in range(boxes.shape[0])]
    finally:
        for member, training in zip(models, was_training):
            if training:
                member.train()
    return results
