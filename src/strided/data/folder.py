"""Image-folder data sets: one sub-folder of images per class.

Layout (class names = sub-folder names, sorted; other files are ignored)::

    root/cat/001.jpg  root/cat/002.png  root/dog/x.jpeg ...          seeded split
    root/train/cat/...  root/test/cat/...                           given split

Images (``.jpg .jpeg .png .bmp``, any case) are read with
:func:`strided.data.image.read_image` (16-bit, alpha and palette images handled there) as RGB
(``C = 3``) or grayscale (``C = 1``).  ``image_size`` brings every image to ``(H, W)``: it is
scaled so that it covers ``(H, W)`` (its shorter side fits) and the centre is cut out
(:func:`resize_center_crop`), so photos of any size and aspect ratio work and nothing is
stretched.  Without ``image_size`` all images must have the size of the first one
(:class:`MixedImageSizes` otherwise).  Unreadable files are skipped and counted in an
:class:`UnreadableImagesWarning`.

>>> train, test = load_image_folder("flowers/", image_size=64)   # (N, 64, 64, 3) uint8
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import ImageError, StridedError
from .dataset import ArrayDataset, stratified_split_indices
from .errors import DatasetUnavailable, UnreadableImagesWarning
from .image import read_image

__all__ = ["IMAGE_SUFFIXES", "load_image_folder", "find_images", "resize_center_crop", "MixedImageSizes"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
LAYOUT_HELP = ("expected ROOT/<class>/*.jpg|jpeg|png|bmp (one sub-folder per class), "
               "optionally split as ROOT/train/<class>/... and ROOT/test/<class>/...")


class MixedImageSizes(StridedError, ValueError):
    """The images of a folder differ in size and no ``image_size`` was given."""


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


def resize_center_crop(image, size) -> np.ndarray:
    """Bring ``image`` ``(H, W, C)`` ``uint8`` to ``size = (h, w)``: scale it (bilinear) by
    ``max(h / H, w / W)``, so that its shorter side (relative to the target) fits, then cut the
    centre ``h x w`` out.  An image of the target's aspect ratio is just resized; one already
    ``(h, w)`` is returned as is."""
    from PIL import Image

    image = np.asarray(image)
    h, w = (int(s) for s in size)
    H, W = image.shape[:2]
    if (H, W) == (h, w):
        return image
    scale = max(h / H, w / W)
    nh, nw = max(h, round(H * scale)), max(w, round(W * scale))
    one_channel = image.ndim == 3 and image.shape[-1] == 1
    resized = np.asarray(Image.fromarray(image[..., 0] if one_channel else image).resize((nw, nh), Image.BILINEAR))
    top, left = (nh - h) // 2, (nw - w) // 2
    out = resized[top:top + h, left:left + w]
    return out[..., None] if one_channel else out


def _read_one(path: Path, grayscale: bool, size):
    """The image as ``(H, W, C)`` uint8 (at ``size`` when given), or ``None`` when it cannot be read."""
    try:
        array = read_image(path, grayscale=grayscale)
    except ImageError:
        return None
    return array if size is None else resize_center_crop(array, size)


def _read_images(items, image_size, grayscale: bool):
    """Read ``items``; returns ``(images (N, H, W, C) uint8, labels (N,), skipped paths,
    (H, W))``."""
    target = _as_size(image_size)          # resize to this when given
    size, first = target, None             # the size every image must have
    images, labels, skipped = [], [], []
    for path, label in items:
        array = _read_one(path, grayscale, target)
        if array is None:
            skipped.append(path)
            continue
        if size is None:                   # no image_size: the first readable image sets it
            size, first = array.shape[:2], path
        elif array.shape[:2] != tuple(size):
            H, W = array.shape[:2]
            raise MixedImageSizes(f"image {str(path)!r} is {H}x{W} (HxW) but {str(first)!r} "
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
    image_size : int or ``(H, W)``: bring every image to it (scaled so that it covers the size,
        then the centre cut out: :func:`resize_center_crop`); default the first image's size, and
        then a differently sized image is a :class:`MixedImageSizes` (a ``ValueError``).
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
