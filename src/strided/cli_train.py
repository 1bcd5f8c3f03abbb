"""``strided train | evaluate | predict``: the training commands of the CLI.

    strided train --model lenet5 --data fashion-mnist --epochs 10 --batch-size 64 --lr 1e-3 --out RUN_DIR
    strided train --resume RUN_DIR              # continue an interrupted run exactly
    strided evaluate RUN_DIR                     # test accuracy and confusion matrix of the best checkpoint
    strided predict RUN_DIR IMAGE... --top 3     # class names with probabilities
    strided predict --model efficientnet_lite0 --pretrained IMAGE... --top 5   # pretrained ImageNet classes

A run directory holds ``config.json`` (everything needed to rebuild the run),
``checkpoints/{best,last}.safetensors``, ``metrics.json`` (history and test
results) and the pictures ``curves.png``, ``confusion.png``, ``predictions.png``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .cli import CLIError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# what `predict --pretrained X` takes as a weight file; anything else after it is an image
WEIGHT_SUFFIXES = (".pth", ".pt", ".tar", ".bin", ".ckpt", ".safetensors", ".npz")
SCHEDULES = ("none", "step", "cosine", "onecycle")


# --------------------------------------------------------------------------- parsers
def add_train_parser(subparsers):
    p = subparsers.add_parser("train", help="train a model on a data set",
                              description="Train a model; the run directory gets checkpoints, metrics and plots.")
    p.add_argument("--model", default="lenet5", help="architecture (see strided.models.list_models()); default lenet5")
    p.add_argument("--data", default="fashion-mnist",
                   help="data set: fashion-mnist, mnist-5k, digits, lfw-faces, folder:PATH, h5:TRAIN.h5[,TEST.h5]")
    p.add_argument("--data-root", default=None, help="folder with the data set's files, if not the default place")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=SCHEDULES, default="none", help="learning-rate schedule")
    p.add_argument("--augment", action="store_true", help="train on augmented copies (mirror, crop, ...)")
    p.add_argument("--val-split", type=float, default=0.1, help="fraction of the training set held out (default 0.1)")
    p.add_argument("--patience", type=int, default=0, help="early stopping after this many epochs without "
                                                           "improvement of the validation loss (0: off)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its last checkpoint (same epoch, optimizer state, "
                        "random streams); --epochs may extend it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    t = p.add_argument_group("transfer learning", "start from pretrained ImageNet weights (efficientnet_lite0); "
                                                  "see strided.transfer")
    t.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                   help="load pretrained weights (from the installed package, or PATH) for every layer but the "
                        "classifier; images are resized to --input-size and made RGB")
    t.add_argument("--freeze", choices=("none", "base"), default="none",
                   help="base: train only the new head (the base's BatchNorms use their running statistics)")
    t.add_argument("--fine-tune", type=int, default=0, metavar="N",
                   help="with --freeze base: train the head for the first ceil(epochs/2) epochs, then unfreeze the "
                        "top N blocks of the base for the remaining ones at lr/10 (their BatchNorms stay frozen)")
    t.add_argument("--cache-features", nargs="?", const=True, default=None, metavar="DIR",
                   help="with --freeze base: compute the frozen base's features once and train the head on them "
                        "(cached as .npz in DIR, default <out>/../.feature-cache, reused by later runs)")
    t.add_argument("--input-size", type=int, default=None,
                   help="side of the network's input with --pretrained (default 128; the weights were trained at "
                        "224)")
    p.set_defaults(func=cmd_train)


def add_evaluate_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="test accuracy of a trained run")
    p.add_argument("run_dir", help="run directory written by `strided train`")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_evaluate)


def add_predict_parser(subparsers):
    p = subparsers.add_parser(
        "predict", help="classify images with a trained run or a pretrained ImageNet model",
        usage="strided predict RUN_DIR IMAGE... [--top N] [--checkpoint {best,last}]\n"
              "       strided predict [--model NAME] --pretrained [PATH] IMAGE... [--top N]",
        description="Classify images: `strided predict RUN_DIR IMAGE...` with a run of `strided train`, or "
                    "`strided predict --model efficientnet_lite0 --pretrained IMAGE...` with pretrained ImageNet "
                    "weights (1000 classes; from the installed package, or --pretrained PATH.pth).")
    p.add_argument("paths", nargs="*", metavar="RUN_DIR IMAGE...",
                   help="run directory written by `strided train` (not with --pretrained), then image files "
                        "(any format Pillow reads)")
    p.add_argument("--top", type=int, default=None,
                   help="how many classes to show per image (default 3; 5 with --pretrained)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--model", default=None,
                   help="with --pretrained: the architecture (default efficientnet_lite0)")
    p.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                   help="use pretrained ImageNet weights instead of a run: from the installed package, or from "
                        "PATH (a file ending in " + ", ".join(WEIGHT_SUFFIXES) + ")")
    p.set_defaults(func=cmd_predict)


def register(subparsers):
    add_train_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_predict_parser(subparsers)


# --------------------------------------------------------------------------- building blocks
def _load_data(config):
    from .data import load
    try:
        train, test = load(config["data"], root=config.get("data_root"))
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:
        raise CLIError(f"cannot load data set {config['data']!r}: {exc}") from None
    if config.get("limit"):
        train = train.subset(np.arange(min(config["limit"], len(train))))
    return train, test


def _is_transfer(config) -> bool:
    return bool(config.get("pretrained")) or bool(config.get("input_size"))


def _build_model(config, image_shape, num_classes, load_pretrained=False):
    from . import models
    if _is_transfer(config):
        # a pretrained network behind an input adapter (resize to input_size, RGB, normalise): it takes the data
        # set's own images, so Trainer / evaluate / predict work unchanged.  The weights come from the package
        # only when training starts; evaluate and predict load the run's checkpoint.
        from .io import ModelFileError
        from .transfer import with_input_adapter
        pretrained = config.get("pretrained") if load_pretrained else False
        try:
            net = models.create(config["model"], pretrained=pretrained or False, num_classes=num_classes)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
        except (ModelFileError, ValueError, TypeError, OSError) as exc:
            raise CLIError(f"--pretrained: {exc}") from None
        return with_input_adapter(net, config["input_size"])
    kwargs = {"num_classes": num_classes, "in_channels": image_shape[-1]}
    if config["model"] == "lenet5":
        if image_shape[0] not in (28, 32) or image_shape[0] != image_shape[1]:
            raise CLIError(f"lenet5 takes 28x28 or 32x32 images, the data set has {image_shape[0]}x{image_shape[1]}; "
                           f"choose another --model")
        kwargs["input_size"] = image_shape[0]
    try:
        return models.create(config["model"], **kwargs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _build_optimizer(config, model, steps_per_epoch):
    from . import optim
    params, lr = model.parameters(trainable_only=True), config["lr"]
    name = config["optimizer"]
    if name == "adam":
        opt = optim.Adam(params, lr, weight_decay=config["weight_decay"])
    elif name == "adamw":
        opt = optim.AdamW(params, lr, weight_decay=config["weight_decay"] or 0.01)
    elif name == "sgd":
        opt = optim.SGD(params, lr, momentum=config["momentum"], nesterov=config["momentum"] > 0,
                        weight_decay=config["weight_decay"])
    else:
        opt = optim.RMSprop(params, lr, momentum=config["momentum"], weight_decay=config["weight_decay"])
    schedule, per = None, "epoch"
    if config["schedule"] == "step":
        schedule = optim.StepLR(opt, step_size=max(1, config["epochs"] // 3), gamma=0.1)
    elif config["schedule"] == "cosine":
        schedule = optim.CosineLR(opt, total_steps=config["epochs"])
    elif config["schedule"] == "onecycle":
        schedule, per = optim.OneCycleLR(opt, total_steps=config["epochs"] * steps_per_epoch, max_lr=lr), "batch"
    return opt, schedule, per


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _final_report(run_dir: Path, model, config, test, classes, trainer_history):
    """Evaluate the best checkpoint on the test set; write metrics.json and the pictures."""
    from .checkpoint import load_weights
    from .data import DataLoader
    from .report import plot_confusion, plot_curves, plot_predictions
    from .train import evaluate, predict

    best = run_dir / "checkpoints" / "best.safetensors"
    if best.exists():
        load_weights(model, best)
    result = evaluate(model, DataLoader(test, batch_size=256), num_classes=len(classes))
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics.update(history=trainer_history, test_accuracy=result["accuracy"], test_loss=result["loss"],
                   test_count=result["count"], confusion=result["confusion"].tolist(), classes=list(classes),
                   checkpoint="best")
    _write_json(metrics_path, metrics)
    pictures = [plot_curves(trainer_history, run_dir / "curves.png"),
                plot_confusion(result["confusion"], classes, run_dir / "confusion.png")]
    n = min(16, len(test))
    images = test.images[:n]
    images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    probs = predict(model, images)
    pictures.append(plot_predictions(images, test.labels[:n], probs, classes, run_dir / "predictions.png"))
    return result, pictures


# --------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from . import manual_seed
    from .data import DataLoader, augment
    from .train import EarlyStopping, Trainer, TrainingDiverged

    resume_path = None
    if args.resume:
        run_dir = Path(args.resume)
        config_path = run_dir / "config.json"
        resume_path = run_dir / "checkpoints" / "last.safetensors"
        if not config_path.is_file() or not resume_path.is_file():
            raise CLIError(f"--resume {args.resume}: expected {config_path} and {resume_path} from an earlier "
                           f"`strided train --out {args.resume}`")
        config = json.loads(config_path.read_text())
        if args.epochs is not None:
            config["epochs"] = args.epochs
    else:
        args.epochs = 10 if args.epochs is None else args.epochs
        for name, value, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1)):
            if value < low:
                raise CLIError(f"{name} must be >= {low}, received {value}")
        if not 0.0 <= args.val_split < 1.0:
            raise CLIError(f"--val-split must be in [0, 1), received {args.val_split}")
        if not args.lr > 0:
            raise CLIError(f"--lr must be > 0, received {args.lr}")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out or f"runs/{args.model}-{args.data.replace(':', '_').replace('/', '_')}-{stamp}")
        config = {k: getattr(args, k) for k in ("model", "data", "data_root", "epochs", "batch_size", "lr",
                                                 "optimizer", "momentum", "weight_decay", "schedule", "augment",
                                                 "val_split", "patience", "limit", "seed")}
        config.update(_transfer_config(args, run_dir))
    manual_seed(config["seed"])
    train, test = _load_data(config)
    classes = list(train.classes)
    fit_set, val_set = train.split(config["val_split"], seed=config["seed"]) if config["val_split"] else (train, None)
    transfer = _is_transfer(config)
    model = _build_model(config, train.image_shape, len(classes), load_pretrained=resume_path is None)
    head_epochs = config["epochs"]
    if config.get("freeze") == "base":
        from .transfer import freeze_base
        freeze_base(model)
        if config.get("fine_tune"):
            head_epochs = max(1, -(-config["epochs"] // 2))
    transform = augment.standard(config["data"], train.image_shape[-1]) if config["augment"] else None
    loader = DataLoader(fit_set, batch_size=config["batch_size"], shuffle=True, seed=config["seed"],
                        transform=transform)
    val_loader = DataLoader(val_set, batch_size=256) if val_set is not None and len(val_set) else None
    callbacks = [EarlyStopping("val_loss", config["patience"])] if config["patience"] and val_loader else []
    config.update(classes=classes, image_shape=list(train.image_shape))
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "config.json", config)
    monitor = "val_accuracy" if val_loader is not None else "accuracy"

    def make_trainer(phase_config, fine_tuning=False):
        if fine_tuning:
            from .transfer import unfreeze_top
            unfreeze_top(model, config["fine_tune"])
            phase_config = {**phase_config, "lr": config["lr"] / 10, "epochs": config["epochs"] - head_epochs}
        optimizer, schedule, per = _build_optimizer(phase_config, model, len(loader))
        return Trainer(model, optimizer, run_dir=run_dir, schedule=schedule, schedule_per=per,
                       callbacks=list(callbacks), config=config, progress=not args.no_progress, monitor=monitor)

    phase_config = {**config, "epochs": head_epochs}
    trainer = make_trainer(phase_config)
    if resume_path is not None:
        from .checkpoint import load_checkpoint
        done = int(load_checkpoint(resume_path)[1]["epoch"])
        if config.get("cache_features") and done < head_epochs:
            raise CLIError(f"--resume {run_dir}: the head phase of a --cache-features run is not resumable "
                           f"(it takes seconds); start it again")
        if transfer and config.get("fine_tune") and done >= head_epochs:
            trainer = make_trainer(phase_config, fine_tuning=True)
        trainer.resume(resume_path)
        print(f"resuming {run_dir} at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}")
    desc = ""
    if transfer:
        desc = (f", pretrained={config['pretrained'] or False}, freeze={config['freeze']}, "
                f"input {config['input_size']}x{config['input_size']}x3"
                + (f", fine-tune top {config['fine_tune']} blocks after epoch {head_epochs}"
                   if config.get("fine_tune") else ""))
    print(f"training {config['model']} ({model.num_parameters():,} trainable parameters{desc}) on {config['data']}: "
          f"{len(fit_set):,} images, {len(val_set) if val_set is not None else 0:,} for validation, "
          f"{len(test):,} for testing -> {run_dir}")
    try:
        if trainer.epoch < head_epochs:
            if config.get("cache_features"):
                _fit_head_on_features(trainer, config, fit_set, val_set, head_epochs, callbacks, monitor, args)
            else:
                trainer.fit(loader, head_epochs, val_loader)
        if (config.get("fine_tune") and trainer.epoch < config["epochs"] and not trainer.stop
                and trainer.epoch >= head_epochs):
            if trainer.epoch == head_epochs and trainer.batch_in_epoch == 0:   # a fresh fine-tuning phase
                previous = trainer
                trainer = make_trainer(phase_config, fine_tuning=True)
                trainer.epoch, trainer.history, trainer.best_score = (previous.epoch, previous.history,
                                                                      previous.best_score)
                print(f"fine-tuning the top {config['fine_tune']} blocks at lr {config['lr'] / 10:g} "
                      f"({model.num_parameters():,} trainable parameters)")
            trainer.fit(loader, config["epochs"], val_loader)
        history = trainer.history
    except TrainingDiverged as exc:
        print(f"strided train: error: {exc}")
        return 1
    if trainer.stop and trainer.stop_reason.startswith("interrupted"):
        print(f"{trainer.stop_reason}\ncontinue with: strided train --resume {run_dir}")
        return 130
    if trainer.stop_reason:
        print(trainer.stop_reason)
    result, pictures = _final_report(run_dir, model, config, test, classes, history)
    print(f"test accuracy {result['accuracy']:.2%} (loss {result['loss']:.4f}) on {result['count']:,} images")
    for path in pictures:
        print(f"wrote {path}")
    return 0


def _transfer_config(args, run_dir: Path) -> dict:
    """The transfer-learning part of config.json (validated): pretrained, freeze, fine_tune, cache_features,
    input_size (None unless --pretrained or --input-size)."""
    from .models.pretrained import has_pretrained, pretrained_models
    pretrained = getattr(args, "pretrained", None)
    freeze, fine_tune = getattr(args, "freeze", "none"), getattr(args, "fine_tune", 0)
    cache, size = getattr(args, "cache_features", None), getattr(args, "input_size", None)
    if pretrained is not None:
        if not has_pretrained(args.model):
            raise CLIError(f"--pretrained: no pretrained weights are known for model {args.model!r}; models with "
                           f"pretrained weights: {', '.join(pretrained_models())}")
        if isinstance(pretrained, str):
            if not Path(pretrained).is_file():
                raise CLIError(f"--pretrained: weight file {pretrained!r} does not exist")
            pretrained = str(Path(pretrained).resolve())
    transfer = pretrained is not None or size is not None
    if transfer:
        size = 128 if size is None else size
        if not 32 <= size <= 1024:
            raise CLIError(f"--input-size must be in 32..1024, received {size}")
    if fine_tune < 0:
        raise CLIError(f"--fine-tune must be >= 0, received {fine_tune}")
    if (fine_tune or cache) and freeze != "base":
        raise CLIError("--fine-tune and --cache-features need --freeze base")
    if freeze == "base" and not transfer:
        raise CLIError("--freeze base needs --pretrained (a frozen random base learns nothing)")
    if cache and args.augment:
        raise CLIError("--cache-features computes the features once, without augmentation: drop --augment")
    if cache is True:
        cache = str(run_dir.parent / ".feature-cache")
    return {"pretrained": pretrained if pretrained is not None else False, "freeze": freeze,
            "fine_tune": fine_tune, "cache_features": cache or False, "input_size": size}


def _fit_head_on_features(trainer, config, fit_set, val_set, head_epochs, callbacks, monitor, args):
    """The head phase of a --cache-features run: the base's pooled features are computed once (or loaded from
    the cache) and the head trains on them; the run directory gets full-model checkpoints as usual."""
    from . import nn
    from .data import ArrayDataset, DataLoader
    from .train import Trainer
    from .transfer import extract_features, split_base_head, weights_digest

    split = split_base_head(trainer.model)
    weights_id = weights_digest(split.base)

    def features(dataset, tag):
        feats, labels = extract_features(split.base, dataset, batch_size=32, cache_path=config["cache_features"],
                                         input_size=config["input_size"], weights_id=weights_id,
                                         progress=not args.no_progress)
        return ArrayDataset(feats[:, None, None, :], labels, dataset.classes, f"{dataset.name}:{tag}-features")

    fit_features = features(fit_set, "fit")
    val_loader = (DataLoader(features(val_set, "val"), batch_size=256)
                  if val_set is not None and len(val_set) else None)
    head_model = nn.Sequential(nn.Flatten(), split.head)
    head_config = {**config, "epochs": head_epochs}
    loader = DataLoader(fit_features, batch_size=config["batch_size"], shuffle=True, seed=config["seed"])
    optimizer, schedule, per = _build_optimizer(head_config, head_model, len(loader))
    best = {}

    def keep_best(head_trainer, logs):
        if head_trainer.best_score == logs.get(monitor, logs.get("accuracy")):
            best["state"] = {k: v.copy() for k, v in split.head.state_dict().items()}

    head_trainer = Trainer(head_model, optimizer, schedule=schedule, schedule_per=per,
                           callbacks=[*callbacks, keep_best], progress=not args.no_progress, monitor=monitor)
    head_trainer.fit(loader, head_epochs, val_loader)
    trainer.epoch, trainer.history, trainer.best_score = head_trainer.epoch, head_trainer.history, \
        head_trainer.best_score
    trainer.stop, trainer.stop_reason = head_trainer.stop, head_trainer.stop_reason
    trainer.save("last")
    if best:
        last = {k: v.copy() for k, v in split.head.state_dict().items()}
        split.head.load_state_dict(best["state"])
        trainer.save("best")
        split.head.load_state_dict(last)
    trainer._write_metrics()


def _load_run(run_dir: str, which: str):
    from .checkpoint import CheckpointError, load_weights
    run = Path(run_dir)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise CLIError(f"{run_dir} is not a run directory (no config.json); train one with `strided train --out DIR`")
    config = json.loads(config_path.read_text())
    model = _build_model(config, tuple(config["image_shape"]), len(config["classes"]))
    try:
        load_weights(model, run / "checkpoints" / f"{which}.safetensors")
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    return run, config, model


def cmd_evaluate(args) -> int:
    from .data import DataLoader
    from .train import evaluate

    run, config, model = _load_run(args.run_dir, args.checkpoint)
    _, test = _load_data({**config, "limit": 0})
    result = evaluate(model, DataLoader(test, batch_size=256), num_classes=len(config["classes"]))
    print(f"{config['model']} on {config['data']} ({args.checkpoint} checkpoint): test accuracy "
          f"{result['accuracy']:.2%}, loss {result['loss']:.4f}, {result['count']:,} images")
    cm = result["confusion"]
    for i, name in enumerate(config["classes"]):
        total = cm[i].sum()
        print(f"  {name:>14}: {cm[i, i] / max(total, 1):7.2%} of {total}")
    return 0


def _read_for_model(path: str, shape: tuple) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            image = image.convert("L" if shape[-1] == 1 else "RGB").resize((shape[1], shape[0]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise CLIError(f"image {path!r} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise CLIError(f"cannot read image {path!r}: {exc}") from None
    return array.reshape(shape)


def _predict_pretrained(args) -> int:
    """``strided predict --model NAME --pretrained [PATH] IMAGE...``: ImageNet top-k per image."""
    from . import models
    from .checkpoint import CheckpointError
    from .cli import _read_image
    from .models.imagenet import IMAGENET_CLASSES
    from .models.pretrained import classify, pretrained_models, pretrained_weights_path

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
    arrays = [_read_image(p) for p in images]        # all read before any output
    print(f"{name}, pretrained on ImageNet ({source})")
    for path, image in zip(images, arrays):
        print(f"{path}: " + ", ".join(f"{label} {p:.1%}" for _, label, p in classify(model, image, top)))
    return 0


def cmd_predict(args) -> int:
    from .train import predict

    if args.pretrained is not None:
        return _predict_pretrained(args)
    if args.model is not None:
        raise CLIError(f"--model {args.model} needs --pretrained (weights of a trained run come with RUN_DIR: "
                       f"`strided predict RUN_DIR IMAGE...`)")
    if len(args.paths) < 2:
        raise CLIError("predict needs RUN_DIR and at least one IMAGE (or --pretrained and images)")
    run_dir, image_paths = args.paths[0], args.paths[1:]
    top = 3 if args.top is None else args.top
    if top < 1:
        raise CLIError(f"--top must be >= 1, received {top}")
    _, config, model = _load_run(run_dir, args.checkpoint)
    shape = tuple(config["image_shape"])
    images = np.stack([_read_for_model(p, shape) for p in image_paths])
    probs = predict(model, images)
    classes = config["classes"]
    for path, p in zip(image_paths, probs):
        order = np.argsort(-p)[:min(top, len(classes))]
        print(f"{path}: " + ", ".join(f"{classes[i]} {p[i]:.1%}" for i in order))
    return 0
