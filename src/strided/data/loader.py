"""DataLoader: shuffled, seeded mini-batches, prepared ahead in a background thread.

Iterating yields ``(x, y)``: ``x`` float32 ``(B, H, W, C)`` (uint8 images are
scaled to [0, 1]), ``y`` int64 ``(B,)``.  The order and the augmentation of
epoch ``e`` depend only on ``(seed, e)`` (``set_epoch(e)``), so a run can be
repeated, or resumed in the middle of an epoch, exactly.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

__all__ = ["DataLoader"]


class DataLoader:
    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, transform=None, prefetch: int = 2):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, received batch_size={batch_size!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.seed = 0 if seed is None else int(seed)
        self.transform, self.prefetch, self.epoch = transform, int(prefetch), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batches(self):
        n = len(self.dataset)
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        images, labels = self.dataset.images, self.dataset.labels
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = images[idx]
            x = x.astype(np.float32) * np.float32(1 / 255) if x.dtype == np.uint8 else x.astype(np.float32)
            if self.transform is not None:
                x = self.transform(x, rng)
            yield np.ascontiguousarray(x, dtype=np.float32), labels[idx]

    def __iter__(self):
        if self.prefetch <= 0:
            yield from self._batches()
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def put(item) -> bool:
            """Hand ``item`` to the consumer unless it has stopped listening."""
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            try:
                for item in self._batches():
                    if not put(item):
                        return
                put(done)
            except BaseException as exc:  # hand errors to the consumer
                put(exc)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
