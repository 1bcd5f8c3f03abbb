"""Edge-detection kernels of the course, and a NumPy edge map of a whole image.

Every kernel is a read-only ``float32`` array of shape ``(3, 3)``:

==================  ===============================  ==========================
name                kernel (rows)                    responds to
==================  ===============================  ==========================
``vertical``        [1 0 -1] [1 0 -1] [1 0 -1]       vertical edges
``horizontal``      [1 1 1] [0 0 0] [-1 -1 -1]       horizontal edges
``sobel``           [1 0 -1] [2 0 -2] [1 0 -1]       vertical edges (centre x2)
``sobel_horizontal``  transpose of ``sobel``         horizontal edges
``scharr``          [3 0 -3] [10 0 -10] [3 0 -3]     vertical edges (rotation-
                                                     symmetric weights)
``scharr_horizontal`` transpose of ``scharr``        horizontal edges
==================  ===============================  ==========================

**"Convolution" in a CNN is cross-correlation.**  Mathematical convolution flips the
kernel before sliding it (``(I * K)[y, x] = sum I[y - i, x - j] K[i, j]``); CNN
libraries and the course do not flip (``out[y, x] = sum I[y + i, x + j] K[i, j]``),
which is cross-correlation.  For a learned kernel the difference does not matter (the
network simply learns the flipped kernel), but it fixes the *sign* of a hand-made edge
response: with ``vertical`` a bright-left / dark-right edge gives a positive response.
Everything here is cross-correlation, computed on ``'valid'`` positions only, so an
``(H, W)`` image gives an ``(H - 2, W - 2)`` map.

Example::

    >>> from strided import filters
    >>> filters.get("sobel").shape
    (3, 3)
    >>> filters.as_conv_weight("sobel", channels=3).shape   # HWIO, for conv2d
    (3, 3, 3, 1)
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .data.image import to_float

__all__ = [
    "vertical",
    "horizontal",
    "sobel",
    "sobel_horizontal",
    "scharr",
    "scharr_horizontal",
    "FILTERS",
    "EDGE_MAP_FILTERS",
    "LUMA_WEIGHTS",
    "get",
    "as_conv_weight",
    "to_grayscale",
    "cross_correlate",
    "edge_map",
]


def _kernel(rows):
    k = np.array(rows, dtype=np.float32)
    k.setflags(write=False)  # module-level constants: copy before modifying
    return k


def _transpose(k):
    t = np.ascontiguousarray(k.T)
    t.setflags(write=False)
    return t


vertical = _kernel([[1, 0, -1],
                    [1, 0, -1],
                    [1, 0, -1]])
horizontal = _transpose(vertical)           # [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
sobel = _kernel([[1, 0, -1],
                 [2, 0, -2],
                 [1, 0, -1]])
sobel_horizontal = _transpose(sobel)        # [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
scharr = _kernel([[3, 0, -3],
                  [10, 0, -10],
                  [3, 0, -3]])
scharr_horizontal = _transpose(scharr)      # [[3, 10, 3], [0, 0, 0], [-3, -10, -3]]

FILTERS = {
    "vertical": vertical,
    "horizontal": horizontal,
    "sobel": sobel,
    "sobel_horizontal": sobel_horizontal,
    "scharr": scharr,
    "scharr_horizontal": scharr_horizontal,
}

# Filters for which edge_map returns the gradient magnitude of the kernel and its
# transpose; every other filter gives the absolute response of that one kernel.
_MAGNITUDE_FILTERS = ("sobel", "scharr")

# The names offered by the command line (`strided edges --filter ...`).
EDGE_MAP_FILTERS = ("vertical", "horizontal", "sobel", "scharr")

# ITU-R BT.601 luma weights for R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def get(name):
    """Return the kernel called ``name`` (a read-only float32 ``(3, 3)`` array).

    Raises ``ValueError`` naming the received name and the valid names.
    """
    try:
        return FILTERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown filter {name!r}; valid names: {', '.join(FILTERS)}"
        ) from None


def as_conv_weight(kernel, channels=1):
    """Turn a 2-D kernel (or a filter name) into an HWIO conv weight.

    Returns a new float32 array of shape ``(kh, kw, channels, 1)`` in which the kernel is
    replicated over the ``channels`` input channels, so that a conv layer with this
    weight sums the kernel's response over all channels::

        W[:, :, c, 0] = kernel   for every c

    Example::

        >>> as_conv_weight(vertical, channels=3).shape
        (3, 3, 3, 1)
    """
    if isinstance(kernel, str):
        kernel = get(kernel)
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2:
        raise ValueError(
            f"as_conv_weight: kernel must be 2-D (kh, kw); received shape {kernel.shape}"
        )
    if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or channels < 1:
        raise ValueError(
            f"as_conv_weight: channels must be an integer >= 1; received channels={channels!r}"
        )
    w = np.repeat(kernel[:, :, None, None], int(channels), axis=2)
    return np.ascontiguousarray(w, dtype=np.float32)


def to_grayscale(image):
    """Convert an image to a 2-D float grayscale array.

    ``image`` is ``(H, W)`` or ``(H, W, C)``; ``uint8`` (and other unsigned integer)
    images are scaled to ``[0, 1]`` by the dtype's maximum, float images are used as
    they are (float32 stays float32, float64 stays float64).  Colour images are
    converted with ITU-R 601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B``; an alpha channel
    (C = 4, or C = 2 for grey + alpha) is ignored; C = 1 is squeezed.
    """
    image = np.asarray(image)
    if image.dtype == np.bool_:
        image = image.astype(np.float32)
    elif np.issubdtype(image.dtype, np.unsignedinteger):
        image = to_float(image)             # x / (the dtype's maximum), float32
    elif image.dtype not in (np.float32, np.float64):
        if np.issubdtype(image.dtype, np.floating):
            image = image.astype(np.float32)
        else:
            raise ValueError(
                "image must be uint8 (0..255) or float (0..1); "
                f"received dtype {image.dtype}"
            )
    if image.ndim == 2:
        return image
    if image.ndim == 3:
        C = image.shape[2]
        if C in (1, 2):
            return image[:, :, 0]
        if C in (3, 4):
            r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
            wr, wg, wb = (image.dtype.type(w) for w in LUMA_WEIGHTS)
            return wr * r + wg * g + wb * b
    raise ValueError(
        "image must have shape (H, W) or (H, W, C) with C in 1..4; "
        f"received shape {image.shape}"
    )


def cross_correlate(image, kernel):
    """Signed 'valid' cross-correlation of a 2-D image with a 2-D kernel (no flip).

    Shapes: ``image`` ``(H, W)``, ``kernel`` ``(kh, kw)``; the result is
    ``(H - kh + 1, W - kw + 1)``::

        out[y, x] = sum_{i, j} image[y + i, x + j] * kernel[i, j]

    computed on a strided view of all windows (``sliding_window_view``), no copies.
    """
    image = np.asarray(image)
    kernel = np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(
            "cross_correlate: image and kernel must be 2-D; received image shape "
            f"{image.shape}, kernel shape {kernel.shape}"
        )
    kh, kw = kernel.shape
    if image.shape[0] < kh or image.shape[1] < kw:
        raise ValueError(
            f"image must be at least {kh}x{kw} pixels for a {kh}x{kw} kernel; "
            f"received shape {image.shape}"
        )
    kernel = kernel.astype(np.result_type(image.dtype, np.float32), copy=False)
    windows = sliding_window_view(image, (kh, kw))       # (H-kh+1, W-kw+1, kh, kw) view
    return np.einsum("yxij,ij->yx", windows, kernel)


def edge_map(image, name="sobel"):
    """Edge strength of an image: a non-negative ``(H - 2, W - 2)`` float array.

    ``image`` is ``(H, W)`` or ``(H, W, C)``, float in ``[0, 1]`` or ``uint8``; it is
    converted to grayscale first (:func:`to_grayscale`, ITU-R 601 luma).  Then, with
    ``K = get(name)`` and ``*`` the valid cross-correlation of :func:`cross_correlate`:

    * ``"sobel"``, ``"scharr"``: gradient magnitude ``sqrt((G * K)**2 + (G * K.T)**2)``;
    * every other filter (``"vertical"``, ``"horizontal"``, ...): ``abs(G * K)``.

    Example (a vertical step edge)::

        >>> img = np.zeros((5, 6)); img[:, :3] = 1.0
        >>> edge_map(img, "vertical")[0]
        array([0., 3., 3., 0.])
    """
    kernel = get(name)
    gray = to_grayscale(image)
    gx = cross_correlate(gray, kernel)
    if name in _MAGNITUDE_FILTERS:
        gy = cross_correlate(gray, kernel.T)
        return np.sqrt(gx * gx + gy * gy)
    return np.abs(gx)
