"""strided.detect.report: the validation-only mAP metric, a detector's mAP on a scenes set (against
pycocotools), and the pictures."""
import math

import numpy as np
import pytest

from strided.data.scenes import SceneSet
from strided.detect.report import ValidationMAP, evaluate_detector, plot_detection_curves, plot_detections_grid
from strided.detect.training import DetectionMAP
from tests.detect.test_training import ANCHORS, C, FixedHead, coco_reference, head_with


def test_validation_map_is_detection_map_measured_on_validation_only():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.55, 0.5, 0.95, 0.9]])
    raw = head_with(boxes, [2, 0]).reshape(1, 4, 4, -1)
    metric = ValidationMAP(ANCHORS, C)
    assert metric.on_training is False                           # the Trainer feeds it validation batches only
    assert math.isnan(metric.compute())                          # nothing seen yet
    metric.update(raw, [(boxes, np.array([2, 0]))])
    reference = DetectionMAP(ANCHORS, C)
    reference.update(raw, [(boxes, np.array([2, 0]))])
    assert metric.compute() == reference.compute()["mAP50"] == pytest.approx(1.0)
    assert set(metric.last) == {"mAP50", "mAP50-95"}
    metric.reset()
    assert math.isnan(metric.compute())
    with pytest.raises(ValueError, match="key must be 'mAP50' or 'mAP50-95', received key='ap'"):
        ValidationMAP(ANCHORS, C, key="ap")


def scenes(boxes_per_image, labels_per_image, size=32):
    n = len(boxes_per_image)
    return SceneSet(np.zeros((n, size, size, 3), np.uint8), [np.asarray(b, np.float32).reshape(-1, 4)
                                                              for b in boxes_per_image],
                    [np.asarray(l, np.int64) for l in labels_per_image], [np.zeros((len(l), 4, 2)) for l in
                                                                          labels_per_image], ["a", "b", "c"])


def test_evaluate_detector_equals_pycocotools():
    pytest.importorskip("pycocotools")
    predicted = np.array([[0.1, 0.1, 0.35, 0.3], [0.55, 0.5, 0.95, 0.9]])
    model = FixedHead(head_with(predicted, [2, 0]).reshape(1, 4, 4, -1))
    # two images see the same head; their truths differ: one matches, one is shifted, one is missed
    data = scenes([[[3.2, 3.2, 9.6, 9.6], [17.6, 16.0, 30.4, 28.8]],
                   [[12.0, 3.0, 20.0, 9.0], [17.6, 16.0, 30.4, 28.8], [2, 20, 9, 30]]],
                  [[2, 0], [2, 0, 1]])
    result = evaluate_detector(model, data)
    preds = [dict(p) for p in result["predictions"]]
    map50, map50_95 = coco_reference(preds, data.coco_ground_truth(), len(data))
    assert result["map50"] == pytest.approx(map50, abs=1e-6) and result["map50_95"] == pytest.approx(map50_95,
                                                                                                       abs=1e-6)
    assert 0 < result["map50"] < 1 and len(result["detections"]) == 2
    confusion = result["confusion"]
    assert confusion.shape == (4, 4) and confusion[:3].sum() == 5        # 5 true boxes, each counted once
    assert confusion[0, 0] == 2 and confusion[1, 3] == 1                  # class a found twice; b missed


def test_pictures(tmp_path):
    history = [{"epoch": 1, "loss": 3.0, "mAP50": None, "val_loss": 2.5, "val_mAP50": 0.1},
               {"epoch": 2, "loss": 2.0, "mAP50": None, "val_loss": 2.0, "val_mAP50": 0.4}]
    assert plot_detection_curves(history, tmp_path / "curves.png").stat().st_size > 1000
    data = scenes([[[3, 3, 10, 10]]], [[1]])
    dets = [[{"box": [3.0, 3.0, 10.0, 11.0], "score": 0.8, "class": 1}]]
    path = plot_detections_grid(data.images, dets, data.classes, tmp_path / "grid.png",
                                ground_truth=list(zip(data.boxes, data.labels)))
    assert path.stat().st_size > 1000
