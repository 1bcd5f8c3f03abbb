"""The training loop: learning, checkpoints, exact resume, NaN handling, evaluation."""
import json

import numpy as np
import pytest

import strided as sd
from strided import nn, optim
from strided.checkpoint import CheckpointError, load_checkpoint, load_weights, save_weights
from strided.train import EarlyStopping, Trainer, TrainingDiverged, confusion_matrix, evaluate, predict


class TinyLoader:
    """Deterministic shuffled batches per (seed, epoch), like strided.data.DataLoader."""

    def __init__(self, x, y, batch_size=16, seed=0, on_batch=None):
        self.x, self.y, self.batch_size, self.seed, self.epoch = x, y, batch_size, seed, 0
        self.on_batch = on_batch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))
        for i, start in enumerate(range(0, len(order), self.batch_size)):
            idx = order[start:start + self.batch_size]
            if self.on_batch is not None:
                self.on_batch(self.epoch, i)
            yield self.x[idx], self.y[idx]


def blobs(n=128, seed=0):
    """Two classes of 4x4x1 images: bright top half vs bright bottom half, with noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 4, 4, 1)).astype(np.float32)
    x[y == 0, :2] += 1.0
    x[y == 1, 2:] += 1.0
    return x, y


def make_model(seed=0):
    sd.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                         nn.Flatten(), nn.Linear(64, 2))


def test_fit_learns_and_writes_run_dir(tmp_path):
    x, y = blobs()
    model = make_model()
    trainer = Trainer(model, optim.Adam(model.parameters(), 1e-2), run_dir=tmp_path, progress=False)
    history = trainer.fit(TinyLoader(x, y), epochs=4, val_loader=TinyLoader(*blobs(64, seed=1)))
    assert len(history) == 4 and history[-1]["val_accuracy"] > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    assert (tmp_path / "checkpoints" / "best.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "last.safetensors").is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in saved["history"]] == [1, 2, 3, 4]
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def make_optimizer(kind, params):
    return optim.SGD(params, 0.05, momentum=0.9) if kind == "sgd" else optim.Adam(params, 0.01)


def _train(run_dir, epochs, interrupt_at=None, kind="sgd"):
    x, y = blobs()
    model = make_model()
    opt = make_optimizer(kind, model.parameters())
    schedule = optim.StepLR(opt, step_size=1, gamma=0.5)
    trainer = Trainer(model, opt, run_dir=run_dir, schedule=schedule, progress=False)
    if interrupt_at is not None:
        def on_batch(epoch, i):
            if (epoch, i) == interrupt_at:
                trainer._interrupt = True   # what the Ctrl-C handler sets
        loader = TinyLoader(x, y, on_batch=on_batch)
    else:
        loader = TinyLoader(x, y)
    trainer.fit(loader, epochs)
    return trainer, model, loader


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_interrupt_then_resume_is_exact(tmp_path, kind):
    straight, model_a, _ = _train(tmp_path / "a", 3, kind=kind)
    stopped, _, loader = _train(tmp_path / "b", 3, interrupt_at=(1, 3), kind=kind)
    assert stopped.stop and stopped.stop_reason.startswith("interrupted")
    assert (stopped.epoch, stopped.batch_in_epoch) == (1, 4)  # stopped after batch 4 of epoch 2
    # a fresh process: new model with other weights, same config, resume from the checkpoint
    x, y = blobs()
    model_b = make_model(seed=123)
    opt = make_optimizer(kind, model_b.parameters())
    trainer = Trainer(model_b, opt, run_dir=tmp_path / "b", schedule=optim.StepLR(opt, 1, 0.5), progress=False)
    trainer.resume(tmp_path / "b" / "checkpoints" / "last.safetensors")
    assert (trainer.epoch, trainer.batch_in_epoch) == (1, 4)
    trainer.fit(TinyLoader(x, y), 3)
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, err_msg=name)
    assert opt.lr == straight.optimizer.lr


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    x, y = blobs()
    model = make_model()
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), run_dir=tmp_path, progress=False)
    trainer.fit(TinyLoader(x, y), 1)
    last = tmp_path / "checkpoints" / "last.safetensors"
    before = last.read_bytes()
    x_bad = x.copy()
    x_bad[:] = np.nan
    with pytest.raises(TrainingDiverged, match=r"loss became nan.*last good checkpoint is .*last\.safetensors"):
        trainer.fit(TinyLoader(x_bad, y), 2)
    assert last.read_bytes() == before


def test_early_stopping():
    x, y = blobs()
    model = make_model()
    trainer = Trainer(model, optim.SGD(model.parameters(), 1e-9), progress=False,
                      callbacks=[EarlyStopping("val_loss", patience=1, min_delta=1.0)])
    history = trainer.fit(TinyLoader(x, y), 10, val_loader=TinyLoader(x, y))
    assert len(history) == 2 and "early stopping" in trainer.stop_reason


def test_evaluate_and_confusion_matrix():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])

    class Fixed(nn.Module):
        def forward(self, x):   # predicts class 1 when the mean is positive
            m = x.reshape(x.shape[0], -1).mean(axis=1, keepdims=True)
            return sd.concat([-m, m], axis=1)

    x = np.array([1, -1, 2, -3], np.float32).reshape(4, 1, 1, 1)
    y = np.array([1, 0, 0, 0])
    result = evaluate(Fixed(), [(x, y)], num_classes=2)
    assert result["accuracy"] == 0.75
    np.testing.assert_array_equal(result["confusion"], [[2, 1], [0, 1]])
    probs = predict(Fixed(), x)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    assert list(probs.argmax(axis=1)) == [1, 0, 1, 0]


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = make_model()
    path = save_weights(model, tmp_path / "w.safetensors", meta={"note": "hi"})
    other = make_model(seed=5)
    assert load_weights(other, path) == {"note": "hi"}
    for (n, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=n)
    # truncated
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.safetensors")
    # not a safetensors file at all (e.g. a pickle): refused, never executed
    (tmp_path / "evil.safetensors").write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    # wrong architecture
    wrong = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(32, 2))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_weights(wrong, path)
