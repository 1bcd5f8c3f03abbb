"""Losses that learn an embedding ``f(x)`` where distance means "same person or not".

Every loss here is built from the engine's differentiable ops (``strided.Tensor``), so
``loss.backward()`` reaches the network that made the embeddings.

* :func:`triplet_loss` -- the course's triplet loss on given ``(A, P, N)`` triplets::

      L = sum_i max(||f(A_i) - f(P_i)||^2 - ||f(A_i) - f(N_i)||^2 + alpha, 0)

* online mining from one batch of embeddings and integer labels (the batch holds several
  images per class, e.g. from :class:`strided.data.sampler.PKSampler`):
  :func:`batch_all_triplet_loss` (every valid triplet), :func:`batch_hard_triplet_loss`
  (hardest positive and hardest negative per anchor, Hermans et al. 2017) and
  :func:`semi_hard_triplet_loss` (FaceNet's semi-hard negatives, Schroff et al. 2015).
  Their signature ``loss(embeddings, labels)`` is a Trainer ``loss_fn(outputs, targets)``.
* :func:`contrastive_loss` -- Hadsell, Chopra & LeCun 2006, on pairs
  (:func:`batch_contrastive_loss`: over every pair of a batch).
* :class:`SiameseHead` -- the course's binary "same person?" head: logistic regression on
  ``|f(x1) - f(x2)|`` or on the chi-square similarity ``(f(x1) - f(x2))^2 / (f(x1) + f(x2))``
  (:meth:`SiameseHead.batch_loss`: over every pair of a batch).

Distances in the mining losses are squared Euclidean by default (as the course's triplet
loss); ``squared=False`` uses the Euclidean distance.

>>> emb = l2_normalize(model(x))                       # (B, D), B = P * K images
>>> loss = batch_hard_triplet_loss(emb, y, margin=0.2)
>>> loss.backward()
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..functional.utils import float_tensor
from ..tensor import Tensor, as_array, where

__all__ = ["triplet_loss", "l2_normalize", "pairwise_distances", "triplet_mask",
           "batch_all_triplet_loss", "batch_hard_triplet_loss", "semi_hard_triplet_loss",
           "contrastive_loss", "batch_pairs", "batch_contrastive_loss", "SiameseHead", "REDUCTIONS"]

REDUCTIONS = ("mean_positive", "mean", "sum")


# --------------------------------------------------------------------------- checks
def _embeddings(x, name: str) -> Tensor:
    x = float_tensor(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (batch, features), received shape {tuple(x.shape)}")
    return x


def _labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(as_array(labels))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (one class id per embedding), "
                        f"received dtype={labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one per embedding, "
                         f"received shape {labels.shape}")
    return labels


def _margin(margin, name: str = "margin") -> float:
    margin = float(margin)
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"{name} must be a finite number >= 0, received {name}={margin!r}")
    return margin


def _zero(like: Tensor) -> Tensor:
    """A 0 that stays in the graph (so ``backward()`` works and gives zero gradients)."""
    return (like * 0.0).sum()


# --------------------------------------------------------------------------- the course
def triplet_loss(anchor, positive, negative, alpha: float = 0.2) -> Tensor:
    """The course's triplet loss, summed over the batch.

    ``anchor``, ``positive``, ``negative``: embeddings ``(N, D)`` (``f(A)``, ``f(P)``,
    ``f(N)``; P is the same person as A, N another one)::

        pos_dist_i = ||f(A_i) - f(P_i)||^2,   neg_dist_i = ||f(A_i) - f(N_i)||^2
        L = sum_i max(pos_dist_i - neg_dist_i + alpha, 0)

    Returns a scalar tensor.  A triplet already ``alpha`` further from N than from P
    contributes 0 (and no gradient).
    """
    a = _embeddings(anchor, "anchor")
    p = _embeddings(positive, "positive")
    n = _embeddings(negative, "negative")
    if p.shape != a.shape or n.shape != a.shape:
        raise ValueError(f"anchor, positive and negative must have the same shape (N, D), received "
                         f"{tuple(a.shape)}, {tuple(p.shape)}, {tuple(n.shape)}")
    alpha = _margin(alpha, "alpha")
    pos_dist = ((a - p) ** 2).sum(axis=-1)
    neg_dist = ((a - n) ** 2).sum(axis=-1)
    return F.relu(pos_dist - neg_dist + alpha).sum()


def l2_normalize(x, axis: int = -1, eps: float = 1e-12) -> Tensor:
    """``x / sqrt(sum(x^2, axis) + eps)``: embeddings on the unit sphere (FaceNet), so a
    margin such as 0.2 has a fixed meaning (squared distances lie in [0, 4])."""
    x = float_tensor(x, "x")
    return x / ((x * x).sum(axis=axis, keepdims=True) + eps).sqrt()


def pairwise_distances(embeddings, squared: bool = True) -> Tensor:
    """``D[i, j]`` = distance between rows ``i`` and ``j`` of ``embeddings`` ``(N, D)``.

    Computed with one matrix product, ``||a||^2 - 2 a.b + ||b||^2``, clamped at 0 (rounding)
    and with an exact 0 diagonal.  ``squared=False`` takes the square root; where a
    distance is 0 its gradient is taken as 0 (the square root has none there).
    """
    e = _embeddings(embeddings, "embeddings")
    n = e.shape[0]
    sq = (e * e).sum(axis=1, keepdims=True)                       # (N, 1)
    d2 = F.relu(sq - 2.0 * (e @ e.T) + sq.T)
    d2 = d2 * (1.0 - np.eye(n, dtype=e.dtype))
    if squared:
        return d2
    zero = d2.data <= 0
    return where(zero, np.zeros((), e.dtype), (d2 + zero.astype(e.dtype)).sqrt())


def triplet_mask(labels) -> np.ndarray:
    """``mask[a, p, n]`` (bool ``(N, N, N)``): ``a != p``, ``label[a] == label[p]`` and
    ``label[a] != label[n]``: the valid triplets of a batch."""
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    return positive[:, :, None] & ~same[:, None, :]


def _prepare(embeddings, labels, margin, squared):
    e = _embeddings(embeddings, "embeddings")
    y = _labels(labels, e.shape[0])
    return e, y, _margin(margin), pairwise_distances(e, squared=squared)


# --------------------------------------------------------------------------- online mining
def batch_all_triplet_loss(embeddings, labels, margin: float = 0.2, squared: bool = True,
                           reduction: str = "mean_positive") -> Tensor:
    """Triplet loss over EVERY valid triplet ``(a, p, n)`` of the batch.

    ``embeddings`` ``(N, D)``, ``labels`` ``(N,)`` integers.  For each valid triplet
    (:func:`triplet_mask`) ``l = max(D[a, p] - D[a, n] + margin, 0)``.  ``reduction``:
    ``"mean_positive"`` (default) the mean over the triplets with ``l > 0`` (the easy ones
    would dilute the mean to 0 as training goes on), ``"mean"`` over all valid triplets,
    ``"sum"``.  A batch without valid (or positive) triplets gives 0.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, received reduction={reduction!r}")
    e, y, margin, d = _prepare(embeddings, labels, margin, squared)
    n = e.shape[0]
    mask = triplet_mask(y)
    losses = F.relu(d.reshape(n, n, 1) - d.reshape(n, 1, n) + margin) * mask.astype(e.dtype)
    total = losses.sum()
    if reduction == "sum":
        return total
    count = int(mask.sum()) if reduction == "mean" else int((losses.data > 0).sum())
    return total / float(count) if count else _zero(total)


def batch_hard_triplet_loss(embeddings, labels, margin: float = 0.2,
                            squared: bool = True) -> Tensor:
    """Batch-hard triplet loss (Hermans, Beyer & Leibe 2017).

    For each anchor ``a``: its hardest positive ``p* = argmax_{p != a, y_p = y_a} D[a, p]``
    and hardest negative ``n* = argmin_{y_n != y_a} D[a, n]``; the loss is the mean over
    anchors of ``max(D[a, p*] - D[a, n*] + margin, 0)``.  Anchors without a positive or
    without a negative in the batch are left out (0 if none is left).  The choice of
    ``p*`` and ``n*`` is not differentiated; the gradient flows through the chosen distances.
    """
    e, y, margin, d = _prepare(embeddings, labels, margin, squared)
    n = e.shape[0]
    same = y[:, None] == y[None, :]
    positive = same & ~np.eye(n, dtype=bool)
    negative = ~same
    anchors = np.flatnonzero(positive.any(axis=1) & negative.any(axis=1))
    if anchors.size == 0:
        return _zero(d)
    dist = d.data[anchors]
    hardest_p = np.where(positive[anchors], dist, -np.inf).argmax(axis=1)
    hardest_n = np.where(negative[anchors], dist, np.inf).argmin(axis=1)
    return F.relu(d[anchors, hardest_p] - d[anchors, hardest_n] + margin).mean()


def semi_hard_triplet_loss(embeddings, labels, margin: float = 0.2,
                           squared: bool = True) -> Tensor:
    """FaceNet's semi-hard triplet loss (Schroff, Kalenichenko & Philbin 2015).

    For every positive pair ``(a, p)`` (``a != p``, same label) the negative is the
    closest one FURTHER than the positive: ``n* = argmin {D[a, n] : y_n != y_a,
    D[a, n] > D[a, p]}``; when no negative is further than ``p``, the furthest negative
    (the rule of ``tfa.losses.TripletSemiHardLoss``).  The loss is the mean over positive
    pairs of ``max(D[a, p] - D[a, n*] + margin, 0)``; pairs whose anchor has no negative
    in the batch are left out (0 if none is left).
    """
    e, y, margin, d = _prepare(embeddings, labels, margin, squared)
    n = e.shape[0]
    same = y[:, None] == y[None, :]
    negative = ~same
    a_idx, p_idx = np.nonzero(same & ~np.eye(n, dtype=bool))
    keep = negative[a_idx].any(axis=1)
    a_idx, p_idx = a_idx[keep], p_idx[keep]
    if a_idx.size == 0:
        return _zero(d)
    dist = d.data[a_idx]                                          # (pairs, N): D[a, :]
    d_ap = d.data[a_idx, p_idx][:, None]
    is_neg = negative[a_idx]
    semi_hard = is_neg & (dist > d_ap)
    closest_further = np.where(semi_hard, dist, np.inf).argmin(axis=1)
    furthest = np.where(is_neg, dist, -np.inf).argmax(axis=1)
    chosen = np.where(semi_hard.any(axis=1), closest_further, furthest)
    return F.relu(d[a_idx, p_idx] - d[a_idx, chosen] + margin).mean()


# --------------------------------------------------------------------------- pairs
def contrastive_loss(x1, x2, same, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Contrastive loss on pairs (Hadsell, Chopra & LeCun 2006).

    ``x1``, ``x2`` ``(N, D)`` embeddings, ``same`` ``(N,)`` 1 (or True) where the pair shows
    the same identity, 0 otherwise.  With ``d = ||x1 - x2||``::

        l = same * d^2 / 2 + (1 - same) * max(margin - d, 0)^2 / 2

    (Hadsell's ``Y`` is ``1 - same``.)  ``reduction``: ``"mean"`` (default) or ``"sum"``.
    """
    a = _embeddings(x1, "x1")
    b = _embeddings(x2, "x2")
    if a.shape != b.shape:
        raise ValueError(f"x1 and x2 must have the same shape (N, D), received "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    same = np.asarray(as_array(same))
    if same.shape != (a.shape[0],) or not (same.dtype == np.bool_ or np.isin(same, (0, 1)).all()):
        raise ValueError(f"same must be ({a.shape[0]},) of 0/1 or booleans, received shape "
                         f"{same.shape} dtype={same.dtype}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', received reduction={reduction!r}")
    margin = _margin(margin)
    s = same.astype(a.dtype)
    d2 = ((a - b) ** 2).sum(axis=-1)
    zero = d2.data <= 0
    d = where(zero, np.zeros((), a.dtype), (d2 + zero.astype(a.dtype)).sqrt())
    losses = 0.5 * (s * d2 + (1.0 - s) * F.relu(margin - d) ** 2)
    return losses.sum() if reduction == "sum" else losses.mean()


def batch_pairs(labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` of a batch: ``(i, j, same)`` index arrays and ``same`` booleans
    (``labels[i] == labels[j]``), to train pair losses on P x K batches."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    return i, j, labels[i] == labels[j]


def batch_contrastive_loss(embeddings, labels, margin: float = 1.0) -> Tensor:
    """:func:`contrastive_loss` (mean) over every pair ``i < j`` of one batch of embeddings
    ``(N, D)`` with integer ``labels`` ``(N,)``: a Trainer ``loss_fn(outputs, targets)``."""
    e = _embeddings(embeddings, "embeddings")
    i, j, same = batch_pairs(_labels(labels, e.shape[0]))
    if i.size == 0:
        return _zero(e)
    return contrastive_loss(e[i], e[j], same, margin)


class SiameseHead(nn.Module):
    """The course's binary "same person?" head on top of two embeddings.

    ``logit = sum_k w_k * phi_k(f1, f2) + b`` and ``y_hat = sigmoid(logit)`` with

    * ``kind="abs"``: ``phi_k = |f1_k - f2_k|``
    * ``kind="chi2"``: ``phi_k = (f1_k - f2_k)^2 / (f1_k + f2_k + eps)`` (the chi-square
      similarity; meant for non-negative features, e.g. after a ReLU)

    ``forward(f1, f2)`` takes ``(N, D)`` embeddings and returns the logits ``(N,)``; train
    with ``F.binary_cross_entropy_with_logits(head(f1, f2), same)``.
    """

    KINDS = ("abs", "chi2")

    def __init__(self, dim: int, kind: str = "abs", eps: float = 1e-6):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, received kind={kind!r}")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, received dim={dim!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, received eps={eps!r}")
        self.dim, self.kind, self.eps = int(dim), kind, float(eps)
        self.linear = nn.Linear(self.dim, 1)

    def features(self, f1, f2) -> Tensor:
        """``phi(f1, f2)`` ``(N, D)``: the input of the logistic regression."""
        a, b = _embeddings(f1, "f1"), _embeddings(f2, "f2")
        if a.shape != b.shape or a.shape[1] != self.dim:
            raise ValueError(f"f1 and f2 must both be (N, {self.dim}), received "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        if self.kind == "abs":
            return (a - b).abs()
        return (a - b) ** 2 / (a + b + self.eps)

    def forward(self, f1, f2) -> Tensor:
        return self.linear(self.features(f1, f2)).reshape(-1)

    def batch_loss(self, embeddings, labels) -> Tensor:
        """Mean binary cross-entropy of "same class?" over every pair ``i < j`` of one batch
        ``(N, D)`` with integer ``labels`` (train the head and the embedding together)."""
        e = _embeddings(embeddings, "embeddings")
        i, j, same = batch_pairs(_labels(labels, e.shape[0]))
        if i.size == 0:
            return _zero(e)
        return F.binary_cross_entropy_with_logits(self(e[i], e[j]), same.astype(e.dtype))

    def extra_repr(self) -> str:
        return f"{self.dim}" + (f", kind={self.kind!r}" if self.kind != "abs" else "")
