"""``strided models list | fetch face-api`` (npm faked: nothing is installed by the tests)."""
import subprocess
from pathlib import Path

import pytest

from strided.cli import main
from strided.models import faceapi, list_models


def test_list_names_every_model_and_the_detectors(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PRETRAINED", "WEIGHTS"]
    rows = {line.split()[0]: line for line in lines[1:len(list_models()) + 1]}
    assert list(rows) == list_models() and "yolo_tiny" in rows and "lenet5" in rows
    assert "ImageNet" in rows["efficientnet_lite0"] and rows["lenet5"].split()[1] == "-"
    text = "\n".join(lines)
    assert "tiny-face" in text and "--darknet" in text and "strided train --task detect" in text


@pytest.fixture
def fake_npm(monkeypatch, tmp_path):
    """npm replaced: records the command and creates the package's model folder as npm would."""
    calls = []

    def run(command, *args, **kwargs):
        calls.append(list(command))
        prefix = Path(command[command.index("--prefix") + 1])
        model = prefix / faceapi.PACKAGE_MODEL_DIR
        model.mkdir(parents=True)
        (model / faceapi.MARKER).write_text("[]")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(faceapi.subprocess, "run", run)
    monkeypatch.setattr(faceapi.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(faceapi, "default_faceapi_prefix", lambda: tmp_path / "prefix")
    monkeypatch.setattr(faceapi, "faceapi_search_paths",
                        lambda include_global=True: [tmp_path / "prefix" / faceapi.PACKAGE_MODEL_DIR])
    return calls


def test_fetch_face_api_runs_npm_once_then_is_a_no_op(fake_npm, tmp_path, capsys):
    assert main(["models", "fetch", "face-api"]) == 0
    assert fake_npm == [["/usr/bin/npm", "install", "--prefix", str(tmp_path / "prefix"),
                         f"{faceapi.FACEAPI_PACKAGE}@{faceapi.FACEAPI_VERSION}"]]
    assert "face-api: ready at" in capsys.readouterr().out
    assert main(["models", "fetch", "face-api"]) == 0             # installed: npm is not run again
    assert len(fake_npm) == 1
    assert "already installed" in capsys.readouterr().out


def test_fetch_face_api_without_npm_says_so(fake_npm, monkeypatch, capsys):
    monkeypatch.setattr(faceapi.shutil, "which", lambda name: None)
    assert main(["models", "fetch", "face-api"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("strided: error: face-api: npm is needed") and "apt install npm" in err
    assert fake_npm == []


def test_fetch_unknown_name(capsys):
    assert main(["models", "fetch", "yolov3"]) == 2
    err = capsys.readouterr().err
    assert "unknown model files 'yolov3'" in err and "face-api" in err and "strided data fetch darknet" in err
