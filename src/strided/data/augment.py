"""Data augmentation on batches of images, written here on NumPy.

Every transform takes a float batch ``x`` ``(N, H, W, C)`` in [0, 1] and a
``numpy.random.Generator`` and returns a new batch; the same generator state
gives the same result.  The course's list:

* mirroring: :class:`HorizontalFlip`, :class:`VerticalFlip`
* random cropping: :class:`RandomCrop` (pad, then cut the original size at a random offset)
* rotation and shearing: :class:`Rotate`, :class:`Shear`, both one affine warp
  (:func:`affine_warp`: inverse mapping about the centre, bilinear interpolation)
* colour shifting: :class:`ColorShift` (random per-channel offsets) and
  :class:`PCAColor` (AlexNet's "PCA colour augmentation")

>>> augment = Compose([HorizontalFlip(), RandomCrop(padding=2), Rotate(10)])
>>> x_aug = augment(x, np.random.default_rng(0))
"""
from __future__ import annotations

import numpy as np

__all__ = ["HorizontalFlip", "VerticalFlip", "RandomCrop", "Rotate", "Shear", "ColorShift", "PCAColor", "Compose",
           "affine_warp", "standard"]


class Transform:
    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class HorizontalFlip(Transform):
    """Mirror left-right each image with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, :, ::-1]
        return out


class VerticalFlip(HorizontalFlip):
    """Mirror top-bottom each image with probability ``p``."""

    def __call__(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, ::-1]
        return out


class RandomCrop(Transform):
    """Pad by ``padding`` pixels (zeros or reflection) and crop back to the original size at a
    random offset: the image moves by up to ``padding`` pixels in each direction."""

    def __init__(self, padding: int = 4, mode: str = "constant"):
        if mode not in ("constant", "reflect"):
            raise ValueError(f"mode must be 'constant' or 'reflect', received mode={mode!r}")
        self.padding, self.mode = int(padding), mode

    def __call__(self, x, rng):
        p = self.padding
        if p == 0:
            return x.copy()
        N, H, W, _ = x.shape
        padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode=self.mode)
        top, left = rng.integers(0, 2 * p + 1, N), rng.integers(0, 2 * p + 1, N)
        rows = top[:, None] + np.arange(H)            # (N, H)
        cols = left[:, None] + np.arange(W)           # (N, W)
        return padded[np.arange(N)[:, None, None], rows[:, :, None], cols[:, None, :]]


def affine_warp(x: np.ndarray, matrices: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Warp each image by a 2x2 matrix about its centre (bilinear, ``fill`` outside).

    For output pixel ``p`` (relative to the centre) the value is read at
    ``A^-1 p`` in the input, so every output pixel gets exactly one value.
    ``matrices``: ``(N, 2, 2)`` acting on (row, column) coordinates.
    """
    N, H, W, C = x.shape
    cy, cx = (H - 1) / 2, (W - 1) / 2
    rr, cc = np.meshgrid(np.arange(H) - cy, np.arange(W) - cx, indexing="ij")
    grid = np.stack([rr.ravel(), cc.ravel()])                   # (2, H*W)
    src = np.linalg.inv(matrices) @ grid                        # (N, 2, H*W)
    r, c = src[:, 0] + cy, src[:, 1] + cx
    r0, c0 = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    fr, fc = (r - r0)[..., None], (c - c0)[..., None]
    out = np.zeros((N, H * W, C), dtype=np.float64)
    n = np.arange(N)[:, None]
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rows, cols = r0 + dr, c0 + dc
        inside = ((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W))[..., None]
        values = x[n, np.clip(rows, 0, H - 1), np.clip(cols, 0, W - 1)]
        out += weight * np.where(inside, values, fill)
    return out.reshape(N, H, W, C).astype(x.dtype)


class Rotate(Transform):
    """Rotate each image by a random angle in ``[-max_degrees, max_degrees]``."""

    def __init__(self, max_degrees: float = 15.0, fill: float = 0.0):
        self.max_degrees, self.fill = float(max_degrees), fill

    def __call__(self, x, rng):
        theta = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees, len(x)))
        cos, sin = np.cos(theta), np.sin(theta)
        matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
        return affine_warp(x, matrices, self.fill)


class Shear(Transform):
    """Shear each image horizontally: column += s * row, ``s`` uniform in ``[-max_shear, max_shear]``."""

    def __init__(self, max_shear: float = 0.2, fill: float = 0.0):
        self.max_shear, self.fill = float(max_shear), fill

    def __call__(self, x, rng):
        s = rng.uniform(-self.max_shear, self.max_shear, len(x))
        matrices = np.zeros((len(x), 2, 2))
        matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
        matrices[:, 1, 0] = s
        return affine_warp(x, matrices, self.fill)


class ColorShift(Transform):
    """Add a random offset in ``[-max_offset, max_offset]`` to each channel of each image; clip to [0, 1]."""

    def __init__(self, max_offset: float = 0.1):
        self.max_offset = float(max_offset)

    def __call__(self, x, rng):
        offsets = rng.uniform(-self.max_offset, self.max_offset, (len(x), 1, 1, x.shape[-1]))
        return np.clip(x + offsets, 0.0, 1.0).astype(x.dtype)


class PCAColor(Transform):
    """AlexNet's PCA colour augmentation: add ``sum_i alpha_i * s_i * v_i`` to every pixel,
    ``alpha_i ~ N(0, std)``, with ``v_i`` the eigenvectors of the data set's RGB covariance and
    ``s_i`` the square roots of its eigenvalues, the spread along each principal axis
    (``PCAColor.fit(images)``).  With one channel it shifts brightness."""

    def __init__(self, std: float = 0.1, eigenvalues=None, eigenvectors=None):
        self.std = float(std)
        self.eigenvalues = None if eigenvalues is None else np.asarray(eigenvalues, np.float64)
        self.eigenvectors = None if eigenvectors is None else np.asarray(eigenvectors, np.float64)

    @classmethod
    def fit(cls, images: np.ndarray, std: float = 0.1) -> "PCAColor":
        pixels = np.asarray(images, np.float64).reshape(-1, images.shape[-1])
        if images.dtype == np.uint8:
            pixels = pixels / 255.0
        covariance = np.atleast_2d(np.cov(pixels, rowvar=False))
        values, vectors = np.linalg.eigh(covariance)
        return cls(std, np.sqrt(np.maximum(values, 0)), vectors)

    def __call__(self, x, rng):
        C = x.shape[-1]
        values = self.eigenvalues if self.eigenvalues is not None else np.full(C, 0.1)
        vectors = self.eigenvectors if self.eigenvectors is not None else np.eye(C)
        alpha = rng.normal(0.0, self.std, (len(x), C))
        shift = (alpha * values) @ vectors.T                   # (N, C)
        return np.clip(x + shift[:, None, None, :], 0.0, 1.0).astype(x.dtype)

    def __repr__(self):
        return f"PCAColor(std={self.std})"


class Compose(Transform):
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng):
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self):
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


def standard(name: str, channels: int = 1) -> Compose:
    """A sensible default pipeline for a data set.  Digits and letters are not mirrored
    (a mirrored 2 is not a 2); clothing, faces and photos are."""
    if any(key in name for key in ("mnist-5k", "digits", "h5:")) and "fashion" not in name:
        steps = [RandomCrop(padding=2), Rotate(10)]
    elif "fashion" in name:
        steps = [HorizontalFlip(), RandomCrop(padding=2)]
    else:
        steps = [HorizontalFlip(), RandomCrop(padding=2), Rotate(10)]
    if channels == 3:
        steps.append(ColorShift(0.05))
    return Compose(steps)
