"""Forward latency of whole models, strided (NHWC) against a PyTorch twin (NCHW) with the same weights.

    python benchmarks/models.py                          # resnet50 and mobilenet_v2, batch 1 and 8
    python benchmarks/models.py --only mobilenet --repeats 3
    python benchmarks/models.py --markdown benchmarks/RESULTS.md --append

Inference only: eval mode (batch norm uses the running statistics, dropout off), strided
under ``sd.no_grad()``, torch under ``torch.inference_mode()``, float32, 224x224x3 inputs.

The PyTorch twins are written here with plain ``torch.nn`` modules: a torchvision-style
ResNet-50 (bottleneck blocks, stride on the 3x3 convolution, "v1.5") and MobileNetV2
(torchvision's layout).  Their modules carry the same dotted names as strided's, so the
weights are copied *by name* from ``model.state_dict()``, every entry accounted for:

* conv HWIO ``(kh, kw, C_in/g, C_out)`` -> OIHW ``(C_out, C_in/g, kh, kw)``; a depthwise
  ``(kh, kw, 1, C)`` becomes ``(C, 1, kh, kw)`` by the same permutation;
* dense ``(in, out)`` -> ``(out, in)``;
* batch norm gamma/beta -> weight/bias, and the running mean/variance; all four are first
  set to random non-trivial values in strided, so that eval mode really uses them.

Before timing, each case's outputs (logits) are compared: ``max|strided - torch| /
max|torch|`` must be <= 1e-4, else the case is not timed.  Timing uses
``common.measure_interleaved`` (one process, same thread count, interleaved, warm-up,
settling, quiet gate, median).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

TARGET = 1.5
TOLERANCE = 1e-4
IMAGE = (224, 224, 3)
MODELS = ("resnet50", "mobilenet_v2")
NUM_CLASSES = 1000


@dataclass
class Case:
    model: str
    batch: int

    @property
    def name(self) -> str:
        return f"{self.model} {'x'.join(map(str, IMAGE))} N{self.batch}"


# --------------------------------------------------------------------------- PyTorch twins
def torch_twins(torch):
    """Build the twin classes (torch is imported lazily, after strided)."""
    tnn = torch.nn
    TF = torch.nn.functional
    from collections import OrderedDict

    class Bottleneck(tnn.Module):
        """1x1 reduce -> 3x3 (stride) -> 1x1 expand x4, BN after each, projection shortcut when needed."""
        expansion = 4

        def __init__(self, cin, planes, stride=1, downsample=None):
            super().__init__()
            cout = planes * self.expansion
            self.conv1 = tnn.Conv2d(cin, planes, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes, eps=1e-5)
            self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes, eps=1e-5)
            self.conv3 = tnn.Conv2d(planes, cout, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(cout, eps=1e-5)
            self.downsample = downsample

        def forward(self, x):
            y = TF.relu(self.bn1(self.conv1(x)))
            y = TF.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return TF.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet50(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64, eps=1e-5)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            self.in_planes = 64
            self.layer1 = self._stage(64, 3, 1)
            self.layer2 = self._stage(128, 4, 2)
            self.layer3 = self._stage(256, 6, 2)
            self.layer4 = self._stage(512, 3, 2)
            self.fc = tnn.Linear(2048, num_classes)

        def _stage(self, planes, blocks, stride):
            cout = planes * Bottleneck.expansion
            downsample = None
            if stride != 1 or self.in_planes != cout:
                downsample = tnn.Sequential(tnn.Conv2d(self.in_planes, cout, 1, stride, bias=False),
                                            tnn.BatchNorm2d(cout, eps=1e-5))
            layers = [Bottleneck(self.in_planes, planes, stride, downsample)]
            self.in_planes = cout
            layers += [Bottleneck(cout, planes) for _ in range(1, blocks)]
            return tnn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(TF.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(TF.adaptive_avg_pool2d(x, 1), 1))

    def conv_bn_act(cin, cout, k, stride=1, groups=1, act=True):
        layers = [tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                  tnn.BatchNorm2d(cout, eps=1e-5)]
        if act:
            layers.append(tnn.ReLU6())
        return tnn.Sequential(*layers)

    class InvertedResidual(tnn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hidden = round(cin * t)
            self.use_residual = stride == 1 and cin == cout
            layers = OrderedDict()
            if t != 1:
                layers["expand"] = conv_bn_act(cin, hidden, 1)
            layers["depthwise"] = conv_bn_act(hidden, hidden, 3, stride, groups=hidden)
            layers["project"] = conv_bn_act(hidden, cout, 1, act=False)
            self.conv = tnn.Sequential(layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_residual else self.conv(x)

    class MobileNetV2(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            features, c = [conv_bn_act(3, 32, 3, 2)], 32
            for t, cout, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                                  (6, 160, 3, 2), (6, 320, 1, 1)):
                for i in range(n):
                    features.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                    c = cout
            features.append(conv_bn_act(c, 1280, 1))
            self.features = tnn.Sequential(*features)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

        def forward(self, x):
            x = TF.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    return {"resnet50": ResNet50, "mobilenet_v2": MobileNetV2}


# --------------------------------------------------------------------------- weights
def randomise_bn(smodel, np, rng) -> int:
    """Random gamma, beta, running mean and variance in every strided BatchNorm2d; returns the count."""
    count = 0
    for _, m in smodel.named_modules():
        if hasattr(m, "running_mean") and hasattr(m, "gamma"):
            C = m.running_mean.shape[0]
            m.gamma.data[...] = rng.uniform(0.5, 1.5, C)
            m.beta.data[...] = rng.normal(0.0, 0.2, C)
            m.running_mean[...] = rng.normal(0.0, 0.2, C)
            m.running_var[...] = rng.uniform(0.5, 2.0, C)
            count += 1
    return count


def copy_weights(smodel, tmodel, np, torch) -> int:
    """Copy strided's state dict into the twin by name, converting layouts; returns entries copied.

    Every strided entry must land on a torch entry of the converted shape, and every torch
    parameter/buffer (except ``num_batches_tracked``) must be written.
    """
    rename = {"gamma": "weight", "beta": "bias"}
    target = tmodel.state_dict()
    written = set()
    with torch.no_grad():
        for name, value in smodel.state_dict().items():
            module, _, leaf = name.rpartition(".")
            tname = f"{module}.{rename.get(leaf, leaf)}"
            if tname not in target:
                raise KeyError(f"strided entry {name!r}: the twin has no {tname!r}")
            value = np.asarray(value)
            if leaf == "weight" and value.ndim == 4:
                value = value.transpose(3, 2, 0, 1)          # HWIO -> OIHW; depthwise (kh,kw,1,C) -> (C,1,kh,kw)
            elif leaf == "weight" and value.ndim == 2:
                value = value.T                              # dense (in, out) -> (out, in)
            value = np.ascontiguousarray(value, dtype=np.float32)
            if tuple(target[tname].shape) != value.shape:
                raise ValueError(f"{name} -> {tname}: strided {value.shape} vs torch {tuple(target[tname].shape)}")
            target[tname].copy_(torch.from_numpy(value))
            written.add(tname)
    missing = [k for k in target if k not in written and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"twin entries not written: {missing[:10]}")
    return len(written)


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--only", metavar="SUBSTRING",
                        help="run only the cases whose name contains this (case-insensitive), "
                             "e.g. 'resnet50', 'N8', 'mobilenet_v2 224x224x3 N1'")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--seed", type=int, default=0, help="random inputs, weights and BN statistics")
    args = parser.parse_args(argv)

    batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    cases = [Case(m, b) for m in MODELS for b in batches]
    cases = [c for c in cases if not args.only or args.only.lower() in c.name.lower()]
    if not cases:
        parser.error(f"no case name contains {args.only!r}; cases: "
                     f"{[Case(m, b).name for m in MODELS for b in batches]}")

    sd, np, torch = common.start(args.threads)
    from strided import models as sd_models
    twins = torch_twins(torch)

    gate = common.quiet_gate(args, np, torch)
    print(f"{common.settings_line(args, gate, before_each=True)}; forward only, eval mode, "
          "strided under no_grad, torch under inference_mode, float32\n", flush=True)

    header = ["case", "strided ms", "torch ms", "ratio", "target", "ratio of mins",
              "strided img/s", "torch img/s", "max rel err", "rounds redone / kept noisy"]
    rows, failures, checks = [], [], []
    built: dict = {}
    for i, case in enumerate(cases):
        try:
            if case.model not in built:
                rng = np.random.default_rng(args.seed)
                smodel = sd_models.create(case.model, num_classes=NUM_CLASSES)
                n_bn = randomise_bn(smodel, np, rng)
                tmodel = twins[case.model](NUM_CLASSES)
                n_copied = copy_weights(smodel, tmodel, np, torch)
                smodel.eval()
                tmodel.eval()
                n_s = smodel.num_parameters(trainable_only=False)
                n_t = sum(p.numel() for p in tmodel.parameters())
                if n_s != n_t:
                    raise AssertionError(f"{case.model}: strided has {n_s:,} parameters, the twin {n_t:,}")
                print(f"[{case.model}] {n_s:,} parameters; {n_copied} state entries copied by name, "
                      f"{n_bn} batch norms randomised", flush=True)
                built[case.model] = (smodel, tmodel)
            smodel, tmodel = built[case.model]

            x = np.random.default_rng(args.seed + 1 + i).standard_normal((case.batch,) + IMAGE).astype(np.float32)
            xs = sd.tensor(x)
            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

            with sd.no_grad():
                ours = smodel(xs).data
            with torch.inference_mode():
                theirs = tmodel(xt).numpy()
            err = common.rel_err(np, ours, theirs)
            ok = err <= TOLERANCE
            checks.append(f"{case.name}: max|strided - torch| / max|torch| = {err:.2e} "
                          f"(max|torch| {np.max(np.abs(theirs)):.3g}) -> {'ok' if ok else 'MISMATCH'}")
            print(f"[{case.name}] agreement {checks[-1].split(': ', 1)[1]}", flush=True)
            if not ok:
                failures.append(case.name)
                rows.append([case.name, "MISMATCH", "—", "—", common.verdict(None, TARGET), "—", "—", "—",
                             f"{err:.1e} (!)", "—"])
                continue

            def step_sd(smodel=smodel, xs=xs):
                t0 = time.perf_counter()
                with sd.no_grad():
                    smodel(xs)
                return {"total": time.perf_counter() - t0}

            def step_t(tmodel=tmodel, xt=xt):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    tmodel(xt)
                return {"total": time.perf_counter() - t0}

            samples = common.measure_interleaved({"strided": step_sd, "torch": step_t}, repeats=args.repeats,
                                                 warmup=args.warmup, settle=args.settle, gate=gate)
        except Exception:
            common.print_error(case.name)
            failures.append(case.name)
            rows.append([case.name, "ERROR", "—", "—", common.verdict(None, TARGET), "—", "—", "—", "—", "—"])
            continue
        s, t = samples["strided"], samples["torch"]
        ratio = s.median_ms() / t.median_ms()
        min_ratio = s.min_ms() / t.min_ms()
        print(f"[{case.name}] strided {s.median_ms():.2f} ms (min {s.min_ms():.2f}), torch {t.median_ms():.2f} ms "
              f"(min {t.min_ms():.2f}), ratio {ratio:.2f} (of mins {min_ratio:.2f}) | rounds redone {s.redone}, "
              f"kept noisy {s.noisy}", flush=True)
        rows.append([case.name, common.fmt_ms(s.median_ms()), common.fmt_ms(t.median_ms()),
                     common.fmt_ratio(ratio), common.verdict(ratio, TARGET), common.fmt_ratio(min_ratio),
                     f"{case.batch / (s.median_ms() / 1e3):,.1f}", f"{case.batch / (t.median_ms() / 1e3):,.1f}",
                     f"{err:.1e}", f"{s.redone} / {s.noisy}"])

    notes = [f"ratio = strided median / torch median forward time; lower is better (target <= {TARGET:g}). "
             f"{args.repeats} interleaved repeats after {args.warmup} warm-up rounds, {args.settle} s of untimed "
             f"runs of the same side before every timed run, quiet gate {'off' if gate is None else 'on'}. "
             "Eval mode; strided under no_grad (NHWC input), torch under inference_mode (NCHW input); the "
             "input layout conversion is not timed. 'max rel err' = max|strided - torch| / max|torch| of the "
             f"logits (must be <= {TOLERANCE:g}; BN statistics randomised, weights copied by name). "
             "'rounds redone / kept noisy': timed rounds discarded because the quiet gate saw a busy machine, "
             "and rounds kept although it was busy (then the row is suspect)."]
    notes.append("Agreement: " + "; ".join(checks) + ".")
    notes.append(common.missed_targets(rows))
    common.finish(args, "Models: forward latency (eval), strided (NHWC) vs PyTorch twin (NCHW), float32", header,
                  rows, notes, gate, shown_notes=notes[-1:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
