"""strided.detect.suppression against a plain greedy Python loop (written here) on random boxes of
many sizes, heavy overlaps, score ties, exact-threshold IoUs, empty input and max_boxes; both
internal paths (candidate pairs and the per-kept-box loop); batched_nms per class."""
import numpy as np
import pytest

from strided.detect import suppression as nms_module
from strided.detect.boxes import BoxShapeError
from strided.detect.suppression import batched_nms, nms


def python_iou(a, b):
    ax1, ay1, ax2, ay2 = map(float, a)
    bx1, by1, bx2, by2 = map(float, b)
    inter = max(min(ax2, bx2) - max(ax1, bx1), 0.0) * max(min(ay2, by2) - max(ay1, by1), 0.0)
    union = max(ax2 - ax1, 0.0) * max(ay2 - ay1, 0.0) + max(bx2 - bx1, 0.0) * max(by2 - by1, 0.0) - inter
    return inter / union if union > 0 else 0.0


def greedy_nms(boxes, scores, threshold, max_boxes=None, classes=None):
    """The definition, as a plain loop: highest score first (Python's sort is stable, so
    equal scores keep input order); drop a box whose IoU with a kept box of the same
    class is > threshold."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept = []
    for i in order:
        if max_boxes is not None and len(kept) >= max_boxes:
            break
        if all(python_iou(boxes[i], boxes[k]) <= threshold
               for k in kept if classes is None or classes[k] == classes[i]):
            kept.append(i)
    return kept


def greedy_nms_rows(boxes, scores, threshold):
    """The same loop, with each candidate's IoU against all kept boxes in one NumPy row
    (for inputs too large for the pure-Python loop)."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept = []
    for i in order:
        if kept:
            k = boxes[kept]
            inter = (np.clip(np.minimum(k[:, 2], boxes[i, 2]) - np.maximum(k[:, 0], boxes[i, 0]), 0, None)
                     * np.clip(np.minimum(k[:, 3], boxes[i, 3]) - np.maximum(k[:, 1], boxes[i, 1]), 0, None))
            areas = np.clip(k[:, 2] - k[:, 0], 0, None) * np.clip(k[:, 3] - k[:, 1], 0, None)
            area_i = max(boxes[i, 2] - boxes[i, 0], 0) * max(boxes[i, 3] - boxes[i, 1], 0)
            union = areas + area_i - inter
            if (inter[union > 0] / union[union > 0] > threshold).any():
                continue
        kept.append(i)
    return kept


def make_boxes(rng, n, kind):
    if kind == "spread":        # many sizes, spread over a big image
        xy = rng.uniform(0, 1000, (n, 2))
        wh = np.exp(rng.uniform(np.log(2), np.log(300), (n, 2)))
    elif kind == "heavy":       # everything overlaps everything
        xy = rng.uniform(0, 30, (n, 2))
        wh = rng.uniform(20, 60, (n, 2))
    elif kind == "clusters":    # jittered copies of a few objects, like a detector's output
        centres = rng.uniform(0, 500, (8, 2))
        sizes = rng.uniform(20, 120, (8, 2))
        k = rng.integers(0, 8, n)
        wh = sizes[k] * rng.uniform(0.8, 1.25, (n, 2))
        xy = centres[k] + rng.normal(0, 6, (n, 2)) - wh / 2
    elif kind == "wide":        # flat boxes in a tall column: the y sweep has fewer candidates
        xy = np.c_[rng.uniform(0, 20, n), rng.uniform(-5000, 5000, n)]
        wh = np.c_[rng.uniform(100, 400, n), rng.uniform(1, 30, n)]
    elif kind == "grid":        # integer boxes: many exact IoU values (1/2, 1/3, ...) and ties
        xy = rng.integers(0, 6, (n, 2)).astype(float)
        wh = rng.integers(0, 5, (n, 2)).astype(float)
    else:
        raise AssertionError(kind)
    return np.concatenate([xy, xy + wh], axis=1)


KINDS = ["spread", "heavy", "clusters", "wide", "grid"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_equals_the_greedy_loop(kind, threshold):
    rng = np.random.default_rng(hash((kind, threshold)) % 2**32)
    n = 250
    boxes = make_boxes(rng, n, kind)
    scores = np.round(rng.random(n), 1)              # many ties in score
    kept = nms(boxes, scores, threshold)
    assert kept.dtype == np.int64
    assert kept.tolist() == greedy_nms(boxes, scores, threshold)


MODES = {
    "default": {},
    "pairs only": {"PAIRS_PER_BOX_CHEAP": 10**9},
    "loop only": {"PAIRS_PER_BOX_CHEAP": -1, "PAIR_BUDGET": -1},
    "loop one step, then pairs": {"PAIRS_PER_BOX_CHEAP": -1, "PAIR_COST": 0},
    "loop part way, then pairs": {"PAIRS_PER_BOX_CHEAP": -1, "PAIR_COST": 0.05, "LOOP_STEP_COST": 0},
}


def use_mode(monkeypatch, mode):
    for name, value in MODES[mode].items():
        monkeypatch.setattr(nms_module, name, value)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", KINDS)
def test_every_internal_path_agrees_with_the_loop(kind, mode, monkeypatch):
    rng = np.random.default_rng(7 + KINDS.index(kind))
    boxes = make_boxes(rng, 300, kind)
    scores = rng.random(300).astype(np.float32)
    expected = greedy_nms(boxes, scores, 0.45)
    use_mode(monkeypatch, mode)
    assert nms(boxes, scores, 0.45).tolist() == expected
    assert nms(boxes, scores, 0.45, max_boxes=40).tolist() == expected[:40]
    assert nms(boxes, scores, 0.45, max_boxes=7).tolist() == expected[:7]


def test_max_boxes_on_both_paths(monkeypatch):
    rng = np.random.default_rng(3)
    boxes, scores = make_boxes(rng, 400, "clusters"), rng.random(400)
    expected = greedy_nms(boxes, scores, 0.5)
    for max_boxes in (0, 1, 3, 33, 100, len(expected), 10_000):
        assert nms(boxes, scores, 0.5, max_boxes=max_boxes).tolist() == expected[:max_boxes]
    monkeypatch.setattr(nms_module, "LOOP_MAX_BOXES", 10**9)      # always the loop when bounded
    for max_boxes in (1, 50, 10_000):
        assert nms(boxes, scores, 0.5, max_boxes=max_boxes).tolist() == expected[:max_boxes]


def test_large_input_uses_strips_and_still_equals_the_loop():
    rng = np.random.default_rng(11)
    boxes = make_boxes(rng, 3000, "spread") + 1e5        # far from the origin, too
    scores = rng.random(3000)
    expected = greedy_nms_rows(boxes, scores, 0.5)
    assert len(expected) > 1500
    assert nms(boxes, scores, 0.5).tolist() == expected
    assert batched_nms(boxes, scores, np.zeros(3000, int), 0.5).tolist() == expected


def test_strictly_greater_suppresses_and_equal_keeps():
    # IoU([0,0,2,1], [1,0,3,1]) = 1/3;  IoU([0,0,2,2], [0,0,2,1]) = 1/2 exactly
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 1]], dtype=np.float64)
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]        # IoU == threshold: kept
    assert nms(boxes, np.array([0.9, 0.8]), 0.4999).tolist() == [0]
    # torchvision's semantics: indices sorted by decreasing score, suppressed ones gone
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [1, 1, 10, 10], [21, 21, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7, 0.95]), 0.5).tolist() == [3, 2]


def test_suppression_is_by_kept_boxes_only():
    # a chain: 0 suppresses 1, 1 would suppress 2, but 1 is gone, so 2 survives
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], float)
    assert nms(boxes, np.array([3.0, 2.0, 1.0]), 0.4).tolist() == [0, 2]


def test_ties_keep_input_order():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert nms(boxes, np.ones(3), 0.5).tolist() == [0]
    assert nms(boxes, np.ones(3), 1.0).tolist() == [0, 1, 2]
    assert nms(boxes, np.array([1.0, 2.0, 2.0]), 1.0).tolist() == [1, 2, 0]


def test_degenerate_boxes_are_never_suppressed_and_never_suppress():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 5, 5], [0, 0, 0, 10], [0, 0, 10, 10]], float)
    assert nms(boxes, np.array([1.0, 0.9, 0.8, 0.7]), 0.0).tolist() == [0, 1, 2]


def test_empty_and_single_inputs():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    assert nms([], [], 0.5).dtype == np.int64
    assert nms(np.array([[0, 0, 1, 1]]), np.array([0.3]), 0.5).tolist() == [0]
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).tolist() == []


@pytest.mark.parametrize("mode", ["default", "loop only", "loop part way, then pairs"])
@pytest.mark.parametrize("kind", ["clusters", "heavy", "grid"])
def test_batched_nms_is_nms_per_class(kind, mode, monkeypatch):
    rng = np.random.default_rng(5)
    boxes = make_boxes(rng, 300, kind)
    scores = np.round(rng.random(300), 2)
    classes = rng.integers(0, 4, 300) * 7 - 3                 # arbitrary integer labels
    expected = greedy_nms(boxes, scores, 0.5, classes=classes)
    kept = batched_nms(boxes, scores, classes, 0.5)
    assert kept.tolist() == expected
    assert batched_nms(boxes, scores, classes, 0.5, max_boxes=10).tolist() == expected[:10]
    use_mode(monkeypatch, mode)
    kept = batched_nms(boxes, scores, classes, 0.5)
    assert kept.tolist() == expected
    # the union of per-class nms, ordered by score (stable)
    union = np.concatenate([np.flatnonzero(classes == c)[nms(boxes[classes == c], scores[classes == c], 0.5)]
                            for c in np.unique(classes)])
    union = union[np.argsort(-scores[union], kind="stable")]
    assert sorted(union.tolist()) == sorted(kept.tolist())


def test_batched_nms_never_suppresses_across_classes():
    boxes = np.array([[0, 0, 10, 10]] * 4, float)
    kept = batched_nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 1, 0, 2]), 0.5)
    assert kept.tolist() == [0, 1, 3]


def test_errors_name_the_received_value():
    boxes, scores = np.zeros((3, 4)), np.zeros(3)
    with pytest.raises(ValueError, match=r"iou_threshold=1.5"):
        nms(boxes, scores, 1.5)
    with pytest.raises(ValueError, match=r"max_boxes=-1"):
        nms(boxes, scores, 0.5, max_boxes=-1)
    with pytest.raises(BoxShapeError, match=r"received shape \(2,\)"):
        nms(boxes, np.zeros(2), 0.5)
    with pytest.raises(BoxShapeError, match=r"received shape \(3, 5\)"):
        nms(np.zeros((3, 5)), scores, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        nms(boxes, np.array([0.1, np.nan, 0.2]), 0.5)
    with pytest.raises(ValueError, match=r"boxes\[1\]"):
        nms(np.array([[0, 0, 1, 1], [0, 0, np.inf, 1]]), np.zeros(2), 0.5)
    with pytest.raises(BoxShapeError, match="classes"):
        batched_nms(boxes, scores, np.zeros(2, int), 0.5)
    with pytest.raises(TypeError, match="integers"):
        batched_nms(boxes, scores, np.zeros(3), 0.5)


def test_huge_class_labels_and_coordinates():
    rng = np.random.default_rng(21)
    boxes = make_boxes(rng, 400, "spread") * 1e6           # a very wide span
    boxes[:5] = [[0, 0, 1e-3, 1e-3]] * 5                     # and tiny boxes far away
    scores = rng.random(400)
    classes = rng.integers(0, 3, 400) * 2**60 - 2**61
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == greedy_nms(boxes, scores, 0.5, classes=classes)
