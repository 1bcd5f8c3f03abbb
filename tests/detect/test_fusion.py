"""Weighted boxes fusion: equal to the reference implementation (ensemble-boxes, ZFTurbo's, a test-only
dependency) on random views of random objects, and hand-made cases worked out on paper."""
import numpy as np
import pytest

from strided.detect.boxes import BoxShapeError
from strided.detect.fusion import weighted_boxes_fusion


def views_of_objects(rng, num_sources, objects=6, classes=3):
    """Each source sees each object (or misses it) with its box jittered, plus a few false boxes;
    boxes normalised to [0, 1] as the reference expects, scores all distinct."""
    centre = rng.uniform(0.2, 0.8, (objects, 2))
    size = rng.uniform(0.05, 0.3, (objects, 2))
    label = rng.integers(0, classes, objects)
    boxes, scores, labels, sources = [], [], [], []
    for t in range(num_sources):
        seen = rng.random(objects) < 0.8
        c = centre[seen] + rng.normal(0, 0.01, (seen.sum(), 2))
        s = size[seen] * rng.uniform(0.9, 1.1, (seen.sum(), 2))
        extra = rng.integers(0, 4)
        c = np.concatenate([c, rng.uniform(0.2, 0.8, (extra, 2))])
        s = np.concatenate([s, rng.uniform(0.05, 0.3, (extra, 2))])
        b = np.clip(np.concatenate([c - s / 2, c + s / 2], 1), 0, 1)
        boxes.append(b)
        scores.append(rng.uniform(0.01, 1, len(b)))
        labels.append(np.concatenate([label[seen], rng.integers(0, classes, extra)]))
        sources.append(np.full(len(b), t))
    return boxes, scores, labels, sources


@pytest.mark.parametrize("seed", range(12))
def test_equals_the_reference_implementation(seed):
    reference = pytest.importorskip("ensemble_boxes")
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 6))
    boxes, scores, labels, sources = views_of_objects(rng, T)
    weights = rng.uniform(0.5, 2, T) if seed % 2 else None
    iou_thr = float(rng.choice([0.4, 0.55, 0.7]))
    skip = float(rng.choice([0.0, 0.2]))
    rb, rs, rl = reference.weighted_boxes_fusion(boxes, scores, labels, weights=weights, iou_thr=iou_thr,
                                                 skip_box_thr=skip)
    b, s, k = weighted_boxes_fusion(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels),
                                    np.concatenate(sources), num_sources=T, weights=weights,
                                    iou_threshold=iou_thr, skip_threshold=skip)
    assert len(b) == len(rb) and len(b) > 0
    np.testing.assert_allclose(s, rs, rtol=1e-6)
    np.testing.assert_array_equal(k, rl.astype(np.int64))
    np.testing.assert_allclose(b, rb, atol=1e-6)       # the reference sums the fused box in float32


def test_two_views_of_one_object_by_hand():
    # view 0: score 0.8 at [0, 0, 10, 10]; view 1: score 0.4 at [2, 0, 12, 10] (IoU 8/12 = 0.67)
    # fused: x1 = (0.8 * 0 + 0.4 * 2) / 1.2 = 2/3, x2 = (0.8 * 10 + 0.4 * 12) / 1.2 = 32/3; score mean 0.6
    b, s, k = weighted_boxes_fusion([[0, 0, 10, 10], [2, 0, 12, 10]], [0.8, 0.4], [1, 1], [0, 1])
    np.testing.assert_allclose(b, [[2 / 3, 0, 32 / 3, 10]])
    np.testing.assert_allclose(s, [0.6])
    assert k.tolist() == [1]
    # a third view that missed it: the score is scaled by the 2 of 3 views that found it
    _, s3, _ = weighted_boxes_fusion([[0, 0, 10, 10], [2, 0, 12, 10]], [0.8, 0.4], [1, 1], [0, 1], num_sources=3)
    np.testing.assert_allclose(s3, [0.6 * 2 / 3])
    # other classes never fuse; overlap not above the threshold starts a new cluster
    b, s, k = weighted_boxes_fusion([[0, 0, 10, 10], [2, 0, 12, 10]], [0.8, 0.4], [1, 2], [0, 1])
    assert k.tolist() == [1, 2] and s.tolist() == [0.4, 0.2]
    b, s, k = weighted_boxes_fusion([[0, 0, 10, 10], [2, 0, 12, 10]], [0.8, 0.4], [1, 1], [0, 1],
                                    iou_threshold=2 / 3)          # IoU exactly 2/3: not above, no fusion
    assert len(b) == 2


def test_one_source_only_rescales_nothing_and_keeps_every_separate_box():
    boxes = [[0, 0, 4, 4], [10, 10, 14, 14], [20, 20, 24, 24]]
    b, s, k = weighted_boxes_fusion(boxes, [0.3, 0.9, 0.5], [0, 0, 1], [0, 0, 0])
    np.testing.assert_allclose(b, [[10, 10, 14, 14], [20, 20, 24, 24], [0, 0, 4, 4]])
    np.testing.assert_allclose(s, [0.9, 0.5, 0.3])


def test_empty_skipped_and_degenerate_input():
    b, s, k = weighted_boxes_fusion(np.zeros((0, 4)), [], [], [], num_sources=2)
    assert b.shape == (0, 4) and s.shape == (0,) and k.shape == (0,)
    b, s, k = weighted_boxes_fusion([[0, 0, 4, 4], [1, 1, 1, 5]], [0.1, 0.9], [0, 0], [0, 1], skip_threshold=0.2)
    assert len(b) == 0                   # one box under the threshold, the other has no area


@pytest.mark.parametrize("kwargs, message", [
    (dict(scores=[0.5]), "scores must have shape (2,)"),
    (dict(sources=[0, 3], num_sources=2), "sources must be in [0, 2)"),
    (dict(weights=[1.0]), "weights must be 2 positive numbers"),
    (dict(weights=[1.0, 0.0]), "weights must be 2 positive numbers"),
    (dict(iou_threshold=1.5), "iou_threshold must be in [0, 1]"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = dict(boxes=[[0, 0, 4, 4], [1, 1, 5, 5]], scores=[0.5, 0.6], classes=[0, 0], sources=[0, 1])
    args.update(kwargs)
    with pytest.raises((ValueError, BoxShapeError)) as info:
        weighted_boxes_fusion(**args)
    assert message in str(info.value)
