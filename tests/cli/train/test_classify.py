"""`strided train | evaluate | predict` end to end on a small slice of Fashion-MNIST."""
import json
from pathlib import Path

import numpy as np
import pytest

from strided.cli import main
from strided.data.sources import FASHION_DIR

pytestmark = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists()
                                and not (FASHION_DIR / "train-images-idx3-ubyte").exists(),
                                reason="Fashion-MNIST not installed (strided data fetch fashion-mnist)")


def train(tmp_path, *extra):
    run = tmp_path / "run"
    code = main(["train", "--model", "lenet5", "--data", "fashion-mnist", "--epochs", "2", "--limit", "600",
                 "--batch-size", "32", "--out", str(run), "--no-progress", *extra])
    return code, run


def test_train_writes_a_complete_run(tmp_path, capsys):
    code, run = train(tmp_path)
    assert code == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "lenet5" and len(config["classes"]) == 10 and config["image_shape"] == [28, 28, 1]
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert 0.3 < metrics["test_accuracy"] <= 1.0      # 600 images, 2 epochs: far above chance (0.1)
    assert np.array(metrics["confusion"]).sum() == 10_000
    for name in ("curves.png", "confusion.png", "predictions.png", "checkpoints/best.safetensors",
                 "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name


def test_resume_extends_a_run(tmp_path, capsys):
    code, run = train(tmp_path)
    assert code == 0
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "at epoch 3" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]


def test_evaluate_and_predict(tmp_path, capsys):
    code, run = train(tmp_path)
    assert code == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{metrics['test_accuracy']:.2%}" in out    # evaluate reproduces the recorded test accuracy

    from PIL import Image
    from strided.data import load
    _, test = load("fashion-mnist")
    paths = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(test.images[i, ..., 0]).save(path)
        paths.append(str(path))
    assert main(["predict", str(run), *paths, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.count("%") == 2 for line in lines)
    assert all(any(c in line for c in test.classes) for line in lines)


def test_bad_inputs_are_named(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["train", "--model", "nope", "--data", "fashion-mnist", "--limit", "64",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "d"), "--no-progress"]) == 2
    assert "lenet5 takes 28x28 or 32x32 images, the data set has 8x8" in capsys.readouterr().err
    assert main(["train", "--epochs", "0", "--out", str(tmp_path / "e")]) == 2
    assert "--epochs must be >= 1, received 0" in capsys.readouterr().err
    code, run = train(tmp_path)
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["predict", str(run), str(tmp_path / "bad.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    Path(run / "checkpoints" / "best.safetensors").write_bytes(b"\x00" * 10)
    assert main(["evaluate", str(run)]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
