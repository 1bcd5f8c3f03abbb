"""Forward+backward timings of single ops, strided (NHWC) against PyTorch (NCHW), CPU.

    python benchmarks/ops.py                       # every case, 7 interleaved repeats
    python benchmarks/ops.py --only depthwise --repeats 3
    python benchmarks/ops.py --markdown results/ops.md

Each case runs ``y = op(inputs)`` then ``y.backward(gy)`` with one fixed random
upstream gradient ``gy`` (torch gets the same values in NCHW).  Parameter gradients
are computed on both sides; the input gradient too, except for the first-layer convs
whose input is an image.  Both sides are checked against each other once (output and
every gradient) before timing.  Times are medians over ``--repeats`` runs taken
alternately (strided, torch, strided, torch, ...) after ``--warmup`` runs of each.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)


@dataclass
class Case:
    name: str
    kind: str                     # "conv", "maxpool", "batchnorm"
    target: float                 # ratio strided/torch to meet (fwd+bwd)
    x_shape: tuple                # NHWC
    w_shape: tuple = ()           # HWIO (conv only)
    bias: bool = False
    stride: int = 1
    padding: int = 0
    groups: int = 1
    input_grad: bool = True
    extra: dict = field(default_factory=dict)


CASES = [
    Case("conv5x5 32x32x1->6 N128 +bias (no gx)", "conv", 1.3, (128, 32, 32, 1), (5, 5, 1, 6),
         bias=True, input_grad=False),
    Case("conv5x5 14x14x6->16 N128", "conv", 1.3, (128, 14, 14, 6), (5, 5, 6, 16)),
    Case("conv3x3 p1 32x32x16->16 N128", "conv", 1.3, (128, 32, 32, 16), (3, 3, 16, 16), padding=1),
    Case("conv3x3 p1 8x8x64->64 N128", "conv", 1.3, (128, 8, 8, 64), (3, 3, 64, 64), padding=1),
    Case("conv3x3 p1 56x56x64->64 N8", "conv", 1.3, (8, 56, 56, 64), (3, 3, 64, 64), padding=1),
    Case("conv7x7 s2 p3 224x224x3->64 N8 (no gx)", "conv", 1.3, (8, 224, 224, 3), (7, 7, 3, 64),
         stride=2, padding=3, input_grad=False),
    Case("depthwise3x3 p1 56x56x32 N32", "conv", 1.5, (32, 56, 56, 32), (3, 3, 1, 32),
         padding=1, groups=32),
    Case("maxpool2x2 s2 28x28x6 N128", "maxpool", 1.0, (128, 28, 28, 6)),
    Case("batchnorm train 32x32x16 N128", "batchnorm", 1.0, (128, 32, 32, 16)),
]


def nchw(a):
    """NHWC ndarray -> NCHW C-contiguous ndarray (same values)."""
    return a.transpose(0, 3, 1, 2).copy()


def fwd_bwd_step(forward, gy):
    """A timed step for ``measure_interleaved``: ``y = forward()`` then ``y.backward(gy)``;
    returns ``{"fwd": seconds, "total": seconds}`` (either library: both have ``.backward``)."""
    def step():
        t0 = time.perf_counter()
        y = forward()
        t1 = time.perf_counter()
        y.backward(gy)
        t2 = time.perf_counter()
        return {"fwd": t1 - t0, "total": t2 - t0}
    return step


def build(case: Case, sd, np, torch, rng):
    """Inputs for both sides, and the two step functions and a grad-reset hook."""
    F = sd.functional
    tF = torch.nn.functional
    f32 = np.float32
    x = rng.standard_normal(case.x_shape).astype(f32)
    sd_leaves, t_leaves = {}, {}     # name -> strided Tensor / torch tensor (NHWC/HWIO vs NCHW/OIHW)
    xs = sd.tensor(x, requires_grad=case.input_grad)
    xt = torch.from_numpy(nchw(x)).requires_grad_(case.input_grad)
    if case.input_grad:
        sd_leaves["x"], t_leaves["x"] = xs, xt

    if case.kind == "conv":
        kh, kw, cin_g, cout = case.w_shape
        fan_in = kh * kw * cin_g
        w = (rng.standard_normal(case.w_shape) * np.sqrt(2.0 / fan_in)).astype(f32)
        ws = sd.tensor(w, requires_grad=True)
        wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_(True)  # HWIO -> OIHW
        sd_leaves["w"], t_leaves["w"] = ws, wt
        bs = bt = None
        if case.bias:
            b = (0.1 * rng.standard_normal(cout)).astype(f32)
            bs = sd.tensor(b, requires_grad=True)
            bt = torch.from_numpy(b.copy()).requires_grad_(True)
            sd_leaves["b"], t_leaves["b"] = bs, bt

        def fwd_sd():
            return F.conv2d(xs, ws, bs, stride=case.stride, padding=case.padding, groups=case.groups)

        def fwd_t():
            return tF.conv2d(xt, wt, bt, stride=case.stride, padding=case.padding, groups=case.groups)

    elif case.kind == "maxpool":
        def fwd_sd():
            return F.max_pool2d(xs, 2, 2)

        def fwd_t():
            return tF.max_pool2d(xt, 2, 2)

    elif case.kind == "batchnorm":
        C = case.x_shape[-1]
        gamma = (1.0 + 0.1 * rng.standard_normal(C)).astype(f32)
        beta = (0.1 * rng.standard_normal(C)).astype(f32)
        gs, bs_ = sd.tensor(gamma, requires_grad=True), sd.tensor(beta, requires_grad=True)
        gt = torch.from_numpy(gamma.copy()).requires_grad_(True)
        bt_ = torch.from_numpy(beta.copy()).requires_grad_(True)
        sd_leaves.update(gamma=gs, beta=bs_)
        t_leaves.update(gamma=gt, beta=bt_)
        rm_s, rv_s = np.zeros(C, f32), np.ones(C, f32)
        rm_t, rv_t = torch.zeros(C), torch.ones(C)

        def fwd_sd():
            return F.batch_norm(xs, rm_s, rv_s, gs, bs_, training=True, momentum=0.1, eps=1e-5)

        def fwd_t():
            return tF.batch_norm(xt, rm_t, rv_t, gt, bt_, training=True, momentum=0.1, eps=1e-5)
    else:
        raise ValueError(case.kind)

    # one fixed upstream gradient of y's shape (NHWC for strided, NCHW for torch)
    with sd.no_grad():
        y_shape = fwd_sd().shape
    gy = rng.standard_normal(y_shape).astype(f32)
    gy_t = torch.from_numpy(nchw(gy))

    step_sd, step_t = fwd_bwd_step(fwd_sd, gy), fwd_bwd_step(fwd_t, gy_t)

    def reset(_name=None):
        for leaf in sd_leaves.values():
            leaf.grad = None
        for leaf in t_leaves.values():
            leaf.grad = None

    def check():
        """Max relative error (max|a-b| / max|b|) of output and every gradient, vs torch."""
        reset()
        y = fwd_sd()
        yt = fwd_t()
        errors = {"y": common.rel_err(np, y.data, yt.detach().numpy().transpose(0, 2, 3, 1))}
        y.backward(gy)
        yt.backward(gy_t)
        for name, leaf in sd_leaves.items():
            ref = t_leaves[name].grad.numpy()
            if ref.ndim == 4:
                ref = ref.transpose(0, 2, 3, 1) if name == "x" else ref.transpose(2, 3, 1, 0)
            if leaf.grad is None:
                raise RuntimeError(f"strided produced no gradient for {name}")
            errors["g" + name] = common.rel_err(np, leaf.grad, ref)
        reset()
        return errors

    return step_sd, step_t, reset, check, sorted(sd_leaves)


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--only", metavar="SUBSTRING", help="run only the cases whose name contains this "
                        "(case-insensitive)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cases = [c for c in CASES if not args.only or args.only.lower() in c.name.lower()]
    if not cases:
        parser.error(f"no case name contains {args.only!r}; cases: {[c.name for c in CASES]}")
    sd, np, torch = common.start(args.threads)
    gate = common.quiet_gate(args, np, torch)
    print(f"{common.settings_line(args, gate, before_each=True)}; fwd+bwd = forward then "
          "y.backward(gy); fwd = the forward part of that same run\n", flush=True)

    header = ["case", "strided ms", "torch ms", "ratio", "target",
              "fwd strided ms", "fwd torch ms", "fwd ratio", "ratio of mins", "max rel err"]
    rows, failures = [], []
    for i, case in enumerate(cases):
        rng = np.random.default_rng(args.seed + i)
        try:
            step_sd, step_t, reset, check, grads = build(case, sd, np, torch, rng)
            errors = check()
            samples = common.measure_interleaved({"strided": step_sd, "torch": step_t},
                                                 repeats=args.repeats, warmup=args.warmup, before=reset,
                                                 settle=args.settle, gate=gate)
        except Exception:
            failures.append((case.name, common.print_error(case.name)))
            rows.append([case.name, "ERROR", "—", "—", common.verdict(None, case.target), "—", "—", "—", "—", "—"])
            continue
        s, t = samples["strided"], samples["torch"]
        ratio = s.median_ms() / t.median_ms()
        fwd_ratio = s.median_ms("fwd") / t.median_ms("fwd")
        min_ratio = s.min_ms() / t.min_ms()
        worst = max(errors.values())
        print(f"[{case.name}] grads: {', '.join(grads)} | fwd+bwd strided {s.median_ms():.3f} ms "
              f"(min {s.min_ms():.3f}), torch {t.median_ms():.3f} ms (min {t.min_ms():.3f}), "
              f"ratio {ratio:.2f} (of mins {min_ratio:.2f}) | rounds redone {s.redone}, kept noisy {s.noisy} "
              f"| errors {', '.join(f'{k} {v:.1e}' for k, v in errors.items())}", flush=True)
        rows.append([case.name, common.fmt_ms(s.median_ms()), common.fmt_ms(t.median_ms()),
                     common.fmt_ratio(ratio), common.verdict(ratio, case.target),
                     common.fmt_ms(s.median_ms("fwd")), common.fmt_ms(t.median_ms("fwd")),
                     common.fmt_ratio(fwd_ratio), common.fmt_ratio(min_ratio), f"{worst:.1e}" + (" (!)" if worst > 1e-3 else "")])

    notes = [f"ratio = strided median / torch median (fwd+bwd); lower is better, < 1 means strided is faster. "
             f"{args.repeats} interleaved repeats after {args.warmup} warm-up runs each, {args.settle} s "
             f"of untimed runs of the same side before every timed run, quiet gate {'off' if gate is None else 'on'}. "
             "'ratio of mins' uses the fastest run of each side instead of the median. "
             "'max rel err' = max|strided - torch| / max|torch| over the output and every gradient."]
    notes.append(common.missed_targets(rows))
    common.finish(args, "Ops: forward + backward, strided (NHWC) vs PyTorch (NCHW), float32", header, rows, notes,
                  gate, shown_notes=notes[-1:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
