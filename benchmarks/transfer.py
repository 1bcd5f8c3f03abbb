"""Transfer learning on two small real tasks: pretrained frozen EfficientNet-Lite0 + new head vs training from scratch.

    python benchmarks/transfer.py                 # both tasks, results as a Markdown table (-> TRANSFER.md)
    python benchmarks/transfer.py --task lfw --scratch-epochs 8 --size 128

(a) lfw-faces: scikit-image's lfw_subset, 150 train / 50 test grey 25x25 crops, face vs non-face.
(b) photos: a 3-class image folder built offline from scikit-image's sample photos: "cat" = crops of
    chelsea, "coffee" = crops of coffee, "rocket" = crops of rocket.  Training crops come from the left 60 %
    of each photo, test crops from the right 40 % (no pixel of a test crop was seen in training); crops of
    side 25-60 % of the photo's height, resized to 96x96, training ones randomly mirrored and colour-jittered.

Methods, each trained for the same number of epochs on the same images:
  pretrained head   efficientnet_lite0 pretrained on ImageNet, base frozen, features computed once (cached), a new
                    Linear head trained on them (train_head, Adam 3e-3)
  lite0 scratch     the same architecture and input pipeline, random init, every layer trained (Adam 1e-3)
  small CNN scratch vgg_small (3 conv stages, ~0.3 M parameters) at the data set's own resolution (Adam 1e-3)
Everything runs on the CPU (keep it modest on a shared 2-core machine).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import strided as sd
from strided import models, optim
from strided.data import DataLoader, load
from strided.train import Trainer, evaluate
from strided.transfer import (extract_features, freeze_base, resize_for, set_head, split_base_head, train_head,
                              with_input_adapter)

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / "runs" / ".transfer-cache"      # runs/ is git-ignored


def build_photo_folder(root: Path, per_class_train=60, per_class_test=20, size=96, seed=0) -> Path:
    """Write root/{train,test}/{cat,coffee,rocket}/*.png from scikit-image's photos (idempotent)."""
    from PIL import Image
    import skimage.data

    if (root / "test" / "rocket").is_dir() and len(list((root / "test" / "rocket").glob("*.png"))) == per_class_test:
        return root
    rng = np.random.default_rng(seed)
    photos = {"cat": skimage.data.chelsea(), "coffee": skimage.data.coffee(), "rocket": skimage.data.rocket()}
    for split, count in (("train", per_class_train), ("test", per_class_test)):
        for name, photo in photos.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            H, W = photo.shape[:2]
            x0, x1 = (0, int(0.6 * W)) if split == "train" else (int(0.6 * W), W)
            for i in range(count):
                side = int(rng.uniform(0.25, 0.6) * H)
                side = min(side, x1 - x0)
                top, left = rng.integers(0, H - side + 1), rng.integers(x0, x1 - side + 1)
                crop = photo[top:top + side, left:left + side]
                image = Image.fromarray(crop).resize((size, size), Image.BILINEAR)
                array = np.asarray(image).astype(np.float32)
                if split == "train":
                    if rng.random() < 0.5:
                        array = array[:, ::-1]
                    array = array * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20, 3)
                Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def pretrained_head(train, test, size, epochs, seed=0):
    sd.manual_seed(seed)
    t0 = time.perf_counter()
    model = models.create("efficientnet_lite0", pretrained=True, num_classes=train.num_classes)
    freeze_base(model)
    base = split_base_head(model).base
    t1 = time.perf_counter()
    ftr, ytr = extract_features(base, train, input_size=size, cache_path=CACHE)
    fte, yte = extract_features(base, test, input_size=size, cache_path=CACHE)
    t2 = time.perf_counter()
    ftr2, _ = extract_features(base, train, input_size=size, cache_path=CACHE)   # cache hit
    t3 = time.perf_counter()
    head, history = train_head(ftr, ytr, train.num_classes, epochs=epochs, lr=3e-3, batch_size=32,
                               val=(fte, yte), seed=seed)
    t4 = time.perf_counter()
    set_head(model, head)
    # the full model (adapter + base + head) on the raw test images gives the same accuracy as the head on features
    full = evaluate(with_input_adapter(model, size), DataLoader(test, batch_size=32))["accuracy"]
    return {"accuracy": history[-1]["val_accuracy"], "full_model_accuracy": full,
            "features_s": t2 - t1, "cache_hit_s": t3 - t2, "train_s": t4 - t3, "load_s": t1 - t0,
            "trainable": model.num_parameters()}


def scratch(model, train, test, epochs, lr=1e-3, batch_size=32, seed=0):
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, seed=seed)
    trainer = Trainer(model, optim.Adam(model.parameters(trainable_only=True), lr), progress=False)
    t0 = time.perf_counter()
    trainer.fit(loader, epochs)
    t1 = time.perf_counter()
    return {"accuracy": evaluate(model, DataLoader(test, batch_size=32))["accuracy"], "train_s": t1 - t0,
            "trainable": model.num_parameters()}


def run_task(name, train, test, size, head_epochs, scratch_epochs, skip_lite_scratch=False):
    rows = []
    print(f"== {name}: {len(train)} train / {len(test)} test, {train.image_shape}, classes {train.classes}",
          flush=True)
    t = time.perf_counter()
    resize_for(size, train.images[:32])
    per_image_resize_ms = (time.perf_counter() - t) / min(32, len(train)) * 1e3
    for epochs in sorted({scratch_epochs, head_epochs}):
        r = pretrained_head(train, test, size, epochs)
        rows.append((name, f"pretrained lite0, frozen base + new head ({size}px)", epochs, r))
        print(rows[-1], flush=True)
    sd.manual_seed(0)
    small = models.create("vgg_small", num_classes=train.num_classes, in_channels=train.image_shape[-1])
    r = scratch(small, train, test, scratch_epochs)
    rows.append((name, f"vgg_small from scratch ({train.image_shape[0]}px)", scratch_epochs, r))
    print(rows[-1], flush=True)
    if not skip_lite_scratch:
        sd.manual_seed(0)
        lite = with_input_adapter(models.create("efficientnet_lite0", num_classes=train.num_classes), size)
        r = scratch(lite, train, test, scratch_epochs)
        rows.append((name, f"lite0 from scratch ({size}px)", scratch_epochs, r))
        print(rows[-1], flush=True)
    return rows, per_image_resize_ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("lfw", "photos", "all"), default="all")
    parser.add_argument("--size", type=int, default=128, help="network input side for lite0 (default 128)")
    parser.add_argument("--head-epochs", type=int, default=30)
    parser.add_argument("--scratch-epochs", type=int, default=8)
    parser.add_argument("--skip-lite-scratch", action="store_true")
    args = parser.parse_args(argv)
    all_rows, notes = [], []
    if args.task in ("lfw", "all"):
        train, test = load("lfw-faces")
        rows, ms = run_task("lfw-faces", train, test, args.size, args.head_epochs, args.scratch_epochs,
                            args.skip_lite_scratch)
        all_rows += rows
        notes.append(f"lfw-faces resize 25x25x1 -> {args.size}x{args.size}x3: {ms:.2f} ms/image")
    if args.task in ("photos", "all"):
        root = build_photo_folder(HERE.parent / "runs" / ".transfer-photos")
        train, test = load(f"folder:{root}")
        rows, ms = run_task("photos (cat/coffee/rocket)", train, test, args.size, args.head_epochs,
                            args.scratch_epochs, args.skip_lite_scratch)
        all_rows += rows
        notes.append(f"photos resize 96x96x3 -> {args.size}x{args.size}x3: {ms:.2f} ms/image")
    print("\n| task | method | epochs | test accuracy | trainable params | time |")
    print("|---|---|---|---|---|---|")
    for task, method, epochs, r in all_rows:
        extra = (f"features {r['features_s']:.1f} s (cache hit {r['cache_hit_s']:.2f} s), head {r['train_s']:.2f} s"
                 if "features_s" in r else f"{r['train_s']:.1f} s")
        print(f"| {task} | {method} | {epochs} | {r['accuracy']:.1%} | {r['trainable']:,} | {extra} |")
    for note in notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
