"""What does a unit respond to?  The image patches that excite it most (Zeiler and Fergus, 2014).

For one channel ``unit`` of a conv layer, run the model over a data set
(batches, eval mode, no graph, stopping at the layer), keep the ``k``
(image, position) pairs with the highest activation, and cut from each image
the receptive field of that position (:func:`strided.viz.receptive_field`):
the part of the input the unit actually sees.  This is the course's "what are
deep ConvNets learning?": layer-1 units like edges and colour blobs, deeper
units larger textures and object parts.

By default each image gives at most one patch, at its strongest position
(``distinct_images=True``): otherwise the top ``k`` are mostly neighbouring
positions of one image.  Ties keep the lower image index, then the earlier
position (row-major), so results are reproducible.

>>> patches = top_patches(model, test_set, "features.3", unit=5, k=9)
>>> patches[0].value, patches[0].image_index, patches[0].position, patches[0].box
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.image import to_float
from .capture import VizError, conv_layers, get_layer, layer_output
from .receptive import ReceptiveField, receptive_field

__all__ = ["Patch", "top_patches", "top_patches_for_units", "cut_patch", "dataset_arrays"]


@dataclass
class Patch:
    """One strongly activating input patch.

    ``value`` is the activation of ``unit`` of ``layer`` at output ``position``
    ``(i, j)`` for image ``image_index`` of the data set; ``box`` is the
    receptive field ``(top, left, bottom, right)`` in that image (may extend
    past its border); ``patch`` the pixels of ``box`` as float ``(RH, RW, C)``
    (0 outside the image), ``inside`` a boolean ``(RH, RW)`` mask of the pixels
    that lie in the image; ``label`` the image's class (or None).
    """

    layer: str
    unit: int
    value: float
    image_index: int
    position: tuple
    box: tuple
    patch: np.ndarray
    inside: np.ndarray
    label: int | None = None


# --------------------------------------------------------------------------- data
def dataset_arrays(dataset, max_images: int | None = None) -> tuple:
    """``(images, labels)`` of the first ``max_images`` of ``dataset``.

    Accepts an :class:`~strided.data.ArrayDataset` (anything with ``images``
    and ``labels``), an ``(images, labels)`` pair, an ndarray of images
    ``(N, H, W, C)``, or a sequence of ``(image, label)`` items.  Labels may be None.
    """
    n = None if max_images is None else int(max_images)
    if hasattr(dataset, "images"):
        images = dataset.images[:n]
        labels = getattr(dataset, "labels", None)
        labels = None if labels is None else np.asarray(labels[:n])
    elif isinstance(dataset, np.ndarray):
        images, labels = dataset[:n], None
    elif isinstance(dataset, tuple) and len(dataset) == 2 and isinstance(dataset[0], np.ndarray):
        images = dataset[0][:n]
        labels = None if dataset[1] is None else np.asarray(dataset[1][:n])
    else:
        count = len(dataset) if n is None else min(n, len(dataset))
        items = [dataset[i] for i in range(count)]
        images = np.stack([np.asarray(item[0]) for item in items]) if items else np.zeros((0, 1, 1, 1))
        labels = np.asarray([item[1] for item in items]) if items else None
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise VizError(f"expected images (N, H, W, C), received shape {images.shape}")
    return images, labels


def cut_patch(image: np.ndarray, box: tuple, fill: float = 0.0) -> tuple:
    """Pixels of ``image`` ``(H, W, C)`` inside ``box`` ``(top, left, bottom, right)``.

    Returns ``(patch, inside)``: ``patch`` has the full box size, ``fill`` where
    the box lies outside the image (the padding), and ``inside`` marks the real pixels.
    """
    top, left, bottom, right = (int(v) for v in box)
    H, W = image.shape[:2]
    patch = np.full((bottom - top, right - left) + image.shape[2:], fill, dtype=np.float32)
    inside = np.zeros((bottom - top, right - left), dtype=bool)
    r0, r1, c0, c1 = max(top, 0), min(bottom, H), max(left, 0), min(right, W)
    if r0 < r1 and c0 < c1:
        patch[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
        inside[r0 - top:r1 - top, c0 - left:c1 - left] = True
    return patch, inside


# --------------------------------------------------------------------------- search
def _keep_top(values, images, positions, k):
    """The ``k`` best candidates: highest value, then lowest image index, then earliest position."""
    if len(values) > k:
        threshold = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= threshold          # ties at the threshold stay for the exact ordering
        values, images, positions = values[keep], images[keep], positions[keep]
    order = np.lexsort((positions, images, -values))[:k]
    return values[order], images[order], positions[order]


def top_patches_for_units(model, dataset, layer: str, units, k: int = 9, max_images: int = 2000,
                          batch_size: int = 64, distinct_images: bool = True,
                          rf: ReceptiveField | None = None) -> dict:
    """:func:`top_patches` for several units of one layer in a single pass: ``{unit: [Patch, ...]}``."""
    module = get_layer(model, layer)
    units = [int(u) for u in units]
    if not units:
        raise VizError("no units given")
    for name, value, low in (("k", k, 1), ("max_images", max_images, 1), ("batch_size", batch_size, 1)):
        if int(value) < low:
            raise VizError(f"{name} must be >= {low}, received {name}={value!r}")
    images, labels = dataset_arrays(dataset, max_images)
    if len(images) == 0:
        raise VizError("the data set is empty")
    best = {u: (np.zeros(0, np.float64), np.zeros(0, np.int64), np.zeros(0, np.int64)) for u in units}
    out_hw = None
    for start in range(0, len(images), batch_size):
        acts = layer_output(model, layer, to_float(images[start:start + batch_size]))
        if acts.ndim != 4:
            raise VizError(f"layer {layer!r} ({type(module).__name__}) outputs shape {acts.shape}, not feature "
                           f"maps (N, H, W, C); top patches need a conv layer: {', '.join(conv_layers(model))}")
        N, OH, OW, C = acts.shape
        if out_hw is None:
            out_hw = (OH, OW)
            bad = [u for u in units if not 0 <= u < C]
            if bad:
                raise VizError(f"unit {bad[0]} is out of range: layer {layer!r} has {C} channels "
                               f"(units 0..{C - 1})")
        flat = acts.reshape(N, OH * OW, C)
        for u in units:
            a = np.nan_to_num(flat[:, :, u].astype(np.float64), nan=-np.inf)
            if distinct_images:           # each image's strongest position (first one on ties)
                pos = np.argmax(a, axis=1)
                vals = a[np.arange(N), pos]
                imgs = np.arange(start, start + N)
            else:
                vals = a.ravel()
                imgs = np.repeat(np.arange(start, start + N), OH * OW)
                pos = np.tile(np.arange(OH * OW), N)
            v0, i0, p0 = best[u]
            best[u] = _keep_top(np.concatenate([v0, vals]), np.concatenate([i0, imgs]),
                                np.concatenate([p0, pos]), int(k))
    if rf is None:
        rf = receptive_field(model, layer, input_shape=images.shape[1:])
    result = {}
    for u in units:
        patches = []
        for value, index, pos in zip(*best[u]):
            i, j = divmod(int(pos), out_hw[1])
            box = rf.box(i, j)
            patch, inside = cut_patch(to_float(images[index]), box)
            patches.append(Patch(layer, u, float(value), int(index), (i, j), box, patch, inside,
                                 None if labels is None else int(labels[index])))
        result[u] = patches
    return result


def top_patches(model, dataset, layer: str, unit: int, k: int = 9, max_images: int = 2000,
                batch_size: int = 64, distinct_images: bool = True,
                rf: ReceptiveField | None = None) -> list:
    """The ``k`` input patches that activate channel ``unit`` of ``layer`` most, strongest first.

    ``dataset``: an ArrayDataset (or see :func:`dataset_arrays`); only its
    first ``max_images`` images are searched, in batches of ``batch_size``.
    Images are scaled as :class:`~strided.data.DataLoader` does (uint8 / 255).
    ``distinct_images`` keeps at most one patch per image.  ``rf`` overrides
    the receptive field (default :func:`receptive_field` at the images' size).
    Raises :class:`VizError` for an unknown layer (listing the conv layers) or
    a unit out of range (naming the range).

    Returns a list of :class:`Patch`.
    """
    return top_patches_for_units(model, dataset, layer, [unit], k, max_images, batch_size,
                                 distinct_images, rf)[int(unit)]
