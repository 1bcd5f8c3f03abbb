"""Batches of P classes x K images each, for metric learning (triplet mining).

Online triplet mining (:mod:`strided.face.losses`) needs several images of the same class in
every batch.  :class:`PKSampler` yields index batches of ``P * K`` items: ``P`` distinct
classes, ``K`` images of each, grouped class by class::

    sampler = PKSampler(train.labels, p=8, k=4, seed=0)
    for epoch in range(epochs):
        for indices in sampler.batches(epoch):           # (32,) int64 each
            images, labels = train.get_batch(indices)
            ...

Randomness is a pure function of ``(seed, epoch)`` (one ``default_rng([seed, epoch])`` per
epoch), like :class:`strided.data.DataLoader`: a resumed run sees the same batches.

How an epoch is drawn: every class keeps its images in a shuffled queue; each batch picks
``P`` distinct classes, the chance of a class proportional to the images it has not yet
given this epoch (so rare classes are not over-sampled and every image is used about once
per epoch), and takes the next ``K`` images from each queue.  A queue that runs out is
reshuffled and starts again; a class with fewer than ``K`` images therefore repeats some
(``K`` is kept, so every batch has exactly ``P * K`` items).  The number of batches per
epoch defaults to ``len(labels) // (P * K)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PKSampler"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, received {name}={value!r}")
    return int(value)


class PKSampler:
    """Index batches of ``p`` classes x ``k`` images each.

    Parameters
    ----------
    labels : ``(N,)`` integer class of every item of the data set (``dataset.labels``).
    p : classes per batch (at most the number of classes with at least ``min_images``).
    k : images per class in a batch (2 or more for triplets: an anchor and a positive).
    seed : int >= 0; the batches of epoch ``e`` come from ``default_rng([seed, e])``.
    batches_per_epoch : default ``N // (p * k)``.
    min_images : classes with fewer images are never drawn (default 2: a class with one
        image gives no positive pair).

    ``batches(epoch)`` lists the batches of one epoch (each ``(p * k,)`` int64, ``k``
    consecutive items per class); iterating the sampler gives those of ``self.epoch``
    (set with :meth:`set_epoch`).  ``len(sampler)`` is the number of batches.
    """

    def __init__(self, labels, p: int, k: int, seed: int = 0,
                 batches_per_epoch: int | None = None, min_images: int = 2):
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be a 1-D array of integer classes, received shape "
                             f"{labels.shape} dtype={labels.dtype}")
        self.p = _positive_int(p, "p")
        self.k = _positive_int(k, "k")
        self.min_images = _positive_int(min_images, "min_images")
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, received seed={seed!r}")
        self.seed = int(seed)
        self.labels = labels.astype(np.int64)
        classes, counts = np.unique(self.labels, return_counts=True)
        self.classes = classes[counts >= self.min_images]
        self.members = [np.flatnonzero(self.labels == c) for c in self.classes]
        if len(self.classes) < self.p:
            raise ValueError(f"p={self.p} classes per batch, but only {len(self.classes)} classes "
                             f"have at least min_images={self.min_images} images "
                             f"(of {len(classes)} classes in {len(labels)} labels)")
        if batches_per_epoch is None:
            batches_per_epoch = max(1, sum(len(m) for m in self.members) // (self.p * self.k))
        self.batches_per_epoch = _positive_int(batches_per_epoch, "batches_per_epoch")
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def __len__(self) -> int:
        return self.batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Iterate over epoch ``epoch``'s batches next."""
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, received epoch={epoch!r}")
        self.epoch = int(epoch)

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """The ``len(self)`` index batches of ``epoch`` (default ``self.epoch``)."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, int(epoch)])
        queues = [rng.permutation(m) for m in self.members]
        position = np.zeros(len(self.members), dtype=np.int64)
        remaining = np.array([len(m) for m in self.members], dtype=np.float64)
        out = []
        for _ in range(self.batches_per_epoch):
            weights = np.maximum(remaining, 0.0) + 1e-3      # exhausted classes stay possible
            chosen = rng.choice(len(self.members), size=self.p, replace=False,
                                p=weights / weights.sum())
            batch = []
            for c in chosen:
                taken = []
                while len(taken) < self.k:
                    if position[c] == len(queues[c]):         # queue used up: a new round
                        queues[c] = rng.permutation(self.members[c])
                        position[c] = 0
                    step = min(self.k - len(taken), len(queues[c]) - position[c])
                    taken.extend(queues[c][position[c]:position[c] + step])
                    position[c] += step
                remaining[c] -= self.k
                batch.extend(taken)
            out.append(np.asarray(batch, dtype=np.int64))
        return out

    def __iter__(self):
        return iter(self.batches(self.epoch))

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.set_epoch(state["epoch"])

    def __repr__(self) -> str:
        return (f"PKSampler(p={self.p}, k={self.k}, classes={len(self.classes)}, "
                f"batches_per_epoch={self.batches_per_epoch}, seed={self.seed}, epoch={self.epoch})")
