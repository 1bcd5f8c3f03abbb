"""Data sets of images and integer labels, images in NHWC.

>>> ds = ArrayDataset(images, labels, classes=["cat", "dog"], name="pets")
>>> len(ds), ds.image_shape, ds.num_classes      # (N, (H, W, C), 2)
>>> image, label = ds[0]                          # (H, W, C) array, int
>>> train, val = ds.split(0.2, seed=0)            # 80% / 20% of every class
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["Dataset", "ArrayDataset", "stratified_split_indices"]


class Dataset:
    """Base class: a sequence of ``(image, label)`` pairs.

    Subclasses implement ``__len__`` and ``__getitem__(i) -> (image, label)`` with
    ``image`` an ``(H, W, C)`` array and ``label`` an ``int`` in
    ``range(len(self.classes))``, and set ``classes`` (the class names).
    :meth:`get_batch` stacks items; subclasses holding arrays override it.
    """

    classes: list[str] = []
    name: str = "dataset"

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int):
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Images ``(B, H, W, C)`` and labels ``(B,)`` int64 of the items ``indices``."""
        items = [self[int(i)] for i in indices]
        images = np.stack([image for image, _ in items])
        labels = np.array([label for _, label in items], dtype=np.int64)
        return images, labels


def _as_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:               # (N, H, W): one channel
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) (or (N, H, W) for one channel), "
                         f"received shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        return images.astype(np.float32, copy=False)
    raise ValueError(f"images must be uint8 (0..255) or floating point (0..1), "
                     f"received dtype {images.dtype}")


def _as_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one per image, 1-D (N,), received shape {labels.shape}")
    if labels.size == 0:
        return labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        raise ValueError(f"labels must be integers, received dtype {labels.dtype}")
    return labels.astype(np.int64, copy=False)


def _as_indices(indices, n: int) -> np.ndarray:
    """Integer indices from a sequence of ints or a boolean mask of length ``n``."""
    indices = np.asarray(indices)
    if indices.dtype == np.bool_:
        if indices.shape != (n,):
            raise ValueError(f"a boolean mask must have shape ({n},), received {indices.shape}")
        return np.flatnonzero(indices)
    if indices.size == 0:
        return np.zeros(0, dtype=np.intp)
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers or a boolean mask, received dtype {indices.dtype}")
    return indices.astype(np.intp, copy=False)


class ArrayDataset(Dataset):
    """A data set held in memory as two arrays.

    Parameters
    ----------
    images : array ``(N, H, W, C)``, ``uint8`` (0..255) or floating point (0..1, kept as
        ``float32``); ``(N, H, W)`` is read as one channel.
    labels : array ``(N,)`` of integers in ``range(len(classes))``, kept as ``int64``.
    classes : class names, index = label; default ``["0", "1", ..., str(max label)]``.
    name : a short name shown in ``repr`` and error messages.

    Raises ``ValueError`` naming the values when the counts of images and labels differ
    or a label is out of range for the classes.
    """

    def __init__(self, images, labels, classes: Sequence[str] | None = None,
                 name: str = "dataset"):
        self.images = _as_images(images)
        self.labels = _as_labels(labels)
        self.name = name
        if len(self.images) != len(self.labels):
            raise ValueError(f"{name}: labels must be one per image: {len(self.images)} images, "
                             f"received {len(self.labels)} labels")
        if classes is None:
            top = int(self.labels.max()) + 1 if self.labels.size else 0
            classes = [str(i) for i in range(top)]
        self.classes = [str(c) for c in classes]
        K = len(self.classes)
        bad = self.labels[(self.labels < 0) | (self.labels >= K)]
        if bad.size:
            raise ValueError(f"{name}: label {int(bad[0])} is out of range for {K} classes "
                             f"{self.classes[:12]}{' ...' if K > 12 else ''} (labels must be in "
                             f"[0, {K}); received {int(self.labels.min())}..{int(self.labels.max())})")

    # ------------------------------------------------------------------ sequence
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        """``(image (H, W, C), label int)``."""
        return self.images[index], int(self.labels[index])

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        indices = _as_indices(indices, len(self))
        return self.images[indices], self.labels[indices]

    # ------------------------------------------------------------------ facts
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        return tuple(self.images.shape[1:])

    def class_counts(self) -> np.ndarray:
        """``(num_classes,)`` number of images per class."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def __repr__(self) -> str:
        return (f"ArrayDataset(name={self.name!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, dtype={self.images.dtype}, "
                f"classes={self.num_classes})")

    # ------------------------------------------------------------------ splitting
    def subset(self, indices, name: str | None = None) -> "ArrayDataset":
        """A new data set with the items ``indices`` (ints or a boolean mask ``(N,)``;
        array copies), same classes."""
        images, labels = self.get_batch(indices)
        return ArrayDataset(images, labels, self.classes, name or self.name)

    def split(self, fraction: float = 0.2, seed: int = 0):
        """Randomly split into ``(train, val)``; ``val`` gets ``fraction`` of each class.

        Stratified: every class ``c`` with ``n_c`` items gives ``round(fraction * n_c)`` of
        them to ``val``, so both parts keep the class balance.  The same ``seed`` gives
        the same split; items keep their original order in each part.  ``fraction=0``
        gives an empty ``val``.
        """
        train_idx, val_idx = stratified_split_indices(self.labels, fraction, seed)
        return self.subset(train_idx), self.subset(val_idx)


def stratified_split_indices(labels, fraction: float, seed: int = 0):
    """Indices ``(train, val)`` (sorted, int64) of a seeded stratified random split.

    For each class in increasing order, its members are shuffled with one
    ``default_rng(seed)`` and the first ``round(fraction * n_c)`` go to ``val``.
    """
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"split fraction must be in [0, 1), received fraction={fraction!r}")
    rng = np.random.default_rng(seed)
    val = [np.zeros(0, np.int64)]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        val.append(members[:int(round(fraction * len(members)))])
    val = np.sort(np.concatenate(val)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val).astype(np.int64)
    return train, val
