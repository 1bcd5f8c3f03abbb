"""``strided train --task embed``: metric learning (issue 9).

The model's output is an embedding, trained on P x K batches with a triplet / contrastive / siamese
loss, evaluated on classes held out of training.  Self-contained: the train parser and ``cmd_train``
call :func:`add_embed_arguments`, :func:`task_of` and :func:`train_embed` (one line each), and
``evaluate`` / ``predict`` refuse an embedding run with :func:`refuse_embedding_run`."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..common import RunDir, build_model, load_data
from ..errors import EXIT_INTERRUPTED, EXIT_OK, CLIError
from .config import RESUME_OPTIONS, TRAIN_DEFAULTS, TRANSFER_DEFAULTS, option_flag, validate_config
from .session import build_optimizer, check_model_takes, was_interrupted, writing_run

__all__ = ["EMBED_DEFAULTS", "add_embed_arguments", "task_of", "run_task", "train_embed", "classes_of",
           "refuse_embedding_run"]


EMBED_DEFAULTS = {"task": "classify", "loss": "triplet", "mining": "semi-hard", "p": 8, "k": 4,
                  "embedding_dim": 64, "margin": None, "unseen": None, "eval_images": 2000}


def add_embed_arguments(p) -> None:
    from ...face.embedding import LOSSES, MININGS

    g = p.add_argument_group(
        "metric learning (--task embed)",
        "the model's output is a --embedding-dim embedding trained on P x K batches (P classes, K images "
        "each); the last --unseen classes are held out of training and the final report gives N-way "
        "1-shot accuracy, ROC AUC, EER and TAR@FAR on them (test split)")
    g.add_argument("--loss", choices=LOSSES, default=None,
                   help="triplet (online mining, margin 0.2, L2-normalised), contrastive (every pair, margin "
                        "1.0, L2-normalised) or siamese (logistic head on |f1 - f2|); default triplet")
    g.add_argument("--mining", choices=MININGS, default=None, help="triplets per batch (default semi-hard)")
    g.add_argument("--margin", type=float, default=None, help="triplet / contrastive margin")
    g.add_argument("--p", type=int, default=None, metavar="P", help="classes per batch (default 8, at most "
                                                                    "the training classes)")
    g.add_argument("--k", type=int, default=None, metavar="K", help="images per class in a batch (default 4)")
    g.add_argument("--embedding-dim", type=int, default=None, metavar="D", help="default 64")
    g.add_argument("--unseen", type=int, default=None, metavar="N",
                   help="the last N classes are never trained on (default: half of the classes)")
    g.add_argument("--eval-images", type=int, default=None, metavar="N",
                   help="held-out test images (a seeded random subset) embedded for the final report "
                        "(default 2000: about 2 million pairs)")


def task_of(args) -> str:
    """``"embed"`` or ``"classify"``: from ``--task``, or from the config of the run ``--resume`` names."""
    if getattr(args, "task", None):
        return args.task
    if getattr(args, "resume", None):
        return run_task(args.resume)
    return "classify"


def run_task(run_dir) -> str:
    """The ``task`` of the run in ``run_dir`` (``"classify"`` for runs made before tasks existed, and
    when its config cannot be read: the classification code then reports what is wrong)."""
    import json
    try:
        return str(json.loads(RunDir(run_dir).config_path.read_text(encoding="utf-8")).get("task", "classify"))
    except (OSError, ValueError, AttributeError):
        return "classify"


def _embed_config(args) -> tuple[RunDir, dict, Path | None]:
    """``(run, config, last checkpoint to resume or None)`` of an embedding run."""
    names = (*TRAIN_DEFAULTS, *EMBED_DEFAULTS)
    if args.resume:
        run = RunDir(args.resume)
        config = run.read_config()
        given = [n for n in (*names, *TRANSFER_DEFAULTS, "out", "overwrite")
                 if n not in RESUME_OPTIONS and n != "task" and getattr(args, n, None) is not None]
        if given:
            raise CLIError(f"--resume {run} continues the run with its own settings (see {run.config_path}); "
                           f"{', '.join(option_flag(n) for n in given)} cannot change on resume: drop them, or start a "
                           f"new run with --out NEW_DIR")
        last = run.checkpoint("last")
        if not last.is_file():
            raise CLIError(f"--resume {run}: no epoch of this run was saved ({last} is missing); start it again "
                           f"with --overwrite")
        if args.epochs is not None:
            if args.epochs < 1:
                raise CLIError(f"--epochs must be >= 1, received {args.epochs}")
            config["epochs"] = args.epochs
        return run, config, last
    transfer = [n for n in TRANSFER_DEFAULTS if getattr(args, n, None) is not None]
    if transfer:
        raise CLIError(f"--task embed trains from scratch; {', '.join(option_flag(n) for n in transfer)} "
                       f"apply to --task classify")
    defaults = {**TRAIN_DEFAULTS, **EMBED_DEFAULTS, "task": "embed"}
    config = {k: (d if getattr(args, k, None) is None else getattr(args, k)) for k, d in defaults.items()}
    validate_config(config)
    for name, low in (("p", 2), ("k", 2), ("embedding_dim", 1), ("eval_images", 10)):
        if config[name] < low:
            raise CLIError(f"{option_flag(name)} must be >= {low}, received {config[name]}")
    if config["margin"] is not None and not config["margin"] > 0:
        raise CLIError(f"--margin must be > 0, received {config['margin']}")
    if config["loss"] == "siamese" and config["margin"] is not None:
        raise CLIError("--margin applies to the triplet and contrastive losses, not siamese")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.out or f"runs/{config['model']}-{config['data'].replace(':', '_').replace('/', '_')}"
                              f"-embed-{stamp}")
    run.check_new(overwrite=bool(args.overwrite))
    return run, config, None


def _split_classes(config, train, test):
    """``(seen training set, held-out test set, seen class names, unseen class names)``."""
    classes = list(train.classes)
    n = len(classes)
    unseen = n // 2 if config["unseen"] is None else config["unseen"]
    if not 2 <= unseen <= n - 2:
        raise CLIError(f"--unseen must leave at least 2 classes on each side of the {n} classes of "
                       f"{config['data']}, received {unseen}")
    cut = n - unseen
    fit = train.subset(train.labels < cut)
    held = test.subset(test.labels >= cut)
    if len(held) == 0:
        raise CLIError(f"the test split of {config['data']} has no image of the held-out classes "
                       f"{classes[cut:]}")
    return fit, held, classes[:cut], classes[cut:]


def train_embed(args) -> int:
    """``strided train --task embed``: metric learning, checkpoints and resume as for classification."""
    from ... import manual_seed
    from ...checkpoint import load_weights
    from ...data.sampler import PKSampler
    from ...face.embedding import EmbeddingNet, PKBatches, embed_images, embedding_loss
    from ...face.evaluation import n_way_one_shot_accuracy, pair_distances, verification_report
    from ...face.losses import SiameseHead
    from ...train import Trainer

    run, config, last = _embed_config(args)
    manual_seed(config["seed"])
    train, test = load_data(config)
    fit, held, seen, unseen = _split_classes(config, train, test)
    p = min(config["p"], len(seen))
    try:
        sampler = PKSampler(fit.labels, p=p, k=config["k"], seed=config["seed"])
    except ValueError as exc:
        raise CLIError(f"cannot draw P x K batches from {config['data']}: {exc}") from None
    loader = PKBatches(fit, sampler)
    backbone = build_model(config, fit.image_shape, config["embedding_dim"])
    check_model_takes(backbone, fit.image_shape, config)
    siamese = config["loss"] == "siamese"
    model = EmbeddingNet(backbone, normalize=not siamese,
                         head=SiameseHead(config["embedding_dim"]) if siamese else None)
    loss_fn = embedding_loss(config["loss"], model, config["mining"], config["margin"])
    config.update(classes=classes_of(train), image_shape=list(fit.image_shape), seen_classes=seen,
                  unseen_classes=unseen)
    if last is None:
        run.create(overwrite=bool(args.overwrite))
        run.write_config(config)
    optimizer, schedule, per = build_optimizer(config, model, len(loader))
    trainer = Trainer(model, optimizer, loss_fn=loss_fn, run_dir=run.path, schedule=schedule, schedule_per=per,
                      config=config, progress=not args.no_progress, verbose=True, monitor="loss", metrics={})
    if last is not None:
        trainer.resume(last)
        print(f"resuming {run} at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}")
    mining = f", {config['mining']} mining" if config["loss"] == "triplet" else ""
    print(f"training {config['model']} as a {config['embedding_dim']}-d embedding ({config['loss']} loss{mining}, "
          f"{p} classes x {config['k']} images per batch) on {len(fit):,} images of {len(seen)} classes; "
          f"held out: {', '.join(unseen)} -> {run}")
    with writing_run(run):
        if trainer.epoch < config["epochs"]:
            trainer.fit(loader, config["epochs"])
        if was_interrupted(trainer, run):
            return EXIT_INTERRUPTED
        best = run.checkpoint("best")
        if best.exists():
            load_weights(model, best)
        rng = np.random.default_rng(config["seed"])
        keep = np.sort(rng.choice(len(held), min(len(held), config["eval_images"]), replace=False))
        images, labels = held.get_batch(keep)
        embeddings = embed_images(model, images)
        n_way = min(5, len(unseen))
        report = verification_report(*pair_distances(embeddings, labels))
        report["one_shot_accuracy"] = n_way_one_shot_accuracy(embeddings, labels, n_way=n_way, episodes=1000,
                                                              seed=config["seed"])
        report.update(n_way=n_way, images=int(len(keep)), classes=unseen)
        metrics = run.read_metrics()
        metrics.update(history=trainer.history, held_out=report, checkpoint="best")
        run.write_metrics(metrics)
    tar = report["tar_at_far"]
    print(f"held-out classes ({len(unseen)}, {report['images']:,} test images): {n_way}-way 1-shot accuracy "
          f"{report['one_shot_accuracy']:.3f}, ROC AUC {report['auc']:.4f}, EER {report['eer']:.4f}, "
          f"TAR@FAR=1e-2 {tar['0.01']['tar']:.3f}, TAR@FAR=1e-3 {tar['0.001']['tar']:.3f}")
    print(f"wrote {run.metrics_path}")
    return EXIT_OK


def classes_of(dataset) -> list:
    return [str(c) for c in dataset.classes]


def refuse_embedding_run(run_dir, command: str) -> None:
    """``evaluate`` / ``predict`` classify: an embedding run (``--task embed``) is a clear error."""
    if run_task(run_dir) == "embed":
        raise CLIError(f"{run_dir} is an embedding run (--task embed), not a classifier: `strided {command}` does "
                       f"not apply; its held-out classes' report (N-way 1-shot accuracy, ROC AUC, EER, TAR@FAR) "
                       f"is in {RunDir(run_dir).metrics_path}")
