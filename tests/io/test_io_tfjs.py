"""read_tfjs: synthetic TF.js model.json + shards (plain, uint8/uint16/float16 quantized,
int32, bool, string, weights split across shards, several groups), face-api.js style
bare manifests, and damaged manifests / shards."""
import json

import numpy as np
import pytest

from strided.io import ModelFileError, read_tfjs

rng = np.random.default_rng(0)
KERNEL = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
BIAS = rng.standard_normal(4).astype(np.float32)
STEPS = np.array([[1, -2], [3, 2_000_000_000]], dtype=np.int32)
MASK = np.array([True, False, True])
Q8 = rng.integers(0, 256, (5, 3)).astype(np.uint8)
Q16 = rng.integers(0, 65536, (7,)).astype(np.uint16)
HALF = rng.standard_normal((2, 3)).astype(np.float16)
ROUND = np.array([0, 1, 2, 3, 4], dtype=np.uint8)  # scale 0.5, min 0: 0, 0.5, 1, 1.5, 2
WORDS = [b"cat", b"", "é".encode()]


def write_model(folder, *, manifest_only=False):
    """Two groups; group 1 is split into two shards in the middle of the kernel."""
    group1 = KERNEL.tobytes() + BIAS.tobytes() + STEPS.tobytes() + MASK.astype(np.uint8).tobytes()
    cut = 50
    (folder / "group1-shard1of2.bin").write_bytes(group1[:cut])
    (folder / "group1-shard2of2.bin").write_bytes(group1[cut:])
    strings = b"".join(len(w).to_bytes(4, "little") + w for w in WORDS)
    group2 = Q8.tobytes() + Q16.astype("<u2").tobytes() + HALF.astype("<f2").tobytes() + ROUND.tobytes() + strings
    (folder / "group2-shard1of1.bin").write_bytes(group2)
    manifest = [
        {"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
         "weights": [{"name": "conv2d/kernel", "shape": [3, 3, 2, 4], "dtype": "float32"},
                     {"name": "conv2d/bias", "shape": [4], "dtype": "float32"},
                     {"name": "steps", "shape": [2, 2], "dtype": "int32"},
                     {"name": "mask", "shape": [3], "dtype": "bool"}]},
        {"paths": ["group2-shard1of1.bin"],
         "weights": [{"name": "dense/kernel", "shape": [5, 3], "dtype": "float32",
                      "quantization": {"dtype": "uint8", "scale": 0.0123, "min": -1.5}},
                     {"name": "dense/bias", "shape": [7], "dtype": "float32",
                      "quantization": {"dtype": "uint16", "scale": 1e-4, "min": -3.0}},
                     {"name": "half", "shape": [2, 3], "dtype": "float32", "quantization": {"dtype": "float16"}},
                     {"name": "rounded", "shape": [5], "dtype": "int32",
                      "quantization": {"dtype": "uint8", "scale": 0.5, "min": 0}},
                     {"name": "vocab", "shape": [3], "dtype": "string"}]},
    ]
    doc = manifest if manifest_only else {"format": "layers-model", "generatedBy": "keras v2.15",
                                          "modelTopology": {"class_name": "Sequential"},
                                          "weightsManifest": manifest}
    path = folder / ("weights_manifest.json" if manifest_only else "model.json")
    path.write_text(json.dumps(doc))
    return path


def dequantized(q, scale, low):
    """The TF.js formula, element by element in Python floats (doubles), stored as float32."""
    return np.array([float(v) * scale + low for v in q.ravel()], dtype=np.float32).reshape(q.shape)


@pytest.mark.parametrize("manifest_only", [False, True], ids=["model.json", "bare manifest"])
def test_all_dtypes_and_quantizations(tmp_path, manifest_only):
    state = read_tfjs(write_model(tmp_path, manifest_only=manifest_only))
    assert list(state) == ["conv2d/kernel", "conv2d/bias", "steps", "mask", "dense/kernel", "dense/bias", "half",
                           "rounded", "vocab"]
    np.testing.assert_array_equal(state["conv2d/kernel"], KERNEL)  # across the shard boundary
    np.testing.assert_array_equal(state["conv2d/bias"], BIAS)
    assert state["steps"].dtype == np.int32 and state["steps"].tolist() == STEPS.tolist()
    assert state["mask"].dtype == np.bool_ and state["mask"].tolist() == MASK.tolist()
    assert state["dense/kernel"].dtype == np.float32
    np.testing.assert_array_equal(state["dense/kernel"], dequantized(Q8, 0.0123, -1.5))
    np.testing.assert_array_equal(state["dense/bias"], dequantized(Q16, 1e-4, -3.0))
    np.testing.assert_array_equal(state["half"], HALF.astype(np.float32))
    assert state["rounded"].tolist() == [0, 1, 1, 2, 2]  # Math.round: 0.5 -> 1, 1.5 -> 2
    assert state["vocab"].tolist() == WORDS


def test_missing_and_short_shards(tmp_path):
    path = write_model(tmp_path)
    (tmp_path / "group2-shard1of1.bin").write_bytes((tmp_path / "group2-shard1of1.bin").read_bytes()[:20])
    with pytest.raises(ModelFileError, match=r"weight 'dense/bias' \(group 1\) needs bytes 15\.\.29 but the "
                                             r"group's shards hold 20 bytes"):
        read_tfjs(path)
    (tmp_path / "group1-shard2of2.bin").unlink()
    with pytest.raises(ModelFileError, match=r"shard 'group1-shard2of2.bin' of group 0 does not exist"):
        read_tfjs(path)


def test_extra_bytes_mean_the_manifest_does_not_match(tmp_path):
    path = write_model(tmp_path)
    with open(tmp_path / "group1-shard2of2.bin", "ab") as f:
        f.write(b"\x00" * 8)
    with pytest.raises(ModelFileError, match=r"group 0 .* hold 331 bytes, its weights use 323"):
        read_tfjs(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m[0]["weights"][0].update(dtype="float64"), "dtype 'float64'"),
    (lambda m: m[1]["weights"][0]["quantization"].update(dtype="int4"), "quantization dtype 'int4'"),
    (lambda m: m[1]["weights"][0]["quantization"].pop("scale"), "needs numbers 'scale' and 'min'"),
    (lambda m: m[0]["weights"][0].update(shape=[3, -3]), "'shape' list of non-negative ints"),
    (lambda m: m[0]["paths"].__setitem__(0, "../outside.bin"), "leaves the model's folder"),
    (lambda m: m[0]["paths"].__setitem__(0, "/etc/hostname"), "leaves the model's folder"),
    (lambda m: m[0].pop("paths"), "needs lists 'paths' and 'weights'"),
    (lambda m: m[1]["weights"].append(dict(m[0]["weights"][1])), "'conv2d/bias' appears twice"),
], ids=["dtype", "quantization", "scale", "shape", "dotdot", "absolute", "paths", "duplicate"])
def test_bad_manifests(tmp_path, change, message):
    path = write_model(tmp_path)
    doc = json.loads(path.read_text())
    change(doc["weightsManifest"])
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=message):
        read_tfjs(path)


def test_not_json_and_no_manifest(tmp_path):
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not readable JSON"):
        read_tfjs(tmp_path / "model.json")
    (tmp_path / "model.json").write_text(json.dumps({"modelTopology": {}}))
    with pytest.raises(ModelFileError, match=r"no 'weightsManifest' list \(top-level keys: \['modelTopology'\]\)"):
        read_tfjs(tmp_path / "model.json")
    with pytest.raises(ModelFileError, match="does not exist"):
        read_tfjs(tmp_path / "nope.json")
