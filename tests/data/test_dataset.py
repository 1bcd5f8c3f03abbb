"""ArrayDataset: validation, subset and the stratified, seeded split."""
import numpy as np
import pytest

from strided.data import ArrayDataset


def _ids_dataset(counts, classes=None):
    """Images (N, 1, 1, 1) whose single pixel is the image's id; labels by class counts."""
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(counts)])
    rng = np.random.default_rng(123)
    labels = labels[rng.permutation(len(labels))]  # interleave classes
    ids = np.arange(len(labels), dtype=np.int32)
    classes = classes or [f"c{i}" for i in range(len(counts))]
    return ArrayDataset(ids.reshape(-1, 1, 1, 1), labels, classes), ids, labels


def _ids(ds):
    return ds.images.reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------- validation
def test_four_d_images_kept_and_attributes():
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 3, 2), dtype=np.uint8)
    y = np.array([0, 1, 2, 1, 0], dtype=np.uint8)
    ds = ArrayDataset(x, y, ["a", "b", "c"], name="toy")
    assert ds.images.shape == (5, 4, 3, 2)
    assert ds.image_shape == (4, 3, 2)
    assert ds.num_classes == 3 and ds.classes == ["a", "b", "c"]
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, [0, 1, 2, 1, 0])
    assert len(ds) == 5
    img, lab = ds[3]
    np.testing.assert_array_equal(img, x[3])
    assert lab == 1
    assert "toy" in repr(ds)


def test_three_d_images_get_a_channel_axis():
    x = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6)
    ds = ArrayDataset(x, [0, 1], ["a", "b"])
    assert ds.images.shape == (2, 5, 6, 1)
    assert ds.image_shape == (5, 6, 1)
    np.testing.assert_array_equal(ds.images[..., 0], x)


def test_classes_become_strings():
    ds = ArrayDataset(np.zeros((2, 2, 2)), [0, 1], [0, 1])
    assert ds.classes == ["0", "1"]


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 4, 5, 1)])
def test_bad_image_rank_raises(shape):
    with pytest.raises(ValueError, match="images must be"):
        ArrayDataset(np.zeros(shape), np.zeros(shape[0], np.int64), ["a"])


@pytest.mark.parametrize("labels", [[0, 1], [0, 1, 0, 1], [[0, 1, 0]]])
def test_label_count_mismatch_raises(labels):
    with pytest.raises(ValueError, match="one per image"):
        ArrayDataset(np.zeros((3, 2, 2, 1)), np.array(labels, dtype=np.int64), ["a", "b"])


def test_float_labels_raise():
    with pytest.raises(ValueError, match="integers.*float64"):
        ArrayDataset(np.zeros((3, 2, 2, 1)), np.array([0.0, 1.0, 0.0]), ["a", "b"])


@pytest.mark.parametrize("bad", [3, 7, -1])
def test_out_of_range_label_names_the_value(bad):
    labels = np.array([0, 1, bad, 2], dtype=np.int64)
    with pytest.raises(ValueError, match=rf"label {bad} is out of range for 3 classes"):
        ArrayDataset(np.zeros((4, 2, 2, 1)), labels, ["a", "b", "c"])


def test_labels_at_the_edge_of_the_range_are_accepted():
    ds = ArrayDataset(np.zeros((2, 2, 2, 1)), np.array([0, 2], dtype=np.int64), ["a", "b", "c"])
    np.testing.assert_array_equal(ds.labels, [0, 2])


# --------------------------------------------------------------------------- subset
def test_subset_selects_images_and_labels_together():
    ds, ids, labels = _ids_dataset([5, 4, 3])
    pick = [7, 0, 11, 3]
    sub = ds.subset(pick)
    assert isinstance(sub, ArrayDataset)
    np.testing.assert_array_equal(_ids(sub), ids[pick])
    np.testing.assert_array_equal(sub.labels, labels[pick])
    assert sub.classes == ds.classes and sub.name == ds.name
    # a boolean mask works as well
    mask = labels == 1
    np.testing.assert_array_equal(_ids(ds.subset(mask)), ids[mask])


# --------------------------------------------------------------------------- split
COUNTS = [200, 40, 10, 7]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_split_is_stratified(fraction, seed):
    ds, _, _ = _ids_dataset(COUNTS)
    rest, held = ds.split(fraction, seed=seed)
    held_counts = np.bincount(held.labels, minlength=len(COUNTS))
    rest_counts = np.bincount(rest.labels, minlength=len(COUNTS))
    for c, n in enumerate(COUNTS):
        assert abs(held_counts[c] - fraction * n) <= 0.5 + 1e-9, (c, held_counts[c], fraction * n)
        assert held_counts[c] + rest_counts[c] == n


def test_split_is_disjoint_complete_and_keeps_labels():
    ds, ids, labels = _ids_dataset(COUNTS)
    rest, held = ds.split(0.3, seed=4)
    r, h = _ids(rest), _ids(held)
    assert len(set(r) & set(h)) == 0
    assert sorted(np.concatenate([r, h]).tolist()) == ids.tolist()
    assert len(set(r)) == len(r) and len(set(h)) == len(h)
    # every image keeps its own label
    np.testing.assert_array_equal(rest.labels, labels[r])
    np.testing.assert_array_equal(held.labels, labels[h])
    assert rest.classes == held.classes == ds.classes


def test_split_same_seed_same_split_different_seed_different():
    ds, _, _ = _ids_dataset(COUNTS)
    a_rest, a_held = ds.split(0.25, seed=11)
    b_rest, b_held = ds.split(0.25, seed=11)
    np.testing.assert_array_equal(_ids(a_held), _ids(b_held))
    np.testing.assert_array_equal(_ids(a_rest), _ids(b_rest))
    c_rest, c_held = ds.split(0.25, seed=12)
    assert set(_ids(c_held)) != set(_ids(a_held))
    assert len(c_held) == len(a_held)


def test_split_fraction_zero_holds_out_nothing():
    ds, ids, _ = _ids_dataset(COUNTS)
    rest, held = ds.split(0.0)
    assert len(held) == 0 and held.image_shape == ds.image_shape
    np.testing.assert_array_equal(np.sort(_ids(rest)), ids)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_split_rejects_bad_fraction(fraction):
    ds, _, _ = _ids_dataset([4, 4])
    with pytest.raises(ValueError, match="split fraction"):
        ds.split(fraction)
