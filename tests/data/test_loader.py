"""DataLoader: batches, length, seeded order per epoch, prefetching thread."""
import threading
import time

import numpy as np
import pytest

from strided.data import ArrayDataset, DataLoader, augment


def _dataset(n=23, h=5, w=4, c=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    else:
        x = rng.random((n, h, w, c)).astype(dtype)
    classes = [str(i) for i in range(n)]
    return ArrayDataset(x, np.arange(n), classes)  # label == index: the order is visible


def _order(loader):
    return np.concatenate([y for _, y in loader]).tolist()


def _producer_threads(before):
    return [t for t in threading.enumerate() if t not in before and "produce" in t.name]


def _wait_gone(threads, timeout=3.0):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]


# --------------------------------------------------------------------------- batches
@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_shapes_dtypes_and_scaling(prefetch):
    ds = _dataset(n=23)
    loader = DataLoader(ds, batch_size=5, prefetch=prefetch)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    for i, (x, y) in enumerate(batches):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), 5, 4, 3)
        assert x.flags["C_CONTIGUOUS"]
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_allclose(x, ds.images[y] / 255.0, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(y, np.arange(5 * i, 5 * i + len(y)))  # no shuffle: in order


def test_float_images_are_not_rescaled():
    ds = _dataset(n=6, dtype=np.float64)
    x, _ = next(iter(DataLoader(ds, batch_size=6, prefetch=0)))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, ds.images.astype(np.float32))


@pytest.mark.parametrize("n,bs,drop,expected", [(23, 5, False, 5), (23, 5, True, 4), (20, 5, False, 4),
                                                  (20, 5, True, 4), (3, 5, False, 1), (3, 5, True, 0),
                                                  (1, 1, False, 1)])
def test_len_with_and_without_drop_last(n, bs, drop, expected):
    loader = DataLoader(_dataset(n=n), batch_size=bs, drop_last=drop, shuffle=True, seed=1)
    assert len(loader) == expected
    batches = list(loader)
    assert len(batches) == expected
    assert all(len(y) == bs for _, y in batches[:-1])
    if drop:
        assert all(len(y) == bs for _, y in batches)
    else:
        assert sum(len(y) for _, y in batches) == n


def test_bad_batch_size_raises():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)


# --------------------------------------------------------------------------- order
def test_shuffle_order_depends_only_on_seed_and_epoch():
    ds = _dataset(n=40)
    a = DataLoader(ds, batch_size=7, shuffle=True, seed=3, prefetch=0)
    e0 = _order(a)
    assert sorted(e0) == list(range(40)) and e0 != list(range(40))
    assert _order(a) == e0                    # same epoch again: same order
    a.set_epoch(1)
    e1 = _order(a)
    assert sorted(e1) == list(range(40)) and e1 != e0
    # a fresh loader that jumps straight to epoch 1 sees the same order (no hidden state)
    b = DataLoader(ds, batch_size=7, shuffle=True, seed=3, prefetch=2)
    b.set_epoch(1)
    assert _order(b) == e1
    b.set_epoch(0)
    assert _order(b) == e0
    # batch size does not matter for the order either
    c = DataLoader(ds, batch_size=40, shuffle=True, seed=3)
    assert _order(c) == e0
    # another seed: another order
    d = DataLoader(ds, batch_size=7, shuffle=True, seed=4)
    assert _order(d) != e0


def test_no_shuffle_is_in_order_every_epoch():
    loader = DataLoader(_dataset(n=12), batch_size=5, shuffle=False, seed=9)
    assert _order(loader) == list(range(12))
    loader.set_epoch(5)
    assert _order(loader) == list(range(12))


def test_seed_none_means_seed_zero():
    ds = _dataset(n=30)
    assert _order(DataLoader(ds, shuffle=True, seed=None)) == _order(DataLoader(ds, shuffle=True, seed=0))


# --------------------------------------------------------------------------- prefetch
def test_prefetch_gives_exactly_the_same_batches_and_augmentations():
    ds = _dataset(n=37, h=8, w=8, c=3)
    pipeline = augment.Compose([augment.HorizontalFlip(), augment.RandomCrop(padding=2), augment.Rotate(10),
                                augment.ColorShift(0.1)])
    kw = dict(batch_size=8, shuffle=True, seed=21, transform=pipeline)
    sync, bg = DataLoader(ds, prefetch=0, **kw), DataLoader(ds, prefetch=2, **kw)
    for epoch in range(3):
        sync.set_epoch(epoch)
        bg.set_epoch(epoch)
        a, b = list(sync), list(bg)
        assert len(a) == len(b) == 5
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
            assert xa.dtype == np.float32
    # and the augmentation really did something (it is not the plain images)
    x, y = a[0]
    assert not np.allclose(x, ds.images[y] / 255.0)


def test_augmentation_depends_on_epoch():
    ds = _dataset(n=8, h=6, w=6)
    loader = DataLoader(ds, batch_size=8, shuffle=False, seed=1, transform=augment.ColorShift(0.2))
    x0, _ = next(iter(loader))
    x0_again, _ = next(iter(loader))
    loader.set_epoch(1)
    x1, _ = next(iter(loader))
    np.testing.assert_array_equal(x0, x0_again)
    assert not np.array_equal(x0, x1)


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_exception_in_transform_reaches_the_consumer(prefetch):
    calls = []

    def transform(x, rng):
        calls.append(len(x))
        if len(calls) == 3:
            raise Boom("bad batch 3")
        return x

    before = set(threading.enumerate())
    loader = DataLoader(_dataset(n=30), batch_size=5, transform=transform, prefetch=prefetch)
    seen = []
    with pytest.raises(Boom, match="bad batch 3"):
        for _, y in loader:
            seen.append(y.tolist())
    assert seen == [list(range(0, 5)), list(range(5, 10))]
    assert not _wait_gone(_producer_threads(before))


def test_breaking_out_early_stops_the_producer():
    before = set(threading.enumerate())
    loader = DataLoader(_dataset(n=400, h=4, w=4, c=1), batch_size=2, prefetch=2)
    t0 = time.monotonic()
    for i, _ in enumerate(loader):
        if i == 1:
            break
    threads = _producer_threads(before)
    assert not _wait_gone(threads), "producer thread still running after the consumer stopped"
    assert time.monotonic() - t0 < 3.0
    # the loader can be iterated again afterwards
    assert len(list(loader)) == 200


def _unblock(threads):
    """Best effort: drain the queue a stuck producer is blocked on so that it can finish."""
    for t in threads:
        target = getattr(t, "_target", None)
        for cell in getattr(target, "__closure__", None) or ():
            q = cell.cell_contents
            if hasattr(q, "get_nowait"):
                while t.is_alive():
                    try:
                        q.get_nowait()
                    except Exception:
                        time.sleep(0.01)
                        break


def test_breaking_out_after_the_producer_finished_stops_the_producer():
    last = threading.Event()
    ds = _dataset(n=6, h=4, w=4, c=1)

    calls = []

    def transform(x, rng):
        calls.append(len(x))
        if len(calls) == 3:
            last.set()
        return x

    before = set(threading.enumerate())
    loader = DataLoader(ds, batch_size=2, prefetch=2, transform=transform)  # 3 batches, queue of 2
    threads = []
    try:
        for _ in loader:
            threads = _producer_threads(before)
            assert last.wait(3.0)   # the producer has made the last batch ...
            time.sleep(0.3)         # ... and put it (the queue is now full) and is waiting to put `done`
            break
        assert not _wait_gone(threads, timeout=2.0), "producer thread blocked forever"
    finally:
        _unblock(threads)
