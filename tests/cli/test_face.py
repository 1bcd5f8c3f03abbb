"""``strided face ...`` end to end on real photos with face-api's weights.

Photos: scikit-image's astronaut, matplotlib's Grace Hopper, the astronaut mirrored and resized
to 384 x 384 (the same person in "another photo"), face-api's demo group photo sample1.jpg
(when installed next to its model/ folder) and a photo without a face.  Boxes, landmarks and
distances are checked against face-api itself (``tests/detect/data/faceapi_reference.json``,
made in node with TF.js): the CLI must print what the original computes.  Every ``--json``
output is parsed strictly (NaN / Infinity rejected).  Tests needing the weights skip when
they are not installed.
"""
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faceapi_helpers as helpers  # noqa: E402

from strided.cli import main  # noqa: E402

BOX_TOL, LANDMARK_TOL, DISTANCE_TOL = 0.5, 0.5, 1e-3          # the tolerances vs face-api


def strict_loads(text):
    def reject(constant):
        raise ValueError(f"non-strict JSON constant {constant}")
    return json.loads(text, parse_constant=reject)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree_digest(folder):
    """{relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def reference_faces(name):
    faces = helpers.reference()["photos"][name]["faces"]
    return sorted(faces, key=lambda f: -f["score"])


# ------------------------------------------------------------------------------------ no weights needed
def test_face_help_lists_every_subcommand(capsys):
    code, out, _ = run(capsys, "face", "--help")
    assert code == 0
    for sub in ("detect", "verify", "enroll", "identify", "list", "remove", "evaluate"):
        assert sub in out


def test_threshold_default_is_documented_in_help(capsys):
    code, out, _ = run(capsys, "face", "verify", "--help")
    assert code == 0 and "default 0.6" in out and "Euclidean" in out


def test_strict_json_writes_null_for_nan_and_infinity():
    from strided.cli.face import strict_json
    text = strict_json({"a": float("nan"), "b": [np.float32(1.5), -np.inf], "c": np.arange(2)})
    assert strict_loads(text) == {"a": None, "b": [1.5, None], "c": [0, 1]}


def test_list_of_a_missing_database_says_how_to_make_one(tmp_path, capsys):
    code, _, err = run(capsys, "face", "list", tmp_path / "nowhere")
    assert code == 2 and "strided: error: no face database at" in err and "strided face enroll" in err
    assert not (tmp_path / "nowhere").exists()


def test_list_of_a_folder_that_is_not_a_database(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    code, _, err = run(capsys, "face", "list", tmp_path / "photos")
    assert code == 2 and "is not a face database (no index.json)" in err


def test_model_dir_without_weights_names_the_install_command(tmp_path, capsys):
    photo = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    code, out, err = run(capsys, "face", "detect", photo, "--model-dir", tmp_path)
    assert code == 1 and out == ""
    assert "tiny_face_detector_model" in err and "strided models fetch face-api" in err


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model_dir():
    folder = helpers.model_dir_or_none()
    if folder is None:
        pytest.skip(helpers.SKIP_REASON)
    return folder


@pytest.fixture(scope="module")
def photos(model_dir, tmp_path_factory):
    """Photo files: astronaut.png, astronaut_flipped.png (mirrored, 384 x 384), grace_hopper.jpg,
    nobody.png (no face), broken.jpg (not an image) and, when installed, sample1.jpg."""
    from PIL import Image
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(helpers.photo("astronaut")).save(folder / "astronaut.png")
    Image.fromarray(helpers.photo("astronaut_flipped_384")).save(folder / "astronaut_flipped.png")
    import matplotlib.cbook as cbook
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), folder / "grace_hopper.jpg")
    gradient = np.linspace(0, 255, 160 * 200 * 3).reshape(160, 200, 3).astype(np.uint8)
    Image.fromarray(gradient).save(folder / "nobody.png")
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    sample1 = model_dir.parent / "demo" / "sample1.jpg"
    if sample1.is_file():
        shutil.copy(sample1, folder / "sample1.jpg")
    return folder


# ------------------------------------------------------------------------------------ detect
def test_detect_json_matches_face_api_one_object_per_image_in_order(photos, capsys):
    names = ["grace_hopper.jpg", "nobody.png", "astronaut.png"]
    if (photos / "sample1.jpg").exists():
        names.append("sample1.jpg")
    code, out, err = run(capsys, "face", "detect", *[photos / n for n in names], "--json")
    assert code == 0
    result = strict_loads(out)
    assert [r["image"] for r in result] == [str(photos / n) for n in names]
    assert result[1]["faces"] == [] and "no face found in" in err and "nobody.png" in err
    for entry, name in zip(result, names):
        if name == "nobody.png":
            continue
        expected = reference_faces(name.split(".")[0])
        assert len(entry["faces"]) == len(expected)
        for ours, theirs in zip(entry["faces"], expected):
            assert set(ours) == {"box", "score", "landmarks"}
            np.testing.assert_allclose(ours["box"], helpers.xywh_to_xyxy(theirs["box"]), atol=BOX_TOL)
            assert ours["score"] == pytest.approx(theirs["score"], abs=1e-3)
            assert np.array(ours["landmarks"]).shape == (68, 2)
            assert np.abs(np.array(ours["landmarks"]) - theirs["landmarks"]).max() <= LANDMARK_TOL


def test_detect_text_prints_one_line_per_face(photos, capsys):
    code, out, _ = run(capsys, "face", "detect", photos / "astronaut.png")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    path, *numbers = lines[0].split(",")
    theirs = reference_faces("astronaut")[0]
    assert path == str(photos / "astronaut.png")
    np.testing.assert_allclose([float(v) for v in numbers[:4]], helpers.xywh_to_xyxy(theirs["box"]), atol=0.1)
    assert float(numbers[4]) == pytest.approx(theirs["score"], abs=1e-3)


def test_detect_writes_annotated_copies_and_never_overwrites(photos, tmp_path, capsys):
    from strided.data.image import read_image
    out_dir = tmp_path / "annotated"
    code, _, _ = run(capsys, "face", "detect", photos / "astronaut.png", photos / "grace_hopper.jpg",
                     "-o", out_dir)
    assert code == 0
    drawn = read_image(out_dir / "astronaut.png")
    original = read_image(photos / "astronaut.png")
    assert drawn.shape == original.shape
    x1, y1, x2, y2 = (int(round(v)) for v in helpers.xywh_to_xyxy(reference_faces("astronaut")[0]["box"]))
    changed = np.any(drawn != original, axis=-1)
    assert changed[y1 - 2:y2 + 3, x1 - 2:x2 + 3].sum() > 0.5 * changed.sum() > 0   # drawn on the face
    assert (out_dir / "grace_hopper.jpg").is_file()

    before = tree_digest(out_dir)
    code, _, err = run(capsys, "face", "detect", photos / "astronaut.png", "-o", out_dir)
    assert code == 2 and "already exists; pass --overwrite" in err
    assert tree_digest(out_dir) == before
    code, _, _ = run(capsys, "face", "detect", photos / "astronaut.png", "-o", out_dir, "--overwrite")
    assert code == 0


def test_detect_refuses_to_write_over_its_input(photos, capsys):
    before = tree_digest(photos)
    code, _, err = run(capsys, "face", "detect", photos / "astronaut.png", "-o", photos, "--overwrite")
    assert code == 2 and "would replace the input photo" in err
    assert tree_digest(photos) == before


def test_detect_bad_images_are_clear_errors(photos, capsys):
    code, out, err = run(capsys, "face", "detect", photos / "broken.jpg", "--json")
    assert code == 2 and out == "" and err.startswith("strided: error:") and "broken.jpg" in err
    code, out, err = run(capsys, "face", "detect", photos / "missing.jpg")
    assert code == 2 and "does not exist" in err and "missing.jpg" in err


# ------------------------------------------------------------------------------------ verify
def test_verify_astronaut_against_her_mirrored_rescaled_copy(photos, capsys):
    code, out, _ = run(capsys, "face", "verify", photos / "astronaut.png", photos / "astronaut_flipped.png",
                       "--json")
    assert code == 0
    result = strict_loads(out)
    assert {"verified", "distance", "threshold", "faces"} <= set(result)
    landmarks = helpers.reference(helpers.LANDMARKS_REFERENCE)["photos"]
    expected = np.linalg.norm(np.array(landmarks["astronaut"]["faces"][0]["descriptor"])
                              - landmarks["astronaut_flipped_384"]["faces"][0]["descriptor"])
    assert result["distance"] == pytest.approx(expected, abs=DISTANCE_TOL)
    assert result["verified"] is True and result["threshold"] == 0.6 and expected < 0.6
    assert [f["image"] for f in result["faces"]] == [str(photos / "astronaut.png"),
                                                     str(photos / "astronaut_flipped.png")]
    assert all(np.array(f["landmarks"]).shape == (68, 2) and len(f["box"]) == 4 for f in result["faces"])


def test_verify_astronaut_against_grace_hopper_text_and_threshold(photos, capsys):
    ref = helpers.reference()["photos"]
    expected = np.linalg.norm(np.array(ref["astronaut"]["faces"][0]["descriptor"])
                              - ref["grace_hopper"]["faces"][0]["descriptor"])
    code, out, _ = run(capsys, "face", "verify", photos / "astronaut.png", photos / "grace_hopper.jpg")
    assert code == 0
    assert out.startswith("different people: distance") and f"{expected:.3f}" in out
    # a looser threshold above that distance accepts the pair (strict: distance < threshold)
    code, out, _ = run(capsys, "face", "verify", photos / "astronaut.png", photos / "grace_hopper.jpg",
                       "--threshold", f"{expected + 0.01:.4f}", "--json")
    assert code == 0 and strict_loads(out)["verified"] is True


def test_verify_no_face_and_bad_threshold(photos, capsys):
    code, out, err = run(capsys, "face", "verify", photos / "astronaut.png", photos / "nobody.png")
    assert code == 1 and out == "" and "strided: error: no face found in" in err and "nobody.png" in err
    code, _, err = run(capsys, "face", "verify", photos / "astronaut.png", photos / "astronaut.png",
                       "--threshold", "-1")
    assert code == 2 and "--threshold must be a positive" in err
    code, _, err = run(capsys, "face", "verify", photos / "astronaut.png", photos / "broken.jpg")
    assert code == 2 and "broken.jpg" in err


# ------------------------------------------------------------------------------------ database
def test_enroll_list_identify_remove_round_trip(photos, tmp_path, capsys):
    db = tmp_path / "people"
    code, out, _ = run(capsys, "face", "enroll", db, "Eileen Collins", photos / "astronaut.png")
    assert code == 0 and "Eileen Collins" in out
    code, _, _ = run(capsys, "face", "enroll", db, "Grace Hopper", photos / "grace_hopper.jpg")
    assert code == 0
    code, out, _ = run(capsys, "face", "list", db)
    assert code == 0 and out.splitlines() == ["Eileen Collins\t1 photo", "Grace Hopper\t1 photo"]
    code, out, _ = run(capsys, "face", "list", db, "--json")
    listed = strict_loads(out)
    assert listed["people"] == [{"name": "Eileen Collins", "photos": 1}, {"name": "Grace Hopper", "photos": 1}]
    assert listed["model_id"].startswith("faceapi-dlib-resnet128:")

    # identify: the mirrored astronaut is Eileen, Grace is Grace (distance ~0: the same photo)
    code, out, err = run(capsys, "face", "identify", db, photos / "astronaut_flipped.png",
                         photos / "grace_hopper.jpg", photos / "nobody.png", "--json")
    assert code == 0
    result = strict_loads(out)
    assert [r["image"] for r in result] == [str(photos / n) for n in
                                            ("astronaut_flipped.png", "grace_hopper.jpg", "nobody.png")]
    (eileen,), (grace,), nobody = (r["faces"] for r in result)
    assert nobody == [] and "no face found in" in err
    landmarks = helpers.reference(helpers.LANDMARKS_REFERENCE)["photos"]
    expected = np.linalg.norm(np.array(landmarks["astronaut"]["faces"][0]["descriptor"])
                              - landmarks["astronaut_flipped_384"]["faces"][0]["descriptor"])
    assert eileen["name"] == "Eileen Collins" and eileen["distance"] == pytest.approx(expected, abs=DISTANCE_TOL)
    assert grace["name"] == "Grace Hopper" and grace["distance"] < 1e-5
    assert set(eileen) == {"box", "score", "landmarks", "name", "distance"}

    # text: file,name,distance
    code, out, _ = run(capsys, "face", "identify", db, photos / "astronaut_flipped.png")
    path, name, distance = out.strip().split(",")
    assert (path, name) == (str(photos / "astronaut_flipped.png"), "Eileen Collins")
    assert float(distance) == pytest.approx(expected, abs=DISTANCE_TOL)

    # remove Grace: her photo is now unknown (farther than 0.6 from the astronaut)
    code, out, _ = run(capsys, "face", "remove", db, "Grace Hopper")
    assert code == 0 and "removed 'Grace Hopper'" in out
    code, out, _ = run(capsys, "face", "identify", db, photos / "grace_hopper.jpg", "--json")
    (face,) = strict_loads(out)[0]["faces"]
    ref = helpers.reference()["photos"]
    expected = np.linalg.norm(np.array(ref["astronaut"]["faces"][0]["descriptor"])
                              - ref["grace_hopper"]["faces"][0]["descriptor"])
    assert expected > 0.6 and face["name"] == "unknown"
    assert face["distance"] == pytest.approx(expected, abs=DISTANCE_TOL)
    code, out, _ = run(capsys, "face", "list", db)
    assert out.splitlines() == ["Eileen Collins\t1 photo"]


def test_identify_writes_named_pictures(photos, tmp_path, capsys):
    from strided.data.image import read_image
    db = tmp_path / "db"
    assert run(capsys, "face", "enroll", db, "Grace", photos / "grace_hopper.jpg")[0] == 0
    out_dir = tmp_path / "out"
    code, _, _ = run(capsys, "face", "identify", db, photos / "grace_hopper.jpg", "-o", out_dir)
    assert code == 0
    assert np.any(read_image(out_dir / "grace_hopper.jpg") != read_image(photos / "grace_hopper.jpg"))


@pytest.mark.skipif(not (helpers.model_dir_or_none() and
                         (helpers.model_dir_or_none().parent / "demo" / "sample1.jpg").is_file()),
                    reason="face-api's demo photos are not installed next to its model/ folder")
def test_identify_the_people_of_a_group_photo_enrolled_from_crops(photos, tmp_path, capsys):
    """Enroll each person of sample1.jpg from a crop of their face, then find them all in the
    mirrored group photo (another picture of the same people)."""
    from PIL import Image
    from strided.data.image import read_image
    group = read_image(photos / "sample1.jpg")
    faces = reference_faces("sample1")
    db = tmp_path / "db"
    for k, f in enumerate(faces):
        x, y, w, h = f["box"]
        crop = group[max(0, int(y - h / 2)):int(y + 1.5 * h), max(0, int(x - w / 2)):int(x + 1.5 * w)]
        Image.fromarray(crop).save(tmp_path / f"person{k}.png")
        assert run(capsys, "face", "enroll", db, f"person {k}", tmp_path / f"person{k}.png")[0] == 0
    Image.fromarray(np.ascontiguousarray(group[:, ::-1])).save(tmp_path / "mirrored.png")
    code, out, _ = run(capsys, "face", "identify", db, tmp_path / "mirrored.png", "--json")
    assert code == 0
    found = strict_loads(out)[0]["faces"]
    assert len(found) == len(faces)
    width = group.shape[1]
    for k, f in enumerate(faces):                   # each person where the mirror puts them
        x, y, w, h = f["box"]
        mirrored_centre = width - (x + w / 2)
        nearest = min(found, key=lambda g: abs((g["box"][0] + g["box"][2]) / 2 - mirrored_centre))
        assert nearest["name"] == f"person {k}" and nearest["distance"] < 0.6


def test_enroll_refuses_a_photo_without_a_face_and_stores_nothing(photos, tmp_path, capsys):
    db = tmp_path / "db"
    code, _, err = run(capsys, "face", "enroll", db, "Eileen", photos / "astronaut.png", photos / "nobody.png")
    assert code == 1 and "no face found in" in err and "nobody.png" in err
    assert not db.exists()                              # nothing created
    assert run(capsys, "face", "enroll", db, "Eileen", photos / "astronaut.png")[0] == 0
    before = tree_digest(db)
    code, _, err = run(capsys, "face", "enroll", db, "Grace", photos / "grace_hopper.jpg", photos / "nobody.png")
    assert code == 1 and tree_digest(db) == before
    code, _, err = run(capsys, "face", "enroll", db, "unknown", photos / "grace_hopper.jpg")
    assert code == 2 and "reserved" in err and tree_digest(db) == before
    code, _, err = run(capsys, "face", "enroll", tmp_path / "new.db", " Ada", photos / "grace_hopper.jpg")
    assert code == 2 and "leading/trailing spaces" in err and not (tmp_path / "new.db").exists()


def test_remove_an_unknown_name_is_an_error_and_changes_nothing(photos, tmp_path, capsys):
    db = tmp_path / "db"
    assert run(capsys, "face", "enroll", db, "Eileen", photos / "astronaut.png")[0] == 0
    before = tree_digest(db)
    code, _, err = run(capsys, "face", "remove", db, "Ada")
    assert code == 2 and "'Ada' is not enrolled" in err and "'Eileen'" in err
    assert tree_digest(db) == before


@pytest.mark.parametrize("damage", ["shard", "index"])
def test_a_corrupted_database_is_refused_and_left_unchanged(photos, tmp_path, capsys, damage):
    db = tmp_path / "db"
    assert run(capsys, "face", "enroll", db, "Eileen", photos / "astronaut.png")[0] == 0
    if damage == "shard":
        shard = next(db.glob("embeddings-*.safetensors"))
        data = bytearray(shard.read_bytes())
        data[-5] ^= 0xFF
        shard.write_bytes(bytes(data))
    else:
        (db / "index.json").write_text('{"format": "strided.face.FaceDatabase", "vers')
    before = tree_digest(db)
    for argv in (["identify", db, photos / "astronaut.png"], ["enroll", db, "Grace", photos / "grace_hopper.jpg"],
                 ["list", db], ["remove", db, "Eileen"]):
        code, out, err = run(capsys, "face", *argv)
        assert code == 2 and out == "" and "is damaged" in err, argv
        assert tree_digest(db) == before


def test_a_database_of_another_model_is_refused(photos, tmp_path, capsys):
    from strided.face.database import FaceDatabase
    db = tmp_path / "db"
    FaceDatabase(db, model_id="someone-elses-model:123").enroll("Ada", np.ones(128, np.float32))
    before = tree_digest(db)
    for argv in (["identify", db, photos / "astronaut.png"], ["enroll", db, "Eileen", photos / "astronaut.png"]):
        code, _, err = run(capsys, "face", *argv)
        assert code == 2 and "someone-elses-model:123" in err and "cannot be compared" in err
        assert tree_digest(db) == before


# ------------------------------------------------------------------------------------ evaluate
@pytest.fixture(scope="module")
def lfw(photos, tmp_path_factory):
    """An LFW-layout fixture: 2 people (the astronaut, Grace Hopper) with 3 photos each
    (original, mirrored, a crop rescaled by 0.7), and pairs.txt with 3 folds of 2 matched +
    2 mismatched pairs."""
    from PIL import Image
    from strided.data.image import read_image
    root = tmp_path_factory.mktemp("lfw")
    for person, file in (("Eileen_Collins", "astronaut.png"), ("Grace_Hopper", "grace_hopper.jpg")):
        image = read_image(photos / file)
        H, W = image.shape[:2]
        crop = Image.fromarray(image[H // 10:, W // 10:W - W // 10])
        variants = [image, np.ascontiguousarray(image[:, ::-1]),
                    np.asarray(crop.resize((int(crop.width * 0.7), int(crop.height * 0.7)), Image.BILINEAR))]
        (root / person).mkdir()
        for k, pixels in enumerate(variants, start=1):
            Image.fromarray(pixels).save(root / person / f"{person}_{k:04d}.jpg", quality=95)
    lines = ["3 2"]
    matched = [("Eileen_Collins", 1, 2), ("Grace_Hopper", 1, 3), ("Eileen_Collins", 2, 3),
               ("Grace_Hopper", 2, 3), ("Eileen_Collins", 1, 3), ("Grace_Hopper", 1, 2)]
    mismatched = [(1, 1), (2, 3), (3, 2), (1, 2), (2, 1), (3, 3)]
    for fold in range(3):
        lines += [f"{n}\t{i}\t{j}" for n, i, j in matched[2 * fold:2 * fold + 2]]
        lines += [f"Eileen_Collins\t{i}\tGrace_Hopper\t{j}" for i, j in mismatched[2 * fold:2 * fold + 2]]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_evaluate_on_an_lfw_layout_fixture(lfw, tmp_path, capsys):
    from strided.face import default_models
    from strided.face.evaluation import kfold_accuracy, read_lfw_pairs, roc_auc
    out_dir = tmp_path / "eval"
    code, out, _ = run(capsys, "face", "evaluate", "--pairs", lfw / "pairs.txt", "--root", lfw,
                       "-o", out_dir, "--json")
    assert code == 0
    report = strict_loads(out)
    assert report == strict_loads((out_dir / "report.json").read_text())
    assert (out_dir / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["pairs"] == 12 and report["same_pairs"] == 6 and report["skipped_pairs"] == 0
    # the numbers, recomputed here from the descriptors of each pair's photos
    pairs = read_lfw_pairs(lfw / "pairs.txt", lfw)
    models = default_models()
    vectors = {p: models.embed(p) for p in set(pairs.paths1 + pairs.paths2)}
    d = np.array([np.linalg.norm(vectors[a] - vectors[b]) for a, b in zip(pairs.paths1, pairs.paths2)])
    assert d[pairs.same].max() < 0.6 < d[~pairs.same].min()       # the model separates these people
    kfold = kfold_accuracy(d, pairs.same, pairs.fold)
    assert report["kfold"]["accuracy"] == pytest.approx(kfold["accuracy"]) == 1.0
    assert len(report["kfold"]["fold_accuracies"]) == 3
    assert report["auc"] == pytest.approx(roc_auc(d, pairs.same)) == 1.0
    assert report["eer"] == 0.0 and set(report["tar_at_far"]) == {"0.01", "0.001"}

    code, text, _ = run(capsys, "face", "evaluate", "--pairs", lfw / "pairs.txt", "--root", lfw)
    assert code == 0 and "3-fold accuracy: 1.0000" in text and "EER: 0.0000" in text and "TAR@FAR=0.001" in text
    code, _, err = run(capsys, "face", "evaluate", "--pairs", lfw / "pairs.txt", "--root", lfw, "-o", out_dir)
    assert code == 2 and "already exists" in err


def test_evaluate_names_a_bad_pairs_file(lfw, tmp_path, capsys):
    bad = tmp_path / "pairs.txt"
    bad.write_text("1 1\nEileen_Collins 1\nEileen_Collins 1 Grace_Hopper 1\n")
    code, _, err = run(capsys, "face", "evaluate", "--pairs", bad, "--root", lfw)
    assert code == 2 and "line 2" in err
    bad.write_text("1 1\nAda_Lovelace 1 2\nEileen_Collins 1 Grace_Hopper 1\n")
    code, _, err = run(capsys, "face", "evaluate", "--pairs", bad, "--root", lfw)
    assert code == 2 and "Ada_Lovelace" in err


def test_enroll_in_batches_and_with_a_smaller_detector_input(photos, tmp_path, capsys):
    from strided.face import FaceDatabase
    images = [photos / "astronaut.png", photos / "grace_hopper.jpg", photos / "astronaut.png"]
    for db, options in (("one", ["--batch-size", "1"]), ("all", []), ("small", ["--input-size", "224"])):
        code, out, _ = run(capsys, "face", "enroll", tmp_path / db, "Both", *images, *options)
        assert code == 0 and "3 photo(s) added" in out
    one, together, small = (FaceDatabase(tmp_path / db).embeddings("Both") for db in ("one", "all", "small"))
    np.testing.assert_allclose(together, one, atol=1e-5)              # batching changes rounding only
    assert 0 < np.abs(small - together).max() and np.linalg.norm(small - together, axis=1).max() < 0.2
    code, _, err = run(capsys, "face", "enroll", tmp_path / "bad", "Both", *images, "--batch-size", "0")
    assert code == 2 and "--batch-size must be a positive integer, received 0" in err
    assert not (tmp_path / "bad").exists()
