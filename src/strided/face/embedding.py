"""Train your own face (or any image) embedding: a network whose output IS the embedding.

>>> net = EmbeddingNet(models.create("lenet5", num_classes=64), normalize=True)
>>> loss_fn = embedding_loss("triplet", net)             # loss_fn(embeddings (B, D), labels (B,))
>>> Trainer(net, optimizer, loss_fn=loss_fn, metrics={}).fit(PKBatches(train, PKSampler(...)), epochs)
>>> embed_images(net, images)                            # (N, D) float64, eval mode, no graph

* ``"triplet"``: online triplet mining in each P x K batch (``mining`` = ``"semi-hard"``
  (FaceNet), ``"batch-hard"`` or ``"batch-all"``), squared Euclidean distances, margin 0.2;
* ``"contrastive"``: contrastive loss over every pair of the batch, margin 1.0;
* ``"siamese"``: the course's logistic "same person?" head on ``|f(x1) - f(x2)|`` over every
  pair of the batch (:class:`~strided.face.losses.SiameseHead`, trained with the network).

Triplet and contrastive embeddings are L2-normalised (``normalize=True``: on the unit sphere,
so a margin has a fixed meaning); the siamese head takes them raw.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..data.image import to_float
from ..tensor import Tensor, no_grad
from . import losses

__all__ = ["EmbeddingNet", "PKBatches", "embedding_loss", "embed_images", "LOSSES", "MININGS",
           "DEFAULT_MARGINS"]

LOSSES = ("triplet", "contrastive", "siamese")
MININGS = ("semi-hard", "batch-hard", "batch-all")
DEFAULT_MARGINS = {"triplet": 0.2, "contrastive": 1.0}


class EmbeddingNet(nn.Module):
    """``backbone(x)`` ``(N, D)`` as the embedding, L2-normalised when ``normalize``; ``head``
    (optional, e.g. a :class:`~strided.face.losses.SiameseHead`) is kept with the network so
    it trains, checkpoints and resumes with it, but :meth:`forward` never calls it."""

    def __init__(self, backbone, normalize: bool = True, head=None):
        super().__init__()
        self.backbone = backbone
        self.normalize = bool(normalize)
        if head is not None:
            self.head = head

    def forward(self, x):
        e = self.backbone(x)
        return losses.l2_normalize(e) if self.normalize else e

    def extra_repr(self) -> str:
        return "" if self.normalize else "normalize=False"


def embedding_loss(loss: str, net: EmbeddingNet, mining: str = "semi-hard", margin: float | None = None):
    """``loss_fn(embeddings, labels)`` -> scalar Tensor for the Trainer (see the module docstring).
    ``net`` must hold a ``head`` for ``"siamese"``."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, received loss={loss!r}")
    if loss == "siamese":
        if getattr(net, "head", None) is None:
            raise ValueError("the siamese loss needs EmbeddingNet(..., head=SiameseHead(dim))")
        return net.head.batch_loss
    margin = DEFAULT_MARGINS[loss] if margin is None else float(margin)
    if loss == "contrastive":
        return lambda e, y: losses.batch_contrastive_loss(e, y, margin)
    if mining not in MININGS:
        raise ValueError(f"mining must be one of {MININGS}, received mining={mining!r}")
    mine = {"semi-hard": losses.semi_hard_triplet_loss, "batch-hard": losses.batch_hard_triplet_loss,
            "batch-all": losses.batch_all_triplet_loss}[mining]
    return lambda e, y: mine(e, y, margin)


class PKBatches:
    """A loader of P x K batches for the Trainer: ``(float32 images (P*K, H, W, C), labels)`` in
    the order of ``sampler`` (a :class:`~strided.data.sampler.PKSampler` over
    ``dataset.labels``); ``set_epoch`` makes a resumed run see the same batches."""

    def __init__(self, dataset, sampler):
        self.dataset, self.sampler = dataset, sampler
        self.seed = sampler.seed

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for indices in self.sampler:
            images, labels = self.dataset.get_batch(indices)
            yield np.ascontiguousarray(to_float(images), dtype=np.float32), labels


def embed_images(net, images, batch_size: int = 256) -> np.ndarray:
    """Embeddings ``(N, D)`` float64 of images ``(N, H, W, C)`` (uint8 or float 0..1), eval mode, no graph."""
    images = np.asarray(images)
    out = []
    with net.evaluating(), no_grad():
        for start in range(0, len(images), batch_size):
            batch = np.ascontiguousarray(to_float(images[start:start + batch_size]), dtype=np.float32)
            out.append(np.asarray(net(Tensor(batch)).data, np.float64))
    return np.concatenate(out) if out else np.zeros((0, 0))
