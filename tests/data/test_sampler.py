"""strided.data.sampler.PKSampler: P classes x K images per batch, seeded per epoch."""
import numpy as np
import pytest

from strided.data import ArrayDataset
from strided.data.sampler import PKSampler


def balanced_labels(classes=10, per_class=20, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(classes), per_class))


def test_batches_have_p_classes_of_k_consecutive_items():
    labels = balanced_labels()
    sampler = PKSampler(labels, p=5, k=4, seed=3)
    batches = sampler.batches(0)
    assert len(batches) == len(sampler) == 200 // 20
    for batch in batches:
        assert batch.shape == (20,) and batch.dtype == np.int64
        groups = labels[batch].reshape(5, 4)
        assert np.all(groups == groups[:, :1])              # K consecutive items of one class
        assert len(np.unique(groups[:, 0])) == 5             # P distinct classes
        for g in range(5):                                  # K different images when available
            assert len(np.unique(batch[g * 4:(g + 1) * 4])) == 4


def test_an_epoch_uses_every_image_about_once():
    labels = balanced_labels(classes=10, per_class=24)
    sampler = PKSampler(labels, p=4, k=6, seed=1)
    uses = np.bincount(np.concatenate(sampler.batches(0)), minlength=len(labels))
    assert uses.sum() == len(sampler) * 24 == len(labels)
    assert np.mean(uses == 1) >= 0.9 and uses.max() <= 2


def test_seeded_and_epoch_dependent():
    labels = balanced_labels()
    a = PKSampler(labels, p=5, k=4, seed=7)
    b = PKSampler(labels, p=5, k=4, seed=7)
    c = PKSampler(labels, p=5, k=4, seed=8)
    same = [np.array_equal(x, y) for x, y in zip(a.batches(2), b.batches(2))]
    assert all(same)
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches(0), a.batches(1)))
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches(0), c.batches(0)))
    a.set_epoch(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b.batches(2)))  # iteration follows set_epoch
    state = a.state_dict()
    b.load_state_dict(state)
    assert b.epoch == 2 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_small_classes_repeat_and_singletons_are_skipped():
    labels = np.array([0] * 3 + [1] * 10 + [2] * 10 + [3])     # class 3 has one image
    sampler = PKSampler(labels, p=3, k=4, seed=0, batches_per_epoch=6)
    assert list(sampler.classes) == [0, 1, 2]
    seen_small = False
    for batch in sampler.batches(0):
        assert 23 not in batch
        assert len(batch) == 12
        groups = labels[batch].reshape(3, 4)
        assert sorted(groups[:, 0]) == [0, 1, 2]
        small = batch[labels[batch] == 0]
        assert len(small) == 4 and set(small) == {0, 1, 2}
        seen_small = True
    assert seen_small


def test_works_with_a_dataset():
    labels = balanced_labels(classes=4, per_class=6)
    images = np.random.default_rng(0).integers(0, 256, (24, 5, 5, 1), dtype=np.uint8)
    ds = ArrayDataset(images, labels)
    sampler = PKSampler(ds.labels, p=2, k=3, seed=0)
    x, y = ds.get_batch(next(iter(sampler)))
    assert x.shape == (6, 5, 5, 1) and len(set(y[:3])) == 1 and len(set(y[3:])) == 1


def test_errors():
    labels = balanced_labels(classes=3, per_class=5)
    with pytest.raises(ValueError, match=r"p=4 classes per batch, but only 3"):
        PKSampler(labels, p=4, k=2)
    with pytest.raises(ValueError, match="k must be a positive integer, received k=0"):
        PKSampler(labels, p=2, k=0)
    with pytest.raises(ValueError, match="integer classes"):
        PKSampler(labels.astype(float), p=2, k=2)
    with pytest.raises(ValueError, match="seed"):
        PKSampler(labels, p=2, k=2, seed=-1)
    with pytest.raises(ValueError, match="epoch"):
        PKSampler(labels, p=2, k=2).set_epoch(-1)
    assert "p=2, k=2" in repr(PKSampler(labels, p=2, k=2))
