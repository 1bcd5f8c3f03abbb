"""One LeNet-5 training step, strided (functional API, NHWC) against PyTorch (NCHW), CPU.

    python benchmarks/lenet_step.py                      # batch 64 and 256, 7 interleaved repeats
    python benchmarks/lenet_step.py --batch-sizes 256 --repeats 3
    python benchmarks/lenet_step.py --markdown results/lenet.md

The course's LeNet-5 variant with ReLU and max pooling, on 32x32x1 inputs::

    conv 5x5, 6 (valid) -> relu -> maxpool 2 -> conv 5x5, 16 (valid) -> relu -> maxpool 2
    -> flatten (400) -> linear 120 -> relu -> linear 84 -> relu -> linear 10

61,706 parameters.  A step is: zero the gradients, forward, cross-entropy loss,
backward, SGD update (lr 0.01, momentum 0.9; strided's written by hand, in place, on
the ``.data`` and ``.grad`` arrays; torch's is ``torch.optim.SGD``).  Both models start
from the same weights (HWIO -> OIHW, dense (in, out) -> (out, in)); the torch model
permutes to NHWC before flattening, so both compute the same function.  Before timing,
the first two steps' losses are compared (relative tolerance 1e-4).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

N_PARAMS = 61_706
LR, MOMENTUM = 0.01, 0.9
TARGET = 1.0  # issue 11
SHAPES = {  # strided layouts: HWIO conv weights, (in, out) dense weights
    "conv1.w": (5, 5, 1, 6), "conv1.b": (6,),
    "conv2.w": (5, 5, 6, 16), "conv2.b": (16,),
    "fc1.w": (400, 120), "fc1.b": (120,),
    "fc2.w": (120, 84), "fc2.b": (84,),
    "fc3.w": (84, 10), "fc3.b": (10,),
}


def init_weights(np, rng) -> dict:
    """PyTorch's default scheme: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    fan_in = {"conv1": 25, "conv2": 150, "fc1": 400, "fc2": 120, "fc3": 84}
    out = {}
    for name, shape in SHAPES.items():
        bound = 1.0 / np.sqrt(fan_in[name.split(".")[0]])
        out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return out


# --------------------------------------------------------------------------- strided
class StridedLeNet:
    """LeNet-5 with the functional API only, and SGD with momentum written by hand."""

    def __init__(self, sd, np, weights: dict):
        self.sd, self.np, self.F = sd, np, sd.functional
        self.p = {name: sd.tensor(w.copy(), requires_grad=True) for name, w in weights.items()}
        self.momentum_buf = {name: np.zeros_like(w) for name, w in weights.items()}

    def n_params(self) -> int:
        return sum(t.data.size for t in self.p.values())

    def forward(self, x):
        F, p = self.F, self.p
        h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.w"], p["conv1.b"])), 2)   # (N, 14, 14, 6)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.w"], p["conv2.b"])), 2)   # (N, 5, 5, 16)
        h = h.reshape(h.shape[0], -1)                                            # (N, 400), (h, w, c) order
        h = F.relu(F.linear(h, p["fc1.w"], p["fc1.b"]))
        h = F.relu(F.linear(h, p["fc2.w"], p["fc2.b"]))
        return F.linear(h, p["fc3.w"], p["fc3.b"])

    def zero_grad(self):
        for t in self.p.values():
            t.grad = None

    def sgd_update(self):
        """buf = momentum * buf + grad;  w -= lr * buf   (PyTorch's rule, dampening 0), in place."""
        np = self.np
        for name, t in self.p.items():
            buf = self.momentum_buf[name]
            buf *= MOMENTUM
            buf += t.grad
            t.data -= np.float32(LR) * buf

    def step(self, x, labels) -> dict:
        t0 = time.perf_counter()
        self.zero_grad()
        loss = self.F.cross_entropy(self.forward(x), labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.sgd_update()
        t3 = time.perf_counter()
        self.last_loss = loss.data
        return {"fwd": t1 - t0, "bwd": t2 - t1, "update": t3 - t2, "total": t3 - t0}


# --------------------------------------------------------------------------- torch
def make_torch_lenet(torch, weights: dict):
    nn = torch.nn

    class TorchLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):                                   # x: (N, 1, 32, 32)
            tF = torch.nn.functional
            h = tF.max_pool2d(tF.relu(self.conv1(x)), 2)
            h = tF.max_pool2d(tF.relu(self.conv2(h)), 2)        # (N, 16, 5, 5)
            h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)   # flatten in NHWC order, like strided
            h = tF.relu(self.fc1(h))
            h = tF.relu(self.fc2(h))
            return self.fc3(h)

    model = TorchLeNet()
    with torch.no_grad():
        for layer in ("conv1", "conv2"):
            getattr(model, layer).weight.copy_(torch.from_numpy(weights[f"{layer}.w"].transpose(3, 2, 0, 1).copy()))
            getattr(model, layer).bias.copy_(torch.from_numpy(weights[f"{layer}.b"]))
        for layer in ("fc1", "fc2", "fc3"):
            getattr(model, layer).weight.copy_(torch.from_numpy(weights[f"{layer}.w"].T.copy()))
            getattr(model, layer).bias.copy_(torch.from_numpy(weights[f"{layer}.b"]))
    return model


class TorchTrainer:
    def __init__(self, torch, model):
        self.torch, self.model = torch, model
        self.opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step(self, x, labels) -> dict:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(x), labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        self.last_loss = loss.detach()
        return {"fwd": t1 - t0, "bwd": t2 - t1, "update": t3 - t2, "total": t3 - t0}


# --------------------------------------------------------------------------- main
def run_batch(N: int, args, sd, np, torch, gate):
    rng = np.random.default_rng(args.seed)
    weights = init_weights(np, rng)
    x = rng.standard_normal((N, 32, 32, 1)).astype(np.float32)
    labels = rng.integers(0, 10, size=N).astype(np.int64)
    x_sd = sd.tensor(x)                                              # no input gradient
    x_t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())           # NCHW
    labels_t = torch.from_numpy(labels)

    net = StridedLeNet(sd, np, weights)
    tmodel = make_torch_lenet(torch, weights)
    trainer = TorchTrainer(torch, tmodel)
    n_sd = net.n_params()
    n_t = sum(p.numel() for p in tmodel.parameters())
    assert n_sd == N_PARAMS and n_t == N_PARAMS, f"parameter counts: strided {n_sd}, torch {n_t}, expected {N_PARAMS}"

    # equivalence check: the loss of step 1 (same weights) and of step 2 (after one update)
    checks = []
    for k in (1, 2):
        net.step(x_sd, labels)
        trainer.step(x_t, labels_t)
        a, b = float(net.last_loss), float(trainer.last_loss)
        rel = abs(a - b) / abs(b)
        checks.append((k, a, b, rel))
    line = "; ".join(f"step {k}: strided {a:.6f}, torch {b:.6f}, rel diff {rel:.1e}" for k, a, b, rel in checks)
    ok = all(rel <= 1e-4 for *_, rel in checks)
    print(f"[batch {N}] params {n_sd} (strided) / {n_t} (torch); loss check {'OK' if ok else 'FAILED'} "
          f"(tolerance 1e-4 relative): {line}", flush=True)
    if not ok:
        raise AssertionError(f"losses differ by more than 1e-4 relative: {line}")

    samples = common.measure_interleaved(
        {"strided": lambda: net.step(x_sd, labels), "torch": lambda: trainer.step(x_t, labels_t)},
        repeats=args.repeats, warmup=args.warmup, settle=args.settle, gate=gate)
    return samples, checks


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--batch-sizes", default="64,256", help="comma-separated batch sizes (default 64,256)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    batch_sizes = common.parse_positive_ints(parser, args.batch_sizes, "--batch-sizes")

    sd, np, torch = common.start(args.threads)
    gate = common.quiet_gate(args, np, torch)
    print(f"{common.settings_line(args, gate, before_each=True)}; a step = zero grads + forward + "
          f"cross-entropy + backward + SGD(lr {LR}, momentum {MOMENTUM})\n", flush=True)

    header = ["case", "strided ms", "torch ms", "ratio", "target", "strided img/s", "torch img/s",
              "fwd+loss strided ms", "fwd+loss torch ms", "ratio of mins"]
    rows, notes, failures = [], [], []
    for N in batch_sizes:
        name = f"LeNet-5 step, batch {N}"
        try:
            samples, checks = run_batch(N, args, sd, np, torch, gate)
        except Exception:
            failures.append((N, common.print_error(f"batch {N}")))
            rows.append([name, "ERROR", "—", "—", common.verdict(None, TARGET)] + ["—"] * 5)
            continue
        s, t = samples["strided"], samples["torch"]
        ratio = s.median_ms() / t.median_ms()
        min_ratio = s.min_ms() / t.min_ms()
        phases = " / ".join(f"{p} {s.median_ms(p):.2f} vs {t.median_ms(p):.2f}" for p in ("fwd", "bwd", "update"))
        print(f"[batch {N}] strided {s.median_ms():.2f} ms (min {s.min_ms():.2f}), torch {t.median_ms():.2f} ms "
              f"(min {t.min_ms():.2f}), ratio {ratio:.2f} (of mins {min_ratio:.2f}) | median ms strided vs torch: "
              f"{phases} | rounds redone {s.redone}, kept noisy {s.noisy}", flush=True)
        rows.append([name, common.fmt_ms(s.median_ms()), common.fmt_ms(t.median_ms()), common.fmt_ratio(ratio),
                     common.verdict(ratio, TARGET), f"{N / (s.median_ms() / 1e3):,.0f}",
                     f"{N / (t.median_ms() / 1e3):,.0f}", common.fmt_ms(s.median_ms("fwd")),
                     common.fmt_ms(t.median_ms("fwd")), common.fmt_ratio(min_ratio)])
        notes.append(f"Batch {N} loss check (rel. tolerance 1e-4): " + "; ".join(
            f"step {k} strided {a:.6f} / torch {b:.6f} (rel diff {rel:.1e})" for k, a, b, rel in checks) + ".")

    notes.insert(0, f"ratio = strided median / torch median step time; lower is better (target <= {TARGET}). "
                    f"{args.repeats} interleaved repeats after {args.warmup} warm-up rounds, {args.settle} s of "
                    f"untimed steps of the same side before every timed step, quiet gate "
                    f"{'off' if gate is None else 'on'}. img/s = batch / median step time.")
    notes.append(common.missed_targets(rows))
    common.finish(args, "LeNet-5 training step, strided vs PyTorch, float32", header, rows, notes, gate)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
