"""``strided train`` (``--task classify``, the default): one class per image.

:func:`train_classifier` is a short sequence of steps: :func:`load_training_data`, the model,
:func:`~strided.cli.train.session.make_trainer` per phase (head, then fine-tuning),
:func:`~strided.cli.train.session.run_phases`, :func:`final_report` (test accuracy of the best
checkpoint, ``curves.png``, ``confusion.png``, ``predictions.png``)."""
from __future__ import annotations

from ..common import build_model, is_transfer, load_data, model_input_size
from ..errors import EXIT_INTERRUPTED, EXIT_OK, CLIError
from .session import (Session, TrainingData, check_model_takes, describe, make_trainer, run_phases,
                      was_interrupted, writing_run)

__all__ = ["load_training_data", "make_session", "final_report", "train_classifier"]


def load_training_data(config) -> TrainingData:
    """Load the data set, split off the validation set and check it can train a classifier.

    A folder of photos of different sizes is brought to one size (shorter side + centre crop):
    ``config["image_size"]`` when set, else the pretrained network's input size (transfer) or the
    model's own input size; the size used is recorded in ``config["image_size"]`` so evaluate and
    predict read the data the same way.
    """
    from ...data.folder import MixedImageSizes

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


def make_session(run, config, data, model, progress: bool) -> Session:
    from ...data import DataLoader, augment
    from ...train import EarlyStopping

    head_epochs = config["epochs"]
    if config.get("freeze") == "base":
        from ...transfer import freeze_base
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


def final_report(s: Session, history) -> tuple[dict, list]:
    """Evaluate the best checkpoint on the test set; write metrics.json and the pictures."""
    from ...checkpoint import load_weights
    from ...data import DataLoader
    from ...data.image import to_float
    from ...report import plot_confusion, plot_curves, plot_predictions
    from ...train import evaluate, predict

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


def train_classifier(args, run, config, resumed) -> int:
    """``strided train`` of a classifier: a new run, or the run :func:`~strided.cli.train.config.resume_run`
    found (``resumed``)."""
    from ... import manual_seed

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
    with writing_run(run):
        trainer = run_phases(s, trainer, head_resume)
        if was_interrupted(trainer, run):
            return EXIT_INTERRUPTED
        result, pictures = final_report(s, trainer.history)
    print(f"test accuracy {result['accuracy']:.2%} (loss {result['loss']:.4f}) on {result['count']:,} images")
    for path in pictures:
        print(f"wrote {path}")
    return EXIT_OK
