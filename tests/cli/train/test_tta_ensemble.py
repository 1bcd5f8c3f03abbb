"""strided evaluate/predict --tta/--ensemble and strided train --seeds on tiny runs (1 epoch, 300 images)."""
import re

import numpy as np
import pytest

from strided.cli import main
from strided.data.sources import FASHION_DIR

pytestmark = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists()
                                and not (FASHION_DIR / "train-images-idx3-ubyte").exists(),
                                reason="Fashion-MNIST not installed")


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "m"
    code = main(["train", "--seeds", "0,1", "--epochs", "1", "--limit", "300", "--no-progress", "--out", str(out)])
    assert code == 0
    return [out.parent / "m-seed0", out.parent / "m-seed1"]


def accuracy(text):
    return float(re.search(r"test accuracy ([0-9.]+)%", text).group(1)) / 100


def test_seeds_make_sibling_runs_that_differ_only_by_seed(seed_runs):
    import json
    configs = [json.loads((run / "config.json").read_text()) for run in seed_runs]
    assert [c["seed"] for c in configs] == [0, 1]
    assert {k: v for k, v in configs[0].items() if k != "seed"} == {k: v for k, v in configs[1].items()
                                                                     if k != "seed"}
    weights = [(run / "checkpoints" / "best.safetensors").read_bytes() for run in seed_runs]
    assert weights[0] != weights[1]


def test_evaluate_tta_and_ensemble(seed_runs, capsys):
    a, b = map(str, seed_runs)
    assert main(["evaluate", a]) == 0
    plain = capsys.readouterr().out
    assert main(["evaluate", a, "--tta", "none"]) == 0
    assert accuracy(capsys.readouterr().out) == accuracy(plain)
    assert main(["evaluate", a, "--tta", "10crop"]) == 0
    out = capsys.readouterr().out
    assert "10 forward passes per image" in out and 0.1 < accuracy(out) <= 1
    # an ensemble of a run with itself is that run
    assert main(["evaluate", a, a, "--ensemble"]) == 0
    assert accuracy(capsys.readouterr().out) == accuracy(plain)
    assert main(["evaluate", a, b, "--ensemble", "--weights", "1,3", "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2" in out and "[0.25, 0.75]" in out and "4 forward passes" in out


def test_bad_ensembles_are_refused(seed_runs, tmp_path, capsys):
    a, b = map(str, seed_runs)
    assert main(["evaluate", a, b]) == 2
    assert "add --ensemble" in capsys.readouterr().err
    assert main(["evaluate", a, b, "--ensemble", "--weights", "1,2,3"]) == 2
    assert "one weight per run expected (2 runs)" in capsys.readouterr().err
    assert main(["evaluate", a, "--weights", "1"]) == 2
    assert "--weights needs --ensemble" in capsys.readouterr().err
    assert main(["evaluate", a, "--sizes", "64"]) == 2
    assert "--sizes goes with a detection run" in capsys.readouterr().err
    assert main(["evaluate", a, "--merge", "wbf"]) == 2
    assert "--merge goes with a detection run" in capsys.readouterr().err
    other = tmp_path / "mnist"
    assert main(["train", "--data", "mnist-5k", "--epochs", "1", "--limit", "100", "--no-progress",
                 "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["evaluate", a, str(other), "--ensemble"]) == 2
    assert "differ in their classes" in capsys.readouterr().err
    assert main(["train", "--seeds", "0,1", "--epochs", "1"]) == 2
    assert "--seeds needs --out" in capsys.readouterr().err
    assert main(["train", "--seeds", "0,x", "--out", str(tmp_path / "z")]) == 2
    assert "--seeds expects comma-separated numbers" in capsys.readouterr().err


def test_predict_with_tta_and_ensemble(seed_runs, tmp_path, capsys):
    from PIL import Image
    a, b = map(str, seed_runs)
    image = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    paths = [tmp_path / "x.png", tmp_path / "big.png"]
    Image.fromarray(image).save(paths[0])
    Image.fromarray(np.kron(image, np.ones((3, 3), np.uint8))).save(paths[1])    # 84 x 84: resized to 32
    assert main(["predict", a, b, *map(str, paths), "--ensemble", "--tta", "10crop"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.count("%") == 3 for line in lines)
    assert main(["predict", a, str(paths[0]), "--tta", "none"]) == 0
    plain = capsys.readouterr().out
    assert main(["predict", a, str(paths[0]), "--tta", "flip"]) == 0
    assert capsys.readouterr().out.count("%") == plain.count("%") == 3


def test_predict_pretrained_with_tta(tmp_path, capsys):
    pytest.importorskip("skimage")
    from PIL import Image
    from skimage import data
    from strided.models.pretrained import pretrained_weights_path
    try:
        pretrained_weights_path("efficientnet_lite0")
    except Exception:
        pytest.skip("pretrained weights not installed")
    path = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    assert main(["predict", "--model", "efficientnet_lite0", "--pretrained", str(path), "--tta", "flip",
                 "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "resized to 256, crops of 224" in out
    assert re.search(r"chelsea.png: (tabby|tiger cat|Egyptian cat|Persian cat|Siamese cat)", out), out
