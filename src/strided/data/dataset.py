"""Data sets as arrays: ``ArrayDataset`` holds images ``(N, H, W, C)`` and integer labels."""
from __future__ import annotations

import numpy as np

__all__ = ["Dataset", "ArrayDataset"]


class Dataset:
    """Anything with ``len(ds)`` and ``ds[i] -> (image HWC, label)``."""

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError


class ArrayDataset(Dataset):
    """Images ``(N, H, W, C)`` (uint8 0-255 or float 0-1), labels ``(N,)`` in ``[0, len(classes))``."""

    def __init__(self, images, labels, classes, name: str = "data"):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W, C) or (N, H, W), received shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"labels must be one per image: {len(images)} images, received labels of shape "
                             f"{labels.shape}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, received dtype {labels.dtype}")
        classes = [str(c) for c in classes]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            bad = labels[(labels < 0) | (labels >= len(classes))][0]
            raise ValueError(f"label {int(bad)} is out of range for {len(classes)} classes {classes}")
        self.images, self.labels = images, labels.astype(np.int64)
        self.classes, self.name = classes, name

    num_classes = property(lambda self: len(self.classes))
    image_shape = property(lambda self: tuple(self.images.shape[1:]))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def subset(self, indices) -> "ArrayDataset":
        indices = np.asarray(indices)
        return ArrayDataset(self.images[indices], self.labels[indices], self.classes, self.name)

    def split(self, fraction: float, seed: int = 0) -> tuple:
        """Hold out ``fraction`` of every class (seeded): ``(rest, held_out)``."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"split fraction must be in [0, 1), received {fraction!r}")
        rng = np.random.default_rng(seed)
        held = []
        for c in range(self.num_classes):
            members = np.flatnonzero(self.labels == c)
            rng.shuffle(members)
            held.append(members[:int(round(fraction * len(members)))])
        held = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
        rest = np.setdiff1d(np.arange(len(self)), held)
        return self.subset(rest), self.subset(held)

    def __repr__(self):
        return f"ArrayDataset({self.name!r}, {len(self)} images of {self.image_shape}, {self.num_classes} classes)"
