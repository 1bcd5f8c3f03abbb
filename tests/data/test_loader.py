"""DataLoader: batches, length, uint8 scaling, seeded order per (seed, epoch),
augmentation seeding, prefetching thread (same batches, errors, early stop), state."""
import threading
import time

import numpy as np
import pytest

from strided.data import ArrayDataset, DataLoader, Dataset, augment


def _dataset(n=23, h=5, w=4, c=3, dtype=np.uint8, seed=0):
    """Label == index, so the order of the items is visible in ``y``."""
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    else:
        x = rng.random((n, h, w, c)).astype(dtype)
    return ArrayDataset(x, np.arange(n), [str(i) for i in range(n)])


def _order(loader):
    return np.concatenate([y for _, y in loader]).tolist()


def _producer_threads(before):
    return [t for t in threading.enumerate() if t not in before and "producer" in t.name]


def _still_alive(threads, timeout=3.0):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]


# --------------------------------------------------------------------------- batches
@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_shapes_dtypes_and_uint8_scaling(prefetch):
    ds = _dataset(n=23)
    batches = list(DataLoader(ds, batch_size=5, prefetch=prefetch))
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    for i, (x, y) in enumerate(batches):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), 5, 4, 3) and x.flags["C_CONTIGUOUS"]
        np.testing.assert_allclose(x, ds.images[y] / 255.0, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(y, np.arange(5 * i, 5 * i + len(y)))   # in order
    x_all = np.concatenate([x for x, _ in batches])
    assert x_all.min() >= 0.0 and x_all.max() <= 1.0 and x_all.max() > 0.99


def test_float_images_are_not_rescaled():
    ds = _dataset(n=6, dtype=np.float32)
    x, _ = next(iter(DataLoader(ds, batch_size=6, prefetch=0)))
    np.testing.assert_array_equal(x, ds.images)


def test_any_dataset_with_getitem_works():
    class Ramp(Dataset):
        classes = ["a", "b", "c"]

        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.full((2, 3, 1), 10 * i, np.uint8), i % 3

    batches = list(DataLoader(Ramp(), batch_size=3))
    assert [x.shape for x, _ in batches] == [(3, 2, 3, 1), (3, 2, 3, 1), (1, 2, 3, 1)]
    np.testing.assert_allclose(batches[1][0][:, 0, 0, 0], np.array([30, 40, 50]) / 255, rtol=1e-6)
    np.testing.assert_array_equal(batches[2][1], [0])


@pytest.mark.parametrize("n,bs,drop,expected", [(23, 5, False, 5), (23, 5, True, 4),
                                                 (20, 5, False, 4), (20, 5, True, 4),
                                                 (3, 5, False, 1), (3, 5, True, 0), (1, 1, False, 1)])
def test_len_and_drop_last(n, bs, drop, expected):
    loader = DataLoader(_dataset(n=n), batch_size=bs, drop_last=drop, shuffle=True, seed=1)
    assert len(loader) == expected
    batches = list(loader)
    assert len(batches) == expected
    sizes = [len(y) for _, y in batches]
    assert all(s == bs for s in (sizes if drop else sizes[:-1]))
    if not drop:
        assert sum(sizes) == n


@pytest.mark.parametrize("kwargs,match", [({"batch_size": 0}, "batch_size"),
                                          ({"prefetch": -1}, "prefetch"),
                                          ({"seed": -3}, "seed"),
                                          ({"transform": "flip"}, "transform")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(_dataset(), **kwargs)


# --------------------------------------------------------------------------- order
def test_shuffle_order_depends_only_on_seed_and_epoch():
    ds = _dataset(n=40)
    a = DataLoader(ds, batch_size=7, shuffle=True, seed=3, prefetch=0)
    e0 = _order(a)
    assert sorted(e0) == list(range(40)) and e0 != list(range(40))
    assert _order(a) == e0                            # the epoch does not advance by itself
    a.set_epoch(1)
    e1 = _order(a)
    assert sorted(e1) == list(range(40)) and e1 != e0
    b = DataLoader(ds, batch_size=7, shuffle=True, seed=3, prefetch=2)
    b.set_epoch(1)                                    # a fresh loader jumping to epoch 1
    assert _order(b) == e1
    b.set_epoch(0)
    assert _order(b) == e0
    assert _order(DataLoader(ds, batch_size=40, shuffle=True, seed=3)) == e0   # any batch size
    assert _order(DataLoader(ds, batch_size=7, shuffle=True, seed=4)) != e0
    np.testing.assert_array_equal(a.order(1), e1)


def test_no_shuffle_is_in_order_every_epoch():
    loader = DataLoader(_dataset(n=12), batch_size=5, seed=9)
    assert _order(loader) == list(range(12))
    loader.set_epoch(5)
    assert _order(loader) == list(range(12))


def test_seed_none_draws_a_seed_and_keeps_it():
    ds = _dataset(n=30)
    a, b = DataLoader(ds, shuffle=True), DataLoader(ds, shuffle=True)
    assert isinstance(a.seed, int) and a.seed >= 0 and a.seed != b.seed
    again = DataLoader(ds, shuffle=True, seed=a.seed)
    assert _order(again) == _order(a)


def test_state_dict_resumes_the_same_batches():
    ds = _dataset(n=30, h=6, w=6)
    kw = dict(batch_size=4, shuffle=True, transform=augment.ColorShift(0.2))
    first = DataLoader(ds, seed=17, **kw)
    first.set_epoch(3)
    state = first.state_dict()
    assert state == {"seed": 17, "epoch": 3}
    resumed = DataLoader(ds, seed=0, **kw)
    resumed.load_state_dict(state)
    for (xa, ya), (xb, yb) in zip(first, resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    with pytest.raises(ValueError, match="epoch"):
        first.set_epoch(-1)


# --------------------------------------------------------------------------- augmentation
def test_transform_gets_float_batches_and_a_seeded_generator():
    seen = []

    def spy(x, rng):
        seen.append((x.dtype, x.max() <= 1.0, rng.integers(1 << 30)))
        return x

    loader = DataLoader(_dataset(n=10), batch_size=4, seed=5, transform=spy)
    list(loader)
    list(loader)
    assert [s[:2] for s in seen] == [(np.float32, True)] * 6
    draws = [s[2] for s in seen]
    assert draws[:3] == draws[3:]                    # same epoch: same generators
    assert len(set(draws[:3])) == 3                  # each batch its own


def test_augmentation_depends_on_epoch_not_on_order_stream():
    ds = _dataset(n=8, h=6, w=6)
    loader = DataLoader(ds, batch_size=8, seed=1, transform=augment.ColorShift(0.2))
    x0, _ = next(iter(loader))
    x0_again, _ = next(iter(loader))
    loader.set_epoch(1)
    x1, _ = next(iter(loader))
    np.testing.assert_array_equal(x0, x0_again)
    assert not np.array_equal(x0, x1)


def test_shuffling_does_not_change_the_augmentation_generators():
    def draws(shuffle):
        out = []
        loader = DataLoader(_dataset(n=9), batch_size=3, shuffle=shuffle, seed=8,
                            transform=lambda x, rng: out.append(rng.random()) or x)
        list(loader)
        return out

    assert draws(True) == draws(False)


# --------------------------------------------------------------------------- prefetch
def test_prefetch_gives_exactly_the_same_batches_and_augmentations():
    ds = _dataset(n=37, h=8, w=8, c=3)
    pipeline = augment.Compose([augment.HorizontalFlip(), augment.RandomCrop(padding=2),
                                augment.Rotate(10), augment.ColorShift(0.1)])
    kw = dict(batch_size=8, shuffle=True, seed=21, transform=pipeline)
    sync, bg = DataLoader(ds, prefetch=0, **kw), DataLoader(ds, prefetch=3, **kw)
    for epoch in range(3):
        sync.set_epoch(epoch)
        bg.set_epoch(epoch)
        a, b = list(sync), list(bg)
        assert len(a) == len(b) == 5
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    x, y = a[0]
    assert not np.allclose(x, ds.images[y] / 255.0)   # the augmentation did something


def test_prefetch_runs_in_a_background_thread():
    producers = set()

    def record(x, rng):
        producers.add(threading.current_thread().name)
        return x

    list(DataLoader(_dataset(n=10), batch_size=2, transform=record, prefetch=2))
    assert producers == {"strided-data-producer"}
    producers.clear()
    list(DataLoader(_dataset(n=10), batch_size=2, transform=record, prefetch=0))
    assert producers == {threading.current_thread().name}


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_error_in_transform_reaches_the_consumer(prefetch):
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
    assert not _still_alive(_producer_threads(before))


def test_breaking_out_early_stops_the_producer():
    before = set(threading.enumerate())
    loader = DataLoader(_dataset(n=400, h=4, w=4, c=1), batch_size=2, prefetch=2)
    for i, _ in enumerate(loader):
        threads = _producer_threads(before)
        if i == 1:
            break
    assert threads and not _still_alive(threads), "producer still running after the consumer stopped"
    assert len(list(loader)) == 200                  # and the loader can be used again


def test_repr_shows_the_settings():
    text = repr(DataLoader(_dataset(), batch_size=8, shuffle=True, seed=2,
                           transform=augment.HorizontalFlip()))
    assert text == ("DataLoader(dataset='dataset', batch_size=8, shuffle=True, seed=2, "
                    "transform=HorizontalFlip(p=0.5), epoch=0)")


# --------------------------------------------------------------------------- collate_fn
class _Boxes(Dataset):
    """Detection-like items: (image uint8 (4, 4, 3), boxes (K_i, 4) float) with K_i = i % 3."""
    classes = ["thing"]

    def __len__(self):
        return 7

    def __getitem__(self, i):
        image = np.full((4, 4, 3), 10 * i, np.uint8)
        boxes = np.array([[i, i, i + 1 + k, i + 2 + k] for k in range(i % 3)], np.float32).reshape(-1, 4)
        return image, boxes


@pytest.mark.parametrize("prefetch", [0, 2])
def test_collate_fn_builds_structured_batches(prefetch):
    from strided.data.loader import default_collate
    loader = DataLoader(_Boxes(), batch_size=3, collate_fn=default_collate, prefetch=prefetch)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    images, boxes = batches[1]                     # items 3, 4, 5
    assert images.dtype == np.float32 and images.shape == (3, 4, 4, 3)
    np.testing.assert_allclose(images[:, 0, 0, 0], np.array([30, 40, 50]) / 255, rtol=1e-6)
    assert isinstance(boxes, list) and [b.shape for b in boxes] == [(0, 4), (1, 4), (2, 4)]
    np.testing.assert_array_equal(boxes[2], _Boxes()[5][1])


def test_default_collate_matches_get_batch_for_image_label_items():
    from strided.data.loader import default_collate
    ds = _dataset(n=9)
    plain = list(DataLoader(ds, batch_size=4, shuffle=True, seed=3, prefetch=0))
    collated = list(DataLoader(ds, batch_size=4, shuffle=True, seed=3, prefetch=0, collate_fn=default_collate))
    for (x1, y1), (x2, y2) in zip(plain, collated):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        assert y2.dtype == np.int64
    triplets = default_collate([(np.zeros((2, 2, 1), np.uint8), np.ones((2, 2, 1), np.uint8), 1)] * 3)
    assert [np.shape(f) for f in triplets] == [(3, 2, 2, 1), (3, 2, 2, 1), (3,)]
    with pytest.raises(ValueError, match="empty"):
        default_collate([])
    with pytest.raises(ValueError, match="2 fields"):
        default_collate([(1, 2), (1, 2, 3)])


def test_collate_fn_transform_gets_the_collated_batch_seeded_per_batch():
    seen = []

    def transform(batch, rng):
        seen.append(rng.integers(1 << 30))
        images, boxes = batch
        return images[:, ::-1], boxes

    from strided.data.loader import default_collate
    loader = DataLoader(_Boxes(), batch_size=4, collate_fn=default_collate, transform=transform, seed=5,
                        prefetch=0)
    first = [b[0] for b in loader]
    again = [b[0] for b in loader]
    assert seen[:2] == seen[2:] and seen[0] != seen[1]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="collate_fn must be callable"):
        DataLoader(_Boxes(), collate_fn="stack")


def test_batch_sampler_decides_every_batch():
    from strided.data.sampler import PKSampler
    labels = np.repeat(np.arange(6), 5)
    images = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1)
    sampler = PKSampler(labels, p=3, k=2, seed=1)
    loader = DataLoader(ArrayDataset(images, labels), batch_sampler=sampler, prefetch=0)
    assert len(loader) == len(sampler)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        got = [(np.rint(x[:, 0, 0, 0] * 255).astype(int), y) for x, y in loader]
        expected = sampler.batches(epoch)
        assert len(got) == len(expected)
        for (pixels, y), indices in zip(got, expected):
            assert pixels.tolist() == np.asarray(indices).tolist()     # image i holds the value i
            assert y.tolist() == labels[indices].tolist()
            assert len(set(y.tolist())) == 3                            # P classes, K images each


def test_batch_sampler_refuses_batch_size_and_shuffle():
    from strided.data.sampler import PKSampler
    labels = np.repeat(np.arange(4), 4)
    data = ArrayDataset(np.zeros((16, 1, 1, 1), np.uint8), labels)
    with pytest.raises(ValueError, match="batch_sampler decides"):
        DataLoader(data, batch_size=8, batch_sampler=PKSampler(labels, p=2, k=2))
    with pytest.raises(ValueError, match="batches\\(epoch\\)"):
        DataLoader(data, batch_sampler=[[0, 1]])
