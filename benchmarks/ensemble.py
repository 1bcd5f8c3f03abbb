"""Test-time augmentation and ensembles on Fashion-MNIST: accuracy gained, inference cost paid.

    python benchmarks/ensemble.py --epochs 3 --limit 20000 --markdown benchmarks/ENSEMBLE.md
    python benchmarks/ensemble.py --runs runs/ens          # reuse runs/ens-seed0..4 if they exist

Trains LeNet-5 five times (``strided train --seeds 0,1,2,3,4``: the runs differ only by the seed),
then evaluates on the full test set (10,000 images):

* one model (each of the 5 seeds: mean, min and max), flip-TTA and 10-crop TTA of seed 0,
* ensembles of 3 (seeds 0-2) and 5 (seeds 0-4), and the 5-ensemble with flip-TTA.

TTA and ensembles average class probabilities (softmax), not logits (``strided.tta``).  The cost is
the measured wall time of evaluating the test set (best of ``--repeat``), as a multiple of the time
of one plain model; the number of forward passes per image is printed beside it.

Run from the repository root; ``strided`` is imported before NumPy (see common.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only)

common.import_strided()

import numpy as np  # noqa: E402

from strided.cli import main as cli_main  # noqa: E402
from strided.cli.common import load_data, load_run  # noqa: E402
from strided.data import DataLoader  # noqa: E402
from strided.train import Ensemble, evaluate  # noqa: E402
from strided.tta import TTAModel  # noqa: E402


def timed_evaluate(model, test, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = evaluate(model, DataLoader(test, batch_size=256))
        best = min(best, time.perf_counter() - start)
    return result["accuracy"], result["loss"], best


PHOTOS = {"chelsea": "tabby / tiger cat / Egyptian cat", "coffee": "espresso / cup / coffee mug",
          "rocket": "space shuttle / missile / projectile", "astronaut": "(a person: no ImageNet class)",
          "hubble_deep_field": "(galaxies: no ImageNet class)", "immunohistochemistry": "(tissue: no class)"}


def photos_table(repeat: int) -> list:
    """efficientnet_lite0 (pretrained) on scikit-image's sample photos: top-1 and its probability per
    TTA mode, and the time per photo as a multiple of the plain pass (``classify``: 0.875 centre crop)."""
    from skimage import data as skdata

    from strided import models
    from strided.data.image import to_float
    from strided.models.imagenet import IMAGENET_CLASSES
    from strided.models.pretrained import IMAGE_SIZE, classify
    from strided.tta import CROP_FRACTION, predict_tta, resize_shorter_side

    model = models.create("efficientnet_lite0", pretrained=True)
    side = int(round(IMAGE_SIZE / CROP_FRACTION))
    lines = [f"efficientnet_lite0 (pretrained, ImageNet) on scikit-image sample photos; TTA views from the photo "
             f"resized to shorter side {side}, crops of {IMAGE_SIZE}; top-1 class and its probability; "
             f"time per photo, best of {repeat}.", "",
             "| photo | expected | none (classify) | flip | 10crop | seconds none / flip / 10crop |",
             "|---|---|---|---|---|---|"]
    totals = np.zeros(3)
    for name, expected in PHOTOS.items():
        photo = getattr(skdata, name)()
        if photo.ndim == 2:
            photo = np.repeat(photo[:, :, None], 3, axis=2)
        canvas = (to_float(resize_shorter_side(photo[:, :, :3], side))[None] * 255.0 - 127.0) / 128.0
        cells, seconds = [], []
        for mode in ("none", "flip", "10crop"):
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                if mode == "none":
                    i, label, p = classify(model, photo[:, :, :3], 1)[0]
                else:
                    probs = predict_tta(model, canvas.astype(np.float32), mode, size=IMAGE_SIZE)[0]
                    i = int(probs.argmax())
                    label, p = IMAGENET_CLASSES[i], float(probs[i])
                best = min(best, time.perf_counter() - start)
            cells.append(f"{label} {p:.1%}")
            seconds.append(best)
        totals += seconds
        lines.append(f"| {name} | {expected} | " + " | ".join(cells) + " | "
                     + " / ".join(f"{t:.2f}" for t in seconds) + " |")
    lines.append(f"\ncost over the {len(PHOTOS)} photos: flip {totals[1] / totals[0]:.1f}x, "
                 f"10crop {totals[2] / totals[0]:.1f}x the plain pass (2 and 10 forward passes).")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs/ensemble-lenet5", help="OUT of `strided train --seeds` (OUT-seedN)")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=20000, help="training images per run (0: all 60,000)")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--repeat", type=int, default=2, help="timing: best of this many evaluations")
    p.add_argument("--markdown", default=None, help="write the table to this file")
    p.add_argument("--augment", action="store_true",
                   help="train the members with --augment (Fashion-MNIST: mirror + shift of up to 2 pixels, the "
                        "very views flip-TTA and 10-crop average over)")
    p.add_argument("--append", action="store_true", help="append to --markdown instead of replacing it")
    p.add_argument("--photos", action="store_true",
                   help="also efficientnet_lite0 (pretrained) with TTA on scikit-image's sample photos")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [f"{args.runs}-seed{s}" for s in seeds]
    missing = [s for s, r in zip(seeds, runs) if not os.path.exists(os.path.join(r, "metrics.json"))]
    train_seconds = None
    if missing:
        start = time.perf_counter()
        code = cli_main(["train", "--model", args.model, "--data", "fashion-mnist", "--epochs", str(args.epochs),
                         "--limit", str(args.limit), "--seeds", ",".join(map(str, missing)), "--out", args.runs,
                         "--no-progress", "--overwrite", *(["--augment"] if args.augment else [])])
        if code != 0:
            return code
        train_seconds = time.perf_counter() - start
    loaded = [load_run(r, "best") for r in runs]
    config = loaded[0][1]
    models = [m for _, _, m in loaded]
    _, test = load_data({**config, "limit": 0})

    rows = []
    singles = [timed_evaluate(m, test, args.repeat) for m in models]
    base_time = singles[0][2]
    accs = [a for a, _, _ in singles]

    def add(name, passes, acc, loss, seconds):
        rows.append((name, passes, acc, loss, seconds, seconds / base_time))

    add(f"one model (seed {seeds[0]})", 1, *singles[0])
    for mode, passes in (("flip", 2), ("10crop", 10)):
        add(f"one model, --tta {mode}", passes, *timed_evaluate(TTAModel(models[0], mode), test, args.repeat))
    for n in (3, 5):
        if n <= len(models):
            add(f"ensemble of {n} (seeds {seeds[0]}-{seeds[n - 1]})", n,
                *timed_evaluate(Ensemble(models[:n]), test, args.repeat))
    if len(models) >= 5:
        add("ensemble of 5, --tta flip", 10, *timed_evaluate(TTAModel(Ensemble(models[:5]), "flip"), test,
                                                             args.repeat))

    load = os.getloadavg()
    lines = [f"## {args.model}, trained {'with' if config['augment'] else 'without'} --augment", "",
             f"{args.model} on Fashion-MNIST, {config['epochs']} epochs on {config['limit'] or 60000:,} training "
             f"images per member (seeds {args.seeds}); test set {len(test):,} images.",
             f"single models over the {len(accs)} seeds: mean {np.mean(accs):.2%}, min {min(accs):.2%}, "
             f"max {max(accs):.2%}.",
             f"cost = measured evaluation time / one model's ({base_time:.2f} s), best of {args.repeat}; "
             f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs (shared machine).",
             "", "| setting | forward passes / image | test accuracy | test loss (NLL of averaged probs) | "
                 "seconds | cost (x one model) |", "|---|---|---|---|---|---|"]
    for name, passes, acc, loss, seconds, cost in rows:
        lines.append(f"| {name} | {passes} | {acc:.2%} | {loss:.4f} | {seconds:.2f} | {cost:.1f} |")
    if train_seconds is not None:
        lines.append(f"\ntraining the {len(missing)} member(s) took {train_seconds:.0f} s in all.")
    if args.photos:
        lines += ["", "## Real photos", ""] + photos_table(args.repeat)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        from strided.fileio import atomic_write_text
        command = "`python benchmarks/ensemble.py " + " ".join(argv or sys.argv[1:]) + "`\n\n"
        before = ""
        if args.append and os.path.exists(args.markdown):
            with open(args.markdown, encoding="utf-8") as f:
                before = f.read() + "\n"
        else:
            before = "# Test-time augmentation and ensembles (measured)\n\n"
        atomic_write_text(args.markdown, before + command + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
