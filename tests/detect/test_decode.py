"""decode_region / decode_yolo on hand-made raw heads (known offsets -> known boxes), against
OpenCV's own region / yolo layers for the same random weights, the letterbox mapping to image
pixels, and detections_from_head (threshold, per-class NMS, names)."""
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from darknet_helpers import Darknet, opencv_forward, opencv_net, shared_files  # noqa: E402

from strided.detect.decode import (boxes_to_image, decode_head, decode_region, decode_yolo,  # noqa: E402
                                   detections_from_head, letterbox_size)
from strided.detect.suppression import batched_nms  # noqa: E402
from strided.io.darknet import read_darknet  # noqa: E402


def logit(p):
    return math.log(p / (1 - p))


# --------------------------------------------------------------------------- hand-made heads
def test_decode_region_known_box():
    S_h, S_w, A, C = 2, 3, 2, 3
    raw = np.zeros((1, S_h, S_w, A * (5 + C)))
    anchors = [[0.5, 0.5], [2.0, 1.0]]  # grid cells
    e = raw[0, 1, 2, 8:16]  # cell row 1, col 2, anchor 1
    e[:5] = [logit(0.25), 0.0, math.log(1.5), math.log(0.5), logit(0.9)]
    e[5:] = [0.0, math.log(2), math.log(5)]
    boxes, obj, probs = decode_region(raw, anchors, C)
    assert boxes.shape == (1, 2, 3, 2, 4) and obj.shape == (1, 2, 3, 2) and probs.shape == (1, 2, 3, 2, 3)
    # cx = (2 + .25) / 3, cy = (1 + .5) / 2, w = 2 * 1.5 / 3, h = 1 * .5 / 2
    np.testing.assert_allclose(boxes[0, 1, 2, 1], [0.75 - 0.5, 0.75 - 0.125, 0.75 + 0.5, 0.75 + 0.125], atol=1e-12)
    np.testing.assert_allclose(obj[0, 1, 2, 1], 0.9)
    np.testing.assert_allclose(probs[0, 1, 2, 1], [1 / 8, 2 / 8, 5 / 8])
    # an all-zero slot: centre of its cell, anchor size, objectness 1/2, uniform classes
    np.testing.assert_allclose(boxes[0, 0, 0, 0], [0.5 / 3 - 0.25 / 3, 0.25 - 0.125, 0.5 / 3 + 0.25 / 3, 0.375])
    np.testing.assert_allclose(probs[0, 0, 0, 0], [1 / 3] * 3)
    # logistic classes (region without softmax=1, e.g. face detectors)
    np.testing.assert_allclose(decode_region(raw, anchors, C, softmax=False)[2][0, 1, 2, 1],
                               [0.5, 2 / 3, 5 / 6])


def test_decode_yolo_known_box():
    anchors = [[10, 20], [40, 80], [100, 50]]  # pixels of a 320 x 160 input
    raw = np.zeros((2, 2, 2, 2 * (5 + 1)), np.float32)
    raw[1, 0, 1, :6] = [0.0, logit(0.75), math.log(2), 0.0, logit(0.2), logit(0.6)]  # anchor mask[0] = 2
    boxes, obj, probs = decode_yolo(raw, anchors, [2, 0], 1, (320, 160))
    assert boxes.dtype == np.float32
    cx, cy, w, h = (1 + 0.5) / 2, (0 + 0.75) / 2, 200 / 320, 50 / 160
    np.testing.assert_allclose(boxes[1, 0, 1, 0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-6)
    np.testing.assert_allclose([obj[1, 0, 1, 0], probs[1, 0, 1, 0, 0]], [0.2, 0.6], rtol=1e-6)
    # second anchor of the head is anchors[0]
    np.testing.assert_allclose(boxes[0, 0, 0, 1, 2:] - boxes[0, 0, 0, 1, :2], [10 / 320, 20 / 160], rtol=1e-6)


def test_decode_errors():
    with pytest.raises(ValueError, match=r"2 anchors and 3 classes must be \(N, S_h, S_w, 16\), received shape"):
        decode_region(np.zeros((1, 2, 2, 15)), [[1, 1], [2, 2]], 3)
    with pytest.raises(ValueError, match="anchors must be"):
        decode_region(np.zeros((1, 2, 2, 8)), [[1, -1]], 3)
    with pytest.raises(ValueError, match=r"mask must pick anchors among the 2 given, received mask=\[2\]"):
        decode_yolo(np.zeros((1, 2, 2, 8)), [[1, 1], [2, 2]], [2], 3, 416)


# --------------------------------------------------------------------------- OpenCV's region / yolo layers
@pytest.mark.parametrize("name", ["yolov2-tiny-voc", "yolov3-tiny"])
def test_decode_matches_opencv_heads(tmp_path, name):
    size = 320
    cfg, weights = shared_files(name, size)
    if name == "yolov2-tiny-voc":  # OpenCV's region layer keeps scores > the cfg's thresh: lower it to .2
        text = cfg.read_text()
        assert "thresh = .6" in text
        cfg = tmp_path / "region.cfg"
        cfg.write_text(text.replace("thresh = .6", "thresh = .2"))
    net = read_darknet(cfg, weights)
    x = np.random.default_rng(8).uniform(0, 1, (1, size, size, 3)).astype(np.float32)
    cv = opencv_net(cfg, weights)
    # OpenCV's raw conv outputs feeding the heads, and its heads' outputs (rows: cx, cy, w, h, obj, scores);
    # decoding OpenCV's own raw outputs isolates the decoding from float32 differences of the network
    conv_names = [f"conv_{h.layer - 1}" for h in net.heads]
    outputs = opencv_forward(cv, x, conv_names + list(cv.getUnconnectedOutLayersNames()))
    raws, outputs = [o.transpose(0, 2, 3, 1) for o in outputs[:len(conv_names)]], outputs[len(conv_names):]
    rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in outputs])
    for ours, theirs in zip(net.predict(x), raws):  # (and our network agrees with OpenCV's)
        np.testing.assert_allclose(ours, theirs, atol=1e-4 * np.abs(theirs).max())
    ours = [decode_head(raw, head) for raw, head in zip(raws, net.heads)]
    boxes = np.concatenate([b.reshape(-1, 4) for b, _, _ in ours]).astype(np.float64)
    obj = np.concatenate([o.reshape(-1) for _, o, _ in ours])
    scores = np.concatenate([(o[..., None] * p).reshape(-1, p.shape[-1]) for _, o, p in ours])
    assert rows.shape == (len(boxes), 5 + scores.shape[1])
    cxcywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
    np.testing.assert_allclose(cxcywh, rows[:, :4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obj, rows[:, 4], atol=1e-6)
    # OpenCV zeroes class scores at or below a threshold: equal where it kept them
    kept = rows[:, 5:] > 0
    assert kept.sum() > 20, "too few scores above OpenCV's threshold for a meaningful comparison"
    np.testing.assert_allclose(scores[kept], rows[:, 5:][kept], atol=1e-6)
    if name == "yolov2-tiny-voc":
        # its region layer keeps scores > the cfg's thresh (.2), then runs darknet's per-class NMS
        # at 0.4: the same (box, class) pairs must survive our threshold + batched_nms
        box_idx, cls = np.nonzero(scores > 0.2)
        survivors = batched_nms(boxes[box_idx], scores[box_idx, cls], cls, 0.4)
        expected = np.zeros_like(kept)
        expected[box_idx[survivors], cls[survivors]] = True
        assert (expected != kept).sum() == 0 and (scores > 0.2).sum() > kept.sum()
    else:  # yolo layers only threshold
        assert scores[~kept].max() <= rows[:, 5:][kept].min()


@pytest.mark.parametrize("name", ["yolov2-tiny-voc", "yolov3-tiny"])
def test_network_and_decode_match_darknet_itself(name):
    """Debian's libdarknet.so: network_predict + get_network_boxes(relative=1, thresh=0) give
    every slot's box (cx, cy, w, h), objectness and objectness * class probability."""
    darknet = Darknet()
    cfg, weights = shared_files(name, 320)
    x = np.random.default_rng(0).uniform(0, 1, (320, 320, 3)).astype(np.float32)
    handle = darknet.load(cfg, weights)
    darknet.predict(handle, x)
    net = read_darknet(cfg, weights)
    ref = darknet.boxes(handle, (320, 320), 0.0, 1, net.heads[0].classes)
    parts = [decode_head(raw, head) for raw, head in zip(net.predict(x[None]), net.heads)]
    if net.heads[0].type == "region":  # darknet lists region slots anchor-major: a * S*S + cell
        parts = [[np.moveaxis(p, 3, 1) for p in part] for part in parts]
    boxes = np.concatenate([b.reshape(-1, 4) for b, _, _ in parts]).astype(np.float64)
    obj = np.concatenate([o.reshape(-1) for _, o, _ in parts])
    scores = np.concatenate([(o[..., None] * p).reshape(-1, p.shape[-1]) for _, o, p in parts])
    assert len(ref) == len(boxes) == {"yolov2-tiny-voc": 10 * 10 * 5, "yolov3-tiny": (100 + 400) * 3}[name]
    cxcywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
    np.testing.assert_allclose(cxcywh, [r[0] for r in ref], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(obj, [r[1] for r in ref], atol=2e-5)
    np.testing.assert_allclose(scores, [r[2] for r in ref], atol=2e-5)
    assert np.max(scores) > 0.5


# --------------------------------------------------------------------------- mapping to pixels
def test_letterbox_mapping_by_hand():
    assert letterbox_size((200, 100), (416, 416)) == (416, 208)
    assert letterbox_size((100, 300), (416, 416)) == (138, 416)  # 100 * 416 // 300
    # 200 x 100 image in a 416 x 416 input occupies rows 104 .. 312 (relative .25 .. .75)
    b = boxes_to_image(np.array([[0.0, 0.25, 0.5, 0.75], [0.25, 0.5, 1.0, 0.625]]), (200, 100), (416, 416))
    np.testing.assert_allclose(b, [[0, 0, 100, 100], [50, 50, 200, 75]])
    # no letterbox: a stretch
    np.testing.assert_allclose(boxes_to_image(np.array([[0.1, 0.2, 0.3, 0.4]]), (200, 100), (416, 416),
                                              letterbox=False), [[20, 20, 60, 40]])
    # clipping
    np.testing.assert_allclose(boxes_to_image(np.array([[-0.1, 0.0, 1.2, 1.0]]), (200, 100), (416, 416)),
                               [[0, 0, 200, 100]])
    np.testing.assert_allclose(boxes_to_image(np.array([[-0.1, 0.0, 1.2, 1.0]]), (200, 100), (416, 416),
                                              clip=False), [[-20, -50, 240, 150]])


# --------------------------------------------------------------------------- detections
def _one_hot_head(entries, S=4, A=1, C=3, anchors=((1.0, 1.0),)):
    raw = np.full((1, S, S, A * (5 + C)), -20.0)
    for (row, col, a), (tx, ty, tw, th, to, logits) in entries.items():
        raw[0, row, col, a * (5 + C):(a + 1) * (5 + C)] = [tx, ty, tw, th, to] + list(logits)
    return decode_region(raw, anchors, C)


def test_detections_threshold_nms_names():
    big = math.log(2.0)  # 2 cells wide: boxes of neighbouring cells overlap (IoU 1/3)
    boxes, obj, probs = _one_hot_head({
        (1, 1, 0): (0, 0, big, big, 20.0, [5, 0, 0]),     # class 0, score ~0.987
        (1, 2, 0): (0, 0, big, big, logit(0.9), [5, 0, 0]),  # class 0, overlaps the first: IoU 1/3
        (2, 2, 0): (0, 0, big, big, logit(0.8), [0, 5, 0]),  # class 1: never suppressed by class 0
        (3, 0, 0): (0, 0, 0, 0, logit(0.3), [0, 0, 5]),    # below conf
    })
    dets = detections_from_head(boxes[0], obj[0], probs[0], (400, 400), (400, 400), conf=0.5, iou=0.3,
                                names=["cat", "dog", "kite"])
    assert [(d["class"], d["name"]) for d in dets] == [(0, "cat"), (1, "dog")]
    p = np.exp(5) / (np.exp(5) + 2)
    np.testing.assert_allclose([d["score"] for d in dets], [p, 0.8 * p], rtol=1e-6)
    np.testing.assert_allclose(dets[0]["box"], [50, 50, 250, 250])  # centre of cell (1,1), 2 cells wide
    assert all(isinstance(v, float) for d in dets for v in d["box"])
    # IoU 1/3 is not > 0.34: both class-0 boxes stay; max_det keeps the best
    dets = detections_from_head(boxes[0], obj[0], probs[0], (400, 400), (400, 400), conf=0.5, iou=0.34)
    assert [d["class"] for d in dets] == [0, 0, 1] and dets[0]["name"] == "0"
    assert len(detections_from_head(boxes[0], obj[0], probs[0], (400, 400), (400, 400), 0.5, 0.34, 2)) == 2
    # strict threshold: a score equal to conf is dropped
    s = dets[2]["score"]
    assert len(detections_from_head(boxes[0], obj[0], probs[0], (400, 400), (400, 400), conf=s, iou=0.34)) == 2
    assert detections_from_head(boxes[0], obj[0], probs[0], (400, 400), (400, 400), conf=0.999) == []


def test_detections_multi_label_like_darknet():
    boxes, obj, probs = _one_hot_head({(0, 0, 0): (0, 0, 0, 0, 20.0, [3, 3, -9])})
    dets = detections_from_head(boxes, obj, probs, (100, 100), (100, 100), conf=0.4)
    assert sorted(d["class"] for d in dets) == [0, 1]  # one box, two classes above conf


@pytest.mark.parametrize("kw,message", [({"conf": 1.5}, r"conf must be in \[0, 1\], received conf=1.5"),
                                        ({"iou": -0.1}, r"iou must be in \[0, 1\], received iou=-0.1"),
                                        ({"max_det": 0}, r"max_det must be a positive integer or None, received "
                                                         r"max_det=0")])
def test_detection_argument_errors(kw, message):
    boxes, obj, probs = _one_hot_head({})
    with pytest.raises(ValueError, match=message):
        detections_from_head(boxes, obj, probs, (10, 10), (10, 10), **kw)
