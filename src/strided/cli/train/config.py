"""The run's ``config.json`` for ``strided train``: the options' defaults, a new run's config
(:func:`new_run`, values checked), and ``--resume RUN_DIR`` (:func:`resume_run`: the run's own config
and last checkpoint; an option that would change the run is refused)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..common import RunDir
from ..errors import CLIError

__all__ = ["TRAIN_DEFAULTS", "TRANSFER_DEFAULTS", "DEFAULT_TRANSFER_INPUT", "DETECT_DEFAULTS", "DETECTION_DATA",
           "RESUME_OPTIONS", "DETECT_OPTIONS", "option_flag", "validate_config", "new_run", "detection_config",
           "transfer_config", "Resumed", "resume_run", "parse_number_list"]


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
                   "anchors": "kmeans", "fresh_scenes": False}
DETECTION_DATA = ("digit-scenes", "fashion-scenes")
# options that --resume accepts: the rest is fixed by the run's config.json
RESUME_OPTIONS = ("resume", "epochs", "no_progress")
# given on resume: refused like the others
DETECT_OPTIONS = ("task", "test_limit", "anchors", "net_size", "fresh_scenes")


def option_flag(name: str) -> str:
    """The command-line flag of a config key: ``"batch_size"`` -> ``"--batch-size"``."""
    return "--" + name.replace("_", "-")


def validate_config(config) -> None:
    """The values every task shares (epochs, batch size, limit, patience, val split, lr) are in range,
    or a :class:`CLIError` naming the flag and the value received."""
    for name, low in (("epochs", 1), ("batch_size", 1), ("limit", 0), ("patience", 0)):
        if config[name] < low:
            what = " (0: all images)" if name == "limit" else " (0: off)" if name == "patience" else ""
            raise CLIError(f"{option_flag(name)} must be >= {low}{what}, received {config[name]}")
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
        for key in ("test_limit", "anchors", "net_size", "fresh_scenes"):
            if getattr(args, key, None) is not None:
                raise CLIError(f"{option_flag(key)} goes with --task detect")
    validate_config(config)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.out or f"runs/{config['model']}-{config['data'].replace(':', '_').replace('/', '_')}-{stamp}")
    run.check_new(overwrite=bool(args.overwrite))
    config.update(detection_config(args, config) if detect else transfer_config(args, config, run.path))
    return run, config


def detection_config(args, config) -> dict:
    """The detection part of config.json (validated): task, image_size (the scenes' side),
    net_size (the side the network sees; the scenes' side unless --net-size), test_limit,
    anchors_from; the transfer options are refused."""
    given = [k for k in ("pretrained", "freeze", "fine_tune", "cache_features") if getattr(args, k, None) is not None]
    if given:
        raise CLIError(f"{', '.join(option_flag(k) for k in given)}: transfer learning is for --task classify; "
                       f"--task detect trains {config['model']} from scratch")
    if config["data"] not in DETECTION_DATA:
        raise CLIError(f"--task detect trains on a scenes data set with boxes ({', '.join(DETECTION_DATA)}), "
                       f"received --data {config['data']}")
    size = DETECT_DEFAULTS["input_size"] if args.input_size is None else args.input_size
    if size < 32 or size % 16:
        raise CLIError(f"--input-size (the scenes' side) must be a multiple of 16 and >= 32 for {config['model']}, "
                       f"received {size}")
    net_size = size if getattr(args, "net_size", None) is None else args.net_size
    if net_size < 32 or net_size % 16:
        raise CLIError(f"--net-size (the side the network sees) must be a multiple of 16 and >= 32 for "
                       f"{config['model']}, received {net_size}")
    test_limit = DETECT_DEFAULTS["test_limit"] if args.test_limit is None else args.test_limit
    if test_limit < 0:
        raise CLIError(f"--test-limit must be >= 0 (0: the set's 1000), received {test_limit}")
    return {"task": "detect", "pretrained": False, "freeze": "none", "fine_tune": 0, "cache_features": False,
            "input_size": None, "image_size": int(size), "net_size": int(net_size),
            "test_limit": int(test_limit), "fresh_scenes": bool(getattr(args, "fresh_scenes", None)),
            "anchors_from": args.anchors or DETECT_DEFAULTS["anchors"]}


def transfer_config(args, config, run_dir: Path) -> dict:
    """The transfer-learning part of config.json (validated): pretrained, freeze, fine_tune, cache_features,
    input_size (None unless --pretrained) and image_size (--input-size without --pretrained: folder images are
    resized to it)."""
    from ...models.pretrained import has_pretrained, pretrained_models

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
    from ...checkpoint import load_checkpoint
    from ...errors import CheckpointError

    run = RunDir(args.resume)
    config = run.read_config()
    given = [name for name in (*TRAIN_DEFAULTS, *TRANSFER_DEFAULTS, *DETECT_OPTIONS, "out", "overwrite")
             if name not in RESUME_OPTIONS and getattr(args, name, None) is not None]
    if given:
        kept = ", ".join(f"{option_flag(k)} {config.get(k)}" for k in ("model", "data", "lr", "batch_size", "optimizer")
                         if k in config)
        asked = ", ".join(option_flag(k) if getattr(args, k) is True else f"{option_flag(k)} {getattr(args, k)}" for k in given)
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


def parse_number_list(text: str, flag: str, kind=float) -> list:
    """``"1,2,1"`` -> ``[1.0, 2.0, 1.0]`` (``kind`` of each), or a CLIError quoting ``flag``."""
    try:
        values = [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise CLIError(f"{flag} expects comma-separated numbers such as 1,2,1; received {text!r}")
    return values
