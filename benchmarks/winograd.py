"""Winograd F(2x2, 3x3) against im2col and PyTorch, 3x3 stride-1 'same' convolutions, forward.

    python benchmarks/winograd.py                       # the layer shapes of VGG / ResNet below
    python benchmarks/winograd.py --threads 1 --repeats 5 --markdown results/winograd.md

For each shape, one process times three sides interleaved (``common.measure_interleaved``):
strided's im2col path (``conv_gemm``, what every convolution used before), strided's Winograd
path (``strided.functional.winograd.winograd_conv``) and ``torch.nn.functional.conv2d`` (NCHW,
under ``no_grad``), all float32 on the same padded input.  The 'rule' column says which path
``F.conv2d`` takes for that shape (``winograd_pays``): the shapes below ``MIN_CHANNELS`` or
``MIN_TILES`` are the evidence for those thresholds.  Winograd's output is checked against
im2col's before timing (max|diff| / max|im2col| <= 1e-4).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

# (N, H=W, C, O): VGG-16 / VGG-19 layers at 224 (and their batch-8 forms), ResNet's 3x3 layers,
# small-channel rows of benchmarks/ops.py, and the shapes the thresholds exclude
SHAPES = [(1, 224, 64, 64), (1, 112, 128, 128), (1, 56, 256, 256), (1, 28, 512, 512), (1, 14, 512, 512),
          (8, 56, 64, 64), (8, 28, 128, 128), (8, 14, 256, 256), (8, 7, 512, 512),
          (1, 56, 64, 64), (1, 28, 128, 128), (1, 7, 512, 512), (128, 8, 64, 64), (128, 32, 16, 16)]


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--only", metavar="N,H,C,O", help="one shape instead of the list, e.g. 8,28,128,128")
    args = parser.parse_args(argv)
    shapes = SHAPES if not args.only else [tuple(common.parse_positive_ints(parser, args.only, "--only"))]
    if any(len(s) != 4 for s in shapes):
        parser.error(f"--only takes four numbers N,H,C,O, received {args.only!r}")
    sd, np, torch = common.start(args.threads)
    from strided.functional.conv import pad_spatial
    from strided.functional.im2col import Im2col, conv_gemm
    from strided.functional.winograd import winograd_conv, winograd_pays

    gate = common.quiet_gate(args, np, torch)
    print(common.settings_line(args, gate) + "\n", flush=True)
    header = ["case", "rule", "im2col ms", "winograd ms", "torch ms", "winograd / im2col",
              "winograd / torch", "im2col / torch"]
    rows, rng = [], np.random.default_rng(0)
    for N, H, C, O in shapes:
        x = rng.standard_normal((N, H, H, C)).astype(np.float32)
        w = (rng.standard_normal((3, 3, C, O)) / np.sqrt(9 * C)).astype(np.float32)
        xp = pad_spatial(x, ((1, 1), (1, 1)))
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))

        def im2col():
            y = np.empty((N, H, H, O), np.float32)
            conv_gemm(Im2col(xp, (3, 3), (1, 1), (1, 1), (H, H)), w.reshape(-1, O), y)
            return y

        def run_torch():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, padding=1)

        err = common.rel_err(np, winograd_conv(xp, w), im2col())
        if err > 1e-4:
            raise AssertionError(f"{(N, H, C, O)}: Winograd differs from im2col by {err:.1e}")
        samples = common.measure_interleaved(
            {"im2col": common.timed(im2col), "winograd": common.timed(lambda: winograd_conv(xp, w)),
             "torch": common.timed(run_torch)}, repeats=args.repeats, warmup=args.warmup, settle=args.settle,
            gate=gate)
        a, b, t = (samples[k].median_ms() for k in ("im2col", "winograd", "torch"))
        rule = "winograd" if winograd_pays(x.shape, w.shape, (H, H), (1, 1), (1, 1), 1) else "im2col"
        rows.append([f"N{N} {H}x{H} {C}->{O}", rule, common.fmt_ms(a), common.fmt_ms(b), common.fmt_ms(t),
                     common.fmt_ratio(b / a), common.fmt_ratio(b / t), common.fmt_ratio(a / t)])
        print(f"[{rows[-1][0]}] im2col {a:.2f} ms, winograd {b:.2f} ms, torch {t:.2f} ms (rule: {rule})", flush=True)
    notes = ["Forward only, float32; times are medians of interleaved runs. 'rule': the path F.conv2d takes "
             "(winograd_pays: >= MIN_CHANNELS input and output channels and >= MIN_TILES 2x2 output tiles). "
             "Winograd does 16 multiplications per 2x2 output tile and channel pair where im2col does 36; what it "
             "saves is spent on its input and output transforms (memory-bound NumPy passes) and on thinner GEMMs "
             "(K = C instead of 9C), so it pays only with many channels."]
    common.finish(args, "Winograd F(2x2, 3x3) vs im2col vs PyTorch, 3x3 convolutions, float32", header, rows,
                  notes, gate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
