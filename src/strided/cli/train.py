"""``strided train | evaluate | predict``: the training commands.

    strided train --model lenet5 --data fashion-mnist --epochs 10 --batch-size 64 --lr 1e-3 --out RUN_DIR
    strided train --resume RUN_DIR              # continue an interrupted run exactly (--epochs may extend it)
    strided train --model lenet5 --data folder:photos/ --input-size 32 --out RUN_DIR   # photos of any size
    strided evaluate RUN_DIR                     # test accuracy and confusion matrix of the best checkpoint
    strided predict RUN_DIR IMAGE... --top 3     # class names with probabilities
    strided predict --model efficientnet_lite0 --pretrained IMAGE... --top 5   # pretrained ImageNet classes
    strided evaluate RUN_DIR --tta 10crop       # test-time augmentation: none | flip | 10crop (probabilities averaged)
    strided train --seeds 0,1,2 --out runs/m ... # three runs differing only by seed: runs/m-seed0, -seed1, -seed2
    strided evaluate runs/m-seed0 runs/m-seed1 runs/m-seed2 --ensemble [--weights 1,2,1] [--tta flip]
    strided predict RUN_A RUN_B IMAGE... --ensemble --tta flip
    strided predict --model efficientnet_lite0 --pretrained IMAGE... --tta 10crop
    strided train --task detect --model yolo_tiny --data digit-scenes --epochs 30 --augment --out RUN_DIR
    strided evaluate RUN_DIR                     # a detection run: mAP50, mAP50-95, per-class AP, pr_curve.png

A run directory (:class:`~strided.cli.common.RunDir`) holds ``config.json`` (everything
needed to rebuild the run), ``checkpoints/{best,last}.safetensors``, ``metrics.json``
(history and test results) and the pictures ``curves.png``, ``confusion.png``,
``predictions.png``.  ``--out`` on an existing run is refused unless ``--overwrite``.

``--task detect`` trains a YOLO detector (``yolo_tiny``) on a generated scenes set
(``digit-scenes``, ``fashion-scenes``): :func:`detection_config`, :func:`load_detection_data`,
:func:`choose_anchors`, :func:`make_detection_session`, the same Trainer loop with
:class:`~strided.detect.training.YoloLoss` and the validation mAP50
(:class:`~strided.detect.report.ValidationMAP`, the best checkpoint's monitor), then
:func:`detection_report` (COCO mAP on the test split, ``pr_curve.png``, ``confusion.png`` with
background, ``predictions.png``).

``cmd_train`` is a short sequence of steps: :func:`new_run` or :func:`resume_run` (the
config), :func:`load_training_data`, the model, :func:`make_trainer` per phase (head, then
fine-tuning), :func:`run_phases`, :func:`final_report`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import (RunDir, build_model, is_detection, is_transfer, load_data, load_run, model_input_size,
                     read_image_for_model, read_rgb)
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CLIError, Interrupted

__all__ = ["register", "cmd_train", "cmd_evaluate", "cmd_predict", "new_run", "resume_run",
           "load_training_data", "make_trainer", "final_report", "build_optimizer", "TRAIN_DEFAULTS",
           "TRANSFER_DEFAULTS", "EMBED_DEFAULTS", "train_embed"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# what `predict --pretrained X` takes as a weight file; anything else after it is an image
WEIGHT_SUFFIXES = (".pth", ".pt", ".tar", ".bin", ".ckpt", ".safetensors", ".npz")
SCHEDULES = ("none", "step", "cosine", "onecycle")

# The options of a new run and their defaults.  The parser's defaults are None, so that
# `--resume` can tell which options were given (they cannot change a run on resume).
TRAIN_DEFAULTS = {"model": "lenet5", "data": "fashion-mnist", "data_root": None, "epochs": 10, "batch_size": 64,
                  "lr": 1e-3, "optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0, "schedule": "none",
                  "augment": False, "val_split": 0.1, "patience": 0, "limit": 0, "seed": 0}
TRANSFER_DEFAULTS = {"pretrained": None, "freeze": "none", "fine_tune": 0, "cache_features": None,
                     "input_size": None}
DEFAULT_TRANSFER_INPUT = 128
# --task detect: what changes from the defaults above
DETECT_DEFAULTS = {"model": "yolo_tiny", "data": "digit-scenes", "input_size": 96, "test_limit": 0,
                   "anchors": "kmeans"}
DETECTION_DATA = ("digit-scenes", "fashion-scenes")
NUM_ANCHORS = 5
# options that --resume accepts: the rest is fixed by the run's config.json
RESUME_OPTIONS = ("resume", "epochs", "no_progress")
DETECT_OPTIONS = ("task", "test_limit", "anchors")     # given on resume: refused like the others


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# --------------------------------------------------------------------------- parsers
def add_train_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train a model on a data set",
        description="Train a model; the run directory gets checkpoints, metrics and plots. "
                    "--resume continues a run with its own settings (only --epochs may extend it).")
    p.add_argument("--task", choices=("classify", "detect", "embed"), default=None,
                   help="classify (default): one class per image; detect: a YOLO detector on a scenes data set "
                        "(boxes; see the detection options below); embed: an embedding by metric learning "
                        "(see the metric-learning options below)")
    p.add_argument("--model", default=None, help="architecture (see strided.models.list_models()); default lenet5 "
                                                 "(yolo_tiny with --task detect)")
    p.add_argument("--data", default=None,
                   help="data set: fashion-mnist (default), mnist-5k, digits, lfw-faces, folder:PATH, "
                        "h5:TRAIN.h5[,TEST.h5]; with --task detect: digit-scenes (default) or fashion-scenes. folder: photos may differ in size: each is scaled so its shorter "
                        "side fits and its centre is cut out, to --input-size or the model's input size")
    p.add_argument("--data-root", default=None, help="folder with the data set's files, if not the default place")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=None, help="default 64")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="default adam")
    p.add_argument("--momentum", type=float, default=None, help="for sgd and rmsprop (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=None, help="default 0")
    p.add_argument("--schedule", choices=SCHEDULES, default=None, help="learning-rate schedule (default none)")
    p.add_argument("--augment", action="store_true", default=None,
                   help="train on augmented copies (mirror, crop, ...)")
    p.add_argument("--val-split", type=float, default=None,
                   help="fraction of the training set held out (default 0.1)")
    p.add_argument("--patience", type=int, default=None, help="early stopping after this many epochs without "
                                                              "improvement of the validation loss (default 0: off)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training images (quick runs; default 0: all); with --task detect: "
                        "generate N training scenes (default 0: the set's 8000)")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                   help="train one run per seed (ensemble members that differ only by the seed: initial weights, "
                        "shuffling, validation split), into sibling run directories OUT-seedS1, OUT-seedS2, ...; "
                        "needs --out; evaluate them together with `strided evaluate OUT-seed* --ensemble`")
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL-DATA-TIME); an existing run is "
                                               "refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="replace the run already in --out (its checkpoints, metrics and pictures are deleted)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its last checkpoint (same epoch, optimizer state, "
                        "random streams); --epochs may extend it, other options are refused")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (the one line per epoch is still printed)")
    t = p.add_argument_group("transfer learning", "start from pretrained ImageNet weights (efficientnet_lite0); "
                                                  "see strided.transfer")
    t.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                   help="load pretrained weights (from the installed package, or PATH) for every layer but the "
                        "classifier; images are resized to --input-size and made RGB")
    t.add_argument("--freeze", choices=("none", "base"), default=None,
                   help="base: train only the new head (the base's BatchNorms use their running statistics)")
    t.add_argument("--fine-tune", type=int, default=None, metavar="N",
                   help="with --freeze base: train the head for the first ceil(epochs/2) epochs, then unfreeze the "
                        "top N blocks of the base for the remaining ones at lr/10 (their BatchNorms stay frozen)")
    t.add_argument("--cache-features", nargs="?", const=True, default=None, metavar="DIR",
                   help="with --freeze base: compute the frozen base's features once and train the head on them "
                        "(cached as .npz in DIR, default <out>/../.feature-cache, reused by later runs)")
    t.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="with --pretrained: side of the network's input (default 128; the weights were trained at "
                        "224). Without --pretrained (folder: data only): every photo is scaled so its shorter side "
                        "is N and its centre NxN cut out (default: the model's input size, when the photos differ "
                        "in size)")
    d = p.add_argument_group("detection (--task detect)",
                             "a YOLO detector on generated scenes; --input-size N is the scenes' side (default 96, a "
                             "multiple of 16), --augment flips, scales, shifts and recolours images with their boxes")
    d.add_argument("--test-limit", type=int, default=None, metavar="N",
                   help="generate N test scenes (default 0: the set's 1000)")
    d.add_argument("--anchors", choices=("kmeans", "default"), default=None,
                   help=f"kmeans (default): {NUM_ANCHORS} anchors by k-means with the 1 - IoU distance on the "
                        "training boxes; default: the model's own (yolo_tiny's, from k-means on digit and fashion "
                        "scenes of 96x96); recorded in config.json")
    add_embed_arguments(p)
    p.set_defaults(func=cmd_train)


def add_evaluate_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="test accuracy of a trained run (detection: mAP50, mAP50-95, "
                                               "per-class AP)")
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                   help="run directory written by `strided train` (several with --ensemble)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    add_tta_arguments(p)
    p.set_defaults(func=cmd_evaluate)


def add_tta_arguments(p) -> None:
    g = p.add_argument_group(
        "test-time augmentation and ensembles",
        "class PROBABILITIES (softmax) are averaged over the views and the members, not logits. Views: the "
        "centre, its mirror (flip) or AlexNet/VGG's 10 crops (4 corners + centre, and their mirrors) of size "
        "S (the model's input) from a canvas whose shorter side is S/0.875: images already S x S are "
        "zero-padded (28 -> 32), larger photos are resized (224 -> 256). Cost: 1, 2 or 10 forward passes per "
        "image, times the number of members")
    g.add_argument("--tta", choices=("none", "flip", "10crop"), default="none",
                   help="test-time augmentation (default none)")
    g.add_argument("--ensemble", action="store_true",
                   help="average several runs (RUN_DIR RUN_B ...): same classes and input shape required")
    g.add_argument("--weights", default=None, metavar="W1,W2,...",
                   help="with --ensemble: one weight per run, normalised to sum to 1 (default equal)")


def add_predict_parser(subparsers):
    p = subparsers.add_parser(
        "predict", help="classify images with a trained run or a pretrained ImageNet model",
        usage="strided predict RUN_DIR IMAGE... [--top N] [--checkpoint {best,last}] [--tta MODE]\n"
              "       strided predict RUN_DIR RUN_B ... IMAGE... --ensemble [--weights W1,W2,...] [--tta MODE]\n"
              "       strided predict [--model NAME] --pretrained [PATH] IMAGE... [--top N] [--tta MODE]",
        description="Classify images: `strided predict RUN_DIR IMAGE...` with a run of `strided train`, or "
                    "`strided predict --model efficientnet_lite0 --pretrained IMAGE...` with pretrained ImageNet "
                    "weights (1000 classes; from the installed package, or --pretrained PATH.pth).")
    p.add_argument("paths", nargs="*", metavar="RUN_DIR IMAGE...",
                   help="run directory written by `strided train` (not with --pretrained; several run "
                        "directories with --ensemble), then image files (any format Pillow reads)")
    p.add_argument("--top", type=int, default=None,
                   help="how many classes to show per image (default 3; 5 with --pretrained)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--model", default=None,
                   help="with --pretrained: the architecture (default efficientnet_lite0)")
    p.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                   help="use pretrained ImageNet weights instead of a run: from the installed package, or from "
                        "PATH (a file ending in " + ", ".join(WEIGHT_SUFFIXES) + ")")
    add_tta_arguments(p)
    p.set_defaults(func=cmd_predict)


def register(subparsers):
    """Add ``strided train``, ``evaluate`` and ``predict`` to the top-level ``subparsers``."""
    add_train_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_predict_parser(subparsers)


# --------------------------------------------------------------------------- the run's config
def _validate(config) -> None:
    for name, low in (("epochs", 1), ("batch_size", 1), ("limit", 0), ("patience", 0)):
        if config[name] < low:
            what = " (0: all images)" if name == "limit" else " (0: off)" if name == "patience" else ""
            raise CLIError(f"{_flag(name)} must be >= {low}{what}, received {config[name]}")
    if not 0.0 <= config["val_split"] < 1.0:
        raise CLIError(f"--val-split must be in [0, 1), received {config['val_split']}")
    if not config["lr"] > 0:
        raise CLIError(f"--lr must be > 0, received {config['lr']}")


def new_run(args) -> tuple[RunDir, dict]:
    """The run directory (checked: not a file, not an existing run unless ``--overwrite``) and
    the config of a new run from the options, with defaults filled in and values checked."""
    config = {k: (d if getattr(args, k) is None else getattr(args, k)) for k, d in TRAIN_DEFAULTS.items()}
    detect = getattr(args, "task", None) == "detect"
    if detect:
        for key in ("model", "data"):
            if getattr(args, key) is None:
                config[key] = DETECT_DEFAULTS[key]
    else:
        for key in ("test_limit", "anchors"):
            if getattr(args, key, None) is not None:
                raise CLIError(f"{_flag(key)} goes with --task detect")
    _validate(config)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.out or f"runs/{config['model']}-{config['data'].replace(':', '_').replace('/', '_')}-{stamp}")
    run.check_new(overwrite=bool(args.overwrite))
    config.update(detection_config(args, config) if detect else transfer_config(args, config, run.path))
    return run, config


def detection_config(args, config) -> dict:
    """The detection part of config.json (validated): task, image_size (the scenes' side and the
    network's input), test_limit, anchors_from; the transfer options are refused."""
    given = [k for k in ("pretrained", "freeze", "fine_tune", "cache_features") if getattr(args, k, None) is not None]
    if given:
        raise CLIError(f"{', '.join(_flag(k) for k in given)}: transfer learning is for --task classify; "
                       f"--task detect trains {config['model']} from scratch")
    if config["data"] not in DETECTION_DATA:
        raise CLIError(f"--task detect trains on a scenes data set with boxes ({', '.join(DETECTION_DATA)}), "
                       f"received --data {config['data']}")
    size = DETECT_DEFAULTS["input_size"] if args.input_size is None else args.input_size
    if size < 32 or size % 16:
        raise CLIError(f"--input-size (the scenes' side) must be a multiple of 16 and >= 32 for {config['model']}, "
                       f"received {size}")
    test_limit = DETECT_DEFAULTS["test_limit"] if args.test_limit is None else args.test_limit
    if test_limit < 0:
        raise CLIError(f"--test-limit must be >= 0 (0: the set's 1000), received {test_limit}")
    return {"task": "detect", "pretrained": False, "freeze": "none", "fine_tune": 0, "cache_features": False,
            "input_size": None, "image_size": int(size), "test_limit": int(test_limit),
            "anchors_from": args.anchors or DETECT_DEFAULTS["anchors"]}


def transfer_config(args, config, run_dir: Path) -> dict:
    """The transfer-learning part of config.json (validated): pretrained, freeze, fine_tune, cache_features,
    input_size (None unless --pretrained) and image_size (--input-size without --pretrained: folder images are
    resized to it)."""
    from ..models.pretrained import has_pretrained, pretrained_models

    opts = {k: (d if getattr(args, k, None) is None else getattr(args, k)) for k, d in TRANSFER_DEFAULTS.items()}
    pretrained, freeze, fine_tune = opts["pretrained"], opts["freeze"], opts["fine_tune"]
    cache, size = opts["cache_features"], opts["input_size"]
    model = config["model"]
    if pretrained is not None:
        if not has_pretrained(model):
            raise CLIError(f"--pretrained: no pretrained weights are known for model {model!r}; models with "
                           f"pretrained weights: {', '.join(pretrained_models())}")
        if isinstance(pretrained, str):
            if not Path(pretrained).is_file():
                raise CLIError(f"--pretrained: weight file {pretrained!r} does not exist")
            pretrained = str(Path(pretrained).resolve())
    transfer = pretrained is not None
    image_size = None
    if transfer:
        size = DEFAULT_TRANSFER_INPUT if size is None else size
        if not 32 <= size <= 1024:
            raise CLIError(f"--input-size must be in 32..1024, received {size}")
    elif size is not None:
        # without --pretrained, --input-size is the size folder photos are brought to
        if not config["data"].startswith("folder:"):
            raise CLIError(f"--input-size without --pretrained resizes the photos of folder:PATH data sets; "
                           f"{config['data']!r} has images of one fixed size: drop --input-size (or add "
                           f"--pretrained for a pretrained network that resizes its input)")
        if size < 1:
            raise CLIError(f"--input-size must be >= 1, received {size}")
        if model == "lenet5" and size not in (28, 32):
            raise CLIError(f"lenet5 takes 28x28 or 32x32 images, received --input-size {size}; use --input-size 32 "
                           f"(or 28), or choose another --model")
        image_size, size = size, None
    if fine_tune < 0:
        raise CLIError(f"--fine-tune must be >= 0, received {fine_tune}")
    if (fine_tune or cache) and freeze != "base":
        raise CLIError("--fine-tune and --cache-features need --freeze base")
    if freeze == "base" and not transfer:
        raise CLIError("--freeze base needs --pretrained (a frozen random base learns nothing)")
    if cache and config["augment"]:
        raise CLIError("--cache-features computes the features once, without augmentation: drop --augment")
    if cache is True:
        cache = str(run_dir.parent / ".feature-cache")
    return {"pretrained": pretrained if pretrained is not None else False, "freeze": freeze,
            "fine_tune": fine_tune, "cache_features": cache or False, "input_size": size,
            "image_size": image_size}


@dataclass
class Resumed:
    """What :func:`resume_run` found: the run, its config, the checkpoint to resume from, the
    epoch it holds, and whether the run is already finished (nothing to do)."""
    run: RunDir
    config: dict
    checkpoint: Path
    epoch: int
    finished: bool


def resume_run(args) -> Resumed:
    """Check a ``--resume RUN_DIR``: its config and last checkpoint are readable, and no option but
    ``--epochs`` / ``--no-progress`` was given (the run keeps its own settings; anything else is
    refused, naming what was given and what the run uses)."""
    from ..checkpoint import load_checkpoint
    from ..errors import CheckpointError

    run = RunDir(args.resume)
    config = run.read_config()
    given = [name for name in (*TRAIN_DEFAULTS, *TRANSFER_DEFAULTS, *DETECT_OPTIONS, "out", "overwrite")
             if name not in RESUME_OPTIONS and getattr(args, name, None) is not None]
    if given:
        kept = ", ".join(f"{_flag(k)} {config.get(k)}" for k in ("model", "data", "lr", "batch_size", "optimizer")
                         if k in config)
        asked = ", ".join(_flag(k) if getattr(args, k) is True else f"{_flag(k)} {getattr(args, k)}" for k in given)
        raise CLIError(f"--resume {run} continues the run with its own settings ({kept}, ...: see "
                       f"{run.config_path}); {asked} cannot change on resume and would be ignored. Drop "
                       f"{'it' if len(given) == 1 else 'them'} (only --epochs and --no-progress apply to a resumed "
                       f"run), or start a new run with --out NEW_DIR")
    last = run.checkpoint("last")
    if not last.is_file():
        raise CLIError(f"--resume {args.resume}: expected {run.config_path} and {last} from an earlier "
                       f"`strided train --out {args.resume}`; no epoch of this run was saved, so start it again "
                       f"with `strided train --out {args.resume} --overwrite ...`")
    try:
        meta = load_checkpoint(last)[1]
        epoch = int(meta["epoch"])
    except (CheckpointError, KeyError, TypeError, ValueError) as exc:
        raise CLIError(f"--resume {run}: cannot resume from {last}: {exc}. Resume from a copy of it if you have "
                       f"one, or start the run again with --overwrite (or a new --out)") from None
    if args.epochs is not None:
        if args.epochs < 1:
            raise CLIError(f"--epochs must be >= 1, received {args.epochs}")
        config["epochs"] = args.epochs
    metrics = run.read_metrics()
    finished = ("test_accuracy" in metrics or "test_mAP50" in metrics) and (args.epochs is None or args.epochs <= epoch)
    return Resumed(run, config, last, epoch, finished)


# --------------------------------------------------------------------------- data and model
@dataclass
class TrainingData:
    train: object
    test: object
    fit: object            # the part of train that is trained on
    val: object | None     # the held-out part (None without --val-split)
    classes: list


def load_training_data(config) -> TrainingData:
    """Load the data set, split off the validation set and check it can train a classifier.

    A folder of photos of different sizes is brought to one size (shorter side + centre crop):
    ``config["image_size"]`` when set, else the pretrained network's input size (transfer) or the
    model's own input size; the size used is recorded in ``config["image_size"]`` so evaluate and
    predict read the data the same way.
    """
    from ..data.folder import MixedImageSizes

    try:
        train, test = load_data(config, raise_mixed=True)
    except MixedImageSizes:
        size = config["input_size"] if is_transfer(config) else model_input_size(config["model"])
        config["image_size"] = size
        train, test = load_data(config)
        print(f"{config['data']}: the photos differ in size; each is scaled so its shorter side is {size} and "
              f"its centre {size}x{size} cut out (choose the size with --input-size)")
    classes = list(train.classes)
    if len(classes) < 2:
        raise CLIError(f"{config['data']} has {len(classes)} class ({', '.join(map(repr, classes))}); a classifier "
                       f"needs at least two (for folder:PATH, one sub-folder of images per class)")
    fit, val = train.split(config["val_split"], seed=config["seed"]) if config["val_split"] else (train, None)
    if len(fit) == 0:
        raise CLIError(f"no training images left in {config['data']} (--limit {config['limit']}, --val-split "
                       f"{config['val_split']})")
    return TrainingData(train, test, fit, val, classes)


def check_model_takes(model, image_shape, config) -> None:
    """One dry forward pass: a model of a fixed input size that cannot take ``image_shape``
    is a :class:`CLIError` naming both sizes (before any epoch runs)."""
    from ..random import get_rng
    from ..tensor import Tensor, no_grad

    rng_state = get_rng().bit_generator.state        # lazily built layers must not shift the seeded streams
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(np.zeros((1, *image_shape), np.float32)))
    except (ValueError, IndexError) as exc:
        wanted = getattr(model, "default_input_size", None)
        hint = (f"; it takes {wanted[0]}x{wanted[1]}: for folder: data pass --input-size {wanted[0]}"
                if wanted is not None else "")
        raise CLIError(f"model {config['model']!r} cannot take the data set's {'x'.join(map(str, image_shape))} "
                       f"images ({exc}){hint}") from None
    finally:
        model.train(was_training)
        get_rng().bit_generator.state = rng_state


def build_optimizer(config, model, steps_per_epoch):
    """``(optimizer, schedule or None, "epoch" | "batch")`` from the run's config."""
    from .. import optim
    params, lr = model.parameters(trainable_only=True), config["lr"]
    name, momentum, decay = config["optimizer"], config["momentum"], config["weight_decay"]
    options = {"adam": dict(weight_decay=decay), "adamw": dict(weight_decay=decay or 0.01),
               "sgd": dict(momentum=momentum, nesterov=momentum > 0, weight_decay=decay),
               "rmsprop": dict(momentum=momentum, weight_decay=decay)}[name]
    opt = optim.create(name, params, lr=lr, **options)
    schedule, per = None, "epoch"
    if config["schedule"] == "step":
        schedule = optim.StepLR(opt, step_size=max(1, config["epochs"] // 3), gamma=0.1)
    elif config["schedule"] == "cosine":
        schedule = optim.CosineLR(opt, total_steps=config["epochs"])
    elif config["schedule"] == "onecycle":
        schedule, per = optim.OneCycleLR(opt, total_steps=config["epochs"] * steps_per_epoch, max_lr=lr), "batch"
    return opt, schedule, per


# --------------------------------------------------------------------------- training
@dataclass
class Session:
    """Everything one ``strided train`` needs while it runs."""
    run: RunDir
    config: dict
    data: TrainingData
    model: object
    loader: object
    val_loader: object | None
    callbacks: list
    monitor: str
    head_epochs: int
    progress: bool
    loss_fn: object = None       # None: the Trainer's default (cross-entropy)
    metrics: object = None       # None: the Trainer's default (accuracy)


def make_session(run, config, data, model, progress: bool) -> Session:
    from ..data import DataLoader, augment
    from ..train import EarlyStopping

    head_epochs = config["epochs"]
    if config.get("freeze") == "base":
        from ..transfer import freeze_base
        freeze_base(model)
        if config.get("fine_tune"):
            head_epochs = max(1, -(-config["epochs"] // 2))
    transform = augment.standard(config["data"], data.train.image_shape[-1]) if config["augment"] else None
    loader = DataLoader(data.fit, batch_size=config["batch_size"], shuffle=True, seed=config["seed"],
                        transform=transform)
    val_loader = DataLoader(data.val, batch_size=256) if data.val is not None and len(data.val) else None
    callbacks = [EarlyStopping("val_loss", config["patience"])] if config["patience"] and val_loader else []
    monitor = "val_accuracy" if val_loader is not None else "accuracy"
    return Session(run, config, data, model, loader, val_loader, callbacks, monitor, head_epochs, progress)


def make_trainer(s: Session, fine_tuning: bool = False):
    """The Trainer of the head phase, or (``fine_tuning``) of the fine-tuning phase: the top
    ``fine_tune`` blocks unfrozen, lr / 10, the remaining epochs."""
    from ..train import Trainer

    config = {**s.config, "epochs": s.head_epochs}
    if fine_tuning:
        from ..transfer import unfreeze_top
        unfreeze_top(s.model, s.config["fine_tune"])
        config = {**config, "lr": s.config["lr"] / 10, "epochs": s.config["epochs"] - s.head_epochs}
    optimizer, schedule, per = build_optimizer(config, s.model, len(s.loader))
    task = {} if s.loss_fn is None else {"loss_fn": s.loss_fn, "metrics": s.metrics}
    return Trainer(s.model, optimizer, run_dir=s.run.path, schedule=schedule, schedule_per=per,
                   callbacks=list(s.callbacks), config=s.config, progress=s.progress, verbose=True,
                   monitor=s.monitor, **task)


def describe(s: Session) -> str:
    c = s.config
    desc = ""
    if is_transfer(c):
        desc = (f", pretrained={c['pretrained'] or False}, freeze={c['freeze']}, "
                f"input {c['input_size']}x{c['input_size']}x3"
                + (f", fine-tune top {c['fine_tune']} blocks after epoch {s.head_epochs}" if c.get("fine_tune")
                   else ""))
    val = len(s.data.val) if s.data.val is not None else 0
    if is_detection(c):
        size = c["image_size"]
        desc = f", input {size}x{size}x3, {len(c['anchors'])} anchors ({c['anchors_from']})"
    return (f"training {c['model']} ({s.model.num_parameters():,} trainable parameters{desc}) on {c['data']}: "
            f"{len(s.data.fit):,} images, {val:,} for validation, {len(s.data.test):,} for testing -> {s.run}")


def run_phases(s: Session, trainer, head_resume=None):
    """Train the head phase (on cached features with --cache-features, continuing from the checkpoint
    ``head_resume`` if given), then fine-tune; returns the trainer that ran last."""
    c = s.config
    if trainer.epoch < s.head_epochs:
        if c.get("cache_features"):
            fit_head_on_features(trainer, s, resume_from=head_resume)
        else:
            trainer.fit(s.loader, s.head_epochs, s.val_loader)
    if c.get("fine_tune") and trainer.epoch < c["epochs"] and not trainer.stop and trainer.epoch >= s.head_epochs:
        if trainer.epoch == s.head_epochs and trainer.batch_in_epoch == 0:   # a fresh fine-tuning phase
            previous = trainer
            trainer = make_trainer(s, fine_tuning=True)
            trainer.epoch, trainer.history, trainer.best_score = (previous.epoch, previous.history,
                                                                  previous.best_score)
            print(f"fine-tuning the top {c['fine_tune']} blocks at lr {c['lr'] / 10:g} "
                  f"({s.model.num_parameters():,} trainable parameters)")
        trainer.fit(s.loader, c["epochs"], s.val_loader)
    return trainer


def fit_head_on_features(trainer, s: Session, resume_from=None) -> None:
    """The head phase of a --cache-features run: the base's pooled features are computed once (or loaded from
    the cache) and the head trains on them (:func:`strided.transfer.fit_head_on_features`, a Trainer run whose
    checkpoints hold the whole model, so the phase resumes like any run)."""
    from ..transfer import fit_head_on_features as fit_head

    config = s.config
    head_config = {**config, "epochs": s.head_epochs}
    try:
        head = fit_head(trainer.model, s.data.fit, s.head_epochs, s.data.val, input_size=config["input_size"],
                        cache_path=config["cache_features"], batch_size=config["batch_size"], seed=config["seed"],
                        optimizer=lambda module, steps: build_optimizer(head_config, module, steps),
                        run_dir=s.run.path, config=config, callbacks=s.callbacks, monitor=s.monitor,
                        progress=s.progress, verbose=True, resume_from=resume_from)
    except KeyboardInterrupt:
        raise Interrupted(f"while computing the frozen base's features for {s.run} (no epoch was trained, "
                          f"finished feature sets stay cached); run the same command again to start over") from None
    trainer.epoch, trainer.history, trainer.best_score = head.epoch, head.history, head.best_score
    trainer.stop, trainer.stop_reason = head.stop, head.stop_reason


def final_report(s: Session, history) -> tuple[dict, list]:
    """Evaluate the best checkpoint on the test set; write metrics.json and the pictures."""
    from ..checkpoint import load_weights
    from ..data import DataLoader
    from ..data.image import to_float
    from ..report import plot_confusion, plot_curves, plot_predictions
    from ..train import evaluate, predict

    run, model, test, classes = s.run, s.model, s.data.test, s.data.classes
    best = run.checkpoint("best")
    if best.exists():
        load_weights(model, best)
    result = evaluate(model, DataLoader(test, batch_size=256), num_classes=len(classes))
    metrics = run.read_metrics()
    metrics.update(history=history, test_accuracy=result["accuracy"], test_loss=result["loss"],
                   test_count=result["count"], confusion=result["confusion"].tolist(), classes=list(classes),
                   checkpoint="best")
    run.write_metrics(metrics)
    pictures = [plot_curves(history, run.path / "curves.png"),
                plot_confusion(result["confusion"], classes, run.path / "confusion.png")]
    n = min(16, len(test))
    images = to_float(test.images[:n])
    probs = predict(model, images)
    pictures.append(plot_predictions(images, test.labels[:n], probs, classes, run.path / "predictions.png"))
    return result, pictures


# --------------------------------------------------------------------------- detection
def scene_subset(scenes, indices):
    """The scenes ``indices`` of a :class:`~strided.data.scenes.SceneSet` as a new SceneSet."""
    import dataclasses

    indices = [int(i) for i in indices]
    return dataclasses.replace(scenes, images=scenes.images[indices], boxes=[scenes.boxes[i] for i in indices],
                               labels=[scenes.labels[i] for i in indices],
                               landmarks=[scenes.landmarks[i] for i in indices], backgrounds=None, masks=None)


def load_detection_data(config) -> TrainingData:
    """The generated scenes (``limit`` training and ``test_limit`` test scenes of ``image_size``
    pixels), with ``val_split`` of the training scenes held out (a seeded random choice)."""
    train, test = load_data(config)
    if not isinstance(getattr(train, "boxes", None), list):
        raise CLIError(f"{config['data']} is not a scenes data set with boxes; --task detect takes "
                       f"{', '.join(DETECTION_DATA)}")
    n_val = int(round(config["val_split"] * len(train)))
    if n_val:
        order = np.random.default_rng(config["seed"]).permutation(len(train))
        fit, val = scene_subset(train, np.sort(order[n_val:])), scene_subset(train, np.sort(order[:n_val]))
    else:
        fit, val = train, None
    if len(fit) == 0:
        raise CLIError(f"no training scenes left (--limit {config['limit']}, --val-split {config['val_split']})")
    return TrainingData(train, test, fit, val, list(train.classes))


def choose_anchors(config, scenes, stride: int) -> tuple:
    """``(anchors, note)``: k-means (1 - IoU, k=5, seeded) on the training boxes in grid cells of
    ``stride`` pixels, or the model's defaults (``--anchors default``, or too few distinct boxes);
    the note says which, with the mean best IoU of the training boxes with the anchors."""
    from ..detect.anchors import AnchorError, kmeans_anchors, shape_iou
    from ..models.yolo import DEFAULT_ANCHORS

    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b in scenes.boxes])
    wh = (boxes[:, 2:] - boxes[:, :2]) / stride
    if config["anchors_from"] == "kmeans":
        try:
            anchors, mean_iou = kmeans_anchors(wh, NUM_ANCHORS, seed=config["seed"])
            return ([[round(float(w), 4), round(float(h), 4)] for w, h in anchors],
                    f"k-means on {len(wh)} training boxes, mean IoU {mean_iou:.3f}")
        except AnchorError as exc:
            print(f"k-means anchors: {exc}; using the model's default anchors")
    anchors = np.asarray(DEFAULT_ANCHORS, np.float64)
    mean_iou = float(shape_iou(wh, anchors).max(axis=1).mean()) if len(wh) else float("nan")
    return anchors.tolist(), f"the model's defaults, mean IoU {mean_iou:.3f} with the {len(wh)} training boxes"


def make_detection_session(run, config, data, model, progress: bool) -> Session:
    """Loaders with :func:`~strided.detect.training.collate_detection` (and box-aware augmentation with
    --augment), the YOLOv2 loss, the validation mAP50 as the metric that picks the best checkpoint."""
    from ..data import DataLoader
    from ..data.box_augment import BoxAugment
    from ..detect.report import ValidationMAP
    from ..detect.training import YoloLoss, collate_detection
    from ..train import EarlyStopping, Monitor

    transform = None
    if config["augment"]:
        augment = BoxAugment()

        def transform(batch, rng):
            return augment.batch(batch[0], batch[1], rng)
    loader = DataLoader(data.fit, batch_size=config["batch_size"], shuffle=True, seed=config["seed"],
                        transform=transform, collate_fn=collate_detection)
    val_loader = (DataLoader(data.val, batch_size=64, collate_fn=collate_detection)
                  if data.val is not None and len(data.val) else None)
    anchors, num_classes = np.asarray(config["anchors"]), len(data.classes)
    metrics = {"mAP50": ValidationMAP(anchors, num_classes)} if val_loader is not None else {}
    monitor = Monitor("val_mAP50", "max") if val_loader is not None else Monitor("loss", "min")
    callbacks = [EarlyStopping("val_loss", config["patience"])] if config["patience"] and val_loader else []
    return Session(run, config, data, model, loader, val_loader, callbacks, monitor, config["epochs"], progress,
                   loss_fn=YoloLoss(anchors, num_classes), metrics=metrics)


def detection_report(run, model, test, config, history=None, checkpoint: str = "best") -> tuple[dict, list]:
    """COCO mAP of ``model`` on the test scenes; metrics.json and the pictures (pr_curve.png,
    confusion.png with background, predictions.png; curves.png when ``history`` is given)."""
    from ..checkpoint import json_safe
    from ..detect.plots import plot_detection_confusion, plot_pr_curves
    from ..detect.report import EVAL_CONF, evaluate_detector, plot_detection_curves, plot_detections_grid

    classes = list(config["classes"])
    result = evaluate_detector(model, test)
    per_class = {name: {"ap50": ap["ap50"], "ap50_95": ap["ap50_95"], "boxes": ap["num_gt"]}
                 for name, ap in zip(classes, result["per_class"].values())}
    numbers = {"mAP50": result["map50"], "mAP50-95": result["map50_95"], "mAP75": result["map75"],
               "images": len(test), "boxes": len(result["ground_truth"]), "per_class": per_class,
               "confusion": result["confusion"].tolist(), "checkpoint": checkpoint,
               "definition": f"COCO (pycocotools): 101-point AP, IoU 0.50 and 0.50:0.05:0.95, score > {EVAL_CONF}, "
                             f"NMS IoU 0.45, at most 100 boxes per image; confusion: score >= 0.25, IoU >= 0.5"}
    metrics = run.read_metrics()
    if history is not None:
        metrics.update(history=history, classes=classes, test_mAP50=result["map50"],
                       test_mAP50_95=result["map50_95"], test_count=len(test), checkpoint=checkpoint)
    metrics.setdefault("evaluate", {})[checkpoint] = numbers
    run.write_metrics(json_safe(metrics))
    pictures = []
    if history is not None:
        pictures.append(plot_detection_curves(history, run.path / "curves.png"))
    pictures += [plot_pr_curves(result, run.path / "pr_curve.png", class_names=classes),
                 plot_detection_confusion(result["confusion"], run.path / "confusion.png", classes)]
    n = min(12, len(test))
    pictures.append(plot_detections_grid(test.images[:n], result["detections"][:n], classes,
                                         run.path / "predictions.png",
                                         ground_truth=list(zip(test.boxes[:n], test.labels[:n]))))
    return result, pictures


def print_detection_result(result, classes, where: str) -> None:
    print(f"{where}: mAP50 {result['map50']:.4f}, mAP50-95 {result['map50_95']:.4f} (COCO)")
    for name, ap in zip(classes, result["per_class"].values()):
        if ap["num_gt"]:
            print(f"  {name:>14}: AP50 {ap['ap50']:.4f}  AP50-95 {ap['ap50_95']:.4f}  ({ap['num_gt']} boxes)")
        else:
            print(f"  {name:>14}: no boxes in the test scenes")


def train_detection(args, run, config, resumed) -> int:
    """``strided train --task detect``: see the module docstring."""
    from .. import manual_seed
    from ..checkpoint import load_weights
    from ..models.yolo import YoloTiny

    manual_seed(config["seed"])
    data = load_detection_data(config)
    if resumed is None:
        config["anchors"], config["anchors_note"] = choose_anchors(config, data.fit, YoloTiny.stride)
    size = int(config["image_size"])
    model = build_model(config, (size, size, 3), len(data.classes))
    config.update(classes=data.classes, image_shape=[size, size, 3])
    if resumed is None:
        run.create(overwrite=bool(args.overwrite))
        run.write_config(config)
    s = make_detection_session(run, config, data, model, progress=not args.no_progress)
    trainer = make_trainer(s)
    if resumed is not None:
        trainer.resume(resumed.checkpoint)
        print(f"resuming {run} at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}")
    print(describe(s))
    print(f"anchors (grid cells of {YoloTiny.stride} px): {config['anchors']} -- {config['anchors_note']}")
    try:
        trainer = run_phases(s, trainer)
        if trainer.stop and trainer.stop_reason.startswith("interrupted"):
            print(f"{trainer.stop_reason}\ncontinue with: strided train --resume {run}")
            return EXIT_INTERRUPTED
        if trainer.stop_reason:
            print(trainer.stop_reason)
        if run.checkpoint("best").exists():
            load_weights(model, run.checkpoint("best"))
        result, pictures = detection_report(run, model, data.test, config, trainer.history)
    except OSError as exc:
        where = exc.filename or run.path
        raise CLIError(f"cannot write {str(where)!r}: {exc.strerror or exc}. Free some space (or fix the "
                       f"permission), then continue with `strided train --resume {run}`", EXIT_ERROR) from None
    print_detection_result(result, config["classes"], f"test ({len(data.test):,} scenes, best checkpoint)")
    for path in pictures:
        print(f"wrote {path}")
    return EXIT_OK


def evaluate_detection(args, config) -> int:
    """``strided evaluate RUN_DIR`` of a detection run."""
    run, _, model = load_run(args.run_dir[0], args.checkpoint)
    _, test = load_data({**config, "limit": 1})         # the test scenes do not depend on the training count
    result, pictures = detection_report(run, model, test, config, checkpoint=args.checkpoint)
    print_detection_result(result, config["classes"], f"{config['model']} on {config['data']} "
                                                      f"({args.checkpoint} checkpoint, {len(test):,} test scenes)")
    for path in pictures:
        print(f"wrote {path}")
    return EXIT_OK


# --------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    """``strided train``: a new run (``--out``), or ``--resume RUN_DIR``."""
    from .. import manual_seed

    if getattr(args, "seeds", None) is not None:
        return train_seeds(args)
    if task_of(args) == "embed":
        return train_embed(args)
    resumed = None
    if args.resume:
        resumed = resume_run(args)
        run, config = resumed.run, resumed.config
        if resumed.finished:
            metrics = run.read_metrics()
            score = (f"test mAP50 {metrics['test_mAP50']:.4f}" if is_detection(config)
                     else f"test accuracy {metrics['test_accuracy']:.2%}")
            print(f"{run} is finished: {resumed.epoch} of {config['epochs']} epochs trained, {score}; nothing to do (its files are unchanged). To train it longer: "
                  f"strided train --resume {run} --epochs N (N > {resumed.epoch})")
            return EXIT_OK
    else:
        run, config = new_run(args)
    if is_detection(config):
        return train_detection(args, run, config, resumed)
    manual_seed(config["seed"])
    data = load_training_data(config)
    model = build_model(config, data.train.image_shape, len(data.classes), load_pretrained=resumed is None)
    if not is_transfer(config):
        check_model_takes(model, data.train.image_shape, config)
    config.update(classes=data.classes, image_shape=list(data.train.image_shape))
    if resumed is None:
        run.create(overwrite=bool(args.overwrite))
        run.write_config(config)
    s = make_session(run, config, data, model, progress=not args.no_progress)
    trainer = make_trainer(s)
    head_resume = None
    if resumed is not None and config.get("cache_features") and resumed.epoch < s.head_epochs:
        head_resume = resumed.checkpoint          # the head phase on cached features continues there
        print(f"resuming {run}'s head phase (cached features) after epoch {resumed.epoch}")
    elif resumed is not None:
        if is_transfer(config) and config.get("fine_tune") and resumed.epoch >= s.head_epochs:
            trainer = make_trainer(s, fine_tuning=True)
        trainer.resume(resumed.checkpoint)
        print(f"resuming {run} at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}")
    print(describe(s))
    try:
        trainer = run_phases(s, trainer, head_resume)
        if trainer.stop and trainer.stop_reason.startswith("interrupted"):
            print(f"{trainer.stop_reason}\ncontinue with: strided train --resume {run}")
            return EXIT_INTERRUPTED
        if trainer.stop_reason:
            print(trainer.stop_reason)
        result, pictures = final_report(s, trainer.history)
    except OSError as exc:
        where = exc.filename or run.path
        raise CLIError(f"cannot write {str(where)!r}: {exc.strerror or exc}. Free some space (or fix the "
                       f"permission), then continue with `strided train --resume {run}`", EXIT_ERROR) from None
    print(f"test accuracy {result['accuracy']:.2%} (loss {result['loss']:.4f}) on {result['count']:,} images")
    for path in pictures:
        print(f"wrote {path}")
    return EXIT_OK


def parse_number_list(text: str, flag: str, kind=float) -> list:
    """``"1,2,1"`` -> ``[1.0, 2.0, 1.0]`` (``kind`` of each), or a CLIError quoting ``flag``."""
    try:
        values = [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise CLIError(f"{flag} expects comma-separated numbers such as 1,2,1; received {text!r}")
    return values


def load_classifier(run_dirs, args, command: str):
    """``(config, model, what)`` for ``evaluate`` / ``predict``: one run, or with ``--ensemble`` an
    :class:`~strided.train.Ensemble` of several (same classes and input shape, checked), with
    ``--tta`` wrapped in a :class:`~strided.tta.TTAModel` by the caller."""
    from ..errors import StridedError
    from ..train import Ensemble

    if len(run_dirs) > 1 and not args.ensemble:
        raise CLIError(f"{command} received {len(run_dirs)} run directories ({', '.join(map(str, run_dirs))}); "
                       f"to average them add --ensemble")
    if args.weights is not None and not args.ensemble:
        raise CLIError("--weights needs --ensemble")
    configs, models = [], []
    for run_dir in run_dirs:
        config = RunDir(run_dir).read_config()
        if is_detection(config):
            raise CLIError(f"{run_dir} is a detection run: --ensemble and --tta apply to classification runs")
        refuse_embedding_run(run_dir, command)
        _, config, model = load_run(run_dir, args.checkpoint)
        first = configs[0] if configs else None
        if first is not None:
            for key, what in (("classes", "classes"), ("image_shape", "input shape (H, W, C)")):
                if list(config[key]) != list(first[key]):
                    raise CLIError(f"--ensemble: {run_dir} and {run_dirs[0]} differ in their {what}: "
                                   f"{config[key]} vs {first[key]}; members must share classes and input shape")
        configs.append(config)
        models.append(model)
    if not args.ensemble:
        return configs[0], models[0], configs[0]["model"]
    weights = None
    if args.weights is not None:
        weights = parse_number_list(args.weights, "--weights")
        if len(weights) != len(models):
            raise CLIError(f"--weights: one weight per run expected ({len(models)} runs), received "
                           f"{len(weights)}: {args.weights}")
    try:
        model = Ensemble(models, weights, input_shape=configs[0]["image_shape"])
    except StridedError as exc:
        raise CLIError(f"--ensemble: {exc}") from None
    names = sorted({c["model"] for c in configs})
    return configs[0], model, f"ensemble of {len(models)} ({'+'.join(names)}, weights " \
                              f"{[round(w, 3) for w in model.weights.tolist()]})"


def train_seeds(args) -> int:
    """``strided train ... --seeds 0,1,2 --out OUT``: one run per seed into ``OUT-seed0``, ``OUT-seed1``, ...
    (everything else identical), one after the other; stops at the first run that does not finish."""
    import copy

    seeds = parse_number_list(args.seeds, "--seeds", int)
    if len(set(seeds)) != len(seeds):
        raise CLIError(f"--seeds must be different from each other, received {args.seeds}")
    if args.out is None:
        raise CLIError("--seeds needs --out OUT: the runs go to OUT-seed0, OUT-seed1, ...")
    if args.resume or args.seed is not None:
        raise CLIError("--seeds cannot be combined with --resume or --seed (resume each run on its own: "
                       "strided train --resume OUT-seedN)")
    for seed in seeds:
        member = copy.copy(args)
        member.seeds, member.seed, member.out = None, seed, f"{args.out}-seed{seed}"
        print(f"== seed {seed}: {member.out}")
        code = cmd_train(member)
        if code != EXIT_OK:
            return code
    print("evaluate them together with: strided evaluate " + " ".join(f"{args.out}-seed{s}" for s in seeds)
          + " --ensemble")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    """``strided evaluate RUN_DIR [RUN_B ...] [--tta MODE] [--ensemble]``: test accuracy and per-class
    accuracy of a checkpoint (or an ensemble of runs), with test-time augmentation if asked."""
    from ..data import DataLoader
    from ..train import evaluate
    from ..tta import VIEWS, TTAModel

    run_dirs = list(args.run_dir)
    config = RunDir(run_dirs[0]).read_config()
    if is_detection(config) and len(run_dirs) == 1 and not args.ensemble and args.tta == "none":
        return evaluate_detection(args, config)
    config, model, what = load_classifier(run_dirs, args, "evaluate")
    if args.tta != "none":
        model = TTAModel(model, args.tta)
    _, test = load_data({**config, "limit": 0})
    start = time.perf_counter()
    result = evaluate(model, DataLoader(test, batch_size=256), num_classes=len(config["classes"]))
    seconds = time.perf_counter() - start
    passes = VIEWS[args.tta] * (len(run_dirs) if args.ensemble else 1)
    tta = "" if args.tta == "none" else f", --tta {args.tta}"
    print(f"{what} on {config['data']} ({args.checkpoint} checkpoint{tta}, {passes} forward pass"
          f"{'es' if passes > 1 else ''} per image): test accuracy {result['accuracy']:.2%}, loss "
          f"{result['loss']:.4f}, {result['count']:,} images in {seconds:.1f} s")
    cm = result["confusion"]
    for i, name in enumerate(config["classes"]):
        total = cm[i].sum()
        print(f"  {name:>14}: {cm[i, i] / max(total, 1):7.2%} of {total}")
    return EXIT_OK


def tta_probabilities(model, image_paths, shape, mode: str, normalise=None) -> np.ndarray:
    """``(N, K)`` probabilities of image files with ``--tta mode`` for a model taking ``shape`` (H, W, C):
    an image already ``H x W`` is padded to the canvas, any other is resized so its shorter side is
    ``round(H / 0.875)`` and the views cut from it (``normalise`` maps float [0, 1] pixels to the
    model's input; default as is)."""
    from ..data.image import to_float
    from ..tta import CROP_FRACTION, TTAModel, predict_tta, resize_shorter_side

    H, W, C = (int(v) for v in shape)
    out = []
    for path in image_paths:
        if not Path(path).exists():
            raise CLIError(f"image {str(path)!r} does not exist")
        image = read_rgb(path, grayscale=C == 1)
        if image.shape[:2] != (H, W):
            image = resize_shorter_side(image, int(round(min(H, W) / CROP_FRACTION)))
        x = to_float(image)[None]
        if normalise is not None:
            x = normalise(x)
        out.append(predict_tta(model, x, mode, size=H))
    return np.concatenate(out)


def predict_pretrained(args) -> int:
    """``strided predict --model NAME --pretrained [PATH] IMAGE...``: ImageNet top-k per image."""
    from .. import models
    from ..errors import CheckpointError
    from ..models.imagenet import IMAGENET_CLASSES
    from ..models.pretrained import classify, pretrained_models, pretrained_weights_path

    images, weights = list(args.paths), args.pretrained
    # `--pretrained IMAGE`: argparse gave the first image to --pretrained
    if isinstance(weights, str) and not weights.lower().endswith(WEIGHT_SUFFIXES):
        images, weights = [weights, *images], True
    if not images:
        raise CLIError("predict --pretrained needs at least one IMAGE")
    name = args.model or "efficientnet_lite0"
    if name not in pretrained_models():
        raise CLIError(f"--pretrained: no pretrained weights are known for model {name!r}; models with "
                       f"pretrained weights: {', '.join(pretrained_models())}")
    top = 5 if args.top is None else args.top
    if not 1 <= top <= len(IMAGENET_CLASSES):
        raise CLIError(f"--top must be in 1..{len(IMAGENET_CLASSES)}, received {top}")
    if isinstance(weights, str) and not Path(weights).is_file():
        raise CLIError(f"--pretrained: weight file {weights!r} does not exist")
    try:
        model = models.create(name, pretrained=weights)
        source = weights if isinstance(weights, str) else pretrained_weights_path(name)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except (CheckpointError, ValueError, OSError) as exc:
        raise CLIError(f"--pretrained: {exc}") from None
    if args.ensemble or args.weights is not None:
        raise CLIError("--ensemble averages runs of `strided train` (RUN_DIR RUN_B ... IMAGE...), not --pretrained")
    print(f"{name}, pretrained on ImageNet ({source})")
    if args.tta != "none":
        from ..models.pretrained import IMAGE_SIZE, MEAN_RGB, STDDEV_RGB

        def normalise(x):      # the float [0, 1] canvas -> (x * 255 - 127) / 128, as preprocess does
            return (x * 255.0 - np.float32(MEAN_RGB[0])) / np.float32(STDDEV_RGB[0])

        probs = tta_probabilities(model, images, (IMAGE_SIZE, IMAGE_SIZE, 3), args.tta, normalise)
        print(f"--tta {args.tta}: probabilities averaged over the views of each photo (shorter side resized to "
              f"{int(round(IMAGE_SIZE / 0.875))}, crops of {IMAGE_SIZE})")
        for path, p in zip(images, probs):
            order = np.argsort(-p)[:top]
            print(f"{path}: " + ", ".join(f"{IMAGENET_CLASSES[i]} {p[i]:.1%}" for i in order))
        return EXIT_OK
    arrays = [read_rgb(p) for p in images]        # all read before any output
    for path, image in zip(images, arrays):
        print(f"{path}: " + ", ".join(f"{label} {p:.1%}" for _, label, p in classify(model, image, top)))
    return EXIT_OK


def cmd_predict(args) -> int:
    """``strided predict RUN_DIR IMAGE...`` (or ``--pretrained``): the top classes per image."""
    from ..train import predict

    if args.pretrained is not None:
        return predict_pretrained(args)
    if args.model is not None:
        raise CLIError(f"--model {args.model} needs --pretrained (weights of a trained run come with RUN_DIR: "
                       f"`strided predict RUN_DIR IMAGE...`)")
    if len(args.paths) < 2:
        raise CLIError("predict needs RUN_DIR and at least one IMAGE (or --pretrained and images)")
    # with --ensemble the leading directories are the runs; otherwise only the first path is
    n_runs = 1
    if args.ensemble:
        while n_runs < len(args.paths) - 1 and Path(args.paths[n_runs]).is_dir():
            n_runs += 1
    run_dirs, image_paths = args.paths[:n_runs], args.paths[n_runs:]
    top = 3 if args.top is None else args.top
    if top < 1:
        raise CLIError(f"--top must be >= 1, received {top}")
    run_dir = run_dirs[0]
    config = RunDir(run_dir).read_config()
    if is_detection(config):
        raise CLIError(f"{run_dir} is a detection run: find its objects with `strided detect IMAGE... --model "
                       f"{run_dir}`")
    config, model, _ = load_classifier(run_dirs, args, "predict")
    shape = tuple(config["image_shape"])
    if args.tta != "none":
        probs = tta_probabilities(model, image_paths, shape, args.tta)
    else:
        images = np.stack([read_image_for_model(p, shape) for p in image_paths])
        probs = predict(model, images)
    classes = config["classes"]
    for path, p in zip(image_paths, probs):
        order = np.argsort(-p)[:min(top, len(classes))]
        print(f"{path}: " + ", ".join(f"{classes[i]} {p[i]:.1%}" for i in order))
    return EXIT_OK


# --------------------------------------------------------------------------- --task embed
# Metric learning (issue 9): the model's output is an embedding, trained on P x K batches with a
# triplet / contrastive / siamese loss, evaluated on classes held out of training.  Self-contained:
# only add_embed_arguments, task_of and train_embed below (and one line each in add_train_parser and
# cmd_train) belong to it.
EMBED_DEFAULTS = {"task": "classify", "loss": "triplet", "mining": "semi-hard", "p": 8, "k": 4,
                  "embedding_dim": 64, "margin": None, "unseen": None, "eval_images": 2000}


def add_embed_arguments(p) -> None:
    from ..face.embedding import LOSSES, MININGS

    g = p.add_argument_group(
        "metric learning (--task embed)",
        "the model's output is a --embedding-dim embedding trained on P x K batches (P classes, K images "
        "each); the last --unseen classes are held out of training and the final report gives N-way "
        "1-shot accuracy, ROC AUC, EER and TAR@FAR on them (test split)")
    g.add_argument("--loss", choices=LOSSES, default=None,
                   help="triplet (online mining, margin 0.2, L2-normalised), contrastive (every pair, margin "
                        "1.0, L2-normalised) or siamese (logistic head on |f1 - f2|); default triplet")
    g.add_argument("--mining", choices=MININGS, default=None, help="triplets per batch (default semi-hard)")
    g.add_argument("--margin", type=float, default=None, help="triplet / contrastive margin")
    g.add_argument("--p", type=int, default=None, metavar="P", help="classes per batch (default 8, at most "
                                                                    "the training classes)")
    g.add_argument("--k", type=int, default=None, metavar="K", help="images per class in a batch (default 4)")
    g.add_argument("--embedding-dim", type=int, default=None, metavar="D", help="default 64")
    g.add_argument("--unseen", type=int, default=None, metavar="N",
                   help="the last N classes are never trained on (default: half of the classes)")
    g.add_argument("--eval-images", type=int, default=None, metavar="N",
                   help="held-out test images (a seeded random subset) embedded for the final report "
                        "(default 2000: about 2 million pairs)")


def task_of(args) -> str:
    """``"embed"`` or ``"classify"``: from ``--task``, or from the config of the run ``--resume`` names."""
    if getattr(args, "task", None):
        return args.task
    if getattr(args, "resume", None):
        return run_task(args.resume)
    return "classify"


def run_task(run_dir) -> str:
    """The ``task`` of the run in ``run_dir`` (``"classify"`` for runs made before tasks existed, and
    when its config cannot be read: the classification code then reports what is wrong)."""
    import json
    try:
        return str(json.loads(RunDir(run_dir).config_path.read_text(encoding="utf-8")).get("task", "classify"))
    except (OSError, ValueError, AttributeError):
        return "classify"


def _embed_config(args) -> tuple[RunDir, dict, Path | None]:
    """``(run, config, last checkpoint to resume or None)`` of an embedding run."""
    names = (*TRAIN_DEFAULTS, *EMBED_DEFAULTS)
    if args.resume:
        run = RunDir(args.resume)
        config = run.read_config()
        given = [n for n in (*names, *TRANSFER_DEFAULTS, "out", "overwrite")
                 if n not in RESUME_OPTIONS and n != "task" and getattr(args, n, None) is not None]
        if given:
            raise CLIError(f"--resume {run} continues the run with its own settings (see {run.config_path}); "
                           f"{', '.join(_flag(n) for n in given)} cannot change on resume: drop them, or start a "
                           f"new run with --out NEW_DIR")
        last = run.checkpoint("last")
        if not last.is_file():
            raise CLIError(f"--resume {run}: no epoch of this run was saved ({last} is missing); start it again "
                           f"with --overwrite")
        if args.epochs is not None:
            if args.epochs < 1:
                raise CLIError(f"--epochs must be >= 1, received {args.epochs}")
            config["epochs"] = args.epochs
        return run, config, last
    transfer = [n for n in TRANSFER_DEFAULTS if getattr(args, n, None) is not None]
    if transfer:
        raise CLIError(f"--task embed trains from scratch; {', '.join(_flag(n) for n in transfer)} "
                       f"apply to --task classify")
    defaults = {**TRAIN_DEFAULTS, **EMBED_DEFAULTS, "task": "embed"}
    config = {k: (d if getattr(args, k, None) is None else getattr(args, k)) for k, d in defaults.items()}
    _validate(config)
    for name, low in (("p", 2), ("k", 2), ("embedding_dim", 1), ("eval_images", 10)):
        if config[name] < low:
            raise CLIError(f"{_flag(name)} must be >= {low}, received {config[name]}")
    if config["margin"] is not None and not config["margin"] > 0:
        raise CLIError(f"--margin must be > 0, received {config['margin']}")
    if config["loss"] == "siamese" and config["margin"] is not None:
        raise CLIError("--margin applies to the triplet and contrastive losses, not siamese")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.out or f"runs/{config['model']}-{config['data'].replace(':', '_').replace('/', '_')}"
                              f"-embed-{stamp}")
    run.check_new(overwrite=bool(args.overwrite))
    return run, config, None


def _split_classes(config, train, test):
    """``(seen training set, held-out test set, seen class names, unseen class names)``."""
    classes = list(train.classes)
    n = len(classes)
    unseen = n // 2 if config["unseen"] is None else config["unseen"]
    if not 2 <= unseen <= n - 2:
        raise CLIError(f"--unseen must leave at least 2 classes on each side of the {n} classes of "
                       f"{config['data']}, received {unseen}")
    cut = n - unseen
    fit = train.subset(train.labels < cut)
    held = test.subset(test.labels >= cut)
    if len(held) == 0:
        raise CLIError(f"the test split of {config['data']} has no image of the held-out classes "
                       f"{classes[cut:]}")
    return fit, held, classes[:cut], classes[cut:]


def train_embed(args) -> int:
    """``strided train --task embed``: metric learning, checkpoints and resume as for classification."""
    from .. import manual_seed
    from ..checkpoint import load_weights
    from ..data.sampler import PKSampler
    from ..face.embedding import EmbeddingNet, PKBatches, embed_images, embedding_loss
    from ..face.evaluation import n_way_one_shot_accuracy, pair_distances, verification_report
    from ..face.losses import SiameseHead
    from ..train import Trainer

    run, config, last = _embed_config(args)
    manual_seed(config["seed"])
    train, test = load_data(config)
    fit, held, seen, unseen = _split_classes(config, train, test)
    p = min(config["p"], len(seen))
    try:
        sampler = PKSampler(fit.labels, p=p, k=config["k"], seed=config["seed"])
    except ValueError as exc:
        raise CLIError(f"cannot draw P x K batches from {config['data']}: {exc}") from None
    loader = PKBatches(fit, sampler)
    backbone = build_model(config, fit.image_shape, config["embedding_dim"])
    check_model_takes(backbone, fit.image_shape, config)
    siamese = config["loss"] == "siamese"
    model = EmbeddingNet(backbone, normalize=not siamese,
                         head=SiameseHead(config["embedding_dim"]) if siamese else None)
    loss_fn = embedding_loss(config["loss"], model, config["mining"], config["margin"])
    config.update(classes=classes_of(train), image_shape=list(fit.image_shape), seen_classes=seen,
                  unseen_classes=unseen)
    if last is None:
        run.create(overwrite=bool(args.overwrite))
        run.write_config(config)
    optimizer, schedule, per = build_optimizer(config, model, len(loader))
    trainer = Trainer(model, optimizer, loss_fn=loss_fn, run_dir=run.path, schedule=schedule, schedule_per=per,
                      config=config, progress=not args.no_progress, verbose=True, monitor="loss", metrics={})
    if last is not None:
        trainer.resume(last)
        print(f"resuming {run} at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}")
    mining = f", {config['mining']} mining" if config["loss"] == "triplet" else ""
    print(f"training {config['model']} as a {config['embedding_dim']}-d embedding ({config['loss']} loss{mining}, "
          f"{p} classes x {config['k']} images per batch) on {len(fit):,} images of {len(seen)} classes; "
          f"held out: {', '.join(unseen)} -> {run}")
    try:
        if trainer.epoch < config["epochs"]:
            trainer.fit(loader, config["epochs"])
        if trainer.stop and trainer.stop_reason.startswith("interrupted"):
            print(f"{trainer.stop_reason}\ncontinue with: strided train --resume {run}")
            return EXIT_INTERRUPTED
        best = run.checkpoint("best")
        if best.exists():
            load_weights(model, best)
        rng = np.random.default_rng(config["seed"])
        keep = np.sort(rng.choice(len(held), min(len(held), config["eval_images"]), replace=False))
        images, labels = held.get_batch(keep)
        embeddings = embed_images(model, images)
        n_way = min(5, len(unseen))
        report = verification_report(*pair_distances(embeddings, labels))
        report["one_shot_accuracy"] = n_way_one_shot_accuracy(embeddings, labels, n_way=n_way, episodes=1000,
                                                              seed=config["seed"])
        report.update(n_way=n_way, images=int(len(keep)), classes=unseen)
        metrics = run.read_metrics()
        metrics.update(history=trainer.history, held_out=report, checkpoint="best")
        run.write_metrics(metrics)
    except OSError as exc:
        where = exc.filename or run.path
        raise CLIError(f"cannot write {str(where)!r}: {exc.strerror or exc}. Free some space (or fix the "
                       f"permission), then continue with `strided train --resume {run}`", EXIT_ERROR) from None
    tar = report["tar_at_far"]
    print(f"held-out classes ({len(unseen)}, {report['images']:,} test images): {n_way}-way 1-shot accuracy "
          f"{report['one_shot_accuracy']:.3f}, ROC AUC {report['auc']:.4f}, EER {report['eer']:.4f}, "
          f"TAR@FAR=1e-2 {tar['0.01']['tar']:.3f}, TAR@FAR=1e-3 {tar['0.001']['tar']:.3f}")
    print(f"wrote {run.metrics_path}")
    return EXIT_OK


def classes_of(dataset) -> list:
    return [str(c) for c in dataset.classes]


def refuse_embedding_run(run_dir, command: str) -> None:
    """``evaluate`` / ``predict`` classify: an embedding run (``--task embed``) is a clear error."""
    if run_task(run_dir) == "embed":
        raise CLIError(f"{run_dir} is an embedding run (--task embed), not a classifier: `strided {command}` does "
                       f"not apply; its held-out classes' report (N-way 1-shot accuracy, ROC AUC, EER, TAR@FAR) "
                       f"is in {RunDir(run_dir).metrics_path}")
