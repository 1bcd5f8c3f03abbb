"""``strided detect`` end to end: a darknet cfg with random weights written here, face-api's Tiny
Face Detector on the astronaut (against face-api's own reference boxes), files and JSON out, and
every kind of bad input named with its file."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from strided.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from darknet_helpers import DATA_DIR, random_weights_file, resized_cfg, shipped_cfg  # noqa: E402

FACEAPI_REFERENCE = Path(__file__).resolve().parents[1] / "detect" / "data" / "faceapi_reference.json"


def strict_json(text):
    """json.loads that refuses NaN / Infinity (strict JSON)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def darknet(tmp_path_factory):
    """yolov2-tiny-voc at 96x96 with random weights (objectness boosted so some boxes score high)."""
    shipped_cfg("yolov2-tiny-voc")
    folder = tmp_path_factory.mktemp("darknet")
    cfg = resized_cfg("yolov2-tiny-voc", 96, folder)
    return cfg, random_weights_file(cfg, folder / "random.weights", seed=3, boost=2.0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two generated pictures of different sizes (a scene pasted into a wide canvas), as PNG and JPEG."""
    from PIL import Image
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("photos")
    a = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    a[10:40, 20:50] = [250, 250, 250]
    b = np.zeros((80, 50, 3), np.uint8)
    b[20:60, 10:40] = [200, 30, 30]
    Image.fromarray(a).save(folder / "wide.png")
    Image.fromarray(b).save(folder / "tall.jpg", quality=95)
    return [folder / "wide.png", folder / "tall.jpg"]


def run_json(capsys, *argv):
    code = main(["detect", *map(str, argv), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return strict_json(captured.out), captured.err


# --------------------------------------------------------------------------- darknet
def test_darknet_detections_match_the_library_in_original_pixels(darknet, photos, capsys):
    from strided.data.image import read_image
    from strided.detect.darknet import darknet_detector, read_names

    cfg, weights = darknet
    result, err = run_json(capsys, *photos, "--darknet", cfg, weights, "--conf", "0.2", "--max-det", "7")
    assert "darknet" in err                                        # information goes to stderr
    assert [r["image"] for r in result] == [str(p) for p in photos]  # one object per image, in order
    detector = darknet_detector(cfg, weights, DATA_DIR / "voc.names")   # 20 classes -> voc.names by default
    names = read_names(DATA_DIR / "voc.names")
    total = 0
    for record, path in zip(result, photos):
        image = read_image(path)
        assert (record["height"], record["width"]) == image.shape[:2]
        expected = detector.detect(image, conf=0.2, iou=0.45, max_det=7)
        assert len(record["detections"]) == len(expected) <= 7
        total += len(expected)
        for got, want in zip(record["detections"], expected):
            np.testing.assert_allclose(got["box"], want["box"], rtol=0, atol=1e-9)
            assert got["score"] == pytest.approx(want["score"], abs=1e-12) and got["score"] > 0.2
            assert got["class"] == want["class"] and got["name"] == names[got["class"]]
            x1, y1, x2, y2 = got["box"]
            assert 0 <= x1 <= x2 <= record["width"] and 0 <= y1 <= y2 <= record["height"]
    assert total > 0                                               # the boosted weights do find boxes


def test_conf_is_strict_and_iou_and_max_det_apply(darknet, photos, capsys):
    cfg, weights = darknet
    everything, _ = run_json(capsys, photos[0], "--darknet", cfg, weights, "--conf", "0.05", "--max-det", "100")
    scores = [d["score"] for d in everything[0]["detections"]]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 3
    cut = scores[2]                                                # a score that occurs: strictly above it stay
    above, _ = run_json(capsys, photos[0], "--darknet", cfg, weights, "--conf", repr(cut))
    assert [d["score"] for d in above[0]["detections"]] == [s for s in scores if s > cut]
    two, _ = run_json(capsys, photos[0], "--darknet", cfg, weights, "--conf", "0.05", "--max-det", "2")
    assert [d["score"] for d in two[0]["detections"]] == scores[:2]
    # --iou 1: nothing is suppressed (IoU > 1 never happens), so at least as many boxes as with 0.45
    loose, _ = run_json(capsys, photos[0], "--darknet", cfg, weights, "--conf", "0.05", "--iou", "1")
    assert len(loose[0]["detections"]) >= len(scores)


def test_out_folder_pictures_json_and_yolo_labels(darknet, photos, tmp_path, capsys):
    from PIL import Image

    cfg, weights = darknet
    out = tmp_path / "out"
    assert main(["detect", *map(str, photos), "--darknet", str(cfg), str(weights), "--conf", "0.2",
                 "-o", str(out), "--save-txt"]) == 0
    text = capsys.readouterr().out
    assert f"{photos[0]}: " in text and "detection" in text
    records = strict_json((out / "detections.json").read_text())
    assert [r["image"] for r in records] == [str(p) for p in photos]
    for record, path in zip(records, photos):
        with Image.open(out / path.name) as annotated, Image.open(path) as original:
            assert annotated.size == original.size and annotated.format == original.format
            changed = np.asarray(annotated.convert("RGB")).astype(int) - np.asarray(original.convert("RGB"))
        if record["detections"]:
            assert np.abs(changed).max() > 100                     # boxes and labels were drawn
        lines = (out / "labels" / f"{path.stem}.txt").read_text().splitlines()
        assert len(lines) == len(record["detections"])
        W, H = record["width"], record["height"]
        for line, det in zip(lines, record["detections"]):
            k, cx, cy, w, h, score = line.split()
            x1, y1, x2, y2 = det["box"]
            assert int(k) == det["class"]
            np.testing.assert_allclose([float(cx), float(cy), float(w), float(h), float(score)],
                                       [(x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H,
                                        det["score"]], atol=1e-6)
    # existing files are not replaced without --overwrite
    before = (out / "detections.json").read_bytes()
    assert main(["detect", str(photos[0]), "--darknet", str(cfg), str(weights), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("strided: error: ") and "already holds" in err and "--overwrite" in err
    assert (out / "detections.json").read_bytes() == before
    assert main(["detect", str(photos[0]), "--darknet", str(cfg), str(weights), "-o", str(out),
                 "--overwrite"]) == 0
    assert len(strict_json((out / "detections.json").read_text())) == 1


def test_json_stdout_is_only_the_array(darknet, photos, capsys):
    cfg, weights = darknet
    assert main(["detect", str(photos[1]), "--darknet", str(cfg), str(weights), "--json", "--conf", "0"]) == 0
    out = capsys.readouterr().out
    data = strict_json(out)                                        # the whole of stdout parses
    assert isinstance(data, list) and len(data) == 1 and set(data[0]) == {"image", "width", "height", "detections"}
    assert out.strip().startswith("[") and out.strip().endswith("]")


def test_names_file_and_class_numbers(darknet, photos, tmp_path, capsys):
    cfg, weights = darknet
    names = tmp_path / "mine.names"
    names.write_text("".join(f"thing{k}\n" for k in range(20)))
    result, _ = run_json(capsys, photos[0], "--darknet", cfg, weights, "--conf", "0.1", "--names", names)
    assert result[0]["detections"] and all(d["name"] == f"thing{d['class']}" for d in result[0]["detections"])
    wrong = tmp_path / "three.names"
    wrong.write_text("a\nb\nc\n")
    assert main(["detect", str(photos[0]), "--darknet", str(cfg), str(weights), "--names", str(wrong)]) == 2
    assert "3 class names for a network of 20 classes" in capsys.readouterr().err


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_each_get_a_named_error(darknet, photos, tmp_path, capsys):
    cfg, weights = darknet
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    short = tmp_path / "short.weights"
    short.write_bytes(Path(weights).read_bytes()[:2000])
    unsupported = tmp_path / "lstm.cfg"
    unsupported.write_text(Path(cfg).read_text().replace("[maxpool]", "[lstm]", 1))
    cases = [
        ([str(tmp_path / "missing.png"), "--darknet", str(cfg), str(weights)], "missing.png' does not exist"),
        ([str(not_image), "--darknet", str(cfg), str(weights)], "notes.png"),
        ([str(photos[0]), "--darknet", str(cfg), str(short)], "short.weights"),
        ([str(photos[0]), "--darknet", str(unsupported), str(weights)], "[lstm]"),
        ([str(photos[0]), "--darknet", str(cfg), str(tmp_path / "none.weights")], "none.weights' does not exist"),
        ([str(photos[0]), "--model", str(tmp_path)], "not a run directory"),
        ([str(photos[0]), "--model", str(tmp_path / "nowhere")], "not a run directory"),
        ([str(photos[0])], "choose one detector"),
        ([str(photos[0]), "--darknet", str(cfg), str(weights), "--conf", "1.5"], "--conf must be in [0, 1)"),
        ([str(photos[0]), "--darknet", str(cfg), str(weights), "--iou", "-0.1"], "--iou must be in [0, 1]"),
        ([str(photos[0]), "--darknet", str(cfg), str(weights), "--size", "100"], "multiple of 32"),
        ([str(photos[0]), "--darknet", str(cfg), str(weights), "--save-txt"], "give -o OUT"),
        ([str(photos[0]), "--model", "tiny-face", "--names", str(cfg)], "--names goes with --darknet"),
    ]
    for argv, expected in cases:
        assert main(["detect", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("strided: error: ") and expected in err, (argv, err)
        assert "Traceback" not in err


def test_a_classification_run_is_not_a_detector(tmp_path, photos, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "data": "fashion-mnist", "classes": ["a", "b"],
                                                 "image_shape": [28, 28, 1]}))
    assert main(["detect", str(photos[0]), "--model", str(run)]) == 2
    err = capsys.readouterr().err
    assert "not a detection run" in err and "strided train --task detect" in err


# --------------------------------------------------------------------------- tiny-face
def faceapi_installed():
    from strided.models.faceapi import find_faceapi_models
    return find_faceapi_models(required=False) is not None


@pytest.mark.skipif(not faceapi_installed(), reason="face-api's weights are not installed "
                                                    "(strided models fetch face-api)")
def test_tiny_face_finds_the_astronaut_as_face_api_does(tmp_path, capsys):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image
    path = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    result, err = run_json(capsys, path, "--model", "tiny-face")
    assert "Tiny Face Detector" in err
    reference = strict_json(FACEAPI_REFERENCE.read_text())["photos"]["astronaut"]["faces"]
    faces = result[0]["detections"]
    assert len(faces) == len(reference) == 1
    x, y, w, h = reference[0]["box"]                               # face-api's box is x, y, width, height
    np.testing.assert_allclose(faces[0]["box"], [x, y, x + w, y + h], atol=0.01)
    assert faces[0]["score"] == pytest.approx(reference[0]["score"], abs=1e-5)
    assert faces[0]["name"] == "face" and faces[0]["class"] == 0
    assert main(["detect", str(path), "--model", "tiny-face", "--size", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err


def test_tiny_face_missing_weights_says_how_to_install(tmp_path, photos, monkeypatch, capsys):
    from strided.models import faceapi
    monkeypatch.setattr(faceapi, "faceapi_search_paths", lambda include_global=True: [tmp_path / "none"])
    assert main(["detect", str(photos[0]), "--model", "tiny-face"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("strided: error: ") and "strided models fetch face-api" in err
