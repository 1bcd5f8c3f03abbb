"""face-api's Tiny Face Detector: strided's forward pass against a PyTorch twin with the same weights.

    python benchmarks/tiny_face.py                          # 416x416, batch 1, 7 interleaved repeats
    python benchmarks/tiny_face.py --sizes 416,608 --repeats 3 --markdown results/tiny_face.md

The network (:mod:`strided.models.tiny_face_detector`)::

    conv 3x3 3->16 valid, leaky .1, maxpool 2/2 same
    5 x [pad 1, depthwise 3x3, pointwise 1x1 (+bias), leaky .1, maxpool 2 'same' (stride 2, the last 1)]
    conv 1x1 512->25                                   193,321 parameters; 416 -> (13, 13, 25)

Weights: face-api's ``tiny_face_detector_model`` when installed (``strided models fetch
face-api`` or ``STRIDED_FACEAPI_DIR``), random ones otherwise (the timing is the same).
The twin is ``torch_tiny_face_twin_nchw`` of ``tests/faceapi_helpers.py`` (the one the tests
compare with strided; ``torch.nn``, NCHW, TF's 'same' pooling as a -inf pad of the odd pixel).  Input: the astronaut photo (scikit-image) preprocessed as face-api does, or
noise.  Both outputs are compared before timing (max|diff| / max|torch| <= 1e-4).  Besides
the table, the time of a whole ``TinyFaceDetector.detect`` (preprocess + forward + decode +
NMS) on the astronaut is printed for strided.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

TARGET = 1.2  # issue 11


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


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.add_argument("--sizes", default="416", help="comma-separated input sizes, multiples of 32 (default 416)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass (default 1)")
    args = parser.parse_args(argv)
    sizes = common.parse_positive_ints(parser, args.sizes, "--sizes", multiple_of=32)

    sd, np, torch = common.start(args.threads)
    from strided.detect.tiny_face import TinyFaceDetector, preprocess
    from strided.models.tiny_face_detector import TinyFaceDetectorNet, tfjs_to_state_dict
    sys.path.insert(0, os.path.join(common.REPO_ROOT, "tests"))
    from faceapi_helpers import torch_tiny_face_twin_nchw

    weights, origin = load_weights(np)
    net = TinyFaceDetectorNet()
    net.load_state_dict(tfjs_to_state_dict(weights))
    net.eval()
    twin = torch_tiny_face_twin_nchw(weights)
    try:
        from skimage import data as skdata
        photo = skdata.astronaut()
    except ImportError:
        photo = None
    gate = common.quiet_gate(args, np, torch)
    print(f"weights: {origin}; input: {'astronaut photo' if photo is not None else 'noise'}; batch {args.batch}; "
          f"{common.settings_line(args, gate)}\n", flush=True)

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
            common.print_error(str(size))
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
    common.finish(args, "Tiny Face Detector forward, strided vs PyTorch, float32", header, rows, notes, gate)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
