"""The course's HDF5 data sets (``train_signs.h5`` / ``test_signs.h5``, cat/non-cat ...).

Layout: the training file holds ``train_set_x`` ``(N, H, W, C)`` uint8,
``train_set_y`` ``(N,)`` or ``(1, N)`` and ``list_classes`` (class names as bytes); the
test file holds ``test_set_x`` / ``test_set_y`` (and usually ``list_classes`` again).

>>> train, test = load_h5("train_signs.h5", "test_signs.h5")
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import ArrayDataset
from .errors import DatasetFileError, DatasetUnavailable

__all__ = ["load_h5", "read_h5_split"]


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DatasetUnavailable("reading .h5 data sets needs h5py: pip install h5py") from None
    return h5py


def _open(path: Path):
    """``h5py.File(path, "r")``; a file that is not HDF5 is a :class:`DatasetFileError` naming it."""
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetFileError(f"{str(path)!r} is not a readable HDF5 file ({exc}); h5: data sets are the "
                               f"course's .h5 files holding train_set_x/train_set_y (and test_set_x/test_set_y)") from None


def _decode(names) -> list[str]:
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n)
            for n in np.asarray(names).ravel()]


def read_h5_split(path, split: str):
    """``(images (N, H, W, C), labels (N,), class names or None)`` of ``{split}_set_*``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetUnavailable(f"HDF5 file {str(path)!r} not found; pass the path of a "
                                 f"file holding {split}_set_x and {split}_set_y")
    with _open(path) as f:
        keys = sorted(f.keys())
        x_key, y_key = f"{split}_set_x", f"{split}_set_y"
        if x_key not in f or y_key not in f:
            raise DatasetFileError(f"{str(path)!r} has no {x_key}/{y_key} datasets; "
                             f"it holds {keys}")
        images = np.asarray(f[x_key][()])
        labels = np.asarray(f[y_key][()]).reshape(-1)       # (N,) or (1, N)
        classes = _decode(f["list_classes"][()]) if "list_classes" in f else None
    return images, labels, classes


def _has_split(path: Path, split: str) -> bool:
    with _open(path) as f:
        return f"{split}_set_x" in f


def load_h5(train_path, test_path=None, name: str | None = None,
            test_fraction: float = 0.2, seed: int = 0):
    """``(train, test)`` :class:`ArrayDataset` s from the course's HDF5 files.

    ``test_path`` defaults to ``train_path`` when that file also holds ``test_set_*``;
    otherwise a seeded stratified split puts ``test_fraction`` of it in ``test``.
    Class names come from ``list_classes`` (train file first).
    """
    train_path = Path(train_path)
    name = name or f"h5:{train_path.name}"
    x, y, classes = read_h5_split(train_path, "train")
    if test_path is None and _has_split(train_path, "test"):
        test_path = train_path
    if test_path is None:
        return ArrayDataset(x, y, classes, name).split(test_fraction, seed)
    tx, ty, test_classes = read_h5_split(test_path, "test")
    classes = classes or test_classes
    if classes is None:
        top = int(max(y.max(initial=-1), ty.max(initial=-1))) + 1
        classes = [str(i) for i in range(top)]
    return ArrayDataset(x, y, classes, name), ArrayDataset(tx, ty, classes, name)
