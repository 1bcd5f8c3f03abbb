"""Train strided's yolo_tiny from scratch on the generated scenes with the project's Trainer.

    python benchmarks/yolo_scenes.py --data digit-scenes --epochs 12 --train 6000 --out runs/yolo_digits
    python benchmarks/yolo_scenes.py --data fashion-scenes --epochs 12 --input-size 96 --out runs/yolo_fashion

Data: ``strided.data.scenes.make_scenes`` exactly as ``digit_scenes`` / ``fashion_scenes``
define it (1..4 glyphs per image, scale 0.18-0.4 of the side), only the image count and
side may change: training images from the training glyphs and photos (seed 0), the test
set from the held-out glyphs and photos (seed 1, 1000 images by default), and a validation
set from the held-out split with another seed (seed 2) that picks the best epoch.

Training: ``strided.train.Trainer`` with ``YoloLoss`` (YOLOv2 loss), ``DetectionMAP`` as
the validation metric (monitor ``val_mAP50``, max), Adam with a per-batch one-cycle
schedule (warm-up then cosine), box-aware augmentation (``BoxAugment.batch``: scale /
translate, colour; horizontal flips only for fashion, never for digits) and anchors from
k-means (1 - IoU) on the training boxes.

Evaluation: the best checkpoint on the test set, score threshold 0.001, per-class NMS at
IoU 0.45, at most 100 detections per image, scored with
``strided.detect.metrics.evaluate`` (COCO's definition, equal to pycocotools): mAP@0.5,
mAP@[.5:.95], per-class AP.  Writes ``results.json`` and ``detections.png`` (test images
with detections scoring > 0.3; Pillow) in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import strided  # noqa: F401  (before NumPy: sets the BLAS thread variables)
import numpy as np

from strided import optim
from strided.checkpoint import load_weights
from strided.data.box_augment import BoxAugment
from strided.data.loader import DataLoader
from strided.data.scenes import EXTRA_TRAIN_PHOTOS, FreshScenes, make_scenes
from strided.detect.anchors import kmeans_anchors
from strided.detect.metrics import evaluate
from strided.detect.report import ValidationMAP, coco_predictions, plot_detections_grid
from strided.detect.training import YoloLoss, collate_detection, predict_boxes, resize_batch
from strided.models.yolo import DEFAULT_ANCHORS, yolo_tiny
from strided.optim.schedule import CosineLR, OneCycleLR
from strided.train import Monitor, Trainer

SOURCES = {"digit-scenes": "digits", "fashion-scenes": "fashion"}


def load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", choices=sorted(SOURCES), default="digit-scenes")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--scene-size", type=int, default=96, help="side of the generated scenes in pixels")
    p.add_argument("--input-size", type=int, default=None,
                   help="side the network sees (multiple of 16; default the scene side): scenes are resized "
                        "to it (resize_batch) for training, validation and test; boxes are scored in scene pixels")
    p.add_argument("--tta-sizes", type=int, nargs="+", default=None,
                   help="also evaluate with test-time augmentation at these network sides (predict_boxes sizes)")
    p.add_argument("--tta-flip", action="store_true", help="with --tta-sizes: also the mirrored views")
    p.add_argument("--train", type=int, default=6000)
    p.add_argument("--val", type=int, default=300)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--schedule", choices=["onecycle", "cosine", "none"], default="onecycle")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--anchors", default="kmeans",
                   help="kmeans (on the training boxes), default (the zoo's), or a results.json of an earlier "
                        "run (its anchors: use it with --init, so the head's channels keep their shapes)")
    p.add_argument("--num-anchors", type=int, default=5)
    p.add_argument("--augment", choices=["on", "off"], default="on")
    p.add_argument("--lambda-obj", type=float, default=5.0)
    p.add_argument("--lambda-noobj", type=float, default=1.0)
    p.add_argument("--lambda-coord", type=float, default=1.0)
    p.add_argument("--max-objects", type=int, default=4)
    p.add_argument("--photos", choices=["named", "more"], default="named",
                   help="training backgrounds: the named set's 12 photos, or 'more' (EXTRA_TRAIN_PHOTOS: 27, "
                        "needs scikit-learn and `strided data fetch darknet`); the test set never changes")
    p.add_argument("--fresh", action="store_true",
                   help="draw --train new training scenes every epoch (FreshScenes) instead of one fixed set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/yolo_scenes")
    p.add_argument("--picture", default=None, help="also write the detections picture here (e.g. docs/...png)")
    p.add_argument("--eval-only", action="store_true", help="evaluate --out's best checkpoint, no training")
    p.add_argument("--init", default=None, help="start from these weights (e.g. an earlier run's "
                   "checkpoints/best.safetensors, same data and anchors): a second one-cycle phase")
    args = p.parse_args(argv)

    source, size = SOURCES[args.data], args.scene_size
    net_size = size if args.input_size is None else args.input_size
    if net_size % 16:
        p.error(f"--input-size must be a multiple of 16, received {net_size}")
    print(f"load average at start: {load_average()}", flush=True)
    t0 = time.perf_counter()
    train_photos = EXTRA_TRAIN_PHOTOS if args.photos == "more" else None
    if args.fresh:               # new scenes every epoch (the loader's set_epoch renders them)
        train = FreshScenes(args.train, seed=0, source=source, size=size, max_objects=args.max_objects,
                            split="train", photos=train_photos)
    else:
        train = make_scenes(source, args.train, size, args.max_objects, seed=0, split="train", photos=train_photos)
    val = make_scenes(source, args.val, size, args.max_objects, seed=2, split="test")
    test = make_scenes(source, args.test, size, args.max_objects, seed=1, split="test")
    gen_s = time.perf_counter() - t0
    print(f"data: {train!r} / val {val!r} / test {test!r}; generated in {gen_s:.0f} s", flush=True)

    cells = net_size / 16
    if args.anchors == "kmeans":
        wh = np.concatenate([b[:, 2:] - b[:, :2] for b in train.boxes]) * (net_size / size) / 16.0
        anchors, mean_iou = kmeans_anchors(wh, args.num_anchors, seed=0)
        anchors = np.asarray(anchors)[np.argsort(np.prod(anchors, axis=1))]
        print(f"k-means anchors (cells of 16 px): {np.round(anchors, 2).tolist()} mean IoU {mean_iou:.3f}",
              flush=True)
    elif args.anchors == "default":
        anchors = np.asarray(DEFAULT_ANCHORS)
    else:
        with open(args.anchors, encoding="utf-8") as f:
            anchors = np.asarray(json.load(f)["anchors"], dtype=np.float64)
        print(f"anchors from {args.anchors}: {anchors.tolist()}", flush=True)
    model = yolo_tiny(num_classes=train.num_classes, anchors=anchors, input_size=net_size)
    print(f"grid {cells:g}x{cells:g}; {sum(p.data.size for p in model.parameters()):,} parameters", flush=True)
    if args.init:
        load_weights(model, args.init)
        print(f"initial weights: {args.init}", flush=True)

    transform = None
    if args.augment == "on":
        aug = BoxAugment(flip=0.0 if source == "digits" else 0.5, scale=(0.75, 1.25), translate=0.15,
                         brightness=0.25, contrast=0.25, saturation=0.3)
        transform = lambda batch, rng: resized(aug.batch(batch[0], batch[1], rng))  # noqa: E731
        print(f"augmentation: {aug!r}", flush=True)
    elif net_size != size:
        transform = lambda batch, rng: resized(batch)  # noqa: E731
    def resized(batch):          # the network's side; boxes are normalised, so they stay
        return (resize_batch(batch[0], net_size),) + tuple(batch[1:])

    train_loader = DataLoader(train, args.batch_size, shuffle=True, seed=args.seed, collate_fn=collate_detection,
                              transform=transform, drop_last=True)
    val_loader = DataLoader(val, 100, collate_fn=collate_detection,
                            transform=(lambda batch, rng: resized(batch)) if net_size != size else None)
    opt = optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * len(train_loader)
    schedule, per = None, "epoch"
    if args.schedule == "onecycle":
        schedule, per = OneCycleLR(opt, steps, max_lr=args.lr, pct_start=0.15, div_factor=20,
                                   final_div_factor=50), "batch"
    elif args.schedule == "cosine":
        schedule, per = CosineLR(opt, steps, min_lr=args.lr * 0.01), "batch"
    loss_fn = YoloLoss(model.anchors, model.num_classes, lambda_coord=args.lambda_coord,
                       lambda_obj=args.lambda_obj, lambda_noobj=args.lambda_noobj)
    trainer = Trainer(model, opt, loss_fn=loss_fn, run_dir=args.out, schedule=schedule, schedule_per=per,
                      metrics={"mAP50": ValidationMAP(model.anchors, model.num_classes)},
                      monitor=Monitor("val_mAP50", "max"), progress=False, verbose=True,
                      config={k: v for k, v in vars(args).items()})
    train_s = 0.0
    if not args.eval_only:
        print(f"training {args.epochs} epochs x {len(train_loader)} batches of {args.batch_size}; "
              f"{loss_fn!r}; Adam lr {args.lr:g} {args.schedule}, wd {args.weight_decay:g}", flush=True)
        t1 = time.perf_counter()
        trainer.fit(train_loader, args.epochs, val_loader=val_loader)
        train_s = time.perf_counter() - t1
        for h in trainer.history:
            print(f"epoch {h.get('epoch', '?')}: loss {h['loss']:.4f} val_loss {h['val_loss']:.4f} "
                  f"val mAP50 {h['val_mAP50']:.4f}", flush=True)
    load_avg = load_average()
    load_weights(model, os.path.join(args.out, "checkpoints", "best.safetensors"))

    t2 = time.perf_counter()
    dets = predict_boxes(model, test.images, conf=0.001, iou=0.45, max_det=100, sizes=net_size)
    predictions = coco_predictions(dets)
    result = evaluate(predictions, test.coco_ground_truth(), image_ids=list(range(len(test))),
                      category_ids=list(range(test.num_classes)))
    # class-agnostic: every class as one, to separate finding the objects from naming them
    agnostic = evaluate([dict(d, category_id=0) for d in predictions],
                        [dict(g, category_id=0) for g in test.coco_ground_truth()],
                        image_ids=list(range(len(test))), category_ids=[0])
    # the same on 1000 training images (no augmentation) to see the generalisation gap
    n_seen = min(1000, len(train))
    dets_tr = predict_boxes(model, train.images[:n_seen], conf=0.001, iou=0.45, max_det=100, sizes=net_size)
    pred_tr = coco_predictions(dets_tr)
    gt_tr = [g for g in train.coco_ground_truth() if g["image_id"] < n_seen]
    result_tr = evaluate(pred_tr, gt_tr, image_ids=list(range(n_seen)), category_ids=list(range(train.num_classes)))
    tta = None
    if args.tta_sizes:
        dets_tta = predict_boxes(model, test.images, conf=0.001, iou=0.45, max_det=100, sizes=args.tta_sizes,
                                 flip=args.tta_flip)
        result_tta = evaluate(coco_predictions(dets_tta), test.coco_ground_truth(), image_ids=list(range(len(test))),
                              category_ids=list(range(test.num_classes)))
        tta = {"sizes": args.tta_sizes, "flip": args.tta_flip, "test_mAP50": round(result_tta["map50"], 4),
               "test_mAP50_95": round(result_tta["map50_95"], 4), "test_mAP75": round(result_tta["map75"], 4),
               "per_class_AP50": {train.classes[k]: round(v["ap50"], 4) for k, v in result_tta["per_class"].items()}}
    eval_s = time.perf_counter() - t2
    per_class = {train.classes[k]: round(v["ap50"], 4) for k, v in result["per_class"].items()}
    summary = {
        "data": args.data, "scene_size": size, "input_size": net_size, "grid": int(cells), "train_images": len(train),
        "test_images": len(test), "epochs": len(trainer.history),
        "best_epoch": int(np.argmax([h["val_mAP50"] for h in trainer.history])) + 1 if trainer.history else None,
        "val_mAP50": [round(h["val_mAP50"], 4) for h in trainer.history],
        "test_mAP50": round(result["map50"], 4), "test_mAP50_95": round(result["map50_95"], 4),
        "test_mAP75": round(result["map75"], 4),
        "test_class_agnostic_AP50": round(agnostic["map50"], 4),
        "test_class_agnostic_AP50_95": round(agnostic["map50_95"], 4), "train_mAP50": round(result_tr["map50"], 4),
        "train_mAP50_95": round(result_tr["map50_95"], 4), "per_class_AP50": per_class,
        "train_seconds": round(train_s, 1), "images_per_second": round(args.epochs * len(train_loader) *
                                                                      args.batch_size / train_s, 2) if train_s else None,
        "generate_seconds": round(gen_s, 1), "eval_seconds": round(eval_s, 1),
        "tta": tta, "anchors": np.round(model.anchors, 3).tolist(), "load_average_end": load_avg, "args": vars(args),
    }
    print(f"test ({len(test)} held-out images): mAP50 {result['map50']:.4f}  mAP50-95 {result['map50_95']:.4f}  "
          f"mAP75 {result['map75']:.4f}  (train images: mAP50 {result_tr['map50']:.4f}); class-agnostic AP50 "
          f"{agnostic['map50']:.4f}, AP50-95 {agnostic['map50_95']:.4f}", flush=True)
    print("per-class AP50: " + ", ".join(f"{k} {v:.3f}" for k, v in per_class.items()), flush=True)
    if tta:
        print(f"test with test-time augmentation (sizes {tta['sizes']}{', flips' if tta['flip'] else ''}): "
              f"mAP50 {tta['test_mAP50']:.4f}  mAP50-95 {tta['test_mAP50_95']:.4f}  mAP75 {tta['test_mAP75']:.4f}; "
              "per class " + ", ".join(f"{k} {v:.3f}" for k, v in tta["per_class_AP50"].items()), flush=True)
    print(f"training {train_s / 60:.1f} min, {summary['images_per_second']} images/s; load average {load_avg}",
          flush=True)
    from strided.fileio import atomic_write_json
    atomic_write_json(os.path.join(args.out, "results.json"), summary)
    truths = list(zip(test.boxes[:8], test.labels[:8]))
    for path in [os.path.join(args.out, "detections.png")] + ([args.picture] if args.picture else []):
        plot_detections_grid(test.images[:8], dets[:8], train.classes, path, ground_truth=truths, min_score=0.3)
    print(json.dumps({k: summary[k] for k in ("test_mAP50", "test_mAP50_95", "train_seconds")}), flush=True)
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
