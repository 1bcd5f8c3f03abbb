"""Sliding windows on a real photo: cropping every window vs one convolutional pass (CPU).

    python benchmarks/sliding_windows.py                    # grace_hopper at 240x200, stride 4
    python benchmarks/sliding_windows.py --height 480 --repeats 3
    python benchmarks/sliding_windows.py --markdown benchmarks/SLIDING.md

The classifier is the course's LeNet-5 (``strided.models.create("lenet5", in_channels=3)``,
32x32 windows, seeded random weights: the timing does not depend on what it learnt).
Three ways to get its output on every 32x32 window at stride 4 (= 2 x 2, the product of
its pooling strides) of matplotlib's ``grace_hopper.jpg`` resized:

* ``naive``: crop every window (a strided view, no copy until batching), classify the crops
  in batches of 256 (strided);
* ``conv``: :func:`strided.detect.sliding.to_fully_convolutional` (dense layers -> 5x5 and
  1x1 convolutions) and one pass over the photo (strided);
* ``torch conv``: the same converted network in PyTorch (NCHW, same weights), one pass --
  the reference for how fast that one pass can be on this CPU.

The outputs of the three are compared first (max relative difference).  Times are
medians of interleaved runs (benchmarks/common.py); ratios ``naive / conv`` (the speed-up
of sliding windows as a convolution) and ``conv / torch conv``.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)


def main(argv=None):
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--height", type=int, default=240, help="photo height after resizing (default 240)")
    parser.add_argument("--stride", type=int, default=4, help="window stride, a multiple of 4 (default 4)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    if args.stride % 4:
        parser.error(f"--stride must be a multiple of 4 (LeNet-5's pooling stride), received {args.stride}")

    sd, np, torch = common.load_runtime(args.threads)
    from PIL import Image

    from strided import models
    from strided.data.image import read_image, to_float
    from strided.data.scenes import photo_path
    from strided.detect.sliding import naive_sliding_windows, to_fully_convolutional

    photo = Image.fromarray(read_image(photo_path("grace_hopper")))
    width = round(photo.width * args.height / photo.height)
    image = to_float(np.asarray(photo.resize((width, args.height), Image.BILINEAR)))   # (H, W, 3)

    sd.manual_seed(0)
    model = models.create("lenet5", num_classes=10, in_channels=3, input_size=32)
    model.eval()
    fcn = to_fully_convolutional(model)
    fcn.eval()
    step = args.stride // fcn.stride[0]

    # the torch twin of the converted network (NCHW, OIHW weights)
    layers = []
    for layer in fcn:
        name = type(layer).__name__
        if name == "Conv2d":
            w = layer.weight.data
            conv = torch.nn.Conv2d(w.shape[2], w.shape[3], tuple(w.shape[:2]))
            conv.weight.data = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
            conv.bias.data = torch.tensor(layer.bias.data)
            layers.append(conv)
        elif name == "ReLU":
            layers.append(torch.nn.ReLU())
        elif name == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(layer.kernel_size))
        else:
            raise SystemExit(f"no torch twin for {name}")
    twin = torch.nn.Sequential(*layers).eval()
    x_torch = torch.tensor(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
    x_sd = sd.tensor(image[None])

    def naive():
        return naive_sliding_windows(model, image, 32, args.stride, args.batch_size)

    def conv():
        with sd.no_grad():
            return fcn(x_sd).data[0, ::step, ::step]

    def torch_conv():
        with torch.no_grad():
            return twin(x_torch)[0].permute(1, 2, 0).numpy()[::step, ::step]

    a, b, c = naive(), conv(), torch_conv()
    windows = a.shape[0] * a.shape[1]
    print(f"grace_hopper.jpg resized to {image.shape[0]}x{image.shape[1]}; {a.shape[0]}x{a.shape[1]} = "
          f"{windows} windows of 32x32 at stride {args.stride}")
    print(f"max relative difference: conv vs naive {common.rel_err(np, b, a):.2e}, "
          f"conv vs torch conv {common.rel_err(np, b, c):.2e}")

    samples = common.measure_interleaved(
        {"naive": common.timed(naive), "conv": common.timed(conv), "torch conv": common.timed(torch_conv)},
        repeats=args.repeats, warmup=args.warmup, settle=args.settle)
    t_naive, t_conv, t_torch = (samples[k].median_ms() for k in ("naive", "conv", "torch conv"))
    header = ["image", "windows", "naive (ms)", "conv (ms)", "torch conv (ms)", "naive / conv",
              "conv / torch conv"]
    row = [f"{image.shape[0]}x{image.shape[1]}", str(windows), common.fmt_ms(t_naive), common.fmt_ms(t_conv),
           common.fmt_ms(t_torch), f"{t_naive / t_conv:.1f}x", f"{t_conv / t_torch:.2f}"]
    table = common.print_table(header, [row])
    if args.markdown:
        common.write_results(args.markdown, "Sliding windows: cropping vs one convolutional pass (LeNet-5)",
                             table, append=args.append)


if __name__ == "__main__":
    main()
