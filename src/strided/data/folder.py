"""Image-folder data sets: one sub-folder of images per class.

Layout (class names = sub-folder names, sorted; other files are ignored)::

    root/cat/001.jpg  root/cat/002.png  root/dog/x.jpeg ...          seeded split
    root/train/cat/...  root/test/cat/...                           given split

Images (``.jpg .jpeg .png .bmp``, any case) are read with Pillow, converted to RGB
(``C = 3``) or grayscale (``C = 1``) and resized to ``image_size`` ``(H, W)`` (default:
the size of the first image; then all images must have it).  Unreadable files are
skipped and counted in an :class:`UnreadableImagesWarning`.

>>> train, test = load_image_folder("flowers/", image_size=64)   # (N, 64, 64, 3) uint8
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset, stratified_split_indices
from .errors import DatasetUnavailable, UnreadableImagesWarning

__all__ = ["IMAGE_SUFFIXES", "load_image_folder", "find_images"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
LAYOUT_HELP = ("expected ROOT/<class>/*.jpg|jpeg|png|bmp (one sub-folder per class), "
               "optionally split as ROOT/train/<class>/... and ROOT/test/<class>/...")


def _class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_images(root, classes: list[str]) -> list[tuple[Path, int]]:
    """``(path, label)`` of every image file under ``root/<class>/``, sorted by path."""
    root = Path(root)
    items = []
    for label, cls in enumerate(classes):
        folder = root / cls
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        items.extend((p, label) for p in files)
    return items


def _as_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be an int or (H, W) of positive ints, "
                         f"received image_size={image_size!r}")
    return size


def _read_one(path: Path, mode: str, size):
    """The image as ``(H, W, C)`` uint8, or ``None`` when Pillow cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return array[..., None] if array.ndim == 2 else array


def _read_images(items, image_size, grayscale: bool):
    """Read ``items``; returns ``(images (N, H, W, C) uint8, labels (N,), skipped paths,
    (H, W))``."""
    mode = "L" if grayscale else "RGB"
    target = _as_size(image_size)          # resize to this when given
    size, first = target, None             # the size every image must have
    images, labels, skipped = [], [], []
    for path, label in items:
        array = _read_one(path, mode, target)
        if array is None:
            skipped.append(path)
            continue
        if size is None:                   # no image_size: the first readable image sets it
            size, first = array.shape[:2], path
        elif array.shape[:2] != tuple(size):
            H, W = array.shape[:2]
            raise ValueError(f"image {str(path)!r} is {H}x{W} (HxW) but {str(first)!r} "
                             f"is {size[0]}x{size[1]}; pass image_size=(H, W) to resize "
                             "all images")
        images.append(array)
        labels.append(label)
    C = 1 if grayscale else 3
    stacked = (np.stack(images) if images
               else np.zeros((0, *(size or (0, 0)), C), np.uint8))
    return stacked, np.array(labels, dtype=np.int64), skipped, size


def _warn_skipped(root: Path, skipped: list[Path]) -> None:
    if not skipped:
        return
    shown = ", ".join(repr(str(p)) for p in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    warnings.warn(f"skipped {len(skipped)} unreadable image(s) under {str(root)!r}: "
                  f"{shown}{more}", UnreadableImagesWarning, stacklevel=3)


def load_image_folder(root, image_size=None, grayscale: bool = False,
                      test_fraction: float = 0.2, seed: int = 0, name: str | None = None):
    """Load ``root`` as ``(train, test)`` :class:`ArrayDataset` s of uint8 NHWC images.

    Parameters
    ----------
    root : the folder (see the module docstring for the layout).
    image_size : int or ``(H, W)``: resize every image to it (bilinear); default the
        first image's size, and then a differently sized image is a ``ValueError``.
    grayscale : read images as one channel (Pillow's ``L``) instead of RGB.
    test_fraction, seed : without ``root/train`` and ``root/test``, a seeded stratified
        split puts ``test_fraction`` of the images in ``test``.
    """
    root = Path(root)
    name = name or f"folder:{root}"
    if not root.is_dir():
        raise DatasetUnavailable(f"image folder {str(root)!r} does not exist; "
                                 f"{LAYOUT_HELP}")
    given_split = (root / "train").is_dir() and (root / "test").is_dir()
    class_root = root / "train" if given_split else root
    classes = _class_folders(class_root)
    if not classes:
        raise DatasetUnavailable(f"no class sub-folders in {str(class_root)!r}; "
                                 f"{LAYOUT_HELP}")
    if given_split:
        extra = sorted(set(_class_folders(root / "test")) - set(classes))
        if extra:
            raise ValueError(f"{str(root / 'test')!r} has classes that "
                             f"{str(root / 'train')!r} lacks: {extra}")
    train_items = find_images(class_root, classes)
    test_items = find_images(root / "test", classes) if given_split else []
    images, labels, skipped, size = _read_images(train_items + test_items, image_size,
                                                 grayscale)
    _warn_skipped(root, skipped)
    if len(images) == 0:
        raise DatasetUnavailable(f"no readable images under {str(root)!r} "
                                 f"({len(skipped)} unreadable); {LAYOUT_HELP}")
    if given_split:
        skipped_set = set(skipped)
        n_train = sum(1 for p, _ in train_items if p not in skipped_set)
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, len(images))
    else:
        train_idx, test_idx = stratified_split_indices(labels, test_fraction, seed)
    everything = ArrayDataset(images, labels, classes, name)
    return everything.subset(train_idx), everything.subset(test_idx)
