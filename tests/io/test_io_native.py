"""strided.io.save / load: safetensors (native) and npz round trips, strict loading
with clear errors, training checkpoints, corrupt files, pickle refused in npz."""
import os
import zipfile

import numpy as np
import pytest

import strided as sd
import strided.io as sio
from strided import nn
from strided.checkpoint import save_checkpoint


def net(seed=0, out=5):
    sd.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.GlobalAvgPool2d(),
                          nn.Linear(4, out))
    rng = np.random.default_rng(seed)
    model[1].running_mean[...] = rng.standard_normal(4)  # buffers must travel too
    model[1].running_var[...] = rng.uniform(0.5, 2, 4)
    return model.eval()


def x_batch():
    return sd.tensor(np.random.default_rng(1).standard_normal((2, 6, 6, 3)).astype(np.float32))


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_round_trip_keeps_names_order_values_and_outputs(tmp_path, suffix):
    model = net(seed=0)
    path = sio.save(model, tmp_path / f"w{suffix}")
    state = sio.load(path)
    assert list(state) == list(model.state_dict())  # state_dict order, buffers included
    for name, value in model.state_dict().items():
        assert state[name].dtype == value.dtype and np.array_equal(state[name], value), name
    other = net(seed=1)
    assert not np.allclose(other(x_batch()).data, model(x_batch()).data)
    assert sio.load(path, other) is other
    np.testing.assert_array_equal(other(x_batch()).data, model(x_batch()).data)


def test_npz_is_plain_numpy(tmp_path):
    model = net()
    path = sio.save(model, tmp_path / "w.npz")
    with np.load(path, allow_pickle=False) as f:
        assert f.files == list(model.state_dict())
        np.testing.assert_array_equal(f["0.weight"], model[0].weight.data)


def test_save_accepts_a_dict_and_an_explicit_format(tmp_path):
    arrays = {"a": np.arange(3.0), "file": np.ones((2, 2), np.float32)}  # "file" would clash with np.savez(file=)
    path = sio.save(arrays, tmp_path / "weights.bin", format="npz")
    assert list(sio.load(path)) == ["a", "file"]
    with pytest.raises(ValueError, match="suffix '.bin'"):
        sio.save(arrays, tmp_path / "weights.bin")


def test_load_builds_lazy_layers(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))
    path = sio.save(model, tmp_path / "w.safetensors")
    lazy = nn.Sequential(nn.Conv2d(None, 4, 3), nn.BatchNorm2d(), nn.Flatten(), nn.Linear(None, 2))
    sio.load(path, lazy)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(lazy.state_dict()[name], value)


def test_shape_mismatch_names_entry_and_shapes_and_copies_nothing(tmp_path):
    path = sio.save(net(out=5), tmp_path / "w.safetensors")
    other = net(seed=3, out=7)
    before = {k: v.copy() for k, v in other.state_dict().items()}
    with pytest.raises(sio.ModelFileError, match=r"'4\.weight' has shape \(4, 5\) in the file, the model "
                                                  r"expects \(4, 7\)") as info:
        sio.load(path, other)
    assert "w.safetensors" in str(info.value)
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[name])  # the entries before 4.weight were not copied


def test_missing_and_unexpected_entries_are_listed(tmp_path):
    path = sio.save(net(), tmp_path / "w.npz")
    other = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Linear(4, 5))
    with pytest.raises(sio.ModelFileError, match="not in the file") as info:
        sio.load(path, other)
    message = str(info.value)
    assert "3.weight (4, 5)" in message and "1.gamma (4,)" in message and "4.weight (4, 5)" in message
    sio.load(path, nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), strict=False)  # a subset with strict=False


def test_training_checkpoint_loads_model_part(tmp_path):
    model = net()
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays["optim/0.momentum"] = np.ones(3, np.float32)
    save_checkpoint(tmp_path / "best.safetensors", arrays, {"epoch": 3})
    state = sio.load(tmp_path / "best.safetensors")
    assert sorted(state) == sorted(model.state_dict())
    sio.load(tmp_path / "best.safetensors", net(seed=5))


def test_missing_truncated_and_garbage_files(tmp_path):
    with pytest.raises(sio.ModelFileError, match="does not exist"):
        sio.load(tmp_path / "nope.safetensors")
    path = sio.save(net(), tmp_path / "w.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(sio.ModelFileError, match="cut.safetensors"):
        sio.load(tmp_path / "cut.safetensors")
    npz = sio.save(net(), tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(npz[: len(npz) // 2])
    with pytest.raises(sio.ModelFileError, match="cut.npz"):
        sio.load(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello world" * 10)
    with pytest.raises(sio.ModelFileError, match="not a zip archive"):
        sio.load(tmp_path / "junk.npz")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_npz_with_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("w.npy", "w") as f:
            np.lib.format.write_array(f, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(sio.ModelFileError, match="not a plain numeric array"):
        sio.load(path)
    assert not marker.exists()
    with np.load(path, allow_pickle=True) as f:  # control: with pickle allowed, the payload does run
        f["w"]
    assert marker.exists()
