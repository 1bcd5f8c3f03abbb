"""The training loop: learning, checkpoints, exact resume, NaN handling, evaluation."""
import json

import numpy as np
import pytest

import strided as sd
from strided import nn, optim
from strided.checkpoint import CheckpointError, load_checkpoint, load_weights, save_weights
from strided.data import ArrayDataset, DataLoader
from strided.data.loader import default_collate
from strided.train import (Accuracy, EarlyStopping, Metric, Monitor, Trainer, TrainingDiverged, confusion_matrix,
                           evaluate, predict, validate)


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
                trainer.request_stop()   # what the Ctrl-C handler does
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
    # the interrupted epoch logs what an uninterrupted run logs (its partial sums were in the checkpoint)
    logged = [{k: h[k] for k in ("epoch", "loss", "accuracy", "lr")} for h in trainer.history]
    assert logged == [{k: h[k] for k in ("epoch", "loss", "accuracy", "lr")} for h in straight.history]
    saved = json.loads((tmp_path / "b" / "metrics.json").read_text())["history"]
    assert [(h["loss"], h["accuracy"]) for h in saved] == [(h["loss"], h["accuracy"]) for h in straight.history]


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


def strict_json(path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name} in {path}")
    return json.loads(path.read_text(), parse_constant=refuse)


def deep_mlp(depth=6, seed=0):
    """No normalisation: at a huge learning rate the activations overflow float32 within a few steps."""
    sd.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(16, 16), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(16, 16), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(16, 2))


def test_adam_at_lr_1e6_stops_with_a_clear_error_and_strict_json(tmp_path):
    x, y = blobs()
    model = deep_mlp()
    trainer = Trainer(model, optim.Adam(model.parameters(), 1e-2), run_dir=tmp_path, progress=False)
    trainer.fit(TinyLoader(x, y), 1, val_loader=TinyLoader(*blobs(64, seed=1)))
    last, best = tmp_path / "checkpoints" / "last.safetensors", tmp_path / "checkpoints" / "best.safetensors"
    before = (last.read_bytes(), best.read_bytes())
    trainer.optimizer.lr = 1e6
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"loss became (nan|inf|-inf) at epoch 2"
                                                                          r".*smaller learning rate"):
        trainer.fit(TinyLoader(x, y), 5, val_loader=TinyLoader(*blobs(64, seed=1)))
    assert (last.read_bytes(), best.read_bytes()) == before          # the last good checkpoints are kept
    metrics = strict_json(tmp_path / "metrics.json")
    assert metrics["diverged"] is True and len(metrics["history"]) == 1
    assert metrics["divergence"]["epoch"] == 2 and metrics["divergence"]["loss"] is None   # non-finite -> null
    assert "smaller learning rate" in metrics["divergence"]["message"]


def test_an_infinite_validation_loss_stops_the_run(tmp_path):
    x, y = blobs()
    model = deep_mlp(depth=2)
    x_val = np.full((8, 4, 4, 1), 3e38, np.float32)                   # overflows to inf in the first layer
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), run_dir=tmp_path, progress=False)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"validation loss became .* at epoch 1"):
        trainer.fit(TinyLoader(x, y), 2, val_loader=[(x_val, np.zeros(8, np.int64))])
    assert trainer.history == [] and not (tmp_path / "checkpoints" / "last.safetensors").exists()
    metrics = strict_json(tmp_path / "metrics.json")
    assert metrics["diverged"] is True and metrics["divergence"]["where"] == "validation"


def test_metrics_json_is_strict_when_a_metric_is_not_finite(tmp_path):
    x, y = blobs(32)
    model = make_model()
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), run_dir=tmp_path, progress=False,
                      metrics={"accuracy": Accuracy(), "odd": lambda out, t: float("inf")})
    trainer.fit(TinyLoader(x, y), 1)
    metrics = strict_json(tmp_path / "metrics.json")
    assert metrics["history"][0]["odd"] is None and metrics["diverged"] is False
    assert trainer.history[0]["odd"] == float("inf")


class MeanAbsError(Metric):
    state_keys = ("total", "count")

    def reset(self):
        self.total, self.count = 0.0, 0

    def update(self, outputs, targets):
        self.total += float(np.abs(outputs[:, 0] - targets[0]).sum())
        self.count += len(outputs)

    def compute(self):
        return self.total / self.count


def test_custom_loss_metrics_structured_batches_and_monitor(tmp_path):
    """Regression of a per-image brightness with per-sample weights: batch = (images, targets, weights)."""
    rng = np.random.default_rng(0)
    images = rng.random((48, 4, 4, 1)).astype(np.float32)
    target = images.mean(axis=(1, 2, 3)) * 3

    class Items:
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return images[i], np.float32(target[i]), np.float32(1.0 if i % 2 else 0.5)

    def weighted_mse(outputs, targets):
        t, w = targets
        diff = outputs.reshape(-1) - sd.tensor(t)
        return (diff * diff * sd.tensor(w)).mean()

    sd.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    loader = DataLoader(Items(), batch_size=8, shuffle=True, seed=0, collate_fn=default_collate, prefetch=0)
    val = DataLoader(Items(), batch_size=16, collate_fn=default_collate, prefetch=0)
    trainer = Trainer(model, optim.Adam(model.parameters(), 3e-2), loss_fn=weighted_mse, run_dir=tmp_path,
                      metrics={"mae": MeanAbsError(), "max_out": lambda out, t: float(out.max())},
                      monitor=Monitor("val_mae", "min"), progress=False)
    history = trainer.fit(loader, 20, val)
    assert set(history[0]) >= {"loss", "mae", "max_out", "val_loss", "val_mae", "val_max_out"}
    assert "accuracy" not in history[0]
    assert history[-1]["val_mae"] < history[0]["val_mae"] * 0.5
    assert trainer.best_score == min(h["val_mae"] for h in history)
    # the validation numbers are those of validate() on the final weights
    again = validate(model, val, weighted_mse, {"mae": MeanAbsError()})
    assert again["mae"] == pytest.approx(history[-1]["val_mae"], rel=1e-6)
    assert strict_json(tmp_path / "metrics.json")["monitor"] == {"name": "val_mae", "mode": "min"}


def test_monitor_mode_decides_the_best_checkpoint(tmp_path):
    x, y = blobs()
    current = {}

    class Scripted(Metric):
        state_keys = ()

        def reset(self):
            pass

        def update(self, outputs, targets):
            pass

        def compute(self):
            return current["value"]

    def run(mode):
        model = make_model()
        trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), run_dir=tmp_path / mode, progress=False,
                          metrics={"score": Scripted()}, monitor=Monitor("score", mode))
        best_epochs = []

        def track(t, logs):
            if t.best_score == logs["score"]:
                best_epochs.append(logs["epoch"])

        trainer.callbacks.append(track)
        for value in (0.5, 0.2, 0.9, 0.1):
            current["value"] = value
            trainer.fit(TinyLoader(x, y), trainer.epoch + 1)
        return trainer.best_score, best_epochs

    assert run("max") == (0.9, [1, 3])
    assert run("min") == (0.1, [1, 2, 4])


def test_monitor_validation():
    assert Monitor.of("val_loss") == Monitor("val_loss", "min")
    assert Monitor.of("val_accuracy") == Monitor("val_accuracy", "max")
    with pytest.raises(ValueError, match=r"received 'val_mAP'.*Monitor\('val_mAP', mode='max'\)"):
        Monitor.of("val_mAP")
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', received mode='up'"):
        Monitor("x", "up")
    m = Monitor("loss", "min", min_delta=0.5)
    assert m.better(1.0, None) and m.better(1.0, 2.0) and not m.better(1.6, 2.0) and not m.better(float("nan"), 2.0)
    x, y = blobs(16)
    model = make_model()
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False, monitor=Monitor("val_f1", "max"))
    with pytest.raises(ValueError, match=r"monitor Monitor\('val_f1'.*names no logged value"):
        trainer.fit(TinyLoader(x, y), 1)
    # defaults: accuracy when it is a metric, else the loss
    assert trainer.monitor_for(True) == Monitor("val_f1", "max")
    plain = Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False)
    assert plain.monitor_for(True) == Monitor("val_accuracy", "max") and plain.monitor_for(False) == Monitor(
        "accuracy", "max")
    no_acc = Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False, metrics={})
    assert no_acc.monitor_for(True) == Monitor("val_loss", "min")
    with pytest.raises(ValueError, match="reserved"):
        Trainer(model, optim.SGD(model.parameters(), 0.01), metrics={"val_x": Accuracy()})


def test_an_empty_loader_is_an_error():
    model = make_model()
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False)
    with pytest.raises(ValueError, match="gave no batches"):
        trainer.fit([], 1)


def test_epoch_lines_without_a_progress_bar(capsys):
    x, y = blobs(32)
    model = make_model()
    Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False, verbose=True).fit(TinyLoader(x, y), 1)
    assert "epoch 1/1:" in capsys.readouterr().out
    Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False).fit(TinyLoader(x, y), 1)
    assert capsys.readouterr().out == ""


def test_a_second_ctrl_c_while_the_loader_shuts_down_is_an_ordinary_keyboard_interrupt(capsys):
    """The loader's generator is closed by the loop, not by the garbage collector, so a KeyboardInterrupt
    raised while it stops (prefetch thread joining) propagates instead of printing "Exception ignored"."""
    x, y = blobs(64)
    model = make_model()
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.01), progress=False)

    class Loader:
        def __len__(self):
            return 4

        def __iter__(self):
            try:
                for b in range(4):
                    if b == 1:
                        trainer.request_stop()          # first Ctrl-C
                    yield x[16 * b:16 * (b + 1)], y[16 * b:16 * (b + 1)]
            except GeneratorExit:
                raise KeyboardInterrupt from None       # second Ctrl-C while shutting down

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(Loader(), 1)
    assert "Exception ignored" not in capsys.readouterr().err


def test_validation_only_metric_sees_only_validation_batches(tmp_path):
    """A metric with ``on_training = False`` is updated on validation batches only and logged
    only as ``val_<name>``."""
    from strided.train import Metric

    class CountImages(Metric):
        on_training = False
        state_keys = ("count",)

        def reset(self):
            self.count = 0

        def update(self, outputs, targets):
            self.count += len(np.asarray(targets))

        def compute(self):
            return float(self.count)

    rng = np.random.default_rng(0)
    train = ArrayDataset(rng.random((24, 4, 4, 1), dtype=np.float32), rng.integers(0, 2, 24))
    val = ArrayDataset(rng.random((10, 4, 4, 1), dtype=np.float32), rng.integers(0, 2, 10))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    counter = CountImages()
    trainer = Trainer(model, optim.SGD(model.parameters(), 0.1), metrics={"images": counter}, progress=False)
    history = trainer.fit(DataLoader(train, batch_size=8), 2, DataLoader(val, batch_size=4))
    assert [h["val_images"] for h in history] == [10.0, 10.0]
    assert all("images" not in h for h in history)
