"""Anchors: shape IoU by hand, k-means with the 1 - IoU distance on hand-made clusters and
against a plain-loop implementation written here."""
import numpy as np
import pytest

from strided.detect.anchors import AnchorError, check_anchors, kmeans_anchors, shape_iou
from strided.errors import StridedError


def test_shape_iou_by_hand():
    # (2, 4) vs (4, 2) centred: overlap 2x2 = 4, union 8 + 8 - 4 = 12
    iou = shape_iou([[2, 4], [1, 1]], [[4, 2], [2, 2], [1, 1]])
    expected = np.array([[4 / 12, 4 / 8, 1 / 8],
                         [1 / 8, 1 / 4, 1.0]])
    np.testing.assert_allclose(iou, expected, rtol=1e-12)


def test_shape_iou_zero_area_is_zero_not_nan():
    iou = shape_iou([[0, 0], [0, 3]], [[0, 0], [2, 2]])
    assert np.all(np.isfinite(iou))
    np.testing.assert_array_equal(iou, np.zeros((2, 2)))


def plain_kmeans(wh, k, iters, seed):
    """The same algorithm written as plain loops over boxes and anchors (the oracle)."""
    wh = [tuple(map(float, r)) for r in wh if r[0] > 0 and r[1] > 0]
    unique = sorted(set(wh))
    rng = np.random.default_rng(seed)

    def iou(a, b):
        inter = min(a[0], b[0]) * min(a[1], b[1])
        return inter / (a[0] * a[1] + b[0] * b[1] - inter)

    anchors = [list(unique[rng.integers(len(unique))])]   # k-means++ seeding
    while len(anchors) < k:
        d2 = np.array([(1 - max(iou(u, a) for a in anchors)) ** 2 for u in unique])
        anchors.append(list(unique[rng.choice(len(unique), p=d2 / d2.sum())]))

    def nearest(box):
        best, best_j = -1.0, 0
        for j, a in enumerate(anchors):
            v = iou(box, a)
            if v > best:
                best, best_j = v, j
        return best_j

    previous = None
    for _ in range(iters):
        assign = [nearest(b) for b in wh]
        if assign == previous:
            break
        previous = assign
        for j in range(k):
            members = [b for b, a in zip(wh, assign) if a == j]
            if members:
                anchors[j] = [sum(m[0] for m in members) / len(members), sum(m[1] for m in members) / len(members)]
            else:
                worst, worst_i = 2.0, 0
                for i, b in enumerate(wh):
                    v = max(iou(b, a) for a in anchors)
                    if v < worst:
                        worst, worst_i = v, i
                anchors[j] = list(wh[worst_i])
    mean_iou = sum(max(iou(b, a) for a in anchors) for b in wh) / len(wh)
    anchors.sort(key=lambda a: a[0] * a[1])
    return np.array(anchors), mean_iou


def test_kmeans_finds_hand_made_clusters():
    rng = np.random.default_rng(3)
    centres = np.array([[1.0, 1.0], [3.0, 1.5], [2.0, 6.0]])
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, size=(40, 2)) for c in centres])
    anchors, mean_iou = kmeans_anchors(wh, 3, seed=0)
    assert anchors.shape == (3, 2)
    np.testing.assert_allclose(anchors, centres, rtol=0.03)   # sorted by area: 1, 4.5, 12
    assert mean_iou > 0.9


def test_kmeans_sorted_by_area_and_mean_iou_matches_definition():
    rng = np.random.default_rng(1)
    wh = rng.uniform(0.2, 5.0, size=(200, 2))
    anchors, mean_iou = kmeans_anchors(wh, 5, seed=2)
    areas = anchors[:, 0] * anchors[:, 1]
    assert np.all(np.diff(areas) >= 0)
    best = [max(min(b[0], a[0]) * min(b[1], a[1]) / (b[0] * b[1] + a[0] * a[1] - min(b[0], a[0]) * min(b[1], a[1]))
                for a in anchors) for b in wh]
    assert mean_iou == pytest.approx(np.mean(best), rel=1e-12)


@pytest.mark.parametrize("seed,k", [(0, 2), (1, 5), (7, 9)])
def test_kmeans_equals_plain_loop(seed, k):
    rng = np.random.default_rng(100 + seed)
    # a mixture, some duplicates and a zero-area box (ignored by both)
    wh = np.concatenate([rng.uniform(0.1, 1, (30, 2)), rng.uniform(2, 6, (30, 2)), [[1, 1]] * 5, [[0, 2]]])
    anchors, mean_iou = kmeans_anchors(wh, k, iters=50, seed=seed)
    ref_anchors, ref_iou = plain_kmeans(wh, k, 50, seed)
    np.testing.assert_allclose(anchors, ref_anchors, rtol=1e-10)
    assert mean_iou == pytest.approx(ref_iou, rel=1e-10)


def test_kmeans_more_anchors_never_worse_on_same_data():
    rng = np.random.default_rng(5)
    wh = rng.lognormal(0, 0.6, size=(300, 2))
    ious = [kmeans_anchors(wh, k, seed=0)[1] for k in (1, 3, 9)]
    assert ious[0] < ious[1] < ious[2]


def test_kmeans_errors():
    with pytest.raises(AnchorError, match=r"k=4 anchors need at least 4 distinct"):
        kmeans_anchors([[1, 1], [2, 2], [2, 2]], 4)
    with pytest.raises(StridedError, match=r"k must be a positive int, received k=0"):
        kmeans_anchors([[1, 1]], 0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\); received shape \(3,\)"):
        kmeans_anchors([1, 2, 3], 1)
    with pytest.raises(AnchorError, match="anchors must have finite widths and heights > 0"):
        check_anchors([[1, 0]])
