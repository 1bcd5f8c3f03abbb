"""Annotated copies of photos: face boxes, labels and the 68 landmarks drawn on the pixels.

>>> faces = strided.face.detect(image)
>>> picture = draw_faces(image, faces)                       # label: the score
>>> picture = draw_faces(image, faces, ["Ada (0.41)", "unknown (0.72)"])
>>> save_image(picture, "out/group.jpg")                      # written atomically

Line width, dot size and font grow with the photo (``max(2, min(H, W) // 300)`` pixels), so
the drawing stays visible on a 4000-pixel photo and does not hide a 200-pixel one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import atomic_write

__all__ = ["draw_faces", "save_image", "KNOWN_COLOUR", "UNKNOWN_COLOUR", "LANDMARK_COLOUR"]

KNOWN_COLOUR = (0, 200, 0)          # a face (detected, or recognised)
UNKNOWN_COLOUR = (230, 40, 40)      # a face nobody enrolled matches
LANDMARK_COLOUR = (255, 220, 0)


def draw_faces(image, faces, labels=None, colours=None) -> np.ndarray:
    """A copy of ``image`` (uint8 ``(H, W, 3)``) with every face drawn: its box, a label above
    it and its 68 landmarks as dots.

    ``faces``: dicts with ``"box"`` ``[x1, y1, x2, y2]`` (image pixels) and, optionally,
    ``"score"`` and ``"landmarks"`` ``[[x, y] x 68]`` (as :func:`strided.face.detect` gives).
    ``labels``: one string per face (default: the score with 2 decimals).
    ``colours``: one RGB triple per face (default :data:`KNOWN_COLOUR`).
    """
    from PIL import Image, ImageDraw, ImageFont

    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), received shape {pixels.shape} dtype={pixels.dtype}")
    faces = list(faces)
    if labels is None:
        labels = [f"{f['score']:.2f}" if "score" in f else "" for f in faces]
    if colours is None:
        colours = [KNOWN_COLOUR] * len(faces)
    if len(labels) != len(faces) or len(colours) != len(faces):
        raise ValueError(f"one label and one colour per face expected: {len(faces)} faces, received "
                         f"{len(labels)} labels and {len(colours)} colours")
    H, W = pixels.shape[:2]
    width = max(2, min(H, W) // 300)
    picture = Image.fromarray(pixels)
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(12, 8 * width))
    for face, label, colour in zip(faces, labels, colours):
        x1, y1, x2, y2 = (float(v) for v in face["box"])
        pen.rectangle([x1, y1, x2, y2], outline=tuple(colour), width=width)
        for x, y in face.get("landmarks") or []:
            r = width
            pen.ellipse([x - r, y - r, x + r, y + r], fill=LANDMARK_COLOUR)
        if label:
            left, top, right, bottom = pen.textbbox((0, 0), label, font=font)
            tw, th = right - left, bottom - top
            ty = y1 - th - 2 * width if y1 - th - 2 * width >= 0 else y2 + width
            pen.rectangle([x1, ty, x1 + tw + 2 * width, ty + th + 2 * width], fill=tuple(colour))
            pen.text((x1 + width - left, ty + width - top), label, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def save_image(pixels, path) -> Path:
    """Write uint8 ``(H, W, 3)`` pixels to ``path`` atomically, in the format its suffix names
    (JPEG at quality 95; PNG when Pillow knows no format for the suffix)."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": 95} if fmt == "JPEG" else {}
    return atomic_write(path, lambda tmp: Image.fromarray(np.asarray(pixels)).save(tmp, format=fmt, **options))
