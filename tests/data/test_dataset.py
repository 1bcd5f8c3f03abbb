"""Dataset / ArrayDataset: validation with precise messages, items, subset and the
seeded stratified split."""
import re

import numpy as np
import pytest

from strided.data import ArrayDataset, Dataset, stratified_split_indices


def _ids_dataset(counts, classes=None):
    """Images (N, 1, 1, 1) float32 whose single pixel is the image's id; labels by class
    counts, interleaved."""
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(counts)])
    labels = labels[np.random.default_rng(123).permutation(len(labels))]
    ids = np.arange(len(labels))
    classes = classes or [f"c{i}" for i in range(len(counts))]
    return ArrayDataset(ids.reshape(-1, 1, 1, 1).astype(np.float32), labels, classes), ids, labels


def _ids(ds):
    return ds.images.reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------- construction
def test_attributes_and_items():
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 3, 2), dtype=np.uint8)
    y = np.array([0, 1, 2, 1, 0], dtype=np.uint8)
    ds = ArrayDataset(x, y, ["a", "b", "c"], name="toy")
    assert ds.images.shape == (5, 4, 3, 2) and ds.images.dtype == np.uint8
    assert ds.image_shape == (4, 3, 2)
    assert ds.num_classes == 3 and ds.classes == ["a", "b", "c"]
    assert ds.labels.dtype == np.int64
    assert len(ds) == 5
    image, label = ds[3]
    np.testing.assert_array_equal(image, x[3])
    assert label == 1 and isinstance(label, int)
    np.testing.assert_array_equal(ds.class_counts(), [2, 2, 1])
    assert repr(ds) == ("ArrayDataset(name='toy', n=5, image_shape=(4, 3, 2), dtype=uint8, "
                        "classes=3)")


def test_three_d_images_get_a_channel_axis_and_floats_become_float32():
    x = np.linspace(0, 1, 2 * 5 * 6).reshape(2, 5, 6)          # float64
    ds = ArrayDataset(x, [0, 1], ["a", "b"])
    assert ds.images.shape == (2, 5, 6, 1) and ds.images.dtype == np.float32
    np.testing.assert_allclose(ds.images[..., 0], x, rtol=1e-6)


def test_default_classes_and_string_classes():
    assert ArrayDataset(np.zeros((3, 2, 2, 1), np.uint8), [0, 3, 1]).classes == ["0", "1", "2", "3"]
    assert ArrayDataset(np.zeros((2, 2, 2, 1), np.uint8), [0, 1], [0, 1]).classes == ["0", "1"]


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 4, 5, 1)])
def test_bad_image_rank(shape):
    with pytest.raises(ValueError, match=r"images must be \(N, H, W, C\).*received shape "
                                         + re.escape(str(shape))):
        ArrayDataset(np.zeros(shape, np.float32), np.zeros(shape[0], np.int64), ["a"])


def test_bad_image_dtype_names_it():
    with pytest.raises(ValueError, match="uint8.*floating point.*received dtype int32"):
        ArrayDataset(np.zeros((2, 2, 2, 1), np.int32), [0, 0], ["a"])


@pytest.mark.parametrize("labels,received", [([0, 1], "2 labels"), ([0, 1, 0, 1], "4 labels")])
def test_count_mismatch_names_both_counts(labels, received):
    with pytest.raises(ValueError, match=f"labels must be one per image: 3 images, received {received}"):
        ArrayDataset(np.zeros((3, 2, 2, 1), np.uint8), labels, ["a", "b"])


def test_two_d_labels_raise():
    with pytest.raises(ValueError, match=r"received shape \(1, 3\)"):
        ArrayDataset(np.zeros((3, 2, 2, 1), np.uint8), [[0, 1, 0]], ["a", "b"])


def test_float_labels_raise():
    with pytest.raises(ValueError, match="integers, received dtype float64"):
        ArrayDataset(np.zeros((3, 2, 2, 1), np.uint8), np.array([0.0, 1.0, 0.0]), ["a", "b"])


@pytest.mark.parametrize("bad", [3, 7, -1])
def test_out_of_range_label_names_the_value(bad):
    labels = np.array([0, 1, bad, 2])
    with pytest.raises(ValueError, match=rf"label {bad} is out of range for 3 classes "
                                         rf"\['a', 'b', 'c'\].*\[0, 3\)"):
        ArrayDataset(np.zeros((4, 2, 2, 1), np.uint8), labels, ["a", "b", "c"], name="toy")


def test_labels_at_the_edges_of_the_range_are_fine():
    ds = ArrayDataset(np.zeros((2, 2, 2, 1), np.uint8), [0, 2], ["a", "b", "c"])
    np.testing.assert_array_equal(ds.labels, [0, 2])


def test_base_dataset_get_batch_stacks_items():
    class Squares(Dataset):
        classes = ["even", "odd"]

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((2, 2, 1), i * i, np.uint8), i % 2

    images, labels = Squares().get_batch([4, 1])
    assert images.shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(images[:, 0, 0, 0], [16, 1])
    np.testing.assert_array_equal(labels, [0, 1])
    assert labels.dtype == np.int64 and Squares().num_classes == 2


# --------------------------------------------------------------------------- subset
def test_subset_selects_images_and_labels_together():
    ds, ids, labels = _ids_dataset([5, 4, 3])
    pick = [7, 0, 11, 3]
    sub = ds.subset(pick)
    np.testing.assert_array_equal(_ids(sub), ids[pick])
    np.testing.assert_array_equal(sub.labels, labels[pick])
    assert sub.classes == ds.classes and sub.name == ds.name
    mask = labels == 1                                     # a boolean mask works too
    np.testing.assert_array_equal(_ids(ds.subset(mask)), ids[mask])
    assert len(ds.subset([])) == 0


# --------------------------------------------------------------------------- split
COUNTS = [200, 40, 10, 7]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_split_is_stratified(fraction, seed):
    ds, _, _ = _ids_dataset(COUNTS)
    train, val = ds.split(fraction, seed=seed)
    held = np.bincount(val.labels, minlength=len(COUNTS))
    rest = np.bincount(train.labels, minlength=len(COUNTS))
    for c, n in enumerate(COUNTS):
        assert abs(held[c] - fraction * n) <= 0.5 + 1e-9, (c, held[c], fraction * n)
        assert held[c] + rest[c] == n


def test_split_is_disjoint_complete_ordered_and_keeps_labels():
    ds, ids, labels = _ids_dataset(COUNTS)
    train, val = ds.split(0.3, seed=4)
    t, v = _ids(train), _ids(val)
    assert not set(t) & set(v)
    assert sorted(np.concatenate([t, v]).tolist()) == ids.tolist()
    assert np.all(np.diff(t) > 0) and np.all(np.diff(v) > 0)      # original order kept
    np.testing.assert_array_equal(train.labels, labels[t])
    np.testing.assert_array_equal(val.labels, labels[v])
    assert train.classes == val.classes == ds.classes


def test_split_same_seed_same_split_other_seed_other_split():
    ds, _, _ = _ids_dataset(COUNTS)
    a = _ids(ds.split(0.25, seed=11)[1])
    np.testing.assert_array_equal(a, _ids(ds.split(0.25, seed=11)[1]))
    c = _ids(ds.split(0.25, seed=12)[1])
    assert set(c) != set(a) and len(c) == len(a)


def test_split_fraction_zero_holds_out_nothing():
    ds, ids, _ = _ids_dataset(COUNTS)
    train, val = ds.split(0.0)
    assert len(val) == 0 and val.image_shape == ds.image_shape
    np.testing.assert_array_equal(_ids(train), ids)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_split_rejects_bad_fraction(fraction):
    ds, _, _ = _ids_dataset([4, 4])
    with pytest.raises(ValueError, match=rf"split fraction must be in \[0, 1\), received "
                                         rf"fraction={fraction}"):
        ds.split(fraction)


def test_split_indices_function():
    labels = np.array([0] * 10 + [1] * 30)
    train, val = stratified_split_indices(labels, 0.2, seed=0)
    assert train.dtype == val.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels[val]), [2, 6])
    assert len(train) + len(val) == 40
