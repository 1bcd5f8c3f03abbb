"""Detections as pictures and label files: boxes drawn on the photo, YOLO-format text lines.

``detections`` everywhere is a list of ``{"box": [x1, y1, x2, y2], "score", "class", "name"}``
in the photo's pixels (what :class:`~strided.detect.darknet.DarknetDetector`,
:class:`~strided.detect.tiny_face.TinyFaceDetector` and
:func:`~strided.detect.training.predict_boxes` return).

>>> picture = draw_detections(image, detections)        # uint8 (H, W, 3), a new array
>>> yolo_label_lines(detections, width, height)          # ["0 0.512 0.433 0.210 0.305 0.93", ...]
"""
from __future__ import annotations

import numpy as np

from ..errors import ImageError

__all__ = ["PALETTE", "draw_detections", "yolo_label_lines"]

# one colour per class (class k gets PALETTE[k % 20]); matplotlib's tab20, strong colours first
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
           (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
           (219, 219, 141), (158, 218, 229))


def draw_detections(image, detections, line_width: int | None = None, font_size: int | None = None,
                    show_scores: bool = True) -> np.ndarray:
    """The photo ``image`` (uint8 ``(H, W, 3)``) with each detection's box and a label
    ``"name 0.93"`` on a filled strip above it (inside the picture near its top edge).
    A detection may carry its own ``"label"`` (text, ``""`` for none) and ``"colour"`` (RGB);
    otherwise the colour is the class's (:data:`PALETTE`).

    ``line_width`` and ``font_size`` default to sizes that grow with the picture
    (``max(1, round(min(H, W) / 200))`` and ``max(9, round(min(H, W) / 30))``).  Boxes
    ``[x1, y1, x2, y2]`` are pixel edges (``x2`` is one past the last column); a box reaching
    outside the picture is drawn clipped.  Returns a new uint8 array.
    """
    from PIL import Image, ImageDraw, ImageFont

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError(f"draw_detections needs a uint8 RGB image (H, W, 3), received shape {image.shape} "
                         f"dtype {image.dtype}")
    H, W = image.shape[:2]
    width = max(1, round(min(H, W) / 200)) if line_width is None else int(line_width)
    size = max(9, round(min(H, W) / 30)) if font_size is None else int(font_size)
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=size)
    for det in sorted(detections, key=lambda d: d.get("score", 0.0)):        # best drawn last, on top
        x1, y1, x2, y2 = (float(v) for v in det["box"])
        colour = tuple(det["colour"]) if "colour" in det else PALETTE[int(det["class"]) % len(PALETTE)]
        x1c, y1c = min(max(x1, 0.0), W - 1.0), min(max(y1, 0.0), H - 1.0)
        x2c, y2c = min(max(x2 - 1.0, 0.0), W - 1.0), min(max(y2 - 1.0, 0.0), H - 1.0)
        draw.rectangle((x1c, y1c, max(x1c, x2c), max(y1c, y2c)), outline=colour, width=width)
        if "label" in det:
            text = str(det["label"])
        else:
            text = f"{det.get('name', det['class'])} {det['score']:.2f}" if show_scores else str(det.get("name"))
        if not text:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 4, bottom - top + 4
        ty = y1c - th if y1c - th >= 0 else y1c                      # above the box, or inside it at the top
        tx = min(x1c, max(0.0, W - tw))
        draw.rectangle((tx, ty, tx + tw, ty + th), fill=colour)
        grey = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        draw.text((tx + 2 - left, ty + 2 - top), text, fill=(0, 0, 0) if grey > 150 else (255, 255, 255),
                  font=font)
    return np.asarray(picture)


def yolo_label_lines(detections, width: int, height: int, with_score: bool = True) -> list:
    """YOLO-format label lines, one per detection: ``class cx cy w h [score]``, the box centre
    and size divided by the image ``width`` / ``height`` (boxes clipped to the image first),
    six decimals; the score (a sixth column, as ultralytics' ``save_conf``) unless
    ``with_score=False``."""
    lines = []
    for det in detections:
        x1, y1, x2, y2 = (float(v) for v in det["box"])
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        values = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
        line = f"{int(det['class'])} " + " ".join(f"{v:.6f}" for v in values)
        lines.append(line + (f" {float(det['score']):.6f}" if with_score else ""))
    return lines
