"""YOLOv2 head: assignment on hand-made cases, encode/decode round trip, and the loss
(value and gradient) against a PyTorch twin written here from the definition, plus float64
finite differences on a tiny case."""
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, numerical_grad  # noqa: E402

import strided as sd  # noqa: E402
from strided.detect.yolo import (YoloTargetError, assign_targets, decode, encode, grid_cells,  # noqa: E402
                                 yolo_loss)

ANCHORS = np.array([[1.0, 3.0], [3.0, 1.0], [2.0, 2.0]])   # grid cells: tall, wide, square


# --------------------------------------------------------------------------- assignment
def test_two_boxes_in_one_cell_with_different_shapes_get_different_anchors():
    # grid 4x4, both centres in cell (row 1, col 2): cx = 0.6 -> col 2, cy = 0.35 -> row 1
    tall = [0.6 - 0.1, 0.35 - 0.3, 0.6 + 0.1, 0.35 + 0.3]     # w 0.2 -> 0.8 cells, h 0.6 -> 2.4 cells
    wide = [0.6 - 0.3, 0.35 - 0.1, 0.6 + 0.3, 0.35 + 0.1]
    t = assign_targets([(np.array([tall, wide]), np.array([4, 7]))], ANCHORS, 4, num_classes=10)
    assert t.num_assigned == 2
    assert t.responsible[0, 1, 2, 0] and t.responsible[0, 1, 2, 1]
    assert t.classes[0, 1, 2, 0] == 4 and t.classes[0, 1, 2, 1] == 7
    np.testing.assert_allclose(t.offsets[0, 1, 2, 0], [0.6 * 4 - 2, 0.35 * 4 - 1])
    np.testing.assert_allclose(t.log_wh[0, 1, 2, 0], [np.log(0.8 / 1.0), np.log(2.4 / 3.0)])
    np.testing.assert_allclose(t.log_wh[0, 1, 2, 1], [np.log(2.4 / 3.0), np.log(0.8 / 1.0)])
    np.testing.assert_allclose(t.weight[0, 1, 2, :2], [2 - 0.2 * 0.6, 2 - 0.6 * 0.2])
    assert t.classes[~t.responsible].tolist() == [-1] * (t.responsible.size - 2)


def test_box_centre_on_cell_border_goes_right_and_down():
    # centre (0.5, 0.25) on a 4x4 grid: x = 2.0 cells, y = 1.0 cells -> cell (1, 2), offsets 0
    box = [0.3, 0.05, 0.7, 0.45]
    t = assign_targets([(np.array([box]), np.array([0]))], ANCHORS, (4, 4))
    (n, r, c, a), = zip(*np.nonzero(t.responsible))
    assert (n, r, c) == (0, 1, 2)
    assert a == 2      # 1.6 x 1.6 cells: IoU 2.56/4 = .64 with the square anchor, 1.6/3.96 = .40 with the others
    np.testing.assert_allclose(t.offsets[0, 1, 2, 2], [0.0, 0.0], atol=1e-12)
    # a centre at the image's right/bottom edge belongs to the last cell, offset 1
    rows, cols, oy, ox = grid_cells(np.array([[0.8, 0.8, 1.0, 1.0], [0.9, 0.9, 1.1, 1.1]]), (4, 5))
    assert rows.tolist() == [3, 3] and cols.tolist() == [4, 4]
    np.testing.assert_allclose(ox, [0.5, 1.0])


def test_same_slot_later_box_wins_and_degenerate_boxes_are_skipped():
    a = [0.1, 0.1, 0.2, 0.2]
    b = [0.12, 0.12, 0.22, 0.22]       # same cell, same shape as a
    empty = [0.5, 0.5, 0.5, 0.7]       # zero width
    t = assign_targets([(np.array([a, b, empty]), np.array([1, 2, 3])), (np.zeros((0, 4)), np.zeros(0, int))],
                       ANCHORS, 4)
    assert t.num_assigned == 1
    assert t.classes[t.responsible].tolist() == [2]
    assert len(t.boxes[0]) == 2 and len(t.boxes[1]) == 0


def test_assignment_errors():
    with pytest.raises(YoloTargetError, match=r"image 0 has 1 boxes but 2 classes"):
        assign_targets([(np.array([[0, 0, 1, 1]]), np.array([0, 1]))], ANCHORS, 4)
    with pytest.raises(YoloTargetError, match=r"classes must be in \[0, 3\), received \[5\]"):
        assign_targets([(np.array([[0, 0, 1, 1]]), np.array([5]))], ANCHORS, 4, num_classes=3)
    with pytest.raises(ValueError, match=r"\(K, 4\) rows of \[x1, y1, x2, y2\], received shape \(1, 3\)"):
        assign_targets([(np.array([[0, 0, 1]]), np.array([0]))], ANCHORS, 4)
    with pytest.raises(YoloTargetError, match=r"grid must be an int S or a pair"):
        assign_targets([], ANCHORS, "big")


# --------------------------------------------------------------------------- encode / decode
def random_boxes(rng, n):
    c = rng.uniform(0.05, 0.95, size=(n, 2))
    wh = rng.uniform(0.02, 0.6, size=(n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def place(t, rows, cols, best, N_shape, num_classes, rng):
    """A raw head (1, S_h, S_w, A*(5+C)) with the encoded values in their slots, noise elsewhere."""
    S_h, S_w, A = N_shape
    raw = rng.standard_normal((1, S_h, S_w, A, 5 + num_classes))
    raw[0, rows, cols, best, :4] = t
    return raw.reshape(1, S_h, S_w, -1)


@pytest.mark.parametrize("grid", [(4, 4), (3, 5)])
def test_decode_of_encode_gives_the_boxes_back(grid):
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 6)
    # one box per cell so no slot is shared: keep boxes whose cells differ
    rows, cols, _, _ = grid_cells(boxes, grid)
    _, first = np.unique(rows * 100 + cols, return_index=True)
    boxes = boxes[np.sort(first)]
    t, rows, cols, best = encode(boxes, ANCHORS, grid)
    raw = place(t, rows, cols, best, grid + (3,), 2, rng)
    decoded, _, _ = decode(raw, ANCHORS, 2)
    np.testing.assert_allclose(decoded[0, rows, cols, best], boxes, atol=1e-12)


def test_encode_box_on_cell_border_is_finite_and_decodes_within_eps():
    box = np.array([[0.4, 0.15, 0.6, 0.35]])              # centre exactly on a grid line
    t, rows, cols, best = encode(box, ANCHORS, 4)
    assert np.all(np.isfinite(t))
    raw = place(t, rows, cols, best, (4, 4, 3), 1, np.random.default_rng(1))
    decoded, _, _ = decode(raw, ANCHORS, 1)
    np.testing.assert_allclose(decoded[0, rows, cols, best], box, atol=1e-7)


def test_decode_formulas_by_hand():
    raw = np.zeros((1, 2, 3, 2 * 7))                     # grid 2x3, anchors 2, classes 2
    raw[0, 1, 2, 7:14] = [0.0, np.log(3.0), np.log(2.0), 0.0, np.log(4.0), 1.0, 1.0]  # anchor 1 of cell (1,2)
    anchors = [[1.0, 1.0], [0.5, 2.0]]
    boxes, obj, probs = decode(raw, anchors, 2)
    cx, cy = (2 + 0.5) / 3, (1 + 0.75) / 2                 # sigmoid(0) = .5, sigmoid(log 3) = .75
    w, h = 0.5 * 2 / 3, 2.0 * 1 / 2
    np.testing.assert_allclose(boxes[0, 1, 2, 1], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    assert obj[0, 1, 2, 1] == pytest.approx(0.8)
    np.testing.assert_allclose(probs[0, 1, 2, 1], [0.5, 0.5])
    np.testing.assert_allclose(boxes[0, 0, 0, 0], [0.5 / 3 - 1 / 6, 0.25 - 0.25, 0.5 / 3 + 1 / 6, 0.5])


# --------------------------------------------------------------------------- the loss vs a PyTorch twin
def torch_twin_loss(raw, gts, anchors, C, lambda_coord=1.0, lambda_obj=5.0, lambda_noobj=1.0, lambda_cls=1.0,
                    ignore_thresh=0.6):
    """The YOLOv2 loss written independently in PyTorch with plain loops for assignment."""
    N, S_h, S_w, _ = raw.shape
    A = len(anchors)
    p = raw.reshape(N, S_h, S_w, A, 5 + C)
    # -- assignment (loops, later box wins)
    slots = {}
    for n, (boxes, labels) in enumerate(gts):
        for box, label in zip(boxes, labels):
            x1, y1, x2, y2 = map(float, box)
            w, h = x2 - x1, y2 - y1
            if w <= 0 or h <= 0:
                continue
            cx, cy = (x1 + x2) / 2 * S_w, (y1 + y2) / 2 * S_h
            col, row = min(int(np.floor(cx)), S_w - 1), min(int(np.floor(cy)), S_h - 1)
            ious = []
            for aw, ah in anchors:
                inter = min(w * S_w, aw) * min(h * S_h, ah)
                ious.append(inter / (w * S_w * h * S_h + aw * ah - inter))
            a = int(np.argmax(ious))
            slots[(n, row, col, a)] = (cx - col, cy - row, np.log(w * S_w / anchors[a][0]),
                                       np.log(h * S_h / anchors[a][1]), int(label), 2 - w * h)
    # -- decoded boxes, ignore mask (no gradient)
    with torch.no_grad():
        cols = torch.arange(S_w, dtype=raw.dtype).view(1, 1, S_w, 1)
        rows = torch.arange(S_h, dtype=raw.dtype).view(1, S_h, 1, 1)
        anc = torch.tensor(anchors, dtype=raw.dtype)
        bx = (cols + torch.sigmoid(p[..., 0])) / S_w
        by = (rows + torch.sigmoid(p[..., 1])) / S_h
        bw = anc[:, 0] * torch.exp(p[..., 2]) / S_w
        bh = anc[:, 1] * torch.exp(p[..., 3]) / S_h
        ignore = torch.zeros(N, S_h, S_w, A, dtype=torch.bool)
        for n, (boxes, _) in enumerate(gts):
            for box in boxes:
                x1, y1, x2, y2 = map(float, box)
                if x2 <= x1 or y2 <= y1:
                    continue
                iw = (torch.minimum(bx + bw / 2, torch.tensor(x2)) - torch.maximum(bx - bw / 2, torch.tensor(x1))).clamp(min=0)
                ih = (torch.minimum(by + bh / 2, torch.tensor(y2)) - torch.maximum(by - bh / 2, torch.tensor(y1))).clamp(min=0)
                inter = iw * ih
                iou = inter / (bw * bh + (x2 - x1) * (y2 - y1) - inter)
                ignore[n] |= iou[n] > ignore_thresh
    resp = torch.zeros(N, S_h, S_w, A, dtype=torch.bool)
    for key in slots:
        resp[key] = True
    obj_logit = p[..., 4]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    obj = bce(obj_logit[resp], torch.ones_like(obj_logit[resp]), reduction="sum")
    noobj_sel = ~resp & ~ignore
    noobj = bce(obj_logit[noobj_sel], torch.zeros_like(obj_logit[noobj_sel]), reduction="sum")
    coord = raw.new_zeros(())
    cls = raw.new_zeros(())
    for (n, r, c, a), (ox, oy, lw, lh, label, weight) in slots.items():
        q = p[n, r, c, a]
        coord = coord + weight * ((torch.sigmoid(q[0]) - ox) ** 2 + (torch.sigmoid(q[1]) - oy) ** 2
                                  + (q[2] - lw) ** 2 + (q[3] - lh) ** 2)
        cls = cls + torch.nn.functional.cross_entropy(q[5:][None], torch.tensor([label]), reduction="sum")
    return (lambda_coord * coord + lambda_obj * obj + lambda_noobj * noobj + lambda_cls * cls) / N


def make_case(seed, N=3, grid=(4, 5), C=4, dtype=np.float64, close_to_gt=True):
    rng = np.random.default_rng(seed)
    gts = []
    for n in range(N):
        k = int(rng.integers(0, 5))
        gts.append((random_boxes(rng, k), rng.integers(0, C, size=k)))
    raw = rng.standard_normal((N,) + grid + (len(ANCHORS) * (5 + C),)) * 0.7
    if close_to_gt:   # put some predictions on top of the ground truths so the ignore rule acts
        for n, (boxes, _) in enumerate(gts):
            if len(boxes):
                t, rows, cols, best = encode(boxes, ANCHORS, grid)
                view = raw[n].reshape(grid + (len(ANCHORS), 5 + C))
                other = (best + 1) % len(ANCHORS)
                view[rows, cols, other, :4] = t + rng.normal(0, 0.05, t.shape)
    return raw.astype(dtype), gts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_value_and_gradient_equal_pytorch_twin(seed):
    raw, gts = make_case(seed)
    C = 4
    kw = dict(lambda_coord=2.0, lambda_obj=5.0, lambda_noobj=0.5, lambda_cls=1.5, ignore_thresh=0.5)
    targets = assign_targets(gts, ANCHORS, raw.shape[1:3], num_classes=C)
    x = sd.tensor(raw.copy(), requires_grad=True)
    loss, parts = yolo_loss(x, targets, ANCHORS, C, **kw)
    loss.backward()
    xt = torch.tensor(raw, requires_grad=True)
    ref = torch_twin_loss(xt, gts, ANCHORS.tolist(), C, **kw)
    ref.backward()
    assert loss.shape == ()
    assert_close(loss.data, ref.detach().numpy(), 1e-12, 1e-10, "loss")
    assert_close(x.grad, xt.grad.numpy(), 1e-12, 1e-10, "gradient")
    assert parts["loss"] == pytest.approx(float(ref.detach()), rel=1e-10)
    total = (2.0 * parts["coord"] + 5.0 * parts["obj"] + 0.5 * parts["noobj"] + 1.5 * parts["cls"])
    assert total == pytest.approx(parts["loss"], rel=1e-10)


def test_ignore_threshold_changes_the_loss_like_the_twin():
    raw, gts = make_case(4, close_to_gt=True)
    targets = assign_targets(gts, ANCHORS, raw.shape[1:3], 4)
    values = []
    for thresh in (0.3, 1.0):
        loss, parts = yolo_loss(sd.tensor(raw), targets, ANCHORS, 4, ignore_thresh=thresh)
        ref = torch_twin_loss(torch.tensor(raw), gts, ANCHORS.tolist(), 4, ignore_thresh=thresh)
        assert float(loss.item()) == pytest.approx(float(ref), rel=1e-10)
        values.append(parts["noobj"])
    assert values[0] < values[1]       # some predictions overlap a ground truth and are ignored at 0.3


def test_loss_float32_matches_twin():
    raw, gts = make_case(5, dtype=np.float32)
    targets = assign_targets(gts, ANCHORS, raw.shape[1:3], 4)
    x = sd.tensor(raw.copy(), requires_grad=True)
    loss, _ = yolo_loss(x, targets, ANCHORS, 4)
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    xt = torch.tensor(raw, requires_grad=True)
    ref = torch_twin_loss(xt, gts, ANCHORS.tolist(), 4)
    ref.backward()
    assert_close(loss.data, ref.detach().numpy(), 1e-5, 1e-5, "loss")
    assert_close(x.grad, xt.grad.numpy(), 1e-5, 1e-4, "gradient")


def test_loss_gradient_finite_differences_float64():
    raw, gts = make_case(6, N=2, grid=(2, 3), C=2)
    targets = assign_targets(gts, ANCHORS, (2, 3), 2)
    assert targets.num_assigned >= 2
    # keep the ignore rule away from its threshold so small steps never flip it
    from strided.detect.boxes import iou
    boxes, _, _ = decode(raw, ANCHORS, 2)
    for n, (gt, _) in enumerate(gts):
        if len(gt):
            best = iou(boxes[n].reshape(-1, 4), gt).max(axis=1)
            assert np.min(np.abs(best - 0.6)) > 1e-3

    def f(x):
        return yolo_loss(x, targets, ANCHORS, 2)[0]

    x = sd.tensor(raw.copy(), requires_grad=True)
    f(x).backward()
    num = numerical_grad(f, [raw], 0, np.ones(()))
    assert_close(x.grad, num, 1e-7, 1e-6, "finite differences")


def test_empty_targets_give_only_noobj_loss():
    raw = np.random.default_rng(7).standard_normal((2, 3, 3, 3 * 7))
    targets = assign_targets([(np.zeros((0, 4)), np.zeros(0, int))] * 2, ANCHORS, 3, 2)
    x = sd.tensor(raw, requires_grad=True)
    loss, parts = yolo_loss(x, targets, ANCHORS, 2)
    loss.backward()
    assert parts["coord"] == parts["obj"] == parts["cls"] == 0.0
    obj = raw.reshape(2, 3, 3, 3, 7)[..., 4]
    assert parts["noobj"] == pytest.approx(np.sum(np.log1p(np.exp(obj))) / 2, rel=1e-12)
    g = x.grad.reshape(2, 3, 3, 3, 7)
    np.testing.assert_allclose(g[..., 4], 1 / (1 + np.exp(-obj)) / 2, rtol=1e-12)
    assert np.all(g[..., :4] == 0) and np.all(g[..., 5:] == 0)


def test_loss_rejects_mismatched_head():
    targets = assign_targets([(np.zeros((0, 4)), np.zeros(0, int))], ANCHORS, 4, 2)
    with pytest.raises(YoloTargetError, match=r"must be \(N, S_h, S_w, 21\), received shape \(1, 4, 4, 20\)"):
        yolo_loss(sd.tensor(np.zeros((1, 4, 4, 20))), targets, ANCHORS, 2)
    with pytest.raises(YoloTargetError, match="grid or anchors differ"):
        yolo_loss(sd.tensor(np.zeros((1, 5, 4, 21))), targets, ANCHORS, 2)
