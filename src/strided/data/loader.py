"""Mini-batches from a data set: shuffling, augmentation, background prefetch.

>>> loader = DataLoader(train, batch_size=64, shuffle=True, seed=0,
...                     transform=augment.standard("fashion-mnist", channels=1))
>>> for epoch in range(start_epoch, epochs):
...     loader.set_epoch(epoch)                 # its own deterministic shuffle
...     for x, y in loader:                     # x (B, H, W, C) float32 in [0, 1], y (B,) int64
...         ...
...     checkpoint["loader"] = loader.state_dict()   # {"seed": ..., "epoch": ...}

Randomness is a pure function of ``(seed, epoch)``: the order of epoch ``e`` comes from
``default_rng([seed, e])`` and the augmentation of its batch ``b`` from
``default_rng([seed, e, 1, b])`` (its own generator per batch, so the augmentation does
not depend on the shuffle, on other batches or on the prefetch thread).  So a resumed run (same seed, ``set_epoch(e)``) sees
exactly the batches it would have seen, with or without prefetching.

**Structured batches** (detection, pairs, triplets).  ``collate_fn(samples) -> batch``
turns the list of items ``dataset[i]`` of one batch into whatever the training step
needs; :func:`default_collate` stacks ``(image, label)`` items as above and keeps
fields of different shapes (boxes per image) as lists::

    loader = DataLoader(detection_set, batch_size=8, collate_fn=default_collate)
    for images, boxes in loader: ...        # (8, H, W, 3) float32, a list of 8 (K_i, 4) arrays

With a ``collate_fn``, ``transform(batch, rng)`` receives the collated batch (so a
box-aware augmentation sees the images and their boxes together).
"""
from __future__ import annotations

import math
import queue
import threading

import numpy as np

from .image import to_float

__all__ = ["DataLoader", "default_collate"]

_AUGMENT_STREAM = 1     # tells the augmentation generators apart from the order's

def _stack_field(values: list, as_images: bool):
    """One field of a batch: ``np.stack`` when every item is an array (or number) of the same shape,
    else the list itself (e.g. a different number of boxes per image)."""
    arrays = [np.asarray(v) for v in values]
    if not arrays or any(a.shape != arrays[0].shape or a.dtype == object for a in arrays):
        return list(values)
    stacked = np.stack(arrays)
    if as_images:
        return np.ascontiguousarray(to_float(stacked))
    if stacked.dtype.kind in "iub" and stacked.dtype != np.bool_:
        return stacked.astype(np.int64, copy=False)
    return stacked


def default_collate(samples: list):
    """Items ``[(image, label), ...]`` -> ``(images (B, H, W, C) float32, labels (B,) int64)``.

    ``uint8`` images are scaled to [0, 1] (:func:`strided.data.image.to_float`).  Items with more
    fields, ``(image, target1, target2, ...)``, give one entry per field: stacked when all items have
    the same shape there (integers as ``int64``), else a list (e.g. ``(K_i, 4)`` boxes per image).
    Items that are not tuples (a single array each) are stacked as images.
    """
    if not samples:
        raise ValueError("default_collate received an empty list of samples")
    first = samples[0]
    if not isinstance(first, (tuple, list)):
        return _stack_field(samples, as_images=True)
    width = len(first)
    if any(not isinstance(s, (tuple, list)) or len(s) != width for s in samples):
        raise ValueError(f"default_collate: every sample must have {width} fields like the first, received "
                         f"{[len(s) if isinstance(s, (tuple, list)) else type(s).__name__ for s in samples][:8]}")
    return tuple(_stack_field([s[k] for s in samples], as_images=(k == 0)) for k in range(width))


class _Done:
    """End-of-epoch marker put on the prefetch queue."""


class DataLoader:
    """Iterate over a data set in mini-batches ``(x, y)``.

    Parameters
    ----------
    dataset : a :class:`~strided.data.Dataset` (an ``ArrayDataset`` is sliced directly).
    batch_size : images per batch.
    shuffle : a new random order every epoch (otherwise the data set's order).
    drop_last : drop the last, smaller batch.
    seed : int >= 0; ``None`` draws a fresh random one (kept in ``self.seed``, so even
        then the run can be saved and repeated).
    transform : ``transform(x, rng) -> x`` applied to each float batch ``x``
        ``(B, H, W, C)`` with a NumPy ``Generator`` (see :mod:`strided.data.augment`).
    prefetch : batches prepared ahead by a background thread (0: no thread).
    batch_sampler : an object with ``batches(epoch) -> list of index arrays`` and ``len()`` that
        decides every batch's indices (e.g. :class:`strided.data.sampler.PKSampler`: P classes x K
        images); ``batch_size``, ``shuffle`` and ``drop_last`` are then left at their defaults.
    collate_fn : ``collate_fn(samples) -> batch`` builds a batch from the list of items
        ``dataset[i]`` (see :func:`default_collate`); ``None`` (default) takes
        ``dataset.get_batch(indices)`` (sliced, fast for in-memory arrays) and gives
        ``(x, y)`` as below.  With it, ``transform(batch, rng)`` gets the collated batch.

    Yields ``x`` ``(B, H, W, C)`` ``float32`` (``uint8`` images scaled to [0, 1], float
    images as they are) and ``y`` ``(B,)`` ``int64``, or what ``collate_fn`` returns.  ``len(loader)`` is the number of
    batches.  Each pass gives the batches of epoch ``loader.epoch``; call
    :meth:`set_epoch` before each epoch for a new shuffle (the epoch does not advance by
    itself, so iterating twice repeats the same batches).
    """

    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None, transform=None,
                 prefetch: int = 2, collate_fn=None, batch_sampler=None):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, "
                             f"received batch_size={batch_size!r}")
        if int(prefetch) != prefetch or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, "
                             f"received prefetch={prefetch!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise ValueError(f"collate_fn must be callable as collate_fn(samples) -> batch, "
                             f"received {collate_fn!r}")
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be callable as transform(x, rng), "
                             f"received {transform!r}")
        if batch_sampler is not None:
            if not (callable(getattr(batch_sampler, "batches", None)) and hasattr(batch_sampler, "__len__")):
                raise ValueError(f"batch_sampler must have batches(epoch) and len(), received {batch_sampler!r}")
            if (batch_size, shuffle, drop_last) != (64, False, False):
                raise ValueError(f"batch_sampler decides the batches: leave batch_size, shuffle and drop_last "
                                 f"unset, received batch_size={batch_size!r}, shuffle={shuffle!r}, "
                                 f"drop_last={drop_last!r}")
            batch_size = getattr(batch_sampler, "batch_size", batch_size)
        self.batch_sampler = batch_sampler
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is not None and (int(seed) != seed or seed < 0):
            raise ValueError(f"seed must be an integer >= 0 or None, received seed={seed!r}")
        self.seed = int(seed) if seed is not None else int(
            np.random.SeedSequence().entropy % (2 ** 63))
        self.transform = transform
        self.collate_fn = collate_fn
        self.prefetch = int(prefetch)
        self.epoch = 0

    # ------------------------------------------------------------------ state
    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s shuffle and augmentation for the next pass (and tell the data
        set, if it has a ``set_epoch`` of its own, e.g. :class:`~strided.data.scenes.FreshScenes`)."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, received epoch={epoch!r}")
        self.epoch = int(epoch)
        if callable(getattr(self.dataset, "set_epoch", None)):
            self.dataset.set_epoch(self.epoch)

    def state_dict(self) -> dict:
        """``{"seed": int, "epoch": int}``: everything needed to resume the same batches."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.set_epoch(state["epoch"])

    # ------------------------------------------------------------------ batches
    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """Indices of the data set in the order epoch ``epoch`` visits them."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def _augment_rng(self, epoch: int, batch_index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, _AUGMENT_STREAM, batch_index])

    def _make_batch(self, indices, epoch: int, batch_index: int):
        if self.collate_fn is not None:
            batch = self.collate_fn([self.dataset[int(i)] for i in indices])
            if self.transform is not None:
                batch = self.transform(batch, self._augment_rng(epoch, batch_index))
            return batch
        images, labels = self.dataset.get_batch(indices)
        x = to_float(images)
        if self.transform is not None:
            x = self.transform(x, self._augment_rng(epoch, batch_index))
        return np.ascontiguousarray(x, dtype=np.float32), np.asarray(labels, dtype=np.int64)

    def _batches(self, epoch: int):
        if self.batch_sampler is not None:
            for b, indices in enumerate(self.batch_sampler.batches(epoch)):
                yield self._make_batch(np.asarray(indices), epoch, b)
            return
        order = self.order(epoch)
        for b in range(len(self)):
            yield self._make_batch(order[b * self.batch_size:(b + 1) * self.batch_size],
                                   epoch, b)

    def __iter__(self):
        """The batches of epoch ``self.epoch`` (iterating again repeats them exactly)."""
        if self.prefetch == 0:
            return self._batches(self.epoch)
        return self._prefetched(self.epoch)

    def _prefetched(self, epoch: int):
        """The batches of ``epoch``, made by a background thread ``prefetch`` ahead."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def work():
            try:
                for batch in self._batches(epoch):
                    if not put(batch):
                        return
                put(_Done)
            except BaseException as exc:   # handed to the consumer, raised there
                put(exc)

        worker = threading.Thread(target=work, name="strided-data-producer", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is _Done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:                          # also when the consumer stops early
            stop.set()
            worker.join()

    def __repr__(self) -> str:
        parts = [f"dataset={getattr(self.dataset, 'name', type(self.dataset).__name__)!r}",
                 f"batch_size={self.batch_size}"]
        if self.shuffle:
            parts.append("shuffle=True")
        if self.drop_last:
            parts.append("drop_last=True")
        parts.append(f"seed={self.seed}")
        if self.transform is not None:
            parts.append(f"transform={self.transform!r}")
        if self.prefetch != 2:
            parts.append(f"prefetch={self.prefetch}")
        if self.collate_fn is not None:
            parts.append(f"collate_fn={getattr(self.collate_fn, '__name__', self.collate_fn)!r}")
        return f"DataLoader({', '.join(parts)}, epoch={self.epoch})"
