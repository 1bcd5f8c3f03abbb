"""One yolo_tiny training step (forward + YOLOv2 loss + backward), strided vs a PyTorch twin, CPU.

    python benchmarks/yolo_step.py                        # batch 16, 96x96 digit scenes, 7 repeats
    python benchmarks/yolo_step.py --batch-sizes 16,32 --size 128 --repeats 5
    python benchmarks/yolo_step.py --markdown results/yolo.md

The network is ``strided.models.yolo.yolo_tiny`` (10 classes, 5 anchors, 1,002,715 parameters,
training mode: batch norm on batch statistics); the twin is the same network in PyTorch
(NCHW) with the same weights.  The batch is real: the first images of
``make_scenes("digits", ..., seed=0)`` with their boxes.  A step is: zero the gradients,
forward, target assignment (``strided.detect.yolo.assign_targets``, NumPy, on both sides: it
is data preparation), the YOLOv2 loss (strided: ``yolo_loss`` through the autograd engine;
torch: the same formulas vectorised in torch, with the ignore mask computed under
``no_grad``), backward.  No optimiser update.  Before timing, the first step's losses are
compared (relative tolerance 1e-4), and the weight gradients of all seven convolutions
against a float64 copy of the twin on a noise batch (relative 1e-4; on the scenes, exact
ties in max pooling over flat patches are broken differently by float32 and float64, which
alone moves the first layers' gradients by about 1e-2).
"""
from __future__ import annotations

import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

TARGET = 1.2  # issue 11
NUM_CLASSES = 10


# --------------------------------------------------------------------------- torch twin
def torch_twin(torch, model, np):
    """yolo_tiny in PyTorch (NCHW), weights copied from the strided model."""
    nn = torch.nn
    state = model.state_dict()
    layers = []
    for i, block in enumerate(model.features):
        prefix = f"features.{i}"
        if f"{prefix}.0.weight" not in state:
            layers.append(nn.MaxPool2d(2))
            continue
        w = state[f"{prefix}.0.weight"]
        conv = nn.Conv2d(w.shape[2], w.shape[3], w.shape[0], padding=w.shape[0] // 2, bias=False)
        bn = nn.BatchNorm2d(w.shape[3], momentum=0.1, eps=1e-5)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
            bn.weight.copy_(torch.from_numpy(state[f"{prefix}.1.gamma"]))
            bn.bias.copy_(torch.from_numpy(state[f"{prefix}.1.beta"]))
        layers += [conv, bn, nn.LeakyReLU(0.1)]
    w = state["head.weight"]
    head = nn.Conv2d(w.shape[2], w.shape[3], 1)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
        head.bias.copy_(torch.from_numpy(state["head.bias"]))
    return nn.Sequential(*layers, head)


def torch_yolo_loss(torch, raw, t, anchors, C, gt_boxes, lambda_coord=1.0, lambda_obj=5.0, lambda_noobj=1.0,
                    lambda_cls=1.0, ignore_thresh=0.6):
    """The YOLOv2 loss of strided.detect.yolo, vectorised in torch. ``raw`` (N, S_h, S_w, A*(5+C));
    ``t`` a dict of torch tensors from the assigned targets."""
    N, S_h, S_w, _ = raw.shape
    A = anchors.shape[0]
    p = raw.reshape(N, S_h, S_w, A, 5 + C)
    with torch.no_grad():
        cols = torch.arange(S_w, dtype=raw.dtype).view(1, 1, S_w, 1)
        rows = torch.arange(S_h, dtype=raw.dtype).view(1, S_h, 1, 1)
        cx = (cols + torch.sigmoid(p[..., 0])) / S_w
        cy = (rows + torch.sigmoid(p[..., 1])) / S_h
        w = anchors[:, 0] * torch.exp(p[..., 2]) / S_w
        h = anchors[:, 1] * torch.exp(p[..., 3]) / S_h
        pred = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)     # (N, S_h, S_w, A, 4)
        ignore = torch.zeros(N, S_h, S_w, A, dtype=torch.bool)
        for n, gt in enumerate(gt_boxes):
            if len(gt):
                b = pred[n].reshape(-1, 1, 4)
                g = gt.reshape(1, -1, 4)
                iw = (torch.minimum(b[..., 2], g[..., 2]) - torch.maximum(b[..., 0], g[..., 0])).clamp(min=0)
                ih = (torch.minimum(b[..., 3], g[..., 3]) - torch.maximum(b[..., 1], g[..., 1])).clamp(min=0)
                inter = iw * ih
                union = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) + (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1]) - inter
                iou = torch.where(union > 0, inter / union, torch.zeros_like(inter))
                ignore[n] = (iou.max(dim=1).values > ignore_thresh).reshape(S_h, S_w, A)
    resp = t["responsible"]
    noobj_mask = (~resp & ~ignore).to(raw.dtype)
    x = p[..., 4]
    bce = torch.nn.functional.softplus(x) - x * resp.to(raw.dtype)
    obj = (bce * resp.to(raw.dtype)).sum()
    noobj = (bce * noobj_mask).sum()
    q = p[resp]
    d_xy = torch.sigmoid(q[:, 0:2]) - t["offsets"]
    d_wh = q[:, 2:4] - t["log_wh"]
    coord = ((d_xy ** 2 + d_wh ** 2) * t["weight"][:, None]).sum()
    cls = torch.nn.functional.cross_entropy(q[:, 5:], t["classes"], reduction="sum")
    return (lambda_coord * coord + lambda_obj * obj + lambda_noobj * noobj + lambda_cls * cls) / N


# --------------------------------------------------------------------------- one batch size
def run_batch(N, size, args, sd, np, torch, gate):
    from strided.data.scenes import make_scenes
    from strided.detect.training import YoloLoss, collate_detection
    from strided.detect.yolo import assign_targets
    from strided.models.yolo import yolo_tiny
    from strided.random import manual_seed

    scenes = make_scenes("digits", N, size, 4, seed=0)
    x, targets = collate_detection([scenes[i] for i in range(N)])
    manual_seed(args.seed)                     # the initial weights
    model = yolo_tiny(num_classes=NUM_CLASSES, input_size=size)
    model.train()
    loss_fn = YoloLoss(model.anchors, NUM_CLASSES)
    twin = torch_twin(torch, model, np)
    twin.train()
    params = model.parameters()
    anchors_t = torch.tensor(model.anchors, dtype=torch.float32)
    x_sd = sd.tensor(x)
    x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    n_sd, n_t = model.num_parameters(), sum(p.numel() for p in twin.parameters())
    assert n_sd == n_t, f"parameter counts differ: strided {n_sd}, torch {n_t}"

    def strided_step():
        t0 = time.perf_counter()
        for p in params:
            p.grad = None
        loss = loss_fn(model(x_sd), targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        strided_step.loss = float(loss.item())
        return {"fwd": t1 - t0, "bwd": t2 - t1, "total": t2 - t0}

    def torch_step():
        t0 = time.perf_counter()
        twin.zero_grad(set_to_none=True)
        raw = twin(x_t).permute(0, 2, 3, 1)
        grid = tuple(raw.shape[1:3])
        a = assign_targets(targets, model.anchors, grid, NUM_CLASSES)
        r = a.responsible
        t = {"responsible": torch.from_numpy(r), "offsets": torch.from_numpy(a.offsets[r].astype(np.float32)),
             "log_wh": torch.from_numpy(a.log_wh[r].astype(np.float32)),
             "weight": torch.from_numpy(a.weight[r].astype(np.float32)), "classes": torch.from_numpy(a.classes[r])}
        gts = [torch.from_numpy(np.asarray(b, np.float32)) for b in a.boxes]
        loss = torch_yolo_loss(torch, raw, t, anchors_t, NUM_CLASSES, gts)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch_step.loss = float(loss.detach())
        return {"fwd": t1 - t0, "bwd": t2 - t1, "total": t2 - t0}

    # equivalence checks: the first step's loss against the float32 twin; every convolution's
    # weight gradient against a float64 copy of the twin, on a batch of uniform noise (the
    # scenes have flat patches where max pooling meets exact ties, which float32 and float64
    # break differently, so their gradients differ by ~1e-2 at the first layers for that reason only)
    strided_step()
    torch_step()
    rel_loss = abs(strided_step.loss - torch_step.loss) / abs(torch_step.loss)
    noise = np.random.default_rng(args.seed).random(x.shape).astype(np.float32)
    for p in params:
        p.grad = None
    loss_fn(model(sd.tensor(noise)), targets).backward()
    twin64 = copy.deepcopy(twin).double()
    twin64.zero_grad(set_to_none=True)
    raw64 = twin64(torch.from_numpy(noise.transpose(0, 3, 1, 2).astype(np.float64))).permute(0, 2, 3, 1)
    a = assign_targets(targets, model.anchors, tuple(raw64.shape[1:3]), NUM_CLASSES)
    r = a.responsible
    t64 = {"responsible": torch.from_numpy(r), "offsets": torch.from_numpy(a.offsets[r]),
           "log_wh": torch.from_numpy(a.log_wh[r]), "weight": torch.from_numpy(a.weight[r]),
           "classes": torch.from_numpy(a.classes[r])}
    torch_yolo_loss(torch, raw64, t64, anchors_t.double(), NUM_CLASSES,
                    [torch.from_numpy(np.asarray(b, np.float64)) for b in a.boxes]).backward()
    ours = [m[0] for m in model.features if hasattr(m, "__getitem__")] + [model.head]
    theirs = [m for m in twin64 if isinstance(m, torch.nn.Conv2d)]
    rel_grad = max(common.rel_err(np, o.weight.grad, c.weight.grad.numpy().transpose(2, 3, 1, 0))
                   for o, c in zip(ours, theirs))
    ok = rel_loss <= 1e-4 and rel_grad <= 1e-4 and len(ours) == len(theirs) == 7
    check = (f"loss strided {strided_step.loss:.6f} / torch {torch_step.loss:.6f} (rel diff {rel_loss:.1e}); "
             f"conv weight gradients vs a float64 twin (noise batch): max rel err {rel_grad:.1e}")
    print(f"[batch {N}, {size}x{size}] params {n_sd}; check {'OK' if ok else 'FAILED'}: {check}", flush=True)
    if not ok:
        raise AssertionError(check)
    samples = common.measure_interleaved({"strided": strided_step, "torch": torch_step}, repeats=args.repeats,
                                         warmup=args.warmup, settle=args.settle, gate=gate)
    return samples, check


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--batch-sizes", default="16", help="comma-separated batch sizes (default 16)")
    parser.add_argument("--size", type=int, default=96, help="input size, a multiple of 16 (default 96)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    batch_sizes = common.parse_positive_ints(parser, args.batch_sizes, "--batch-sizes")

    sd, np, torch = common.start(args.threads)
    gate = common.quiet_gate(args, np, torch)
    print(f"{common.settings_line(args, gate)}; a step = zero grads + forward + target assignment + YOLOv2 "
          f"loss + backward\n", flush=True)
    header = ["case", "strided ms", "torch ms", "ratio", "target", "fwd+loss strided ms", "fwd+loss torch ms",
              "bwd strided ms", "bwd torch ms", "ratio of mins"]
    rows, notes, failures = [], [], []
    for N in batch_sizes:
        name = f"yolo_tiny step, batch {N}, {args.size}x{args.size}"
        try:
            samples, check = run_batch(N, args.size, args, sd, np, torch, gate)
        except Exception:
            common.print_error(f"batch {N}")
            failures.append(N)
            rows.append([name, "ERROR", "—", "—", common.verdict(None, TARGET)] + ["—"] * 5)
            continue
        s, t = samples["strided"], samples["torch"]
        ratio = s.median_ms() / t.median_ms()
        print(f"[batch {N}] strided {s.median_ms():.1f} ms, torch {t.median_ms():.1f} ms, ratio {ratio:.2f} "
              f"(of mins {s.min_ms() / t.min_ms():.2f}); rounds redone {s.redone}, kept noisy {s.noisy}", flush=True)
        rows.append([name, common.fmt_ms(s.median_ms()), common.fmt_ms(t.median_ms()), common.fmt_ratio(ratio),
                     common.verdict(ratio, TARGET), common.fmt_ms(s.median_ms("fwd")), common.fmt_ms(t.median_ms("fwd")),
                     common.fmt_ms(s.median_ms("bwd")), common.fmt_ms(t.median_ms("bwd")),
                     common.fmt_ratio(s.min_ms() / t.min_ms())])
        notes.append(f"Batch {N} check: {check}.")
    notes.insert(0, f"ratio = strided median / torch median step time (target <= {TARGET}); {args.repeats} "
                    f"interleaved repeats after {args.warmup} warm-up rounds.")
    common.finish(args, "yolo_tiny training step, strided vs PyTorch, float32", header, rows, notes, gate)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
