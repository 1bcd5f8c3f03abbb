"""Detection training pieces: collate, YoloLoss, decoding to detections (score, filter, NMS),
DetectionMAP against pycocotools, predict_boxes."""
import contextlib
import io

import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.detect.training import (DetectionDataError, DetectionMAP, YoloLoss, collate_detection,
                                     decode_detections, predict_boxes)
from strided.detect.yolo import assign_targets, encode, yolo_loss

ANCHORS = np.array([[1.0, 1.0], [2.0, 3.0]])
C = 3


def head_with(boxes_norm, classes, grid=(4, 4), N=1, strength=8.0, image=0, raw=None):
    """A raw head whose only confident predictions are the given boxes (normalised xyxy)."""
    if raw is None:
        raw = np.full((N,) + grid + (len(ANCHORS), 5 + C), 0.0)
        raw[..., 4] = -strength                     # objectness ~ 0 everywhere
    t, rows, cols, best = encode(np.asarray(boxes_norm, float), ANCHORS, grid)
    raw[image, rows, cols, best, :4] = t
    raw[image, rows, cols, best, 4] = strength
    raw[image, rows, cols, best, 5:] = -strength
    raw[image, rows, cols, best, 5 + np.asarray(classes)] = strength
    return raw


def test_collate_normalises_boxes_and_scales_uint8():
    img = np.full((20, 40, 3), 255, np.uint8)
    samples = [(img, {"boxes": np.array([[4, 2, 20, 10]]), "labels": np.array([2])}),
               (img * 0, np.zeros((0, 4)), np.zeros(0, int))]
    images, targets = collate_detection(samples)
    assert images.shape == (2, 20, 40, 3) and images.dtype == np.float32
    assert images[0].max() == 1.0 and images[1].max() == 0.0
    np.testing.assert_allclose(targets[0][0], [[0.1, 0.1, 0.5, 0.5]])
    assert targets[0][1].dtype == np.int64 and targets[1][0].shape == (0, 4)


def test_collate_errors():
    a, b = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)
    with pytest.raises(DetectionDataError, match=r"one size: sample 0 is \(8, 8, 3\), sample 1 is \(8, 9, 3\)"):
        collate_detection([(a, np.zeros((0, 4)), []), (b, np.zeros((0, 4)), [])])
    with pytest.raises(DetectionDataError, match=r"sample 0 has 1 boxes but 2 labels"):
        collate_detection([(a, {"boxes": [[0, 0, 1, 1]], "labels": [1, 2]})])
    with pytest.raises(DetectionDataError, match="needs 'boxes' and 'labels'"):
        collate_detection([(a, {"box": []})])


def test_yolo_loss_object_equals_assign_plus_loss():
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((2, 4, 4, 2 * (5 + C)))
    targets = [(np.array([[0.1, 0.2, 0.4, 0.6]]), np.array([1])), (np.zeros((0, 4)), np.zeros(0, int))]
    loss_fn = YoloLoss(ANCHORS, C, lambda_noobj=0.5)
    got = loss_fn(sd.tensor(raw), targets)
    want, parts = yolo_loss(sd.tensor(raw), assign_targets(targets, ANCHORS, (4, 4), C), ANCHORS, C, lambda_noobj=0.5)
    assert float(got.item()) == pytest.approx(float(want.item()), rel=1e-12)
    assert loss_fn.last_parts == parts
    with pytest.raises(DetectionDataError, match="2 images in the output but 1 targets"):
        loss_fn(sd.tensor(raw), targets[:1])


def test_decode_detections_scores_filter_nms_and_pixels():
    boxes = [[0.1, 0.1, 0.3, 0.3], [0.55, 0.5, 0.95, 0.9]]
    raw = head_with(boxes, [2, 0]).reshape(1, 4, 4, -1)
    dets = decode_detections(raw, ANCHORS, C, conf=0.5, iou=0.45, image_size=(50, 100), names=["a", "b", "c"])
    assert len(dets) == 1 and len(dets[0]) == 2
    got = sorted(tuple(d["box"]) for d in dets[0])
    want = sorted(map(tuple, np.array(boxes) * [100, 50, 100, 50]))
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert sorted((d["class"], d["name"]) for d in dets[0]) == [(0, "a"), (2, "c")]
    sig = 1 / (1 + np.exp(-8.0))
    p = np.exp(8.0) / (np.exp(8.0) + 2 * np.exp(-8.0))
    np.testing.assert_allclose([d["score"] for d in dets[0]], [sig * p] * 2, rtol=1e-6)
    # normalised boxes without image_size; a threshold above the score drops them
    norm = decode_detections(raw, ANCHORS, C, conf=0.5)[0]
    np.testing.assert_allclose(sorted(tuple(d["box"]) for d in norm), sorted(map(tuple, boxes)), atol=1e-6)
    assert decode_detections(raw, ANCHORS, C, conf=0.9999999)[0] == []


def test_decode_detections_nms_per_class():
    # the same box predicted twice (two anchors of one cell) with different classes survives
    # twice; with the same class only the better one survives
    base = np.full((1, 4, 4, 2, 5 + C), 0.0)
    base[..., 4] = -20
    for a, (cls, obj) in enumerate([(1, 6.0), (1, 4.0)]):
        base[0, 1, 1, a, :4] = [0.0, 0.0, np.log(1.5 / ANCHORS[a, 0]), np.log(1.5 / ANCHORS[a, 1])]
        base[0, 1, 1, a, 4] = obj
        base[0, 1, 1, a, 5 + cls] = 10
    dets = decode_detections(base.reshape(1, 4, 4, -1), ANCHORS, C, conf=0.1, iou=0.45)[0]
    assert [d["class"] for d in dets] == [1]
    base[0, 1, 1, 1, 5 + 1] = 0
    base[0, 1, 1, 1, 5 + 2] = 10
    dets = decode_detections(base.reshape(1, 4, 4, -1), ANCHORS, C, conf=0.1, iou=0.45)[0]
    assert [d["class"] for d in dets] == [1, 2]
    assert dets[0]["score"] > dets[1]["score"]


def coco_reference(preds, gts, n_images):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in range(n_images)],
                  "annotations": [dict(g, id=i + 1, area=g["bbox"][2] * g["bbox"][3], iscrowd=0)
                                  for i, g in enumerate(gts)],
                  "categories": [{"id": k} for k in range(C)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(preds), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[1], ev.stats[0]


def test_detection_map_equals_pycocotools():
    pytest.importorskip("strided.detect.metrics")
    rng = np.random.default_rng(3)
    metric = DetectionMAP(ANCHORS, C, image_size=(64, 64))
    all_preds, all_gts = [], []
    for batch in range(2):
        targets, raws = [], []
        for n in range(3):
            k = int(rng.integers(1, 3))
            c = rng.uniform(0.2, 0.8, (k, 2))
            wh = rng.uniform(0.1, 0.3, (k, 2))
            boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
            labels = rng.integers(0, C, k)
            targets.append((boxes, labels))
            # predictions: the boxes moved a little, some with the wrong class, plus a false
            # positive; the rest of the head is noise (low scores)
            noisy = np.clip(boxes + rng.normal(0, 0.04, boxes.shape), 0.01, 0.99)
            wrong = np.where(rng.random(k) < 0.3, (labels + 1) % C, labels)
            fake_c = rng.uniform(0.2, 0.8, (1, 2))
            fake = np.concatenate([fake_c - 0.1, fake_c + 0.1], 1)
            raw = rng.normal(0, 1, (1, 4, 4, 2, 5 + C))
            raw = head_with(fake, rng.integers(0, C, 1), raw=raw, strength=float(rng.uniform(1, 4)))
            raws.append(head_with(noisy, wrong, raw=raw, strength=float(rng.uniform(1, 4))))
        raw = np.concatenate(raws).reshape(3, 4, 4, -1)
        metric.update(sd.tensor(raw), targets)
        for n, det in enumerate(decode_detections(raw, ANCHORS, C, conf=0.001, iou=0.45, image_size=64)):
            for d in det:
                b = d["box"]
                all_preds.append({"image_id": 3 * batch + n, "category_id": d["class"], "score": d["score"],
                                  "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
            for b, c in zip(targets[n][0] * 64, targets[n][1]):
                all_gts.append({"image_id": 3 * batch + n, "category_id": int(c),
                                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    got = metric.compute()
    map50, map5095 = coco_reference(all_preds, all_gts, 6)
    assert 0.05 < map50 < 1.0
    assert got["mAP50"] == pytest.approx(map50, abs=1e-6)
    assert got["mAP50-95"] == pytest.approx(map5095, abs=1e-6)


def test_detection_map_perfect_predictions_give_one():
    pytest.importorskip("strided.detect.metrics")
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.55, 0.5, 0.95, 0.9]])
    raw = head_with(boxes, [2, 0]).reshape(1, 4, 4, -1)
    metric = DetectionMAP(ANCHORS, C)
    metric.update(raw, [(boxes, np.array([2, 0]))])
    result = metric.compute()
    assert result["mAP50"] == pytest.approx(1.0) and result["mAP50-95"] == pytest.approx(1.0)
    metric.reset()
    with pytest.raises(DetectionDataError, match="needs ground truth"):
        metric.compute()


class FixedHead(nn.Module):
    """A stand-in model that returns a fixed raw head (and records its mode)."""

    def __init__(self, raw):
        super().__init__()
        self.raw, self.anchors, self.num_classes = raw, ANCHORS, C
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return sd.tensor(np.repeat(self.raw, x.shape[0], axis=0))


def test_predict_boxes_returns_pixels_and_names_and_restores_mode():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3]])
    model = FixedHead(head_with(boxes, [1]).reshape(1, 4, 4, -1))
    images = np.zeros((2, 40, 80, 3), np.uint8)
    out = predict_boxes(model, images, conf=0.5, names=["a", "b", "c"])
    assert len(out) == 2 and len(out[0]) == 1
    det = out[0][0]
    np.testing.assert_allclose(det["box"], [8, 4, 24, 12], atol=1e-4)
    assert det["class"] == 1 and det["name"] == "b" and 0.99 < det["score"] <= 1
    assert model.modes == [False] and model.training
    with pytest.raises(ValueError, match=r"conf must be in \[0, 1\], received conf=2"):
        predict_boxes(model, images, conf=2)
    with pytest.raises(DetectionDataError, match=r"has no .anchors"):
        predict_boxes(nn.Identity(), images)


class RecordingHead(FixedHead):
    """FixedHead that also keeps every input it saw."""

    def forward(self, x):
        self.inputs = getattr(self, "inputs", []) + [np.array(x.data)]
        return super().forward(x)


def test_resize_batch_is_darknet_resize_per_image_and_leaves_the_size_alone():
    from strided.detect.darknet import darknet_resize
    from strided.detect.training import resize_batch

    x = np.random.default_rng(0).random((3, 20, 24, 3)).astype(np.float32)
    out = resize_batch(x, 32)
    assert out.shape == (3, 32, 32, 3)
    for n in range(3):
        np.testing.assert_array_equal(out[n], darknet_resize(x[n], 32, 32))
    square = x[:, :, :20]
    assert resize_batch(square, 20) is square
    assert resize_batch(x[:0], 16).shape == (0, 16, 16, 3)


def test_predict_boxes_sizes_resizes_and_returns_boxes_in_the_given_images_pixels():
    from strided.detect.training import resize_batch
    from strided.models.yolo import yolo_tiny

    sd.manual_seed(0)
    model = yolo_tiny(num_classes=3, input_size=32)
    images = (np.random.default_rng(1).random((2, 48, 48, 3)) * 255).astype(np.uint8)
    direct = predict_boxes(model, resize_batch(images / 255.0, 64), conf=0.01, max_det=20)
    via_sizes = predict_boxes(model, images, conf=0.01, max_det=20, sizes=64)
    assert sum(map(len, direct)) > 0
    for a, b in zip(direct, via_sizes):
        assert [d["class"] for d in a] == [d["class"] for d in b]
        np.testing.assert_allclose([d["score"] for d in a], [d["score"] for d in b], rtol=1e-5)
        np.testing.assert_allclose(np.array([d["box"] for d in a]).reshape(-1, 4) * 48 / 64,
                                   np.array([d["box"] for d in b]).reshape(-1, 4), atol=1e-3)


def test_predict_boxes_test_time_augmentation_pools_views_before_nms():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3]])
    images = (np.random.default_rng(2).random((2, 40, 80, 3)) * 255).astype(np.uint8)
    # every view answers the same normalised box: the views' copies suppress each other
    model = RecordingHead(head_with(boxes, [1]).reshape(1, 4, 4, -1))
    out = predict_boxes(model, images, conf=0.5, sizes=(32, 48))
    assert [len(d) for d in out] == [1, 1]
    np.testing.assert_allclose(out[0][0]["box"], [8, 4, 24, 12], atol=1e-4)
    assert [x.shape for x in model.inputs] == [(2, 32, 32, 3), (2, 48, 48, 3)]
    # flip: the mirrored view's box is mirrored back, x -> 1 - x (a box on the left answered by the
    # mirrored image is an object on the right of the original)
    model = RecordingHead(head_with(boxes, [1]).reshape(1, 4, 4, -1))
    out = predict_boxes(model, images, conf=0.5, flip=True, sizes=40)
    assert len(model.inputs) == 2
    np.testing.assert_array_equal(model.inputs[1], model.inputs[0][:, :, ::-1])
    got = sorted(d["box"] for d in out[0])
    np.testing.assert_allclose(got, [[8, 4, 24, 12], [56, 4, 72, 12]], atol=1e-4)
    with pytest.raises(DetectionDataError, match=r"sizes must be a positive int .* received \[\]"):
        predict_boxes(model, images, sizes=[])
    with pytest.raises(DetectionDataError, match=r"received 0"):
        predict_boxes(model, images, sizes=0)


def test_predict_boxes_ensemble_pools_the_models_boxes():
    from strided.data.image import to_float
    from strided.detect.decode import detections_from_head
    from strided.detect.training import resize_batch
    from strided.detect.yolo import decode
    from strided.models.yolo import yolo_tiny

    sd.manual_seed(0)
    a, b = yolo_tiny(num_classes=3, input_size=32), yolo_tiny(num_classes=3, input_size=32)
    images = (np.random.default_rng(3).random((2, 48, 48, 3)) * 255).astype(np.uint8)
    kw = dict(conf=0.01, max_det=50, sizes=(32, 48))
    single = predict_boxes(a, images, **kw)
    assert sum(map(len, single)) > 0
    assert predict_boxes([a, a], images, **kw) == single      # each twin suppressed, the first kept
    # two different models: the same as one model whose views answer both models' boxes
    pooled = predict_boxes((a, b), images, **kw)
    x = to_float(images)
    a.eval()
    b.eval()
    parts = []
    for m in (a, b):
        for side in (32, 48):
            with sd.no_grad():
                boxes, obj, probs = decode(m(sd.tensor(resize_batch(x, side))).data, m.anchors, 3)
            parts.append((boxes.reshape(2, -1, 4), obj.reshape(2, -1), probs.reshape(2, -1, 3)))
    a.train()
    b.train()
    boxes, obj, probs = (np.concatenate(p, 1) for p in zip(*parts))
    for n in range(2):
        want = detections_from_head(boxes[n], obj[n], probs[n], (48, 48), (48, 48), 0.01, 0.45, 50,
                                    letterbox=False)
        assert pooled[n] == want
    assert pooled != single and a.training and b.training
    with pytest.raises(DetectionDataError, match=r"same number of classes, received \[3, 4\]"):
        predict_boxes([a, yolo_tiny(num_classes=4, input_size=32)], images)
    with pytest.raises(DetectionDataError, match=r"empty list of models"):
        predict_boxes([], images)
    with pytest.raises(DetectionDataError, match=r"Identity has no .anchors"):
        predict_boxes([a, nn.Identity()], images)


def test_predict_boxes_wbf_fuses_each_views_own_detections():
    from strided.detect.fusion import weighted_boxes_fusion
    from strided.models.yolo import yolo_tiny

    sd.manual_seed(0)
    a, b = yolo_tiny(num_classes=3, input_size=32), yolo_tiny(num_classes=3, input_size=32)
    images = (np.random.default_rng(4).random((2, 48, 48, 3)) * 255).astype(np.uint8)
    kw = dict(conf=0.01, max_det=40)
    # each (model, view) alone, then fused with one source per (model, view)
    singles = [predict_boxes(m, images, sizes=side, flip=False, **kw) for m in (a, b) for side in (32, 48)]
    fused = predict_boxes([a, b], images, sizes=(32, 48), merge="wbf", fuse_iou=0.5, names=["p", "q", "r"], **kw)
    for n in range(2):
        found = [(d, t) for t, single in enumerate(singles) for d in single[n]]
        boxes, scores, classes = weighted_boxes_fusion([d["box"] for d, _ in found], [d["score"] for d, _ in found],
                                                       [d["class"] for d, _ in found], [t for _, t in found],
                                                       num_sources=4, iou_threshold=0.5)
        assert len(fused[n]) == min(40, len(boxes)) and len(boxes) > 0
        np.testing.assert_allclose([d["box"] for d in fused[n]], boxes[:40])
        np.testing.assert_allclose([d["score"] for d in fused[n]], scores[:40])
        assert [d["name"] for d in fused[n]] == ["pqr"[k] for k in classes[:40]]
    # one view of one model: nothing to fuse, the same answer as NMS
    assert predict_boxes(a, images, sizes=32, merge="wbf", **kw) == predict_boxes(a, images, sizes=32, **kw)
    with pytest.raises(DetectionDataError, match="merge must be 'nms' or 'wbf', received 'mean'"):
        predict_boxes(a, images, merge="mean")
    with pytest.raises(DetectionDataError, match="fuse_iou must be in"):
        predict_boxes(a, images, merge="wbf", fuse_iou=2)
