"""``strided train --task detect`` and ``strided evaluate`` of a detection run.

A YOLO detector (``yolo_tiny``) on a generated scenes set (``digit-scenes``, ``fashion-scenes``):
:func:`~strided.cli.train.config.detection_config`, :func:`load_detection_data`, :func:`choose_anchors`,
:func:`make_detection_session`, the same Trainer loop with :class:`~strided.detect.training.YoloLoss`
and the validation mAP50 (:class:`~strided.detect.report.ValidationMAP`, the best checkpoint's
monitor), then :func:`detection_report` (COCO mAP on the test split, ``pr_curve.png``,
``confusion.png`` with background, ``predictions.png``)."""
from __future__ import annotations

import numpy as np

from ..common import build_model, detection_net_size, is_detection, load_data, load_run
from ..errors import EXIT_INTERRUPTED, EXIT_OK, CLIError
from .config import DETECTION_DATA
from .session import Session, TrainingData, describe, make_trainer, run_phases, was_interrupted, writing_run

__all__ = ["NUM_ANCHORS", "scene_subset", "load_detection_data", "choose_anchors", "make_detection_session",
           "detection_report", "print_detection_result", "train_detection", "evaluate_detection",
           "evaluate_detectors"]


NUM_ANCHORS = 5


def scene_subset(scenes, indices):
    """The scenes ``indices`` of a :class:`~strided.data.scenes.SceneSet` as a new SceneSet."""
    import dataclasses

    indices = [int(i) for i in indices]
    return dataclasses.replace(scenes, images=scenes.images[indices], boxes=[scenes.boxes[i] for i in indices],
                               labels=[scenes.labels[i] for i in indices],
                               landmarks=[scenes.landmarks[i] for i in indices], backgrounds=None, masks=None)


def load_detection_data(config) -> TrainingData:
    """The generated scenes (``limit`` training and ``test_limit`` test scenes of ``image_size``
    pixels), with ``val_split`` of the training scenes held out (a seeded random choice).  With
    ``fresh_scenes`` the training scenes are a :class:`~strided.data.scenes.FreshScenes` of
    ``limit - n_val`` new scenes every epoch and the validation scenes its ``held_out(n_val)``."""
    from ...data.scenes import FreshScenes

    train, test = load_data(config)
    if not isinstance(train, FreshScenes) and not isinstance(getattr(train, "boxes", None), list):
        raise CLIError(f"{config['data']} is not a scenes data set with boxes; --task detect takes "
                       f"{', '.join(DETECTION_DATA)}")
    n_val = int(round(config["val_split"] * len(train)))
    if isinstance(train, FreshScenes):
        fit = FreshScenes(len(train) - n_val, train.seed, **train.options)
        val = train.held_out(n_val) if n_val else None
    elif n_val:
        order = np.random.default_rng(config["seed"]).permutation(len(train))
        fit, val = scene_subset(train, np.sort(order[n_val:])), scene_subset(train, np.sort(order[:n_val]))
    else:
        fit, val = train, None
    if len(fit) == 0:
        raise CLIError(f"no training scenes left (--limit {config['limit']}, --val-split {config['val_split']})")
    return TrainingData(train, test, fit, val, list(fit.classes))


def choose_anchors(config, scenes, stride: int) -> tuple:
    """``(anchors, note)``: k-means (1 - IoU, k=5, seeded) on the training boxes in grid cells of
    ``stride`` pixels of the network's input (boxes scaled by ``net_size / image_size``), or the
    model's defaults (``--anchors default``, or too few distinct boxes); the note says which, with the
    mean best IoU of the training boxes with the anchors."""
    from ...detect.anchors import AnchorError, kmeans_anchors, shape_iou
    from ...models.yolo import DEFAULT_ANCHORS

    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b in scenes.boxes])
    wh = (boxes[:, 2:] - boxes[:, :2]) * (detection_net_size(config) / int(config["image_size"])) / stride
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
    from ...data import DataLoader
    from ...data.box_augment import BoxAugment
    from ...detect.report import ValidationMAP
    from ...detect.training import YoloLoss, collate_detection, resize_batch
    from ...train import EarlyStopping, Monitor

    net_size = detection_net_size(config)
    augment = BoxAugment()

    def resize(batch, rng=None):
        """the scenes at the network's side (the boxes are normalised: they stay)"""
        return (resize_batch(batch[0], net_size),) + tuple(batch[1:])

    def augment_and_resize(batch, rng):
        """augmentation (boxes move with the image), then the network's side"""
        return resize(augment.batch(batch[0], batch[1], rng))

    resizing = net_size != int(config["image_size"])
    loader = DataLoader(data.fit, batch_size=config["batch_size"], shuffle=True, seed=config["seed"],
                        transform=augment_and_resize if config["augment"] else resize if resizing else None,
                        collate_fn=collate_detection)
    val_loader = (DataLoader(data.val, batch_size=64, collate_fn=collate_detection,
                             transform=resize if resizing else None)
                  if data.val is not None and len(data.val) else None)
    anchors, num_classes = np.asarray(config["anchors"]), len(data.classes)
    metrics = {"mAP50": ValidationMAP(anchors, num_classes)} if val_loader is not None else {}
    monitor = Monitor("val_mAP50", "max") if val_loader is not None else Monitor("loss", "min")
    callbacks = [EarlyStopping("val_loss", config["patience"])] if config["patience"] and val_loader else []
    return Session(run, config, data, model, loader, val_loader, callbacks, monitor, config["epochs"], progress,
                   loss_fn=YoloLoss(anchors, num_classes), metrics=metrics)


def detection_report(run, model, test, config, history=None, checkpoint: str = "best", sizes=None,
                     flip: bool = False, merge: str = "nms") -> tuple[dict, list]:
    """COCO mAP of ``model`` on the test scenes; metrics.json and the pictures (pr_curve.png,
    confusion.png with background, predictions.png; curves.png when ``history`` is given).

    ``sizes`` (default: the run's network side), ``flip`` and ``merge``: the views of
    :func:`~strided.detect.training.predict_boxes` (several, or mirrored: test-time augmentation,
    recorded in metrics.json under its own key) and how they become one answer (pooled before NMS,
    or weighted boxes fusion)."""
    from ...checkpoint import json_safe
    from ...detect.plots import plot_detection_confusion, plot_pr_curves
    from ...detect.report import EVAL_CONF, evaluate_detector, plot_detection_curves, plot_detections_grid

    classes = list(config["classes"])
    views = [detection_net_size(config)] if sizes is None else [int(s) for s in sizes]
    result = evaluate_detector(model, test, sizes=views, flip=flip, merge=merge)
    per_class = {name: {"ap50": ap["ap50"], "ap50_95": ap["ap50_95"], "boxes": ap["num_gt"]}
                 for name, ap in zip(classes, result["per_class"].values())}
    numbers = {"mAP50": result["map50"], "mAP50-95": result["map50_95"], "mAP75": result["map75"],
               "images": len(test), "boxes": len(result["ground_truth"]), "per_class": per_class,
               "confusion": result["confusion"].tolist(), "checkpoint": checkpoint,
               "definition": f"COCO (pycocotools): 101-point AP, IoU 0.50 and 0.50:0.05:0.95, score > {EVAL_CONF}, "
                             f"NMS IoU 0.45, at most 100 boxes per image; confusion: score >= 0.25, IoU >= 0.5",
               "sizes": views, "flip": bool(flip), "merge": merge}
    metrics = run.read_metrics()
    if history is not None:
        metrics.update(history=history, classes=classes, test_mAP50=result["map50"],
                       test_mAP50_95=result["map50_95"], test_count=len(test), checkpoint=checkpoint)
    tta = views != [detection_net_size(config)] or flip
    key = checkpoint + (f" sizes {','.join(map(str, views))}{' flip' if flip else ''}" if tta else "")
    key += " wbf" if tta and merge == "wbf" else ""
    metrics.setdefault("evaluate", {})[key] = numbers
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
    from ... import manual_seed
    from ...checkpoint import load_weights
    from ...models.yolo import YoloTiny

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
    with writing_run(run):
        trainer = run_phases(s, trainer)
        if was_interrupted(trainer, run):
            return EXIT_INTERRUPTED
        if run.checkpoint("best").exists():
            load_weights(model, run.checkpoint("best"))
        result, pictures = detection_report(run, model, data.test, config, trainer.history)
    print_detection_result(result, config["classes"], f"test ({len(data.test):,} scenes, best checkpoint)")
    for path in pictures:
        print(f"wrote {path}")
    return EXIT_OK


def evaluate_detection(args, config) -> int:
    """``strided evaluate RUN_DIR`` of a detection run; with ``--ensemble`` several (:func:`evaluate_detectors`)."""
    if args.tta not in ("none", "flip"):
        raise CLIError(f"--tta {args.tta} is for classification runs; a detection run takes --tta flip and "
                       f"--sizes N [N ...]")
    sizes = getattr(args, "sizes", None)
    for s in sizes or ():
        if s < 32 or s % 16:
            raise CLIError(f"--sizes must be multiples of 16 and >= 32 for {config['model']}, received {s}")
    if args.weights is not None:
        raise CLIError("--weights is for classification ensembles; a detection ensemble pools every member's boxes")
    if len(args.run_dir) > 1 or args.ensemble:
        return evaluate_detectors(args, config, sizes)
    run, _, model = load_run(args.run_dir[0], args.checkpoint)
    _, test = load_data({**config, "limit": 1})         # the test scenes do not depend on the training count
    flip = args.tta == "flip"
    merge = args.merge or "nms"
    result, pictures = detection_report(run, model, test, config, checkpoint=args.checkpoint, sizes=sizes, flip=flip,
                                        merge=merge)
    views = sizes or [detection_net_size(config)]
    several = len(views) > 1 or flip
    tta = (f", sizes {' '.join(map(str, views))}{', flipped too' if flip else ''}"
           f"{', weighted boxes fusion' if several and merge == 'wbf' else ''}")
    print_detection_result(result, config["classes"], f"{config['model']} on {config['data']} "
                                                      f"({args.checkpoint} checkpoint{tta}, {len(test):,} test scenes)")
    for path in pictures:
        print(f"wrote {path}")
    return EXIT_OK


def evaluate_detectors(args, config, sizes) -> int:
    """``strided evaluate RUN_A RUN_B ... --ensemble`` of detection runs: every model sees the same views
    (``--sizes``, default every member's network side; ``--tta flip``) and their boxes become one answer
    (``--merge``: pooled before NMS, or fused); printed, nothing written (the runs stay as they are)."""
    from ...detect.report import evaluate_detector

    if not args.ensemble:
        raise CLIError(f"evaluate received {len(args.run_dir)} run directories ({', '.join(map(str, args.run_dir))}); "
                       f"to pool their detections add --ensemble")
    models, configs = [], []
    for run_dir in args.run_dir:
        _, member, model = load_run(run_dir, args.checkpoint)
        if not is_detection(member):
            raise CLIError(f"--ensemble: {run_dir} is not a detection run, {args.run_dir[0]} is")
        for key in ("data", "classes", "image_size"):
            if member[key] != config[key]:
                raise CLIError(f"--ensemble: {run_dir} and {args.run_dir[0]} differ in their {key}: {member[key]} vs "
                               f"{config[key]}; detection members must share data set, classes and scene side")
        configs.append(member)
        models.append(model)
    views = sizes or sorted({detection_net_size(c) for c in configs})
    _, test = load_data({**config, "limit": 1})
    flip, merge = args.tta == "flip", args.merge or "nms"
    result = evaluate_detector(models, test, sizes=views, flip=flip, merge=merge)
    how = "fused (weighted boxes fusion)" if merge == "wbf" else "pooled before NMS"
    print_detection_result(result, config["classes"],
                           f"ensemble of {len(models)} on {config['data']} ({args.checkpoint} checkpoints, sizes "
                           f"{' '.join(map(str, views))}{', flipped too' if flip else ''}, boxes {how}, "
                           f"{len(test):,} test scenes)")
    return EXIT_OK
