"""Pictures of what a network computes, drawn with matplotlib (Agg, PNG files).

* :func:`plot_filters` -- the weights of a conv layer, one small image per filter
* :func:`plot_activations` -- one image through the model: the feature maps of a layer
* :func:`plot_top_patches` -- the input patches that excite chosen units most

Each returns the path it wrote.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..report import pyplot, save_figure
from .capture import VizError, as_model_input, conv_layers, feature_maps, get_layer, is_conv2d

__all__ = ["plot_filters", "plot_activations", "plot_top_patches", "filter_images", "conv_layer"]

PADDING_COLOUR = (0.62, 0.76, 0.95)   # parts of a receptive field outside the image


def _stretch(a: np.ndarray) -> np.ndarray:
    """Scale ``a`` linearly to [0, 1] (a constant array becomes 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.full_like(a, 0.5)


# --------------------------------------------------------------------------- filters
def conv_layer(model, layer):
    """``(name, module)`` of the conv layer ``layer`` (default: the first); a VizError if it is not one."""
    convs = conv_layers(model)
    if layer is None:
        if not convs:
            raise VizError(f"{type(model).__name__} has no conv layer")
        layer = convs[0]
    module = get_layer(model, layer)
    if not is_conv2d(module):
        raise VizError(f"layer {layer!r} is a {type(module).__name__}, not a conv layer; the conv layers are: "
                       f"{', '.join(convs) if convs else '(none)'}")
    if module.weight is None:
        raise VizError(f"layer {layer!r} has no weights yet (built lazily on the first input); "
                       f"run the model once or load weights")
    return layer, module


def filter_images(weight: np.ndarray) -> np.ndarray:
    """HWIO weights ``(KH, KW, C_in, C_out)`` as ``(C_out, KH, KW, C_in)`` images, each filter scaled
    to [0, 1] on its own (all its input channels together)."""
    w = np.moveaxis(np.asarray(weight, dtype=np.float64), -1, 0)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    span = hi - lo
    return np.where(span > 0, (w - lo) / np.where(span > 0, span, 1), 0.5)


def plot_filters(model, path, layer: str | None = None, max_filters: int = 64, max_channels: int = 16) -> Path:
    """Grid of the filters of a conv layer (default: the first one).

    A filter ``(KH, KW, C_in)`` is drawn as one RGB image when ``C_in == 3``, as
    one grayscale image when ``C_in == 1`` (also depthwise filters), and
    otherwise as a row of grayscale images, one per input channel (the first
    ``max_channels``).  Each filter is scaled to [0, 1] on its own.  At most
    ``max_filters`` filters are drawn.
    """
    plt = pyplot()
    layer, module = conv_layer(model, layer)
    weight = module.weight.data
    KH, KW, C_in, C_out = weight.shape
    n = min(C_out, int(max_filters))
    images = filter_images(weight)[:n]
    title = f"{layer}: {type(module).__name__} weight {tuple(weight.shape)} = (KH, KW, C_in, C_out)"
    if n < C_out:
        title += f", first {n} of {C_out} filters"
    if C_in in (1, 3):
        cols = min(n, max(1, math.ceil(math.sqrt(n))))
        rows = math.ceil(n / cols)
        cell = max(0.9, min(1.6, 9.0 / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(max(4.5, cols * cell), rows * cell + 0.9), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for i, ax in enumerate(axes.ravel()[:n]):
            image = images[i] if C_in == 3 else images[i, ..., 0]
            ax.imshow(image, cmap=None if C_in == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(str(i), fontsize=8)
        kind = "RGB" if C_in == 3 else "grayscale"
        fig.suptitle(f"{title}\n{kind}, each filter scaled to [0, 1] on its own", fontsize=9)
    else:
        m = min(C_in, int(max_channels))
        gap = 1
        mosaic = np.full((n * (KH + gap) - gap, m * (KW + gap) - gap), np.nan)
        for i in range(n):
            for c in range(m):
                mosaic[i * (KH + gap):i * (KH + gap) + KH, c * (KW + gap):c * (KW + gap) + KW] = images[i, :, :, c]
        scale = min(0.09, 10.0 / mosaic.shape[0], 10.0 / mosaic.shape[1])
        fig, ax = plt.subplots(figsize=(max(4.5, mosaic.shape[1] * scale + 1.6), mosaic.shape[0] * scale + 1.4))
        cmap = plt.get_cmap("gray").with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        every_row = max(1, math.ceil(n / 32))
        ax.set_yticks([i * (KH + gap) + (KH - 1) / 2 for i in range(0, n, every_row)],
                      [str(i) for i in range(0, n, every_row)], fontsize=7)
        every_col = max(1, math.ceil(m / 16))
        ax.set_xticks([c * (KW + gap) + (KW - 1) / 2 for c in range(0, m, every_col)],
                      [str(c) for c in range(0, m, every_col)], fontsize=7)
        ax.set_ylabel("filter (output channel)")
        ax.set_xlabel("input channel" + (f" (first {m} of {C_in})" if m < C_in else ""))
        for side in ax.spines.values():
            side.set_visible(False)
        ax.tick_params(length=0)
        fig.suptitle(f"{title}\ngrayscale per input channel, each filter scaled to [0, 1] on its own", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- activations
def _show_image(ax, image):
    image = np.asarray(image, dtype=np.float64)
    if image.min() < 0 or image.max() > 1:
        image = _stretch(image)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image[..., :3], interpolation="nearest")


def plot_activations(model, image, layer: str, path, max_maps: int = 64, columns: int = 8) -> Path:
    """The input image and the first ``max_maps`` feature maps of ``layer`` for it.

    ``image`` is ``(H, W, C)`` / ``(H, W)``, uint8 or float in [0, 1], already
    the model's input size.  Each map is coloured on its own scale (viridis:
    dark = low, yellow = high); its title gives the channel and its maximum.
    """
    plt = pyplot()
    module = get_layer(model, layer)
    maps = feature_maps(model, image, layer)
    if maps.ndim != 3:
        raise VizError(f"layer {layer!r} ({type(module).__name__}) outputs shape {(1,) + maps.shape}, not feature "
                       f"maps (N, H, W, C); choose a conv layer: {', '.join(conv_layers(model))}")
    H, W, C = maps.shape
    n = min(C, int(max_maps))
    cols = max(1, min(int(columns), n + 1))
    rows = math.ceil((n + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.6 + 0.7), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    cells = axes.ravel()
    _show_image(cells[0], as_model_input(image)[0])
    cells[0].set_title("input", fontsize=8, fontweight="bold")
    for c in range(n):
        ax = cells[c + 1]
        ax.imshow(maps[..., c], cmap="viridis", interpolation="nearest")
        ax.set_title(f"{c}: max {maps[..., c].max():.2g}", fontsize=7)
    title = f"{layer} ({type(module).__name__}) output {H}x{W}x{C}"
    if n < C:
        title += f", first {n} of {C} channels"
    fig.suptitle(title + "\neach map on its own scale (dark low, yellow high)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- top patches
def _patch_rgb(patch) -> np.ndarray:
    """A Patch's pixels as RGB in [0, 1], the part outside the image in PADDING_COLOUR."""
    pixels = np.asarray(patch.patch, dtype=np.float64)
    inside = patch.inside
    if inside.any():
        real = pixels[inside]
        if real.min() < 0 or real.max() > 1:
            lo, hi = float(real.min()), float(real.max())
            pixels = (pixels - lo) / (hi - lo) if hi > lo else np.full_like(pixels, 0.5)
    rgb = np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels[..., :3]
    rgb = np.clip(rgb, 0, 1)
    rgb[~inside] = PADDING_COLOUR
    return rgb


def plot_top_patches(patches, path, classes=None, title: str | None = None, blocks_per_row: int = 4) -> Path:
    """Draw top patches: ``patches`` is a list of :class:`~strided.viz.Patch` (one unit) or
    ``{unit: [Patch, ...]}`` (several units, one block each, ``blocks_per_row`` across).

    Each block is a grid (3x3 for k = 9), strongest first, each patch titled with
    its activation, image index and (with ``classes``) the image's class.
    Pixels of a receptive field outside the image are drawn light blue.
    """
    plt = pyplot()
    if isinstance(patches, dict):
        groups = {int(u): list(p) for u, p in patches.items()}
    else:
        patches = list(patches)
        groups = {patches[0].unit if patches else 0: patches}
    if not groups or not any(groups.values()):
        raise VizError("no patches to draw")
    k = max(len(p) for p in groups.values())
    gcols = max(1, math.ceil(math.sqrt(k)))
    grows = math.ceil(k / gcols)
    bcols = max(1, min(int(blocks_per_row), len(groups)))
    brows = math.ceil(len(groups) / bcols)
    cell = 1.25
    fig = plt.figure(figsize=(max(4.6, bcols * gcols * cell + 0.3), brows * (grows * (cell + 0.25) + 0.35) + 0.8),
                     layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(brows, bcols, squeeze=False)).ravel()
    first = next(p for ps in groups.values() for p in ps)
    for sub in subfigs:
        sub.set_facecolor("white")
    for sub, (unit, items) in zip(subfigs, groups.items()):
        axes = sub.subplots(grows, gcols, squeeze=False).ravel()
        for ax in axes:
            ax.axis("off")
        for ax, p in zip(axes, items):
            ax.imshow(_patch_rgb(p), interpolation="nearest")
            label = ""
            if classes is not None and p.label is not None and 0 <= p.label < len(classes):
                label = f"\n{classes[p.label]}"
            ax.set_title(f"{p.value:.3g}  #{p.image_index}{label}", fontsize=7)
        sub.suptitle(f"unit {unit}", fontsize=9, fontweight="bold")
    rh, rw = first.patch.shape[:2]
    if title is None:
        units = list(groups)
        which = f"unit {units[0]}" if len(units) == 1 else f"{len(units)} units"
        title = (f"{first.layer}, {which}: the {k} most activating patches\n"
                 f"receptive field {rh}x{rw}; titles: activation #image")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
