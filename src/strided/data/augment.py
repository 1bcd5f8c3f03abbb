"""Data augmentation on NumPy batches.

Every augmentation is a small class called as ``aug(x, rng) -> x`` on a float batch
``x`` of shape ``(N, H, W, C)`` (values in [0, 1]) with a ``numpy.random.Generator``;
it draws its random parameters per image from ``rng`` only, so the same seed gives the
same output, and it returns a new array (the input is left alone).

>>> aug = Compose([HorizontalFlip(), RandomCrop(padding=4), Rotate(15)])
>>> y = aug(x, np.random.default_rng(0))       # same shape as x
>>> standard("fashion-mnist", channels=1)      # a sensible default for a data set

Geometric warps (:func:`rotate`, :func:`shear`) share one helper, :func:`affine_warp`:
for every output pixel it computes where it comes from in the input (the inverse of the
transform, about the image centre) and reads that point by bilinear interpolation;
points outside the image read ``fill``.
"""
from __future__ import annotations


import numpy as np

from .image import to_float

__all__ = ["HorizontalFlip", "VerticalFlip", "RandomCrop", "Rotate", "Shear",
           "ColorShift", "PCAColor", "Compose", "standard", "affine_warp", "rotate",
           "shear", "IMAGENET_EIGVALS", "IMAGENET_EIGVECS"]


def _check_batch(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"augmentations take a batch (N, H, W, C), received shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"augmentations take float images in [0, 1], received dtype "
                         f"{x.dtype} (DataLoader converts uint8 before its transform)")
    return x


def _check_probability(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], received p={p}")
    return float(p)


def _check_nonnegative(name, value):
    if value < 0:
        raise ValueError(f"{name} must be >= 0, received {name}={value}")
    return value


# --------------------------------------------------------------------------- flips
class _Flip:
    axis = 2

    def __init__(self, p: float = 0.5):
        self.p = _check_probability(p)

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = _check_batch(x)
        flip = rng.random(len(x)) < self.p          # which images to flip
        out = x.copy()
        out[flip] = np.flip(x[flip], axis=self.axis)
        return out

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class HorizontalFlip(_Flip):
    """Mirror each image left-right (reverse the W axis) with probability ``p``."""
    axis = 2


class VerticalFlip(_Flip):
    """Flip each image upside down (reverse the H axis) with probability ``p``."""
    axis = 1


# --------------------------------------------------------------------------- crop
class RandomCrop:
    """Pad each side by ``padding`` pixels, then crop ``(H, W)`` back at a random offset.

    The result is the image shifted by up to ``padding`` pixels in each direction (a
    different shift per image); the uncovered border is ``fill`` (``mode='constant'``)
    or the mirrored image (``mode='reflect'``, as ``np.pad``).
    """

    MODES = ("constant", "reflect")

    def __init__(self, padding: int = 4, mode: str = "constant", fill: float = 0.0):
        if int(padding) != padding or padding < 0:
            raise ValueError(f"padding must be an integer >= 0, received padding={padding!r}")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, received mode={mode!r}")
        self.padding, self.mode, self.fill = int(padding), mode, float(fill)

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = _check_batch(x)
        N, H, W, C = x.shape
        p = self.padding
        if self.mode == "reflect" and (p >= H or p >= W):
            raise ValueError(f"reflect padding needs padding < image size, received "
                             f"padding={p} for {H}x{W} images")
        pad = ((0, 0), (p, p), (p, p), (0, 0))
        if self.mode == "constant":
            padded = np.pad(x, pad, mode="constant", constant_values=self.fill)
        else:
            padded = np.pad(x, pad, mode="reflect")
        top = rng.integers(0, 2 * p + 1, size=N)     # offset of the crop in the padded image
        left = rng.integers(0, 2 * p + 1, size=N)
        rows = top[:, None] + np.arange(H)           # (N, H)
        cols = left[:, None] + np.arange(W)          # (N, W)
        n = np.arange(N)[:, None, None]
        return padded[n, rows[:, :, None], cols[:, None, :]]

    def __repr__(self):
        fill = f", fill={self.fill}" if self.fill != 0.0 else ""
        return f"RandomCrop(padding={self.padding}, mode={self.mode!r}{fill})"


# --------------------------------------------------------------------------- affine warps
def _bilinear_sample(x, src_rows, src_cols, fill):
    """Read ``x`` ``(N, H, W, C)`` at real positions ``(N, OH, OW)``; outside -> ``fill``."""
    N, H, W, C = x.shape
    r0 = np.floor(src_rows).astype(np.intp)
    c0 = np.floor(src_cols).astype(np.intp)
    wr = (src_rows - r0).astype(x.dtype)[..., None]    # weight of row r0 + 1
    wc = (src_cols - c0).astype(x.dtype)[..., None]
    n = np.arange(N)[:, None, None]
    out = np.zeros(src_rows.shape + (C,), dtype=x.dtype)
    for dr, weight_r in ((0, 1 - wr), (1, wr)):
        for dc, weight_c in ((0, 1 - wc), (1, wc)):
            r, c = r0 + dr, c0 + dc
            inside = ((r >= 0) & (r < H) & (c >= 0) & (c < W))[..., None]
            values = x[n, np.clip(r, 0, H - 1), np.clip(c, 0, W - 1)]
            out += weight_r * weight_c * np.where(inside, values, x.dtype.type(fill))
    return out


def affine_warp(x, matrices, fill: float = 0.0) -> np.ndarray:
    """Transform each image of ``x`` ``(N, H, W, C)`` by a 2x2 linear map about its centre.

    ``matrices`` ``(N, 2, 2)`` (or one ``(2, 2)`` for all) maps an input point to its
    output place, in (row, column) pixel coordinates relative to the centre
    ``(cy, cx) = ((H - 1) / 2, (W - 1) / 2)``.  It is applied by *inverse mapping*: each
    output pixel ``p`` reads the input at ``A^-1 (p - centre) + centre`` by bilinear
    interpolation, so every output pixel gets exactly one value (no holes); positions
    outside the image read ``fill``.  Returns an array of the same shape and dtype.

    ``A = [[0, -1], [1, 0]]`` turns a square image a quarter counter-clockwise
    (``np.rot90(x, 1, axes=(1, 2))``); ``A = [[1, 0], [s, 1]]`` shears it.
    """
    x = _check_batch(x)
    N, H, W, C = x.shape
    A = np.broadcast_to(np.asarray(matrices, dtype=np.float64), (N, 2, 2))
    inverse = np.linalg.inv(A)                      # output place -> input place
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    r = (np.arange(H) - cy)[None, :, None]          # (1, H, 1) row offset from centre
    c = (np.arange(W) - cx)[None, None, :]          # (1, 1, W)
    m = inverse[:, :, :, None, None]                # (N, 2, 2, 1, 1)
    src_rows = m[:, 0, 0] * r + m[:, 0, 1] * c + cy  # (N, H, W)
    src_cols = m[:, 1, 0] * r + m[:, 1, 1] * c + cx
    return _bilinear_sample(x, src_rows, src_cols, fill)


def rotate(x, degrees, fill: float = 0.0) -> np.ndarray:
    """Rotate each image counter-clockwise (as displayed) by ``degrees`` (scalar or (N,)).

    ``rotate(x, 90)`` of a square image equals ``np.rot90(x, 1, axes=(1, 2))``.
    """
    x = _check_batch(x)
    theta = np.deg2rad(np.broadcast_to(np.asarray(degrees, dtype=np.float64), (len(x),)))
    cos, sin = np.cos(theta), np.sin(theta)
    # a counter-clockwise turn on screen, in (row, col) coordinates (rows point down)
    matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    return affine_warp(x, matrices, fill)


def shear(x, factor, fill: float = 0.0) -> np.ndarray:
    """Shear each image horizontally: row ``r`` below the centre moves ``factor * r``
    pixels to the right (``factor`` scalar or (N,); 0 is the identity)."""
    x = _check_batch(x)
    s = np.broadcast_to(np.asarray(factor, dtype=np.float64), (len(x),))
    ones, zeros = np.ones_like(s), np.zeros_like(s)
    matrices = np.stack([np.stack([ones, zeros], -1), np.stack([s, ones], -1)], 1)
    return affine_warp(x, matrices, fill)


class Rotate:
    """Rotate each image by an angle drawn uniformly from [-max_degrees, max_degrees]
    (counter-clockwise positive), bilinear, corners filled with ``fill``."""

    def __init__(self, max_degrees: float = 15.0, fill: float = 0.0):
        self.max_degrees = float(_check_nonnegative("max_degrees", max_degrees))
        self.fill = float(fill)

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = _check_batch(x)
        angles = rng.uniform(-self.max_degrees, self.max_degrees, size=len(x))
        return rotate(x, angles, self.fill)

    def __repr__(self):
        fill = f", fill={self.fill}" if self.fill != 0.0 else ""
        return f"Rotate(max_degrees={self.max_degrees:g}{fill})"


class Shear:
    """Shear each image horizontally by a factor drawn uniformly from
    [-max_shear, max_shear] (a factor, not an angle: 0.2 moves the bottom row of a
    28-pixel image about 2.7 pixels sideways), bilinear, borders ``fill``."""

    def __init__(self, max_shear: float = 0.2, fill: float = 0.0):
        self.max_shear = float(_check_nonnegative("max_shear", max_shear))
        self.fill = float(fill)

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = _check_batch(x)
        factors = rng.uniform(-self.max_shear, self.max_shear, size=len(x))
        return shear(x, factors, self.fill)

    def __repr__(self):
        fill = f", fill={self.fill}" if self.fill != 0.0 else ""
        return f"Shear(max_shear={self.max_shear:g}{fill})"


# --------------------------------------------------------------------------- colour
class ColorShift:
    """Add a random offset in [-max_offset, max_offset] to each channel of each image,
    then clip to [0, 1] (on one channel: a brightness shift)."""

    def __init__(self, max_offset: float = 0.1):
        self.max_offset = float(_check_nonnegative("max_offset", max_offset))

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = _check_batch(x)
        N, _, _, C = x.shape
        offsets = rng.uniform(-self.max_offset, self.max_offset, size=(N, 1, 1, C))
        return np.clip(x + offsets.astype(x.dtype), 0.0, 1.0)

    def __repr__(self):
        return f"ColorShift(max_offset={self.max_offset:g})"


# The principal axes of ImageNet's RGB pixels (values in [0, 1]): standard deviations
# along the axes and the axes as columns (fb.resnet.torch's "Lighting" constants).
IMAGENET_EIGVALS = np.array([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVECS = np.array([[-0.5675, 0.7192, 0.4009],
                             [-0.5808, -0.0045, -0.8140],
                             [-0.5836, -0.6948, 0.4203]])


class PCAColor:
    """AlexNet's PCA colour augmentation ("fancy PCA", Krizhevsky et al. 2012).

    Each image gets the same offset on every pixel::

        offset = eigvecs @ (alpha * eigvals),   alpha ~ Normal(0, std) per axis

    so colours move along the principal axes of the data set's pixel colours, most
    along the axis of largest spread.  ``eigvecs`` ``(C, C)`` holds the axes as
    columns and ``eigvals`` ``(C,)`` the *standard deviations* along them (square roots
    of the pixel covariance's eigenvalues, pixels in [0, 1]) -- the scale-free form of
    the paper's formula, whose eigenvalues are for 0..255 pixels.  The result is
    clipped to [0, 1].

    Defaults: ImageNet's axes for RGB; on one channel (``eigvecs = [[1]]``) it is a
    brightness shift of standard deviation ``std * eigvals[0]`` (ImageNet's 0.2175 if
    not given).  :meth:`fit` computes the axes from a data set.
    """

    def __init__(self, std: float = 0.1, eigvals=None, eigvecs=None):
        self.std = float(_check_nonnegative("std", std))
        if eigvecs is not None and eigvals is None:
            raise ValueError("eigvecs needs eigvals (the standard deviation along each axis)")
        self.eigvals = None if eigvals is None else np.asarray(eigvals, dtype=np.float64)
        self.eigvecs = None if eigvecs is None else np.asarray(eigvecs, dtype=np.float64)
        if self.eigvals is not None and self.eigvecs is None:
            self.eigvecs = np.eye(len(self.eigvals))
        if self.eigvals is not None:
            C = len(self.eigvals)
            if self.eigvals.shape != (C,) or self.eigvecs.shape != (C, C):
                raise ValueError(f"eigvals must be (C,) and eigvecs (C, C), received "
                                 f"{self.eigvals.shape} and {self.eigvecs.shape}")

    @classmethod
    def fit(cls, images, std: float = 0.1, max_pixels: int = 1_000_000, seed: int = 0):
        """Principal axes of the pixel colours of ``images`` ``(N, H, W, C)``.

        ``uint8`` images are scaled to [0, 1]; at most ``max_pixels`` pixels (a seeded
        random sample) are used.  Axes are sorted by decreasing spread.
        """
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"PCAColor.fit takes images (N, H, W, C), "
                             f"received shape {images.shape}")
        pixels = images.reshape(-1, images.shape[-1])
        if len(pixels) > max_pixels:
            rng = np.random.default_rng(seed)
            pixels = pixels[rng.choice(len(pixels), max_pixels, replace=False)]
        pixels = to_float(pixels, np.float64)          # uint8 / 255; floats as they are
        cov = np.atleast_2d(np.cov(pixels, rowvar=False))
        variances, axes = np.linalg.eigh(cov)             # ascending
        order = np.argsort(variances)[::-1]
        eigvals = np.sqrt(np.clip(variances[order], 0.0, None))
        return cls(std, eigvals, axes[:, order])

    def _axes(self, channels: int):
        if self.eigvals is not None:
            if len(self.eigvals) != channels:
                raise ValueError(f"PCAColor was given {len(self.eigvals)}-channel axes, "
                                 f"received images with {channels} channels")
            return self.eigvals, self.eigvecs
        if channels == 3:
            return IMAGENET_EIGVALS, IMAGENET_EIGVECS
        if channels == 1:
            return IMAGENET_EIGVALS[:1], np.ones((1, 1))
        raise ValueError(f"PCAColor has default axes for 1 or 3 channels, received "
                         f"{channels}; use PCAColor.fit(images)")

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = _check_batch(x)
        N, _, _, C = x.shape
        eigvals, eigvecs = self._axes(C)
        alpha = rng.normal(0.0, self.std, size=(N, C))
        offsets = (alpha * eigvals) @ eigvecs.T              # (N, C): eigvecs @ (alpha*eigvals)
        return np.clip(x + offsets[:, None, None, :].astype(x.dtype), 0.0, 1.0)

    def __repr__(self):
        if self.eigvals is None:
            return f"PCAColor(std={self.std:g})"
        vals = np.array2string(self.eigvals, precision=4, separator=", ")
        return f"PCAColor(std={self.std:g}, eigvals={vals})"


# --------------------------------------------------------------------------- pipelines
class Compose:
    """Apply augmentations in order, all drawing from the same ``rng``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ValueError(f"Compose takes callables t(x, rng), received {t!r}")

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __len__(self):
        return len(self.transforms)

    def __repr__(self):
        if not self.transforms:
            return "Compose([])"
        inner = "".join(f"    {t!r},\n" for t in self.transforms)
        return f"Compose([\n{inner}])"


def standard(name: str, channels: int = 1) -> Compose:
    """A sensible default augmentation pipeline for the data set ``name``.

    * ``fashion-mnist``: left-right mirror (clothes look the same mirrored) and a
      shift of up to 2 pixels.
    * ``mnist-5k`` / ``mnist`` / ``digits``: a small shift and a rotation of up to 10
      degrees -- no flips, since a mirrored digit is no longer that digit (a mirrored
      2 or 7 is not a digit at all, and flipping turns 6 into a 9-like shape).
    * ``lfw-faces`` and anything else (``folder:...``, ``h5:...``, photos): mirror, a
      reflect-padded shift and PCA colour (brightness on one channel).
    """
    key = name.lower()
    if key == "fashion-mnist":
        return Compose([HorizontalFlip(), RandomCrop(padding=2)])
    if key in ("mnist-5k", "mnist"):
        return Compose([RandomCrop(padding=2), Rotate(10)])
    if key == "digits":                                # 8x8 images: 1 pixel is a lot
        return Compose([RandomCrop(padding=1), Rotate(10)])
    colour = [PCAColor(0.1)] if channels in (1, 3) else [ColorShift(0.1)]
    if key == "lfw-faces":
        return Compose([HorizontalFlip(), RandomCrop(padding=2, mode="reflect"), *colour])
    return Compose([HorizontalFlip(), RandomCrop(padding=4, mode="reflect"), *colour])
