"""The training loop: fit, evaluate, predict, checkpoints and resuming.

>>> trainer = Trainer(model, optim.Adam(model.parameters(), 1e-3), run_dir="runs/lenet")
>>> history = trainer.fit(train_loader, epochs=10, val_loader=val_loader)
>>> evaluate(model, test_loader)["accuracy"]

What a run directory holds (all written atomically):
``checkpoints/last.safetensors`` (after every epoch, and on Ctrl-C mid-epoch),
``checkpoints/best.safetensors`` (best validation score so far) and
``metrics.json`` (the per-epoch history).  ``Trainer.resume(path)`` restores
the model, the optimizer, the schedule, the random generators, the epoch and
the batch within it, so an interrupted run continues exactly where it stopped.

The first Ctrl-C asks the loop to stop after the current batch and save; a
second one stops at once.  A loss that is NaN or infinite stops the run with
``TrainingDiverged``; the last good checkpoint stays as it was.
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np

from . import functional as F
from .checkpoint import load_checkpoint, save_checkpoint
from .random import get_rng, manual_seed
from .tensor import Tensor, no_grad

__all__ = ["Trainer", "evaluate", "predict", "EarlyStopping", "TrainingDiverged", "confusion_matrix"]


from .errors import StridedError  # noqa: E402  (the one error family)


class TrainingDiverged(StridedError, RuntimeError):
    """The loss became NaN or infinite."""


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def evaluate(model, loader, loss_fn=F.cross_entropy, num_classes: int | None = None) -> dict:
    """Mean loss, accuracy and confusion matrix of ``model`` over ``loader`` (eval mode, no graph)."""
    mode = model.training
    model.eval()
    total_loss, labels_all, preds_all = 0.0, [], []
    try:
        with no_grad():
            for x, y in loader:
                logits = model(Tensor(x))
                total_loss += float(loss_fn(logits, y).item()) * len(y)
                labels_all.append(np.asarray(y))
                preds_all.append(logits.data.argmax(axis=1))
    finally:
        model.train(mode)
    if not labels_all:
        raise ValueError("evaluate() received an empty loader")
    labels, preds = np.concatenate(labels_all), np.concatenate(preds_all)
    k = num_classes or int(max(labels.max(), preds.max()) + 1)
    return {"loss": total_loss / len(labels), "accuracy": float((labels == preds).mean()),
            "confusion": confusion_matrix(labels, preds, k), "count": int(len(labels))}


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, K)`` for float images ``(N, H, W, C)`` (eval mode, no graph)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"predict expects images (N, H, W, C), received shape {images.shape}")
    mode = model.training
    model.eval()
    out = []
    try:
        with no_grad():
            for start in range(0, len(images), batch_size):
                batch = images[start:start + batch_size].astype(np.float32, copy=False)
                out.append(F.softmax(model(Tensor(batch))).data)
    finally:
        model.train(mode)
    return np.concatenate(out)


class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.best, self.wait = None, 0
        self.higher_is_better = "acc" in monitor

    def __call__(self, trainer, logs: dict) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        better = (self.best is None or (value > self.best + self.min_delta if self.higher_is_better
                                        else value < self.best - self.min_delta))
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_reason = f"early stopping: {self.monitor} did not improve for {self.patience} epochs"
                trainer.stop = True


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Trainer:
    """Runs epochs of mini-batch training and keeps everything needed to resume.

    ``schedule``: a ``strided.optim`` schedule stepped every epoch
    (``schedule_per="epoch"``) or every batch (``"batch"``, for one-cycle).
    ``monitor``: the log entry that decides the best checkpoint.
    """

    def __init__(self, model, optimizer, loss_fn=F.cross_entropy, run_dir=None, schedule=None,
                 schedule_per: str = "epoch", callbacks=(), config: dict | None = None, progress: bool = True,
                 grad_clip: float | None = None, monitor: str = "val_accuracy"):
        if schedule_per not in ("epoch", "batch"):
            raise ValueError(f"schedule_per must be 'epoch' or 'batch', received {schedule_per!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.schedule, self.schedule_per = schedule, schedule_per
        self.callbacks, self.config = list(callbacks), dict(config or {})
        self.progress, self.grad_clip, self.monitor = progress, grad_clip, monitor
        self.epoch, self.batch_in_epoch = 0, 0
        self.history: list[dict] = []
        self.best_score = None
        self.stop, self.stop_reason = False, ""
        self._interrupt = False

    # ----- paths
    def checkpoint_path(self, name: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / f"{name}.safetensors"

    # ----- state
    def state(self, loader=None) -> tuple[dict, dict]:
        arrays = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        opt_state = self.optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in opt_state.pop("buffers").items()})
        meta = {
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "optimizer": opt_state,
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "rng": get_rng().bit_generator.state, "history": self.history, "best_score": self.best_score,
            "config": self.config, "loader_seed": getattr(loader, "seed", None),
        }
        return arrays, _json_safe(meta)

    def save(self, name: str, loader=None) -> Path | None:
        path = self.checkpoint_path(name)
        if path is None:
            return None
        arrays, meta = self.state(loader)
        return save_checkpoint(path, arrays, meta)

    def resume(self, path) -> dict:
        """Restore everything from a checkpoint written by :meth:`save`; returns its metadata."""
        arrays, meta = load_checkpoint(path)
        self.model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
        opt = dict(meta["optimizer"])
        opt["buffers"] = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
        self.optimizer.load_state_dict(opt)
        if self.schedule is not None and meta.get("schedule") is not None:
            self.schedule.load_state_dict(meta["schedule"])
        get_rng().bit_generator.state = meta["rng"]
        self.epoch, self.batch_in_epoch = int(meta["epoch"]), int(meta["batch_in_epoch"])
        self.history, self.best_score = list(meta["history"]), meta.get("best_score")
        return meta

    def _write_metrics(self) -> None:
        if self.run_dir is None:
            return
        path = self.run_dir / "metrics.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        previous["history"] = self.history
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_json_safe(previous), indent=2))
        os.replace(tmp, path)

    # ----- Ctrl-C
    def _install_interrupt_handler(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._interrupt:  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._interrupt = True
            print("\nstopping after this batch and saving a checkpoint (Ctrl-C again to stop at once)")

        return signal.signal(signal.SIGINT, handler)

    # ----- the loop
    def fit(self, train_loader, epochs: int, val_loader=None) -> list:
        """Train until ``epochs`` epochs are done (counting those of a resumed run)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, received epochs={epochs!r}")
        previous = self._install_interrupt_handler()
        self._interrupt, self.stop = False, False
        try:
            while self.epoch < epochs and not self.stop:
                logs = self._train_epoch(train_loader, epochs)
                if logs is None:  # interrupted
                    path = self.save("last", train_loader)
                    self.stop, self.stop_reason = True, f"interrupted; state saved to {path}"
                    break
                if val_loader is not None:
                    val = evaluate(self.model, val_loader, self.loss_fn)
                    logs.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
                self.history.append(logs)
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.schedule is not None and self.schedule_per == "epoch":
                    self.schedule.step()
                score = logs.get(self.monitor, logs.get("accuracy"))
                higher = "acc" in self.monitor
                if self.best_score is None or (score > self.best_score if higher else score < self.best_score):
                    self.best_score = score
                    self.save("best", train_loader)
                self.save("last", train_loader)
                self._write_metrics()
                for callback in self.callbacks:
                    callback(self, logs)
                if self.progress:
                    shown = {k: round(v, 4) for k, v in logs.items() if isinstance(v, float)}
                    print(f"epoch {logs['epoch']}/{epochs}: {shown}")
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self.history

    def _train_epoch(self, loader, epochs) -> dict | None:
        model, optimizer = self.model, self.optimizer
        model.train()
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        skip = self.batch_in_epoch  # batches already trained before an interruption
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=skip, desc=f"epoch {self.epoch + 1}/{epochs}", unit="batch",
                       leave=False, dynamic_ncols=True, mininterval=0.5, disable=None)
        loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        try:
            for i, (x, y) in enumerate(loader):
                if i < skip:
                    continue
                logits = model(Tensor(x))
                loss = self.loss_fn(logits, y)
                value = float(loss.item())
                if not math.isfinite(value):
                    good = self.checkpoint_path("last")
                    raise TrainingDiverged(
                        f"the loss became {value} at epoch {self.epoch + 1}, batch {i + 1}: training stopped. "
                        f"Try a smaller learning rate (--lr). The last good checkpoint is "
                        f"{good if good is not None and good.exists() else 'none (no epoch finished)'}")
                optimizer.zero_grad()
                loss.backward()
                if self.grad_clip:
                    from .optim import clip_grad_norm
                    clip_grad_norm(optimizer.params, self.grad_clip)
                optimizer.step()
                if self.schedule is not None and self.schedule_per == "batch":
                    self.schedule.step()
                self.batch_in_epoch = i + 1
                n = len(y)
                loss_sum += value * n
                correct += int((logits.data.argmax(axis=1) == np.asarray(y)).sum())
                seen += n
                if bar is not None:
                    elapsed = time.perf_counter() - start
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                    img_s=f"{seen / max(elapsed, 1e-9):.0f}")
                if self._interrupt:
                    return None
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - start
        return {"epoch": self.epoch + 1, "loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1),
                "lr": float(optimizer.lr), "seconds": elapsed, "images_per_second": seen / max(elapsed, 1e-9)}


def seed_everything(seed: int) -> None:
    """Seed strided's generator (weights, dropout)."""
    manual_seed(seed)
