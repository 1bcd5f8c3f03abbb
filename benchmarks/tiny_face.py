"""face-api's Tiny Face Detector: strided's forward pass against a PyTorch twin with the same weights.

    python benchmarks/tiny_face.py                          # 416x416, batch 1, 7 interleaved repeats
    python benchmarks/tiny_face.py --sizes 416,608 --repeats 3 --markdown results/tiny_face.md

The network (:mod:`strided.models.tiny_face_detector`)::

    conv 3x3 3->16 valid, leaky .1, maxpool 2/2 same
    5 x [pad 1, depthwise 3x3, pointwise 1x1 (+bias), leaky .1, maxpool 2 'same' (stride 2, the last 1)]
    conv 1x1 512->25                                   193,321 parameters; 416 -> (13, 13, 25)

Weights: face-api's ``tiny_face_detector_model`` when installed (``strided models fetch
face-api`` or ``STRIDED_FACEAPI_DIR``), random ones otherwise (the timing is the same).
The twin is written below with ``torch.nn`` (NCHW; TF's 'same' pooling as a -inf pad of the
odd pixel).  Input: the astronaut photo (scikit-image) preprocessed as face-api does, or
noise.  Both outputs are compared before timing (max|diff| / max|torch| <= 1e-4).  Besides
the table, the time of a whole ``TinyFaceDetector.detect`` (preprocess + forward + decode +
NMS) on the astronaut is printed for strided.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

TARGET = 1.5


def load_weights(np):
    """(face-api's weight map, 'face-api') or (random weights of the same shapes, 'random')."""
    from strided.io.tfjs import read_tfjs
    from strided.models.faceapi import find_faceapi_models
    from strided.models.tiny_face_detector import TinyFaceDetectorNet

    folder = find_faceapi_models(required=False)
    if folder is not None:
        return read_tfjs(folder / "tiny_face_detector_model-weights_manifest.json"), "face-api"
    rng = np.random.default_rng(0)
    net = TinyFaceDetectorNet()
    names = {"conv0.weight": "conv0/filters", "conv0.bias": "conv0/bias", "conv8.weight": "conv8/filters",
             "conv8.bias": "conv8/bias"}
    weights = {}
    for key, value in net.state_dict().items():
        name = names.get(key) or key.replace(".depthwise.weight", "/depthwise_filter").replace(
            ".pointwise.weight", "/pointwise_filter").replace(".pointwise.bias", "/bias")
        shape = value.shape if "depthwise" not in key else value.shape[:2] + (value.shape[3], 1)
        weights[name] = (rng.normal(size=shape) * 0.1).astype(np.float32)
    return weights, "random"


def torch_twin(torch, np, w):
    """torch.nn twin (NCHW) of face-api's runMobilenet with the weight map ``w``."""
    tnn, TF = torch.nn, torch.nn.functional

    def conv(kernel_hwio, bias=None, depthwise=False):
        k = torch.from_numpy(np.ascontiguousarray(kernel_hwio.transpose((2, 3, 0, 1) if depthwise else (3, 2, 0, 1))))
        groups = k.shape[0] if depthwise else 1
        layer = tnn.Conv2d(k.shape[1] * groups, k.shape[0], tuple(k.shape[2:]), padding=1 if depthwise else 0,
                           groups=groups, bias=bias is not None)
        layer.weight.data = k
        if bias is not None:
            layer.bias.data = torch.from_numpy(np.ascontiguousarray(bias))
        return layer.eval()

    def pool_same(x, stride):
        n = x.shape[-1]
        pad = max((-(-n // stride) - 1) * stride + 2 - n, 0)
        return TF.max_pool2d(TF.pad(x, (0, pad, 0, pad), value=float("-inf")) if pad else x, 2, stride)

    conv0, conv8 = conv(w["conv0/filters"], w["conv0/bias"]), conv(w["conv8/filters"], w["conv8/bias"])
    dws = [conv(w[f"conv{i}/depthwise_filter"], depthwise=True) for i in range(1, 6)]
    pws = [conv(w[f"conv{i}/pointwise_filter"], w[f"conv{i}/bias"]) for i in range(1, 6)]

    def forward(x_nchw):
        with torch.no_grad():
            x = pool_same(TF.leaky_relu(conv0(x_nchw), 0.1), 2)
            for i in range(5):
                x = pool_same(TF.leaky_relu(pws[i](dws[i](x)), 0.1), 2 if i < 4 else 1)
            return conv8(x)
    return forward


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--sizes", default="416", help="comma-separated input sizes, multiples of 32 (default 416)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass (default 1)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        if not sizes or any(s <= 0 or s % 32 for s in sizes):
            raise ValueError
    except ValueError:
        parser.error(f"--sizes must be positive multiples of 32 separated by commas, received {args.sizes!r}")

    sd, np, torch = common.load_runtime(args.threads)
    from strided.detect.tiny_face import TinyFaceDetector, preprocess
    from strided.models.tiny_face_detector import TinyFaceDetectorNet, tfjs_to_state_dict

    for line in common.environment_lines():
        print(line)
    weights, origin = load_weights(np)
    net = TinyFaceDetectorNet()
    net.load_state_dict(tfjs_to_state_dict(weights))
    net.eval()
    twin = torch_twin(torch, np, weights)
    try:
        from skimage import data as skdata
        photo = skdata.astronaut()
    except ImportError:
        photo = None
    gate = None if args.no_gate else common.QuietGate(np, torch)
    print(f"weights: {origin}; input: {'astronaut photo' if photo is not None else 'noise'}; batch {args.batch}; "
          f"repeats {args.repeats} (interleaved, median), warm-up {args.warmup}, settle {args.settle} s, "
          f"quiet gate {'off' if gate is None else 'on'}\n", flush=True)

    header = ["case", "strided ms", "torch ms", "ratio", "target", "max rel diff"]
    rows, failures = [], []
    for size in sizes:
        name = f"Tiny Face Detector forward {size}x{size}, batch {args.batch}"
        try:
            if photo is not None:
                x = np.repeat(preprocess(photo, size), args.batch, axis=0)
            else:
                x = np.random.default_rng(1).normal(size=(args.batch, size, size, 3)).astype(np.float32)
            x_sd, x_t = sd.tensor(x), torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

            def run_strided():
                with sd.no_grad():
                    return net(x_sd).data

            err = common.rel_err(np, run_strided(), twin(x_t).permute(0, 2, 3, 1).numpy())
            print(f"[{size}] output check: max|strided - torch| / max|torch| = {err:.1e} (tolerance 1e-4)", flush=True)
            if err > 1e-4:
                raise AssertionError(f"outputs differ: {err:.1e}")
            samples = common.measure_interleaved(
                {"strided": common.timed(run_strided), "torch": common.timed(lambda: twin(x_t))},
                repeats=args.repeats, warmup=args.warmup, settle=args.settle, gate=gate)
        except Exception:
            tb = traceback.format_exc()
            print(f"[{size}] ERROR\n{tb}", file=sys.stderr, flush=True)
            failures.append(size)
            rows.append([name, "ERROR", "—", "—", common.verdict(None, TARGET), "—"])
            continue
        s, t = samples["strided"], samples["torch"]
        ratio = s.median_ms() / t.median_ms()
        print(f"[{size}] strided {s.median_ms():.2f} ms (min {s.min_ms():.2f}), torch {t.median_ms():.2f} ms "
              f"(min {t.min_ms():.2f}), ratio {ratio:.2f} | rounds redone {s.redone}, kept noisy {s.noisy}",
              flush=True)
        rows.append([name, common.fmt_ms(s.median_ms()), common.fmt_ms(t.median_ms()), common.fmt_ratio(ratio),
                     common.verdict(ratio, TARGET), f"{err:.1e}"])

    notes = [f"ratio = strided median / torch median forward time (no_grad, eval); lower is better "
             f"(target <= {TARGET}). Weights: {origin}."]
    if photo is not None and origin == "face-api":
        detector = TinyFaceDetector(net)
        detector.detect(photo)
        times = []
        for _ in range(max(3, args.repeats)):
            t0 = time.perf_counter()
            faces = detector.detect(photo)
            times.append(time.perf_counter() - t0)
        line = (f"Whole TinyFaceDetector.detect on the 512x512 astronaut (pad, resize, forward 416, decode, NMS): "
                f"median {1e3 * sorted(times)[len(times) // 2]:.2f} ms, {len(faces)} face(s), "
                f"score {faces[0]['score']:.4f}" if faces else "no face")
        print(line)
        notes.append(line + ".")
    if gate is not None:
        print(f"\nquiet gate: waited {gate.waited:.1f} s in all; best threaded probe {gate.best * 1e3:.3f} ms")
    print()
    table = common.print_table(header, rows)
    print("\n" + "\n".join(notes))
    if args.markdown:
        common.write_results(args.markdown, "Tiny Face Detector forward, strided vs PyTorch, float32", table, notes,
                             append=args.append)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
