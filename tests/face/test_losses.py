"""strided.face.losses: the course's triplet loss, online mining (batch-all, batch-hard,
semi-hard), contrastive loss and the siamese head -- values against hand-made numbers and
plain Python loops, gradients against PyTorch twins written here and float64 finite
differences."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
from strided.face.losses import (SiameseHead, batch_all_triplet_loss,  # noqa: E402
                                 batch_contrastive_loss, batch_hard_triplet_loss,
                                 batch_pairs, contrastive_loss, l2_normalize,
                                 pairwise_distances, semi_hard_triplet_loss, triplet_loss,
                                 triplet_mask)

torch = pytest.importorskip("torch")

LABELS = np.array([0, 1, 2, 0, 1, 2, 3, 0, 3, 1, 2, 3])   # 4 classes x 3, shuffled


def embeddings(n=12, d=5, seed=0, scale=0.6):
    return np.random.default_rng(seed).standard_normal((n, d)) * scale


# --------------------------------------------------------------------------- plain references
def loop_distance(a, b, squared):
    d2 = float(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return d2 if squared else np.sqrt(d2)


def loop_batch_all(e, y, margin, squared, reduction):
    losses, valid = [], 0
    n = len(y)
    for a in range(n):
        for p in range(n):
            for q in range(n):
                if a == p or y[a] != y[p] or y[a] == y[q]:
                    continue
                valid += 1
                losses.append(max(loop_distance(e[a], e[p], squared)
                                  - loop_distance(e[a], e[q], squared) + margin, 0.0))
    total = sum(losses)
    if reduction == "sum":
        return total
    count = valid if reduction == "mean" else sum(1 for v in losses if v > 0)
    return total / count if count else 0.0


def loop_batch_hard(e, y, margin, squared):
    out = []
    for a in range(len(y)):
        pos = [loop_distance(e[a], e[p], squared) for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [loop_distance(e[a], e[q], squared) for q in range(len(y)) if y[q] != y[a]]
        if pos and neg:
            out.append(max(max(pos) - min(neg) + margin, 0.0))
    return float(np.mean(out)) if out else 0.0


def loop_semi_hard(e, y, margin, squared):
    out = []
    n = len(y)
    for a in range(n):
        neg = [loop_distance(e[a], e[q], squared) for q in range(n) if y[q] != y[a]]
        if not neg:
            continue
        for p in range(n):
            if p == a or y[p] != y[a]:
                continue
            d_ap = loop_distance(e[a], e[p], squared)
            further = [v for v in neg if v > d_ap]
            d_an = min(further) if further else max(neg)
            out.append(max(d_ap - d_an + margin, 0.0))
    return float(np.mean(out)) if out else 0.0


# --------------------------------------------------------------------------- PyTorch twins
def torch_distances(e, squared):
    diff = e[:, None, :] - e[None, :, :]
    d2 = (diff ** 2).sum(-1)
    if squared:
        return d2
    eye = torch.eye(len(e), dtype=torch.bool)
    return torch.where(eye, torch.zeros_like(d2), torch.sqrt(torch.where(eye, torch.ones_like(d2), d2)))


def torch_batch_all(e, y, margin, squared, reduction):
    d = torch_distances(e, squared)
    mask = torch.tensor(triplet_mask_loop(y))
    losses = torch.relu(d[:, :, None] - d[:, None, :] + margin)[mask]
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean()
    return losses.sum() / (losses > 0).sum()


def torch_batch_hard(e, y, margin, squared):
    d = torch_distances(e, squared)
    y = torch.tensor(y)
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    hardest_pos = torch.where(pos, d, torch.full_like(d, -1e9)).max(dim=1).values
    hardest_neg = torch.where(~same, d, torch.full_like(d, 1e9)).min(dim=1).values
    keep = pos.any(1) & (~same).any(1)
    return torch.relu(hardest_pos - hardest_neg + margin)[keep].mean()


def torch_semi_hard(e, y, margin, squared):
    d = torch_distances(e, squared)
    terms = []
    for a in range(len(y)):
        negs = [q for q in range(len(y)) if y[q] != y[a]]
        for p in range(len(y)):
            if p == a or y[p] != y[a] or not negs:
                continue
            further = [q for q in negs if d[a, q] > d[a, p]]
            if further:
                q = min(further, key=lambda k: float(d[a, k].detach()))
            else:
                q = max(negs, key=lambda k: float(d[a, k].detach()))
            terms.append(torch.relu(d[a, p] - d[a, q] + margin))
    return torch.stack(terms).mean()


def triplet_mask_loop(y):
    n = len(y)
    m = np.zeros((n, n, n), bool)
    for a in range(n):
        for p in range(n):
            for q in range(n):
                m[a, p, q] = a != p and y[a] == y[p] and y[a] != y[q]
    return m


# --------------------------------------------------------------------------- triplet_loss
def test_triplet_loss_hand_made():
    # triplet 1: pos 1, neg 4 -> 1 - 4 + 0.2 < 0 -> 0; triplet 2: pos 4, neg 1 -> 3.2
    a = np.array([[0.0, 0.0], [0.0, 0.0]])
    p = np.array([[1.0, 0.0], [2.0, 0.0]])
    n = np.array([[0.0, 2.0], [1.0, 0.0]])
    loss = triplet_loss(sd.tensor(a), sd.tensor(p), sd.tensor(n), alpha=0.2)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(3.2)
    assert triplet_loss(a, p, n, alpha=5.0).item() == pytest.approx((1 - 4 + 5) + (4 - 1 + 5))


@pytest.mark.parametrize("alpha", [0.2, 0.8])
def test_triplet_loss_matches_torch(alpha):
    rng = np.random.default_rng(1)
    a, p, n = (rng.standard_normal((6, 4)) for _ in range(3))

    def torch_fn(a, p, n):
        return torch.clamp(((a - p) ** 2).sum(-1) - ((a - n) ** 2).sum(-1) + alpha, min=0).sum()

    ours, _ = torch_parity(lambda a, p, n: triplet_loss(a, p, n, alpha), torch_fn, [a, p, n])
    pos = ((a - p) ** 2).sum(1)
    neg = ((a - n) ** 2).sum(1)
    assert 0 < np.sum(pos - neg + alpha > 0) < 6         # both active and inactive triplets
    gradcheck(lambda a, p, n: triplet_loss(a, p, n, alpha), a, p, n)


def test_triplet_loss_float32_and_errors():
    a = np.ones((3, 2), np.float32)
    assert triplet_loss(a, a, a).dtype == np.float32
    with pytest.raises(ValueError, match="same shape"):
        triplet_loss(a, a[:2], a)
    with pytest.raises(ValueError, match="alpha"):
        triplet_loss(a, a, a, alpha=-1)
    with pytest.raises(ValueError, match="2-D"):
        triplet_loss(a[0], a[0], a[0])
    with pytest.raises(TypeError, match="float32 or float64"):
        triplet_loss(a.astype(int), a, a)


# --------------------------------------------------------------------------- distances
@pytest.mark.parametrize("squared", [True, False])
def test_pairwise_distances(squared):
    e = embeddings(7, 3)
    ours, _ = torch_parity(lambda x: pairwise_distances(x, squared), lambda x: torch_distances(x, squared),
                           [e], atol=1e-9, rtol=1e-9)
    from scipy.spatial.distance import cdist
    expected = cdist(e, e, "sqeuclidean" if squared else "euclidean")
    assert_close(ours, expected, 1e-10, 1e-10)
    assert np.all(np.diag(ours) == 0)
    gradcheck(lambda x: pairwise_distances(x, squared), e, atol=1e-5)


def test_pairwise_distances_duplicates_have_finite_gradient():
    e = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]])
    x = sd.tensor(e.copy(), requires_grad=True)
    pairwise_distances(x, squared=False).sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_l2_normalize():
    e = embeddings(5, 4)

    def torch_fn(x):
        return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-12)

    ours, _ = torch_parity(l2_normalize, torch_fn, [e])
    assert_close(np.linalg.norm(ours, axis=1), np.ones(5), 1e-10, 1e-10)


# --------------------------------------------------------------------------- mining
def test_triplet_mask_matches_loop():
    assert np.array_equal(triplet_mask(LABELS), triplet_mask_loop(LABELS))


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("reduction", ["mean_positive", "mean", "sum"])
def test_batch_all_matches_loop_and_torch(squared, reduction):
    e = embeddings()
    margin = 0.5
    value = batch_all_triplet_loss(sd.tensor(e), LABELS, margin, squared, reduction).item()
    assert value == pytest.approx(loop_batch_all(e, LABELS, margin, squared, reduction), rel=1e-10)
    torch_parity(lambda x: batch_all_triplet_loss(x, LABELS, margin, squared, reduction),
                 lambda x: torch_batch_all(x, LABELS, margin, squared, reduction), [e],
                 atol=1e-9, rtol=1e-9)


def test_batch_all_gradcheck():
    gradcheck(lambda x: batch_all_triplet_loss(x, LABELS, 0.5), embeddings(), atol=1e-5)


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_batch_hard_matches_loop_and_torch(squared, margin):
    e = embeddings(seed=2)
    value = batch_hard_triplet_loss(sd.tensor(e), LABELS, margin, squared).item()
    assert value == pytest.approx(loop_batch_hard(e, LABELS, margin, squared), rel=1e-10)
    assert value > 0
    torch_parity(lambda x: batch_hard_triplet_loss(x, LABELS, margin, squared),
                 lambda x: torch_batch_hard(x, LABELS, margin, squared), [e], atol=1e-9, rtol=1e-9)
    gradcheck(lambda x: batch_hard_triplet_loss(x, LABELS, margin, squared), e, atol=1e-5)


@pytest.mark.parametrize("squared", [True, False])
def test_semi_hard_matches_loop_and_torch(squared):
    e = embeddings(seed=3)
    margin = 0.3
    value = semi_hard_triplet_loss(sd.tensor(e), LABELS, margin, squared).item()
    assert value == pytest.approx(loop_semi_hard(e, LABELS, margin, squared), rel=1e-10)
    torch_parity(lambda x: semi_hard_triplet_loss(x, LABELS, margin, squared),
                 lambda x: torch_semi_hard(x, LABELS, margin, squared), [e], atol=1e-9, rtol=1e-9)
    gradcheck(lambda x: semi_hard_triplet_loss(x, LABELS, margin, squared), e, atol=1e-5)


def test_semi_hard_uses_both_rules():
    # points on a line: class 0 at 0 and 1, class 1 at 0.5 and 2.2; Euclidean, margin 1.5
    e = np.array([[0.0], [1.0], [0.5], [2.2]])
    y = np.array([0, 0, 1, 1])
    value = semi_hard_triplet_loss(e, y, margin=1.5, squared=False).item()
    # (0,1): d_ap 1, negatives 0.5, 2.2 -> closest further 2.2: 1 - 2.2 + 1.5 = 0.3
    # (1,0): d_ap 1, negatives 0.5, 1.2 -> 1.2: 1 - 1.2 + 1.5 = 1.3
    # (2,3): d_ap 1.7, negatives 0.5, 0.5 -> none further, furthest 0.5: 1.7 - 0.5 + 1.5 = 2.7
    # (3,2): d_ap 1.7, negatives 2.2, 1.2 -> 2.2: 1.7 - 2.2 + 1.5 = 1.0
    assert value == pytest.approx((0.3 + 1.3 + 2.7 + 1.0) / 4)
    assert value == pytest.approx(loop_semi_hard(e, y, 1.5, False))


def test_mining_without_valid_triplets_is_zero_and_differentiable():
    e = sd.tensor(embeddings(4, 3), requires_grad=True)
    for loss_fn in (batch_all_triplet_loss, batch_hard_triplet_loss, semi_hard_triplet_loss):
        for y in (np.zeros(4, int), np.arange(4)):          # one class / no positives
            e.zero_grad()
            loss = loss_fn(e, y)
            assert loss.item() == 0.0
            loss.backward()
            assert np.all(e.grad == 0)


def test_mining_float32_dtype_and_errors():
    e = embeddings().astype(np.float32)
    for loss_fn in (batch_all_triplet_loss, batch_hard_triplet_loss, semi_hard_triplet_loss):
        assert loss_fn(e, LABELS).dtype == np.float32
        with pytest.raises(ValueError, match=r"shape \(12,\)"):
            loss_fn(e, LABELS[:5])
        with pytest.raises(TypeError, match="integers"):
            loss_fn(e, LABELS.astype(float))
        with pytest.raises(ValueError, match="margin"):
            loss_fn(e, LABELS, margin=float("nan"))
    with pytest.raises(ValueError, match="reduction"):
        batch_all_triplet_loss(e, LABELS, reduction="max")


def test_batch_hard_separates_classes_when_minimised():
    """Gradient descent on the embeddings themselves drives the loss to 0."""
    e = sd.tensor(embeddings(seed=5), requires_grad=True)
    first = None
    for _ in range(300):
        e.zero_grad()
        loss = batch_hard_triplet_loss(e, LABELS, margin=0.5)
        first = loss.item() if first is None else first
        loss.backward()
        e.data -= 0.05 * e.grad
    assert first > 0.5 and loss.item() < 1e-3


# --------------------------------------------------------------------------- contrastive
def test_contrastive_hand_made():
    x1 = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    x2 = np.array([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])      # distances 5, 0.5, 5
    same = np.array([1, 0, 0])
    # 0.5 * 25 ; 0.5 * (1 - 0.5)^2 ; 0 (beyond the margin)
    assert contrastive_loss(x1, x2, same, margin=1.0, reduction="sum").item() == pytest.approx(12.5 + 0.125)
    assert contrastive_loss(x1, x2, same.astype(bool)).item() == pytest.approx((12.5 + 0.125) / 3)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_contrastive_matches_torch(reduction):
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((8, 3)) * 0.5, rng.standard_normal((8, 3)) * 0.5
    same = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    margin = 1.2

    def torch_fn(a, b):
        d = torch.norm(a - b, dim=1)
        s = torch.tensor(same, dtype=a.dtype)
        losses = 0.5 * (s * d ** 2 + (1 - s) * torch.clamp(margin - d, min=0) ** 2)
        return losses.sum() if reduction == "sum" else losses.mean()

    torch_parity(lambda a, b: contrastive_loss(a, b, same, margin, reduction), torch_fn, [x1, x2])
    gradcheck(lambda a, b: contrastive_loss(a, b, same, margin, reduction), x1, x2)


def test_contrastive_errors_and_identical_pair():
    x = sd.tensor(np.ones((2, 3)), requires_grad=True)
    contrastive_loss(x, np.ones((2, 3)), [1, 0]).backward()
    assert np.all(np.isfinite(x.grad))
    with pytest.raises(ValueError, match="same must be"):
        contrastive_loss(np.ones((2, 3)), np.ones((2, 3)), [1, 2])
    with pytest.raises(ValueError, match="same shape"):
        contrastive_loss(np.ones((2, 3)), np.ones((3, 3)), [1, 0])


def test_batch_pairs_and_batch_contrastive_loss():
    i, j, same = batch_pairs(LABELS)
    pairs = [(a, b) for a in range(12) for b in range(a + 1, 12)]
    assert list(zip(i, j)) == pairs and same.tolist() == [LABELS[a] == LABELS[b] for a, b in pairs]
    e = embeddings(seed=8)
    margin = 1.5
    terms = []
    for a, b in pairs:
        d = np.linalg.norm(e[a] - e[b])
        terms.append(0.5 * d * d if LABELS[a] == LABELS[b] else 0.5 * max(margin - d, 0.0) ** 2)
    assert batch_contrastive_loss(e, LABELS, margin).item() == pytest.approx(np.mean(terms), rel=1e-12)
    gradcheck(lambda x: batch_contrastive_loss(x, LABELS, margin), e)
    one = sd.tensor(e[:1], requires_grad=True)
    assert batch_contrastive_loss(one, LABELS[:1]).item() == 0.0


# --------------------------------------------------------------------------- siamese head
@pytest.mark.parametrize("kind", ["abs", "chi2"])
def test_siamese_head_matches_torch(kind):
    rng = np.random.default_rng(6)
    f1 = np.abs(rng.standard_normal((5, 4))) + 0.1          # non-negative, as after a ReLU
    f2 = np.abs(rng.standard_normal((5, 4))) + 0.1
    head = SiameseHead(4, kind=kind)
    w = rng.standard_normal((4, 1))
    b = rng.standard_normal(1)
    head.linear.weight.data = w.copy()
    head.linear.bias.data = b.copy()
    eps = head.eps

    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)

    def torch_fn(a, c):
        phi = (a - c).abs() if kind == "abs" else (a - c) ** 2 / (a + c + eps)
        return (phi @ tw + tb).reshape(-1)

    torch_parity(lambda a, c: head(a, c), torch_fn, [f1, f2])
    assert_close(head.linear.weight.grad, tw.grad.numpy(), 1e-10, 1e-10, "weight gradient")
    assert_close(head.linear.bias.grad, tb.grad.numpy(), 1e-10, 1e-10, "bias gradient")
    gradcheck(lambda a, c: head(a, c), f1, f2)


def test_siamese_head_batch_loss_matches_torch():
    rng = np.random.default_rng(9)
    head = SiameseHead(5)
    w, b = rng.standard_normal((5, 1)), rng.standard_normal(1)
    head.linear.weight.data, head.linear.bias.data = w.copy(), b.copy()
    i, j, same = batch_pairs(LABELS)

    def torch_fn(x):
        logits = ((x[i] - x[j]).abs() @ torch.tensor(w) + torch.tensor(b)).reshape(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(same, dtype=x.dtype))

    torch_parity(lambda x: head.batch_loss(x, LABELS), torch_fn, [embeddings(seed=9)])


def test_siamese_head_learns_same_or_not():
    """Logistic regression on |f1 - f2| separates same-class pairs of well-separated clusters."""
    import strided.functional as F
    from strided import optim
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4, 6)) * 3
    y1, y2 = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    y2[:100] = y1[:100]
    f1 = (centres[y1] + rng.standard_normal((200, 6)) * 0.3).astype(np.float32)
    f2 = (centres[y2] + rng.standard_normal((200, 6)) * 0.3).astype(np.float32)
    same = (y1 == y2).astype(np.float32)
    head = SiameseHead(6)
    opt = optim.Adam(head.parameters(), 0.05)
    for _ in range(200):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(head(f1, f2), same).backward()
        opt.step()
    accuracy = np.mean((head(f1, f2).data > 0) == (same > 0))
    assert accuracy > 0.97


def test_siamese_head_errors_and_repr():
    with pytest.raises(ValueError, match="kind"):
        SiameseHead(4, kind="cosine")
    with pytest.raises(ValueError, match="dim"):
        SiameseHead(0)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        SiameseHead(4)(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))
    assert "chi2" in repr(SiameseHead(4, kind="chi2"))
