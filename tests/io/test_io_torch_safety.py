"""read_torch never runs code from a file (malicious pickles raise UnsafeModelFile and
leave no trace), and damaged files raise ModelFileError naming the file and the problem."""
import os
import pickle
import zipfile

import numpy as np
import pytest

from strided.io import ModelFileError, UnsafeModelFile, read_torch
from strided.io.pytorch import MAGIC_NUMBER, PROTOCOL_VERSION

torch = pytest.importorskip("torch")


class SystemCall:
    """Unpickling this calls os.system(command)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class Eval:
    """Unpickling this calls builtins.eval(source)."""

    def __init__(self, source):
        self.source = source

    def __reduce__(self):
        return eval, (self.source,)


def payloads(marker):
    return {"os.system": SystemCall(f"touch {marker}"),
            "builtins.eval": Eval(f"open({str(marker)!r}, 'w').close()")}


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
def test_payload_is_live_under_plain_pickle(tmp_path, kind):
    """Control: the same bytes do run code under pickle.loads, so the tests below mean something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(payloads(marker)[kind], protocol=2))
    assert marker.exists()


def legacy_bytes(obj_pickle):
    return (pickle.dumps(MAGIC_NUMBER, protocol=2) + pickle.dumps(PROTOCOL_VERSION, protocol=2)
            + pickle.dumps({"protocol_version": PROTOCOL_VERSION, "little_endian": True}, protocol=2)
            + obj_pickle + pickle.dumps([], protocol=2))


def zip_with_pickle(tmp_path, name, obj_pickle):
    src = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, src)
    dst = tmp_path / name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for entry in zin.namelist():
            zout.writestr(entry, obj_pickle if entry.endswith("data.pkl") else zin.read(entry))
    return dst


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
@pytest.mark.parametrize("container", ["zip", "legacy", "bare pickle", "inside a state dict"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, kind, container):
    marker = tmp_path / "pwned"
    payload = payloads(marker)[kind]
    evil = pickle.dumps({"w": payload}, protocol=2)
    if container == "zip":
        path = zip_with_pickle(tmp_path, "evil.pt", evil)
    elif container == "legacy":
        path = tmp_path / "evil.pt"
        path.write_bytes(legacy_bytes(evil))
    elif container == "bare pickle":
        path = tmp_path / "evil.pkl"
        path.write_bytes(evil)
    else:  # torch.save itself pickles the payload next to real tensors
        path = tmp_path / "evil.pt"
        torch.save({"conv.weight": torch.ones(2, 2), "extra": payload}, path)
    with pytest.raises(UnsafeModelFile) as info:
        read_torch(path)
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message and ("posix.system" in message or "builtins.eval" in message)


def test_whole_model_pickle_is_refused_with_advice(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafeModelFile, match=r"state_dict\(\)"):
        read_torch(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_is_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(ModelFileError, match="TorchScript"):
        read_torch(path)


# ----------------------------------------------------------------------------- damaged files
@pytest.fixture
def good_files(tmp_path):
    tensors = {"a": torch.randn(64, 8), "b": torch.arange(100)}
    zip_path, legacy_path = tmp_path / "good_zip.pt", tmp_path / "good_legacy.pt"
    torch.save(tensors, zip_path)
    torch.save(tensors, legacy_path, _use_new_zipfile_serialization=False)
    return zip_path, legacy_path


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_truncated_files(tmp_path, good_files, layout, fraction):
    data = good_files[layout == "legacy"].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError, match="cut.pt") as info:
        read_torch(path)
    assert type(info.value) is ModelFileError  # damaged, not "unsafe"
    assert any(word in str(info.value) for word in ("truncated", "damaged", "corrupt"))


def test_short_storage_record_in_zip(tmp_path, good_files):
    path = tmp_path / "short.pt"
    with zipfile.ZipFile(good_files[0]) as zin, zipfile.ZipFile(path, "w") as zout:
        for entry in zin.namelist():
            data = zin.read(entry)
            zout.writestr(entry, data[:100] if entry.endswith("/data/0") else data)
    with pytest.raises(ModelFileError, match=r"storage '0' holds 100 bytes.*need 2048"):
        read_torch(path)


def test_missing_storage_record_in_zip(tmp_path, good_files):
    path = tmp_path / "missing.pt"
    with zipfile.ZipFile(good_files[0]) as zin, zipfile.ZipFile(path, "w") as zout:
        for entry in zin.namelist():
            if not entry.endswith("/data/1"):
                zout.writestr(entry, zin.read(entry))
    with pytest.raises(ModelFileError, match=r"no record 'good_zip/data/1'"):
        read_torch(path)


def test_view_outside_its_storage(tmp_path):
    src = tmp_path / "ok.pt"
    torch.save({"w": torch.arange(6.0).view(2, 3)}, src)
    path = tmp_path / "bad_view.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for entry in zin.namelist():
            data = zin.read(entry)
            if entry.endswith("data.pkl"):
                assert data.count(b"K\x02K\x03\x86") == 1  # the size tuple (2, 3)
                data = data.replace(b"K\x02K\x03\x86", b"K\x02K\x09\x86")  # claim (2, 9): past the 6 elements
            zout.writestr(entry, data)
    with pytest.raises(ModelFileError, match=r"reaches element 11 of storage '0', which has 6"):
        read_torch(path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"hello, not a checkpoint\n" * 20,
                                     b"PK\x03\x04 broken zip", pickle.dumps({"a": 1})],
                         ids=["empty", "zeros", "text", "broken zip", "plain pickle"])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="junk.pt"):
        read_torch(path)


def test_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(ModelFileError, match="data.pkl"):
        read_torch(path)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_randomly_damaged_files_fail_cleanly(tmp_path, good_files, layout):
    """300 files with 1-3 random bytes changed (every 5th also cut short): each one either
    reads or raises ModelFileError / UnsafeModelFile -- never another exception."""
    import numpy as np
    data = good_files[layout == "legacy"].read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "damaged.pt"
    outcomes = set()
    for trial in range(300):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), rng.integers(1, 4)):
            damaged[position] = rng.integers(0, 256)
        if trial % 5 == 0:
            damaged = damaged[: rng.integers(1, len(damaged))]
        path.write_bytes(bytes(damaged))
        try:
            read_torch(path)
            outcomes.add("read")
        except ModelFileError as exc:  # UnsafeModelFile included
            outcomes.add(type(exc).__name__)
    assert "ModelFileError" in outcomes


# ----------------------------------------------------------------------------- memory in proportion to the file
def expanded_file(tmp_path, name, size, stride=None):
    """A tiny .pth whose tensor "w" claims ``size`` elements, all views of ONE stored float
    (stride 0: torch.save keeps the view as it is)."""
    path = tmp_path / name
    t = torch.ones(1).expand(*size) if stride is None else torch.ones(1).as_strided(size, stride)
    torch.save({"w": t}, path)
    return path


def test_stride_0_tensor_claiming_far_more_than_the_file_is_refused_without_allocating(tmp_path):
    import tracemalloc

    path = expanded_file(tmp_path, "claims_64mb.pth", (4096, 4096))     # 64 MiB of float32 from 4 bytes
    assert path.stat().st_size < 2000
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"claims_64mb\.pth.*tensor obj\['w'\].*size \(4096, 4096\), "
                                                 r"stride \(0, 0\).*16777216 elements.*storage of 1 element"):
            read_torch(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"reading a {path.stat().st_size}-byte file took {peak} bytes"


@pytest.mark.parametrize("size", [(65536, 65536), (2 ** 20, 2 ** 20, 2 ** 20)], ids=["16 GiB", "4 EiB"])
def test_enormous_claims_are_a_model_file_error_not_a_memory_error(tmp_path, size):
    path = expanded_file(tmp_path, "huge.pth", size, stride=(0,) * len(size))
    with pytest.raises(ModelFileError, match=r"huge\.pth.*obj\['w'\].*out of proportion"):
        read_torch(path)


def test_a_modest_expanded_tensor_is_still_read_as_torch_reads_it(tmp_path):
    path = tmp_path / "expanded.pth"
    t = torch.arange(3.0).expand(4, 3)
    torch.save({"w": t, "b": torch.ones(2)}, path)
    state = read_torch(path)
    np.testing.assert_array_equal(state["w"], torch.load(path)["w"].numpy())
    assert state["w"].shape == (4, 3)


def test_a_compressed_record_that_expands_beyond_the_file_is_refused(tmp_path, good_files):
    """A deflated storage record of 64 MiB of zeros is ~64 KB in the file: reading it would take
    ~1000 times the file's size."""
    src = tmp_path / "big_src.pt"
    torch.save({"w": torch.zeros(16 << 20)}, src)                      # 64 MiB, stored uncompressed
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for entry in zin.namelist():
            zout.writestr(entry, zin.read(entry))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ModelFileError, match=r"bomb\.pt.*record '.*data/0' expands to 67108864 bytes"):
        read_torch(path)
    # the same archive, compressed, with a modest tensor still reads
    ok = tmp_path / "deflated_ok.pt"
    with zipfile.ZipFile(good_files[0]) as zin, zipfile.ZipFile(ok, "w", zipfile.ZIP_DEFLATED) as zout:
        for entry in zin.namelist():
            zout.writestr(entry, zin.read(entry))
    assert read_torch(ok).keys() == read_torch(good_files[0]).keys()
