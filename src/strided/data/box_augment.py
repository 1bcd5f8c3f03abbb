"""Box-aware augmentation for detection: the boxes move with the image.

Coordinates are pixel *edges*: an image ``H x W`` spans ``[0, W] x [0, H]``, pixel
``(r, c)`` covers ``[c, c + 1] x [r, r + 1]`` (centre ``(c + 0.5, r + 0.5)``), and boxes are
``[x1, y1, x2, y2]`` in those coordinates (the convention of :mod:`strided.data.scenes`).
Images are float ``(H, W, C)`` in [0, 1].

* :func:`hflip` mirrors left-right: ``x1' = W - x2``, ``x2' = W - x1``.
* :func:`scale_translate` scales about the image centre by ``s`` and shifts by
  ``(dx, dy)`` pixels: ``p' = s (p - centre) + centre + (dx, dy)``.  The image is resampled by
  inverse mapping with bilinear interpolation (separable: rows, then columns); places
  outside the source image read ``fill``.  Boxes map exactly (the map is axis-aligned), are
  clipped to the image, and a box is **dropped** when what is left inside the image is less
  than ``min_visibility`` of its transformed area or narrower / lower than ``min_size``
  pixels.
* :func:`color_jitter` multiplies brightness, scales contrast about the image's mean grey and
  blends saturation with the grey image, each by a factor drawn from ``1 +- amount``, then
  clips to [0, 1] (boxes do not change).
* :class:`BoxAugment` draws all of these per image from a ``numpy.random.Generator`` (seven
  numbers per image, always, so a seed gives the same result whatever is switched off).

>>> aug = BoxAugment(flip=0.5, scale=(0.75, 1.25), translate=0.1)
>>> image, boxes, labels = aug(image, boxes, labels, np.random.default_rng(0))
>>> images, targets = aug.batch(images, targets, rng)   # collate_detection's normalised targets
"""
from __future__ import annotations

import numpy as np

from ..errors import StridedError
from .image import to_float

__all__ = ["BoxAugmentError", "hflip", "hflip_boxes", "scale_translate", "transform_boxes", "color_jitter",
           "BoxAugment"]


class BoxAugmentError(StridedError, ValueError):
    """A bad image, box array or augmentation setting (also a ValueError)."""


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3:
        raise BoxAugmentError(f"image must be (H, W, C), received shape {image.shape}")
    return to_float(image)


def _check_boxes(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise BoxAugmentError(f"boxes must be (K, 4) rows of [x1, y1, x2, y2], received shape {b.shape}")
    return b


def hflip_boxes(boxes, width) -> np.ndarray:
    """Mirror xyxy pixel boxes of an image ``width`` pixels wide: ``[W - x2, y1, W - x1, y2]``."""
    b = _check_boxes(boxes)
    return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)


def hflip(image, boxes) -> tuple:
    """``(image mirrored left-right, boxes mirrored)``."""
    image = _check_image(image)
    return np.ascontiguousarray(image[:, ::-1]), hflip_boxes(boxes, image.shape[1])


def transform_boxes(boxes, size, scale: float, shift=(0.0, 0.0), min_visibility: float = 0.25,
                    min_size: float = 1.0) -> tuple:
    """Boxes under ``p' = scale (p - centre) + centre + shift``, clipped; ``(boxes, keep)``.

    ``size`` ``(H, W)``; ``keep`` (bool, one per input box) says which boxes survive the
    rule of the module docstring; the returned boxes are the kept ones, clipped to
    ``[0, W] x [0, H]``.
    """
    H, W = size
    b = _check_boxes(boxes)
    centre = np.array([W / 2, H / 2, W / 2, H / 2])
    moved = scale * (b - centre) + centre + np.array([shift[0], shift[1], shift[0], shift[1]], dtype=np.float64)
    clipped = np.clip(moved, 0.0, [W, H, W, H])
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (cw >= min_size) & (ch >= min_size) & (cw * ch >= min_visibility * area) & (area > 0)
    return clipped[keep], keep


def _resample_axis(image: np.ndarray, source: np.ndarray, axis: int, fill: float) -> np.ndarray:
    """Read ``image`` along ``axis`` at continuous pixel indices ``source`` (bilinear).

    ``source[j]`` is where output index ``j`` reads (index ``i`` is the centre of pixel ``i``);
    places in ``[-0.5, n - 0.5]`` read the image (the outer half pixels repeat the edge),
    farther ones read ``fill``.
    """
    n = image.shape[axis]
    inside = (source >= -0.5) & (source <= n - 0.5)
    u = np.clip(source, 0.0, n - 1.0)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (u - lo).astype(image.dtype)
    shape = [1] * image.ndim
    shape[axis] = len(source)
    w = w.reshape(shape)
    out = np.take(image, lo, axis=axis) * (1 - w) + np.take(image, hi, axis=axis) * w
    return np.where(inside.reshape(shape), out, np.asarray(fill, image.dtype))


def scale_translate(image, boxes, scale: float, shift=(0.0, 0.0), fill: float = 0.5,
                    min_visibility: float = 0.25, min_size: float = 1.0) -> tuple:
    """Scale about the centre by ``scale`` and move by ``shift = (dx, dy)`` pixels.

    Returns ``(image, boxes, keep)``: the warped image (same size), the kept boxes and the
    bool mask of kept input boxes (see the module docstring for the rule).
    """
    image = _check_image(image)
    if not scale > 0:
        raise BoxAugmentError(f"scale must be > 0, received scale={scale}")
    H, W = image.shape[:2]
    dx, dy = float(shift[0]), float(shift[1])
    # output pixel j (centre j + 0.5) reads source edge-coordinate x = (j + 0.5 - W/2 - dx) / s + W/2
    src_x = (np.arange(W) + 0.5 - W / 2 - dx) / scale + W / 2 - 0.5
    src_y = (np.arange(H) + 0.5 - H / 2 - dy) / scale + H / 2 - 0.5
    out = _resample_axis(_resample_axis(image, src_y, 0, fill), src_x, 1, fill)
    new_boxes, keep = transform_boxes(boxes, (H, W), scale, (dx, dy), min_visibility, min_size)
    return out, new_boxes, keep


def color_jitter(image, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0) -> np.ndarray:
    """Apply brightness, contrast and saturation *factors* (1 = unchanged), then clip to [0, 1].

    ``x *= brightness``; ``x = grey_mean + contrast (x - grey_mean)``;
    ``x = grey + saturation (x - grey)`` with ``grey = 0.299 R + 0.587 G + 0.114 B`` per pixel.
    """
    x = _check_image(image).copy()
    x *= np.float32(brightness)
    if x.shape[-1] == 3:
        grey = x @ np.array([0.299, 0.587, 0.114], dtype=x.dtype)
    else:
        grey = x.mean(axis=-1)
    x = grey.mean() + np.float32(contrast) * (x - grey.mean())
    if x.shape[-1] == 3:
        grey = (x @ np.array([0.299, 0.587, 0.114], dtype=x.dtype))[..., None]
        x = grey + np.float32(saturation) * (x - grey)
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


def _check_range(name, value, low):
    value = tuple(float(v) for v in value) if np.ndim(value) else (float(value), float(value))
    if len(value) != 2 or value[0] > value[1] or value[0] < low:
        raise BoxAugmentError(f"{name} must be a pair (low, high) with {low} <= low <= high, received {name}={value}")
    return value


class BoxAugment:
    """Random flip, scale/translate and colour jitter of one image and its boxes.

    ``flip``: probability of a left-right flip; ``scale``: ``(low, high)`` of the scale
    factor (uniform); ``translate``: largest shift as a fraction of the width / height
    (uniform in ``+-translate``); ``brightness``, ``contrast``, ``saturation``: factors
    uniform in ``1 +- amount``; ``fill``: grey level of the uncovered border;
    ``min_visibility``, ``min_size``: the box-dropping rule (module docstring).

    Per image it draws, in this order: flip coin, scale, dx, dy, brightness, contrast,
    saturation.
    """

    def __init__(self, flip: float = 0.5, scale=(0.75, 1.25), translate: float = 0.1, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2, fill: float = 0.5, min_visibility: float = 0.25,
                 min_size: float = 2.0):
        if not 0.0 <= flip <= 1.0:
            raise BoxAugmentError(f"flip must be a probability in [0, 1], received flip={flip}")
        self.flip = float(flip)
        self.scale = _check_range("scale", scale, 1e-3)
        for name, value in (("translate", translate), ("brightness", brightness), ("contrast", contrast),
                            ("saturation", saturation)):
            if not 0.0 <= value <= 1.0:
                raise BoxAugmentError(f"{name} must be in [0, 1], received {name}={value}")
        if not 0.0 <= min_visibility <= 1.0:
            raise BoxAugmentError(f"min_visibility must be in [0, 1], received min_visibility={min_visibility}")
        self.translate, self.brightness, self.contrast, self.saturation = translate, brightness, contrast, saturation
        self.fill, self.min_visibility, self.min_size = fill, min_visibility, min_size

    def __call__(self, image, boxes, labels, rng: np.random.Generator) -> tuple:
        """``(image, boxes, labels)`` -> augmented ``(image float32, boxes (K', 4), labels (K',))``, pixels."""
        image = _check_image(image)
        boxes = _check_boxes(boxes)
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(boxes):
            raise BoxAugmentError(f"{len(boxes)} boxes but {len(labels)} labels")
        H, W = image.shape[:2]
        u = rng.random(7)
        if u[0] < self.flip:
            image, boxes = hflip(image, boxes)
        s = self.scale[0] + (self.scale[1] - self.scale[0]) * u[1]
        dx, dy = (2 * u[2] - 1) * self.translate * W, (2 * u[3] - 1) * self.translate * H
        if (s, dx, dy) != (1.0, 0.0, 0.0):
            image, boxes, keep = scale_translate(image, boxes, s, (dx, dy), self.fill, self.min_visibility,
                                                 self.min_size)
            labels = labels[keep]
        factors = [1 + (2 * v - 1) * a for v, a in zip(u[4:], (self.brightness, self.contrast, self.saturation))]
        if factors != [1.0, 1.0, 1.0]:
            image = color_jitter(image, *factors)
        return image.astype(np.float32, copy=False), boxes, labels

    def batch(self, images, targets, rng: np.random.Generator) -> tuple:
        """Augment a collated batch: ``images`` ``(N, H, W, C)`` and targets as
        :func:`strided.detect.training.collate_detection` gives (boxes normalised to [0, 1]).
        Returns the same structure."""
        images = np.asarray(images)
        if images.ndim != 4 or len(images) != len(targets):
            raise BoxAugmentError(f"batch needs images (N, H, W, C) and N targets, received shape {images.shape} "
                                  f"and {len(targets)} targets")
        H, W = images.shape[1:3]
        scale = np.array([W, H, W, H], dtype=np.float64)
        out_images, out_targets = np.empty(images.shape, np.float32), []
        for i, (boxes, labels) in enumerate(targets):
            image, b, lab = self(images[i], np.asarray(boxes, np.float64).reshape(-1, 4) * scale, labels, rng)
            out_images[i] = image
            out_targets.append(((b / scale).astype(np.float32), np.asarray(lab, np.int64)))
        return out_images, out_targets

    def __repr__(self):
        return (f"BoxAugment(flip={self.flip:g}, scale={self.scale}, translate={self.translate:g}, "
                f"brightness={self.brightness:g}, contrast={self.contrast:g}, saturation={self.saturation:g})")
