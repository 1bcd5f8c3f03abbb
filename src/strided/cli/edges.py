"""``strided edges [IMAGE] --filter NAME -o OUT.png [--side-by-side]``: the edge map of an image.

The filter names are :data:`strided.filters.EDGE_MAP_FILTERS` (one list, no copy here).
"""
from __future__ import annotations

from pathlib import Path

from .common import SAMPLE_IMAGE, default_sample_image, read_rgb, write_gray_png
from .errors import EXIT_OK, CLIError

__all__ = ["register", "cmd_edges", "stretch_to_uint8"]


def register(subparsers):
    """Add ``strided edges`` to the top-level ``subparsers``."""
    from ..filters import EDGE_MAP_FILTERS

    p = subparsers.add_parser(
        "edges",
        help="edge map of an image with a course edge filter",
        description=(
            "Convert IMAGE to grayscale (ITU-R 601 luma), cross-correlate it with an "
            "edge kernel ('valid' positions, so the output is 2 pixels smaller in each "
            "direction), stretch the edge strength to 0..255 and write a grayscale PNG."
        ),
    )
    p.add_argument(
        "image", nargs="?", default=None, metavar="IMAGE",
        help=f"input image (default: matplotlib's sample photo {SAMPLE_IMAGE})",
    )
    p.add_argument(
        "--filter", "-f", dest="filter", default="sobel", choices=EDGE_MAP_FILTERS,
        help="vertical/horizontal: absolute response; sobel/scharr: gradient "
             "magnitude of the kernel and its transpose (default: sobel)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="output PNG path")
    p.add_argument("--side-by-side", action="store_true",
                   help="write the grayscale original (cropped to the same size) "
                        "and the edge map next to each other")
    p.set_defaults(func=cmd_edges)
    return p


def stretch_to_uint8(a):
    """Linearly stretch ``a`` from its min..max to 0..255 (a constant array becomes all zeros)."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def cmd_edges(args) -> int:
    """``strided edges``: write the edge map of an image as a grayscale PNG."""
    import numpy as np

    from .. import filters
    from ..data.image import to_uint8

    path = Path(args.image) if args.image is not None else default_sample_image()
    rgb = read_rgb(path)
    if rgb.shape[0] < 3 or rgb.shape[1] < 3:
        raise CLIError(
            f"image {str(path)!r} is {rgb.shape[1]}x{rgb.shape[0]} pixels; "
            "edges needs at least 3x3"
        )
    edges = stretch_to_uint8(filters.edge_map(rgb, args.filter))
    out = edges
    if args.side_by_side:
        gray = to_uint8(filters.to_grayscale(rgb)[1:-1, 1:-1])        # the same 'valid' region
        out = np.concatenate([gray, edges], axis=1)
    write_gray_png(out, args.output)
    H, W = out.shape
    extra = ", side by side with the grayscale original" if args.side_by_side else ""
    print(f"wrote {args.output} ({W}x{H} pixels, filter={args.filter}{extra}) from {path}")
    return EXIT_OK
