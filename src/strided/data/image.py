"""Reading image files into pixels, the one place that turns files and ``uint8`` into floats.

:func:`read_image` gives ``(H, W, 3)`` (or ``(H, W, 1)`` with ``grayscale=True``) ``uint8``
for any file Pillow opens, with these rules, each stated so the answer never depends on
hidden data:

* **Bit depth.** 16-bit images (PNG ``I;16``, 32-bit integer ``I`` holding 16-bit data)
  are scaled by their real range, ``v * 255 / 65535``, never clipped at 255.  For ``I``
  images the bit depth is the file's (PNG: 16; TIFF: its BitsPerSample) when it says so,
  otherwise 16 bits if any value exceeds 255, else 8.
* **Float images** (TIFF ``F``) are mapped from [0, 1] when every value lies there, else
  refused with an :class:`~strided.errors.ImageError` (their range is not knowable).
* **Alpha** (RGBA, LA, palette with transparency) is composited on a stated background,
  white by default (``background=(255, 255, 255)``): ``rgb * a + background * (1 - a)``.
* **Giant images.** Pillow's decompression-bomb limit (about 179 million pixels) raises a
  clear :class:`~strided.errors.ImageError`; ``allow_large=True`` lifts it for one read.

:func:`to_float` is the one ``uint8 -> float32`` conversion: ``x / 255`` in [0, 1] (and any
unsigned integer type by its maximum, ``uint16``: ``x / 65535``); :func:`to_uint8` the way back.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import ImageError

__all__ = ["read_image", "write_image", "to_float", "to_uint8", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_float(images, dtype=np.float32) -> np.ndarray:
    """``uint8`` pixels -> ``float32`` in [0, 1] (``x * (1 / 255)``); other unsigned integers by
    their maximum (``uint16``: ``x / 65535``); float input -> ``dtype`` with its values as they are.

    ``dtype`` (float32 or float64) is the result's type.
    """
    images = np.asarray(images)
    dtype = np.dtype(dtype)
    if images.dtype.kind == "u":
        return images.astype(dtype) * dtype.type(1.0 / np.iinfo(images.dtype).max)
    return images.astype(dtype, copy=False)


def to_uint8(images) -> np.ndarray:
    """Float pixels in [0, 1] -> ``uint8`` (``round(x * 255)``, clipped); ``uint8`` as is."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _open(path: Path, allow_large: bool):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(f"image file not found: {str(path)!r}")
    if not path.is_file():
        raise ImageError(f"not an image file: {str(path)!r} (a folder or special file)")
    old_limit = Image.MAX_IMAGE_PIXELS
    img = None
    try:
        if allow_large:
            Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
        return img
    except Image.DecompressionBombError as exc:
        _close(img)
        raise ImageError(f"image {str(path)!r} is too large to read safely ({exc}); "
                         "pass allow_large=True (CLI: --allow-large-images) if you trust it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        _close(img)
        raise ImageError(f"cannot read image {str(path)!r}: {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def _close(img) -> None:
    if img is not None:
        img.close()


def _stated_bits(img) -> int | None:
    """Bits per sample the file itself states for an ``I`` image (PNG: 16; TIFF: its tag), else None."""
    if img.format == "PNG":
        return 16
    tags = getattr(img, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None      # TIFF BitsPerSample
    if isinstance(bits, (tuple, list)):
        bits = bits[0] if bits else None
    return int(bits) if bits in (8, 16) else None


def _floats(array) -> np.ndarray:
    """Pixels as float64 in [0, 1] (the one conversion, :func:`to_float`)."""
    return to_float(np.asarray(array), np.float64)


def _to_float_channels(img, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour (H, W, 1 or 3) float64 in [0, 1], alpha (H, W, 1) or None)``."""
    mode = img.mode
    if mode in ("P", "L", "RGB") and "transparency" in img.info:   # a palette entry or one colour is see-through
        img = img.convert("LA" if mode == "L" else "RGBA")
        mode = img.mode
    elif mode == "P":
        img = img.convert("RGB")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return _floats(np.asarray(img).astype(np.uint16))[..., None], None
    if mode == "I":
        a = np.asarray(img)
        if a.min() < 0 or a.max() > 65535:
            raise ImageError(f"image {str(path)!r} holds 32-bit integers outside 0..65535 "
                             f"(range {a.min():g}..{a.max():g}); convert it to 8 or 16 bits")
        bits = _stated_bits(img) or (16 if a.max() > 255 else 8)
        if bits == 8 and a.max() > 255:
            raise ImageError(f"image {str(path)!r} states 8 bits per sample but holds values up to {a.max()}")
        return _floats(a.astype(np.uint16 if bits == 16 else np.uint8))[..., None], None
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
            raise ImageError(f"float image {str(path)!r} has values in {np.nanmin(a):g}..{np.nanmax(a):g}; "
                             "strided reads float images only when every value lies in [0, 1]")
        return a[..., None], None
    if mode in ("1", "L"):
        return _floats(img.convert("L"))[..., None], None
    if mode in ("LA", "La"):
        a = _floats(img.convert("LA"))
        return a[..., :1], a[..., 1:]
    if mode in ("RGBA", "PA", "RGBa"):
        a = _floats(img.convert("RGBA"))
        return a[..., :3], a[..., 3:]
    return _floats(img.convert("RGB")), None


def read_image(path, grayscale: bool = False, background=(255, 255, 255),
               allow_large: bool = False) -> np.ndarray:
    """Read an image file as ``uint8`` ``(H, W, 3)`` (``(H, W, 1)`` with ``grayscale``).

    ``background``: the RGB colour (0..255) transparent pixels are composited on.
    Raises :class:`~strided.errors.ImageError` naming the file for anything unreadable.
    """
    path = Path(path)
    bg = np.asarray(background, dtype=np.float64).reshape(-1) / 255.0
    if bg.size not in (1, 3) or not np.all((bg >= 0) & (bg <= 1)):
        raise ValueError(f"background must be an RGB triple of 0..255 values, received background={background!r}")
    with _open(path, allow_large) as img:
        if img.mode == ("L" if grayscale else "RGB") and "transparency" not in img.info:
            # 8-bit pixels already: the float round trip below would give them back unchanged
            pixels = np.array(img, dtype=np.uint8)
            return pixels[..., None] if grayscale else pixels
        colour, alpha = _to_float_channels(img, path)
    if alpha is not None:
        if colour.shape[-1] == 1:
            bg = bg[:1] if bg.size == 1 else np.array([bg @ [0.299, 0.587, 0.114]])
        colour = colour * alpha + bg * (1.0 - alpha)
    if grayscale and colour.shape[-1] == 3:
        colour = colour @ np.array([0.299, 0.587, 0.114])[:, None]     # ITU-R 601 luma, as Pillow's "L"
    elif not grayscale and colour.shape[-1] == 1:
        colour = np.repeat(colour, 3, axis=-1)
    return np.clip(np.rint(colour * 255.0), 0, 255).astype(np.uint8)


def write_image(pixels, path, quality: int = 95) -> Path:
    """Write ``uint8`` ``(H, W)`` or ``(H, W, 3)`` pixels to ``path`` atomically
    (:func:`strided.fileio.atomic_write`), in the format its suffix names (JPEG at ``quality``;
    PNG when Pillow knows no format for the suffix).  Returns ``Path(path)``."""
    from PIL import Image

    from ..fileio import atomic_write

    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] not in (1, 3)):
        raise ImageError(f"write_image needs uint8 (H, W) or (H, W, 3) pixels, received shape {pixels.shape} "
                         f"dtype {pixels.dtype} for {str(path)!r}")
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": int(quality)} if fmt == "JPEG" else {}
    picture = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels)
    try:
        return atomic_write(path, lambda tmp: picture.save(tmp, format=fmt, **options))
    except (ValueError, KeyError) as exc:
        raise ImageError(f"cannot write {str(path)!r} as {fmt}: {exc}") from None
