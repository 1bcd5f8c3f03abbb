"""strided.detect: object detection, step by step, in small files.

* :mod:`~strided.detect.boxes`        box formats (xyxy, xywh, cxcywh), areas, IoU
* :mod:`~strided.detect.suppression`          non-max suppression (greedy, exact; per class with ``batched_nms``)
* :mod:`~strided.detect.fusion`       weighted boxes fusion of several views or models (TTA, ensembles)
* :mod:`~strided.detect.metrics`      COCO mAP as pycocotools computes it, Pascal VOC AP
* :mod:`~strided.detect.plots`        precision/recall curves, detection confusion matrix
* :mod:`~strided.detect.anchors`      anchor boxes from k-means with the 1 - IoU distance
* :mod:`~strided.detect.yolo`         YOLOv2 grid, target assignment, encode/decode, loss
  (``strided.detect.yolo.decode``; ``strided.detect.decode`` is the module for darknet heads)
* :mod:`~strided.detect.decode`       darknet [region] (v2) and [yolo] (v3) heads -> boxes
* :mod:`~strided.detect.training`     collate, loss and mAP metric for the Trainer; ``predict_boxes``
* :mod:`~strided.detect.localization` the course's classification + localisation (+ landmarks)
* :mod:`~strided.detect.sliding`      sliding windows, naive and as convolution
* :mod:`~strided.detect.darknet`      real pretrained YOLO detectors from darknet cfg + weights
* :mod:`~strided.detect.tiny_face`    face-api's Tiny Face Detector

Boxes users get are ``[x1, y1, x2, y2]`` in original-image pixels, with ``score``, ``class`` and ``name``.
"""
from .anchors import kmeans_anchors
from .boxes import box_area, cxcywh_to_xyxy, iou, xywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh
from .fusion import weighted_boxes_fusion
from .metrics import evaluate, evaluate_voc, voc_ap
from .sliding import to_fully_convolutional
from .suppression import batched_nms, nms
from .yolo import assign_targets, encode, yolo_loss

__all__ = ["iou", "box_area", "xyxy_to_xywh", "xywh_to_xyxy", "xyxy_to_cxcywh", "cxcywh_to_xyxy", "nms",
           "batched_nms", "weighted_boxes_fusion", "evaluate", "evaluate_voc", "voc_ap", "kmeans_anchors",
           "assign_targets", "encode", "yolo_loss", "to_fully_convolutional"]
