"""Pretrained darknet YOLO detectors (YOLOv2, YOLOv3 and their tiny versions) on real photos.

>>> from strided.detect.darknet import darknet_detector
>>> det = darknet_detector("/usr/share/darknet/cfg/yolov3-tiny.cfg", "yolov3-tiny.weights",
...                        names="/usr/share/darknet/data/coco.names")
>>> det.detect(read_image("dog.jpg"), conf=0.5)
[{'box': [x1, y1, x2, y2], 'score': 0.87, 'class': 16, 'name': 'dog'}, ...]

The pipeline is darknet's ``test_detector`` (Debian's 2018 darknet, which letterboxes for
YOLOv2 and YOLOv3 alike):

1. the uint8 RGB image, as floats in [0, 1], is resized keeping its aspect ratio with
   darknet's own bilinear ``resize_image`` (:func:`darknet_resize`: corners aligned, two
   passes, float32) and pasted in the middle of a 0.5-grey network input (:func:`letterbox`);
2. the network (:func:`strided.io.darknet.read_darknet`) gives each head's raw output;
3. :mod:`strided.detect.decode` turns them into boxes and scores, keeps (box, class) pairs
   scoring more than ``conf``, runs per-class NMS at ``iou`` and maps boxes back to the
   original image's pixels.

``letterbox=False`` stretches the image to the input size instead (what darknet's
``detector test`` did for YOLOv2 before 2018).  The weights come from the user (pjreddie's
``yolov3.weights`` etc.); the cfgs and ``coco.names`` / ``voc.names`` from Debian's
``darknet`` package (``/usr/share/darknet``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.image import to_float
from ..data.sources import DARKNET_DATA
from ..errors import ImageError, ModelFileError
from ..io.darknet import read_darknet
from ..tensor import no_grad
from .decode import check_thresholds, decode_head, detections_from_head, letterbox_size

__all__ = ["darknet_detector", "DarknetDetector", "read_names", "darknet_resize", "letterbox",
           "DARKNET_DATA"]



def read_names(path) -> list:
    """Class names, one a line (darknet's ``coco.names`` / ``voc.names``); blank lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such class names file (one name a line, e.g. "
                             f"{DARKNET_DATA / 'data' / 'coco.names'})")
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    return [n for n in names if n]


def darknet_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """darknet's ``resize_image``: bilinear with corners aligned, float32, ``(H, W, C)`` floats.

    Columns first: ``sx = c * (W_in - 1) / (width - 1)``, the last column copies the input's
    last; then rows: ``sy = r * (H_in - 1) / (height - 1)``, ``(1 - dy) * part[iy] +
    dy * part[iy + 1]`` except on the last row, which keeps only ``(1 - dy) * part[iy]``
    (as darknet does).
    """
    im = np.asarray(image, dtype=np.float32)
    H, W = im.shape[:2]
    if width < 1 or height < 1:
        raise ValueError(f"resize needs a positive size, received width={width}, height={height}")
    # horizontal pass
    if W == 1 or width == 1:
        part = np.repeat(im[:, W - 1:W], width, axis=1)
    else:
        w_scale = np.float32(W - 1) / np.float32(width - 1)
        sx = np.arange(width - 1, dtype=np.float32) * w_scale
        ix = sx.astype(np.int64)
        dx = (sx - ix.astype(np.float32))[None, :, None]
        part = np.empty((H, width) + im.shape[2:], np.float32)
        part[:, :-1] = (np.float32(1) - dx) * im[:, ix] + dx * im[:, ix + 1]
        part[:, -1] = im[:, W - 1]
    # vertical pass
    h_scale = np.float32(H - 1) / np.float32(height - 1) if height > 1 else np.float32(0)
    sy = np.arange(height, dtype=np.float32) * h_scale
    iy = sy.astype(np.int64)
    dy = (sy - iy.astype(np.float32))[:, None, None]
    out = (np.float32(1) - dy) * part[iy]
    if H > 1:
        rows = np.arange(height - 1)  # every row but the last adds its lower neighbour
        out[rows] += dy[rows] * part[iy[rows] + 1]
    return out


def letterbox(image: np.ndarray, width: int, height: int) -> tuple:
    """darknet's ``letterbox_image``: resize keeping the aspect ratio, centre on 0.5 grey.

    Returns ``(boxed (height, width, C) float32, (new_w, new_h))``.
    """
    H, W = image.shape[:2]
    new_w, new_h = letterbox_size((W, H), (width, height))
    resized = darknet_resize(image, new_w, new_h)
    boxed = np.full((height, width) + image.shape[2:], 0.5, np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    boxed[top:top + new_h, left:left + new_w] = resized
    return boxed, (new_w, new_h)


class DarknetDetector:
    """A darknet network plus its heads' decoding: ``detect(image)`` -> detections in pixels."""

    def __init__(self, net, names=None):
        self.net = net.eval()
        self.names = list(names) if names is not None else None
        classes = {h.classes for h in net.heads}
        if not net.heads:
            raise ModelFileError(f"{net.cfg_path}: no [region] or [yolo] head, so not a detector")
        if len(classes) != 1:
            raise ModelFileError(f"{net.cfg_path}: heads disagree on the number of classes {sorted(classes)}")
        self.num_classes = classes.pop()
        if self.names is not None and len(self.names) != self.num_classes:
            raise ModelFileError(f"{len(self.names)} class names for a network of {self.num_classes} classes")

    def __repr__(self):
        name = Path(self.net.cfg_path).name
        return f"DarknetDetector({name}, input={self.net.input_size}, classes={self.num_classes})"

    def _input_size(self, size):
        if size is None:
            return tuple(self.net.input_size)
        w, h = (size, size) if np.ndim(size) == 0 else size
        if int(w) != w or int(h) != h or w < 32 or h < 32 or w % 32 or h % 32:
            raise ValueError(f"size must be a positive multiple of 32 (darknet's total stride), received size={size!r}")
        return int(w), int(h)

    def preprocess(self, image, size=None, letterbox_image: bool = True) -> np.ndarray:
        """uint8 (or [0, 1] float) ``(H, W, 3)`` RGB -> the network input ``(1, h, w, 3)`` float32."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ImageError(f"expected an RGB image (H, W, 3), received shape {image.shape}")
        x = to_float(image) if image.dtype == np.uint8 else image.astype(np.float32)
        w, h = self._input_size(size)
        x = letterbox(x, w, h)[0] if letterbox_image else darknet_resize(x, w, h)
        return x[None]

    def detect(self, image, conf: float = 0.5, iou: float = 0.45, max_det: int | None = 100, size=None,
               letterbox: bool = True) -> list:
        """Detections on one RGB image (uint8 ``(H, W, 3)``), best score first.

        ``conf``: keep (box, class) pairs with ``objectness * class probability > conf``;
        ``iou``: per-class NMS suppresses IoU ``> iou``; ``max_det``: at most this many;
        ``size``: network input ``w`` (square) or ``(w, h)``, multiples of 32 (default: the
        cfg's); ``letterbox``: darknet 2018's aspect-keeping resize (else stretch).
        Returns ``[{"box": [x1, y1, x2, y2], "score", "class", "name"}]`` in original pixels.
        """
        check_thresholds(conf, iou, max_det)
        x = self.preprocess(image, size, letterbox)
        input_size = (x.shape[2], x.shape[1])
        with no_grad():
            raws = [r.data for r in self.net(x)]
        parts = [decode_head(raw, head, input_size) for raw, head in zip(raws, self.net.heads)]
        boxes = np.concatenate([p[0].reshape(-1, 4) for p in parts])
        objectness = np.concatenate([p[1].reshape(-1) for p in parts])
        probs = np.concatenate([p[2].reshape(-1, self.num_classes) for p in parts])
        H, W = np.shape(image)[:2]
        return detections_from_head(boxes, objectness, probs, (W, H), input_size, conf, iou, max_det,
                                    letterbox=letterbox, names=self.names)


def darknet_detector(cfg, weights, names=None) -> DarknetDetector:
    """A :class:`DarknetDetector` from a cfg, a weights file and (optionally) a names file
    (a path, or a list of names).  Without names, detections are named by class number."""
    if names is not None and not isinstance(names, (list, tuple)):
        names = read_names(names)
    return DarknetDetector(read_darknet(cfg, weights), names)
