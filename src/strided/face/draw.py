"""Annotated copies of photos: face boxes, labels and the 68 landmarks drawn on the pixels.

>>> faces = strided.face.detect(image)
>>> picture = draw_faces(image, faces)                       # label: the score
>>> picture = draw_faces(image, faces, ["Ada (0.41)", "unknown (0.72)"])
>>> strided.data.image.write_image(picture, "out/group.jpg")  # written atomically

Line width, dot size and font grow with the photo (``max(2, min(H, W) // 300)`` pixels), so
the drawing stays visible on a 4000-pixel photo and does not hide a 200-pixel one.
"""
from __future__ import annotations

import numpy as np

from ..detect.draw import draw_detections

__all__ = ["draw_faces", "KNOWN_COLOUR", "UNKNOWN_COLOUR", "LANDMARK_COLOUR"]

KNOWN_COLOUR = (0, 200, 0)          # a face (detected, or recognised)
UNKNOWN_COLOUR = (230, 40, 40)      # a face nobody enrolled matches
LANDMARK_COLOUR = (255, 220, 0)


def draw_faces(image, faces, labels=None, colours=None) -> np.ndarray:
    """A copy of ``image`` (uint8 ``(H, W, 3)``) with every face drawn: its box and a label above
    it (:func:`strided.detect.draw.draw_detections`) and its 68 landmarks as dots.

    ``faces``: dicts with ``"box"`` ``[x1, y1, x2, y2]`` (image pixels) and, optionally,
    ``"score"`` and ``"landmarks"`` ``[[x, y] x 68]`` (as :func:`strided.face.detect` gives).
    ``labels``: one string per face (default: the score with 2 decimals).
    ``colours``: one RGB triple per face (default :data:`KNOWN_COLOUR`).
    """
    from PIL import Image, ImageDraw

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
    boxes = [{"box": f["box"], "score": f.get("score", 0.0), "label": label, "colour": tuple(colour)}
             for f, label, colour in zip(faces, labels, colours)]
    picture = Image.fromarray(draw_detections(pixels, boxes, line_width=width, font_size=max(12, 8 * width)))
    pen = ImageDraw.Draw(picture)
    for face in faces:
        for x, y in face.get("landmarks") or []:
            pen.ellipse([x - width, y - width, x + width, y + width], fill=LANDMARK_COLOUR)
    return np.asarray(picture)
