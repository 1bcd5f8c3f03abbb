"""strided.face.database.FaceDatabase: enrol / remove / identify against a brute-force
float64 search (scipy cdist), both matching strategies, storage (reopen, incremental shards,
atomic updates), model mismatch, damaged files (clear error, files untouched), bad input."""
import hashlib
import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from strided.errors import StridedError
from strided.face import database as dbmod
from strided.face.database import (UNKNOWN, DatabaseCorrupted, FaceDatabase, FaceDatabaseError,
                                   Match, ModelMismatch, UnknownPerson)

MODEL = "face_recognition_model"


def people(n=20, photos=3, dim=16, seed=0, spread=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return {f"person {i}": (centres[i] + rng.standard_normal((photos, dim)) * spread).astype(np.float32)
            for i in range(n)}, centres


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def brute_force(enrolled, queries, threshold, strategy):
    names, rows = [], []
    for name, e in enrolled.items():
        if strategy == "nearest":
            for row in e:
                names.append(name)
                rows.append(row)
        else:
            names.append(name)
            rows.append(e.astype(np.float64).mean(axis=0))
    d = cdist(np.asarray(queries, np.float64), np.asarray(rows, np.float64))
    out = []
    for row in d:
        j = int(np.argmin(row))
        out.append((names[j] if row[j] <= threshold else UNKNOWN, row[j], names[j]))
    return out


# --------------------------------------------------------------------------- basics
def test_enroll_reopen_and_identify(tmp_path):
    enrolled, centres = people()
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    for name, e in enrolled.items():
        assert db.enroll(name, e) == 3
    assert db.enroll("person 0", enrolled["person 0"][0]) == 4       # more photos, (D,) input
    enrolled["person 0"] = np.concatenate([enrolled["person 0"], enrolled["person 0"][:1]])
    assert db.names() == list(enrolled) and len(db) == 20 and "person 3" in db
    assert db.counts()["person 0"] == 4 and db.num_embeddings == 61

    again = FaceDatabase(tmp_path / "db")                            # model_id from the file
    assert again.model_id == MODEL and again.dim == 16 and again.names() == db.names()
    assert np.array_equal(again.embeddings(), db.embeddings())
    assert np.array_equal(again.embeddings("person 5"), enrolled["person 5"])
    assert again.created == db.created

    rng = np.random.default_rng(1)
    queries = np.concatenate([centres[:10] + rng.standard_normal((10, 16)) * 0.05,
                              rng.standard_normal((5, 16))]).astype(np.float32)
    for strategy in ("nearest", "mean"):
        matches = again.identify(queries, threshold=0.6, strategy=strategy)
        expected = brute_force(enrolled, queries, 0.6, strategy)
        assert [m.name for m in matches] == [e[0] for e in expected]
        assert [m.nearest for m in matches] == [e[2] for e in expected]
        np.testing.assert_allclose([m.distance for m in matches], [e[1] for e in expected], rtol=1e-6)
    names = [m.name for m in again.identify(queries)]
    assert names[:10] == [f"person {i}" for i in range(10)]
    assert names[10:] == [UNKNOWN] * 5                                 # far from everybody


def test_identify_threshold_is_inclusive_and_single_face(tmp_path):
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll("a", np.zeros(2, np.float32))
    [m] = db.identify(np.array([0.5, 0.0], np.float32), threshold=0.5)     # exactly at it
    assert m == Match("a", 0.5, "a") and m.known
    [m] = db.identify([0.5, 0.001], threshold=0.5)
    assert m.name == UNKNOWN and m.nearest == "a" and not m.known
    assert m.to_dict() == {"name": UNKNOWN, "distance": m.distance, "nearest": "a"}


def test_nearest_and_mean_strategies_differ(tmp_path):
    # A has photos at x=0 and x=2 (mean 1); B one photo at x=1.2. A face at x=0.9 is nearest to
    # B's photo (0.3) but to A's mean (0.1).
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll("A", [[0.0, 0.0], [2.0, 0.0]])
    db.enroll("B", [1.2, 0.0])
    q = [0.9, 0.0]
    [nearest] = db.identify(q, strategy="nearest")
    [mean] = db.identify(q, strategy="mean")
    assert (nearest.name, nearest.distance) == ("B", pytest.approx(0.3))
    assert (mean.name, mean.distance) == ("A", pytest.approx(0.1))


def test_distances_one_gemm_matches_cdist(tmp_path):
    enrolled, _ = people(n=5, dim=8)
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll_many(enrolled)
    q = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)
    expected = cdist(q.astype(np.float64), np.concatenate(list(enrolled.values())).astype(np.float64))
    np.testing.assert_allclose(db.distances(q), expected, rtol=1e-5, atol=1e-5)


def test_empty_database(tmp_path):
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    assert db.names() == [] and db.num_embeddings == 0
    assert db.identify(np.ones((2, 4))) == [Match(UNKNOWN, None, None)] * 2
    assert FaceDatabase(tmp_path / "db").names() == []


# --------------------------------------------------------------------------- storage
def test_enroll_is_incremental_and_remove_rewrites(tmp_path):
    enrolled, _ = people(n=4)
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll("person 0", enrolled["person 0"])
    before = snapshot(tmp_path / "db")
    db.enroll("person 1", enrolled["person 1"])
    after = snapshot(tmp_path / "db")
    shards_before = {k: v for k, v in before.items() if k.endswith(".safetensors")}
    assert all(after[k] == v for k, v in shards_before.items())       # old shard untouched
    assert len([k for k in after if k.endswith(".safetensors")]) == 2
    db.enroll("person 2", enrolled["person 2"])
    db.enroll("person 3", enrolled["person 3"])

    db.remove("person 1")
    files = [p.name for p in (tmp_path / "db").iterdir()]
    assert sorted(f for f in files if f.endswith(".safetensors")) == \
        [s["file"] for s in json.loads((tmp_path / "db" / "index.json").read_text())["shards"]]
    assert len(files) == 2                                             # index + one shard
    reopened = FaceDatabase(tmp_path / "db", model_id=MODEL)
    assert reopened.names() == ["person 0", "person 2", "person 3"]
    for name in reopened.names():                                      # labels still right
        assert np.array_equal(reopened.embeddings(name), enrolled[name])
        assert [m.name for m in reopened.identify(enrolled[name])] == [name] * 3
    reopened.remove("person 0")
    reopened.remove("person 2")
    reopened.remove("person 3")
    assert FaceDatabase(tmp_path / "db").names() == []


def test_many_enrolments_merge_small_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(dbmod, "MAX_SHARDS", 4)
    enrolled, _ = people(n=12, photos=2)
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll_many(dict(list(enrolled.items())[:8]))                   # one big shard first
    big = json.loads((tmp_path / "db" / "index.json").read_text())["shards"][0]
    for name in list(enrolled)[8:]:
        db.enroll(name, enrolled[name])
    shards = json.loads((tmp_path / "db" / "index.json").read_text())["shards"]
    assert len(shards) <= 4 and shards[0] == big                       # the big shard kept as is
    assert len(list((tmp_path / "db").glob("*.safetensors"))) == len(shards)
    reopened = FaceDatabase(tmp_path / "db")
    for name, e in enrolled.items():
        assert np.array_equal(reopened.embeddings(name), e)


def test_a_failed_write_leaves_the_last_state(tmp_path, monkeypatch):
    enrolled, _ = people(n=3)
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll("person 0", enrolled["person 0"])
    before = snapshot(tmp_path / "db")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dbmod, "atomic_write_json", crash)            # dies after the shard
    with pytest.raises(KeyboardInterrupt):
        db.enroll("person 1", enrolled["person 1"])
    with pytest.raises(KeyboardInterrupt):
        db.remove("person 0")
    assert db.names() == ["person 0"] and db.num_embeddings == 3      # memory unchanged too
    assert FaceDatabase(tmp_path / "db").names() == ["person 0"]      # disk: last complete state
    assert snapshot(tmp_path / "db")["index.json"] == before["index.json"]
    monkeypatch.undo()
    db.enroll("person 1", enrolled["person 1"])                        # orphan shards cleaned up
    listed = {s["file"] for s in json.loads((tmp_path / "db" / "index.json").read_text())["shards"]}
    assert {p.name for p in (tmp_path / "db").glob("*.safetensors")} == listed
    assert FaceDatabase(tmp_path / "db").names() == ["person 0", "person 1"]


# --------------------------------------------------------------------------- models
def test_model_mismatch(tmp_path):
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll("a", np.ones(128, np.float32))
    with pytest.raises(ModelMismatch, match="holds embeddings of model 'face_recognition_model', "
                                            "received model_id='facenet'"):
        FaceDatabase(tmp_path / "db", model_id="facenet")
    with pytest.raises(ModelMismatch, match="'facenet' cannot be enrolled"):
        db.enroll("b", np.ones(128), model_id="facenet")
    with pytest.raises(ModelMismatch, match="512 values each.*128-d"):
        db.enroll("b", np.ones(512))
    with pytest.raises(ModelMismatch, match="queries have 64 values"):
        db.identify(np.ones(64))
    assert isinstance(ModelMismatch("x"), StridedError)
    assert db.names() == ["a"]


# --------------------------------------------------------------------------- damage
def damaged_db(tmp_path):
    enrolled, _ = people(n=3)
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll_many(enrolled)
    shard = next((tmp_path / "db").glob("*.safetensors"))
    return tmp_path / "db", shard


@pytest.mark.parametrize("damage, message", [
    ("garbage_index", "not readable JSON"),
    ("foreign_index", "not a strided face database index"),
    ("missing_field", "lacks or garbles a field"),
    ("flipped_byte", "does not match its SHA-256"),
    ("truncated", "does not match its SHA-256"),
    ("missing_shard", "is missing"),
    ("bad_labels", "labels outside"),
])
def test_damaged_database_is_refused_and_untouched(tmp_path, damage, message):
    folder, shard = damaged_db(tmp_path)
    index = folder / "index.json"
    if damage == "garbage_index":
        index.write_text('{"format": "strided.face.FaceDa')
    elif damage == "foreign_index":
        index.write_text('{"format": "something else"}')
    elif damage == "missing_field":
        doc = json.loads(index.read_text())
        del doc["names"]
        index.write_text(json.dumps(doc))
    elif damage == "flipped_byte":
        raw = bytearray(shard.read_bytes())
        raw[-5] ^= 0xFF
        shard.write_bytes(bytes(raw))
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:-40])
    elif damage == "missing_shard":
        shard.unlink()
    elif damage == "bad_labels":                                      # consistent hash, bad content
        from safetensors.numpy import save_file
        save_file({"embeddings": np.zeros((9, 16), np.float32), "labels": np.full(9, 7, np.int64)},
                  str(shard))
        doc = json.loads(index.read_text())
        doc["shards"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
        index.write_text(json.dumps(doc))
    before = snapshot(folder)
    with pytest.raises(DatabaseCorrupted, match=message) as info:
        FaceDatabase(folder, model_id=MODEL)
    assert "Nothing was written" in str(info.value) and isinstance(info.value, StridedError)
    with pytest.raises(DatabaseCorrupted):
        FaceDatabase(folder)
    assert snapshot(folder) == before


def test_newer_version_is_refused(tmp_path):
    folder, _ = damaged_db(tmp_path)
    doc = json.loads((folder / "index.json").read_text())
    doc["version"] = 99
    (folder / "index.json").write_text(json.dumps(doc))
    with pytest.raises(FaceDatabaseError, match="version 99"):
        FaceDatabase(folder)


# --------------------------------------------------------------------------- bad input
def test_remove_unknown_name(tmp_path):
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    db.enroll("Ada", np.ones(4))
    with pytest.raises(UnknownPerson, match="'Grace' is not enrolled .*enrolled: 'Ada'"):
        db.remove("Grace")
    with pytest.raises(LookupError):
        db.embeddings("Grace")
    assert db.names() == ["Ada"]


@pytest.mark.parametrize("name", ["", "  ", " Ada", "unknown", "a\nb", 3])
def test_bad_names(tmp_path, name):
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    with pytest.raises(FaceDatabaseError):
        db.enroll(name, np.ones(4))
    assert db.names() == []


def test_bad_embeddings_paths_and_arguments(tmp_path):
    db = FaceDatabase(tmp_path / "db", model_id=MODEL)
    with pytest.raises(FaceDatabaseError, match="finite"):
        db.enroll("a", [np.nan, 1.0])
    with pytest.raises(FaceDatabaseError, match=r"\(D,\) or \(n, D\)"):
        db.enroll("a", np.ones((2, 2, 2)))
    with pytest.raises(FaceDatabaseError, match="strategy"):
        db.identify(np.ones(4), strategy="vote")
    with pytest.raises(FaceDatabaseError, match="threshold"):
        db.identify(np.ones(4), threshold=-1)
    with pytest.raises(FaceDatabaseError, match="pass model_id"):
        FaceDatabase(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(FaceDatabaseError, match="is a file"):
        FaceDatabase(tmp_path / "file", model_id=MODEL)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(FaceDatabaseError, match="not a face database"):
        FaceDatabase(tmp_path / "photos", model_id=MODEL)
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["a.jpg"]
    (tmp_path / "empty").mkdir()
    assert FaceDatabase(tmp_path / "empty", model_id=MODEL).names() == []


def test_enroll_images_with_an_embed_callable(tmp_path):
    calls = []

    def embed(image):                    # stands in for strided.face.api.embed
        calls.append(image)
        return np.asarray(image, np.float32).mean(axis=(0, 1))

    rng = np.random.default_rng(0)
    images = [rng.random((5, 5, 3)) for _ in range(3)]
    db = FaceDatabase(tmp_path / "db", model_id=MODEL, embed=embed)
    assert db.enroll_images("Ada", images) == 3 and len(calls) == 3
    assert db.enroll_images("Ada", images[0]) == 4                    # one image
    np.testing.assert_allclose(db.embeddings("Ada")[0], images[0].mean(axis=(0, 1)), rtol=1e-6)
    other = FaceDatabase(tmp_path / "db")
    with pytest.raises(FaceDatabaseError, match="needs an embed"):
        other.enroll_images("Bob", images)
    assert other.enroll_images("Bob", images, embed=embed) == 3
    assert "people=2" in repr(other)


def test_enroll_images_with_a_batched_embedder(tmp_path):
    class Batched:                       # stands in for strided.face.FaceModels
        def __init__(self):
            self.calls = []

        def embed_images(self, images, batch_size=8):
            self.calls.append((len(images), batch_size))
            return np.stack([np.asarray(image, np.float32).mean(axis=(0, 1)) for image in images])

    rng = np.random.default_rng(1)
    images = [rng.random((5, 5, 3)) for _ in range(5)]
    embedder = Batched()
    db = FaceDatabase(tmp_path / "db", model_id=MODEL, embed=embedder)
    assert db.enroll_images("Ada", images, batch_size=2) == 5 and embedder.calls == [(5, 2)]
    assert db.enroll_images("Ada", images[0]) == 6 and embedder.calls[-1] == (1, 8)
    np.testing.assert_allclose(db.embeddings("Ada"), [im.mean(axis=(0, 1)) for im in images + images[:1]], rtol=1e-6)
    with pytest.raises(FaceDatabaseError, match="received no images"):
        db.enroll_images("Ada", [])
    with pytest.raises(FaceDatabaseError, match="needs an embed.*received 3"):
        db.enroll_images("Ada", images, embed=3)
