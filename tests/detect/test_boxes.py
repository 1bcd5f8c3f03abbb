"""strided.detect.boxes: the course's IoU numbers, touching and degenerate boxes, conversions,
and iou() against a plain Python loop on random boxes."""
import warnings

import numpy as np
import pytest

from strided.detect.boxes import (BoxShapeError, box_area, cxcywh_to_xyxy, iou, paired_iou,
                                  xywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh)
from strided.errors import StridedError


def python_iou(a, b):
    """IoU of two xyxy boxes written out with Python floats (the test's own reference)."""
    ax1, ay1, ax2, ay2 = map(float, a)
    bx1, by1, bx2, by2 = map(float, b)
    inter_w = min(ax2, bx2) - max(ax1, bx1)
    inter_h = min(ay2, by2) - max(ay1, by1)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    area_a = max(ax2 - ax1, 0.0) * max(ay2 - ay1, 0.0)
    area_b = max(bx2 - bx1, 0.0) * max(by2 - by1, 0.0)
    return inter / (area_a + area_b - inter)


def random_boxes(rng, n, scale=100.0):
    xy = rng.uniform(-scale, scale, (n, 2))
    wh = rng.uniform(0, scale, (n, 2)) * (rng.random((n, 1)) < 0.9)   # some zero-size boxes
    return np.concatenate([xy, xy + wh], axis=1)


def test_course_example_is_one_seventh():
    out = iou(np.array([[2, 1, 4, 3]]), np.array([[1, 2, 3, 4]]))
    assert out.shape == (1, 1)
    assert out[0, 0] == pytest.approx(1 / 7, abs=1e-15)


@pytest.mark.parametrize("a, b", [
    ((1, 2, 3, 4), (5, 6, 7, 8)),      # apart
    ((1, 1, 2, 2), (2, 1, 3, 2)),      # share an edge
    ((1, 1, 3, 3), (3, 3, 4, 4)),      # share a vertex
])
def test_touching_or_separate_boxes_give_zero(a, b):
    assert iou(np.array([a]), np.array([b]))[0, 0] == 0.0
    assert iou(np.array([b]), np.array([a]))[0, 0] == 0.0


def test_identical_and_nested_boxes():
    box = np.array([[1.0, 2.0, 5.0, 7.0]])
    assert iou(box, box)[0, 0] == 1.0
    inner = np.array([[2.0, 3.0, 4.0, 5.0]])    # area 4 inside area 20
    assert iou(box, inner)[0, 0] == pytest.approx(4 / 20)


def test_degenerate_boxes_give_zero_never_nan():
    degenerate = np.array([[1, 1, 1, 1], [0, 0, 0, 5], [0, 0, 5, 0], [3, 3, 1, 1]], dtype=np.float64)
    normal = np.array([[0, 0, 5, 5], [1, 1, 1, 1]], dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no division-by-zero RuntimeWarning either
        with np.errstate(all="raise"):
            out = iou(degenerate, normal)
            self_out = iou(degenerate, degenerate)
    assert out.shape == (4, 2)
    assert not np.isnan(out).any() and not np.isnan(self_out).any()
    assert (out == 0).all() and (self_out == 0).all()
    np.testing.assert_array_equal(box_area(degenerate), [0, 0, 0, 0])


def test_iou_matches_a_python_loop_on_random_boxes():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 37), random_boxes(rng, 23)
    a[5] = b[7]                                     # an identical pair
    out = iou(a, b)
    expected = np.array([[python_iou(x, y) for y in b] for x in a])
    assert out.shape == (37, 23) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=0)
    assert out[5, 7] == 1.0
    np.testing.assert_array_equal(iou(b, a), out.T)
    assert ((out >= 0) & (out <= 1)).all()


def test_paired_iou_is_the_diagonal():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 50), random_boxes(rng, 50)
    np.testing.assert_array_equal(paired_iou(a, b), np.diag(iou(a, b)))
    np.testing.assert_array_equal(paired_iou(a.reshape(5, 10, 4), b.reshape(5, 10, 4)),
                                  np.diag(iou(a, b)).reshape(5, 10))


def test_dtypes_and_empty_inputs():
    a32 = np.array([[0, 0, 2, 2]], np.float32)
    assert iou(a32, a32).dtype == np.float32
    assert iou(a32, a32.astype(np.float64)).dtype == np.float64
    assert iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]])).dtype == np.float64   # ints
    assert iou(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    assert iou(np.ones((2, 4)), []).shape == (2, 0)


def test_conversions_by_hand_and_round_trip():
    xyxy = np.array([[1.0, 2.0, 4.0, 8.0]])
    np.testing.assert_array_equal(xyxy_to_xywh(xyxy), [[1, 2, 3, 6]])
    np.testing.assert_array_equal(xyxy_to_cxcywh(xyxy), [[2.5, 5, 3, 6]])
    np.testing.assert_array_equal(xywh_to_xyxy([[1, 2, 3, 6]]), xyxy)
    np.testing.assert_array_equal(cxcywh_to_xyxy([[2.5, 5, 3, 6]]), xyxy)
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 24).reshape(2, 3, 4, 4)          # any leading shape
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes, rtol=0, atol=1e-12)
    assert xyxy_to_cxcywh(boxes).shape == boxes.shape
    assert box_area(boxes).shape == (2, 3, 4)
    np.testing.assert_allclose(box_area(xyxy), [18.0])


@pytest.mark.parametrize("bad", [np.zeros((3, 5)), np.zeros(4), np.zeros((2, 3, 4)), np.zeros((3,))])
def test_iou_rejects_wrong_shapes_naming_them(bad):
    with pytest.raises(BoxShapeError, match=r"received shape " + repr(bad.shape).replace("(", r"\(")
                       .replace(")", r"\)")):
        iou(bad, np.zeros((1, 4)))
    with pytest.raises(StridedError):
        iou(np.zeros((1, 4)), bad)


def test_conversions_reject_wrong_last_axis():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\); received shape \(2, 3\)"):
        xyxy_to_xywh(np.zeros((2, 3)))
    with pytest.raises(BoxShapeError, match="same shape"):
        paired_iou(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(BoxShapeError, match="numeric"):
        box_area(np.array([["a", "b", "c", "d"]]))
