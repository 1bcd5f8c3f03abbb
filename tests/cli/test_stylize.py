"""`strided stylize` on tiny images (seconds): files written, JSON, style weights, frames and GIF,
clear errors for unreadable images, unknown layers and weight files that do not fit."""
import json

import numpy as np
import pytest
from PIL import Image

from strided.cli import main
from strided.cli.stylize import parse_layer_list, parse_style_arg
from strided.models.vgg import CONFIGS

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("stylize")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.uniform(0, 1, (30, 40, 3)) * 255).astype(np.uint8)).save(d / "content.png")
    stripes = np.tile(np.array([[[250, 30, 30]], [[20, 20, 240]]], dtype=np.uint8), (10, 30, 1))
    Image.fromarray(stripes).save(d / "style.png")
    Image.fromarray(stripes[..., ::-1].copy()).save(d / "style2.png")
    # a torchvision-layout VGG-16 state dict with random weights
    state, index, c = {}, 0, 3
    for v in CONFIGS[16]:
        if v == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(v, c, 3, 3) * (2.0 / (9 * c)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(v)
        index, c = index + 2, v
    torch.save(state, d / "vgg16.pth")
    return d


def run(images, *extra):
    return main(["stylize", str(images / "content.png"), str(images / "style.png"), "--backbone",
                 str(images / "vgg16.pth"), "--size", "24", "--steps", "3", "--no-progress", *extra])


def test_writes_the_picture_and_json(images, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert run(images, "-o", str(out), "--json", "--style-layers", "relu1_1,relu2_1",
               "--content-layers", "relu2_2") == 0
    report = json.loads(capsys.readouterr().out)
    with Image.open(out) as im:
        assert im.size == (24, 18) and im.mode == "RGB"
    assert report["output"] == str(out) and (report["width"], report["height"]) == (24, 18)
    assert report["settings"]["style_layers"] == [["relu1_1", 0.5], ["relu2_1", 0.5]]
    assert report["costs"]["total"] > 0 and report["evaluations"] >= 3


def test_several_styles_frames_and_gif(images, tmp_path, capsys):
    out, gif = tmp_path / "o.png", tmp_path / "p.gif"
    assert main(["stylize", str(images / "content.png"), f"{images / 'style.png'}:3", f"{images / 'style2.png'}:1",
                 "--backbone", str(images / "vgg16.pth"), "--size", "24", "--steps", "4", "--optimizer", "adam",
                 "--frames", "2", "--gif", str(gif), "--style-layers", "relu1_1", "--content-layers", "relu1_2",
                 "--no-progress", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["style_blend"] == [0.75, 0.25]
    assert sorted(p.name for p in tmp_path.glob("o-*.png")) == ["o-0000.png", "o-0002.png", "o-0004.png"]
    with Image.open(gif) as im:
        assert im.n_frames == 3


def test_existing_output_is_replaced_like_edges(images, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    assert run(images, "-o", str(out), "--style-layers", "relu1_1", "--content-layers", "relu1_1") == 0
    with Image.open(out) as im:
        assert im.size == (24, 18)


@pytest.mark.parametrize("args, message", [
    (["--style-layers", "relu9_9"], "unknown layer 'relu9_9'"),
    (["--content-layers", "relu1_1:x"], "layer weight must be a number"),
    (["--size", "2"], "--size must be >= 16"),
], ids=["layer", "weight", "size"])
def test_bad_options(images, tmp_path, capsys, args, message):
    assert run(images, "-o", str(tmp_path / "x.png"), *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("strided: error:") and message in err and "Traceback" not in err


def test_bad_files(images, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["stylize", str(tmp_path / "broken.png"), str(images / "style.png"), "-o",
                 str(tmp_path / "x.png")]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert main(["stylize", str(images / "content.png"), str(tmp_path / "missing.jpg"), "-o",
                 str(tmp_path / "x.png")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    assert main(["stylize", str(images / "content.png"), str(images / "style.png"), "--backbone",
                 str(tmp_path / "other.pth"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "strided: error: --backbone" in err and "do not fit a VGG" in err
    assert not (tmp_path / "x.png").exists()


def test_parsers(tmp_path):
    assert parse_style_arg("a.jpg:2.5") == (tmp_path.__class__("a.jpg"), 2.5)
    assert parse_style_arg("a.jpg") == (tmp_path.__class__("a.jpg"), 1.0)
    odd = tmp_path / "b:3"
    odd.write_bytes(b"")
    assert parse_style_arg(str(odd)) == (odd, 1.0)          # a file whose name has a colon
    assert parse_layer_list("relu1_1,relu2_1") == [("relu1_1", 0.5), ("relu2_1", 0.5)]
    assert parse_layer_list("relu1_1:0.2,relu2_1:0.8") == [("relu1_1", 0.2), ("relu2_1", 0.8)]


def test_default_backbone_offline(images, tmp_path):
    pytest.importorskip("easyocr_en_models")
    out = tmp_path / "d.png"
    assert main(["stylize", str(images / "content.png"), str(images / "style.png"), "--size", "32", "--steps",
                 "2", "--no-progress", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (32, 24)
