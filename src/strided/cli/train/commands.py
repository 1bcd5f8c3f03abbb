"""The parsers of ``strided train``, ``evaluate`` and ``predict`` (:func:`register`), and
:func:`cmd_train`, which sends a run to its task: classify, detect or embed (or ``--seeds``: one
run per seed)."""
from __future__ import annotations

from ..common import is_detection
from ..errors import EXIT_OK, CLIError
from .classify import train_classifier
from .config import new_run, parse_number_list, resume_run
from .detect import NUM_ANCHORS, train_detection
from .embed import add_embed_arguments, task_of, train_embed
from .evaluate import cmd_evaluate
from .predict import WEIGHT_SUFFIXES, cmd_predict

__all__ = ["register", "add_train_parser", "add_evaluate_parser", "add_predict_parser", "add_tta_arguments",
           "cmd_train", "train_seeds", "OPTIMIZERS", "SCHEDULES"]


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "step", "cosine", "onecycle")


def add_train_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train a model on a data set",
        description="Train a model; the run directory gets checkpoints, metrics and plots. "
                    "--resume continues a run with its own settings (only --epochs may extend it).")
    p.add_argument("--task", choices=("classify", "detect", "embed"), default=None,
                   help="classify (default): one class per image; detect: a YOLO detector on a scenes data set "
                        "(boxes; see the detection options below); embed: an embedding by metric learning "
                        "(see the metric-learning options below)")
    p.add_argument("--model", default=None, help="architecture (see strided.models.list_models()); default lenet5 "
                                                 "(yolo_tiny with --task detect)")
    p.add_argument("--data", default=None,
                   help="data set: fashion-mnist (default), mnist-5k, digits, lfw-faces, folder:PATH, "
                        "h5:TRAIN.h5[,TEST.h5]; with --task detect: digit-scenes (default) or fashion-scenes. folder: photos may differ in size: each is scaled so its shorter "
                        "side fits and its centre is cut out, to --input-size or the model's input size")
    p.add_argument("--data-root", default=None, help="folder with the data set's files, if not the default place")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=None, help="default 64")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="default adam")
    p.add_argument("--momentum", type=float, default=None, help="for sgd and rmsprop (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=None, help="default 0")
    p.add_argument("--schedule", choices=SCHEDULES, default=None, help="learning-rate schedule (default none)")
    p.add_argument("--augment", action="store_true", default=None,
                   help="train on augmented copies (mirror, crop, ...)")
    p.add_argument("--val-split", type=float, default=None,
                   help="fraction of the training set held out (default 0.1)")
    p.add_argument("--patience", type=int, default=None, help="early stopping after this many epochs without "
                                                              "improvement of the validation loss (default 0: off)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training images (quick runs; default 0: all); with --task detect: "
                        "generate N training scenes (default 0: the set's 8000)")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                   help="train one run per seed (ensemble members that differ only by the seed: initial weights, "
                        "shuffling, validation split), into sibling run directories OUT-seedS1, OUT-seedS2, ...; "
                        "needs --out; evaluate them together with `strided evaluate OUT-seed* --ensemble`")
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL-DATA-TIME); an existing run is "
                                               "refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="replace the run already in --out (its checkpoints, metrics and pictures are deleted)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its last checkpoint (same epoch, optimizer state, "
                        "random streams); --epochs may extend it, other options are refused")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (the one line per epoch is still printed)")
    t = p.add_argument_group("transfer learning", "start from pretrained ImageNet weights (efficientnet_lite0); "
                                                  "see strided.transfer")
    t.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                   help="load pretrained weights (from the installed package, or PATH) for every layer but the "
                        "classifier; images are resized to --input-size and made RGB")
    t.add_argument("--freeze", choices=("none", "base"), default=None,
                   help="base: train only the new head (the base's BatchNorms use their running statistics)")
    t.add_argument("--fine-tune", type=int, default=None, metavar="N",
                   help="with --freeze base: train the head for the first ceil(epochs/2) epochs, then unfreeze the "
                        "top N blocks of the base for the remaining ones at lr/10 (their BatchNorms stay frozen)")
    t.add_argument("--cache-features", nargs="?", const=True, default=None, metavar="DIR",
                   help="with --freeze base: compute the frozen base's features once and train the head on them "
                        "(cached as .npz in DIR, default <out>/../.feature-cache, reused by later runs)")
    t.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="with --pretrained: side of the network's input (default 128; the weights were trained at "
                        "224). Without --pretrained (folder: data only): every photo is scaled so its shorter side "
                        "is N and its centre NxN cut out (default: the model's input size, when the photos differ "
                        "in size)")
    d = p.add_argument_group("detection (--task detect)",
                             "a YOLO detector on generated scenes; --input-size N is the scenes' side (default 96, a "
                             "multiple of 16), --augment flips, scales, shifts and recolours images with their boxes")
    d.add_argument("--net-size", type=int, default=None, metavar="N",
                   help="side the network sees (default: --input-size, the scenes' side): the scenes are resized "
                        "to N x N for training, validation, test and `strided detect`, e.g. 128 on 96 scenes: "
                        "small objects cover more cells of the stride-16 grid (costs (N / side)^2 the time)")
    d.add_argument("--test-limit", type=int, default=None, metavar="N",
                   help="generate N test scenes (default 0: the set's 1000)")
    d.add_argument("--fresh-scenes", action="store_true", default=None,
                   help="draw new training scenes every epoch (--limit of them, less the --val-split held out, "
                        "which stay one fixed set) instead of training on one fixed set: no scene is seen twice")
    d.add_argument("--anchors", choices=("kmeans", "default"), default=None,
                   help=f"kmeans (default): {NUM_ANCHORS} anchors by k-means with the 1 - IoU distance on the "
                        "training boxes; default: the model's own (yolo_tiny's, from k-means on digit and fashion "
                        "scenes of 96x96); recorded in config.json")
    add_embed_arguments(p)
    p.set_defaults(func=cmd_train)


def add_evaluate_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="test accuracy of a trained run (detection: mAP50, mAP50-95, "
                                               "per-class AP)")
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                   help="run directory written by `strided train` (several with --ensemble)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    add_tta_arguments(p)
    p.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                   help="detection runs: the network sides to run at (default: the run's --net-size); several "
                        "sides, or --tta flip (mirrored views), pool every view's boxes before NMS")
    p.add_argument("--merge", choices=("nms", "wbf"), default=None,
                   help="detection runs with several views: nms (default) pools their boxes before NMS; wbf fuses "
                        "each view's own detections (weighted boxes fusion: boxes of one object averaged by score, "
                        "scores scaled by the share of the views that found it)")
    p.set_defaults(func=cmd_evaluate)


def add_tta_arguments(p) -> None:
    g = p.add_argument_group(
        "test-time augmentation and ensembles",
        "class PROBABILITIES (softmax) are averaged over the views and the members, not logits. Views: the "
        "centre, its mirror (flip) or AlexNet/VGG's 10 crops (4 corners + centre, and their mirrors) of size "
        "S (the model's input) from a canvas whose shorter side is S/0.875: images already S x S are "
        "zero-padded (28 -> 32), larger photos are resized (224 -> 256). Cost: 1, 2 or 10 forward passes per "
        "image, times the number of members")
    g.add_argument("--tta", choices=("none", "flip", "10crop"), default="none",
                   help="test-time augmentation (default none)")
    g.add_argument("--ensemble", action="store_true",
                   help="average several runs (RUN_DIR RUN_B ...): same classes and input shape required; "
                        "detection runs (evaluate): every member's boxes pooled (--merge), same data and classes")
    g.add_argument("--weights", default=None, metavar="W1,W2,...",
                   help="with --ensemble: one weight per run, normalised to sum to 1 (default equal)")


def add_predict_parser(subparsers):
    p = subparsers.add_parser(
        "predict", help="classify images with a trained run or a pretrained ImageNet model",
        usage="strided predict RUN_DIR IMAGE... [--top N] [--checkpoint {best,last}] [--tta MODE]\n"
              "       strided predict RUN_DIR RUN_B ... IMAGE... --ensemble [--weights W1,W2,...] [--tta MODE]\n"
              "       strided predict [--model NAME] --pretrained [PATH] IMAGE... [--top N] [--tta MODE]",
        description="Classify images: `strided predict RUN_DIR IMAGE...` with a run of `strided train`, or "
                    "`strided predict --model efficientnet_lite0 --pretrained IMAGE...` with pretrained ImageNet "
                    "weights (1000 classes; from the installed package, or --pretrained PATH.pth).")
    p.add_argument("paths", nargs="*", metavar="RUN_DIR IMAGE...",
                   help="run directory written by `strided train` (not with --pretrained; several run "
                        "directories with --ensemble), then image files (any format Pillow reads)")
    p.add_argument("--top", type=int, default=None,
                   help="how many classes to show per image (default 3; 5 with --pretrained)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--model", default=None,
                   help="with --pretrained: the architecture (default efficientnet_lite0)")
    p.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="PATH",
                   help="use pretrained ImageNet weights instead of a run: from the installed package, or from "
                        "PATH (a file ending in " + ", ".join(WEIGHT_SUFFIXES) + ")")
    add_tta_arguments(p)
    p.set_defaults(func=cmd_predict)


def register(subparsers):
    """Add ``strided train``, ``evaluate`` and ``predict`` to the top-level ``subparsers``."""
    add_train_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_predict_parser(subparsers)


def cmd_train(args) -> int:
    """``strided train``: a new run (``--out``), or ``--resume RUN_DIR``."""
    if getattr(args, "seeds", None) is not None:
        return train_seeds(args)
    if task_of(args) == "embed":
        return train_embed(args)
    resumed = None
    if args.resume:
        resumed = resume_run(args)
        run, config = resumed.run, resumed.config
        if resumed.finished:
            metrics = run.read_metrics()
            score = (f"test mAP50 {metrics['test_mAP50']:.4f}" if is_detection(config)
                     else f"test accuracy {metrics['test_accuracy']:.2%}")
            print(f"{run} is finished: {resumed.epoch} of {config['epochs']} epochs trained, {score}; nothing to do (its files are unchanged). To train it longer: "
                  f"strided train --resume {run} --epochs N (N > {resumed.epoch})")
            return EXIT_OK
    else:
        run, config = new_run(args)
    if is_detection(config):
        return train_detection(args, run, config, resumed)
    return train_classifier(args, run, config, resumed)


def train_seeds(args) -> int:
    """``strided train ... --seeds 0,1,2 --out OUT``: one run per seed into ``OUT-seed0``, ``OUT-seed1``, ...
    (everything else identical), one after the other; stops at the first run that does not finish."""
    import copy

    seeds = parse_number_list(args.seeds, "--seeds", int)
    if len(set(seeds)) != len(seeds):
        raise CLIError(f"--seeds must be different from each other, received {args.seeds}")
    if args.out is None:
        raise CLIError("--seeds needs --out OUT: the runs go to OUT-seed0, OUT-seed1, ...")
    if args.resume or args.seed is not None:
        raise CLIError("--seeds cannot be combined with --resume or --seed (resume each run on its own: "
                       "strided train --resume OUT-seedN)")
    for seed in seeds:
        member = copy.copy(args)
        member.seeds, member.seed, member.out = None, seed, f"{args.out}-seed{seed}"
        print(f"== seed {seed}: {member.out}")
        code = cmd_train(member)
        if code != EXIT_OK:
            return code
    print("evaluate them together with: strided evaluate " + " ".join(f"{args.out}-seed{s}" for s in seeds)
          + " --ensemble")
    return EXIT_OK
