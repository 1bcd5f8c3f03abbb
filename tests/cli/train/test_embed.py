"""``strided train --task embed``: metric learning runs end to end on a few Fashion-MNIST images
(tiny sizes), resumed exactly, with the held-out classes' report; and the bad options."""
import json

import numpy as np
import pytest

from strided.cli import main
from strided.data.sources import FASHION_DIR

HAS_FASHION = any((FASHION_DIR / f"train-images-idx3-ubyte{suffix}").exists() for suffix in ("", ".gz"))
needs_fashion = pytest.mark.skipif(not HAS_FASHION, reason="Fashion-MNIST not installed (strided data fetch fashion-mnist)")
TINY = ["--data", "fashion-mnist", "--limit", "320", "--p", "3", "--k", "4", "--embedding-dim", "8",
        "--eval-images", "300", "--no-progress"]


def weights(run):
    from strided.checkpoint import load_checkpoint
    arrays, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    return {k: v for k, v in arrays.items() if k.startswith("model/")}, meta


@needs_fashion
def test_triplet_run_reports_on_held_out_classes(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--loss", "triplet", "--epochs", "1", "--out", str(run), *TINY]) == 0
    out = capsys.readouterr().out
    assert "held out: Sandal, Shirt, Sneaker, Bag, Ankle boot" in out and "5-way 1-shot accuracy" in out
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "embed" and config["loss"] == "triplet" and config["mining"] == "semi-hard"
    assert config["unseen_classes"] == ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    report = json.loads((run / "metrics.json").read_text())["held_out"]
    assert report["images"] == 300 and report["n_way"] == 5
    assert 0.0 <= report["one_shot_accuracy"] <= 1.0 and 0.0 <= report["eer"] <= 1.0
    assert set(report["tar_at_far"]) == {"0.01", "0.001"}
    # the report is what the best checkpoint's embeddings of those test images give
    from strided.checkpoint import load_weights
    from strided.data import load
    from strided.face.embedding import EmbeddingNet, embed_images
    from strided.face.evaluation import pair_distances, roc_auc
    from strided.models import create
    net = EmbeddingNet(create("lenet5", num_classes=8, in_channels=1, input_size=28))
    load_weights(net, run / "checkpoints" / "best.safetensors")
    _, test = load("fashion-mnist")
    held = np.flatnonzero(test.labels >= 5)
    keep = np.sort(np.random.default_rng(0).choice(len(held), 300, replace=False))
    images, labels = test.get_batch(held[keep])
    e = embed_images(net, images)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    assert report["auc"] == pytest.approx(roc_auc(*pair_distances(e, labels)), abs=1e-6)


@needs_fashion
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    argv = ["train", "--task", "embed", "--loss", "contrastive", *TINY]
    assert main([*argv, "--epochs", "2", "--out", str(straight)]) == 0
    assert main([*argv, "--epochs", "1", "--out", str(resumed)]) == 0
    assert main(["train", "--resume", str(resumed), "--epochs", "2", "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    a, meta_a = weights(straight)
    b, meta_b = weights(resumed)
    assert meta_a["epoch"] == meta_b["epoch"] == 2 and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@needs_fashion
def test_siamese_head_is_trained_and_checkpointed(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--loss", "siamese", "--epochs", "1", "--unseen", "3",
                 "--out", str(run), *TINY]) == 0
    arrays, _ = weights(run)
    assert {"model/head.linear.weight", "model/head.linear.bias"} <= set(arrays)
    report = json.loads((run / "metrics.json").read_text())["held_out"]
    assert report["classes"] == ["Sneaker", "Bag", "Ankle boot"] and report["n_way"] == 3


@needs_fashion
@pytest.mark.parametrize("extra, message", [
    (["--unseen", "9"], "--unseen must leave at least 2 classes"),
    (["--loss", "siamese", "--margin", "0.5"], "--margin applies to the triplet and contrastive"),
    (["--k", "1"], "--k must be >= 2"),
    (["--pretrained"], "--task embed trains from scratch"),
])
def test_bad_options_are_usage_errors(tmp_path, capsys, extra, message):
    code = main(["train", "--task", "embed", "--epochs", "1", "--out", str(tmp_path / "r"), *TINY, *extra])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()


@needs_fashion
def test_resume_refuses_new_settings(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--epochs", "1", "--out", str(run), *TINY]) == 0
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    code = main(["train", "--resume", str(run), "--loss", "siamese"])
    assert code == 2 and "--loss cannot change on resume" in capsys.readouterr().err
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before


@needs_fashion
def test_evaluate_and_predict_say_an_embedding_run_is_not_a_classifier(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--epochs", "1", "--out", str(run), *TINY]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert "is an embedding run (--task embed)" in capsys.readouterr().err
    from PIL import Image
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(run), str(tmp_path / "x.png")]) == 2
    assert "metrics.json" in capsys.readouterr().err
