"""``strided viz``: look inside a model from the command line.

    strided viz filters RUN_DIR -o filters.png [--layer NAME]
    strided viz filters --model alexnet [--pretrained | --weights FILE] -o filters.png
    strided viz activations RUN_DIR IMAGE --layer NAME -o maps.png [--max-maps 64]
    strided viz top-patches RUN_DIR --layer NAME --unit U -o patches.png [--data NAME] [--k 9] [--max-images 2000]
    strided viz top-patches RUN_DIR --layer NAME --units 0,1,2,3 -o patches.png     # one 3x3 block per unit
    strided viz layers RUN_DIR                      # layer names, output shapes, receptive fields

``RUN_DIR`` is a directory written by ``strided train`` (``config.json`` +
``checkpoints/best.safetensors``); ``--model NAME`` builds an architecture of
:mod:`strided.models` instead (random weights unless ``--pretrained`` or
``--weights FILE``).  ``top-patches`` searches the test split of the run's data
set (or ``--data``).
"""
from __future__ import annotations

import re
from pathlib import Path

from .common import load_data, load_run, read_image_for_model
from .errors import CLIError

__all__ = ["register", "cmd_filters", "cmd_activations", "cmd_top_patches", "cmd_layers", "parse_units"]


# --------------------------------------------------------------------------- parsers
def _add_model_args(p, run_help="run directory written by `strided train`"):
    p.add_argument("run_dir", nargs="?", default=None, metavar="RUN_DIR", help=run_help)
    p.add_argument("--model", default=None, metavar="NAME",
                   help="an architecture of strided.models instead of a run directory")
    p.add_argument("--pretrained", action="store_true",
                   help="with --model: the installed pretrained weights (models.create(NAME, pretrained=True))")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="with --model: load weights from FILE (.safetensors/.npz from strided.io.save, "
                        "PyTorch .pt/.pth, Keras .h5)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of RUN_DIR (default best)")


def register(subparsers):
    p = subparsers.add_parser(
        "viz", help="look inside a model: filters, feature maps, most activating patches, layers",
        description="Pictures of what a trained network computes (PNG files). Layers are named as in "
                    "model.named_modules(); `strided viz layers RUN_DIR` lists them.")
    sub = p.add_subparsers(dest="viz_command", metavar="WHAT", required=True)

    q = sub.add_parser("filters", help="the filters of a conv layer as small images",
                       description="Draw the filters (weights) of a conv layer, by default the first one: "
                                   "RGB when it has 3 input channels, else grayscale per input channel.")
    _add_model_args(q)
    q.add_argument("--layer", default=None, metavar="NAME", help="conv layer (default: the first)")
    q.add_argument("--max-filters", type=int, default=64, help="draw at most this many filters (default 64)")
    q.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output PNG")
    q.set_defaults(func=cmd_filters)

    q = sub.add_parser("activations", help="the feature maps of a layer for one image",
                       description="Run one image through the model and draw the output channels of a layer "
                                   "next to the input.")
    _add_model_args(q)
    q.add_argument("image", metavar="IMAGE", help="image file (resized to the model's input, gray or RGB)")
    q.add_argument("--layer", required=True, metavar="NAME", help="layer whose output to draw")
    q.add_argument("--max-maps", type=int, default=64, help="draw at most this many channels (default 64)")
    q.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output PNG")
    q.set_defaults(func=cmd_activations)

    q = sub.add_parser("top-patches", help="the image patches that excite a unit most (Zeiler & Fergus)",
                       description="Search the test split of a data set for the positions where a channel of "
                                   "a conv layer is most active and draw the receptive field of each (a 3x3 "
                                   "grid for --k 9; one grid per unit with --units).")
    _add_model_args(q)
    q.add_argument("--layer", required=True, metavar="NAME", help="conv layer")
    units = q.add_mutually_exclusive_group(required=True)
    units.add_argument("--unit", type=int, default=None, metavar="U", help="channel of the layer")
    units.add_argument("--units", default=None, metavar="LIST", help="several channels: 0,1,2 or 0-7")
    q.add_argument("--data", default=None, help="data set (default: the run's); its test split is searched")
    q.add_argument("--data-root", default=None, help="folder with the data set's files, if not the default")
    q.add_argument("--k", type=int, default=9, help="patches per unit (default 9)")
    q.add_argument("--max-images", type=int, default=2000, help="search the first N test images (default 2000)")
    q.add_argument("--batch-size", type=int, default=64)
    q.add_argument("--repeat-images", action="store_true",
                   help="let one image give several patches (default: its strongest position only)")
    q.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output PNG")
    q.set_defaults(func=cmd_top_patches)

    q = sub.add_parser("layers", help="layer names, output shapes and receptive fields",
                       description="The model's summary (every layer with its output shape) and, for each conv "
                                   "layer, its receptive field in the input.")
    _add_model_args(q)
    q.set_defaults(func=cmd_layers)
    return p


# --------------------------------------------------------------------------- helpers
def _viz_errors(fn):
    """Turn the library's VizError (bad layer / unit) into the CLI's one-line error."""
    def wrapped(args):
        from ..viz import VizError
        try:
            return fn(args)
        except VizError as exc:
            raise CLIError(str(exc)) from None
    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


def _load_weight_file(model, path: str):
    from .. import io as sio
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"weight file {path!r} does not exist")
    try:
        suffix = p.suffix.lower()
        if suffix in (".pt", ".pth"):
            model.load_state_dict(sio.convert_torch_state(sio.read_torch(p), model))
        elif suffix in (".h5", ".hdf5", ".keras"):
            model.load_state_dict(sio.read_keras_h5(p))
        else:
            sio.load(p, model)
    except (ValueError, KeyError, OSError) as exc:
        raise CLIError(f"cannot load weights {path!r} into {type(model).__name__}: {exc}") from None


def _model_from_args(args):
    """``(model, config or None, input shape (H, W, C), description)`` from RUN_DIR or --model."""
    if args.run_dir and args.model:
        raise CLIError(f"give a run directory or --model, not both (received {args.run_dir!r} and "
                       f"--model {args.model})")
    if args.run_dir:
        if args.pretrained or args.weights:
            raise CLIError("--pretrained and --weights go with --model; a run directory brings its own weights")
        run, config, model = load_run(args.run_dir, args.checkpoint)
        return model, config, tuple(config["image_shape"]), f"{config['model']} from {run}"
    if not args.model:
        raise CLIError("give a run directory (from `strided train --out DIR`) or --model NAME")
    from .. import models
    try:
        model = models.create(args.model, pretrained=True) if args.pretrained else models.create(args.model)
    except ImportError as exc:          # the package that ships the weights is not installed
        raise CLIError(f"--pretrained: {exc}") from None
    except TypeError as exc:
        if args.pretrained and "pretrained" in str(exc):
            raise CLIError(f"no pretrained weights for {args.model!r} in this installation "
                           f"(models.create({args.model!r}, pretrained=True) is not supported); "
                           f"load a weight file with --weights FILE") from None
        raise
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None
    what = "pretrained" if args.pretrained else "random"
    if args.weights:
        _load_weight_file(model, args.weights)
        what = f"weights {args.weights}"
    shape = getattr(model, "default_input_size", None)
    if shape is None:
        raise CLIError(f"model {args.model!r} has no default input size")
    return model, None, tuple(shape), f"{args.model} ({what})"


def parse_units(text: str) -> list:
    """``"0,1,2"`` or ``"0-3,8"`` -> ``[0, 1, 2, 3, 8]`` (order kept, duplicates dropped)."""
    units = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match and int(match[1]) <= int(match[2]):
            units.extend(range(int(match[1]), int(match[2]) + 1))
        elif re.fullmatch(r"\d+", part):
            units.append(int(part))
        else:
            raise CLIError(f"--units must be channel numbers like 0,1,2 or 0-7, received {text!r}")
    if not units:
        raise CLIError(f"--units must name at least one channel, received {text!r}")
    return list(dict.fromkeys(units))


# --------------------------------------------------------------------------- commands
@_viz_errors
def cmd_filters(args) -> int:
    from ..viz.plots import conv_layer, plot_filters
    if args.max_filters < 1:
        raise CLIError(f"--max-filters must be >= 1, received {args.max_filters}")
    model, _, _, what = _model_from_args(args)
    layer, module = conv_layer(model, args.layer)
    path = plot_filters(model, args.output, layer=layer, max_filters=args.max_filters)
    print(f"wrote {path} (filters of {layer}, weight {tuple(module.weight.shape)}, {what})")
    return 0


@_viz_errors
def cmd_activations(args) -> int:
    from ..viz import get_layer, plot_activations
    if args.max_maps < 1:
        raise CLIError(f"--max-maps must be >= 1, received {args.max_maps}")
    model, _, shape, what = _model_from_args(args)
    get_layer(model, args.layer)                       # a bad name fails before the image is read
    image = read_image_for_model(args.image, shape)
    path = plot_activations(model, image, args.layer, args.output, max_maps=args.max_maps)
    print(f"wrote {path} (feature maps of {args.layer} for {args.image}, {what})")
    return 0


@_viz_errors
def cmd_top_patches(args) -> int:
    from ..viz import conv_layers, get_layer, plot_top_patches, receptive_field, top_patches_for_units

    units = [args.unit] if args.unit is not None else parse_units(args.units)
    for name, value in (("--k", args.k), ("--max-images", args.max_images), ("--batch-size", args.batch_size)):
        if value < 1:
            raise CLIError(f"{name} must be >= 1, received {value}")
    model, config, shape, what = _model_from_args(args)
    module = get_layer(model, args.layer)
    channels = getattr(module, "out_channels", None)
    if channels is not None:
        bad = [u for u in units if not 0 <= u < channels]
        if bad:
            raise CLIError(f"unit {bad[0]} is out of range: layer {args.layer!r} has {channels} channels "
                           f"(units 0..{channels - 1})")
    if args.data is None and config is None:
        raise CLIError("--data NAME is needed with --model (a run directory knows its data set)")
    data = args.data or config["data"]
    root = args.data_root if args.data_root or args.data else config.get("data_root")
    _, test = load_data({"data": data, "data_root": root, "limit": 0})
    if tuple(test.image_shape) != tuple(shape):
        raise CLIError(f"data set {data!r} has {'x'.join(map(str, test.image_shape))} images, the model takes "
                       f"{'x'.join(map(str, shape))}")
    rf = receptive_field(model, args.layer, input_shape=shape)
    results = top_patches_for_units(model, test, args.layer, units, k=args.k, max_images=args.max_images,
                                    batch_size=args.batch_size, distinct_images=not args.repeat_images, rf=rf)
    path = plot_top_patches(results, args.output, classes=test.classes)
    searched = min(args.max_images, len(test))
    print(f"{args.layer} ({type(module).__name__}, {what}): receptive field {rf}; searched {searched:,} test "
          f"images of {data}")
    for note in rf.notes:
        print(f"  note: {note}")
    for unit, patches in results.items():
        best = ", ".join(f"{p.value:.3g} (#{p.image_index} {test.classes[p.label]})" for p in patches[:5])
        print(f"  unit {unit}: {best}{', ...' if len(patches) > 5 else ''}")
    print(f"wrote {path}")
    if args.layer not in conv_layers(model):
        print(f"  ({args.layer!r} is not a conv layer; conv layers: {', '.join(conv_layers(model))})")
    return 0


@_viz_errors
def cmd_layers(args) -> int:
    from ..viz import conv_layers, get_layer, receptive_fields
    model, _, shape, what = _model_from_args(args)
    print(what)
    print(model.summary((1,) + tuple(shape), print_fn=None))
    convs = conv_layers(model)
    if not convs:
        return 0
    rfs = receptive_fields(model, convs, input_shape=shape)
    print(f"\nconv layers (for --layer) and the receptive field of one unit in the {shape[0]}x{shape[1]} input:")
    width = max(len(n) for n in convs)
    for name in convs:
        rf, module = rfs[name], get_layer(model, name)
        print(f"  {name.ljust(width)}  {module.out_channels:>5} channels  {rf.size[0]}x{rf.size[1]}, "
              f"stride {rf.jump[0]}x{rf.jump[1]}" + ("" if rf.exact else "  (approximate)"))
    return 0
