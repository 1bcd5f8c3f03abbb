"""Localisation losses (value + gradient vs PyTorch twins and finite differences), head,
decoding and metrics (vs a plain per-image loop)."""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import away_from, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
from strided.detect.localization import (CourseLoss, LocalizationError, LocalizationHead,  # noqa: E402
                                         LocalizationLoss, LocalizationMetrics, course_loss, decode,
                                         localization_loss, localization_net, target_size)

C, K = 3, 2
D = 5 + C + 2 * K


def _batch(n=6, seed=0, positives=None):
    """Random outputs and valid targets ``(n, D)``; ``positives`` (bool mask) has objects."""
    rng = np.random.default_rng(seed)
    outputs = rng.standard_normal((n, D))
    pc = rng.random(n) < 0.6 if positives is None else np.asarray(positives)
    targets = np.zeros((n, D))
    targets[:, 0] = pc
    targets[pc, 1:5] = rng.uniform(0.2, 0.8, (pc.sum(), 4))
    targets[np.flatnonzero(pc), 5 + rng.integers(0, C, pc.sum())] = 1
    targets[pc, 5 + C:] = rng.uniform(0, 1, (pc.sum(), 2 * K))
    return outputs, targets


# ------------------------------------------------------------- the course's loss
def torch_course_loss(out, tgt):
    pc = tgt[:, 0]
    sq = (out - tgt) ** 2
    return (pc * sq.sum(1) + (1 - pc) * sq[:, 0]).mean()


def test_course_loss_by_hand():
    y = np.array([[1, .5, .5, .2, .3, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0]], np.float64)
    yhat = np.array([[.9, .4, .5, .2, .1, .1, .7, 0], [.2, 5, 5, 5, 5, 5, 5, 5]], np.float64)
    loss = course_loss(sd.tensor(yhat), y, num_classes=3)
    first = .01 + .01 + 0 + 0 + .04 + .01 + .09 + 0
    second = .04                          # only pc counts when there is no object
    assert abs(loss.item() - (first + second) / 2) < 1e-12


@pytest.mark.parametrize("positives", [None, [False] * 5, [True] * 5])
def test_course_loss_matches_torch(positives):
    outputs, targets = _batch(5, seed=1, positives=positives)
    torch_parity(lambda o, t: course_loss(o, t, C, K), torch_course_loss, [outputs, targets],
                 requires_grad=[True, False])


def test_course_loss_float32_matches_torch():
    outputs, targets = _batch(8, seed=2)
    torch_parity(lambda o, t: CourseLoss(C, K)(o, t), torch_course_loss, [outputs, targets],
                 requires_grad=[True, False], dtype=np.float32)


def test_course_loss_gradcheck():
    outputs, targets = _batch(4, seed=3)
    gradcheck(lambda o: course_loss(o, targets, C, K), outputs)


# ------------------------------------------------------------- the better loss
def torch_localization_loss(out, tgt, box_loss="smooth_l1", beta=0.05, w=(1.0, 1.0, 1.0, 1.0)):
    pc = tgt[:, 0]
    positives = torch.clamp(pc.sum(), min=1.0)
    objectness = TF.binary_cross_entropy_with_logits(out[:, 0], pc)
    labels = tgt[:, 5:5 + C].argmax(1)
    ce = TF.cross_entropy(out[:, 5:5 + C], labels, reduction="none")
    classes = (ce * pc).sum() / positives

    def rho(a, b):
        if box_loss == "smooth_l1":
            return TF.smooth_l1_loss(a, b, beta=beta, reduction="none")
        return TF.mse_loss(a, b, reduction="none")
    box = (rho(out[:, 1:5], tgt[:, 1:5]).sum(1) * pc).sum() / positives
    marks = (rho(out[:, 5 + C:], tgt[:, 5 + C:]).sum(1) * pc).sum() / positives
    return w[0] * objectness + w[1] * classes + w[2] * box + w[3] * marks


@pytest.mark.parametrize("box_loss", ["smooth_l1", "mse"])
@pytest.mark.parametrize("positives", [None, [False] * 6, [True] * 6])
def test_localization_loss_matches_torch(box_loss, positives):
    outputs, targets = _batch(6, seed=4, positives=positives)
    outputs[:, 1:5] = targets[:, 1:5] + np.random.default_rng(0).uniform(-0.2, 0.2, (6, 4))
    torch_parity(lambda o, t: localization_loss(o, t, C, K, box_loss=box_loss),
                 lambda o, t: torch_localization_loss(o, t, box_loss),
                 [outputs, targets], requires_grad=[True, False])


def test_localization_loss_weights_and_beta_match_torch():
    outputs, targets = _batch(7, seed=5)
    settings = dict(beta=0.3, w_obj=2.0, w_cls=0.5, w_box=3.0, w_landmarks=0.25)
    torch_parity(lambda o, t: LocalizationLoss(C, K, **settings)(o, t),
                 lambda o, t: torch_localization_loss(o, t, beta=0.3, w=(2.0, 0.5, 3.0, 0.25)),
                 [outputs, targets], requires_grad=[True, False], dtype=np.float32)


def test_localization_loss_gradcheck():
    outputs, targets = _batch(5, seed=6)
    beta = 0.1
    # keep box and landmark errors away from the smooth-L1 kinks at 0 and +-beta
    diff = outputs[:, 1:] - targets[:, 1:]
    outputs[:, 1:] = targets[:, 1:] + away_from(diff, (0.0, beta, -beta), margin=0.02)
    gradcheck(lambda o: localization_loss(o, targets, C, K, beta=beta), outputs)


def test_localization_loss_ignores_everything_but_pc_without_object():
    outputs, targets = _batch(4, seed=7, positives=[True, False, True, False])
    changed = outputs.copy()
    changed[1, 1:] += 10.0                      # an empty image: only pc may matter
    a = localization_loss(sd.tensor(outputs), targets, C, K).item()
    b = localization_loss(sd.tensor(changed), targets, C, K).item()
    assert a == pytest.approx(b, abs=1e-12)
    changed[0, 1:5] = targets[0, 1:5]            # an image with an object: the box matters
    exact = localization_loss(sd.tensor(changed), targets, C, K).item()
    changed[0, 2] += 0.5
    assert localization_loss(sd.tensor(changed), targets, C, K).item() > exact + 0.1


def test_loss_parts_are_reported():
    outputs, targets = _batch(6, seed=8)
    loss = LocalizationLoss(C, K)
    total = loss(sd.tensor(outputs), targets).item()
    p = loss.parts
    assert set(p) == {"objectness", "classes", "box", "landmarks"}
    assert total == pytest.approx(p["objectness"] + p["classes"] + p["box"] + p["landmarks"])


@pytest.mark.parametrize("call, words", [
    (lambda o, t: course_loss(o, t[:, :-1], C, K), "targets must have"),
    (lambda o, t: course_loss(o[:, :-1], t[:, :-1], C, K), f"(N, {D})"),
    (lambda o, t: localization_loss(o, t, C, K, box_loss="l2"), "box_loss='l2'"),
    (lambda o, t: localization_loss(o, np.where(np.arange(D) == 0, 0.5, t), C, K), "0.5"),
    (lambda o, t: course_loss(o, t, 0, K), "num_classes=0"),
])
def test_errors_name_the_value(call, words):
    outputs, targets = _batch(3)
    with pytest.raises(LocalizationError) as info:
        call(sd.tensor(outputs), targets)
    assert words in str(info.value)


# ------------------------------------------------------------- head and network
def test_head_and_net_shapes_and_training_step():
    sd.manual_seed(0)
    net = localization_net(num_classes=C, num_landmarks=K, input_size=32, width=4, hidden=16)
    x = sd.tensor(np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32))
    out = net(x)
    assert out.shape == (3, target_size(C, K))
    _, targets = _batch(3, seed=9)
    loss = localization_loss(out, targets.astype(np.float32), C, K)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    head = LocalizationHead(None, 4, 1)
    y = head(sd.tensor(np.zeros((2, 5), np.float32)))
    np.testing.assert_allclose(y.data[:, 1:5], 0.5)            # starts at the image centre
    np.testing.assert_allclose(y.data[:, 9:], 0.5)
    with pytest.raises(LocalizationError, match="input_size=30"):
        localization_net(input_size=30)


# ------------------------------------------------------------- decode and metrics
def test_decode_by_hand():
    v = np.zeros((1, D))
    v[0, :5] = [0.0, 0.5, 0.25, 0.5, 0.25]             # pc logit 0, centre (0.5, 0.25), h .5, w .25
    v[0, 5 + 2] = 3.0
    v[0, 5 + C:] = [0.1, 0.2, 0.3, 0.4]
    out = decode(v, C, K, image_size=64)
    assert out["score"][0] == pytest.approx(0.5) and out["label"][0] == 2
    np.testing.assert_allclose(out["boxes"][0], [24, 0, 40, 32])
    np.testing.assert_allclose(out["landmarks"][0], [[6.4, 12.8], [19.2, 25.6]])
    assert decode(v, C, K, logits=False)["score"][0] == 0.0


def test_metrics_against_a_plain_loop():
    rng = np.random.default_rng(10)
    outputs, targets = _batch(40, seed=10)
    outputs[:, 1:5] = targets[:, 1:5] + rng.normal(0, 0.08, (40, 4))
    outputs[:, 5 + C:] = targets[:, 5 + C:] + rng.normal(0, 0.05, (40, 2 * K))
    S = 50.0
    metrics = LocalizationMetrics(C, K, image_size=S)
    metrics.update(outputs[:25], targets[:25])
    metrics.update(sd.tensor(outputs[25:]), targets[25:])
    got = metrics.compute()

    presence = cls = iou50 = 0
    iou_sum, errors, positives = 0.0, [], 0
    for o, t in zip(outputs, targets):
        presence += (1 / (1 + np.exp(-o[0])) > 0.5) == (t[0] == 1)
        if t[0] != 1:
            continue
        positives += 1
        cls += np.argmax(o[5:5 + C]) == np.argmax(t[5:5 + C])

        def corners(v):
            cx, cy, h, w = v[1:5] * S
            return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        a, b = corners(o), corners(t)
        iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
        iou = iw * ih / union
        iou_sum += iou
        iou50 += iou > 0.5
        for k in range(K):
            dx = (o[5 + C + 2 * k] - t[5 + C + 2 * k]) * S
            dy = (o[5 + C + 2 * k + 1] - t[5 + C + 2 * k + 1]) * S
            errors.append(np.hypot(dx, dy))
    assert got["presence_accuracy"] == pytest.approx(presence / 40)
    assert got["class_accuracy"] == pytest.approx(cls / positives)
    assert got["iou50_rate"] == pytest.approx(iou50 / positives)
    assert got["mean_iou"] == pytest.approx(iou_sum / positives)
    assert got["landmark_error_px"] == pytest.approx(np.mean(errors))
    assert 0 < got["iou50_rate"] < 1                    # the case is not trivial
    metrics.reset()
    assert np.isnan(metrics.compute()["class_accuracy"])
