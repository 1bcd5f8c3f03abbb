"""strided.course YOLO functions (course 4, week 3): the course's worked IoU numbers, and each
loop reference against the fast strided.detect versions (or a loop over grid cells) on
random inputs of the course's shapes."""
import numpy as np
import pytest

from strided import course
from strided.detect.boxes import cxcywh_to_xyxy
from strided.detect.boxes import iou as fast_iou
from strided.detect.suppression import nms

GRID = (19, 19, 5)


def course_outputs(seed, classes=80):
    """Random head outputs in the course's shapes, with a few confident boxes."""
    rng = np.random.default_rng(seed)
    box_xy = rng.uniform(0, 1, GRID + (2,))
    box_wh = rng.uniform(0.02, 0.4, GRID + (2,))
    box_confidence = rng.uniform(0, 1, GRID + (1,)) ** 3
    logits = rng.normal(0, 3, GRID + (classes,))
    box_class_probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return box_xy, box_wh, box_confidence, box_class_probs


# --------------------------------------------------------------------------- iou
def test_iou_course_numbers():
    assert course.iou((2, 1, 4, 3), (1, 2, 3, 4)) == pytest.approx(1 / 7, abs=1e-12)
    assert course.iou((1, 2, 3, 4), (5, 6, 7, 8)) == 0        # no intersection
    assert course.iou((1, 1, 2, 2), (2, 2, 3, 3)) == 0        # intersect at vertices only
    assert course.iou((1, 1, 3, 3), (2, 3, 3, 4)) == 0        # intersect at an edge only
    assert course.iou((1, 1, 3, 3), (1, 1, 3, 3)) == 1        # identical
    assert course.iou((1, 1, 1, 1), (1, 1, 1, 1)) == 0        # degenerate: 0, not a division by zero


def test_iou_matches_the_fast_matrix():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 10, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 5, (30, 2))], axis=1)
    matrix = fast_iou(boxes, boxes)
    loops = np.array([[course.iou(a, b) for b in boxes] for a in boxes])
    np.testing.assert_allclose(loops, matrix, rtol=1e-12, atol=0)


def test_iou_rejects_a_box_that_is_not_four_numbers():
    with pytest.raises(ValueError, match=r"box2 must be 4 numbers.*received shape \(3,\)"):
        course.iou((0, 0, 1, 1), (0, 0, 1))


# --------------------------------------------------------------------------- filter
def test_yolo_filter_boxes_against_a_loop_over_cells():
    box_xy, box_wh, box_confidence, box_class_probs = course_outputs(1)
    boxes = np.random.default_rng(2).normal(size=GRID + (4,))
    scores, kept_boxes, classes = course.yolo_filter_boxes(boxes, box_confidence, box_class_probs, threshold=0.3)
    expected = []
    for index in np.ndindex(*GRID):                      # row-major, like tf.boolean_mask
        products = [box_confidence[index][0] * p for p in box_class_probs[index]]
        best = max(range(len(products)), key=lambda c: (products[c], -c))
        if products[best] >= 0.3:
            expected.append((products[best], boxes[index], best))
    assert 0 < len(expected) < np.prod(GRID)
    np.testing.assert_allclose(scores, [e[0] for e in expected], rtol=1e-15)
    np.testing.assert_array_equal(kept_boxes, [e[1] for e in expected])
    np.testing.assert_array_equal(classes, [e[2] for e in expected])
    assert scores.shape == (len(expected),) and kept_boxes.shape == (len(expected), 4)


def test_yolo_filter_boxes_keeps_a_score_equal_to_the_threshold():
    conf = np.array([[0.5], [0.5]])
    probs = np.array([[0.2, 0.8], [0.1, 0.7]])         # best scores 0.4 and 0.35
    scores, boxes, classes = course.yolo_filter_boxes(np.eye(2, 4), conf, probs, threshold=0.4)
    assert scores.tolist() == [0.4] and classes.tolist() == [1]
    with pytest.raises(ValueError, match=r"received boxes \(2, 3\)"):
        course.yolo_filter_boxes(np.zeros((2, 3)), conf, probs)


# --------------------------------------------------------------------------- nms
@pytest.mark.parametrize("max_boxes, iou_threshold", [(10, 0.5), (3, 0.3), (100, 0.7), (0, 0.5)])
def test_yolo_non_max_suppression_matches_fast_nms(max_boxes, iou_threshold):
    rng = np.random.default_rng(max_boxes)
    xy = rng.uniform(0, 100, (120, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (120, 2))], axis=1)
    scores = np.round(rng.random(120), 2)              # ties
    classes = rng.integers(0, 3, 120)
    s, b, c = course.yolo_non_max_suppression(scores, boxes, classes, max_boxes, iou_threshold)
    kept = nms(boxes, scores, iou_threshold, max_boxes=max_boxes)      # class-agnostic, as the course
    np.testing.assert_array_equal(s, scores[kept])
    np.testing.assert_array_equal(b, boxes[kept])
    np.testing.assert_array_equal(c, classes[kept])
    assert len(s) <= max_boxes


def test_yolo_non_max_suppression_ignores_classes_like_the_course():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10]], float)
    s, b, c = course.yolo_non_max_suppression(np.array([0.9, 0.8]), boxes, np.array([0, 1]))
    assert c.tolist() == [0]


# --------------------------------------------------------------------------- corners, scale, eval
def test_yolo_boxes_to_corners_is_cxcywh_to_xyxy_in_yx_order():
    box_xy, box_wh, _, _ = course_outputs(3)
    corners = course.yolo_boxes_to_corners(box_xy, box_wh)
    xyxy = cxcywh_to_xyxy(np.concatenate([box_xy, box_wh], axis=-1))
    assert corners.shape == GRID + (4,)
    np.testing.assert_allclose(corners, xyxy[..., [1, 0, 3, 2]], rtol=0, atol=1e-15)
    assert course.yolo_boxes_to_corners([0.5, 0.5], [0.2, 0.4]).tolist() == [0.3, 0.4, 0.7, 0.6]


def test_scale_boxes():
    out = course.scale_boxes(np.array([[0.5, 0.25, 1.0, 1.0]]), (720., 1280.))
    np.testing.assert_array_equal(out, [[360, 320, 720, 1280]])


@pytest.mark.parametrize("seed", [4, 5])
def test_yolo_eval_matches_the_fast_pipeline(seed):
    outputs = course_outputs(seed)
    scores, boxes, classes = course.yolo_eval(outputs, score_threshold=0.3, max_boxes=10, iou_threshold=0.5)
    # the same steps with strided.detect: xyxy boxes in pixels, score filter, class-agnostic nms
    box_xy, box_wh, box_confidence, box_class_probs = (o.reshape(-1, o.shape[-1]) for o in outputs)
    xyxy = cxcywh_to_xyxy(np.concatenate([box_xy, box_wh], axis=1)) * [1280., 720., 1280., 720.]
    box_scores = box_confidence * box_class_probs
    best, best_class = box_scores.max(1), box_scores.argmax(1)
    keep = np.flatnonzero(best >= 0.3)
    kept = keep[nms(xyxy[keep], best[keep], 0.5, max_boxes=10)]
    assert len(kept) == 10                        # enough boxes to exercise max_boxes
    np.testing.assert_array_equal(scores, best[kept])
    np.testing.assert_array_equal(classes, best_class[kept])
    np.testing.assert_allclose(boxes, xyxy[kept][:, [1, 0, 3, 2]], rtol=1e-12, atol=1e-9)


def test_yolo_eval_defaults_are_the_courses():
    import inspect
    sig = inspect.signature(course.yolo_eval)
    assert sig.parameters["image_shape"].default == (720., 1280.)
    assert sig.parameters["max_boxes"].default == 10
    assert sig.parameters["score_threshold"].default == .6
    assert sig.parameters["iou_threshold"].default == .5
    assert inspect.signature(course.yolo_filter_boxes).parameters["threshold"].default == .6
    nms_sig = inspect.signature(course.yolo_non_max_suppression)
    assert (nms_sig.parameters["max_boxes"].default, nms_sig.parameters["iou_threshold"].default) == (10, 0.5)
