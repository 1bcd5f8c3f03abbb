"""The ``strided`` command line.

Usage::

    strided edges [IMAGE] --filter {vertical,horizontal,sobel,scharr} -o OUT.png [--side-by-side]

Each subcommand is one ``cmd_<name>(args) -> int`` function, registered in
:func:`build_parser` by an ``add_<name>_parser(subparsers)`` helper; to add a command,
write both and call the helper from :func:`build_parser`.  :func:`main` returns the
exit code: 0 on success, 2 on a usage error or bad input (a one-line message on stderr,
no traceback).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "cmd_edges", "CLIError", "default_sample_image"]

EXIT_OK = 0
EXIT_USAGE = 2

# Kept in sync with strided.filters.EDGE_MAP_FILTERS (not imported here so that
# `strided --help` does not import NumPy); tests check that the two agree.
EDGE_FILTER_CHOICES = ("vertical", "horizontal", "sobel", "scharr")
SAMPLE_IMAGE = "grace_hopper.jpg"


class CLIError(Exception):
    """A user-facing error: its message is printed as ``strided: error: ...``, exit 2."""


# --------------------------------------------------------------------------- helpers
def default_sample_image():
    """Path of matplotlib's bundled sample photo ``grace_hopper.jpg``."""
    try:
        from matplotlib import cbook

        path = Path(cbook.get_sample_data(SAMPLE_IMAGE, asfileobj=False))
    except Exception as exc:  # matplotlib missing, or sample data not installed
        raise CLIError(
            f"no IMAGE given and the default sample photo {SAMPLE_IMAGE!r} from "
            f"matplotlib could not be found ({exc}); pass an image path"
        ) from None
    if not path.is_file():
        raise CLIError(
            f"no IMAGE given and the default sample photo {SAMPLE_IMAGE!r} is missing "
            f"(looked at {path}); pass an image path"
        )
    return path


def _read_image(path):
    """Read an image file as a ``uint8`` array ``(H, W, 3)`` with Pillow."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise CLIError(f"image file not found: {str(path)!r}")
    if not path.is_file():
        raise CLIError(f"not an image file: {str(path)!r}")
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CLIError(f"cannot read image {str(path)!r}: {exc}") from None


def _to_uint8(a):
    """Linearly stretch ``a`` to 0..255 (a constant array becomes all zeros)."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi > lo:
        a = (a - lo) / (hi - lo) * 255.0
    else:
        a = np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _write_gray_png(array, path):
    from PIL import Image

    path = Path(path)
    fmt = None if path.suffix else "PNG"  # no extension: write PNG
    try:
        Image.fromarray(array).save(path, format=fmt)
    except (OSError, ValueError, KeyError) as exc:
        raise CLIError(f"cannot write {str(path)!r}: {exc}") from None


# --------------------------------------------------------------------------- edges
def add_edges_parser(subparsers):
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
        "--filter", "-f", dest="filter", default="sobel", choices=EDGE_FILTER_CHOICES,
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


def cmd_edges(args):
    """``strided edges``: write the edge map of an image as a grayscale PNG."""
    import numpy as np

    from . import filters

    path = Path(args.image) if args.image is not None else default_sample_image()
    rgb = _read_image(path)
    if rgb.shape[0] < 3 or rgb.shape[1] < 3:
        raise CLIError(
            f"image {str(path)!r} is {rgb.shape[1]}x{rgb.shape[0]} pixels; "
            "edges needs at least 3x3"
        )
    edges = _to_uint8(filters.edge_map(rgb, args.filter))
    out = edges
    if args.side_by_side:
        gray = filters.to_grayscale(rgb)[1:-1, 1:-1]       # the same 'valid' region
        gray = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
        out = np.concatenate([gray, edges], axis=1)
    _write_gray_png(out, args.output)
    H, W = out.shape
    extra = ", side by side with the grayscale original" if args.side_by_side else ""
    print(f"wrote {args.output} ({W}x{H} pixels, filter={args.filter}{extra}) from {path}")
    return EXIT_OK


# --------------------------------------------------------------------------- main
def build_parser():
    """The ``strided`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="strided",
        description="Convolutional neural networks from scratch, made real.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_edges_parser(subparsers)
    from .cli_train import register as register_training
    from .data.cli import add_data_parser
    register_training(subparsers)
    add_data_parser(subparsers)
    from .viz.cli import add_viz_parser
    add_viz_parser(subparsers)
    return parser


def main(argv=None):
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage + message (or --help)
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    try:
        return int(args.func(args))
    except CLIError as exc:
        print(f"strided {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
