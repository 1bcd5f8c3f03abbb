"""strided.fileio: atomic writes that never leave a half-written file or a hidden full-size
temporary behind (issue 7, B4), and strict JSON."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import strided.io
from strided.fileio import TMP_MARK, atomic_write, atomic_write_json, atomic_write_text, temp_name_prefix

SRC = str(Path(__file__).resolve().parents[1] / "src")


def temporaries(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if TMP_MARK in p.name)


def test_temporary_is_hidden_beside_the_target_and_named_for_it(tmp_path):
    seen = []

    def write(tmp):
        seen.append(Path(tmp))
        Path(tmp).write_text("new")

    atomic_write(tmp_path / "sub" / "model.npz", write)
    assert seen[0].parent == tmp_path / "sub"
    assert temp_name_prefix(tmp_path / "model.npz") == ".model.npz.strided-tmp-"
    assert seen[0].name.startswith(".model.npz.strided-tmp-")
    pid, token = seen[0].name[len(".model.npz.strided-tmp-"):].split("-")
    assert int(pid) == os.getpid() and len(token) == 8
    assert (tmp_path / "sub" / "model.npz").read_text() == "new"
    assert temporaries(tmp_path / "sub") == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_an_exception_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "weights.safetensors"
    target.write_text("old contents")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"\0" * 100_000)          # half a file ...
        raise error                           # ... then the disk fills / the user presses Ctrl-C

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert target.read_text() == "old contents"
    assert temporaries(tmp_path) == []


def test_an_exception_before_anything_is_written_leaves_nothing(tmp_path):
    def write(tmp):
        raise ValueError("nothing to write")

    with pytest.raises(ValueError):
        atomic_write(tmp_path / "new.json", write)
    assert list(tmp_path.iterdir()) == []


SAVER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import strided.io
    write_array = np.lib.format.write_array

    def slow_write_array(*args, **kwargs):    # a slow disk: the kill lands mid-write
        write_array(*args, **kwargs)
        time.sleep(0.05)

    np.lib.format.write_array = slow_write_array
    state = {f"layer{i}.weight": np.zeros(1_250_000, np.float32) for i in range(40)}   # 200 MB
    strided.io.save(state, sys.argv[1])
""")


def test_kill_9_mid_save_leaves_a_stale_temporary_that_the_next_save_removes(tmp_path):
    target = tmp_path / "big.npz"
    strided.io.save({"w": np.ones(3, np.float32)}, target)          # the previous version
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:             # wait until the temporary holds 20 MB
            found = [p for p in tmp_path.iterdir() if TMP_MARK in p.name]
            if found and found[0].stat().st_size > 20_000_000:
                break
            assert saver.poll() is None, "the saving process ended before it could be killed"
            time.sleep(0.01)
        else:
            pytest.fail("no temporary file appeared within 60 s")
        os.kill(saver.pid, signal.SIGKILL)
    finally:
        saver.kill()
        saver.wait()
    stale = temporaries(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(f".big.npz.strided-tmp-{saver.pid}-")
    assert (tmp_path / stale[0]).stat().st_size > 20_000_000
    np.testing.assert_array_equal(strided.io.load(target)["w"], np.ones(3, np.float32))   # old file intact

    strided.io.save({"w": np.full(3, 2.0, np.float32)}, target)     # the next save cleans up
    assert temporaries(tmp_path) == []
    np.testing.assert_array_equal(strided.io.load(target)["w"], np.full(3, 2.0, np.float32))


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    target = tmp_path / "model.safetensors"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f"{temp_name_prefix(target)}{writer.pid}-0123abcd"
        live.write_bytes(b"being written")
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale = tmp_path / f"{temp_name_prefix(target)}{dead.pid}-89abcdef"
        stale.write_bytes(b"left by a killed writer")
        other = tmp_path / f"{temp_name_prefix('other.safetensors')}{dead.pid}-00000000"
        other.write_bytes(b"another target's temporary")
        atomic_write_text(target, "saved")
        assert live.exists() and not stale.exists() and other.exists()
        assert target.read_text() == "saved"
    finally:
        writer.kill()
        writer.wait()


def test_a_save_inside_a_save_keeps_the_outer_temporary(tmp_path):
    """This process's own temporary that is still being written (another thread, or here a
    nested save of the same target) is not stale; a left-over one of this pid is."""
    target = tmp_path / "run.json"
    leftover = tmp_path / f"{temp_name_prefix(target)}{os.getpid()}-deadbeef"
    leftover.write_text("left over")

    def outer(tmp):
        Path(tmp).write_text("outer")
        atomic_write_text(target, "inner")                  # removes the leftover, not `tmp`
        assert Path(tmp).exists() and not leftover.exists()

    atomic_write(target, outer)
    assert target.read_text() == "outer"
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_strict_json_refuses_non_finite_numbers_and_writes_nothing(tmp_path, bad):
    target = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="JSON"):
        atomic_write_json(target, {"loss": [0.5, bad]})
    assert list(tmp_path.iterdir()) == []


def test_strict_json_round_trips(tmp_path):
    data = {"loss": [0.5, 0.25], "name": "lenet5", "best": None}
    atomic_write_json(tmp_path / "m.json", data)
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}")) == data
