"""strided.detect: object detection, step by step (boxes, IoU, NMS, mAP, ...).

Submodules (import them by full path, e.g. ``from strided.detect.boxes import iou``):

* :mod:`strided.detect.boxes`   box formats, areas, IoU
* :mod:`strided.detect.nms`     non-maximum suppression (per class too)
* :mod:`strided.detect.metrics` COCO mAP (as pycocotools computes it) and Pascal VOC AP
* :mod:`strided.detect.plots`   precision/recall curves, detection confusion matrix
"""
