"""Test-time augmentation (TTA): classify several views of each image and average.

The views (all NHWC, ``size x size``, taken from a *canvas* around the image):

* ``"none"``  - the centre crop (1 view);
* ``"flip"``  - the centre crop and its horizontal mirror (2 views);
* ``"10crop"`` - AlexNet's / VGG's multi-crop: the four corners and the centre, then the
  horizontal mirrors of those five (10 views), in :func:`ten_crops`' order
  ``[top-left, top-right, bottom-left, bottom-right, centre, and the same five mirrored]``
  (torchvision's ``TenCrop`` order).

**The canvas (resize rule).**  The crops have the model's input size ``s``; they are cut from
a canvas whose shorter side is ``round(s / 0.875)`` (``CROP_FRACTION``: the crop covers 87.5 %
of it, as in the VGG / ImageNet evaluation: 224 from 256):

* an image *equal* to the input size (a test set already at ``s x s``, e.g. Fashion-MNIST at
  28 x 28) is **zero-padded** by ``p = round((s / 0.875 - s) / 2)`` on each side (2 pixels for 28:
  28 -> 32; zero is the black background of MNIST-like data; ``pad_mode="reflect"`` mirrors the
  border instead).  So the centre crop is exactly the image and ``"none"`` equals no TTA;
* a *larger* image (a photo) is used as it is: :func:`resize_shorter_side` brings a photo's
  shorter side to ``round(s / 0.875)`` first (256 for 224), and the crops come from it.

**Averaging.**  Each view's logits go through softmax and the *probabilities* are averaged
(not the logits: a mean of logits lets one over-confident view dominate; the mean of
probabilities is the mixture the ensemble literature averages).  :class:`TTAModel` and
:class:`strided.train.Ensemble` return ``log(mean probability)`` as their "logits": softmax of
it gives the mean probability back exactly, and ``F.cross_entropy`` of it is the negative
log-likelihood of the averaged prediction, so ``strided.train.evaluate`` and ``predict`` work
with them unchanged.  Inference only: the forward pass builds no graph.

>>> probs = predict_tta(model, images, mode="10crop")          # (N, K), rows sum to 1
>>> evaluate(TTAModel(model, "flip"), test_loader)["accuracy"]
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .errors import StridedError
from .nn import Module
from .tensor import Tensor, no_grad

__all__ = ["MODES", "CROP_FRACTION", "ten_crops", "flip_views", "center_crop", "canvas_padding", "pad_canvas",
           "resize_shorter_side", "tta_views", "TTAModel", "predict_tta", "log_mean_probabilities"]

MODES = ("none", "flip", "10crop")
CROP_FRACTION = 0.875
VIEWS = {"none": 1, "flip": 2, "10crop": 10}


def _check_images(images, size: int | None = None) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise StridedError(f"expected images (N, H, W, C), received shape {images.shape}")
    if size is not None:
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise StridedError(f"crop size must be a positive int, received size={size!r}")
        if size > images.shape[1] or size > images.shape[2]:
            raise StridedError(f"crop size {size} is larger than the images (H, W) = {images.shape[1:3]}")
    return images


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise StridedError(f"TTA mode must be one of {', '.join(MODES)}, received mode={mode!r}")
    return mode


def flip_views(images) -> np.ndarray:
    """``(2, N, H, W, C)``: the images and their horizontal mirrors (the W axis reversed)."""
    images = _check_images(images)
    return np.stack([images, images[:, :, ::-1, :]])


def center_crop(images, size: int) -> np.ndarray:
    """``(N, size, size, C)``: the centre, offset ``((H - size) // 2, (W - size) // 2)``."""
    images = _check_images(images, size)
    top, left = (images.shape[1] - size) // 2, (images.shape[2] - size) // 2
    return images[:, top:top + size, left:left + size, :]


def ten_crops(images, size: int) -> np.ndarray:
    """``(10, N, size, size, C)``: AlexNet / VGG 10-crop of NHWC ``images`` (H, W >= ``size``).

    Order: top-left, top-right, bottom-left, bottom-right, centre (offset as
    :func:`center_crop`), then the horizontal mirrors of those five in the same order.
    """
    images = _check_images(images, size)
    H, W = images.shape[1:3]
    s = size
    five = [images[:, :s, :s], images[:, :s, W - s:], images[:, H - s:, :s], images[:, H - s:, W - s:],
            center_crop(images, s)]
    return np.stack(five + [c[:, :, ::-1, :] for c in five])


def canvas_padding(size: int) -> int:
    """Pixels added on each side of a ``size x size`` image: ``round((size / 0.875 - size) / 2)``."""
    return int(round((size / CROP_FRACTION - size) / 2))


def pad_canvas(images, pad: int, pad_mode: str = "zero") -> np.ndarray:
    """``images`` padded by ``pad`` pixels on each side of H and W: zeros, or ``"reflect"``."""
    images = _check_images(images)
    if pad_mode not in ("zero", "reflect"):
        raise StridedError(f"pad_mode must be 'zero' or 'reflect', received pad_mode={pad_mode!r}")
    if pad <= 0:
        return images
    widths = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    return np.pad(images, widths, mode="constant" if pad_mode == "zero" else "reflect")


def resize_shorter_side(image, side: int) -> np.ndarray:
    """A ``uint8`` photo ``(H, W, C)`` resized (bicubic, Pillow) so that ``min(H, W) == side``."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3:
        raise StridedError(f"resize_shorter_side expects a uint8 image (H, W, C), received dtype {array.dtype} "
                           f"shape {array.shape}")
    H, W = array.shape[:2]
    scale = side / min(H, W)
    new = (max(side, int(round(W * scale))), max(side, int(round(H * scale))))
    gray = array.shape[2] == 1
    pil = Image.fromarray(array[:, :, 0] if gray else array).resize(new, Image.BICUBIC)
    out = np.asarray(pil)
    return out[:, :, None] if gray else out


def tta_views(images, size: int, mode: str, pad_mode: str = "zero") -> np.ndarray:
    """``(V, N, size, size, C)``: the views of ``mode`` (module docstring) for NHWC ``images``.
    Images of exactly ``size x size`` are padded to the canvas first; larger ones are the canvas."""
    check_mode(mode)
    images = _check_images(images)
    if images.shape[1] == images.shape[2] == size:
        images = pad_canvas(images, canvas_padding(size), pad_mode)
    if mode == "10crop":
        return ten_crops(images, size)
    centre = center_crop(images, size)
    return flip_views(centre) if mode == "flip" else centre[None]


def log_mean_probabilities(probabilities, weights=None) -> np.ndarray:
    """``log(sum_i w_i p_i)`` of a stack ``(V, N, K)`` of probabilities (``w`` sums to 1; default equal).
    Probabilities that underflow to 0 give ``log(tiny)`` rather than ``-inf``."""
    probabilities = np.asarray(probabilities)
    if weights is None:
        mean = probabilities.mean(axis=0)
    else:
        mean = np.tensordot(np.asarray(weights, dtype=probabilities.dtype), probabilities, axes=1)
    return np.log(np.maximum(mean, np.finfo(mean.dtype).tiny))


class TTAModel(Module):
    """``model`` with test-time augmentation: ``forward(x)`` returns ``log(mean softmax over the views)``
    ``(N, K)`` for images ``x`` ``(N, H, W, C)`` (module docstring: views, canvas, why probabilities).

    ``size``: the crop side (default: the images' own H, i.e. test images at the model's input size).
    Inference only (no graph)."""

    def __init__(self, model, mode: str = "flip", size: int | None = None, pad_mode: str = "zero"):
        super().__init__()
        self.model = model
        self.mode = check_mode(mode)
        self.size = size
        self.pad_mode = pad_mode

    def forward(self, x):
        images = x.data if isinstance(x, Tensor) else np.asarray(x)
        size = self.size or images.shape[1]
        views = tta_views(images, size, self.mode, self.pad_mode)
        with no_grad():
            probs = np.stack([F.softmax(self.model(Tensor(np.ascontiguousarray(v)))).data for v in views])
        return Tensor(log_mean_probabilities(probs))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}" + (f", size={self.size}" if self.size else "")


def predict_tta(model, images, mode: str = "flip", batch_size: int = 256, size: int | None = None,
                pad_mode: str = "zero") -> np.ndarray:
    """Class probabilities ``(N, K)`` of float NHWC ``images``, averaged over the views of ``mode``
    (probabilities averaged, not logits).  ``size`` as :class:`TTAModel`.  Eval mode, no graph."""
    images = _check_images(images)
    tta = TTAModel(model, mode, size, pad_mode)
    out = []
    with tta.evaluating(), no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].astype(np.float32, copy=False)
            out.append(np.exp(tta(Tensor(batch)).data))
    if not out:
        raise StridedError("predict_tta received no images (N = 0)")
    return np.concatenate(out)
