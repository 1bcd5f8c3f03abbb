"""One training loop for every task: fit, validate, checkpoints, exact resume, divergence.

>>> trainer = Trainer(model, optim.Adam(model.parameters(), 1e-3), run_dir="runs/lenet")
>>> history = trainer.fit(train_loader, epochs=10, val_loader=val_loader)
>>> evaluate(model, test_loader)["accuracy"]

**Any task.**  A batch from the loader may be any structure.  ``unpack(batch) ->
(inputs, targets)`` splits it (default :func:`unpack_batch`: ``batch[0]`` and
``batch[1]``, or ``batch[0]`` and the tuple ``batch[1:]`` when there are more
fields); the model gets the inputs (an ndarray becomes a ``Tensor``; a tuple is
passed as separate arguments) and ``loss_fn(outputs, targets)`` returns the
scalar loss ``Tensor``.  ``metrics`` maps a name to a :class:`Metric` (or a
function ``fn(outputs, targets) -> float``, averaged over the samples) that
accumulates over an epoch; classification accuracy (:class:`Accuracy`) is the
default.  So detection (images + a list of boxes per image), embeddings (pairs,
triplets) and localisation run through the same loop as classification::

    Trainer(model, opt, loss_fn=yolo_loss, metrics={})            # batch = (images, boxes_per_image)

**Which epoch is best.**  A :class:`Monitor` ``(name, mode)`` names the logged
value and whether ``"min"`` or ``"max"`` is better; it decides the best
checkpoint (and :class:`EarlyStopping` uses one too).  Without one the Trainer
monitors ``Monitor("val_accuracy", "max")`` (``"accuracy"`` without a
validation loader) when accuracy is a metric, else ``Monitor("val_loss", "min")``
(``"loss"``).  The strings ``"loss"``, ``"val_loss"`` (min), ``"accuracy"``,
``"val_accuracy"`` (max) are accepted for a Monitor; anything else must say
its mode.

**Run directory** (all files written atomically, strict JSON):
``checkpoints/last.safetensors`` (after every epoch, and on Ctrl-C mid-epoch),
``checkpoints/best.safetensors`` and ``metrics.json`` (the per-epoch history).
``Trainer.resume(path)`` restores the model, the optimizer, the schedule, the
random generators, the epoch, the batch within it and the sums of the
interrupted epoch (loss, sample count, each metric's state), so an interrupted
run continues exactly where it stopped and logs the same numbers.

The first Ctrl-C asks the loop to stop after the current batch and save
(:meth:`Trainer.request_stop`); a second one stops at once.  A training or
validation loss that is NaN or infinite stops the run with
:class:`TrainingDiverged`; the checkpoints stay as the last good epoch left
them, and ``metrics.json`` says ``"diverged": true``.
"""
from __future__ import annotations

import copy
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np

from . import functional as F
from .checkpoint import json_safe, load_checkpoint, save_checkpoint
from .errors import StridedError
from .fileio import atomic_write_json
from .random import get_rng
from .nn import Module
from .tensor import Tensor, no_grad
from .tta import log_mean_probabilities

__all__ = ["Trainer", "Monitor", "Metric", "Accuracy", "MeanMetric", "EarlyStopping", "TrainingDiverged",
           "evaluate", "validate", "predict", "confusion_matrix", "unpack_batch", "json_safe", "Ensemble"]

RESERVED_LOG_NAMES = ("epoch", "loss", "lr", "seconds", "images_per_second")


class TrainingDiverged(StridedError, RuntimeError):
    """The training or validation loss became NaN or infinite."""


# --------------------------------------------------------------------------- monitor
class Monitor:
    """The logged value that decides "better": ``Monitor("val_loss", "min")``, ``Monitor("val_mAP50", "max")``.

    ``better(value, best)`` is True when ``value`` improves on ``best`` by more than ``min_delta``
    (any finite value improves on ``best=None``; a missing or non-finite value never improves).
    """

    KNOWN = {"loss": "min", "val_loss": "min", "accuracy": "max", "val_accuracy": "max"}

    def __init__(self, name: str, mode: str = "min", min_delta: float = 0.0):
        if not isinstance(name, str) or not name:
            raise ValueError(f"Monitor name must be a non-empty string, received name={name!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"Monitor mode must be 'min' or 'max', received mode={mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"Monitor min_delta must be >= 0, received min_delta={min_delta!r}")
        self.name, self.mode, self.min_delta = name, mode, float(min_delta)

    @classmethod
    def of(cls, monitor) -> "Monitor":
        """A Monitor from a Monitor or one of the known names (``loss``/``val_loss``: min,
        ``accuracy``/``val_accuracy``: max)."""
        if isinstance(monitor, Monitor):
            return monitor
        if isinstance(monitor, str) and monitor in cls.KNOWN:
            return cls(monitor, cls.KNOWN[monitor])
        raise ValueError(f"monitor must be a Monitor(name, mode='min'|'max') or one of {sorted(cls.KNOWN)}, "
                         f"received {monitor!r}; e.g. Monitor({monitor!r}, mode='max') if higher is better")

    def better(self, value, best, min_delta: float | None = None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if best is None:
            return True
        delta = self.min_delta if min_delta is None else min_delta
        return value < best - delta if self.mode == "min" else value > best + delta

    def __eq__(self, other):
        return isinstance(other, Monitor) and (self.name, self.mode, self.min_delta) == (
            other.name, other.mode, other.min_delta)

    def __repr__(self):
        return f"Monitor({self.name!r}, mode={self.mode!r}" + (
            f", min_delta={self.min_delta:g})" if self.min_delta else ")")


# --------------------------------------------------------------------------- metrics
class Metric:
    """A value accumulated over an epoch: ``reset()``, ``update(outputs, targets)``, ``compute() -> float``.

    ``outputs`` are the model's outputs as ndarrays (a tuple of outputs stays a tuple), ``targets``
    what ``unpack`` gave.  ``state_dict()`` / ``load_state_dict()`` carry the running sums (the
    attributes named in ``state_keys``, JSON numbers) so a run interrupted mid-epoch resumes them.
    ``on_training = False`` measures a metric on validation data only (logged as ``val_<name>``):
    for values such as mAP, which need a whole epoch's predictions of one fixed model.
    """

    state_keys: tuple = ()
    on_training: bool = True

    def __init__(self):
        self.reset()

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, outputs, targets) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.state_keys}

    def load_state_dict(self, state: dict) -> None:
        for key in self.state_keys:
            setattr(self, key, state[key])


class Accuracy(Metric):
    """Fraction of samples whose highest output (``argmax`` over axis 1) is the integer label."""

    state_keys = ("correct", "count")

    def reset(self) -> None:
        self.correct, self.count = 0, 0

    def update(self, outputs, targets) -> None:
        labels = np.asarray(targets)
        self.correct += int((np.asarray(outputs).argmax(axis=1) == labels).sum())
        self.count += int(len(labels))

    def compute(self) -> float:
        return self.correct / self.count if self.count else 0.0


class MeanMetric(Metric):
    """``fn(outputs, targets) -> float`` (a batch mean), averaged over the epoch's samples."""

    state_keys = ("total", "count")

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"a metric must be a Metric or a function fn(outputs, targets) -> float, received {fn!r}")
        self.fn = fn
        super().__init__()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, outputs, targets) -> None:
        n = batch_length(outputs)
        self.total += float(self.fn(outputs, targets)) * n
        self.count += n

    def compute(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __repr__(self):
        return f"MeanMetric({getattr(self.fn, '__name__', self.fn)!r})"


def _as_metrics(metrics) -> dict:
    if metrics is None:
        return {"accuracy": Accuracy()}
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict name -> Metric or function, received {type(metrics).__name__}")
    out = {}
    for name, metric in metrics.items():
        if not isinstance(name, str) or name in RESERVED_LOG_NAMES or name.startswith("val_"):
            raise ValueError(f"metric name {name!r} is reserved or invalid: names must be strings, not "
                             f"{RESERVED_LOG_NAMES} and not starting with 'val_' (validation values get that prefix)")
        out[name] = metric if isinstance(metric, Metric) else MeanMetric(metric)
    return out


# --------------------------------------------------------------------------- batches
def unpack_batch(batch) -> tuple:
    """``(inputs, targets)`` of a batch: ``batch[0], batch[1]`` for a pair, ``batch[0], tuple(batch[1:])``
    for three or more fields (e.g. ``(anchors, positives, negatives)`` -> inputs ``anchors``)."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], (batch[1] if len(batch) == 2 else tuple(batch[1:]))
    raise TypeError(f"a batch must be a tuple (inputs, targets, ...) to unpack, received "
                    f"{type(batch).__name__}; pass unpack=fn(batch) -> (inputs, targets) to the Trainer")


def batch_length(value) -> int:
    """Number of samples in a batch's inputs or outputs: the first axis (of the first element of a tuple:
    a tuple holds several batched arguments); a list is a batch of items, its length."""
    while isinstance(value, tuple) and value:
        value = value[0]
    shape = getattr(value, "shape", None)
    if shape:
        return int(shape[0])
    return len(value)


def _as_tensor(x):
    return Tensor(x) if isinstance(x, np.ndarray) else x


def _detach(outputs):
    if isinstance(outputs, Tensor):
        return outputs.data
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_detach(o) for o in outputs)
    return outputs


def run_model(model, inputs):
    """``model(inputs)``: an ndarray becomes a Tensor; a tuple is passed as separate arguments."""
    if isinstance(inputs, tuple):
        return model(*(_as_tensor(x) for x in inputs))
    return model(_as_tensor(inputs))


# --------------------------------------------------------------------------- evaluation
def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def evaluate(model, loader, loss_fn=F.cross_entropy, num_classes: int | None = None) -> dict:
    """Classification: mean loss, accuracy and confusion matrix of ``model`` over ``loader`` of ``(x, y)``
    (eval mode, no graph; each module's own mode is restored)."""
    total_loss, labels_all, preds_all = 0.0, [], []
    with model.evaluating(), no_grad():
        for x, y in loader:
            logits = model(Tensor(x))
            total_loss += float(loss_fn(logits, y).item()) * len(y)
            labels_all.append(np.asarray(y))
            preds_all.append(logits.data.argmax(axis=1))
    if not labels_all:
        raise ValueError("evaluate() received an empty loader")
    labels, preds = np.concatenate(labels_all), np.concatenate(preds_all)
    k = num_classes or int(max(labels.max(), preds.max()) + 1)
    return {"loss": total_loss / len(labels), "accuracy": float((labels == preds).mean()),
            "confusion": confusion_matrix(labels, preds, k), "count": int(len(labels))}


def validate(model, loader, loss_fn=F.cross_entropy, metrics=None, unpack=unpack_batch) -> dict:
    """Any task: ``{"loss": mean loss, <metric>: value, ..., "count": samples}`` of ``model`` over ``loader``
    (eval mode, no graph).  ``metrics`` as for :class:`Trainer` (fresh copies are used)."""
    metrics = {name: copy.deepcopy(m) for name, m in _as_metrics(metrics).items()}
    for metric in metrics.values():
        metric.reset()
    total, seen = 0.0, 0
    with model.evaluating(), no_grad():
        for batch in loader:
            inputs, targets = unpack(batch)
            outputs = run_model(model, inputs)
            n = batch_length(inputs)
            total += float(loss_fn(outputs, targets).item()) * n
            seen += n
            detached = _detach(outputs)
            for metric in metrics.values():
                metric.update(detached, targets)
    if not seen:
        raise ValueError("validate() received an empty loader")
    return {"loss": total / seen, **{name: float(m.compute()) for name, m in metrics.items()}, "count": seen}


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, K)`` for float images ``(N, H, W, C)`` (eval mode, no graph)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"predict expects images (N, H, W, C), received shape {images.shape}")
    out = []
    with model.evaluating(), no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].astype(np.float32, copy=False)
            out.append(F.softmax(model(Tensor(batch))).data)
    return np.concatenate(out)


class Ensemble(Module):
    """Several classifiers as one: ``forward(x)`` returns ``log(sum_i w_i softmax(model_i(x)))`` ``(N, K)``.

    The members' *probabilities* are averaged (weighted), not their logits; the log of the
    average is returned so that ``softmax`` of it is exactly the averaged probability
    (:func:`predict` gives it) and ``F.cross_entropy`` of it is the ensemble's negative
    log-likelihood (:func:`evaluate` works unchanged).  Inference only (no graph).

    ``weights``: one non-negative number per member, normalised to sum to 1 (default equal).
    ``input_shape`` ``(H, W, C)``: when given, every member is run once on zeros of that shape
    and must accept it and give the same number of classes; without it the class counts are
    checked on every forward pass.  A mismatch is a :class:`StridedError` naming the member.

    >>> ensemble = Ensemble([model_a, model_b, model_c], weights=[1, 2, 1])
    >>> evaluate(ensemble, test_loader)["accuracy"]
    """

    def __init__(self, models, weights=None, input_shape=None):
        super().__init__()
        models = list(models)
        if not models:
            raise StridedError("Ensemble needs at least one model, received none")
        if weights is None:
            weights = [1.0] * len(models)
        weights = np.asarray(weights, dtype=np.float64).ravel()
        if len(weights) != len(models):
            raise StridedError(f"Ensemble: one weight per member expected ({len(models)} members), received "
                               f"{len(weights)} weights {weights.tolist()}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise StridedError(f"Ensemble weights must be finite, >= 0 and not all 0, received {weights.tolist()}")
        self.weights = weights / weights.sum()
        self.num_members = len(models)
        for i, model in enumerate(models):
            setattr(self, f"member{i}", model)
        self.num_classes = None
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        if self.input_shape is not None:
            with self.evaluating(), no_grad():
                self._member_outputs(np.zeros((1, *self.input_shape), np.float32))

    @property
    def members(self) -> list:
        return [getattr(self, f"member{i}") for i in range(self.num_members)]

    def _member_outputs(self, images: np.ndarray) -> np.ndarray:
        probs = []
        for i, model in enumerate(self.members):
            try:
                logits = model(Tensor(images))
            except (ValueError, TypeError, IndexError) as exc:
                raise StridedError(f"Ensemble member {i} ({type(model).__name__}) does not take input of shape "
                                   f"{images.shape[1:]} (H, W, C): {exc}") from None
            if logits.ndim != 2:
                raise StridedError(f"Ensemble member {i} ({type(model).__name__}) returned shape {logits.shape}; "
                                   f"expected class scores (N, K)")
            k = logits.shape[1]
            if self.num_classes is None:
                self.num_classes = k
            elif k != self.num_classes:
                raise StridedError(f"Ensemble members disagree on the number of classes: member {i} "
                                   f"({type(model).__name__}) has {k}, the members before it {self.num_classes}")
            probs.append(F.softmax(logits).data)
        return np.stack(probs)

    def forward(self, x):
        images = x.data if isinstance(x, Tensor) else np.asarray(x)
        with no_grad():
            probs = self._member_outputs(images)
        return Tensor(log_mean_probabilities(probs, self.weights))

    def extra_repr(self) -> str:
        return f"weights={np.round(self.weights, 4).tolist()}"


class EarlyStopping:
    """Stop when ``monitor`` (a :class:`Monitor` or a known name, see :meth:`Monitor.of`) has not improved by
    more than ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", patience: int = 5, min_delta: float = 0.0):
        self.monitor = Monitor.of(monitor)
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best, self.wait = None, 0

    def __call__(self, trainer, logs: dict) -> None:
        value = logs.get(self.monitor.name)
        if value is None:
            return
        if self.monitor.better(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_reason = (f"early stopping: {self.monitor.name} did not improve for "
                                       f"{self.patience} epochs")
                trainer.stop = True


# --------------------------------------------------------------------------- the trainer
class Trainer:
    """Runs epochs of mini-batch training and keeps everything needed to resume.

    ``loss_fn(outputs, targets)``: the scalar loss Tensor (default cross-entropy on integer labels).
    ``metrics``: ``{name: Metric or fn(outputs, targets) -> float}`` (default ``{"accuracy": Accuracy()}``;
    ``{}`` for none); logged per epoch as ``name`` and, on the validation set, ``val_name``.
    ``unpack(batch) -> (inputs, targets)``: see :func:`unpack_batch`.
    ``monitor``: a :class:`Monitor` (or a known name) deciding the best checkpoint; see the module docstring
    for the default.  ``schedule``: a ``strided.optim`` schedule stepped every epoch (``schedule_per="epoch"``)
    or every batch (``"batch"``, for one-cycle).  ``checkpoint_model``: the module written to checkpoints and
    restored by :meth:`resume` (default ``model``), e.g. the whole network when ``model`` is its head trained
    on cached features (they share the head's parameters).  ``progress``: a progress bar per epoch;
    ``verbose``: one line per finished epoch (default: as ``progress``).
    """

    def __init__(self, model, optimizer, loss_fn=F.cross_entropy, run_dir=None, schedule=None,
                 schedule_per: str = "epoch", callbacks=(), config: dict | None = None, progress: bool = True,
                 grad_clip: float | None = None, monitor=None, metrics=None, unpack=None,
                 checkpoint_model=None, verbose: bool | None = None):
        if schedule_per not in ("epoch", "batch"):
            raise ValueError(f"schedule_per must be 'epoch' or 'batch', received {schedule_per!r}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable as loss_fn(outputs, targets), received {loss_fn!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.checkpoint_model = model if checkpoint_model is None else checkpoint_model
        self.metrics = _as_metrics(metrics)
        self.unpack = unpack_batch if unpack is None else unpack
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.schedule, self.schedule_per = schedule, schedule_per
        self.callbacks, self.config = list(callbacks), dict(config or {})
        self.progress, self.grad_clip = progress, grad_clip
        self.verbose = progress if verbose is None else bool(verbose)
        self.monitor = None if monitor is None else Monitor.of(monitor)
        self.epoch, self.batch_in_epoch = 0, 0
        self.history: list[dict] = []
        self.best_score = None
        self.stop, self.stop_reason = False, ""
        self.diverged = None            # {"epoch", "batch", "where", "loss", "message"} once the loss diverged
        self._interrupt = False
        self._sums = {"loss_sum": 0.0, "seen": 0, "seconds": 0.0}   # the current epoch's running sums
        self._resumed_partial = None    # sums of an interrupted epoch, from resume()

    # ----- paths and the monitor
    def checkpoint_path(self, name: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / f"{name}.safetensors"

    def monitor_for(self, with_validation: bool) -> Monitor:
        """The Monitor in use: the one given, else val accuracy (max) / accuracy, or val loss (min) / loss."""
        if self.monitor is not None:
            return self.monitor
        prefix = "val_" if with_validation else ""
        if "accuracy" in self.metrics:
            return Monitor(prefix + "accuracy", "max")
        return Monitor(prefix + "loss", "min")

    def training_metrics(self) -> dict:
        """The metrics measured on training batches (those with ``on_training``)."""
        return {name: m for name, m in self.metrics.items() if getattr(m, "on_training", True)}

    def log_names(self, with_validation: bool) -> list:
        names = ["loss", *self.training_metrics()]
        return names + [f"val_{n}" for n in ["loss", *self.metrics]] if with_validation else names

    # ----- state
    def partial_epoch(self) -> dict | None:
        """The interrupted epoch's sums (loss sum, samples, seconds, each metric's state), or None."""
        if not self.batch_in_epoch:
            return None
        return {**self._sums, "metrics": {name: m.state_dict() for name, m in self.training_metrics().items()}}

    def state(self, loader=None) -> tuple[dict, dict]:
        arrays = {f"model/{k}": v for k, v in self.checkpoint_model.state_dict().items()}
        opt_state = self.optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in opt_state.pop("buffers").items()})
        meta = {
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "optimizer": opt_state,
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "rng": get_rng().bit_generator.state, "history": self.history, "best_score": self.best_score,
            "config": self.config, "loader_seed": getattr(loader, "seed", None),
            "partial_epoch": self.partial_epoch(),
        }
        return arrays, json_safe(meta)

    def save(self, name: str, loader=None) -> Path | None:
        path = self.checkpoint_path(name)
        if path is None:
            return None
        arrays, meta = self.state(loader)
        return save_checkpoint(path, arrays, meta)

    def resume(self, path) -> dict:
        """Restore everything from a checkpoint written by :meth:`save`; returns its metadata."""
        arrays, meta = load_checkpoint(path)
        self.checkpoint_model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
        opt = dict(meta["optimizer"])
        opt["buffers"] = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
        self.optimizer.load_state_dict(opt)
        if self.schedule is not None and meta.get("schedule") is not None:
            self.schedule.load_state_dict(meta["schedule"])
        get_rng().bit_generator.state = meta["rng"]
        self.epoch, self.batch_in_epoch = int(meta["epoch"]), int(meta["batch_in_epoch"])
        self.history, self.best_score = list(meta["history"]), meta.get("best_score")
        self._resumed_partial = meta.get("partial_epoch") if self.batch_in_epoch else None
        return meta

    def write_metrics(self, **extra) -> Path | None:
        """Write ``metrics.json`` (strict JSON): the history, the monitor and best score, ``diverged``
        (and ``divergence`` with where and why), keeping other keys already in the file; ``extra`` adds keys."""
        if self.run_dir is None:
            return None
        path = self.run_dir / "metrics.json"
        data = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if not isinstance(data, dict):
                data = {}
        monitor = self.monitor_for(any(k.startswith("val_") for h in self.history for k in h))
        data.update(history=self.history, monitor={"name": monitor.name, "mode": monitor.mode},
                    best_score=self.best_score, diverged=self.diverged is not None)
        if self.diverged is not None:
            data["divergence"] = self.diverged
        else:
            data.pop("divergence", None)
        data.update(extra)
        return atomic_write_json(path, json_safe(data))

    # ----- Ctrl-C
    def request_stop(self) -> None:
        """Stop after the current batch and save ``last`` (what the first Ctrl-C does)."""
        self._interrupt = True

    def _install_interrupt_handler(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._interrupt:  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.request_stop()
            print("\nstopping after this batch and saving a checkpoint (Ctrl-C again to stop at once)")

        return signal.signal(signal.SIGINT, handler)

    # ----- divergence
    def _diverge(self, where: str, value: float, batch: int | None):
        good = self.checkpoint_path("last")
        place = f"epoch {self.epoch + 1}" + (f", batch {batch}" if batch is not None else "")
        what = "the loss" if where == "train" else "the validation loss"
        message = (f"{what} became {value} at {place}: training stopped. Try a smaller learning rate (--lr). "
                   f"The last good checkpoint is "
                   f"{good if good is not None and good.exists() else 'none (no epoch finished)'}")
        self.diverged = {"epoch": self.epoch + 1, "batch": batch, "where": where, "loss": value,
                         "message": message}
        self.stop, self.stop_reason = True, message
        self.write_metrics()
        raise TrainingDiverged(message)

    # ----- the loop
    def fit(self, train_loader, epochs: int, val_loader=None) -> list:
        """Train until ``epochs`` epochs are done (counting those of a resumed run)."""
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, received epochs={epochs!r}")
        monitor = self.monitor_for(val_loader is not None)
        if monitor.name not in self.log_names(val_loader is not None):
            raise ValueError(f"monitor {monitor!r} names no logged value; this run logs "
                             f"{self.log_names(val_loader is not None)}")
        previous = self._install_interrupt_handler()
        self._interrupt, self.stop, self.diverged = False, False, None
        try:
            while self.epoch < epochs and not self.stop:
                logs = self._train_epoch(train_loader, epochs)
                if logs is None:  # interrupted
                    path = self.save("last", train_loader)
                    self.stop, self.stop_reason = True, f"interrupted; state saved to {path}"
                    break
                if val_loader is not None:
                    val = validate(self.model, val_loader, self.loss_fn, self.metrics, self.unpack)
                    if not math.isfinite(val["loss"]):
                        self._diverge("validation", val["loss"], None)
                    logs.update({f"val_{k}": v for k, v in val.items() if k != "count"})
                self.history.append(logs)
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.schedule is not None and self.schedule_per == "epoch":
                    self.schedule.step()
                if monitor.better(logs[monitor.name], self.best_score):
                    self.best_score = logs[monitor.name]
                    self.save("best", train_loader)
                self.save("last", train_loader)
                self.write_metrics()
                for callback in self.callbacks:
                    callback(self, logs)
                if self.verbose:
                    shown = {k: round(v, 4) for k, v in logs.items() if isinstance(v, float)}
                    print(f"epoch {logs['epoch']}/{epochs}: {shown}")
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self.history

    def _start_epoch_sums(self) -> None:
        partial = self._resumed_partial
        self._resumed_partial = None
        for metric in self.training_metrics().values():
            metric.reset()
        self._sums = {"loss_sum": 0.0, "seen": 0, "seconds": 0.0}
        if partial is not None and self.batch_in_epoch:
            self._sums = {k: partial[k] for k in ("loss_sum", "seen", "seconds")}
            for name, metric in self.training_metrics().items():
                if name in partial.get("metrics", {}):
                    metric.load_state_dict(partial["metrics"][name])

    def _train_epoch(self, loader, epochs) -> dict | None:
        model, optimizer = self.model, self.optimizer
        measured = self.training_metrics()
        model.train()
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        skip = self.batch_in_epoch  # batches already trained before an interruption
        self._start_epoch_sums()
        sums = self._sums
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=skip, desc=f"epoch {self.epoch + 1}/{epochs}", unit="batch",
                       leave=False, dynamic_ncols=True, mininterval=0.5, disable=None)
        start, seconds_before = time.perf_counter(), sums["seconds"]
        batches = iter(loader)
        try:
            for i, batch in enumerate(batches):
                if i < skip:
                    continue
                inputs, targets = self.unpack(batch)
                outputs = run_model(model, inputs)
                loss = self.loss_fn(outputs, targets)
                value = float(loss.item())
                if not math.isfinite(value):
                    self._diverge("train", value, i + 1)
                optimizer.zero_grad()
                loss.backward()
                if self.grad_clip:
                    from .optim import clip_grad_norm
                    clip_grad_norm(optimizer.params, self.grad_clip)
                optimizer.step()
                if self.schedule is not None and self.schedule_per == "batch":
                    self.schedule.step()
                self.batch_in_epoch = i + 1
                n = batch_length(inputs)
                sums["loss_sum"] += value * n
                sums["seen"] += n
                detached = _detach(outputs)
                for metric in measured.values():
                    metric.update(detached, targets)
                sums["seconds"] = seconds_before + time.perf_counter() - start
                if bar is not None:
                    bar.update(1)
                    shown = {"loss": f"{sums['loss_sum'] / sums['seen']:.4f}"}
                    shown.update({name[:8]: f"{m.compute():.4f}" for name, m in list(measured.items())[:2]})
                    shown["img_s"] = f"{sums['seen'] / max(sums['seconds'], 1e-9):.0f}"
                    bar.set_postfix(shown)
                if self._interrupt:
                    return None
        finally:
            # close the loader's generator here, not in the garbage collector: a second Ctrl-C while its
            # prefetch thread stops is then an ordinary KeyboardInterrupt, not "Exception ignored in ..."
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            if bar is not None:
                bar.close()
        seen = sums["seen"]
        if not seen:
            raise ValueError(f"the training loader gave no batches in epoch {self.epoch + 1} "
                             f"(an empty data set, or batch_size larger than it with drop_last?)")
        seconds = sums["seconds"]
        logs = {"epoch": self.epoch + 1, "loss": sums["loss_sum"] / seen}
        logs.update({name: float(m.compute()) for name, m in measured.items()})
        logs.update(lr=float(optimizer.lr), seconds=seconds, images_per_second=seen / max(seconds, 1e-9))
        return logs
