"""read_torch: torch.save files (zip and legacy layouts) read without torch, checked against
the tensors torch saved: dtypes, views sharing a storage, strides and offsets, wrappers."""
import io
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from strided.io import ModelFileError, read_torch

torch = pytest.importorskip("torch")

LAYOUTS = {"zip": True, "legacy": False}


def save(obj, path, layout):
    torch.save(obj, path, _use_new_zipfile_serialization=LAYOUTS[layout])
    return path


def reference(t):
    return t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()


def assert_same(state, tensors):
    assert list(state) == list(tensors)
    for name, t in tensors.items():
        ref = reference(t)
        assert state[name].dtype == ref.dtype, (name, state[name].dtype, ref.dtype)
        assert state[name].shape == ref.shape, (name, state[name].shape, ref.shape)
        np.testing.assert_array_equal(state[name], ref, err_msg=name)


def all_dtypes():
    g = torch.Generator().manual_seed(0)
    return OrderedDict([
        ("f32", torch.randn(2, 3, generator=g)),
        ("f16", torch.randn(4, generator=g).half()),
        ("f64", torch.randn(2, 2, generator=g, dtype=torch.float64)),
        ("bf16", torch.tensor([1.5, -2.0, 3.25, 1e-3], dtype=torch.bfloat16)),
        ("i64", torch.tensor([-(1 << 40), 7])),
        ("i32", torch.tensor([-5, 6], dtype=torch.int32)),
        ("i8", torch.tensor([-128, 127], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(3.5)),
        ("empty", torch.zeros(0, 3)),
    ])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dtypes(tmp_path, layout):
    tensors = all_dtypes()
    state = read_torch(save(tensors, tmp_path / "dtypes.pt", layout))
    assert_same(state, tensors)
    assert state["bf16"].dtype == np.float32 and state["f16"].dtype == np.float16


@pytest.mark.parametrize("layout", LAYOUTS)
def test_views_strides_and_offsets_of_a_shared_storage(tmp_path, layout):
    base = torch.arange(24, dtype=torch.float32)
    tensors = OrderedDict([
        ("base", base),
        ("offset", base[5:15].view(2, 5)),               # storage offset 5
        ("transposed", base[:12].view(3, 4).t()),        # strides (1, 4)
        ("every_other", base[1::2]),                      # stride 2, offset 1
        ("column", base.view(4, 6)[:, 2]),                # stride 6, offset 2
    ])
    assert tensors["transposed"].stride() == (1, 4)
    state = read_torch(save(tensors, tmp_path / "views.pt", layout))
    assert_same(state, tensors)
    state["offset"][0, 0] = -1  # arrays are copies, not views of each other
    assert state["base"][5] == 5


@pytest.mark.parametrize("layout", LAYOUTS)
def test_module_state_dict_and_parameters(tmp_path, layout):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    state = read_torch(save(model.state_dict(), tmp_path / "model.pt", layout))
    assert_same(state, model.state_dict())
    assert state["1.num_batches_tracked"].dtype == np.int64
    params = OrderedDict(model.named_parameters())  # nn.Parameter objects, not plain tensors
    assert_same(read_torch(save(params, tmp_path / "params.pt", layout)), params)


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_state_dict_found_inside_training_checkpoints(tmp_path, wrapper):
    model = torch.nn.Linear(3, 2)
    checkpoint = {"epoch": 7, wrapper: model.state_dict(), "best_acc": 0.9,
                  "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
    state = read_torch(save(checkpoint, tmp_path / "ckpt.pt", "zip"))
    assert_same(state, model.state_dict())


def test_nested_dicts_flatten_and_key_selects(tmp_path):
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    obj = {"generator": a.state_dict(), "discriminator": b.state_dict(), "step": 3}
    path = save(obj, tmp_path / "gan.pt", "zip")
    flat = read_torch(path)
    assert list(flat) == ["generator.weight", "generator.bias", "discriminator.weight", "discriminator.bias"]
    assert_same(read_torch(path, key="discriminator"), b.state_dict())
    with pytest.raises(KeyError, match="'critic'"):
        read_torch(path, key="critic")


def test_numpy_values_in_a_checkpoint_are_read_safely(tmp_path):
    obj = {"w": torch.ones(2), "mean": np.arange(3, dtype=np.float64), "acc": np.float32(0.5)}
    state = read_torch(save(obj, tmp_path / "np.pt", "zip"))
    assert list(state) == ["w", "mean"]  # the numpy scalar is not a tensor
    np.testing.assert_array_equal(state["mean"], np.arange(3.0))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_plain_python_values_beside_tensors(tmp_path, layout):
    """Protocol-2 pickles spell sets and bytes as __builtin__.set and _codecs.encode: allowed, inert."""
    obj = {"w": torch.ones(2), "tags": {"x", "y"}, "blob": b"\x00\xff", "device": torch.device("cpu"),
           "size": torch.Size([2, 3]), "name": "lenet", "lr": 0.1, "nothing": None}
    state = read_torch(save(obj, tmp_path / "misc.pt", layout))
    assert list(state) == ["w"] and state["w"].tolist() == [1.0, 1.0]


def rewrite_zip(src, dst, transform):
    """Copy a zip archive entry by entry through ``transform(name, data) -> (name, data)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            name2, data2 = transform(name, zin.read(name))
            zout.writestr(name2, data2)
    return dst


def test_any_top_level_folder_name(tmp_path):
    tensors = {"w": torch.arange(6.0).view(2, 3)}
    src = save(tensors, tmp_path / "some.name.pt", "zip")
    assert zipfile.ZipFile(src).namelist()[0].startswith("some.name/")
    dst = rewrite_zip(src, tmp_path / "renamed.pt", lambda n, d: ("my_model/" + n.split("/", 1)[1], d))
    assert_same(read_torch(dst), tensors)


def test_big_endian_byteorder_record(tmp_path):
    tensors = OrderedDict([("w", torch.randn(3, 2)), ("n", torch.tensor([1, -2], dtype=torch.int64))])
    src = save(tensors, tmp_path / "little.pt", "zip")
    dtypes = {"0": "<f4", "1": "<i8"}

    def swap(name, data):
        if name.endswith("/byteorder"):
            return name, b"big"
        key = name.rsplit("/", 1)[-1]
        if "/data/" in name and key in dtypes:
            return name, np.frombuffer(data, dtypes[key]).byteswap().tobytes()
        return name, data
    assert sys.byteorder == "little"
    assert_same(read_torch(rewrite_zip(src, tmp_path / "big.pt", swap)), tensors)


def test_zip_layout_is_what_the_reader_expects(tmp_path):
    names = zipfile.ZipFile(save({"w": torch.ones(1)}, tmp_path / "a.pt", "zip")).namelist()
    assert {"a/data.pkl", "a/byteorder", "a/data/0"} <= set(names)
    head = (tmp_path / "b.pt")
    save({"w": torch.ones(1)}, head, "legacy")
    assert head.read_bytes()[:2] == b"\x80\x02"  # legacy: a stream of protocol-2 pickles


def test_torch_was_not_needed(tmp_path):
    """strided.io imports no torch: run read_torch in a fresh interpreter without it."""
    import subprocess
    path = save({"w": torch.arange(4.0)}, tmp_path / "w.pt", "zip")
    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' would now fail
            "from strided.io import read_torch; print(read_torch(sys.argv[1])['w'].tolist())")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0.0, 1.0, 2.0, 3.0]"


def test_buffer_roundtrip_in_memory(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    (tmp_path / "mem.pt").write_bytes(buffer.getvalue())
    assert read_torch(tmp_path / "mem.pt")["w"].tolist() == [1.0, 1.0]


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_torch(tmp_path / "nope.pt")
