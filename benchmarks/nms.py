"""Non-maximum suppression of 10,000 boxes: strided.detect.suppression against a plain PyTorch NMS.

    python benchmarks/nms.py                     # every case
    python benchmarks/nms.py --boxes 20000 --repeats 3 --markdown results/nms.md

torchvision is not installed here, so the PyTorch side is written below: the usual
greedy loop in torch (sort by score, take the best box left, compute its IoU row with
the boxes left, drop those above the threshold, repeat), and for the batched case the
same loop on boxes shifted by ``class * (max coordinate + 1)`` (torchvision's trick).
Both sides are checked to return the same indices before timing.  The torch loop takes
seconds when most boxes survive, so it is timed once per case by default (not
interleaved with strided: on a busy machine compare ratios with care).

Cases (10,000 boxes, IoU threshold 0.5, scores uniform in [0, 1)):

* ``random 1000px``: top-left corners uniform in a 1000x1000 image, sides 10-100 px
  (most boxes survive: the hard case for a loop over kept boxes);
* ``clustered``: jittered copies of 200 objects, like a detector's raw output (most
  boxes are suppressed);
* ``heavy overlap``: corners in [0, 100), sides 0-100 px (torchvision's benchmark style:
  everything overlaps everything);
* the ``batched`` variants add 80 random classes.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)


def make_case(np, rng, kind, n):
    if kind == "random 1000px":
        xy = rng.uniform(0, 1000, (n, 2))
        wh = rng.uniform(10, 100, (n, 2))
    elif kind == "clustered":
        centres, sizes = rng.uniform(0, 1000, (200, 2)), rng.uniform(20, 150, (200, 2))
        k = rng.integers(0, 200, n)
        wh = sizes[k] * rng.uniform(0.8, 1.25, (n, 2))
        xy = centres[k] + rng.normal(0, 8, (n, 2)) - wh / 2
    elif kind == "heavy overlap":
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(0, 100, (n, 2))
    else:
        raise ValueError(kind)
    return np.concatenate([xy, xy + wh], axis=1), rng.random(n)


def torch_nms(torch, boxes, scores, threshold):
    """Greedy NMS in plain torch (float64), one IoU row per kept box."""
    order = torch.argsort(scores, descending=True, stable=True)
    x1, y1, x2, y2 = (boxes[order, k].contiguous() for k in range(4))
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    alive = order
    kept = []
    while alive.numel():
        kept.append(alive[0])
        iw = (torch.minimum(x2[0], x2[1:]) - torch.maximum(x1[0], x1[1:])).clamp(min=0)
        ih = (torch.minimum(y2[0], y2[1:]) - torch.maximum(y1[0], y1[1:])).clamp(min=0)
        inter = iw * ih
        union = area[0] + area[1:] - inter
        iou = torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(inter))
        stay = torch.nonzero(iou <= threshold).flatten() + 1
        alive, x1, y1, x2, y2, area = (v[stay] for v in (alive, x1, y1, x2, y2, area))
    return torch.stack(kept) if kept else torch.zeros(0, dtype=torch.int64)


def torch_batched_nms(torch, boxes, scores, classes, threshold):
    offsets = classes.to(boxes.dtype) * (boxes.max() + 1)
    return torch_nms(torch, boxes + offsets[:, None], scores, threshold)


def median_ms(fn, repeats):
    import statistics
    import time
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=10_000, help="boxes per case (default 10000)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of strided per case (median; default 7)")
    parser.add_argument("--torch-repeats", type=int, default=1,
                        help="timed runs of the torch loop per case (it takes seconds; default 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--markdown", metavar="PATH", help="write the results table to this markdown file")
    parser.add_argument("--append", action="store_true", help="append to --markdown PATH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-torch", action="store_true", help="time strided only (the torch loop takes minutes "
                        "on a busy machine)")
    args = parser.parse_args(argv)

    sd, np, torch = common.load_runtime(args.threads)
    from strided.detect.suppression import batched_nms, nms
    for line in common.environment_lines():
        print(line)
    print(f"{args.boxes} boxes, IoU threshold {args.iou}; strided: median of {args.repeats} runs after one "
          f"warm-up, torch loop: median of {args.torch_repeats}\n", flush=True)

    header = ["case", "kept", "strided ms", "torch loop ms", "ratio"]
    rows = []
    rng = np.random.default_rng(args.seed)
    for kind in ("random 1000px", "clustered", "heavy overlap"):
        boxes, scores = make_case(np, rng, kind, args.boxes)
        classes = rng.integers(0, 80, args.boxes)
        tb, ts, tc = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes)
        for batched in (False, True):
            if batched:
                ours = lambda: batched_nms(boxes, scores, classes, args.iou)            # noqa: E731
                theirs = lambda: torch_batched_nms(torch, tb, ts, tc, args.iou)       # noqa: E731
            else:
                ours = lambda: nms(boxes, scores, args.iou)                           # noqa: E731
                theirs = lambda: torch_nms(torch, tb, ts, args.iou)                   # noqa: E731
            name = f"{kind}{', batched (80 classes)' if batched else ''}"
            kept = ours()
            if args.skip_torch:
                s = median_ms(ours, args.repeats)
                rows.append([name, str(len(kept)), common.fmt_ms(s), "—", "—"])
                print(f"[{name}] kept {len(kept)}: strided {s:.1f} ms", flush=True)
                continue
            kept_torch = theirs().numpy()
            if not np.array_equal(kept, kept_torch):
                # the offset trick can flip a decision at the threshold by rounding; say so
                print(f"[{name}] note: strided keeps {len(kept)}, torch {len(kept_torch)}; "
                      f"{len(set(kept.tolist()) ^ set(kept_torch.tolist()))} indices differ", flush=True)
            s = median_ms(ours, args.repeats)
            t = median_ms(theirs, args.torch_repeats)
            rows.append([name, str(len(kept)), common.fmt_ms(s), common.fmt_ms(t), common.fmt_ratio(s / t)])
            print(f"[{name}] kept {len(kept)}: strided {s:.1f} ms, torch loop {t:.1f} ms", flush=True)
    print()
    table = common.print_table(header, rows)
    if args.markdown:
        common.write_results(args.markdown, "NMS of 10k boxes", table,
                             ["ratio = strided / torch (a plain greedy torch loop written in this script; "
                              "torchvision is not installed)."], append=args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
