"""What the ``strided train`` tasks share while a run trains: the data (:class:`TrainingData`), the
check that the model takes the images, the optimizer and schedule from the config, the
:class:`Session`, its Trainer per phase (:func:`make_trainer`: head, then fine-tuning) and
:func:`run_phases` (with the head trained on cached features for ``--cache-features``)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from ..common import RunDir, is_detection, is_transfer
from ..errors import EXIT_ERROR, CLIError, Interrupted

__all__ = ["TrainingData", "check_model_takes", "build_optimizer", "Session", "make_trainer", "describe",
           "run_phases", "fit_head_on_features", "writing_run", "was_interrupted"]


@contextlib.contextmanager
def writing_run(run):
    """Turn an ``OSError`` raised while ``run`` trains or writes its report (a full disk, a
    permission) into a :class:`CLIError` that names the file and says how to continue."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or run.path
        raise CLIError(f"cannot write {str(where)!r}: {exc.strerror or exc}. Free some space (or fix the "
                       f"permission), then continue with `strided train --resume {run}`", EXIT_ERROR) from None


def was_interrupted(trainer, run) -> bool:
    """Print why ``trainer`` stopped early, if it did; True when it was interrupted (Ctrl-C), after
    saying how to continue the run."""
    if trainer.stop and trainer.stop_reason.startswith("interrupted"):
        print(f"{trainer.stop_reason}\ncontinue with: strided train --resume {run}")
        return True
    if trainer.stop_reason:
        print(trainer.stop_reason)
    return False


@dataclass
class TrainingData:
    train: object
    test: object
    fit: object            # the part of train that is trained on
    val: object | None     # the held-out part (None without --val-split)
    classes: list


def check_model_takes(model, image_shape, config) -> None:
    """One dry forward pass: a model of a fixed input size that cannot take ``image_shape``
    is a :class:`CLIError` naming both sizes (before any epoch runs)."""
    from ...random import get_rng
    from ...tensor import Tensor, no_grad

    rng_state = get_rng().bit_generator.state        # lazily built layers must not shift the seeded streams
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(np.zeros((1, *image_shape), np.float32)))
    except (ValueError, IndexError) as exc:
        wanted = getattr(model, "default_input_size", None)
        hint = (f"; it takes {wanted[0]}x{wanted[1]}: for folder: data pass --input-size {wanted[0]}"
                if wanted is not None else "")
        raise CLIError(f"model {config['model']!r} cannot take the data set's {'x'.join(map(str, image_shape))} "
                       f"images ({exc}){hint}") from None
    finally:
        model.train(was_training)
        get_rng().bit_generator.state = rng_state


def build_optimizer(config, model, steps_per_epoch):
    """``(optimizer, schedule or None, "epoch" | "batch")`` from the run's config."""
    from ... import optim
    params, lr = model.parameters(trainable_only=True), config["lr"]
    name, momentum, decay = config["optimizer"], config["momentum"], config["weight_decay"]
    options = {"adam": dict(weight_decay=decay), "adamw": dict(weight_decay=decay or 0.01),
               "sgd": dict(momentum=momentum, nesterov=momentum > 0, weight_decay=decay),
               "rmsprop": dict(momentum=momentum, weight_decay=decay)}[name]
    opt = optim.create(name, params, lr=lr, **options)
    schedule, per = None, "epoch"
    if config["schedule"] == "step":
        schedule = optim.StepLR(opt, step_size=max(1, config["epochs"] // 3), gamma=0.1)
    elif config["schedule"] == "cosine":
        schedule = optim.CosineLR(opt, total_steps=config["epochs"])
    elif config["schedule"] == "onecycle":
        schedule, per = optim.OneCycleLR(opt, total_steps=config["epochs"] * steps_per_epoch, max_lr=lr), "batch"
    return opt, schedule, per


@dataclass
class Session:
    """Everything one ``strided train`` needs while it runs."""
    run: RunDir
    config: dict
    data: TrainingData
    model: object
    loader: object
    val_loader: object | None
    callbacks: list
    monitor: str
    head_epochs: int
    progress: bool
    loss_fn: object = None       # None: the Trainer's default (cross-entropy)
    metrics: object = None       # None: the Trainer's default (accuracy)


def make_trainer(s: Session, fine_tuning: bool = False):
    """The Trainer of the head phase, or (``fine_tuning``) of the fine-tuning phase: the top
    ``fine_tune`` blocks unfrozen, lr / 10, the remaining epochs."""
    from ...train import Trainer

    config = {**s.config, "epochs": s.head_epochs}
    if fine_tuning:
        from ...transfer import unfreeze_top
        unfreeze_top(s.model, s.config["fine_tune"])
        config = {**config, "lr": s.config["lr"] / 10, "epochs": s.config["epochs"] - s.head_epochs}
    optimizer, schedule, per = build_optimizer(config, s.model, len(s.loader))
    task = {} if s.loss_fn is None else {"loss_fn": s.loss_fn, "metrics": s.metrics}
    return Trainer(s.model, optimizer, run_dir=s.run.path, schedule=schedule, schedule_per=per,
                   callbacks=list(s.callbacks), config=s.config, progress=s.progress, verbose=True,
                   monitor=s.monitor, **task)


def describe(s: Session) -> str:
    c = s.config
    desc = ""
    if is_transfer(c):
        desc = (f", pretrained={c['pretrained'] or False}, freeze={c['freeze']}, "
                f"input {c['input_size']}x{c['input_size']}x3"
                + (f", fine-tune top {c['fine_tune']} blocks after epoch {s.head_epochs}" if c.get("fine_tune")
                   else ""))
    val = len(s.data.val) if s.data.val is not None else 0
    if is_detection(c):
        size = c["image_size"]
        desc = (f", input {size}x{size}x3, {len(c['anchors'])} anchors ({c['anchors_from']})"
                + (", new training scenes every epoch" if c.get("fresh_scenes") else ""))
    return (f"training {c['model']} ({s.model.num_parameters():,} trainable parameters{desc}) on {c['data']}: "
            f"{len(s.data.fit):,} images, {val:,} for validation, {len(s.data.test):,} for testing -> {s.run}")


def run_phases(s: Session, trainer, head_resume=None):
    """Train the head phase (on cached features with --cache-features, continuing from the checkpoint
    ``head_resume`` if given), then fine-tune; returns the trainer that ran last."""
    c = s.config
    if trainer.epoch < s.head_epochs:
        if c.get("cache_features"):
            fit_head_on_features(trainer, s, resume_from=head_resume)
        else:
            trainer.fit(s.loader, s.head_epochs, s.val_loader)
    if c.get("fine_tune") and trainer.epoch < c["epochs"] and not trainer.stop and trainer.epoch >= s.head_epochs:
        if trainer.epoch == s.head_epochs and trainer.batch_in_epoch == 0:   # a fresh fine-tuning phase
            previous = trainer
            trainer = make_trainer(s, fine_tuning=True)
            trainer.epoch, trainer.history, trainer.best_score = (previous.epoch, previous.history,
                                                                  previous.best_score)
            print(f"fine-tuning the top {c['fine_tune']} blocks at lr {c['lr'] / 10:g} "
                  f"({s.model.num_parameters():,} trainable parameters)")
        trainer.fit(s.loader, c["epochs"], s.val_loader)
    return trainer


def fit_head_on_features(trainer, s: Session, resume_from=None) -> None:
    """The head phase of a --cache-features run: the base's pooled features are computed once (or loaded from
    the cache) and the head trains on them (:func:`strided.transfer.fit_head_on_features`, a Trainer run whose
    checkpoints hold the whole model, so the phase resumes like any run)."""
    from ...transfer import fit_head_on_features as fit_head

    config = s.config
    head_config = {**config, "epochs": s.head_epochs}
    try:
        head = fit_head(trainer.model, s.data.fit, s.head_epochs, s.data.val, input_size=config["input_size"],
                        cache_path=config["cache_features"], batch_size=config["batch_size"], seed=config["seed"],
                        optimizer=lambda module, steps: build_optimizer(head_config, module, steps),
                        run_dir=s.run.path, config=config, callbacks=s.callbacks, monitor=s.monitor,
                        progress=s.progress, verbose=True, resume_from=resume_from)
    except KeyboardInterrupt:
        raise Interrupted(f"while computing the frozen base's features for {s.run} (no epoch was trained, "
                          f"finished feature sets stay cached); run the same command again to start over") from None
    trainer.epoch, trainer.history, trainer.best_score = head.epoch, head.history, head.best_score
    trainer.stop, trainer.stop_reason = head.stop, head.stop_reason
