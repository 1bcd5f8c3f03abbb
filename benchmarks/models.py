"""Forward latency of whole models, strided (NHWC) against a PyTorch twin (NCHW) with the same weights.

    python benchmarks/models.py                          # resnet50, vgg16, mobilenet_v2, efficientnet_lite0; N 1 and 8
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

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

TARGETS = {"resnet50": 1.2, "vgg16": 1.2, "mobilenet_v2": 1.3, "efficientnet_lite0": 1.3}  # issue 11
TOLERANCE = 1e-4
IMAGE = (224, 224, 3)
MODELS = tuple(TARGETS)
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

    class VGG16(tnn.Module):
        """torchvision's VGG-16 layout; the flatten is NHWC (strided's order of classifier.0's rows)."""

        def __init__(self, num_classes):
            super().__init__()
            layers, c = [], 3
            for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
                if v == "M":
                    layers.append(tnn.MaxPool2d(2, 2))
                else:
                    layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.ReLU(inplace=True)]
                    c = v
            self.features = tnn.Sequential(*layers)
            self.classifier = tnn.Sequential(tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(inplace=True), tnn.Dropout(),
                                             tnn.Linear(4096, 4096), tnn.ReLU(inplace=True), tnn.Dropout(),
                                             tnn.Linear(4096, num_classes))

        def forward(self, x):
            x = TF.adaptive_avg_pool2d(self.features(x), 7)
            return self.classifier(torch.flatten(x.permute(0, 2, 3, 1), 1))

    class SameConv2d(tnn.Conv2d):
        """TensorFlow 'same' padding: output ceil(n / stride), the odd pixel padded after."""

        def forward(self, x):
            pads = []
            for n, k, st in zip(x.shape[-2:], self.kernel_size, self.stride):
                total = max((-(-n // st) - 1) * st + k - n, 0)
                pads.append((total // 2, total - total // 2))
            (top, bottom), (left, right) = pads
            return super().forward(TF.pad(x, (left, right, top, bottom)))

    def lite_conv_bn_act(cin, cout, k, stride=1, groups=1, act=True):
        conv = (SameConv2d(cin, cout, k, stride, 0, groups=groups, bias=False) if k > 1
                else tnn.Conv2d(cin, cout, 1, stride, 0, groups=groups, bias=False))
        layers = [conv, tnn.BatchNorm2d(cout, eps=1e-3)]
        if act:
            layers.append(tnn.ReLU6())
        return tnn.Sequential(*layers)

    class MBConvLite(tnn.Module):
        def __init__(self, cin, cout, k, stride, t):
            super().__init__()
            hidden = cin * t
            self.use_residual = stride == 1 and cin == cout
            layers = OrderedDict()
            if hidden != cin:
                layers["expand"] = lite_conv_bn_act(cin, hidden, 1)
            layers["depthwise"] = lite_conv_bn_act(hidden, hidden, k, stride, groups=hidden)
            layers["project"] = lite_conv_bn_act(hidden, cout, 1, act=False)
            self.block = tnn.Sequential(layers)

        def forward(self, x):
            return x + self.block(x) if self.use_residual else self.block(x)

    class EfficientNetLite0(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            features, c = [lite_conv_bn_act(3, 32, 3, 2)], 32
            for t, k, s, _, cout, n in ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                                        (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                                        (6, 3, 1, 192, 320, 1)):
                features.append(tnn.Sequential(*[MBConvLite(c if j == 0 else cout, cout, k, s if j == 0 else 1, t)
                                                 for j in range(n)]))
                c = cout
            features.append(lite_conv_bn_act(c, 1280, 1))
            self.features = tnn.Sequential(*features)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

        def forward(self, x):
            x = TF.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    return {"resnet50": ResNet50, "mobilenet_v2": MobileNetV2, "vgg16": VGG16,
            "efficientnet_lite0": EfficientNetLite0}


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
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

    sd, np, torch = common.load_runtime(args.threads)
    from strided import models as sd_models
    twins = torch_twins(torch)

    for line in common.environment_lines():
        print(line)
    gate = None if args.no_gate else common.QuietGate(np, torch)
    print(f"repeats {args.repeats} (interleaved, median), warm-up {args.warmup}, settle {args.settle} s "
          f"before each timed run, quiet gate {'off' if gate is None else 'on'}; forward only, eval mode, "
          "strided under no_grad, torch under inference_mode, float32\n", flush=True)

    header = ["case", "strided ms", "fused ms", "torch ms", "ratio", "fused ratio", "target (fused)",
              "fused ratio of mins", "fused img/s", "torch img/s", "max rel err (plain / fused)",
              "rounds redone / kept noisy"]
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
                t0 = time.perf_counter()
                fmodel = sd.nn.fuse(smodel)
                print(f"[{case.model}] {n_s:,} parameters; {n_copied} state entries copied by name, "
                      f"{n_bn} batch norms randomised; fused in {time.perf_counter() - t0:.2f} s", flush=True)
                built[case.model] = (smodel, fmodel, tmodel)
            smodel, fmodel, tmodel = built[case.model]
            target = TARGETS[case.model]

            x = np.random.default_rng(args.seed + 1 + i).standard_normal((case.batch,) + IMAGE).astype(np.float32)
            xs = sd.tensor(x)
            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

            with sd.no_grad():
                ours = smodel(xs).data
                fused = fmodel(xs).data
            with torch.inference_mode():
                theirs = tmodel(xt).numpy()
            err, ferr = common.rel_err(np, ours, theirs), common.rel_err(np, fused, theirs)
            ok = max(err, ferr) <= TOLERANCE
            checks.append(f"{case.name}: max|strided - torch| / max|torch| = {err:.2e}, fused {ferr:.2e} "
                          f"(max|torch| {np.max(np.abs(theirs)):.3g}) -> {'ok' if ok else 'MISMATCH'}")
            print(f"[{case.name}] agreement {checks[-1].split(': ', 1)[1]}", flush=True)
            if not ok:
                failures.append(case.name)
                rows.append([case.name, "MISMATCH", "—", "—", "—", "—", common.verdict(None, target), "—", "—",
                             "—", f"{err:.1e} / {ferr:.1e} (!)", "—"])
                continue

            def step_sd(smodel=smodel, xs=xs):
                t0 = time.perf_counter()
                with sd.no_grad():
                    smodel(xs)
                return {"total": time.perf_counter() - t0}

            def step_f(fmodel=fmodel, xs=xs):
                t0 = time.perf_counter()
                with sd.no_grad():
                    fmodel(xs)
                return {"total": time.perf_counter() - t0}

            def step_t(tmodel=tmodel, xt=xt):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    tmodel(xt)
                return {"total": time.perf_counter() - t0}

            samples = common.measure_interleaved({"strided": step_sd, "fused": step_f, "torch": step_t},
                                                 repeats=args.repeats,
                                                 warmup=args.warmup, settle=args.settle, gate=gate)
        except Exception:
            tb = traceback.format_exc()
            print(f"[{case.name}] ERROR\n{tb}", file=sys.stderr, flush=True)
            failures.append(case.name)
            rows.append([case.name, "ERROR", "—", "—", "—", "—", common.verdict(None, TARGETS[case.model]), "—",
                         "—", "—", "—", "—"])
            continue
        s, f, t = samples["strided"], samples["fused"], samples["torch"]
        ratio = s.median_ms() / t.median_ms()
        fratio = f.median_ms() / t.median_ms()
        min_ratio = f.min_ms() / t.min_ms()
        print(f"[{case.name}] strided {s.median_ms():.2f} ms, fused {f.median_ms():.2f} ms (min {f.min_ms():.2f}), "
              f"torch {t.median_ms():.2f} ms (min {t.min_ms():.2f}), ratio {ratio:.2f}, fused {fratio:.2f} "
              f"(of mins {min_ratio:.2f}) | rounds redone {s.redone}, kept noisy {s.noisy} | load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        rows.append([case.name, common.fmt_ms(s.median_ms()), common.fmt_ms(f.median_ms()),
                     common.fmt_ms(t.median_ms()),
                     common.fmt_ratio(ratio), common.fmt_ratio(fratio), common.verdict(fratio, target),
                     common.fmt_ratio(min_ratio), f"{case.batch / (f.median_ms() / 1e3):,.1f}",
                     f"{case.batch / (t.median_ms() / 1e3):,.1f}", f"{err:.1e} / {ferr:.1e}",
                     f"{s.redone} / {s.noisy}"])

    if gate is not None:
        print(f"\nquiet gate: waited {gate.waited:.1f} s in all; best threaded probe {gate.best * 1e3:.3f} ms")
    print()
    table = common.print_table(header, rows)
    missed = [r[0] for r in rows if "MISSED" in r[6] or "ERROR" in r[6]]
    notes = ["ratio = strided median / torch median forward time; lower is better. 'fused' is the same strided "
             "model after strided.nn.fuse(model) (eval batch norm folded into the convolutions, ReLU/ReLU6 "
             "applied in the convolution's pass); the target (issue 11: 1.2 for resnet50 and vgg16, 1.3 for "
             "mobilenet_v2 and efficientnet_lite0) is judged on the fused ratio; torch runs its eager eval model "
             "(no folding). "
             f"{args.repeats} interleaved repeats after {args.warmup} warm-up rounds, {args.settle} s of untimed "
             f"runs of the same side before every timed run, quiet gate {'off' if gate is None else 'on'}. "
             "Eval mode; strided under no_grad (NHWC input), torch under inference_mode (NCHW input); the "
             "input layout conversion is not timed. 'max rel err' = max|strided - torch| / max|torch| of the "
             f"logits (must be <= {TOLERANCE:g}; BN statistics randomised, weights copied by name). "
             "'rounds redone / kept noisy': timed rounds discarded because the quiet gate saw a busy machine, "
             "and rounds kept although it was busy (then the row is suspect)."]
    notes.append("Agreement: " + "; ".join(checks) + ".")
    notes.append("Missed targets: " + ("; ".join(missed) if missed else "none") + ".")
    print("\n" + notes[-1])
    title = "Models: forward latency (eval), strided (NHWC) vs PyTorch twin (NCHW), float32"
    if args.markdown:
        common.write_results(args.markdown, title, table, notes, append=args.append)
    if args.json:
        common.write_json(args.json, title, header, rows, notes)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
