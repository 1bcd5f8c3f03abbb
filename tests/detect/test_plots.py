"""strided.detect.plots: the detection confusion matrix on hand-made cases; the PR-curve and
confusion PNGs are written (atomically) and readable."""
import numpy as np
import pytest
from PIL import Image

from strided.detect.metrics import evaluate
from strided.detect.plots import detection_confusion_matrix, plot_detection_confusion, plot_pr_curves


def gt(image, cls, box):
    return {"image_id": image, "category_id": cls, "bbox": box}


def pred(image, cls, box, score=0.9):
    return {"image_id": image, "category_id": cls, "bbox": box, "score": score}


BG = 3        # background index with num_classes=3


def test_right_class_wrong_class_missed_and_false_alarm():
    gts = [gt(1, 0, [0, 0, 10, 10]), gt(1, 1, [50, 50, 10, 10]), gt(1, 2, [100, 100, 10, 10])]
    preds = [pred(1, 0, [0, 0, 10, 10]),          # right class
             pred(1, 2, [50, 50, 10, 9]),         # found, but called class 2
             pred(1, 1, [200, 200, 10, 10])]      # nothing there: false alarm; object 2 is missed
    cm = detection_confusion_matrix(preds, gts, num_classes=3)
    expected = np.zeros((4, 4), np.int64)
    expected[0, 0] = 1
    expected[1, 2] = 1
    expected[2, BG] = 1
    expected[BG, 1] = 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_low_scores_are_left_out_and_iou_threshold_is_inclusive():
    gts = [gt(1, 0, [0, 0, 10, 10])]
    half = pred(1, 0, [0, 0, 5, 10], score=0.9)            # IoU exactly 0.5
    cm = detection_confusion_matrix([half, pred(1, 1, [0, 0, 10, 10], score=0.1)], gts, num_classes=3)
    assert cm[0, 0] == 1 and cm.sum() == 1                 # the 0.1 box is below conf=0.25
    cm = detection_confusion_matrix([half], gts, num_classes=3, iou_threshold=0.51)
    assert cm[0, BG] == 1 and cm[BG, 0] == 1 and cm.sum() == 2
    cm = detection_confusion_matrix([pred(1, 1, [0, 0, 10, 10], score=0.1)], gts, num_classes=3, conf=0.1)
    assert cm[0, 1] == 1                                    # score == conf takes part


def test_one_to_one_greedy_by_iou_and_per_image():
    gts = [gt(1, 0, [0, 0, 10, 10]), gt(1, 1, [4, 0, 10, 10])]
    # p0 overlaps object 1 most (IoU 0.90 vs 0.48 with object 0); p1 fits object 0 (IoU 0.67)
    p0 = pred(1, 1, [3.5, 0, 10, 10])
    p1 = pred(1, 0, [-2, 0, 10, 10], score=0.5)
    p2 = pred(1, 0, [0, 0, 10, 10], score=0.3)               # duplicate of object 0: IoU 1 -> wins object 0
    cm = detection_confusion_matrix([p0, p1, p2], gts, num_classes=3)
    assert cm[1, 1] == 1 and cm[0, 0] == 1 and cm[BG, 0] == 1 and cm.sum() == 3
    # a box on another image never matches
    cm = detection_confusion_matrix([pred(2, 0, [0, 0, 10, 10])], [gt(1, 0, [0, 0, 10, 10])], num_classes=3)
    assert cm[0, BG] == 1 and cm[BG, 0] == 1 and cm.sum() == 2


def test_empty_inputs_and_bad_classes():
    assert detection_confusion_matrix([], [], num_classes=2).tolist() == [[0] * 3] * 3
    assert detection_confusion_matrix([], [gt(1, 1, [0, 0, 1, 1])], num_classes=2)[1, 2] == 1
    with pytest.raises(ValueError, match=r"predictions\[0\]\['category_id'\] must be an integer in \[0, 2\).*received 5"):
        detection_confusion_matrix([pred(1, 5, [0, 0, 1, 1])], [], num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        detection_confusion_matrix([], [], num_classes=0)


def read_png(path):
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def test_pngs_are_written_and_readable(tmp_path):
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for image in range(6):
        for _ in range(5):
            cls = int(rng.integers(0, 3))
            x, y = rng.uniform(0, 300, 2)
            box = [float(x), float(y), 40.0, 30.0]
            gts.append(gt(image, cls, box))
            if rng.random() < 0.8:
                preds.append(pred(image, cls if rng.random() < 0.8 else 2, [box[0] + 3, box[1], 40, 30],
                                  float(rng.random())))
    result = evaluate(preds, gts)
    path = plot_pr_curves(result, tmp_path / "runs" / "pr_curve.png", class_names=["a", "b", "c"])
    assert path == tmp_path / "runs" / "pr_curve.png"
    pixels = read_png(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.std() > 0
    plot_pr_curves(result, tmp_path / "pr75.png", class_names={0: "a"}, iou_threshold=0.75)
    with pytest.raises(ValueError, match="iou_threshold=0.42"):
        plot_pr_curves(result, tmp_path / "bad.png", iou_threshold=0.42)

    cm = detection_confusion_matrix(preds, gts, num_classes=3)
    assert cm.sum() >= len(gts)
    out = plot_detection_confusion(cm, tmp_path / "confusion.png", class_names=["a", "b", "c"])
    assert read_png(out).shape[0] > 100
    plot_detection_confusion(cm, tmp_path / "confusion_norm.png", normalize=True)
    # atomic writes leave no temporaries behind
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["confusion.png", "confusion_norm.png", "pr75.png", "runs"]
    with pytest.raises(ValueError, match="3 names"):
        plot_detection_confusion(cm, tmp_path / "x.png", class_names=["a"])
