"""The course's HDF5 data sets (train_signs.h5 / test_signs.h5 layout), written here."""
import numpy as np
import pytest

from strided.data import DatasetUnavailable, load, load_h5

h5py = pytest.importorskip("h5py", reason="h5 data sets need h5py")


def _h5(path, prefix, x, y, classes=(b"non-cat", b"cat")):
    with h5py.File(path, "w") as f:
        f[f"{prefix}_set_x"] = x
        f[f"{prefix}_set_y"] = y
        if classes is not None:
            f["list_classes"] = np.array(classes)
    return path


@pytest.mark.parametrize("y_shape", ["(1,N)", "(N,)"])
def test_round_trip_course_layout(tmp_path, y_shape):
    rng = np.random.default_rng(0)
    xtr, ytr = rng.integers(0, 256, (7, 6, 5, 3), dtype=np.uint8), np.array([0, 1, 1, 0, 1, 0, 0])
    xte, yte = rng.integers(0, 256, (3, 6, 5, 3), dtype=np.uint8), np.array([1, 0, 1])
    shape = (lambda y: y.reshape(1, -1)) if y_shape == "(1,N)" else (lambda y: y)
    a = _h5(tmp_path / "train_catvnoncat.h5", "train", xtr, shape(ytr))
    b = _h5(tmp_path / "test_catvnoncat.h5", "test", xte, shape(yte))
    train, test = load(f"h5:{a},{b}")
    assert train.classes == test.classes == ["non-cat", "cat"]
    np.testing.assert_array_equal(train.images, xtr)
    np.testing.assert_array_equal(train.labels, ytr)
    np.testing.assert_array_equal(test.images, xte)
    np.testing.assert_array_equal(test.labels, yte)
    assert train.labels.dtype == np.int64 and train.labels.ndim == 1
    assert train.name == "h5:train_catvnoncat.h5"


def test_signs_style_integer_class_list(tmp_path):
    x = np.zeros((4, 2, 2, 3), np.uint8)
    a = _h5(tmp_path / "train_signs.h5", "train", x, np.array([[0, 5, 2, 3]]), classes=np.arange(6))
    b = _h5(tmp_path / "test_signs.h5", "test", x[:2], np.array([[1, 4]]), classes=np.arange(6))
    train, test = load_h5(a, b)
    assert train.classes == ["0", "1", "2", "3", "4", "5"]
    np.testing.assert_array_equal(test.labels, [1, 4])


def test_one_file_holding_both_splits(tmp_path):
    path = _h5(tmp_path / "both.h5", "train", np.zeros((3, 2, 2, 1), np.uint8), [0, 1, 1])
    with h5py.File(path, "a") as f:
        f["test_set_x"] = np.ones((2, 2, 2, 1), np.uint8)
        f["test_set_y"] = [1, 0]
    train, test = load(f"h5:{path}")
    assert (len(train), len(test)) == (3, 2)
    assert test.images.max() == 1


def test_a_single_train_file_is_split(tmp_path):
    x = np.arange(20 * 2 * 2 * 3, dtype=np.uint8).reshape(20, 2, 2, 3)
    path = _h5(tmp_path / "train.h5", "train", x, np.array([0, 1] * 10).reshape(1, -1), classes=None)
    train, test = load(f"h5:{path}")
    assert (len(train), len(test)) == (16, 4)
    assert train.classes == ["0", "1"]
    np.testing.assert_array_equal(test.class_counts(), [2, 2])


def test_errors(tmp_path):
    with pytest.raises(DatasetUnavailable, match="missing.h5' not found"):
        load(f"h5:{tmp_path / 'missing.h5'}")
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f["pixels"] = np.zeros((2, 2, 2, 3))
    with pytest.raises(ValueError, match=r"no train_set_x/train_set_y datasets; it holds \['pixels'\]"):
        load(f"h5:{tmp_path / 'odd.h5'}")
    with pytest.raises(ValueError, match="expected h5:TRAIN.h5 or h5:TRAIN.h5,TEST.h5"):
        load("h5:a.h5,b.h5,c.h5")


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    from strided.data import DatasetFileError
    from strided.errors import StridedError
    fake = tmp_path / "train_signs.h5"
    fake.write_text("a text file with an .h5 name")
    with pytest.raises(DatasetFileError, match=r"train_signs\.h5' is not a readable HDF5 file"):
        load(f"h5:{fake}")
    assert issubclass(DatasetFileError, StridedError) and issubclass(DatasetFileError, ValueError)
