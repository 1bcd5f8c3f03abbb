"""Choose test-time augmentation views for a trained yolo_scenes.py run on the VALIDATION scenes, then
report the test mAP of every candidate (the choice is made before the test numbers are looked at).

    python benchmarks/yolo_tta.py runs/yolo_digits --sizes 128 112,128,144 128,144,160 --flip no
    python benchmarks/yolo_tta.py runs/yolo_fashion --sizes 128 112,128,144 --flip both

Reads the run's ``results.json`` (data set, scene side, network side, anchors) and its best checkpoint.
``--ensemble RUN2 ...``: more runs on the same data, each model seeing the same views; all their boxes
are pooled before the NMS (``predict_boxes([model, model2, ...], ...)``); writes ``tta_ensemble.json``.
Each candidate is a set of network sides (comma-separated) with or without mirrored views
(``--flip no | yes | both``), merged by ``--merge nms | wbf | both``: :func:`strided.detect.training.predict_boxes`
pools the views' boxes before the per-class NMS (nms), or fuses each view's own detections by weighted boxes
fusion (wbf, ``--fuse-iou``).  Validation: the 300 held-out-split scenes of seed 2 that picked the best
epoch; test: the 1000 of seed 1 (as yolo_scenes.py).  Writes ``tta.json`` in the run directory.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import strided  # noqa: F401  (before NumPy: sets the BLAS thread variables)
import numpy as np

from strided.checkpoint import load_weights
from strided.data.scenes import make_scenes
from strided.detect.metrics import evaluate
from strided.detect.report import coco_predictions
from strided.detect.training import predict_boxes
from strided.fileio import atomic_write_json
from strided.models.yolo import yolo_tiny
from yolo_scenes import SOURCES          # the data sets' names -> make_scenes sources (same folder)


def parse_sizes(text: str) -> list:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are comma-separated multiples of 16, received {text!r}") from None
    if not sizes or any(s < 32 or s % 16 for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes are comma-separated multiples of 16 (>= 32), received {text!r}")
    return sizes


def score(model, scenes, sizes, flip, merge="nms", fuse_iou=0.55) -> dict:
    dets = predict_boxes(model, scenes.images, conf=0.001, iou=0.45, max_det=100, sizes=sizes, flip=flip,
                         merge=merge, fuse_iou=fuse_iou)
    r = evaluate(coco_predictions(dets), scenes.coco_ground_truth(), image_ids=list(range(len(scenes))),
                 category_ids=list(range(scenes.num_classes)))
    return {"mAP50": round(r["map50"], 4), "mAP50_95": round(r["map50_95"], 4), "mAP75": round(r["map75"], 4),
            "per_class_AP50": {scenes.classes[k]: round(v["ap50"], 4) for k, v in r["per_class"].items()}}


def load_run(parser, directory):
    """``(results, model)`` of a yolo_scenes.py run directory (its best checkpoint)."""
    path = os.path.join(directory, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {path}: {exc}")
    model = yolo_tiny(num_classes=10, anchors=np.asarray(run["anchors"]), input_size=int(run["input_size"]))
    load_weights(model, os.path.join(directory, "checkpoints", "best.safetensors"))
    return run, model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a yolo_scenes.py --out directory (results.json, checkpoints/best.safetensors)")
    p.add_argument("--sizes", type=parse_sizes, nargs="+", required=True,
                   help="candidates: each a comma-separated list of network sides, e.g. 128 112,128,144")
    p.add_argument("--flip", choices=["no", "yes", "both"], default="no", help="mirrored views (both: try each)")
    p.add_argument("--merge", choices=["nms", "wbf", "both"], default="nms",
                   help="how the views (and models) become one answer: pooled before NMS, weighted boxes fusion, "
                        "or try each")
    p.add_argument("--fuse-iou", type=float, default=0.55, help="with --merge wbf: IoU above which boxes fuse")
    p.add_argument("--ensemble", nargs="+", default=[], metavar="RUN",
                   help="more runs whose models are pooled with the first one's (same data)")
    p.add_argument("--val", type=int, default=300)
    p.add_argument("--test", type=int, default=1000)
    args = p.parse_args(argv)

    runs, models = [], []
    for directory in [args.run] + args.ensemble:
        run, model = load_run(p, directory)
        runs.append(run)
        models.append(model)
    data = {(r["data"], int(r.get("scene_size", r["input_size"]))) for r in runs}
    if len(data) > 1:
        p.error(f"the runs of an ensemble must share data set and scene side, received {sorted(data)}")
    run, model = runs[0], models                 # predict_boxes([m]) is m's answer
    source, scene = SOURCES[run["data"]], int(run.get("scene_size", run["input_size"]))
    val = make_scenes(source, args.val, scene, 4, seed=2, split="test")
    test = make_scenes(source, args.test, scene, 4, seed=1, split="test")
    flips = {"no": [False], "yes": [True], "both": [False, True]}[args.flip]
    merges = {"nms": ["nms"], "wbf": ["wbf"], "both": ["nms", "wbf"]}[args.merge]
    rows = []
    for sizes in args.sizes:
        for flip in flips:
            for merge in merges:
                t0 = time.perf_counter()
                v = score(model, val, sizes, flip, merge, args.fuse_iou)
                rows.append({"sizes": sizes, "flip": flip, "merge": merge, "val": v, "seconds_per_image": None})
                rows[-1]["seconds_per_image"] = round((time.perf_counter() - t0) / len(val), 5)
                print(f"sizes {sizes} flip {flip} merge {merge}: validation mAP50 {v['mAP50']:.4f} "
                      f"mAP50-95 {v['mAP50_95']:.4f}", flush=True)
    best = max(rows, key=lambda r: r["val"]["mAP50"])
    print(f"chosen on validation: sizes {best['sizes']} flip {best['flip']} merge {best['merge']}", flush=True)
    for r in rows:
        r["test"] = score(model, test, r["sizes"], r["flip"], r["merge"], args.fuse_iou)
        mark = "  <- chosen" if r is best else ""
        print(f"sizes {r['sizes']} flip {r['flip']} merge {r['merge']}: test mAP50 {r['test']['mAP50']:.4f} "
              f"mAP50-95 {r['test']['mAP50_95']:.4f} mAP75 {r['test']['mAP75']:.4f}{mark}", flush=True)
    per_class = best["test"]["per_class_AP50"]
    print("chosen, per-class test AP50: " + ", ".join(f"{k} {v:.3f}" for k, v in per_class.items()))
    out = {"candidates": rows, "chosen": {"sizes": best["sizes"], "flip": best["flip"], "merge": best["merge"]},
           "fuse_iou": args.fuse_iou}
    if args.ensemble:
        out["ensemble"] = [args.run] + args.ensemble
    atomic_write_json(os.path.join(args.run, "tta_ensemble.json" if args.ensemble else "tta.json"), out)
    return True


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
