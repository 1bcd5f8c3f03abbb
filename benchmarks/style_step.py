"""One neural-style optimisation step, strided against PyTorch (CPU), and a whole L-BFGS run.

    python benchmarks/style_step.py                          # 400x300, VGG-19 up to conv5_1
    python benchmarks/style_step.py --size 400x300 --repeats 5 --lbfgs-steps 300 --lbfgs-size 400
    python benchmarks/style_step.py --markdown benchmarks/STYLE.md

A step: forward the image (1, 300, 400, 3) through VGG-19's features up to relu5_1 (the layers after
it do not run), the course's costs (content at relu4_2, style at relu1_1 ... relu5_1, 0.2 each,
alpha 10, beta 1e4), backward to the image (the weights are frozen: no weight gradients on either
side).  Both sides use the same random weights (He-scaled; timing does not depend on their values)
and the same preprocessing; the two costs are compared before timing (relative 1e-3).

The L-BFGS run is ``strided.style.stylize`` with the offline default backbone if installed (else the
random VGG-19), ``--lbfgs-steps`` iterations at ``--lbfgs-size`` (longer side), timed once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

STYLE = [("relu1_1", 0.2), ("relu2_1", 0.2), ("relu3_1", 0.2), ("relu4_1", 0.2), ("relu5_1", 0.2)]
CONTENT = "relu4_2"
ALPHA, BETA = 10.0, 1e4
TARGET = 1.3  # issue 11


def build(sd, np, torch, H, W, seed=0):
    from strided.models.vgg import CONFIGS
    from strided.style.costs import content_cost, gram_style_cost, normalized_gram
    from strided.style.features import VGGFeatures, vgg_layer_names

    model = VGGFeatures(19)
    rng = np.random.default_rng(seed)
    convs = [m for m in model.features if hasattr(m, "weight")]
    for conv in convs:
        kh, kw, ci, co = conv.weight.shape
        conv.weight.data[...] = rng.standard_normal(conv.weight.shape, dtype=np.float32) * np.float32(
            np.sqrt(2.0 / (kh * kw * ci)))
        conv.bias.data[...] = 0.01
    index = vgg_layer_names(19)
    last = max(index[n] for n, _ in STYLE + [(CONTENT, 1)])
    layers, k = [], 0
    for v in CONFIGS[19]:
        if len(layers) > last:
            break
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
            continue
        conv = torch.nn.Conv2d(convs[k].weight.shape[2], v, 3, padding=1)
        conv.weight.data = torch.tensor(convs[k].weight.data.transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.tensor(convs[k].bias.data.copy())
        conv.weight.requires_grad_(False)
        conv.bias.requires_grad_(False)
        layers += [conv, torch.nn.ReLU()]
        k += 1
    tnet = torch.nn.Sequential(*layers[:last + 1]).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)

    images = rng.uniform(0, 1, (3, 1, H, W, 3)).astype(np.float32)    # content, style, generated
    names = [n for n, _ in STYLE] + [CONTENT]
    with sd.no_grad():
        a_C = model.taps(images[0], [CONTENT])[CONTENT].data.copy()
        s_taps = model.taps(images[1], names)
        targets = {n: normalized_gram(s_taps[n]).data.copy() for n, _ in STYLE}

    def strided_step():
        x = sd.tensor(images[2], requires_grad=True)
        taps = model.taps(x, names)
        J = content_cost(a_C, taps[CONTENT]) * ALPHA
        for n, w in STYLE:
            J = J + gram_style_cost(targets[n], taps[n]) * (w * BETA)
        J.backward()
        return float(J.data), x.grad

    t_index = {n: index[n] for n in names}
    t_C = torch.tensor(a_C.transpose(0, 3, 1, 2).copy())
    t_targets = {n: torch.tensor(targets[n][0]) for n, _ in STYLE}

    def torch_step():
        x = torch.tensor(images[2].transpose(0, 3, 1, 2).copy(), requires_grad=True)
        h, taps = (x - mean) / std, {}
        for i, layer in enumerate(tnet):
            h = layer(h)
            for n, j in t_index.items():
                if j == i:
                    taps[n] = h
        _, C, Hc, Wc = taps[CONTENT].shape
        J = ((taps[CONTENT] - t_C) ** 2).sum() / (4 * C * Hc * Wc) * ALPHA
        for n, w in STYLE:
            _, C, h_, w_ = taps[n].shape
            f = taps[n].reshape(C, -1)
            G = f @ f.T / (h_ * w_)
            J = J + ((G - t_targets[n]) ** 2).sum() / (4 * C * C) * (w * BETA)
        J.backward()
        return float(J.detach()), x.grad

    return strided_step, torch_step


def main(argv=None) -> int:
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--size", default="400x300", help="W x H of the image (default 400x300)")
    parser.add_argument("--lbfgs-steps", type=int, default=300, help="L-BFGS iterations of the timed run (0: skip)")
    parser.add_argument("--lbfgs-size", type=int, default=400, help="longer side of the timed L-BFGS run")
    args = parser.parse_args(argv)
    sd, np, torch = common.start(args.threads)
    W, H = (int(v) for v in args.size.lower().split("x"))
    strided_step, torch_step = build(sd, np, torch, H, W)
    js, gs = strided_step()
    jt, gt = torch_step()
    err = abs(js - jt) / abs(jt)
    gt = gt.numpy().transpose(0, 2, 3, 1)
    gerr = float(np.linalg.norm(gs - gt) / np.linalg.norm(gt))       # float32 through 13 convs and 4 max pools
    print(f"cost strided {js:.6g} torch {jt:.6g} (relative difference {err:.1e}); "
          f"gradient ||difference|| / ||torch|| {gerr:.1e}")
    assert err < 1e-3 and gerr < 1e-2, "strided and torch disagree"
    gate = common.quiet_gate(args, np, torch)
    samples = common.measure_interleaved({"strided": common.timed(strided_step), "torch": common.timed(torch_step)},
                                         repeats=args.repeats, warmup=args.warmup, settle=args.settle, gate=gate)
    ours, theirs = samples["strided"].median_ms(), samples["torch"].median_ms()
    ratio = ours / theirs
    rows = [[f"style step {W}x{H}, VGG-19 to relu5_1, fwd+bwd to the image", common.fmt_ms(ours),
             common.fmt_ms(theirs), common.fmt_ratio(ratio), common.verdict(ratio, TARGET),
             common.fmt_ratio(samples["strided"].min_ms() / samples["torch"].min_ms())]]
    header = ["case", "strided ms", "torch ms", "ratio", "target", "ratio of mins"]
    print(f"[style step] strided {ours:.1f} ms, torch {theirs:.1f} ms, ratio {ratio:.2f}", flush=True)
    notes = [f"ratio = strided median / torch median step time (target <= {TARGET}); {common.settings_line(args, gate)}. "
             f"Check: cost relative difference {err:.1e}, image gradient ||difference|| / ||torch|| {gerr:.1e}."]
    if args.lbfgs_steps:
        import skimage.data
        from strided.data.image import read_image
        from strided.style import stylize
        from strided.style.backbones import get_backbone
        try:
            backbone, which = get_backbone(), "vgg16_bn_craft (offline default)"
        except ModuleNotFoundError:
            backbone, which = None, "random VGG-19"
        style_path = "/usr/share/darknet/data/scream.jpg"
        style = read_image(style_path) if os.path.exists(style_path) else skimage.data.gravel()
        t0 = time.perf_counter()
        r = stylize(skimage.data.chelsea(), [style], backbone=backbone, size=args.lbfgs_size,
                    steps=args.lbfgs_steps, optimizer="lbfgs")
        seconds = time.perf_counter() - t0
        line = (f"whole run: stylize(chelsea, scream) with {which}, {r.settings['size'][0]}x{r.settings['size'][1]}, "
                f"{args.lbfgs_steps} L-BFGS iterations ({r.evaluations} evaluations): {seconds:.0f} s "
                f"({seconds / max(1, r.evaluations):.2f} s per evaluation)")
        print(line)
        notes.append(line)
    common.finish(args, "Neural style transfer step, strided vs PyTorch, float32", header, rows, notes, gate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
